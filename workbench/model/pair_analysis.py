"""One model pair analysed: its folder scanned, diffed against its reference (or signed manifest), signature checked.

:func:`analyse_pair` is called by :func:`workbench.model.analysis.analyse` once per :class:`ModelPair` of the case.
Each folder's file digests are established once per analysis call (:class:`FolderDigests`: the custody intake's
digests, hashing only what the intake did not cover) and handed to both the diff and the signature check.
Nothing in the model folders is executed, imported or unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.categories import categories_of
from workbench.checks.integrity import hash_model_dir, known_digests
from workbench.errors import WorkbenchError
from workbench.model_pairs import REFERENCE_LOCATION, SUSPECT_LOCATION, ModelPair
from workbench.records import EvidenceWarning, Finding, Severity

if TYPE_CHECKING:
    from workbench.analysis import AnalysisContext
    from workbench.model.dirdiff import ModelDiff
    from workbench.model.scan import ModelScan
    from workbench.model.signatures import SignatureResult
    from workbench.model.trust import Trust

__all__ = ["FolderDigests", "PairResult", "analyse_pair"]

#: signature findings that only say "provenance unknown"; for a reference folder with no suspect they are low
_PROVENANCE = categories_of("provenance")


class FolderDigests:
    """``{relative path: sha256}`` per model folder, computed at most once per analysis call.

    Digests come from the custody intake (``intake_hashes``, case-relative) for folders inside the case; only files
    the intake did not cover are read (see :func:`~workbench.checks.integrity.hash_model_dir`).
    """

    def __init__(self, intake_hashes: Mapping[str, str]) -> None:
        self._intake = intake_hashes
        self._done: dict[Path, dict[str, str]] = {}
        #: files the folder walks could not take in (``"folder/path: reason"``), for the section's ``unexamined``
        self.unexamined: list[str] = []

    def of(self, folder: Path, case_rel: str | None) -> dict[str, str]:
        """Digests of ``folder`` (``case_rel``: its path in the case, or None when it lies outside the case)."""
        if folder not in self._done:
            known = known_digests(self._intake, case_rel) if case_rel is not None else {}
            missed: list[str] = []
            self._done[folder] = hash_model_dir(folder, known, missed)
            shown = case_rel if case_rel is not None else str(folder)
            self.unexamined += [f"{shown}/{item}" for item in missed]
        return self._done[folder]


@dataclass(slots=True)
class PairResult:
    """What the analysis made of one model pair.

    Attributes:
        pair: the pair (folders relative to the case).
        suspect / reference: the folders as displayed (case-relative; a ``--reference`` outside the case as given).
        compared_with: ``reference copy``, ``signature manifest`` or ``nothing``.
        scan / diff / signature: the artefact scan, the diff (None when not compared), the signature check.
        note: one sentence on what could not be done (no counterpart, no reference), "" when everything ran.
        findings / warnings: this pair's records.
        folders_read: the case folders the analysis read for this pair (a ``--reference`` outside the case is not
            evidence and is not listed).
        unexamined: what a cap left uncompared (see :attr:`ModelDiff.unexamined`).
        limits: softer notes of the diff (formats compared across, sharding indexes, tied names).
    """

    pair: ModelPair
    suspect: str | None
    reference: str | None
    compared_with: str = "nothing"
    scan: ModelScan | None = None
    diff: ModelDiff | None = None
    signature: SignatureResult | None = None
    note: str = ""
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    folders_read: list[str] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.pair.name

    def frames(self) -> dict[str, pd.DataFrame]:
        """The pair's tables under the model section's keys (``tensors``, ``files``, ``configs``,
        ``signature_files``, ``model_files``, ``pickle_imports``, ``pickle_calls``), those that apply."""
        out: dict[str, pd.DataFrame] = {}
        if self.scan is not None:
            out.update(model_files=self.scan.files_frame(), pickle_imports=self.scan.imports_frame(),
                       pickle_calls=self.scan.calls_frame())  # fmt: skip
        if self.diff is not None:
            out.update(tensors=self.diff.tensor_frame(), files=self.diff.file_frame(),
                       configs=self.diff.config_frame())  # fmt: skip
        if self.signature is not None:
            out["signature_files"] = self.signature.frame()
        return out

    @property
    def tensors_differing(self) -> int:
        return sum(1 for t in (self.diff.tensors if self.diff else []) if t.status != "identical")

    @property
    def files_differing(self) -> int:
        return sum(1 for e in (self.diff.files.entries if self.diff else []) if e.status != "identical")

    def signature_state(self) -> str:
        """``valid``, the reason it is not, or ``not checked``."""
        if self.signature is None:
            return "not checked"
        return "valid" if self.signature.signature_valid else (self.signature.reason or "not verified")

    def row(self) -> dict[str, Any]:
        """One row of the model-pairs table (see :func:`workbench.model.analysis.pairs_frame`)."""
        return {"model": self.name, "primary": self.pair.primary, "status": self.pair.status,
                "suspect": self.suspect, "reference": self.reference, "compared_with": self.compared_with,
                "files_differing": self.files_differing if self.diff else None,
                "tensors_differing": self.tensors_differing if self.diff else None,
                "signature": f"{self.signature.scheme}: {self.signature_state()}" if self.signature else None,
                "findings": len(self.findings), "note": self.note}  # fmt: skip


def _case_rel(root: Path, path: Path) -> str | None:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if root in resolved.parents else None


def _reference(ctx: AnalysisContext, pair: ModelPair) -> tuple[Path | None, str | None, str | None]:
    """``(folder, path in the case or None, displayed)``: ``--reference`` replaces the primary pair's reference."""
    root = ctx.case.root
    if pair.primary and pair.suspect and ctx.reference is not None:
        given = Path(ctx.reference)
        rel = _case_rel(root, given)
        return given, rel, rel or str(given)
    if pair.reference:
        return root / pair.reference, pair.reference, pair.reference
    return None, None, None


