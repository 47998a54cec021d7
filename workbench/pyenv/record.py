"""Installed-package verification: a captured ``site-packages`` folder checked against its ``*.dist-info/RECORD``.

Reads the evidence only, through :class:`workbench.pyenv.tree.EnvTree` (a copy of the folder, walked without
following a symlink, or the inventory ``contain assess`` captures); nothing found there is imported, compiled or
executed.

For every distribution (``NAME-VERSION.dist-info`` at the top of the folder) each file its RECORD lists is hashed
(streamed; an inventory's listed digest) and compared with the recorded SHA-256 and size. Reported as
:class:`Issue` records (``kind`` one of the ``KIND_*`` constants):

- ``modified`` (hash or size differs), ``missing`` (listed, not there; generated ``.pyc`` listed without a hash are
  not required), ``not-regular`` (listed, but a symlink or special file now);
- ``unrecorded``: a file under one of the distribution's top-level packages or modules (or its dist-info) that no
  RECORD lists (nor lists validly: a file whose RECORD line is malformed is unrecorded too); ``.pyc`` files in
  ``__pycache__`` are left out unless listed, but a sourceless ``.pyc`` beside the modules (Python imports it) and
  anything else dropped in ``__pycache__`` are reported;
- ``record-path-escape``: a RECORD path that is absolute or climbs out of the folder, never followed. The places pip
  writes outside ``site-packages`` on purpose (``../../../bin/``, ``share``, ``include``, ``etc``,
  ``../../Scripts/``) are counted as :attr:`Distribution.outside` instead, not an issue;
- ``pth-executable``: a line of a top-level ``.pth`` file that ``site.py`` executes at every interpreter start (it
  begins with ``import`` + space or tab); ``pth-indented-import``: one that looks like code but is indented, which
  ``site.py`` treats as a path (shown, for review); plain path lines are not reported;
- ``customize-hook``: ``sitecustomize`` / ``usercustomize`` present, with its first lines of code;
- ``binary-in-purelib``: an ELF / Mach-O / PE file, or a ``.so`` / ``.pyd`` / ``.dylib`` / ``.dll``, inside a
  distribution whose ``WHEEL`` says ``Root-Is-Purelib: true``.

A RECORD line that cannot be read is an :class:`~workbench.records.EvidenceWarning` naming the file and line; the
walk goes on. Files, bytes hashed and line lengths are capped.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workbench.pyenv.hooks import KIND_CUSTOMIZE, KIND_PTH_EXEC, KIND_PTH_INDENTED, hook_issues
from workbench.pyenv.record_lines import MAX_LINE, RecordLineError, parse_record_fields, split_record_line
from workbench.pyenv.tree import EnvTree, open_tree
from workbench.records import EvidenceWarning

__all__ = [
    "KIND_BINARY",
    "KIND_CUSTOMIZE",
    "KIND_ESCAPE",
    "KIND_MISSING",
    "KIND_MODIFIED",
    "KIND_NOT_REGULAR",
    "KIND_PTH_EXEC",
    "KIND_PTH_INDENTED",
    "KIND_UNRECORDED",
    "Distribution",
    "Issue",
    "SiteReport",
    "verify_site_packages",
]

KIND_MODIFIED = "modified"
KIND_MISSING = "missing"
KIND_NOT_REGULAR = "not-regular"
KIND_UNRECORDED = "unrecorded"
KIND_ESCAPE = "record-path-escape"
KIND_BINARY = "binary-in-purelib"

#: files walked at most
MAX_FILES = 100_000
#: bytes hashed at most over the whole folder; files past it are not verified (one warning)
MAX_BYTES = 4 * 1024**3
#: largest RECORD, METADATA, WHEEL, ``.pth`` or customize file read
MAX_TEXT_BYTES = 8 * 1024 * 1024

_OUTSIDE_OK = (
    "../../../bin/",
    "../../../share/",
    "../../../include/",
    "../../../etc/",
    "../../Scripts/",
    "../../share/",
)
_DIST_INFO = re.compile(r"^(?P<name>[^/]+?)-(?P<version>[^/-]+)\.dist-info$")


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing found in the folder.

    Attributes:
        path: POSIX path relative to the ``site-packages`` root (the ``.pth``, the changed file, the RECORD for an
            escaping entry).
        line: 1-based line (of the ``.pth``, the RECORD, the customize file), or None.
        kind: one of the ``KIND_*`` constants.
        detail: what is wrong, with the evidence (hashes, the line shown; never run).
        distribution: the distribution concerned (its dist-info folder name), or None.
    """

    path: str
    line: int | None
    kind: str
    detail: str
    distribution: str | None = None


