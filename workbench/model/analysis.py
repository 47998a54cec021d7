"""The "Model forensics" section: for every model of the case, artefact scan, diff against the reference (or the
manifest), signature check.

Models are the case's :class:`~workbench.model_pairs.ModelPair` objects (suspect and reference folders matched by
name, see :mod:`workbench.model_pairs`); each is analysed by :mod:`workbench.model.pair_analysis`. Combines
:mod:`workbench.model.scan` (what each file is and whether it can execute code), :mod:`workbench.model.dirdiff`
(what changed, file by file and tensor by tensor) and :mod:`workbench.model.signatures` (whether the model was
validly signed and still matches its signature). Nothing in the model folders is executed, imported or unpickled.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from workbench.analysis import AnalysisContext, AnalysisResult, describe_data_files
from workbench.model.case_trust import find_trust
from workbench.model.pair_analysis import FolderDigests, PairResult, analyse_pair
from workbench.model_pairs import ModelPair
from workbench.parameters import value as option
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["analyse", "pairs_frame", "render"]

DETECTOR = "workbench.model.analysis"


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Scan every model folder, diff each pair against its reference (or its signed manifest), verify signatures.

    Every :class:`~workbench.model_pairs.ModelPair` of the case is analysed (:func:`analyse_pair`); a folder with no
    counterpart is scanned and signature-checked and says so in a warning (report and ``findings.json``). A
    ``--reference`` (``ctx.reference``) replaces the primary pair's reference only. File digests come from
    ``ctx.intake_hashes`` where the intake has them; each folder is hashed at most once per call otherwise.

    Reads the case's model folders, the public key, and COMPROMISED.txt markers.

    Returns:
        Section ``model``: every pair's findings; ``data`` holds, for the primary pair, ``scan`` (ModelScan),
        ``diff`` (ModelDiff or None), ``signature`` (SignatureResult or None) and their frames ``model_files``,
        ``pickle_imports``, ``pickle_calls``, ``tensors``, ``files``, ``configs``, ``signature_files``; ``pairs``
        (a :class:`PairResult` per pair, primary first) and ``model_pairs`` (their table, see :func:`pairs_frame`).
        ``inputs`` lists every file of the analysed folders and the key; ``not_applicable`` is set when the case
        has no model folder.
    """
    from workbench.model.loose import OUTSIDE_MODELS
    from workbench.model.scan import scan_case, scanned_folder, scanned_inputs, summarise

    pairs = list(ctx.case.model_pairs)
    scans = scan_case(ctx)
    outside = scans.get(OUTSIDE_MODELS)
    if not pairs:
        return _no_model_folder(ctx, outside)
    params = ctx.parameters
    trust, trust_warnings = find_trust(ctx, {
        "key": option(params, "public_key"), "ca_bundle": option(params, "ca_bundle"),
        "trusted_root": option(params, "trusted_root"), "signature": option(params, "signature"),
        "identity": option(params, "signer_identity"), "issuer": option(params, "signer_issuer")})  # fmt: skip
    digests = FolderDigests(ctx.intake_hashes)
    done = [
        analyse_pair(ctx, pair, scan=scans.get(scanned_folder(pair) or ""), digests=digests, trust=trust,
                     hint=_hint(pair, pairs))
        for pair in pairs
    ]  # fmt: skip
    result = AnalysisResult(section="model", warnings=trust_warnings)
    for scan in scans.values():
        result.findings += scan.findings
        result.warnings += scan.warnings
        result.unexamined += scan.unexamined
        result.limits += scan.limits
    for pr in done:
        result.findings += pr.findings
        result.warnings += pr.warnings
        result.unexamined += pr.unexamined
        result.limits += pr.limits
    primary = done[0]
    result.data.update(scan=primary.scan, diff=primary.diff, signature=primary.signature, **primary.frames())
    result.data.update(pairs=done, model_pairs=pairs_frame(done), outside_scan=outside)
    result.data["rule_pack"] = describe_data_files(
        "pickle import policy", Path(__file__).with_name("pickle_policy.yaml")
    )
    result.findings += _marker_findings(ctx)
    result.findings = _dedupe(result.findings)
    result.unexamined += digests.unexamined  # files the digest walks could not take in (a --reference too)
    result.unexamined = list(dict.fromkeys(result.unexamined))  # the scan and the diff walk the same folder
    prefixes = tuple(folder + "/" for pr in done for folder in pr.folders_read)
    inputs = {f.relpath for f in ctx.case.files if f.relpath.startswith(prefixes)} | set(scanned_inputs(ctx, {}))
    trust_files = {trust.shown[n] for n in ("key", "ca_bundle", "trusted_root", "signature")
                   if getattr(trust, n) is not None and ctx.case.root in getattr(trust, n).parents}  # fmt: skip
    result.inputs = sorted(inputs | trust_files)
    for pr in done:
        if pr.pair.suspect and pr.compared_with == "nothing":
            result.limits.append(f"{pr.name} was not compared (no reference copy and no signed manifest): edited "
                                 "weights or replaced files could not be seen")  # fmt: skip
    scan_text = summarise(primary.scan) if primary.scan is not None else ""
    result.summary = f"{scan_text} {_pair_sentence(primary)}".strip()
    if len(done) > 1:
        result.summary += (
            f" {len(done) - 1} other model(s): "
            + "; ".join(f"{pr.name}: {_pair_sentence(pr, short=True)}" for pr in done[1:])
            + "."
        )
    if outside is not None:
        result.summary += " " + _outside_sentence(outside)
    return result


