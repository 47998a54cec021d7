"""An investigation: a case, its custody ledger, its evidence and every analysis's Findings and Events.

This is the one object the notebook holds (``inv``): each notebook cell calls one of its methods. It never
prints; display methods return objects that Jupyter renders (HTML tables, plotly figures).

Analyses are listed in :data:`SECTIONS` (section key → analyse function, render function). Each runs in
isolation: one that raises does not stop the others; its error is recorded and re-raised by the notebook cell
that shows its section, so the report names the failing section and the run exits non-zero.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench import custody
from workbench._version import __version__
from workbench.analysis import AnalysisContext, AnalysisResult, SectionView
from workbench.case import Case
from workbench.collect import EvidenceSet, collect_evidence
from workbench.errors import EvidenceError
from workbench.records import Event, EvidenceWarning, Finding, Severity, now_utc
from workbench.timeline import Milestones, Timeline, build_timeline, evidence_events, merge_events, write_timeline
from workbench.timeparse import NAIVE_RULE

__all__ = ["SECTIONS", "Investigation", "verdict_of"]

#: section key -> (title, "module:analyse function", "module:render function" or None), in report order
SECTIONS: dict[str, tuple[str, str, str | None]] = {
    "model": ("Model forensics", "workbench.model.analysis:analyse", "workbench.model.analysis:render"),
    "monitor": ("Monitor alerts", "workbench.checks.analysis:analyse_monitor_alerts", None),
    "logs": ("Pipeline logs", "workbench.logscan:analyse", "workbench.logscan:render"),
    "dependencies": ("Dependencies", "workbench.deps:analyse_dependencies", "workbench.deps:render_dependencies"),
    "host": ("Host state", "workbench.host:analyse_host", "workbench.host:render_host"),
    "drift": ("Behaviour drift", "workbench.drift:analyse", "workbench.drift:render"),
}

#: categories that describe the evidence handling, not the incident; they do not decide the verdict
_PROCESS_CATEGORIES = {"evidence_malformed", "custody_violation", "signature_verified"}


def redact_text(text: str) -> str:
    """Redact secrets in evidence text before it is written anywhere (the log scanner's credential rules)."""
    from workbench.logscan.redact import redact

    return redact(text)


def _redact_finding(f: Finding) -> Finding:
    from workbench.logscan.redact import redact_data

    return replace(f, title=redact_text(f.title), detail=redact_text(f.detail), evidence=redact_data(dict(f.evidence)))


def _redact_event(e: Event) -> Event:
    from workbench.logscan.redact import redact_data

    return replace(e, message=redact_text(e.message), extra=redact_data(dict(e.extra)))


def _problem(reason: str) -> str:
    """The kind of a warning, for de-duplication: its first words ("invalid UTF-8", "line longer than")."""
    return " ".join(reason.replace(",", " ").replace("(", " ").split()[:2]).lower()


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _severity_or(value: object, default: Severity) -> Severity:
    """A severity word from evidence, or ``default`` when it is missing or unknown."""
    try:
        return Severity.parse(value) if isinstance(value, str) and value else default
    except ValueError:
        return default


#: for summaries, among findings of equal severity: what the attack did to the model first, then how it got in
IMPORTANCE = (
    "pickle_dangerous_import", "tensor_modified", "model_file_tampered", "signature_invalid", "behavior_drift",
    "secret_exposed", "dependency_confusion", "dependency_typosquat", "suspicious_connection", "log_pattern",
    "suspicious_process", "dependency_changed", "unexpected_model_file", "model_unsigned",
)  # fmt: skip


def headline(findings: list[Finding], limit: int, min_severity: Severity = Severity.MEDIUM) -> list[Finding]:
    """The most important findings for a summary: worst severity first, then by :data:`IMPORTANCE`, at most one
    per category."""
    order = {c: i for i, c in enumerate(IMPORTANCE)}
    ranked = sorted(
        (f for f in findings if f.severity.rank >= min_severity.rank and f.category not in _PROCESS_CATEGORIES),
        key=lambda f: (-f.severity.rank, order.get(f.category, len(order)), f.title),
    )
    chosen: list[Finding] = []
    for f in ranked:
        if all(c.category != f.category for c in chosen):
            chosen.append(f)
        if len(chosen) == limit:
            break
    return chosen


def verdict_of(findings: list[Finding]) -> tuple[str, list[str]]:
    """``("compromised" | "suspicious" | "clean", reasons)`` from the findings.

    compromised: at least one critical finding about the incident; suspicious: a high or medium one; clean: none.
    The reasons are the most important findings of the deciding severity (see :func:`headline`).
    """
    relevant = [f for f in findings if f.category not in _PROCESS_CATEGORIES]
    crit = [f for f in relevant if f.severity is Severity.CRITICAL]
    if crit:
        return "compromised", [f.title for f in headline(crit, 5, Severity.CRITICAL)]
    warn = [f for f in relevant if f.severity in (Severity.HIGH, Severity.MEDIUM)]
    if warn:
        return "suspicious", [f.title for f in headline(warn, 5)]
    reasons = ["no finding above low severity"]
    alerts = [f for f in findings if f.category == "monitor_alert"]
    if alerts:  # the case was opened on an alert: say plainly that the evidence does not bear it out
        reasons.append(f"not corroborated by any analysis: {alerts[0].title}")
    return "clean", reasons


@dataclass(slots=True)
class Investigation:
    """State of one investigation run.

    Attributes:
        case: the opened evidence tree.
        out_dir: where every output goes (never inside the evidence).
        ledger: the custody ledger of this run.
        evidence: what the loaders made of the case.
        reference: known-good model folder (from ``--reference`` or the case), if any.
        results: each section's :class:`AnalysisResult`.
        errors: sections whose analysis raised, with the exception.
        findings / events: everything, merged (findings worst first, events by time).
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
    milestones: Milestones | None = None
    _verify: custody.VerifyResult | None = None

    @classmethod
    def open(
        cls,
        case_dir: str | Path,
        out_dir: str | Path | None = None,
        reference: str | Path | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Investigation:
        """Open a case, take custody (or reuse this run's ledger) and run every analysis.

        Args:
            case_dir: the evidence tree.
            out_dir: output folder (default: a new temporary folder); a ledger already there is reused.
            reference: known-good model folder; default: the case's reference model, if any.
            parameters: analysis options (papermill parameters).
        """
        case = Case.open(case_dir)
        out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix=f"workbench-{case.incident_id}-"))
        out = out.resolve()
        ledger_path = out / custody.LEDGER_NAME
        if ledger_path.exists():
            ledger, broken = custody.Ledger.read(ledger_path)
            if broken:
                raise EvidenceError(ledger_path, "custody ledger chain is broken: " + "; ".join(broken[:3]))
        else:
            ledger = custody.intake(case, out)
        ref = Path(reference).resolve() if reference else case.model_dir("reference")
        if ref is not None and not ref.is_dir():
            raise EvidenceError(str(reference), "reference model folder does not exist")
        inv = cls(
            case=case,
            out_dir=out,
            ledger=ledger,
            evidence=collect_evidence(case),
            reference=ref,
            parameters=dict(parameters or {}),
        )
        inv.run_analyses()
        return inv

    # ----------------------------------------------------------------------------------------------- analyses
    @property
    def context(self) -> AnalysisContext:
        return AnalysisContext(self.case, self.evidence, self.reference, self.out_dir, self.parameters)

    def run_analyses(self) -> None:
        """Run every section's analysis; a failing one is recorded in :attr:`errors` and the rest go on."""
        ctx = self.context
        self.results = {"evidence": AnalysisResult(section="evidence", findings=list(self.evidence.findings))}
        for key, (_, analyse_spec, _) in SECTIONS.items():
            try:
                self.results[key] = _resolve(analyse_spec)(ctx)
            except Exception as exc:  # noqa: BLE001 - isolated per section, recorded, re-raised by section()
                self.errors[key] = exc
                self.results[key] = AnalysisResult(section=key)
                self.evidence.warnings.append(
                    EvidenceWarning(key, None, f"analysis failed: {type(exc).__name__}: {exc}")
                )
        self._merge_warnings()
        for result in self.results.values():  # secrets found anywhere never leave the analyses in clear
            result.findings = [_redact_finding(f) for f in result.findings]
            result.events = [_redact_event(e) for e in result.events]
        self.findings = sorted(
            (f for r in self.results.values() for f in r.findings),
            key=lambda f: (-f.severity.rank, f.category, f.title),
        )
        self.events = merge_events(
            [_redact_event(e) for e in evidence_events(self.case, self.evidence, self.ledger)],
            [e for r in self.results.values() for e in r.events],
        )
        self.timeline = build_timeline(
            self.events, findings=self.findings, meta=self.case.meta, exposure=self.exposure, generated_at=now_utc()
        )
        self.milestones = self.timeline.milestones

    def _merge_warnings(self) -> None:
        """Add the analyses' warnings to the evidence warnings, once per file, line and kind of problem.

        A loader and an analysis may both read the same file (a pipeline log, a model file) and meet the same bad
        line; the report lists it once.
        """
        from workbench.logscan.redact import redact

        seen = {(w.path, w.line, _problem(w.reason)) for w in self.evidence.warnings}
        for result in self.results.values():
            for w in result.warnings:
                key = (w.path, w.line, _problem(w.reason))
                if key not in seen:
                    seen.add(key)
                    self.evidence.warnings.append(EvidenceWarning(w.path, w.line, redact(w.reason)))

    # ------------------------------------------------------------------------------------------------ results
    @property
    def verdict(self) -> tuple[str, list[str]]:
        return verdict_of(self.findings)

    @property
    def exposure(self) -> dict[str, Any] | None:
        """The exposure window object of findings.json (from the drift analysis), or None."""
        for result in self.results.values():
            if result.exposure is not None:
                return result.exposure
        return None

    def verify_custody(self) -> custody.VerifyResult:
        """Re-hash the evidence against this run's intake (recorded in the ledger)."""
        self._verify = custody.verify(self.out_dir, case_root=self.case.root)
        return self._verify

    def findings_document(self) -> dict[str, Any]:
        """The ``findings.json`` document (contract in ARCHITECTURE.md)."""
        result = self._verify or self.verify_custody()
        verdict, reasons = self.verdict
        return {
            "incident_id": self.case.incident_id,
            "workbench_version": __version__,
            "generated_at": now_utc().isoformat(),
            "verdict": verdict,
            "verdict_reasons": reasons,
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
            "exposure": self.exposure,
            "milestones": self.milestones.to_dict() if self.milestones else None,
            "timeline": self.timeline.summary() if self.timeline else None,
            "naive_time_rule": NAIVE_RULE.format(tz=self.case.meta.naive_timezone),
            "analysis_errors": {k: f"{type(e).__name__}: {e}" for k, e in self.errors.items()},
            "warnings": [w.to_dict() for w in self.evidence.warnings],
        }

    def write_outputs(self) -> dict[str, Path]:
        """Write ``findings.json`` and ``timeline.jsonl`` (Timesketch rows) into the output folder.

        Returns:
            ``{"findings": path, "timeline": path}``.
        """
        doc = self.findings_document()
        findings_path = self.out_dir / "findings.json"
        from workbench.logscan.redact import redact_data

        findings_path.write_text(json.dumps(redact_data(doc), indent=2) + "\n", encoding="utf-8")
        timeline_path = self.out_dir / "timeline.jsonl"
        write_timeline(self.timeline, timeline_path, redact=redact_text)
        return {"findings": findings_path, "timeline": timeline_path}

    # ------------------------------------------------------------------------------------ notebook display
    def summary(self):
        """Verdict, reasons and counts by severity (HTML)."""
        from workbench.report import present

        return present.summary(self)

    def evidence_table(self):
        """Every evidence file with its size, detected kind and intake SHA-256 (HTML)."""
        from workbench.report import present

        return present.evidence_table(self)

    def custody_status(self):
        """Re-hash the evidence now and show whether it still matches the intake (HTML)."""
        from workbench.report import present

        return present.custody_status(self, self.verify_custody())

    def findings_table(self, section: str | None = None):
        """Findings (all, or one section's) as an escaped HTML table, worst first."""
        from workbench.report import present

        if section is None:
            return present.findings_table(self.findings)
        result = self.results.get(section)
        return present.findings_table(result.findings if result else [])

    def findings_by_tactic(self):
        """Findings grouped by MITRE ATLAS tactic, worst group first (HTML)."""
        from workbench.report import present

        return present.findings_by_tactic(self.findings)

    def explore_findings(self):
        """An ipywidgets explorer of the findings: severity floor, categories, search (JupyterLab)."""
        from workbench.widgets import findings_explorer

        return findings_explorer(self)

    def explore(self, section: str, table: str, column: str | None = None):
        """An ipywidgets explorer of one of a section's tables, e.g. ``("model", "tensors", "status")``.

        Raises:
            KeyError: the section has no such table (the message lists the tables it has).
        """
        import pandas as pd

        from workbench.widgets import frame_explorer

        data = self.results[section].data
        frame = data.get(table)
        if not isinstance(frame, pd.DataFrame):
            tables = sorted(k for k, v in data.items() if isinstance(v, pd.DataFrame))
            raise KeyError(f"section {section!r} has no table {table!r}; it has: {', '.join(tables) or 'none'}")
        return frame_explorer(frame, column=column)

    def section(self, name: str) -> SectionView:
        """One analysis section: its own renderer's figures and tables, or its findings.

        Raises:
            The exception the section's analysis raised, so that the notebook cell (and the run) fails visibly.
        """
        from workbench.report import present

        if name in self.errors:
            raise self.errors[name]
        spec = SECTIONS.get(name)
        result = self.results.get(name)
        if spec is None or result is None:
            return SectionView([present.pending(name)])
        renderer = _resolve(spec[2]) if spec[2] else present.findings_list
        return SectionView(renderer(result))

    def timeline_figure(self, group_by: str = "lane"):
        """Events by source lane (or ATLAS tactic), severity colours, milestones, exposure shaded (plotly, UTC)."""
        from workbench.timeline.plots import timeline_figure

        return timeline_figure(self.timeline, group_by=group_by)

    def milestones_table(self):
        """Milestones (first indicator, compromise, detection, containment, recovery) and intervals (HTML)."""
        from IPython.display import HTML

        from workbench.timeline.plots import milestones_table

        return HTML(milestones_table(self.timeline))

    def warnings_table(self):
        """Every recorded evidence warning: file, line, reason (HTML)."""
        from workbench.report import present

        return present.warnings_table(self)

    def recommendations(self):
        """What to do now: the playbook's recommendations plus those the findings justify (HTML)."""
        from workbench.report import present
        from workbench.report.recommendations import recommendations

        return present.recommendations_list(recommendations(self.findings, exposure=self.exposure))

    def comms_context(self):
        """The filled context of the communication drafts (evidence text redacted)."""
        from workbench.report.comms import CommsContext

        return CommsContext.from_investigation(
            self, exposure=self.exposure or {}, milestones=getattr(self, "milestones", None), redact=redact_text
        )

    def comms(self):
        """Write OUT/comms/*.md (initial alert, stakeholder update, post-incident report) and show them (HTML)."""
        from workbench.report import present
        from workbench.report.comms import render_comms, write_comms

        ctx = self.comms_context()
        write_comms(ctx, self.out_dir)
        return present.comms(render_comms(ctx), ctx.warnings)

    def appendix(self):
        """Run parameters, naive-time rule, rule packs and tool versions (HTML)."""
        from workbench.report import present

        return present.appendix(self, self.rule_packs())

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

    def outputs(self):
        """Write findings.json and timeline.jsonl and list them (HTML)."""
        from workbench.report import present

        return present.outputs(self.write_outputs())