@dataclass(frozen=True, slots=True)
class Distribution:
    """One ``*.dist-info`` and what its RECORD said.

    Attributes:
        name, version: from METADATA (else the folder name).
        dist_info: the folder name.
        listed: RECORD entries read.
        verified: files hashed and compared (matching or not).
        outside: entries pip writes outside ``site-packages`` (scripts, data), not followed.
        purelib: ``Root-Is-Purelib`` of WHEEL (None when there is no WHEEL).
        top_level: the top-level packages / modules it owns.
        files: the paths its RECORD lists inside ``site-packages`` (read validly), in RECORD order.
        installed: when its RECORD was written (the file's mtime as captured: an install time, as good as the
            capture's clock and copy), or None.
    """

    name: str
    version: str
    dist_info: str
    listed: int
    verified: int
    outside: int
    purelib: bool | None
    top_level: tuple[str, ...]
    files: tuple[str, ...] = ()
    installed: datetime | None = None


@dataclass(frozen=True, slots=True)
class SiteReport:
    """What :func:`verify_site_packages` found.

    Attributes:
        root: the folder examined.
        distributions: one per dist-info, by name.
        issues: every :class:`Issue`, by path.
        warnings: what could not be read (bad RECORD lines, caps reached, symlinks met), the walk went on.
        files_seen: regular files walked.
        bytes_hashed: bytes read for hashing.
        tree: the environment read (its files' digests filled in as far as they were hashed).
        unverified: listed files not hashed because the byte budget was spent.
        truncated: the environment had more files than the cap (the rest not examined).
    """

    root: str
    distributions: tuple[Distribution, ...]
    issues: tuple[Issue, ...]
    warnings: tuple[EvidenceWarning, ...]
    files_seen: int
    bytes_hashed: int
    tree: EnvTree
    unverified: int = 0
    truncated: bool = False

    @property
    def files_verified(self) -> int:
        """Files hashed against a RECORD, over all distributions."""
        return sum(d.verified for d in self.distributions)

    def of_kind(self, kind: str) -> list[Issue]:
        """The issues of one kind."""
        return [i for i in self.issues if i.kind == kind]


@dataclass(slots=True)
class _State:
    tree: EnvTree
    max_bytes: int
    issues: list[Issue] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    bytes_hashed: int = 0
    over_bytes: int = 0

    @property
    def present(self) -> dict:
        return self.tree.files


