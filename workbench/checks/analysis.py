"""The monitor-alerts section: the integrity monitor's alerts as a lead for the other analyses."""

from __future__ import annotations

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.records import Finding, Severity

__all__ = ["analyse_monitor_alerts"]


def analyse_monitor_alerts(ctx: AnalysisContext) -> AnalysisResult:
    """The integrity monitor's alerts as one low finding: leads for the analyses, not conclusions."""
    result = AnalysisResult(section="monitor")
    files = ctx.evidence.all("monitor_alerts")
    result.inputs = [loaded.path for loaded in files]
    if not files:
        result.not_applicable = "no monitor alerts in the case"
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
