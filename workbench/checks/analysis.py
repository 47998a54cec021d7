"""Sections built from the original playbook's checks (used until the deeper analyses replace them)."""

from __future__ import annotations

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.checks.integrity import check_artefacts, check_model_integrity, hash_model_dir
from workbench.records import Finding, Severity

__all__ = ["analyse_model_files", "analyse_monitor_alerts"]


def analyse_model_files(ctx: AnalysisContext) -> AnalysisResult:
    """The suspect model folder against the reference copy, dangerous file types, signature presence, markers.

    Reads the case's suspect and reference model folders and any COMPROMISED.txt marker.
    """
    result = AnalysisResult(section="model")
    suspect = ctx.case.model_dir("suspect")
    if suspect is None:
        result.summary = "The case holds no suspect model folder."
        return result
    model_id = suspect.name
    rel = ctx.case.model_dirs["suspect"]
    if ctx.reference is not None:
        baseline = hash_model_dir(ctx.reference)
        result.findings += check_model_integrity(
            suspect, baseline, model_id=model_id, display_prefix=rel, baseline_source="reference copy"
        )
    result.findings += check_artefacts(suspect, model_id=model_id, display_prefix=rel)
    for marker in ctx.evidence.all("compromised_marker"):
        result.findings.append(
            Finding.create(
                severity=Severity.INFO,
                category="model_marked_compromised",
                detector="workbench.checks.analysis",
                title=f"{marker.path}: model marked compromised by the responders",
                detail="Written by the containment step 'isolate'.",
                evidence={"path": marker.path},
            )
        )
    return result


def analyse_monitor_alerts(ctx: AnalysisContext) -> AnalysisResult:
    """The integrity monitor's alerts as one low finding: leads for the analyses, not conclusions."""
    result = AnalysisResult(section="monitor")
    for loaded in ctx.evidence.all("monitor_alerts"):
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
                evidence={"path": loaded.path, "alerts": count},
                atlas=("AML.T0010.003",),
            )
        )
    return result