def analyse_pair(
    ctx: AnalysisContext,
    pair: ModelPair,
    *,
    scan: ModelScan | None,
    digests: FolderDigests,
    trust: Trust,
    hint: str = "",
) -> PairResult:
    """Diff and signature-check one pair (its scan is done by :func:`workbench.model.scan.scan_case`).

    Reads the pair's folders (the reference only through the intake digests and the tensor and config diff), the
    trust files and the signature files.

    Args:
        ctx: the :class:`~workbench.analysis.AnalysisContext` (``case``, ``reference``, ``intake_hashes``).
        pair: the pair.
        scan: the scan of the pair's scanned folder.
        digests: the analysis call's folder digests (shared by every pair).
        trust: the case's trust material (:func:`~workbench.model.case_trust.find_trust`); its ``signature``
            (a signature kept outside the folder) applies to the primary pair only.
        hint: appended to the "no counterpart" warning (e.g. a folder whose name differs only in case).

    Returns:
        The :class:`PairResult`; a pair that could not be compared says why in ``note`` and in a warning.
    """
    from workbench.model.dirdiff import diff_model
    from workbench.model.signatures import verify_model_signature

    root = ctx.case.root
    ref_path, ref_rel, ref_shown = _reference(ctx, pair)
    out = PairResult(pair, pair.suspect, ref_shown, scan=scan)
    folder = pair.suspect or pair.reference
    if folder is None:  # pragma: no cover - a pair always has a folder
        return out
    folder_path = root / folder
    out.folders_read.append(folder)
    manifest = folder_path / ".signatures" / "manifest.json"
    signed_manifest = manifest.is_file() and not manifest.is_symlink()
    base = PurePosixPath(folder).name
    if pair.suspect is None:
        out.note = (f"no suspect counterpart for the reference copy {pair.name!r} (no {SUSPECT_LOCATION}/{base} in "
                    "the case): scanned and signature-checked, not compared")  # fmt: skip
    else:
        try:
            if ref_path is not None:
                out.diff = diff_model(folder_path, ref_path, model_id=pair.name, display_prefix=folder,
                                      reference_prefix=ref_shown, suspect_hashes=digests.of(folder_path, folder),
                                      reference_hashes=digests.of(ref_path, ref_rel),
                                      progress=ctx.progress)  # fmt: skip
                out.compared_with = "reference copy"
                out.folders_read += [ref_rel] if ref_rel else []
            elif signed_manifest:
                out.diff = diff_model(folder_path, None, model_id=pair.name, display_prefix=folder,
                                      suspect_hashes=digests.of(folder_path, folder))  # fmt: skip
                out.compared_with = "signature manifest"
        except WorkbenchError as exc:
            out.warnings.append(EvidenceWarning(folder, None, f"model {pair.name!r} not compared: {exc}"))
        if ref_path is None:
            done = ("compared with its signed manifest only (file digests, not tensors)" if out.diff is not None
                    else "scanned and signature-checked, not compared")  # fmt: skip
            out.note = f"no reference copy for model {pair.name!r} (no {REFERENCE_LOCATION}/{base} in the case): {done}"
    if out.note:
        out.warnings.append(EvidenceWarning(folder, None, out.note + hint))
    if pair.primary and ctx.reference is not None:
        if pair.suspect is None:
            out.warnings.append(EvidenceWarning(str(ctx.reference), None, "reference given but the case has no "
                                                "suspect model to compare with it: not used"))  # fmt: skip
        elif pair.reference and pair.reference != ref_rel:
            out.warnings.append(EvidenceWarning(pair.reference, None, f"replaced by the reference given ({ref_shown})"
                                                f" for model {pair.name!r}: not compared"))  # fmt: skip
    own = trust if pair.primary else replace(trust, signature=None)
    out.signature = verify_model_signature(folder_path, own, model_id=pair.name, display_prefix=folder,
                                           hashes=digests.of(folder_path, folder))  # fmt: skip
    signature_findings = out.signature.findings
    if pair.suspect is None:
        signature_findings = [_as_reference_only(f) if f.category in _PROVENANCE else f for f in signature_findings]
    if out.diff is not None:
        out.findings += out.diff.findings
        out.warnings += out.diff.warnings
        out.unexamined += out.diff.unexamined
        out.limits += [f"{pair.name}: {note}" for note in out.diff.limits]
    out.findings += signature_findings
    out.warnings += out.signature.warnings
    return out


def _as_reference_only(f: Finding) -> Finding:
    """A reference copy with no suspect: its unknown provenance is worth knowing, not a sign of this compromise."""
    return replace(f, severity=Severity.LOW, detail=f"{f.detail} (A reference copy with no suspect counterpart in "
                   "the case: no served model is involved.)")  # fmt: skip
