"""The monitor-alerts section: the integrity monitor's alerts, and a fleet sweep's record of the model, as leads for
the other analyses."""

from __future__ import annotations

from typing import Any

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.records import Finding, Severity

__all__ = ["analyse_monitor_alerts"]

#: the alert type a sweep record's verdict stands for (conclusions.verdict.ALERT_SECTIONS says what it suspects)
SWEEP_TYPES = {"compromised": "SWEEP_COMPROMISED", "suspicious": "SWEEP_SUSPICIOUS",
               "inconclusive": "SWEEP_INCONCLUSIVE", "clean": "SWEEP_CLEAN"}  # fmt: skip


def _sweep_lead(loaded: Any) -> Finding:
    meta, frame = loaded.meta, loaded.frame
    worst = [t for t in frame["title"].tolist()[:3]] if len(frame) else []
    shown = f": {'; '.join(worst)}" if worst else ""
    return Finding.create(
        severity=Severity.LOW, category="monitor_alert", detector="workbench.checks.analysis",
        title=f"The fleet sweep judged {meta['model'] or 'this model'} {meta['verdict']} ({len(frame)} finding(s))",
        detail=f"Sweep {meta.get('sweep')} (rules {meta.get('rules')}) of {meta.get('registry')}{shown}. A lead, not a "
               "conclusion: the analyses confirm or refute it.",
        evidence={"path": loaded.path, "alerts": 1, "types": SWEEP_TYPES[meta["verdict"]], "model": meta["model"]},
        atlas=("AML.T0010.003",),
    )  # fmt: skip


def analyse_monitor_alerts(ctx: AnalysisContext) -> AnalysisResult:
    """The integrity monitor's alerts as one low finding: leads for the analyses, not conclusions."""
    result = AnalysisResult(section="monitor")
    files = ctx.evidence.all("monitor_alerts")
    records = ctx.evidence.all("sweep_record")
    result.inputs = [loaded.path for loaded in files + records]
    if not files and not records:
        result.not_applicable = "no monitor alerts in the case"
    for loaded in records:
        result.findings.append(_sweep_lead(loaded))
    for loaded in files:
        count = len(loaded.frame)
        if not count:
            continue
        kinds = ", ".join(sorted({str(t) for t in loaded.frame["type"].dropna()}))
        result.findings.append(
            Finding.create(
                severity=Severity.LOW,
                category="monitor_alert",
                detector="workbench.checks.analysis",
                title=f"The integrity monitor raised {count} alert(s): {kinds}",
                detail="Alerts are leads, not conclusions: the analyses confirm or refute them.",
                evidence={"path": loaded.path, "alerts": count, "types": kinds.replace(", ", ",")},
                atlas=("AML.T0010.003",),
            )
        )
    return result
