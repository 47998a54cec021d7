"""Sections built from the original playbook's checks (used until the deeper analyses replace them)."""

from __future__ import annotations

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.checks.integrity import check_artefacts, check_dependencies, check_model_integrity, hash_model_dir
from workbench.records import Finding, Severity

__all__ = ["analyse_model_files"]


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


def analyse_dependency_baseline(ctx: AnalysisContext) -> AnalysisResult:
    """Installed packages (frozen_deps.txt) against the monitor configuration's ``baseline_dependencies``."""
    result = AnalysisResult(section="dependencies")
    frozen = ctx.evidence.first("frozen_deps")
    config = ctx.evidence.first("monitor_config")
    baseline = (config.meta.get("baseline_dependencies") if config else None) or {}
    if frozen is not None and baseline:
        result.findings = check_dependencies(frozen.frame, baseline, source=frozen.path)
    return result
