"""``scan_model``: inventory, static pickle analysis and picklescan's opinion of one model folder (or file).

The library entry point behind ``workbench scan-model`` and the model section of the investigation. Returns a
:class:`ModelScan` holding the records, the findings, DataFrames for the notebook and the ``--json`` document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.hashing import sha256_file
from workbench.model.formats import PICKLE_KINDS
from workbench.model.inventory import Inventory, take_inventory
from workbench.model.limits import MIB, ScanLimits
from workbench.model.picklescan_opinion import Disagreement, PicklescanOpinion, compare_opinions, picklescan_opinion
from workbench.model.policy import ImportPolicy
from workbench.model.scan_findings import findings_for
from workbench.records import EvidenceWarning, Finding

if TYPE_CHECKING:
    from workbench.analysis import AnalysisContext, AnalysisResult
    from workbench.case import EvidenceFile
    from workbench.model_pairs import ModelPair

__all__ = ["ModelScan", "analyse", "scan_case", "scan_model", "scanned_folder", "scanned_inputs"]

#: zip-based kinds (picklescan reads their pickle members only)
ZIP_KINDS = {"pytorch_zip", "torchscript", "npz", "keras", "zip"}
#: dangerous files up to this size get a SHA-256 in their finding
HASH_DANGEROUS_UP_TO = 256 * MIB


@dataclass(slots=True)
class ModelScan:
    """The result of :func:`scan_model`.

    Attributes:
        inventory: artefacts, pickle reports, archive anomalies, code references, warnings.
        opinions: picklescan's opinion per file path (files with pickle content only).
        disagreements: per file path, where picklescan and the genops analysis differ.
        findings: every finding (see :mod:`workbench.model.scan_findings`).
    """

    inventory: Inventory
    opinions: dict[str, PicklescanOpinion] = field(default_factory=dict)
    disagreements: dict[str, list[Disagreement]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def warnings(self) -> list[EvidenceWarning]:
        return self.inventory.warnings

    @property
    def unexamined(self) -> list[str]:
        """What a cap or an unreadable file left unexamined (``"path [member]: reason"``)."""
        return self.inventory.unexamined

    @property
    def limits(self) -> list[str]:
        """Checks done only in part (see :attr:`Inventory.limits`)."""
        return self.inventory.limits

    def files_frame(self) -> pd.DataFrame:
        """One row per file and examined archive member.

        Columns: ``path`` str, ``member`` str or None, ``kind`` str, ``declared`` str or None, ``size`` Int64,
        ``dangerous`` bool, ``why`` str, ``coverage`` str (``analysed``, ``partially analysed: why``, ``not
        analysed: why``).
        """
        cols = ["path", "member", "kind", "declared", "size", "dangerous", "why", "coverage"]
        df = pd.DataFrame([{c: getattr(a, c) for c in cols} for a in self.inventory.artefacts], columns=cols)
        return df.astype({"size": "Int64", "dangerous": bool})

    def imports_frame(self) -> pd.DataFrame:
        """One row per imported global: ``path``, ``member``, ``stream`` Int64, ``offset`` Int64, ``opcode``,
        ``import`` (module.name), ``safety`` (ordered categorical dangerous > unknown > safe), ``rule``, ``note``."""
        rows = [
            {
                "path": p,
                "member": i.member,
                "stream": i.stream,
                "offset": i.offset,
                "opcode": i.opcode,
                "import": i.qualified,
                "safety": i.safety,
                "rule": i.rule,
                "note": i.note,
            }
            for p, r in self.inventory.pickles
            for i in r.imports
        ]
        df = pd.DataFrame(
            rows, columns=["path", "member", "stream", "offset", "opcode", "import", "safety", "rule", "note"]
        )
        df["safety"] = df["safety"].astype(pd.CategoricalDtype(["dangerous", "unknown", "safe"], ordered=True))
        return df.astype({"stream": "Int64", "offset": "Int64"})

    def calls_frame(self) -> pd.DataFrame:
        """Calls to anything not known-safe: ``path``, ``member``, ``stream``, ``offset`` Int64, ``opcode``,
        ``callee``, ``safety``, ``call`` (rendered text, never executed)."""
        rows = [
            {
                "path": p,
                "member": c.member,
                "stream": c.stream,
                "offset": c.offset,
                "opcode": c.opcode,
                "callee": c.callee,
                "safety": c.safety,
                "call": c.text,
            }
            for p, r in self.inventory.pickles
            for c in r.calls
        ]
        df = pd.DataFrame(rows, columns=["path", "member", "stream", "offset", "opcode", "callee", "safety", "call"])
        return df.astype({"stream": "Int64", "offset": "Int64"})

    def anomalies_frame(self) -> pd.DataFrame:
        """Archive anomalies: ``path``, ``member``, ``kind``, ``detail``."""
        rows = [
            {"path": p, "member": a.member, "kind": a.kind, "detail": a.detail} for p, a in self.inventory.anomalies
        ]
        return pd.DataFrame(rows, columns=["path", "member", "kind", "detail"])

    def code_frame(self) -> pd.DataFrame:
        """Code references: ``path``, ``member``, ``kind``, ``severity``, ``line`` Int64, ``summary``."""
        rows = [
            {
                "path": c.path,
                "member": c.member,
                "kind": c.ref.kind,
                "severity": c.ref.severity,
                "line": c.ref.line,
                "summary": c.ref.summary,
            }
            for c in self.inventory.code
        ]
        return pd.DataFrame(rows, columns=["path", "member", "kind", "severity", "line", "summary"]).astype(
            {"line": "Int64"}
        )

    def disagreements_frame(self) -> pd.DataFrame:
        """Where picklescan and the genops analysis differ: ``path``, ``import``, ``ours``, ``theirs``, ``note``."""
        rows = [
            {"path": p, "import": d.name, "ours": d.ours, "theirs": d.theirs, "note": d.note}
            for p, items in self.disagreements.items()
            for d in items
        ]
        return pd.DataFrame(rows, columns=["path", "import", "ours", "theirs", "note"])

    def to_json(self) -> dict[str, Any]:
        """The ``scan-model --json`` document: ``findings``, ``files`` (one per file, each and each member with its
        ``coverage``), ``warnings``, ``unexamined`` (every gap, ``"path [member]: reason"``) and ``coverage``
        (``complete`` or ``partial``: partial when anything was left unexamined)."""
        files = []
        for art in (a for a in self.inventory.artefacts if a.member is None):
            reports = [r for p, r in self.inventory.pickles if p == art.path]
            opinion = self.opinions.get(art.path)
            files.append(
                {
                    "path": art.path,
                    "kind": art.kind,
                    "dangerous": art.dangerous,
                    "size": art.size,
                    "why": art.why,
                    "coverage": art.coverage,
                    "imports": [
                        {
                            "name": i.qualified,
                            "class": i.safety,
                            "offset": i.offset,
                            "member": i.member,
                            "stream": i.stream,
                            "opcode": i.opcode,
                        }
                        for r in reports
                        for i in r.imports
                    ],
                    "calls": [
                        {"call": c.text, "offset": c.offset, "member": c.member} for r in reports for c in r.calls
                    ],
                    "members": [
                        {
                            "member": m.member,
                            "kind": m.kind,
                            "dangerous": m.dangerous,
                            "why": m.why,
                            "coverage": m.coverage,
                        }
                        for m in self.inventory.artefacts
                        if m.path == art.path and m.member is not None
                    ],
                    "picklescan": None
                    if opinion is None
                    else {
                        "ran": opinion.ran,
                        "error": opinion.error,
                        "scan_error": opinion.scan_error,
                        "globals": [{"name": n, "class": s} for n, s in opinion.globals],
                    },
                    "disagreements": [
                        {"name": d.name, "ours": d.ours, "theirs": d.theirs, "note": d.note}
                        for d in self.disagreements.get(art.path, [])
                    ],
                }
            )
        return {
            "findings": [f.to_dict() for f in self.findings],
            "files": files,
            "warnings": [w.to_dict() for w in self.warnings],
            "unexamined": list(self.unexamined),
            "coverage": "partial" if self.unexamined else "complete",
        }


def scan_model(
    path: str | Path,
    *,
    display_prefix: str = "",
    limits: ScanLimits | None = None,
    policy: ImportPolicy | None = None,
    use_picklescan: bool = True,
    known_digests: Mapping[str, str] | None = None,
    files: Iterable[EvidenceFile] | None = None,
    outside_models: bool = False,
) -> ModelScan:
    """Scan a model folder (or one artefact): classify files, analyse pickles, ask picklescan, build findings.

    Args:
        path: model folder or file (read-only; symlinks are not followed).
        display_prefix: prepended to paths in records and findings (the folder's place in a case).
        limits: caps (defaults in :class:`~workbench.model.limits.ScanLimits`).
        policy: pickle import policy (the shipped ``pickle_policy.yaml`` by default).
        use_picklescan: ask picklescan for its opinion on files with pickle content.
        known_digests: SHA-256 digests already established (the custody intake's), keyed by displayed path
            (``display_prefix`` + relative path, i.e. relative to the case); a dangerous file found there is not
            read again to be hashed for its finding.
        files: scan only these inventoried files of the folder ``path`` (see :func:`take_inventory`).
        outside_models: the files lie outside the model folders (severity of code files, see
            :func:`~workbench.model.scan_findings.findings_for`).

    Returns:
        The :class:`ModelScan`.

    Raises:
        EvidenceError: ``path`` does not exist or is a symlink.
    """
    limits = limits or ScanLimits()
    files = list(files) if files is not None else None
    inv = take_inventory(path, display_prefix=display_prefix, limits=limits, policy=policy, files=files)
    scan = ModelScan(inv)
    root = Path(path)
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    on_disk = {f.relpath: f.fs_relpath for f in files} if files is not None else {}
    bombs = {p for p, a in inv.anomalies if a.kind == "decompression_bomb"}
    hashes: dict[str, str] = {}
    for art in (a for a in inv.artefacts if a.member is None and a.dangerous):
        rel = art.path[len(prefix) :]
        abs_path = root if root.is_file() else root / on_disk.get(rel, rel)
        if known_digests and art.path in known_digests:
            hashes[art.path] = known_digests[art.path]
        elif art.size <= HASH_DANGEROUS_UP_TO:
            try:
                hashes[art.path] = sha256_file(abs_path)[0]
            except OSError as exc:
                inv.warnings.append(EvidenceWarning(art.path, None, f"cannot hash: {exc.strerror or exc}"))
        pickled = art.kind in PICKLE_KINDS or art.details.get("has_object") or art.details.get("pickle_members")
        if not (use_picklescan and pickled):
            continue
        # picklescan holds a stream's opcodes in memory: raw pickles are capped by size; from zips it reads only the
        # pickle members (bombs are excluded above)
        too_big = art.kind not in ZIP_KINDS and art.size > limits.picklescan_max_bytes
        if art.path in bombs or too_big:
            reason = "not run: file over the size cap or a decompression bomb"
            scan.opinions[art.path] = PicklescanOpinion((), False, reason, ran=False)
            inv.limits.append(f"{art.path}: picklescan's second opinion {reason}")
            continue
        opinion = picklescan_opinion(abs_path, display=art.path)
        scan.opinions[art.path] = opinion
        if opinion.error and not opinion.ran:
            inv.limits.append(f"{art.path}: picklescan's {opinion.error}")
        elif opinion.error:
            inv.warnings.append(EvidenceWarning(art.path, None, f"picklescan failed: {opinion.error}"))
        reports = [r for p, r in inv.pickles if p == art.path]
        scan.disagreements[art.path] = compare_opinions([i for r in reports for i in r.imports], opinion, reports)
    for p, report in inv.pickles:
        for problem in report.problems:
            where = f"member {report.member}: " if report.member else ""
            inv.warnings.append(EvidenceWarning(p, None, f"{where}pickle: {problem}"))
    scan.findings = findings_for(inv.artefacts, inv.pickles, inv.anomalies, inv.code, scan.disagreements, hashes,
                                 outside_models=outside_models)  # fmt: skip
    return scan


def scanned_folder(pair: ModelPair) -> str | None:
    """The folder of a pair the artefact scan reads: its suspect, or the reference when there is no suspect."""
    return pair.suspect or pair.reference


def scan_case(ctx: AnalysisContext) -> dict[str, ModelScan]:
    """Scan every model folder of the case once (each pair's suspect, and reference folders with no suspect), then
    every file outside the model folders (:func:`workbench.model.loose.scan_outside_models`).

    Paired reference folders are the baseline of the diff, not scanned. Dangerous files' digests come from
    ``ctx.intake_hashes`` when the intake has them.

    Returns:
        ``{folder relative to the case: ModelScan}``, the primary pair's folder first; the scan of the files outside
        the model folders last, under :data:`~workbench.model.loose.OUTSIDE_MODELS`, when any of them needed one.
    """
    from workbench.model.loose import OUTSIDE_MODELS, scan_outside_models

    scans: dict[str, ModelScan] = {}
    for pair in ctx.case.model_pairs:
        folder = scanned_folder(pair)
        if folder is not None and folder not in scans:
            scans[folder] = scan_model(ctx.case.fs_path(folder), display_prefix=folder,
                                       known_digests=ctx.intake_hashes)  # fmt: skip
    outside = scan_outside_models(ctx.case, known_digests=ctx.intake_hashes)
    if outside is not None:
        scans[OUTSIDE_MODELS] = outside
    return scans


def summarise(scan: ModelScan) -> str:
    """One sentence: artefacts classified, how many of a dangerous type, dangerous pickle imports."""
    dangerous = sum(a.dangerous for a in scan.inventory.artefacts if a.member is None)
    return (
        f"{len(scan.inventory.artefacts)} model artefacts classified, {dangerous} of a dangerous type, "
        f"{sum(f.category == 'pickle_dangerous_import' for f in scan.findings)} dangerous pickle imports."
    )


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Scan every model folder of the case (:func:`scan_case`).

    Returns:
        An ``AnalysisResult`` for section ``model`` with every scan's findings and warnings; ``data`` holds ``scan``
        (the primary pair's :class:`ModelScan`), its frames ``model_files``, ``pickle_imports``, ``pickle_calls``,
        and ``scans`` (every folder's scan). ``not_applicable`` is set when the case has no model folder.
    """
    from workbench.analysis import AnalysisResult

    scans = scan_case(ctx)
    if not scans:
        return AnalysisResult(section="model", summary="No model folder in the case; no artefact scan.",
                              not_applicable="no model folder in the case")  # fmt: skip
    primary = next(iter(scans.values()))
    others = len(scans) - 1
    summary = summarise(primary) + (f" {others} other model folder(s) scanned." if others else "")
    return AnalysisResult(
        section="model",
        findings=[f for scan in scans.values() for f in scan.findings],
        warnings=[w for scan in scans.values() for w in scan.warnings],
        summary=summary,
        data={
            "scan": primary,
            "model_files": primary.files_frame(),
            "pickle_imports": primary.imports_frame(),
            "pickle_calls": primary.calls_frame(),
            "scans": scans,
        },
        inputs=scanned_inputs(ctx, scans),
        unexamined=[u for scan in scans.values() for u in scan.unexamined],
        limits=[x for scan in scans.values() for x in scan.limits],
    )


def scanned_inputs(ctx: AnalysisContext, scans: Mapping[str, ModelScan]) -> list[str]:
    """The case files the scans read: every file of the scanned model folders, and every file outside the model
    folders (each was sniffed) when the case's files outside them were swept."""
    from workbench.model.loose import OUTSIDE_MODELS, outside_files

    prefixes = tuple(d + "/" for d in scans if d != OUTSIDE_MODELS)
    inside = [f.relpath for f in ctx.case.files if f.relpath.startswith(prefixes)] if prefixes else []
    return sorted(set(inside).union(f.relpath for f in outside_files(ctx.case)))