def verify_site_packages(root: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES,
                         known_digests: dict[str, str] | None = None) -> SiteReport:  # fmt: skip
    """Check a captured ``site-packages`` against its RECORD files and look for import-time hooks.

    Args:
        root: the folder, or an inventory capture (:func:`workbench.pyenv.tree.open_tree`; evidence: walked without
            following symlinks, nothing imported or run).
        max_files: files walked at most (past it: a warning, the rest unexamined).
        max_bytes: bytes hashed at most (past it: a warning, the rest not verified).
        known_digests: ``{path inside root: sha256}`` already computed (the intake's): those files are not read.

    Returns:
        The :class:`SiteReport`.
    """
    root = Path(root)
    tree = open_tree(root, max_files=max_files, known_digests=known_digests)
    st = _State(tree, max_bytes, warnings=tree.warnings)
    dists: list[tuple[Distribution, set[str]]] = []
    for info in sorted({p.split("/", 1)[0] for p in st.present if _DIST_INFO.match(p.split("/", 1)[0])}):
        dists.append(_verify_distribution(st, info))
    for dist, tops in dists:
        _unrecorded(st, dist, tops)
    if st.over_bytes:
        st.warnings.append(EvidenceWarning(".", None, f"hashing stopped at {max_bytes} bytes: {st.over_bytes} "
                                           "listed file(s) not verified"))  # fmt: skip
    _hooks(st)
    return SiteReport(
        root=str(root),
        distributions=tuple(sorted((d for d, _ in dists), key=lambda d: (d.name.lower(), d.dist_info))),
        issues=tuple(sorted(st.issues, key=lambda i: (i.path, i.line or 0, i.kind))),
        warnings=tuple(st.warnings),
        files_seen=len(tree.files),
        bytes_hashed=st.bytes_hashed,
        tree=tree,
        unverified=st.over_bytes,
        truncated=tree.truncated,
    )


# ------------------------------------------------------------------------------------------------ distributions
def _read_text(st: _State, rel: str) -> str | None:
    return st.tree.read_text(rel, MAX_TEXT_BYTES)


