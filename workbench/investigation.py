"""One investigation run: open the case, take custody, run the analyses, build the timeline, draw the conclusions
and write every contract output. A library call that needs no notebook.

:meth:`Investigation.open` does it all; the notebook (and JupyterLab) only show the result through
:class:`workbench.report.view.ReportView`. Analyses are listed in :data:`workbench.sections.SECTIONS`; each runs in
isolation: one that raises does not stop the others, its error is recorded, shown in its section and counted in
the coverage (a failed analysis is never taken for a clean one).

Outputs (contract, written by :meth:`Investigation.write_outputs` into the output folder, never into the
evidence): ``findings.json``, ``timeline.jsonl``, ``comms/*.md``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import custody
from workbench._version import __version__
from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.case import Case
from workbench.collect import EvidenceSet, collect_evidence
from workbench.conclusions import Conclusions, coverage_of, derive_conclusions, iso
from workbench.custody_names import hashes_by_relpath
from workbench.errors import EvidenceError
from workbench.progress import SILENT, Progress
from workbench.records import Event, EvidenceWarning, Finding, now_utc
from workbench.safeio import atime_warnings
from workbench.sections import SECTIONS, resolve
from workbench.timeline import Timeline, build_timeline, evidence_events, merge_events, write_timeline
from workbench.timeline.bulk import gc_paused
from workbench.timeparse import NAIVE_RULE

__all__ = ["Investigation", "redact_text"]

OUTPUTS = ("findings", "timeline", "comms")


def redact_text(text: str) -> str:
    """Redact secrets in evidence text before it is written anywhere (the log scanner's credential rules)."""
    from workbench.rulepack.redact import redact

    return redact(text)


def _redact_finding(f: Finding) -> Finding:
    from workbench.rulepack.redact import redact_data

    return replace(f, title=redact_text(f.title), detail=redact_text(f.detail), evidence=redact_data(dict(f.evidence)))


def _redact_events(events: Iterable[Event]) -> list[Event]:
    """Events with secrets redacted in the message and every text of ``extra`` (keys too); an event left unchanged
    is kept as it is. Extra texts (kinds of actions, file names, rule ids) repeat: each is redacted once."""
    from workbench.rulepack.redact import redact_data

    memo: dict[str, str] = {}

    def once(text: str) -> str:
        if (out := memo.get(text)) is None:
            if len(memo) >= 100_000:
                memo.clear()
            out = memo[text] = redact_text(text)
        return out

    out: list[Event] = []
    with gc_paused():  # a million events: the collector's full passes would walk them again and again
        for e in events:
            message = redact_text(e.message)
            extra = {once(k) if isinstance(k, str) else k: once(v) if isinstance(v, str) else redact_data(v)
                     for k, v in e.extra.items()}  # fmt: skip
            out.append(e if message == e.message and extra == e.extra else replace(e, message=message, extra=extra))
    return out


def _problem(reason: str) -> str:
    """The kind of a warning, for de-duplication: its first words ("invalid UTF-8", "line longer than")."""
    return " ".join(reason.replace(",", " ").replace("(", " ").split()[:2]).lower()


@dataclass(slots=True)
class Investigation:
    """State of one investigation run.

    Attributes:
        case: the opened evidence tree.
        out_dir: where every output goes (never inside the evidence).
        ledger: the custody ledger of this run.
        evidence: what the loaders made of the case.
        reference: known-good model folder (from ``--reference`` or the case), if any.
        parameters: analysis options (papermill ``OPTIONS``, ``investigate -p``).
        results: each section's :class:`AnalysisResult`.
        errors: sections whose analysis raised, with the exception.
        findings / events: everything, merged and redacted (findings worst first, events by time).
        timeline: every event merged, collapsed and flagged, milestones anchored.
        conclusions: what the run concludes (the one place verdict, times and windows are decided).
        generated_at: when the conclusions were drawn (the report milestone).
        outputs: the contract files written, by name.
    """

    case: Case
    out_dir: Path
    ledger: custody.Ledger
    evidence: EvidenceSet
    reference: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    results: dict[str, AnalysisResult] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    timeline: Timeline | None = None
    conclusions: Conclusions | None = None
    generated_at: datetime | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    comms: dict[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    _verify: custody.VerifyResult | None = None

    @classmethod
    def open(
        cls,
        case_dir: str | Path,
        out_dir: str | Path | None = None,
        reference: str | Path | None = None,
        parameters: dict[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        write: bool = True,
    ) -> Investigation:
        """Open a case, take custody (or reuse this run's ledger), run every analysis, conclude, write outputs.

        Args:
            case_dir: the evidence tree.
            out_dir: output folder (default: a new temporary folder); a ledger already there is reused.
            reference: known-good model folder; default: the case's reference model, if any.
            parameters: analysis options (papermill parameters).
            progress: where stages are reported (default: silent).
            write: write ``findings.json``, ``timeline.jsonl`` and ``comms/`` (default True).

        Raises:
            EvidenceError: the case or the reference cannot be used, or the ledger's chain is broken.
        """
        progress = progress or SILENT
        case = Case.open(case_dir)
        out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix=f"workbench-{case.incident_id}-"))
        out = out.resolve()
        ledger_path = out / custody.LEDGER_NAME
        if ledger_path.exists():
            ledger, broken = custody.Ledger.read(ledger_path)
            if broken:
                raise EvidenceError(ledger_path, "custody ledger chain is broken: " + "; ".join(broken[:3]))
            if not (state := ledger.intake_state()).complete:
                raise EvidenceError(ledger_path, f"{state.describe()}; use a new output folder")
        else:
            with progress.stage("custody intake"):
                ledger = custody.intake(case, out)
        ref = Path(reference).resolve() if reference else case.model_dir("reference")
        if ref is not None and not ref.is_dir():
            raise EvidenceError(str(reference), "reference model folder does not exist")
        for section in SECTIONS.values():  # slow set-up started in the background (the log rules' compilation)
            if section.prepare:
                resolve(section.prepare)(dict(parameters or {}))
        with progress.stage("evidence loaders"):
            evidence = collect_evidence(case)
        inv = cls(case=case, out_dir=out, ledger=ledger, evidence=evidence, reference=ref,
                  parameters=dict(parameters or {}), progress=progress)  # fmt: skip
        inv.run_analyses()
        inv.conclude()
        if write:
            inv.write_outputs()
        return inv

    # ----------------------------------------------------------------------------------------------- analyses
    @property
    def context(self) -> AnalysisContext:
        hashes = hashes_by_relpath(self.ledger.entries, (f.relpath for f in self.case.files))
        return AnalysisContext(self.case, self.evidence, self.reference, self.out_dir, self.parameters,
                               intake_hashes=hashes, progress=self.progress)  # fmt: skip

    def run_analyses(self) -> None:
        """Run every section's analysis; a failing one is recorded in :attr:`errors` and the rest go on."""
        ctx = self.context
        self.results = {"evidence": AnalysisResult(section="evidence", findings=list(self.evidence.findings),
                                                   unexamined=list(self.case.unexamined))}  # fmt: skip
        for key, (title, analyse_spec, *_) in SECTIONS.items():
            with self.progress.stage(title.lower()):
                try:
                    self.results[key] = resolve(analyse_spec)(ctx)
                except Exception as exc:  # noqa: BLE001 - isolated per section, recorded, shown by its section
                    self.errors[key] = exc
                    self.results[key] = AnalysisResult(section=key)
                    self.evidence.warnings.append(
                        EvidenceWarning(key, None, f"analysis failed: {type(exc).__name__}: {exc}")
                    )
        self._merge_warnings()
        self.evidence.warnings.extend(EvidenceWarning(p, None, r) for p, r in atime_warnings(self.case.root))
        for result in self.results.values():  # secrets found anywhere never leave the analyses in clear
            result.findings = [_redact_finding(f) for f in result.findings]
            result.events = _redact_events(result.events)
        self.findings = sorted(
            (f for r in self.results.values() for f in r.findings),
            key=lambda f: (-f.severity.rank, f.category, f.title),
        )
        self.events = merge_events(
            _redact_events(evidence_events(self.case, self.evidence, self.ledger)),
            [e for r in self.results.values() for e in r.events],
        )

    def _merge_warnings(self) -> None:
        """Add the analyses' warnings to the evidence warnings, once per file, line and kind of problem."""
        seen = {(w.path, w.line, _problem(w.reason)) for w in self.evidence.warnings}
        for result in self.results.values():
            for w in result.warnings:
                key = (w.path, w.line, _problem(w.reason))
                if key not in seen:
                    seen.add(key)
                    self.evidence.warnings.append(EvidenceWarning(w.path, w.line, redact_text(w.reason)))

    def conclude(self) -> Conclusions:
        """Build the timeline and draw the conclusions (once); anchor the milestones in the timeline."""
        with self.progress.stage("timeline and conclusions"):
            self.generated_at = now_utc()
            self.timeline = build_timeline(self.events, findings=self.findings, meta=self.case.meta,
                                           generated_at=self.generated_at)  # fmt: skip
            drift = self.results.get("drift")
            self.conclusions = derive_conclusions(
                self.findings,
                self.timeline.usable,
                coverage_of(self.coverage_titles, self.results, self.errors),
                meta=self.case.meta,
                outputs=drift.outputs if drift is not None else None,
                models=self.models,
                generated_at=self.generated_at,
                plausible=self.timeline.plausible,
            )
            self.timeline.anchor(self.conclusions.milestones)
        return self.conclusions

    @property
    def coverage_titles(self) -> dict[str, str]:
        """Section key → title for the coverage: the evidence inventory, then every analysis section."""
        return {"evidence": "Evidence inventory", **{k: v.title for k, v in SECTIONS.items()}}

    @property
    def models(self) -> list[str]:
        """The model ids concerned: case.yaml ``affected_models``, else the suspect model folder's name."""
        if self.case.meta.affected_models:
            return list(self.case.meta.affected_models)
        suspect = self.case.model_dir("suspect")
        return [suspect.name] if suspect is not None else []

    # ------------------------------------------------------------------------------------------------ results
    @property
    def verdict(self) -> str:
        """The conclusions' verdict."""
        return self.conclusions.verdict if self.conclusions else "inconclusive"

    def verify_custody(self) -> custody.VerifyResult:
        """Re-hash the evidence against this run's intake (recorded in the ledger)."""
        self._verify = custody.verify(self.out_dir, case_root=self.case.root)
        return self._verify

    def findings_document(self) -> dict[str, Any]:
        """The ``findings.json`` document (contract in docs/contracts.md)."""
        result = self._verify or self.verify_custody()
        c = self.conclusions or self.conclude()
        conclusions = c.to_dict()
        return {
            "incident_id": self.case.incident_id,
            "workbench_version": __version__,
            "generated_at": iso(self.generated_at or now_utc()),
            "verdict": c.verdict,
            "conclusions": conclusions,
            "custody": {
                "verified": result.verified,
                "files": result.files,
                "head": result.head,
                "changed": result.changed,
                "missing": result.missing,
                "added": result.added,
                "broken_links": result.broken_links,
            },
            "findings": [f.to_dict() for f in self.findings],
            "exposure": conclusions["exposure"],
            "milestones": {"milestones": conclusions["milestones"], "intervals": conclusions["intervals"]},
            "timeline": self.timeline.summary() if self.timeline else None,
            "naive_time_rule": NAIVE_RULE.format(tz=self.case.meta.naive_timezone),
            "analysis_errors": {k: f"{type(e).__name__}: {e}" for k, e in self.errors.items()},
            "warnings": [w.to_dict() for w in self.evidence.warnings],
        }

    def write_outputs(self) -> dict[str, Path]:
        """Write ``findings.json``, ``timeline.jsonl`` (Timesketch rows) and ``comms/*.md`` into the output folder.

        Returns:
            ``{"findings": path, "timeline": path, "comms": folder}`` (also kept in :attr:`outputs`).
        """
        from workbench.comms.drafts import build_comms, write_comms
        from workbench.rulepack.redact import redact_data

        with self.progress.stage("outputs"):
            doc = self.findings_document()
            findings_path = self.out_dir / "findings.json"
            findings_path.write_text(json.dumps(redact_data(doc), indent=2) + "\n", encoding="utf-8")
            timeline_path = self.out_dir / "timeline.jsonl"
            write_timeline(self.timeline, timeline_path, redact=redact_text)
            self.comms, problems = build_comms(self)
            for problem in problems:
                warning = EvidenceWarning("case.yaml", None, problem)
                if warning not in self.evidence.warnings:
                    self.evidence.warnings.append(warning)
            comms_dir = write_comms(self.comms, self.out_dir)
        self.outputs = {"findings": findings_path, "timeline": timeline_path, "comms": comms_dir}
        return self.outputs

    def rule_packs(self) -> dict[str, str]:
        """Rule data in force, ``{section: description with a digest}`` (declared by analyses in ``data``)."""
        from workbench.analysis import describe_data_files

        packs = {k: str(r.data["rule_pack"]) for k, r in self.results.items() if "rule_pack" in r.data}
        data = Path(__file__).with_name("data")
        packs.setdefault("host", describe_data_files("host rules", data / "suspicious_processes.yaml"))
        packs.setdefault(
            "dependencies",
            describe_data_files("dependency data", data / "popular_packages.txt", data / "dependency_sources.yaml"),
        )
        return packs
