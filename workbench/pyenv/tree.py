"""A captured Python environment as one interface, whichever way it was captured.

Two captures are read the same way:

- a **folder**: a copy of ``site-packages`` (or of a whole virtual environment's, found by the caller) in the case;
  files are walked with :func:`workbench.evidence_tree.walk_tree` (no symlink followed, special files skipped) and
  hashed when asked;
- an **inventory**, as ``workbench contain assess`` writes it (:data:`CAPTURE_FILE` beside :data:`FILES_FILE` and a
  ``tree/`` folder): every file's path, size, mtime and SHA-256 listed in ``files.jsonl``, and only the small files
  the checks read copied under ``tree/`` (each ``*.dist-info`` folder's metadata, top-level ``.pth`` files,
  ``sitecustomize`` / ``usercustomize``). A listed file that was not copied is verified by its listed hash; its
  bytes are not in the case.

Nothing is imported, compiled or run. Lines of ``files.jsonl`` that cannot be read are warnings naming the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from workbench import safeio
from workbench.environments import CAPTURE_FILE, CAPTURE_FORMAT, FILES_FILE, TREE_DIR
from workbench.evidence_tree import walk_tree
from workbench.hashing import sha256_file
from workbench.records import EvidenceWarning

__all__ = [
    "BINARY_MAGICS",
    "BINARY_SUFFIXES",
    "CAPTURE_FILE",
    "CAPTURE_FORMAT",
    "FILES_FILE",
    "TREE_DIR",
    "EnvFile",
    "EnvTree",
    "is_capture",
    "open_tree",
]

#: largest header or files.jsonl line read
MAX_LINE_BYTES = 64 * 1024
#: largest files.jsonl read
MAX_LIST_BYTES = 512 * 1024 * 1024
BINARY_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
BINARY_MAGICS = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
                 b"\xca\xfe\xba\xbe", b"MZ")  # fmt: skip


@dataclass(frozen=True, slots=True)
class EnvFile:
    """One regular file of the environment.

    Attributes:
        size: bytes.
        mtime_ns: modification time as captured (nanoseconds since the epoch), or None.
        sha256: the listed digest (inventory), else None until hashed.
        binary: whether the inventory saw a native binary's magic, None when not listed (read from the copy).
        copied: the file's bytes are in the case (a folder's files always; an inventory's copies under ``tree/``).
        fs_rel: the path on disk below :attr:`EnvTree.base` (when copied).
    """

    size: int
    mtime_ns: int | None
    sha256: str | None = None
    binary: bool | None = None
    copied: bool = True
    fs_rel: str = ""

    @property
    def mtime(self) -> datetime | None:
        return None if self.mtime_ns is None else datetime.fromtimestamp(self.mtime_ns / 1e9, UTC)


@dataclass(slots=True)
class EnvTree:
    """The files of one captured environment, by POSIX path relative to its ``site-packages``.

    Attributes:
        root: the folder given (the site-packages copy, or the inventory folder).
        base: where copied files are (``root``, or ``root/tree``).
        kind: ``folder`` or ``inventory``.
        files: shown path -> :class:`EnvFile`.
        symlinks: shown path -> what the capture says it pointed to (never followed).
        warnings: what could not be read.
        meta: the inventory's header (``site_packages``, ``python``, ``captured_at``...), {} for a folder.
        truncated: the walk or the list stopped at the file cap (the rest of the environment was not examined).
    """

    root: Path
    base: Path
    kind: str
    files: dict[str, EnvFile]
    symlinks: dict[str, str] = field(default_factory=dict)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    truncated: bool = False

    def read_text(self, rel: str, limit: int) -> str | None:
        """A copied file's text (None, with a warning, when it is not copied or cannot be read)."""
        f = self.files.get(rel)
        if f is None or not f.copied:
            if f is not None:
                self.warnings.append(EvidenceWarning(self._shown(rel), None, "listed in the inventory, not copied: "
                                                     "its text could not be read"))  # fmt: skip
            return None
        try:
            return safeio.read_text(self.base / f.fs_rel, limit=limit)
        except OSError as exc:
            self.warnings.append(EvidenceWarning(self._shown(rel), None, f"not read: {exc.strerror or exc}"))
            return None

    def digest(self, rel: str) -> tuple[str, int] | None:
        """``(sha256 hex, size)``: the listed digest, else the copy hashed (None, with a warning, on failure)."""
        f = self.files[rel]
        if f.sha256 is not None:
            return f.sha256, f.size
        try:
            hexdigest, got = sha256_file(self.base / f.fs_rel)
        except OSError as exc:
            self.warnings.append(EvidenceWarning(self._shown(rel), None, f"not hashed: {exc.strerror or exc}"))
            return None
        self.files[rel] = EnvFile(got, f.mtime_ns, hexdigest, f.binary, f.copied, f.fs_rel)
        return hexdigest, got

    def hashed_here(self, rel: str) -> bool:
        """Whether :meth:`digest` reads the file's bytes (a folder's file not hashed yet)."""
        return self.files[rel].sha256 is None

    def is_binary(self, rel: str) -> bool:
        """A native library or executable, by suffix or by its first bytes (the inventory's flag when not copied)."""
        if rel.lower().endswith(BINARY_SUFFIXES):
            return True
        f = self.files[rel]
        if f.binary is not None or not f.copied:
            return bool(f.binary)
        try:
            with safeio.open_evidence(self.base / f.fs_rel) as fh:
                head = fh.read(4)
        except OSError as exc:
            self.warnings.append(EvidenceWarning(self._shown(rel), None, f"not read: {exc.strerror or exc}"))
            return False
        return head.startswith(BINARY_MAGICS)

    def not_regular(self, rel: str) -> str:
        """Why a path the capture does not hold as a file is not one ("" or "no longer there..." when absent)."""
        if rel in self.symlinks:
            return f"a symbolic link (to {self.symlinks[rel]!r}) in the capture; not followed"
        parts = rel.split("/")
        for i in range(1, len(parts)):
            head = "/".join(parts[:i])
            if head in self.symlinks or (self.kind == "folder" and (self.base / head).is_symlink()):
                return f"a folder on its path ({head}) is a symbolic link; not followed"
        if self.kind == "inventory":
            return "no longer there (not in the inventory)"
        return safeio.not_regular(self.base / rel)

    def _shown(self, rel: str) -> str:
        return rel if self.kind == "folder" else f"{FILES_FILE}: {rel}"


