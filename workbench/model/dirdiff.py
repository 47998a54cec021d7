"""Directory diff of a suspect model against a reference copy or its signed manifest, down to tensors and keys.

* :func:`diff_dirs`: files only in the suspect, only in the reference, modified, identical, with SHA-256s (the
  original investigator's ``_compare_models``), built on :func:`workbench.checks.integrity.check_model_integrity`.
* :func:`diff_against_manifest`: the same against ``.signatures/manifest.json`` when no reference copy exists.
* :func:`diff_model`: files, then every tensor of the checkpoints (safetensors, sharded or not, PyTorch zip and
  legacy, GGUF; paired by format and by tensor name across shards, see :mod:`workbench.model.checkpoint_diff`),
  then the JSON configs key by key, as one :class:`ModelDiff` with findings and DataFrames;
  :func:`~workbench.model.tensor_findings.tensor_findings` (re-exported here) turns tensor diffs into ``tensor_*``
  findings (a dense rank-1 edit is critical). Weights that no tensor reader takes (ONNX, torch.export ``.pt2``,
  Keras, NumPy, plain pickles: :func:`~workbench.model.checkpoints.digest_only_format`) fail closed: compared by
  digest only, a modified one is ``unexamined`` (its change not localised: the model's coverage is partial), an
  identical one a ``limits`` note.

File digests come from the caller when it has them (the custody intake's, see
:func:`workbench.checks.integrity.hash_model_dir`); otherwise each folder is hashed once per call. Each pair of files
with one relative path (or the two files compared) is read in ONE pass that hashes both and finds the byte ranges
where they differ (:mod:`workbench.model.pair_pass`); the tensor diff then reads back only the tensors those ranges
touch, and only their touched blocks for the statistics.

Symlinks are never followed; responders' ``COMPROMISED.txt`` markers are not model files, nor are signature files
(:func:`workbench.checks.integrity.is_signature_file`: ``.signatures/``, ``*.sig`` such as model_signing's
``model.sig``, ``*.sigstore.json``, ``*.sigstore``), which are left out of the file, tensor and config diffs on both
sides, as model_signing leaves them out of what it signs: two copies differing only in their signatures are
identical. The suspect's signature files outside ``.signatures/`` are named in a ``limits`` note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.case import walk_tree
from workbench.checks.integrity import check_model_integrity, hash_model_dir, is_signature_file
from workbench.errors import EvidenceError, MalformedEvidence
from workbench.evidence.base import LoadContext
from workbench.evidence.signature_manifest import SignatureManifestLoader
from workbench.model import configdiff
from workbench.model import tensors as tdiff
from workbench.model.checkpoint_diff import diff_checkpoint_tensors
from workbench.model.checkpoints import digest_only_format
from workbench.model.pair_pass import Changes, hash_and_compare, pair_key, pass_folders
from workbench.model.tensor_findings import tensor_findings  # re-exported: callers import it from here
from workbench.records import EvidenceWarning, Finding, to_frame

if TYPE_CHECKING:  # pandas is imported where a frame is built (CLI start-up and memory: issue 15)
    import pandas as pd

__all__ = [
    "FILE_STATUSES",
    "DirDiff",
    "FileEntry",
    "ModelDiff",
    "diff_against_manifest",
    "diff_dirs",
    "diff_model",
    "tensor_findings",
]

DETECTOR = "workbench.model.dirdiff"
ATLAS = ("AML.T0010.003", "AML.T0018.000")
FILE_STATUSES = ("only_in_suspect", "only_in_reference", "modified", "identical")
_STATUS_OF = {"unexpected_model_file": "only_in_suspect", "model_file_missing": "only_in_reference",
              "model_file_tampered": "modified"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of either folder: ``status`` in :data:`FILE_STATUSES`, digests (None on the side lacking it)."""

    path: str
    status: str
    suspect_sha256: str | None
    reference_sha256: str | None


