"""The evidence tree walked: every regular file, breadth first, with a cap that never drops evidence silently.

:func:`walk_tree` never follows a symlink and never opens a special file; it records what it skipped. It takes in at
most :data:`MAX_FILES` files (the case root and shallow folders first); every file past the cap is recorded as
unexamined (the first :data:`MAX_UNEXAMINED_LISTED` by path, the others counted by top folder), so that the run's
coverage is partial and its verdict cannot be clean.

File names are valid Unicode: a name that is not valid UTF-8 (``os.scandir`` hands its bytes over as lone
surrogates) is shown with U+FFFD in their place (made unique in its folder), with a warning;
:attr:`EvidenceFile.fs_relpath` keeps the name as it is on disk, to open the file.

Memory: one small record per file (path, size, mtime in nanoseconds, role); a folder is read in one pass keeping
the first entries by name, at most as many as the cap still admits (plus a slack for sub-folders and the listed
overflow); past the cap entries are only counted.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench import safeio
from workbench.records import EvidenceWarning
from workbench.textsafe import clean_text

__all__ = ["MAX_COUNTED_PAST_CAP", "MAX_FILES", "MAX_UNEXAMINED_LISTED", "EvidenceFile", "walk_tree"]

#: The inventory takes in at most this many files; every file past it is recorded as unexamined.
MAX_FILES = 200_000
#: Files past the cap named one by one in ``unexamined``; the others are counted per top folder.
MAX_UNEXAMINED_LISTED = 100
#: Entries looked at past the cap to count what was left out (beyond: the count is a lower bound).
MAX_COUNTED_PAST_CAP = 5_000_000


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One regular file of the evidence tree.

    Attributes:
        relpath: POSIX path relative to the case root, valid Unicode (the path shown everywhere).
        size: bytes at inventory time.
        mtime_ns: modification time at inventory time, nanoseconds since the epoch (see :attr:`mtime`).
        role: ``"model"`` inside any suspect or reference model folder (every pair), ``"environment"`` inside a captured
            Python environment (:mod:`workbench.environments`), else ``"evidence"``.
        fs: the path as it is on disk when it differs from ``relpath`` (a name that is not valid UTF-8), else None.
    """

    relpath: str
    size: int
    mtime_ns: int
    role: str = "evidence"
    fs: str | None = None

    @property
    def mtime(self) -> datetime:
        """Modification time (UTC) at inventory time."""
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)

    @property
    def fs_relpath(self) -> str:
        """The path relative to the case root as it is on disk (to open the file)."""
        return self.fs if self.fs is not None else self.relpath


def walk_tree(
    root: Path,
    warnings: list[EvidenceWarning],
    unexamined: list[str] | None = None,
    *,
    renamed: dict[str, str] | None = None,
    max_files: int | None = None,
) -> list[EvidenceFile]:
    """Regular files under root, breadth first; symlinks are recorded and never followed; special files are skipped.

    Args:
        root: the folder walked.
        warnings: receives what was skipped, renamed or left out, with the reason.
        unexamined: receives one ``"path: reason"`` per file the inventory could not take in (past the cap, in an
            unreadable folder, not stat-able); past :data:`MAX_UNEXAMINED_LISTED` they are counted per top folder.
        renamed: receives ``{shown path: path on disk}`` for names that are not valid UTF-8.
        max_files: the cap (default :data:`MAX_FILES`).

    Returns:
        At most ``max_files`` files, sorted by path.
    """
    cap = MAX_FILES if max_files is None else max_files
    over = _Overflow(cap)
    out: list[EvidenceFile] = []
    queue: deque[tuple[str, str, str]] = deque([(os.fspath(root), "", "")])  # (folder on disk, shown, on disk)
    while queue:
        current, shown_dir, disk_dir = queue.popleft()
        if len(out) >= cap:
            over.count(current, shown_dir, disk_dir, queue)
            continue
        try:
            with safeio.scandir(current) as it:
                counted = _Counted(it)
                keep = cap - len(out) + _FOLDER_SLACK + MAX_UNEXAMINED_LISTED
                entries = heapq.nsmallest(keep, counted, key=lambda e: e.name)  # sorted; O(keep) memory
                rest = counted.n - len(entries)
        except OSError as exc:
            where = shown_dir or "."
            warnings.append(EvidenceWarning(where, None, f"folder not readable, skipped: {exc.strerror or exc}"))
            if unexamined is not None:
                unexamined.append(f"{where}/: folder not readable ({exc.strerror or exc}), its files not examined")
            continue
        if rest:
            over.skipped_in_folder(shown_dir, rest)
        for entry, name, changed in _shown_names(entries):
            rel = f"{shown_dir}/{name}" if shown_dir else name
            disk = f"{disk_dir}/{entry.name}" if disk_dir else entry.name
            if changed:
                warnings.append(EvidenceWarning(rel, None, "name is not valid UTF-8: shown with U+FFFD for the bytes "
                                                "that are not"))  # fmt: skip
                if renamed is not None:
                    renamed[rel] = disk
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                warnings.append(EvidenceWarning(rel, None, f"cannot stat, skipped: {exc.strerror or exc}"))
                if unexamined is not None:
                    unexamined.append(f"{rel}: cannot stat ({exc.strerror or exc}), not examined")
                continue
            if stat.S_ISLNK(st.st_mode):
                warnings.append(EvidenceWarning(rel, None, _describe_link(root, Path(entry.path))))
            elif stat.S_ISDIR(st.st_mode):
                queue.append((entry.path, rel, disk))
            elif stat.S_ISREG(st.st_mode):
                if len(out) >= cap:
                    over.add(rel)
                    continue
                if not os.access(entry.path, os.R_OK):
                    warnings.append(EvidenceWarning(rel, None, "file not readable by this user"))
                out.append(EvidenceFile(rel, st.st_size, st.st_mtime_ns, "evidence", disk if changed or disk != rel
                                        else None))  # fmt: skip
            else:  # a FIFO, device or socket in the evidence is never opened (a reader would block): named, unexamined
                warnings.append(EvidenceWarning(rel, None, "special file (device, FIFO or socket) skipped"))
                if unexamined is not None:
                    unexamined.append(f"{rel}: special file (device, FIFO or socket), never opened")
    if over.total:
        warnings.append(EvidenceWarning(".", None, f"inventory stopped at {cap} files: {over.describe()} not "
                                        "examined"))  # fmt: skip
        if unexamined is not None:
            unexamined.extend(over.entries())
    out.sort(key=lambda f: f.relpath)
    return out


