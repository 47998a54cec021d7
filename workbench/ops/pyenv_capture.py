"""Capture a live Python environment's inventory, in the form :mod:`workbench.pyenv.tree` reads back.

``workbench contain assess`` calls :func:`capture_environment` on each ``site-packages`` folder of the serving
interpreter. The folder is not copied whole (a virtual environment holds tens of thousands of files): every regular
file is listed in :data:`~workbench.pyenv.tree.FILES_FILE` with its size, mtime, SHA-256 and whether it is a native
binary, every symlink with its target (never followed), and only the small files the checks read are copied under
:data:`~workbench.pyenv.tree.TREE_DIR` with their mtimes (so RECORD install times survive): every file of each
top-level ``*.dist-info`` folder, every top-level ``*.pth``, and ``sitecustomize`` / ``usercustomize`` (a top-level
module or a package's ``__init__.py``). :data:`~workbench.pyenv.tree.CAPTURE_FILE` is written last, as the header.

The capture is built in a temporary sibling of ``dest`` and renamed into place, each file written atomically
(:func:`workbench.ops.fsutil.atomic_write`): ``dest`` holds a whole capture or nothing. The walk is breadth first
(top-level ``*.dist-info`` metadata before deep package files), never follows a symlink, never opens a special file,
and stops at ``max_files`` listed files. Nothing found is imported or run. Output order is sorted by path.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from workbench import safeio
from workbench.hashing import sha256_file
from workbench.ops.fsutil import atomic_write
from workbench.pyenv.record import MAX_FILES, MAX_TEXT_BYTES
from workbench.pyenv.tree import BINARY_MAGICS, BINARY_SUFFIXES, CAPTURE_FILE, CAPTURE_FORMAT, FILES_FILE, TREE_DIR
from workbench.textsafe import clean_text

__all__ = ["MAX_COPY_TOTAL", "CaptureSummary", "capture_environment", "copied_by_capture"]

#: bytes copied under ``tree/`` at most, over all files (past it the files are listed, not copied)
MAX_COPY_TOTAL = 256 * 1024 * 1024
#: problems named one by one in the summary (the others counted)
MAX_NOTES = 50
#: files up to this size are read once (digest and first bytes from the same read); larger ones are streamed
SMALL_FILE = 1024 * 1024
_CUSTOMIZE = ("sitecustomize", "usercustomize")


@dataclass(slots=True)
class CaptureSummary:
    """What one capture holds.

    Attributes:
        dest: the capture folder written.
        site_packages: the folder captured (absolute).
        files / bytes: regular files listed and their total size.
        copied / copied_bytes: files copied under ``tree/`` and their size.
        symlinks: symlinks listed (not followed).
        special: special files (FIFO, device, socket) skipped.
        unreadable: files or folders that could not be read (a file is listed with its ``error``, without digest).
        truncated: the walk stopped at ``max_files``; files past it are not listed.
        notes: the problems, one line each (the first :data:`MAX_NOTES`).
    """

    dest: Path
    site_packages: Path
    files: int = 0
    bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    symlinks: int = 0
    special: int = 0
    unreadable: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("... further problems not listed")


def copied_by_capture(rel: str) -> bool:
    """Whether a file (POSIX path relative to site-packages) is one the checks read, so the capture copies it."""
    parts = rel.split("/")
    if len(parts) > 1:
        return parts[0].endswith(".dist-info") or (len(parts) == 2 and parts[0] in _CUSTOMIZE
                                                   and parts[1] == "__init__.py")  # fmt: skip
    return rel.endswith(".pth") or rel.startswith(tuple(f"{n}." for n in _CUSTOMIZE))


def capture_environment(
    site_packages: Path,
    dest: Path,
    *,
    python_version: str | None,
    max_files: int = MAX_FILES,
    max_copy_bytes: int = MAX_TEXT_BYTES,
) -> CaptureSummary:
    """List ``site_packages`` and copy the files the checks read into the new folder ``dest``.

    Args:
        site_packages: the live folder (its own path is taken as given; nothing inside it is followed).
        dest: the capture folder to create (must not exist), e.g. ``<incident>/python-env/1``.
        python_version: the interpreter's version, recorded in the header.
        max_files: regular files listed at most (past it: :attr:`CaptureSummary.truncated`).
        max_copy_bytes: largest single file copied (a larger one is listed, not copied).

    Returns:
        The :class:`CaptureSummary`.

    Raises:
        FileExistsError: ``dest`` exists.
        OSError: ``site_packages`` is not a readable folder, or writing failed (nothing is left at ``dest``).
    """
    root = Path(site_packages).absolute()
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(errno.EEXIST, "capture folder exists", str(dest))
    summary = CaptureSummary(dest, root)
    regular, links = _walk(root, max_files, summary)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        rows = _list_files(root, tmp / TREE_DIR, regular, max_copy_bytes, summary)
        rows += [{"path": rel, "symlink": target} for rel, target in links]
        rows.sort(key=lambda r: r["path"])
        atomic_write(tmp / FILES_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
        header = {
            "format": CAPTURE_FORMAT,
            "version": 1,
            "site_packages": str(root),
            "python": python_version,
            "captured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": summary.files,
            "bytes": summary.bytes,
            "copied": summary.copied,
            "symlinks": summary.symlinks,
            "special": summary.special,
            "unreadable": summary.unreadable,
            "truncated": summary.truncated,
        }
        atomic_write(tmp / CAPTURE_FILE, (json.dumps(header, indent=2) + "\n").encode())
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _walk(root: Path, max_files: int, summary: CaptureSummary) -> tuple[list[tuple[str, str, os.stat_result]],
                                                                          list[tuple[str, str]]]:  # fmt: skip
    """Breadth first: ``([(shown rel, rel on disk, stat)], [(shown rel, link target)])``; symlinks never followed."""
    regular: list[tuple[str, str, os.stat_result]] = []
    links: list[tuple[str, str]] = []
    queue: deque[tuple[str, str]] = deque([("", "")])  # (shown, on disk)
    while queue:
        shown_dir, disk_dir = queue.popleft()
        folder = root / disk_dir if disk_dir else root
        try:
            with safeio.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not disk_dir:
                raise
            summary.unreadable += 1
            summary.note(f"{shown_dir}/: folder not readable ({exc.strerror or exc}); its files not listed")
            continue
        for entry in entries:
            name, changed = clean_text(entry.name)
            rel = f"{shown_dir}/{name}" if shown_dir else name
            disk = f"{disk_dir}/{entry.name}" if disk_dir else entry.name
            if changed:
                summary.note(f"{rel}: name is not valid UTF-8; listed with U+FFFD")
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                summary.unreadable += 1
                summary.note(f"{rel}: cannot stat ({exc.strerror or exc}); not listed")
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = str(Path(entry.path).readlink())
                except OSError as exc:
                    target = f"(unreadable link: {exc.strerror or exc})"
                links.append((rel, clean_text(target)[0]))
                summary.symlinks += 1
            elif stat.S_ISDIR(st.st_mode):
                queue.append((rel, disk))
            elif stat.S_ISREG(st.st_mode):
                if len(regular) >= max_files:
                    if not summary.truncated:
                        summary.truncated = True
                        summary.note(f"more than {max_files} files: the walk stopped; the rest are not listed")
                    queue.clear()
                    break
                regular.append((rel, disk, st))
            else:
                summary.special += 1
                summary.note(f"{rel}: special file (device, FIFO or socket) skipped")
    return regular, links


def _list_files(root: Path, tree: Path, regular: list[tuple[str, str, os.stat_result]], max_copy: int,
                summary: CaptureSummary) -> list[dict]:  # fmt: skip
    """One files.jsonl row per regular file; the files the checks read copied (mtimes kept) under ``tree``.

    A small file is read once (its digest, its first bytes and its copy come from the same bytes); a larger one is
    streamed through :func:`~workbench.hashing.sha256_file` (measured on 30,000 mostly small files: sequential
    hashing is faster than the thread pool of ``hash_files``, whose per-file overhead dominates).
    """
    rows: list[dict] = []
    budget = MAX_COPY_TOTAL
    for rel, disk, st in regular:
        copy = copied_by_capture(rel)
        if copy and (st.st_size > max_copy or st.st_size > budget):
            summary.note(f"{rel}: {st.st_size} bytes, over the copy limit; listed, not copied")
            copy = False
        try:
            row = _read_row(root / disk, rel, st, max_copy if copy else SMALL_FILE, tree / rel if copy else None)
        except OSError as exc:
            summary.unreadable += 1
            why = exc.strerror or str(exc)
            summary.note(f"{rel}: not read ({why}); listed without digest (the reader warns on its line)")
            row = {"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "error": f"not read: {why}"}
        else:
            if copy:
                budget -= row["size"]
                summary.copied += 1
                summary.copied_bytes += row["size"]
            summary.bytes += row["size"]
        rows.append(row)
    summary.files += len(rows)
    return rows


def _read_row(path: Path, rel: str, st: os.stat_result, limit: int, copy_to: Path | None) -> dict:
    """The row of one file, and its copy at ``copy_to`` (bytes as hashed, mtime of the source)."""
    data = None
    if st.st_size <= limit:
        try:
            data = safeio.read_bytes(path, limit=limit)
        except safeio.FileTooLarge:
            if copy_to is not None:
                raise
    if data is not None:
        digest, size, head = hashlib.sha256(data).hexdigest(), len(data), data[:4]
    else:  # a large file, or one that grew past the limit since it was listed
        digest, size = sha256_file(path)
        with safeio.open_evidence(path) as fh:
            head = fh.read(4)
    if copy_to is not None:
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(copy_to, data or b"")
        os.utime(copy_to, ns=(st.st_atime_ns, st.st_mtime_ns))
    binary = rel.lower().endswith(BINARY_SUFFIXES) or head.startswith(BINARY_MAGICS)
    return {"path": rel, "size": size, "mtime_ns": st.st_mtime_ns, "sha256": digest, "binary": binary}
