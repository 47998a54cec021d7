"""An investigation: a case, its custody ledger, its evidence and every analysis's Findings and Events.

This is the one object the notebook holds (``inv``): each notebook cell calls one of its methods. It never
prints; display methods return objects that Jupyter renders (HTML tables, plotly figures).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import custody
from workbench._version import __version__
from workbench.case import Case
from workbench.checks.integrity import check_artefacts, check_dependencies, check_model_integrity, hash_model_dir
from workbench.collect import EvidenceSet, collect_evidence
from workbench.errors import EvidenceError
from workbench.records import Event, Finding, Severity, now_utc
from workbench.timeparse import NAIVE_RULE

__all__ = ["Investigation", "verdict_of"]

#: categories that describe the evidence handling, not the incident; they do not decide the verdict
_PROCESS_CATEGORIES = {"evidence_malformed", "custody_violation", "signature_verified"}


def _severity_or(value: object, default: Severity) -> Severity:
    """A severity word from evidence, or ``default`` when it is missing or unknown."""
    try:
        return Severity.parse(value) if isinstance(value, str) and value else default
    except ValueError:
        return default


def verdict_of(findings: list[Finding]) -> tuple[str, list[str]]:
    """``("compromised" | "suspicious" | "clean", reasons)`` from the findings.

    compromised: at least one critical finding about the incident; suspicious: a high or medium one; clean: none.
    """
    relevant = [f for f in findings if f.category not in _PROCESS_CATEGORIES]
    crit = [f for f in relevant if f.severity is Severity.CRITICAL]
    if crit:
        return "compromised", [f.title for f in crit[:5]]
    warn = [f for f in relevant if f.severity in (Severity.HIGH, Severity.MEDIUM)]
    if warn:
        return "suspicious", [f.title for f in warn[:5]]
    return "clean", ["no finding above low severity"]


@dataclass(slots=True)
class Investigation:
    """State of one investigation run.

    Attributes:
        case: the opened evidence tree.
        out_dir: where every output goes (never inside the evidence).
        ledger: the custody ledger of this run.
        evidence: what the loaders made of the case.
        reference: known-good model folder (from ``--reference`` or the case), if any.
    """

    case: Case
    out_dir: Path
    ledger: custody.Ledger
    evidence: EvidenceSet
    reference: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    sections: dict[str, list[Finding]] = field(default_factory=dict)
    _verify: custody.VerifyResult | None = None

    @classmethod
    def open(cls, case_dir: str | Path, out_dir: str | Path | None = None, reference: str | Path | None = None):
        """Open a case, take custody (or reuse this run's ledger) and run every analysis.

        Args:
            case_dir: the evidence tree.
            out_dir: output folder (default: a new temporary folder); a ledger already there is reused.
            reference: known-good model folder; default: the case's reference model, if any.
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
        inv = cls(case=case, out_dir=out, ledger=ledger, evidence=collect_evidence(case), reference=ref)
        inv._analyse()
        return inv

    # ----------------------------------------------------------------------------------------------- analyses
    def _add(self, section: str, findings: list[Finding]) -> None:
        self.sections.setdefault(section, []).extend(findings)
        self.findings.extend(findings)

    def _analyse(self) -> None:
        self._add("evidence", self.evidence.findings)
        self._analyse_model()
        self._analyse_dependencies()
        self._collect_events()
        self.findings.sort(key=lambda f: (-f.severity.rank, f.category, f.title))

    def _analyse_model(self) -> None:
        suspect = self.case.model_dir("suspect")
        if suspect is None:
            self.sections.setdefault("model", [])
            return
        model_id = suspect.name
        rel = self.case.model_dirs["suspect"]
        found: list[Finding] = []
        if self.reference is not None:
            baseline = hash_model_dir(self.reference)
            found += check_model_integrity(
                suspect, baseline, model_id=model_id, display_prefix=rel, baseline_source="reference copy"
            )
        found += check_artefacts(suspect, model_id=model_id, display_prefix=rel)
        for marker in self.evidence.all("compromised_marker"):
            found.append(
                Finding.create(
                    severity=Severity.INFO,
                    category="model_marked_compromised",
                    detector="workbench.investigation",
                    title=f"{marker.path}: model marked compromised by the responders",
                    detail="Written by the containment step 'isolate'.",
                    evidence={"path": marker.path},
                )
            )
        self._add("model", found)

    def _analyse_dependencies(self) -> None:
        frozen = self.evidence.first("frozen_deps")
        config = self.evidence.first("monitor_config")
        baseline = (config.meta.get("baseline_dependencies") if config else None) or {}
        found: list[Finding] = []
        if frozen is not None and baseline:
            found = check_dependencies(frozen.frame, baseline, source=frozen.path)
        self._add("dependencies", found)

    def _collect_events(self) -> None:
        for loaded in self.evidence.all("actions_log"):
            for row in loaded.frame.itertuples(index=False):
                if row.timestamp is not None and str(row.timestamp) != "NaT":
                    self.events.append(
                        Event(
                            row.timestamp.to_pydatetime(),
                            loaded.path,
                            "ir:action",
                            row.message,
                            Severity.INFO,
                            extra={"line": int(row.line)},
                        )
                    )
        for loaded in self.evidence.all("monitor_alerts"):
            count = 0
            for row in loaded.frame.itertuples(index=False):
                if row.timestamp is None or str(row.timestamp) == "NaT":
                    continue
                count += 1
                sev = _severity_or(row.severity, Severity.INFO)
                msg = f"Monitor alert {row.type}: {row.model} {row.file or ''}".strip()
                self.events.append(
                    Event(
                        row.timestamp.to_pydatetime(),
                        loaded.path,
                        "ml:monitor:alert",
                        msg,
                        sev,
                        timestamp_desc="Alert Time",
                        extra={"line": int(row.line)},
                    )
                )
            if count:
                self._add(
                    "monitor",
                    [
                        Finding.create(
                            severity=Severity.LOW,
                            category="monitor_alert",
                            detector="workbench.investigation",
                            title=f"The integrity monitor raised {count} alert(s)",
                            detail="Alerts are leads, not conclusions: the analyses below confirm or refute them.",
                            evidence={"path": loaded.path, "alerts": count},
                        )
                    ],
                )
        for loaded in self.evidence.all("compromised_marker"):
            for row in loaded.frame.itertuples(index=False):
                if row.timestamp is not None and str(row.timestamp) != "NaT":
                    self.events.append(
                        Event(
                            row.timestamp.to_pydatetime(),
                            loaded.path,
                            "ir:marker",
                            "Model marked COMPROMISED",
                            Severity.INFO,
                        )
                    )
        start = self.ledger.entries[0]
        self.events.append(
            Event(
                datetime.fromisoformat(start["time"]),
                "custody.jsonl",
                "ir:custody:intake",
                f"Evidence intake: {start.get('files_expected', 0)} files hashed",
                Severity.INFO,
                timestamp_desc="Intake Time",
            )
        )
        self.events.sort(key=lambda e: e.timestamp)

    # ------------------------------------------------------------------------------------------------ results
    @property
    def verdict(self) -> tuple[str, list[str]]:
        return verdict_of(self.findings)

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
            "exposure": None,
            "naive_time_rule": NAIVE_RULE.format(tz=self.case.meta.naive_timezone),
            "warnings": [w.to_dict() for w in self.evidence.warnings],
        }

    def write_outputs(self) -> dict[str, Path]:
        """Write ``findings.json`` and ``timeline.jsonl`` (Timesketch rows) into the output folder.

        Returns:
            ``{"findings": path, "timeline": path}``.
        """
        doc = self.findings_document()
        findings_path = self.out_dir / "findings.json"
        findings_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        timeline_path = self.out_dir / "timeline.jsonl"
        with timeline_path.open("w", encoding="utf-8") as fh:
            for event in self.events:
                fh.write(json.dumps(event.to_timesketch(), sort_keys=True) + "\n")
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

        return present.findings_table(self.sections.get(section, []) if section else self.findings)

    def section(self, name: str):
        """One analysis section: its findings, or a note that the analysis has nothing to report (HTML)."""
        from workbench.report import present

        return present.section(self, name)

    def timeline_figure(self):
        """Events over time by source (plotly figure, UTC axis)."""
        from workbench.report import present

        return present.timeline_figure(self)

    def warnings_table(self):
        """Every recorded evidence warning: file, line, reason (HTML)."""
        from workbench.report import present

        return present.warnings_table(self)

    def outputs(self):
        """Write findings.json and timeline.jsonl and list them (HTML)."""
        from workbench.report import present

        return present.outputs(self.write_outputs())
