"""The "Model forensics" section: artefact scan, diff against the reference (or the manifest), signature check.

Combines :mod:`workbench.model.scan` (what each file is and whether it can execute code),
:mod:`workbench.model.dirdiff` (what changed, file by file and tensor by tensor) and
:mod:`workbench.model.signatures` (whether the model was validly signed and still matches its signature).
Nothing in the model folders is executed, imported or unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.analysis import AnalysisContext, AnalysisResult, describe_data_files
from workbench.errors import EvidenceError
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["analyse", "find_public_key", "render"]

DETECTOR = "workbench.model.analysis"


def find_public_key(ctx: AnalysisContext) -> Path | None:
    """The signer's public key: ``case.yaml public_key``, else the only ``keys/*.pub`` / ``*.pem`` in the case."""
    if ctx.case.meta.public_key:
        try:
            path = ctx.case.path(ctx.case.meta.public_key)
        except EvidenceError:
            return None
        return path if path.is_file() and not path.is_symlink() else None
    keys = [ctx.case.root / f.relpath for f in ctx.case.files
            if f.relpath.startswith("keys/") and f.relpath.endswith((".pub", ".pem"))]  # fmt: skip
    return keys[0] if len(keys) == 1 else None


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Scan the suspect model, diff it against the reference (or its signed manifest) and verify its signature.

    Reads the case's suspect and reference model folders, the public key, and COMPROMISED.txt markers.

    Returns:
        Section ``model``: findings from all three; ``data`` holds ``scan`` (ModelScan), ``diff`` (ModelDiff or
        None), ``signature`` (SignatureResult or None) and their frames ``model_files``, ``pickle_imports``,
        ``tensors``, ``files``, ``configs``, ``signature_files``.
    """
    from workbench.model.dirdiff import diff_model
    from workbench.model.scan import analyse as scan_analyse
    from workbench.model.signatures import verify_model_signature

    result = scan_analyse(ctx)
    suspect = ctx.case.model_dir("suspect")
    if suspect is None:
        return result
    rel = ctx.case.model_dirs["suspect"]
    model_id = suspect.name
    diff = None
    if ctx.reference is not None:
        ref_rel = ctx.case.model_dirs.get("reference") or str(ctx.reference)
        diff = diff_model(suspect, ctx.reference, model_id=model_id, display_prefix=rel, reference_prefix=ref_rel)
    elif (suspect / ".signatures" / "manifest.json").is_file():
        diff = diff_model(suspect, None, model_id=model_id, display_prefix=rel)
    key = find_public_key(ctx)
    key_rel = key.relative_to(ctx.case.root).as_posix() if key and ctx.case.root in key.parents else None
    signature = verify_model_signature(suspect, key, model_id=model_id, display_prefix=rel, key_display=key_rel)
    if diff is not None:
        result.findings += diff.findings
        result.warnings += diff.warnings
        result.data.update(tensors=diff.tensor_frame(), files=diff.file_frame(), configs=diff.config_frame())
    result.findings += signature.findings
    result.data.update(diff=diff, signature=signature, signature_files=signature.frame())
    result.data["rule_pack"] = describe_data_files(
        "pickle import policy", Path(__file__).with_name("pickle_policy.yaml")
    )
    result.findings += _marker_findings(ctx)
    result.findings = _dedupe(result.findings)
    if key is None and signature.scheme != "none":
        result.warnings.append(EvidenceWarning(rel, None, "no public key in the case (case.yaml public_key or keys/)"))
    modified = sum(1 for t in (diff.tensors if diff else []) if t.status != "identical")
    verdict = "valid" if signature.signature_valid else (signature.reason or "not verified")
    result.summary = (
        f"{result.summary} {modified} tensor(s) differ from the reference. Signature ({signature.scheme}): {verdict}."
    ).strip()
    return result


def _marker_findings(ctx: AnalysisContext) -> list[Finding]:
    return [
        Finding.create(
            severity=Severity.INFO,
            category="model_marked_compromised",
            detector=DETECTOR,
            title=f"{marker.path}: model marked compromised by the responders",
            detail="Written by the containment step 'isolate'; not part of the model.",
            evidence={"path": marker.path},
        )
        for marker in ctx.evidence.all("compromised_marker")
    ]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (category, path, tensor): the scan and the diff both see an added pickle, for example."""
    seen: dict[tuple[Any, ...], Finding] = {}
    for f in findings:
        key = (f.category, f.evidence.get("path"), f.evidence.get("tensor"), f.evidence.get("member"), f.title)
        if key not in seen or f.severity.rank > seen[key].severity.rank:
            seen[key] = f
    return list(seen.values())


def render(result: AnalysisResult) -> list[Any]:
    """Scan tables, the diff's charts (relative change by layer, heatmap of the most changed tensor), signature."""
    from workbench.model.plots import render_diff, render_signature
    from workbench.model.scan_render import render_scan

    items: list[Any] = list(render_scan(result))
    if result.data.get("diff") is not None:
        items += render_diff(result.data["diff"])
    if result.data.get("signature") is not None:
        items += render_signature(result.data["signature"])
    return items