#: entries kept from one folder beyond what the cap still admits (its sub-folders are among them)
_FOLDER_SLACK = 10_000


class _Counted:
    """An iterator that counts what it hands out."""

    def __init__(self, it: Iterator[os.DirEntry[str]]) -> None:
        self._it, self.n = it, 0

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        for entry in self._it:
            self.n += 1
            yield entry


def _shown_names(entries: list[os.DirEntry[str]]) -> list[tuple[os.DirEntry[str], str, bool]]:
    """Each entry with the name shown for it (valid Unicode, unique in its folder) and whether it differs."""
    out: list[tuple[os.DirEntry[str], str, bool]] = []
    taken: set[str] | None = None
    for entry in entries:
        name, changed = clean_text(entry.name)
        if changed:
            taken = taken if taken is not None else {e.name for e in entries}
            base, n = name, 2
            while name in taken:
                name, n = f"{base}~{n}", n + 1
            taken.add(name)
        out.append((entry, name, changed))
    return out


class _Overflow:
    """Files past the inventory cap: the first :data:`MAX_UNEXAMINED_LISTED` by path, the others counted by top
    folder; the walk past the cap looks at :data:`MAX_COUNTED_PAST_CAP` entries at most."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.listed: list[str] = []
        self.counts: dict[str, int] = {}
        self.total = 0
        self.looked = 0
        self.stopped = False

    def add(self, rel: str) -> None:
        self.total += 1
        if len(self.listed) < MAX_UNEXAMINED_LISTED:
            self.listed.append(rel)
            return
        top = rel.split("/", 1)[0] + "/" if "/" in rel else "."
        if top not in self.counts and len(self.counts) >= MAX_UNEXAMINED_LISTED:
            top = "(other folders)"
        self.counts[top] = self.counts.get(top, 0) + 1

    def skipped_in_folder(self, shown_dir: str, n: int) -> None:
        """``n`` entries of one folder not even listed (a folder larger than the cap admits): counted as files."""
        top = (shown_dir.split("/", 1)[0] + "/") if shown_dir else "."
        self.total += n
        self.counts[top] = self.counts.get(top, 0) + n

    def count(self, current: str, shown_dir: str, disk_dir: str, queue: deque[tuple[str, str, str]]) -> None:
        """Past the cap: count (and list the first few) files of one folder, queueing its sub-folders."""
        if self.stopped:
            return
        try:
            with safeio.scandir(current) as it:
                for entry in it:
                    self.looked += 1
                    if self.looked > MAX_COUNTED_PAST_CAP:
                        self.stopped = True
                        return
                    if entry.is_dir(follow_symlinks=False):
                        name = clean_text(entry.name)[0]
                        disk = f"{disk_dir}/{entry.name}" if disk_dir else entry.name
                        queue.append((entry.path, f"{shown_dir}/{name}" if shown_dir else name, disk))
                    elif entry.is_file(follow_symlinks=False):
                        name = clean_text(entry.name)[0]
                        self.add(f"{shown_dir}/{name}" if shown_dir else name)
        except OSError:
            top = (shown_dir.split("/", 1)[0] + "/") if shown_dir else "."
            self.counts.setdefault(top, 0)

    def describe(self) -> str:
        more = " or more" if self.stopped else ""
        return f"{self.total}{more} file(s) past the cap"

    def entries(self) -> list[str]:
        reason = f"past the inventory cap of {self.cap} files, not examined"
        out = [f"{rel}: {reason}" for rel in sorted(self.listed)]
        out += [f"{top}: {n} more file(s) {reason}" for top, n in sorted(self.counts.items()) if n]
        if self.stopped:
            out.append(f".: counting stopped after {MAX_COUNTED_PAST_CAP} more entries; more files lie past the "
                       "inventory cap")  # fmt: skip
        return out


def _describe_link(root: Path, link: Path) -> str:
    try:
        target = str(link.readlink())
    except OSError:
        target = "?"
    resolved = (link.parent / target).resolve()
    shown = clean_text(target)[0]
    if resolved == root or root in resolved.parents:
        return f"symlink to {shown!r} inside the evidence tree, not followed"
    return f"symlink to {shown!r} leaves the evidence tree, not followed"