def _outside_sentence(scan: Any) -> str:
    """What the scan of the files outside the model folders found, in one sentence."""
    top = [a for a in scan.inventory.artefacts if a.member is None]
    dangerous = sum(a.dangerous for a in top)
    return (f"Outside the model folders, {len(top)} file(s) are models, archives, compressed data or code by their "
            f"content, {dangerous} of a type that can execute code.")  # fmt: skip


def _no_model_folder(ctx: AnalysisContext, outside: Any) -> AnalysisResult:
    """The section when the case has no model folder: what the sweep of the other files found, if anything.

    The section stays ``not_applicable`` (no model could be examined) unless the sweep left something unexamined,
    which makes it ``partial``; its findings count either way.
    """
    from workbench.model.scan import scanned_inputs

    result = AnalysisResult(section="model", summary="No model folder in the case; no artefact scan.",
                            not_applicable="no model folder in the case")  # fmt: skip
    if ctx.reference is not None:
        result.warnings.append(EvidenceWarning(str(ctx.reference), None, "reference given but the case has no "
                                               "model folder to compare with it: not used"))  # fmt: skip
    result.inputs = scanned_inputs(ctx, {})  # every file was sniffed
    if outside is None:
        return result
    result.findings = _dedupe(list(outside.findings))
    result.warnings += outside.warnings
    result.unexamined = list(outside.unexamined)
    result.limits = list(outside.limits)
    result.summary = f"No model folder in the case. {_outside_sentence(outside)}"
    result.data.update(outside_scan=outside)
    if result.unexamined:
        result.not_applicable = None
    return result


def _pair_sentence(pr: PairResult, *, short: bool = False) -> str:
    """What the diff and the signature check said about one pair, in one sentence."""
    if pr.diff is None:
        compared = "not compared (no reference copy)" if pr.pair.suspect else "reference copy with no suspect"
    elif pr.compared_with == "reference copy":
        compared = f"{pr.tensors_differing} tensor(s) differ from the reference"
    else:
        compared = f"{pr.files_differing} file(s) differ from the signed manifest"
    scheme = pr.signature.scheme if pr.signature else "none"
    if short:
        return f"{compared}, signature ({scheme}) {pr.signature_state()}"
    return f"{compared[0].upper()}{compared[1:]}. Signature ({scheme}): {pr.signature_state()}."