def is_capture(folder: Path) -> bool:
    """Whether a folder is an inventory capture (it holds :data:`CAPTURE_FILE` and :data:`FILES_FILE`)."""
    return safeio.not_regular(folder / CAPTURE_FILE) == "" and safeio.not_regular(folder / FILES_FILE) == ""


def open_tree(root: Path, *, max_files: int, known_digests: dict[str, str] | None = None) -> EnvTree:
    """The environment at ``root``: an inventory capture when it is one, else a folder (walked, capped).

    Args:
        known_digests: ``{path inside root: sha256}`` already computed (the custody intake's), used instead of
            hashing a folder's file again.
    """
    root = Path(root)
    if is_capture(root):
        return _open_inventory(root, max_files)
    warnings: list[EvidenceWarning] = []
    unexamined: list[str] = []
    walked = walk_tree(root, warnings, unexamined, max_files=max_files)
    known = known_digests or {}
    files = {f.relpath: EnvFile(f.size, f.mtime_ns, known.get(f.relpath), fs_rel=f.fs_relpath) for f in walked}
    return EnvTree(root, root, "folder", files, warnings=warnings, truncated=bool(unexamined))


def _open_inventory(root: Path, max_files: int) -> EnvTree:
    warnings: list[EvidenceWarning] = []
    try:
        meta = json.loads(safeio.read_text(root / CAPTURE_FILE, limit=MAX_LINE_BYTES))
    except (OSError, ValueError) as exc:
        meta = {}
        warnings.append(EvidenceWarning(CAPTURE_FILE, None, f"not read: {exc}"))
    if not isinstance(meta, dict) or meta.get("format") != CAPTURE_FORMAT:
        warnings.append(EvidenceWarning(CAPTURE_FILE, None, f"format is not {CAPTURE_FORMAT!r}; read as one anyway"))
        meta = meta if isinstance(meta, dict) else {}
    base = root / TREE_DIR
    copied = {f.relpath: f for f in walk_tree(base, warnings, max_files=max_files)} if base.is_dir() else {}
    tree = EnvTree(root, base, "inventory", {}, warnings=warnings, meta=meta)
    try:
        text = safeio.read_text(root / FILES_FILE, limit=MAX_LIST_BYTES)
    except OSError as exc:
        warnings.append(EvidenceWarning(FILES_FILE, None, f"not read: {exc.strerror or exc}"))
        text = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(tree.files) >= max_files:
            warnings.append(EvidenceWarning(FILES_FILE, lineno, f"more than {max_files} files listed; the rest "
                                            "not examined"))  # fmt: skip
            tree.truncated = True
            break
        _listed(tree, copied, lineno, line)
    for rel, f in copied.items():  # a copy the list does not name is still a file of the environment
        if rel not in tree.files:
            warnings.append(EvidenceWarning(f"{TREE_DIR}/{rel}", None, f"copied but not listed in {FILES_FILE}"))
            tree.files[rel] = EnvFile(f.size, f.mtime_ns, fs_rel=f.fs_relpath)
    return tree


def _listed(tree: EnvTree, copied: dict, lineno: int, line: str) -> None:
    """One line of files.jsonl into the tree (a warning naming the line when it cannot be used)."""

    def bad(why: str) -> None:
        tree.warnings.append(EvidenceWarning(FILES_FILE, lineno, f"line not understood ({why}); skipped"))

    if len(line) > MAX_LINE_BYTES:
        return bad(f"longer than {MAX_LINE_BYTES} characters")
    try:
        row = json.loads(line)
    except ValueError as exc:
        return bad(f"not JSON: {exc}")
    path = row.get("path") if isinstance(row, dict) else None
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
        return bad("no relative 'path'")
    if isinstance(row.get("symlink"), str):
        tree.symlinks[path] = row["symlink"][:1024]
        return None
    size, digest, mtime = row.get("size"), row.get("sha256"), row.get("mtime_ns")
    if not isinstance(size, int) or size < 0:
        return bad("'size' is not a count of bytes")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        return bad("'sha256' is not 64 lower-case hex digits")
    binary = row.get("binary")
    copy = copied.get(path)
    tree.files[path] = EnvFile(size, mtime if isinstance(mtime, int) else None, digest,
                               binary if isinstance(binary, bool) else None, copy is not None,
                               copy.fs_relpath if copy is not None else "")  # fmt: skip
    return None