@dataclass(slots=True)
class DirDiff:
    """File-level comparison.

    Attributes:
        baseline: what the suspect was compared with (``reference copy`` or ``signature manifest``).
        entries: one per file, sorted by path.
        findings: ``model_file_tampered`` / ``unexpected_model_file`` / ``model_file_missing``.
        warnings: skipped symlinks and unreadable files.
        unexamined: suspect files past the inventory cap (not compared), ``"path: reason"``.
        signatures: the suspect's signature files (relative to it), left out of the comparison.
    """

    baseline: str
    entries: list[FileEntry]
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)

    def paths(self, status: str) -> list[str]:
        return [e.path for e in self.entries if e.status == status]

    def to_dict(self) -> dict[str, list[str]]:
        """The ``files`` object of the ``diff-model`` JSON contract."""
        return {s: self.paths(s) for s in FILE_STATUSES}

    def frame(self) -> pd.DataFrame:
        """Columns ``path``, ``status``, ``suspect_sha256``, ``reference_sha256`` (str or None)."""
        import pandas as pd

        cols = ["path", "status", "suspect_sha256", "reference_sha256"]
        return pd.DataFrame([{c: getattr(e, c) for c in cols} for e in self.entries], columns=cols, dtype=object)


def _prefix(display_prefix: str) -> str:
    return display_prefix.rstrip("/") + "/" if display_prefix else ""


def _compare(suspect: Path, baseline: Mapping[str, str], *, model_id: str, display_prefix: str, source: str,
             current: Mapping[str, str] | None) -> DirDiff:  # fmt: skip
    warnings: list[EvidenceWarning] = []
    unexamined: list[str] = []
    prefix = _prefix(display_prefix)
    signatures = [f.relpath for f in walk_tree(suspect, warnings, unexamined) if is_signature_file(f.relpath)]
    baseline = {rel: digest for rel, digest in baseline.items() if not is_signature_file(rel)}
    warnings = [EvidenceWarning(prefix + w.path, w.line, w.reason) for w in warnings]
    unexamined = [prefix + u for u in unexamined]
    found = check_model_integrity(suspect, baseline, model_id=model_id, display_prefix=display_prefix,
                                  baseline_source=source, current=current)  # fmt: skip
    entries: dict[str, FileEntry] = {}
    for f in found:
        rel = str(f.evidence["path"]).removeprefix(prefix)
        status = _STATUS_OF[f.category]
        entries[rel] = FileEntry(rel, status, f.evidence.get("sha256"), f.evidence.get("expected_sha256"))
    for rel, digest in baseline.items():
        entries.setdefault(rel, FileEntry(rel, "identical", digest, digest))
    return DirDiff(source, [entries[k] for k in sorted(entries)], found, warnings, unexamined, signatures)


def _signature_limits(files: DirDiff, display_prefix: str) -> list[str]:
    """One note naming the suspect's signature files left out of the diff (``.signatures/`` is read by the
    signature check and not repeated here)."""
    named = [_prefix(display_prefix) + rel for rel in files.signatures if rel.split("/", 1)[0] != ".signatures"]
    if not named:
        return []
    return [
        f"signature file(s) left out of the diff, not model content (as model_signing leaves the signature out "
        f"of what it signs): {', '.join(named)}"
    ]


def diff_dirs(
    suspect: Path,
    reference: Path,
    *,
    model_id: str | None = None,
    display_prefix: str = "",
    suspect_hashes: Mapping[str, str] | None = None,
    reference_hashes: Mapping[str, str] | None = None,
) -> DirDiff:
    """Compare two model folders file by file (streamed SHA-256, no symlink followed).

    Args:
        suspect_hashes / reference_hashes: each folder's digests from :func:`~workbench.checks.integrity.hash_model_dir`
            when the caller has them (e.g. built from the custody intake); None: the folder is hashed here.

    Returns:
        The :class:`DirDiff`; findings name files relative to the suspect, behind ``display_prefix``.
    """
    baseline = hash_model_dir(reference) if reference_hashes is None else reference_hashes
    return _compare(suspect, baseline, model_id=model_id or suspect.name, display_prefix=display_prefix,
                    source="reference copy", current=suspect_hashes)  # fmt: skip


def diff_against_manifest(
    suspect: Path,
    manifest: Path | None = None,
    *,
    model_id: str | None = None,
    display_prefix: str = "",
    suspect_hashes: Mapping[str, str] | None = None,
) -> DirDiff:
    """Compare a model folder with a signature manifest (default ``SUSPECT/.signatures/manifest.json``).

    The manifest's authenticity is not checked here (see :mod:`workbench.model.signatures`). ``suspect_hashes``: the
    folder's digests when the caller has them (see :func:`diff_dirs`); None: the folder is hashed here.

    Raises:
        EvidenceError: no manifest, or one that is not usable (names the file).
    """
    manifest = manifest or suspect / ".signatures" / "manifest.json"
    if not manifest.is_file() or manifest.is_symlink():
        raise EvidenceError(manifest, "no signature manifest to compare with")
    try:
        loaded = SignatureManifestLoader().load(manifest, LoadContext(relpath=manifest.name))
    except MalformedEvidence as exc:
        raise MalformedEvidence(manifest, exc.reason) from None
    baseline = dict(zip(loaded.frame["path"], loaded.frame["sha256"], strict=True))
    diff = _compare(suspect, baseline, model_id=model_id or suspect.name, display_prefix=display_prefix,
                    source="signature manifest", current=suspect_hashes)  # fmt: skip
    diff.warnings += loaded.warnings
    return diff