def _headers(text: str | None) -> dict[str, str]:
    """``Key: value`` headers up to the first blank line (METADATA, WHEEL), first occurrence wins."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() not in out:
            out[key.strip()] = value.strip()[:MAX_LINE]
    return out


def _verify_distribution(st: _State, info: str) -> tuple[Distribution, set[str]]:
    m = _DIST_INFO.match(info)
    assert m is not None  # noqa: S101 - chosen by the caller with the same pattern
    meta = _headers(_read_text(st, f"{info}/METADATA")) if f"{info}/METADATA" in st.present else {}
    wheel = _headers(_read_text(st, f"{info}/WHEEL")) if f"{info}/WHEEL" in st.present else None
    purelib = None if wheel is None else wheel.get("Root-Is-Purelib", "").lower() == "true"
    tops: set[str] = {info}
    listed = verified = outside = 0
    mine: list[str] = []
    record = f"{info}/RECORD"
    text = _read_text(st, record) if record in st.present else None
    if text is None and record not in st.present:
        st.warnings.append(EvidenceWarning(record, None, "no RECORD: the distribution's files cannot be verified"))
    for lineno, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        row = _split_line(st, record, lineno, line)
        if row is None:
            continue
        path = row[0]
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "\\" in path:
            listed += 1
            st.issues.append(Issue(record, lineno, KIND_ESCAPE, f"absolute path {path[:MAX_LINE]!r} in RECORD; not "
                                   "followed", info))  # fmt: skip
            continue
        norm = posixpath.normpath(path)
        if norm == ".." or norm.startswith("../"):
            listed += 1
            if norm.startswith(_OUTSIDE_OK) and ".." not in norm.split("/")[norm.count("../") :]:
                outside += 1
            else:
                st.issues.append(Issue(record, lineno, KIND_ESCAPE, f"path {path[:MAX_LINE]!r} leaves site-packages "
                                       f"(resolves to {norm!r}); not followed", info))  # fmt: skip
            continue
        entry = _parse_fields(st, record, lineno, row)
        if entry is None:
            continue
        listed += 1
        algo, digest, size = entry
        st.recorded.add(norm)
        mine.append(norm)
        head = norm.split("/", 1)[0]
        if head != "__pycache__":
            tops.add(head)
        if norm not in st.present:
            why = st.tree.not_regular(norm)
            if why and not why.startswith("no longer there"):
                st.issues.append(Issue(norm, None, KIND_NOT_REGULAR, f"listed in {record} line {lineno}, but {why}",
                                       info))  # fmt: skip
            elif digest is not None or not norm.endswith(".pyc"):
                st.issues.append(Issue(norm, None, KIND_MISSING, f"listed in {record} line {lineno}, not in the "
                                       "folder", info))  # fmt: skip
            continue
        if digest is None:
            continue
        here = st.tree.hashed_here(norm)
        if here and st.bytes_hashed >= st.max_bytes:
            st.over_bytes += 1
            continue
        hashed = st.tree.digest(norm)
        if hashed is None:
            continue
        hexdigest, got = hashed
        st.bytes_hashed += got if here else 0
        verified += 1
        want = digest.hex()
        if hexdigest != want or (size is not None and size != got):
            st.issues.append(Issue(norm, None, KIND_MODIFIED, f"{algo} {hexdigest}, {got} bytes; RECORD ({record} "
                                   f"line {lineno}) says {want}, {size} bytes", info))  # fmt: skip
    names = m["name"], m["version"]
    dist = Distribution(
        name=meta.get("Name") or names[0],
        version=meta.get("Version") or names[1],
        dist_info=info,
        listed=listed,
        verified=verified,
        outside=outside,
        purelib=purelib,
        top_level=tuple(sorted(tops - {info})),
        files=tuple(dict.fromkeys(mine)),
        installed=st.present[record].mtime if record in st.present else None,
    )
    return dist, tops


def _bad(st: _State, record: str, lineno: int, why: str) -> None:
    st.warnings.append(EvidenceWarning(record, lineno, f"RECORD line not understood ({why}); skipped"))


def _split_line(st: _State, record: str, lineno: int, line: str) -> list[str] | None:
    """The three fields ``path,hash,size`` of one RECORD line, or None (warning recorded)."""
    try:
        return split_record_line(line)
    except RecordLineError as exc:
        _bad(st, record, lineno, str(exc))
        return None


def _parse_fields(st: _State, record: str, lineno: int, row: list[str]) -> tuple[str, bytes | None, int | None] | None:
    """``(algorithm, digest or None, size or None)`` of a RECORD row, or None (warning recorded)."""
    try:
        return parse_record_fields(row)
    except RecordLineError as exc:
        _bad(st, record, lineno, str(exc))
        return None


def _unrecorded(st: _State, dist: Distribution, tops: set[str]) -> None:
    """Files under the distribution's tops that no RECORD lists; binaries when the wheel is purelib."""
    for rel in sorted(st.present):
        parts = rel.split("/")
        if parts[0] not in tops:
            continue
        listed = rel in st.recorded
        if not listed and rel != f"{dist.dist_info}/RECORD" and not _cache(parts):
            st.issues.append(Issue(rel, None, KIND_UNRECORDED, f"under {parts[0]!r} of {dist.dist_info}, listed in no "
                                   "RECORD", dist.dist_info))  # fmt: skip
        if dist.purelib and st.tree.is_binary(rel):
            where = "listed in its RECORD" if listed else "in no RECORD"
            st.issues.append(Issue(rel, None, KIND_BINARY, f"native binary inside {dist.dist_info}, whose WHEEL says "
                                   f"Root-Is-Purelib: true ({where})", dist.dist_info))  # fmt: skip


def _cache(parts: list[str]) -> bool:
    """A compiled file in a ``__pycache__`` folder (a sourceless ``.pyc`` beside the modules is importable: kept)."""
    return len(parts) > 1 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


# -------------------------------------------------------------------------------------------- import-time hooks
def _hooks(st: _State) -> None:
    """The import-time hooks of the folder (:func:`workbench.pyenv.hooks.hook_issues`) as issues."""

    def read(rel: str) -> str | None:
        return _read_text(st, rel)

    def owner(rel: str) -> str:
        return "listed in a RECORD" if rel in st.recorded else "in no RECORD"

    for path, line, kind, detail in hook_issues(st.present, read, owner, max_line=MAX_LINE):
        st.issues.append(Issue(path, line, kind, detail))
