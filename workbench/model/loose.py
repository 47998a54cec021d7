"""The artefact scan of every file outside the model folders: nothing in the case escapes classification by content.

A malicious pickle at the case root, in ``logs/`` or ``notes/`` is as dangerous as one under ``models/``. Every
inventoried file outside the scanned model folders (and outside paired reference folders, which the diff compares
with their suspect) is sniffed: its first bytes (the same budget as the model scan, ``ScanLimits.sniff_bytes``) are
classified by :func:`workbench.model.formats.sniff` (pickle protocols 0-5, zip/torch, 7z, tar, gzip/bzip2/xz/lzma/
zlib streams, numpy ``.npy``, joblib, safetensors, GGUF, ONNX, HDF5, ELF/PE/Mach-O, Python bytecode and source,
``#!`` scripts). Text, JSON, CSV, YAML, images and unknown bytes stop there. Every other file is scanned like a
model file (:func:`workbench.model.scan.scan_model`: archives opened, pickles analysed statically, picklescan asked),
its findings naming the file's path in the case. Safetensors headers are checked with the strict parser. Inside a
captured Python environment (role ``environment``), code files (Python source and bytecode, native libraries,
scripts) are left to the installed-package analysis, which verifies them against their RECORD; everything else there
is scanned as anywhere else.

Cost: one open and one read of at most ``sniff_bytes`` per file; small files cost one short read each. Files are
examined one at a time and nothing is kept of those that stop at the sniff.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing

from workbench.case import Case, EvidenceFile
from workbench.model.formats import sniff
from workbench.model.limits import ScanLimits
from workbench.model.scan import ModelScan, scan_model
from workbench.model.streams import open_evidence
from workbench.records import EvidenceWarning

__all__ = ["EXAMINED_KINDS", "OUTSIDE_MODELS", "outside_files", "scan_outside_models", "select_for_scan"]

#: key of the outside-the-model-folders scan among the model section's scans
OUTSIDE_MODELS = "(outside the model folders)"
#: kinds (as sniffed) scanned further; anything else (text, json, config, tokenizer, image, empty, unknown) is not
EXAMINED_KINDS = frozenset({
    "pickle", "pytorch_legacy", "zip", "7z", "tar", "compressed", "npy", "gguf", "hdf5", "safetensors", "onnx",
    "shared_library", "python_bytecode", "python", "script",
})  # fmt: skip
#: kinds an installed Python environment is made of: there, code is the installed-package analysis' to verify
#: against what was published (:mod:`workbench.pyenv`); pickles, archives and model formats are still scanned
ENVIRONMENT_CODE_KINDS = frozenset({"shared_library", "python_bytecode", "python", "script"})


def _left_to_pyenv(relpath: str, kind: str, also_pickle: object) -> bool:
    """An environment's code file, or a distribution's metadata (RECORD, METADATA...: text the installed-package
    analysis parses, whose first letters may walk as pickle opcodes)."""
    if ".dist-info/" in relpath:
        return True
    return kind in ENVIRONMENT_CODE_KINDS and not also_pickle


def outside_files(case: Case) -> list[EvidenceFile]:
    """The case's files outside every model folder (``role == "evidence"``), in path order."""
    return [f for f in case.files if f.role != "model"]


def select_for_scan(
    case: Case, files: list[EvidenceFile], limits: ScanLimits, warnings: list[EvidenceWarning], unexamined: list[str]
) -> list[tuple[EvidenceFile, str]]:
    """Sniff each file; those of a kind in :data:`EXAMINED_KINDS`, or whose first bytes also walk as pickle opcodes
    (text or an image that may be a pickle: :mod:`workbench.model.sniff_pickle`), with that kind.

    A file that cannot be read is a warning and an ``unexamined`` entry (its content is unknown).
    """
    chosen: list[tuple[EvidenceFile, str]] = []
    for f in files:
        if f.size == 0:
            continue
        try:
            with closing(open_evidence(case.root / f.fs_relpath)) as fh:
                head = fh.read(limits.sniff_bytes)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            warnings.append(EvidenceWarning(f.relpath, None, f"not readable, not classified: {reason}"))
            unexamined.append(f"{f.relpath}: not readable ({reason})")
            continue
        sniffed = sniff(head, f.relpath, f.size)
        if f.role == "environment" and _left_to_pyenv(f.relpath, sniffed.kind, sniffed.details.get("also_pickle")):
            continue
        if sniffed.kind in EXAMINED_KINDS or sniffed.details.get("also_pickle"):
            chosen.append((f, sniffed.kind))
    return chosen


def scan_outside_models(
    case: Case, *, known_digests: Mapping[str, str] | None = None, limits: ScanLimits | None = None
) -> ModelScan | None:
    """Scan every file outside the model folders whose content is a model, archive, compressed stream or code.

    Reads the first ``sniff_bytes`` of every file outside the model folders, and the chosen files as the model scan
    does.

    Returns:
        A :class:`ModelScan` whose paths are case paths (findings built as for model folders, code files outside the
        model folders with the lower severities of :func:`~workbench.model.scan_findings.findings_for`), or None
        when no file needed more than the sniff and none was unreadable.
    """
    from workbench.model.safetensors_format import header_findings, read_header

    limits = limits or ScanLimits()
    warnings: list[EvidenceWarning] = []
    unexamined: list[str] = []
    chosen = select_for_scan(case, outside_files(case), limits, warnings, unexamined)
    if not chosen and not unexamined:
        return None
    scan = scan_model(case.root, limits=limits, known_digests=known_digests, files=[f for f, _ in chosen],
                      outside_models=True)  # fmt: skip
    scan.inventory.warnings[:0] = warnings
    scan.inventory.unexamined[:0] = unexamined
    for f, kind in chosen:
        if kind == "safetensors":
            scan.findings += header_findings(read_header(case.root / f.fs_relpath), f.relpath)
    return scan