@dataclass(slots=True)
class ModelDiff:
    """Everything :func:`diff_model` found.

    Attributes:
        suspect / reference: the folders (or files) compared, as displayed.
        files: file-level diff.
        tensors: one entry per tensor name in either checkpoint, sorted by name.
        configs: changed JSON keys.
        heat: tensor name -> grid of the change's L2 norm per block of rows x columns (modified tensors).
        findings: all findings (files, malformed headers, tensors, configs).
        warnings: what could not be read, with the reason.
        unexamined: what a cap left uncompared (``"path: reason"``: suspect files past the inventory cap, a config
            over the size cap, tensors that could not be located or read).
        limits: softer notes (formats compared across, sharding indexes applied, tied names).
    """

    suspect: str
    reference: str
    files: DirDiff
    tensors: list[tdiff.TensorDiff] = field(default_factory=list)
    configs: list[configdiff.ConfigChange] = field(default_factory=list)
    heat: dict[str, np.ndarray] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``diff-model`` JSON document: ``findings``, ``files``, ``tensors``, plus ``configs``, ``warnings``,
        ``unexamined`` and ``limits``."""
        return {
            "findings": [f.to_dict() for f in self.findings],
            "files": self.files.to_dict(),
            "tensors": [t.to_dict() for t in self.tensors],
            "configs": configdiff.rows(self.configs),
            "warnings": [w.to_dict() for w in self.warnings],
            "unexamined": list(self.unexamined),
            "limits": list(self.limits),
        }

    def tensor_frame(self) -> pd.DataFrame:
        """See :func:`workbench.model.tensors.tensor_frame`."""
        return tdiff.tensor_frame(self.tensors)

    def file_frame(self) -> pd.DataFrame:
        return self.files.frame()

    def config_frame(self) -> pd.DataFrame:
        return configdiff.frame(self.configs)

    def findings_frame(self) -> pd.DataFrame:
        return to_frame(self.findings, Finding)


def _model_files(path: Path, warnings: list[EvidenceWarning]) -> list[tuple[str, str]]:
    if path.is_file():
        return [("", "")]
    return [(f.fs_relpath, f.relpath) for f in walk_tree(path, warnings) if not is_signature_file(f.relpath)]


def diff_model(
    suspect: Path,
    reference: Path | None = None,
    *,
    manifest: Path | None = None,
    model_id: str | None = None,
    display_prefix: str = "",
    reference_prefix: str | None = None,
    chunk_elements: int = tdiff.CHUNK_ELEMENTS,
    suspect_hashes: Mapping[str, str] | None = None,
    reference_hashes: Mapping[str, str] | None = None,
    progress: Any = None,
) -> ModelDiff:
    """Diff a suspect model (folder or single checkpoint file) against a reference, or against its manifest.

    Args:
        suspect: the suspect folder or file.
        reference: the known-good folder or file; when None, files are compared with ``manifest`` (default
            ``SUSPECT/.signatures/manifest.json``) and no tensor diff is possible.
        model_id: shown in finding titles (default: the suspect's name).
        display_prefix / reference_prefix: how suspect / reference paths are shown (relative to the case).
        chunk_elements: tensor block size (memory bound).
        suspect_hashes / reference_hashes: the folders' file digests when the caller already has them (an analysis
            builds them once from the custody intake and gives the same ones to the signature check); None: the
            folder is hashed here. Tensors and configs are always read from the files themselves.
        progress: a :class:`workbench.progress.Progress` receiving the bytes of tensors compared per file, or None.

    Raises:
        EvidenceError: a path is missing, the two are not both files or both folders, or no manifest exists.
    """
    if not suspect.exists():
        raise EvidenceError(suspect, "suspect model does not exist")
    model_id = model_id or (suspect.stem if suspect.is_file() else suspect.name)
    if reference is None:
        if not suspect.is_dir():
            raise EvidenceError(suspect, "a single file can only be compared with a reference file")
        files = diff_against_manifest(suspect, manifest, model_id=model_id, display_prefix=display_prefix,
                                      suspect_hashes=suspect_hashes)  # fmt: skip
        return ModelDiff(display_prefix or suspect.name, files.baseline, files, findings=list(files.findings),
                         warnings=list(files.warnings), unexamined=list(files.unexamined),
                         limits=_signature_limits(files, display_prefix))  # fmt: skip
    if not reference.exists():
        raise EvidenceError(reference, "reference model does not exist")
    if suspect.is_dir() != reference.is_dir():
        raise EvidenceError(reference, "compare a folder with a folder, or a file with a file")
    ref_label = reference_prefix if reference_prefix is not None else "(reference)"
    if suspect.is_dir():  # one pass per file pair hashes both and finds where they differ (pair_pass)
        s_hashes, r_hashes, changes = pass_folders(suspect, reference, suspect_hashes, reference_hashes)
        files = diff_dirs(suspect, reference, model_id=model_id, display_prefix=display_prefix,
                          suspect_hashes=s_hashes, reference_hashes=r_hashes)  # fmt: skip
    else:
        files, changes = _diff_files(suspect, reference, display=display_prefix or suspect.name)
    result = ModelDiff(display_prefix or suspect.name, reference_prefix or reference.name, files,
                       findings=list(files.findings), warnings=list(files.warnings),
                       unexamined=list(files.unexamined), limits=_signature_limits(files, display_prefix))  # fmt: skip
    sus_files = _model_files(suspect, [])
    read = _diff_tensors(suspect, reference, sus_files, result, model_id, display_prefix, ref_label, chunk_elements,
                         progress, changes)  # fmt: skip
    _digest_only(suspect, sus_files, read, result, display_prefix)
    if suspect.is_dir():
        json_files = [p for p in files.paths("modified") if p.lower().endswith(".json")]
        changes, warns = configdiff.diff_configs(suspect, reference, json_files, display_prefix=display_prefix,
                                                 unexamined=result.unexamined)  # fmt: skip
        result.configs = changes
        result.warnings += warns
        result.findings += configdiff.config_findings(changes, model_id=model_id)
    return result


def _diff_files(suspect: Path, reference: Path, *, display: str) -> tuple[DirDiff, dict[tuple[str, str], Changes]]:
    try:
        found = hash_and_compare(suspect, reference)
    except OSError as exc:
        raise EvidenceError(suspect, f"cannot read: {exc.strerror or exc}") from None
    s, r = found.suspect_sha256, found.reference_sha256
    entry = FileEntry(display, "identical" if s == r else "modified", s, r)
    return DirDiff("reference copy", [entry]), {pair_key(suspect, reference): found.changes}


def _diff_tensors(suspect: Path, reference: Path, sus_files: list[tuple[str, str]], result: ModelDiff, model_id: str,
                  display_prefix: str, ref_label: str, chunk: int, progress: Any,
                  changes: Any) -> set[str]:  # fmt: skip
    found = diff_checkpoint_tensors(suspect, reference, sus_files, _model_files(reference, []),
                                    model_id=model_id, display_prefix=display_prefix, reference_label=ref_label,
                                    chunk_elements=chunk, progress=progress, changes=changes)  # fmt: skip
    result.tensors = found.tensors
    result.heat = found.heat
    result.findings += found.findings
    result.warnings += found.warnings
    result.unexamined += found.unexamined
    result.limits += found.limits
    return found.read


def _digest_only(suspect: Path, sus_files: list[tuple[str, str]], read: set[str], result: ModelDiff,
                 display_prefix: str) -> None:  # fmt: skip
    """Fail closed on weights that no tensor reader took (ONNX, torch.export, Keras, NumPy, plain pickles...): a
    modified one is ``unexamined`` (its change was not localised), an identical one a ``limits`` note."""
    prefix = _prefix(display_prefix)
    status = {e.path: e.status for e in result.files.entries}
    for disk, rel in sus_files:
        display = prefix + rel if rel else display_prefix or suspect.name
        state = status.get(rel or display)
        if state not in ("modified", "identical") or display in read:
            continue
        label = digest_only_format(suspect / disk if disk else suspect, rel or suspect.name)
        if label is None:
            continue
        note = f"{display}: compared by digest only: no tensor-level diff for {label}"
        if state == "modified":
            result.unexamined.append(f"{note} (the file differs from the reference; the change was not localised)")
        else:
            result.limits.append(f"{note} (identical SHA-256)")
