"""Artefact inventory of a model folder: every file (and archive member) classified by its bytes, not its name.

The folder is walked with :func:`workbench.case.walk_tree` (symlinks recorded, never followed). Each file is
sniffed (:mod:`~workbench.model.formats`); archives are listed and their members examined in turn down to
``ScanLimits.max_depth``; pickle streams go to :mod:`~workbench.model.pickles`; configs, Keras configs, HDF5 files,
GGUF headers and chat templates to :mod:`~workbench.model.embedded_code`. Dangerous types are flagged: pickle-based
formats (in disguise when the name does not say pickle), Python source and bytecode, shared libraries, numpy object
arrays, Keras ``Lambda`` layers.

Fail closed: every artefact carries a coverage state (:mod:`workbench.model.coverage`): ``analysed``, ``partially
analysed: why`` or ``not analysed: why``; every state other than ``analysed`` is also an ``unexamined`` entry of the
inventory (one per gap, naming the file and member), so a model with any file not fully analysed is never clean.
A file whose first bytes also walk as pickle opcodes is analysed as a pickle too (:mod:`workbench.model.sniff_pickle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.errors import EvidenceError
from workbench.evidence_tree import EvidenceFile, walk_tree
from workbench.model import archives
from workbench.model.coverage import ANALYSED, Gaps, is_complete
from workbench.model.formats import (
    CODE_KINDS,
    COMPATIBLE,
    COMPRESSION_SUFFIXES,
    PICKLE_EXTENSIONS,
    PICKLE_KINDS,
    declared_kind,
    sniff,
)
from workbench.model.inventory_archives import LEGACY_TAR_MEMBERS, READ_ERRORS, ArchiveWalker, Source
from workbench.model.inventory_content import CodeFinding, ContentReader
from workbench.model.limits import ScanLimits
from workbench.model.pickles import PickleReport
from workbench.model.policy import ImportPolicy, default_policy
from workbench.model.streams import open_evidence
from workbench.records import EvidenceWarning

__all__ = ["Artefact", "CodeFinding", "Inventory", "take_inventory"]

_AMBIGUOUS_SUFFIXES = {".bin", ".dat", ".data", ""}
#: JSON files that hold vocabulary data, not configuration (not parsed)
_DATA_JSON = {"tokenizer.json", "vocab.json"}


@dataclass(frozen=True, slots=True)
class Artefact:
    """One file or archive member as classified.

    Attributes:
        path: file path relative to the scanned folder (with the display prefix).
        member: archive member (nested members joined by ``!``), or None for the file itself.
        size: bytes (declared inflated size for members).
        kind: detected from content (see :mod:`workbench.model.formats`; archives refined to ``pytorch_zip``,
            ``torchscript``, ``npz``, ``keras``).
        declared: the kind the name suggests, or None.
        dangerous: loading it can execute code.
        why: why it is dangerous, or why its name and content disagree ('' when neither).
        details: small facts (pickle protocol, members, npy dtype, GGUF metadata ...).
        coverage: ``analysed``, ``partially analysed: why`` or ``not analysed: why`` (:mod:`workbench.model.coverage`;
            an archive is partial when one of its members is not fully analysed). Kind ``unexamined``: a file or
            member whose content could not be read at all.
    """

    path: str
    member: str | None
    size: int
    kind: str
    declared: str | None
    dangerous: bool
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    coverage: str = ANALYSED


@dataclass(slots=True)
class Inventory:
    """What the walk found: artefacts, pickle reports, archive anomalies, code references and warnings.

    Attributes:
        unexamined: what a cap (size, count, depth, budget), damage, encryption or an unreadable file left
            unexamined, one ``"path [member]: reason"`` each (the analysis' coverage is then partial); every artefact
            whose coverage is not ``analysed`` has at least one entry, and files past the inventory's own cap have one
            each without an artefact.
        limits: softer notes: checks done only in part although the content was examined (CRC verification beyond
            its budget, picklescan not asked about a file over its size cap).
    """

    root: Path
    artefacts: list[Artefact] = field(default_factory=list)
    pickles: list[tuple[str, PickleReport]] = field(default_factory=list)
    anomalies: list[tuple[str, archives.ArchiveAnomaly]] = field(default_factory=list)
    code: list[CodeFinding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)


def take_inventory(
    path: str | Path,
    *,
    display_prefix: str = "",
    limits: ScanLimits | None = None,
    policy: ImportPolicy | None = None,
    files: Iterable[EvidenceFile] | None = None,
) -> Inventory:
    """Classify every file under ``path`` (or the one file ``path``).

    Args:
        path: a model folder or a single artefact.
        display_prefix: prepended to relative paths in the records (the folder's place in a case).
        limits: size, count and depth caps.
        policy: pickle import policy (the shipped one by default).
        files: only these files of the folder ``path`` (inventoried by :func:`~workbench.case.walk_tree`, paths
            relative to ``path``) instead of walking it.

    Returns:
        The :class:`Inventory`; unreadable files become warnings.

    Raises:
        EvidenceError: ``path`` does not exist or is a symlink.
    """
    root = Path(path)
    if root.is_symlink() or not root.exists():
        raise EvidenceError(root, "model path does not exist" if not root.is_symlink() else "model path is a symlink")
    examiner = _Examiner(Inventory(root.resolve()), limits or ScanLimits(), policy or default_policy(), display_prefix)
    if root.is_file():
        examiner.examine_file(root, root.name)
    elif files is not None:
        for f in files:
            examiner.examine_file(root / f.fs_relpath, f.relpath)
    else:
        for f in walk_tree(root, examiner.inv.warnings, examiner.inv.unexamined):
            examiner.examine_file(root / f.fs_relpath, f.relpath)
    return examiner.inv


class _Examiner(ArchiveWalker, ContentReader):
    def __init__(self, inv: Inventory, limits: ScanLimits, policy: ImportPolicy, prefix: str) -> None:
        self.inv, self.limits, self.policy = inv, limits, policy
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""
        self._gaps: dict[tuple[str, str | None], Gaps] = {}
        self._budget = _FileBudget(limits)

    def examine_file(self, abs_path: Path, rel: str) -> None:
        path = self.prefix + rel
        self._budget = _FileBudget(self.limits)
        try:
            size = abs_path.stat(follow_symlinks=False).st_size
        except OSError as exc:
            self._unreadable(Source(path, None, rel, 0, lambda: open_evidence(abs_path), True), exc)
            return
        self._examine(Source(path, None, rel, size, lambda: open_evidence(abs_path), True), depth=0)

    # -- what was examined and what was not ------------------------------------------------------------------------
    def _warn(self, src: Source, reason: str) -> None:
        where = f"member {src.member}: " if src.member else ""
        self.inv.warnings.append(EvidenceWarning(src.path, None, where + reason))

    def _gap(self, src: Source, reason: str) -> Gaps:
        self._warn(src, reason)
        where = f"{src.path} [{src.member}]" if src.member else src.path
        self.inv.unexamined.append(f"{where}: {reason}")
        return self._gaps.setdefault((src.path, src.member), Gaps())

    def _unexamined(self, src: Source, reason: str) -> None:
        """Part of a file or member was left unexamined (a cap, damage): a warning, an entry of the coverage record,
        and the artefact's coverage ``partially analysed``."""
        self._gap(src, reason).partial.append(reason)

    def _not_analysed(self, src: Source, reason: str) -> None:
        """Nothing of a file or member's content could be examined: its coverage is ``not analysed``."""
        self._gap(src, reason).missing.append(reason)

    def _limit(self, src: Source, reason: str) -> None:
        self._warn(src, reason)
        self.inv.limits.append(f"{src.path}: {reason}")

    def _unreadable(self, src: Source, exc: BaseException) -> Artefact:
        reason = getattr(exc, "strerror", None) or exc
        self._not_analysed(src, f"not readable ({reason})")
        return self._record(src, "unexamined", {})

    def _skipped(self, src: Source, reason: str) -> Artefact:
        """An archive member whose content is not examined at all (encrypted, unsupported method, over a budget)."""
        self._not_analysed(src, reason)
        return self._record(src, "unexamined", {})

    # -- one file or member ------------------------------------------------------------------------------------------
    def _examine(self, src: Source, depth: int) -> Artefact:
        try:
            with closing(src.opener()) as fh:
                head = fh.read(self.limits.sniff_bytes)
        except READ_ERRORS as exc:
            return self._unreadable(src, exc)
        sniffed = sniff(head, src.name, src.size)
        kind, details = sniffed.kind, dict(sniffed.details)
        try:
            kind = self._content(src, depth, kind, head, details)
            if details.get("also_pickle") and kind not in PICKLE_KINDS:
                kind = self._pickle_reading(src, kind, details)
        except READ_ERRORS as exc:
            self._unexamined(src, f"content unreadable after its first bytes ({type(exc).__name__}: {exc})")
        return self._record(src, kind, details)

    def _content(self, src: Source, depth: int, kind: str, head: bytes, details: dict[str, Any]) -> str:
        data_json = PurePosixPath(src.name).name in _DATA_JSON
        if kind == "zip":
            kind = self._zip(src, depth, details)
        elif kind == "7z":
            self._sevenzip(src, depth, details)
        elif kind == "tar":
            kind = self._tar(src, depth, details)
        elif kind in ("pickle", "pytorch_legacy"):
            kind = self._pickle(src, kind, details, skip=0)
        elif kind == "compressed":
            kind = self._compressed(src, depth, details)
        elif kind == "npy":
            self._npy(src, head, details)
        elif kind == "gguf":
            self._gguf(src, details)
        elif kind == "hdf5":
            self._hdf5(src, details)
        elif kind in ("json", "config", "tokenizer") and details.get("format") in (None, "json") and not data_json:
            self._json(src, details)
        elif kind == "text" and src.name.endswith(".jinja"):
            self._template(src, self._read_all(src, self.limits.max_text_bytes), "chat template file")
        self._carried_code(src, kind, details)
        return kind

    def _record(self, src: Source, kind: str, details: dict[str, Any]) -> Artefact:
        """Judge the artefact, state its coverage (rolled up into the archive holding it), keep it."""
        gaps = self._gaps.pop((src.path, src.member), None)
        coverage = gaps.state() if gaps else ANALYSED
        if src.member is not None and not is_complete(coverage):
            parent = src.member.rsplit("!", 1)[0] if "!" in src.member else None
            name = src.member.rsplit("!", 1)[-1]
            self._gaps.setdefault((src.path, parent), Gaps()).member(name, coverage[:300])
        artefact = self._judge(src, kind, details, coverage)
        self.inv.artefacts.append(artefact)
        return artefact

    def _judge(self, src: Source, kind: str, details: dict[str, Any], coverage: str) -> Artefact:
        declared = declared_kind(src.name)
        name = PurePosixPath(src.name)
        suffix = name.suffix.lower()
        why = ""
        if kind in PICKLE_KINDS or details.get("has_object") or details.get("pickle_members"):
            why = "pickle-based: loading it runs the pickle"
            details["pickle_format"] = True
            if _disguised(src, kind):
                why = f"pickle in disguise (named {name.name!r}): loading it runs the pickle"
                details["disguised"] = True
        elif details.get("polyglot"):
            why = f"pickle in disguise: the content is {kind} and also a pickle that loading it as one runs"
            details["disguised"] = True
        elif kind in CODE_KINDS:
            why = f"{CODE_KINDS[kind]}: runs code when imported or loaded"
        elif details.get("lambda_layers"):
            why = "Keras Lambda layer: marshalled Python code runs on load"
        elif details.get("dangerous_members"):
            why = f"archive holds dangerous members ({details['dangerous_members'][0]})"
        dangerous = bool(why)
        compatible = COMPATIBLE.get(declared or "", {declared})
        if (
            not dangerous
            and declared
            and kind not in compatible
            and kind not in ("empty", "unexamined")
            and suffix not in _AMBIGUOUS_SUFFIXES
        ):
            why = f"content is {kind}, the name suggests {declared}"
            details["mismatch"] = True
        return Artefact(src.path, src.member, src.size, kind, declared, dangerous, why, details, coverage)


def _disguised(src: Source, kind: str) -> bool:
    """Whether a pickle's name hides what it is: its extension (looked through compression suffixes) is neither a
    pickle's nor, for a compressed pickle, silent (``model.gz``, ``x_py27.gz`` only say "compressed": joblib's own
    names). ``*.debug_pkl`` members of a TorchScript archive are its debug-information pickles, and the members of a
    legacy torch tar checkpoint are its pickles."""
    name = PurePosixPath(src.name.lower())
    compressed = kind in ("compressed_pickle", "joblib") and name.suffix in COMPRESSION_SUFFIXES
    while name.suffix in COMPRESSION_SUFFIXES:
        name = PurePosixPath(name.stem)
    if name.suffix in PICKLE_EXTENSIONS:
        return False
    if name.suffix == ".debug_pkl" and src.context == "torchscript":
        return False
    if src.context == "pytorch_legacy_tar" and name.name in LEGACY_TAR_MEMBERS:
        return False  # torch's legacy tar checkpoint names its pickles sys_info, pickle, storages, tensors
    return not compressed or declared_kind(name.name) is not None


@dataclass(slots=True)
class _FileBudget:
    """Work one top-level file may cause across all its nesting levels (members examined, bytes held in memory,
    bytes inflated from members flagged as decompression bombs)."""

    limits: ScanLimits
    members: int = 0
    in_memory: int = 0
    bomb_bytes: int = 0