def _hint(pair: ModelPair, pairs: list[ModelPair]) -> str:
    """For a folder with no counterpart: the unpaired folders on the other side, and a near-miss by letter case."""
    if pair.status == "paired":
        return ""
    other_side = [p.reference if pair.suspect else p.suspect for p in pairs if p.status != "paired" and p != pair]
    other_side = [f for f in other_side if f]
    if not other_side:
        return ""
    mine = PurePosixPath(pair.suspect or pair.reference or "").name
    near = [f for f in other_side if PurePosixPath(f).name.lower() == mine.lower()]
    if near:
        return (f"; {near[0]} differs only in letter case (folders are matched case-sensitively): set case.yaml "
                "suspect_model and reference_model to pair them")  # fmt: skip
    return f"; unpaired on the other side: {', '.join(other_side[:5])}"


def pairs_frame(pairs: list[PairResult]) -> pd.DataFrame:
    """One row per model pair, primary first.

    Columns: ``model``, ``status`` (``paired`` / ``suspect_only`` / ``reference_only``), ``suspect``,
    ``reference``, ``compared_with``, ``signature``, ``note`` (str or None); ``primary`` bool;
    ``files_differing``, ``tensors_differing``, ``findings`` (Int64; NA when not compared).
    """
    cols = ["model", "primary", "status", "suspect", "reference", "compared_with", "files_differing",
            "tensors_differing", "signature", "findings", "note"]  # fmt: skip
    df = pd.DataFrame([pr.row() for pr in pairs], columns=cols)
    return df.astype({"primary": bool, "files_differing": "Int64", "tensors_differing": "Int64",
                      "findings": "Int64"})  # fmt: skip


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
    """The primary pair's scan tables, diff charts (relative change by layer, heatmap of the most changed tensor) and
    signature; then, when the case holds several models, a table of every pair and one sub-heading per other pair
    with its own scan, diff and signature tables; last, the scan of the files outside the model folders, if any."""
    from workbench.htmlkit import html_table, text
    from workbench.model.plots import render_diff, render_signature
    from workbench.model.scan_render import render_scan

    pairs: list[PairResult] = list(result.data.get("pairs") or [])
    items: list[Any] = []
    if len(pairs) > 1:
        frame = result.data.get("model_pairs")
        frame = frame if isinstance(frame, pd.DataFrame) else pairs_frame(pairs)
        items.append(f"<h4>Model folders ({len(pairs)})</h4><p>Each suspect folder is compared with the reference "
                     "folder of the same name; the first row is the primary model, shown first.</p>"
                     + html_table(frame.assign(primary=frame["primary"].map({True: "yes", False: ""})),
                                  mono=("suspect", "reference")))  # fmt: skip
    if pairs:
        items.append(f"<h3>Model {text(pairs[0].name)}</h3>")
        if pairs[0].note:
            items.append(f'<p class="wb-note">{text(pairs[0].note)}.</p>')
    items += render_scan(result)
    if result.data.get("diff") is not None:
        items += render_diff(result.data["diff"])
    if result.data.get("signature") is not None:
        items += render_signature(result.data["signature"])
    for pr in pairs[1:]:
        items.append(f"<h3>Model {text(pr.name)}</h3>")
        if pr.note:
            items.append(f'<p class="wb-note">{text(pr.note)}.</p>')
        if pr.scan is not None:
            items += render_scan(pr.scan)
        if pr.diff is not None:
            items += render_diff(pr.diff)
        if pr.signature is not None:
            items += render_signature(pr.signature)
    if result.data.get("outside_scan") is not None:
        items.append("<h3>Files outside the model folders</h3><p>Every other file of the case was sniffed; these are "
                     "models, archives, compressed data or code by their content and were scanned like model "
                     "files.</p>")  # fmt: skip
        items += render_scan(result.data["outside_scan"])
    return items
