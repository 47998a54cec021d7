"""File operations of containment that must never leave a half-state.

* :func:`atomic_write`: temporary sibling, fsync, rename: a reader sees the old file or the whole new one.
* :func:`copy_verified`: copy a folder into a temporary sibling of the destination (no symlink followed),
  re-hash the copy against the source, then rename it into place; any failure removes the temporary copy.
* :func:`swap_dirs`: exchange two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``), else two renames
  with the first undone if the second fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from workbench.hashing import hash_files

__all__ = [
    "CopyReport",
    "atomic_write",
    "copy_file",
    "copy_tree",
    "copy_verified",
    "hash_tree",
    "swap_dirs",
    "walk_entries",
]


class CopyError(OSError):
    """A copy could not be completed or did not verify; the destination was left untouched."""


@dataclass(slots=True)
class CopyReport:
    """What a copy holds: ``files`` {rel: sha256}, ``links`` {rel: target}, ``skipped`` [(rel, reason)]."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically. Raises OSError (disk full, permission); no partial file remains."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def copy_file(src: Path, dst: Path) -> None:
    """Copy one regular file's bytes and times (the unit that tests make fail to simulate an interruption)."""
    shutil.copyfile(src, dst, follow_symlinks=False)
    shutil.copystat(src, dst, follow_symlinks=False)


def walk_entries(root: Path) -> tuple[list[str], list[str], dict[str, str], list[tuple[str, str]]]:
    """(dirs, regular files, symlinks {rel: target}, special/unreadable [(rel, reason)]) without following links."""
    dirs: list[str] = []
    files: list[str] = []
    links: dict[str, str] = {}
    other: list[tuple[str, str]] = []
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            other.append((current.relative_to(root).as_posix(), f"folder not readable: {exc.strerror or exc}"))
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links[rel] = str(Path(entry.path).readlink())
            elif stat.S_ISDIR(st.st_mode):
                dirs.append(rel)
                stack.append(Path(entry.path))
            elif stat.S_ISREG(st.st_mode):
                files.append(rel)
            else:
                other.append((rel, "special file (device, FIFO or socket) not copied"))
    return sorted(dirs), sorted(files), links, other


def hash_tree(root: Path) -> dict[str, str]:
    """``{rel: sha256}`` of every regular file under ``root`` (streaming; symlinks not followed).

    Raises:
        OSError: a file cannot be read.
    """
    _, files, _, _ = walk_entries(root)
    results = hash_files([root / f for f in files])
    out = {}
    for f in files:
        res = results[root / f]
        if isinstance(res, OSError):
            raise res
        out[f] = res[0]
    return out


def copy_tree(src: Path, dst: Path, *, keep_symlinks: bool = True) -> CopyReport:
    """Copy ``src`` into the new folder ``dst``; symlinks are recreated as links (never followed) or refused.

    Raises:
        CopyError: ``keep_symlinks`` is False and ``src`` holds a symlink.
        OSError: reading or writing failed.
    """
    dirs, files, links, other = walk_entries(src)
    if links and not keep_symlinks:
        first = sorted(links)[0]
        raise CopyError(errno.EPERM, f"holds a symlink ({first} -> {links[first]}); refusing to install it", str(src))
    dst.mkdir(parents=False, exist_ok=False)
    for d in dirs:
        (dst / d).mkdir()
    report = CopyReport(links=dict(links), skipped=list(other))
    for f in files:
        copy_file(src / f, dst / f)
    for rel, target in links.items():
        (dst / rel).symlink_to(target)
    report.files = {f: "" for f in files}
    return report


def copy_verified(src: Path, dst: Path, *, keep_symlinks: bool = True, expected: dict[str, str] | None = None):
    """Copy ``src`` to ``dst`` (which must not exist) through a temporary sibling, verified by SHA-256.

    Args:
        src: folder to copy (symlinks inside are never followed).
        dst: final path.
        keep_symlinks: recreate symlinks as links (forensic copy) or refuse them (installation).
        expected: digests the copy must match (default: the source hashed just before copying).

    Returns:
        The :class:`CopyReport` with the verified digests.

    Raises:
        CopyError: the copy does not match (source changed, or bad read) or a symlink was refused.
        FileExistsError: ``dst`` exists.
        OSError: reading or writing failed. In every case nothing is left at ``dst`` or in the temporary copy.
    """
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
    dst.parent.mkdir(parents=True, exist_ok=True)
    before = expected if expected is not None else hash_tree(src)
    tmp = dst.with_name(f".{dst.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        report = copy_tree(src, tmp, keep_symlinks=keep_symlinks)
        after = hash_tree(tmp)
        if after != before:
            diff = sorted(set(after.items()) ^ set(before.items()))
            raise CopyError(errno.EIO, f"copy does not match the source ({diff[0][0]} differs)", str(src))
        report.files = after
        report.bytes = sum((tmp / f).stat().st_size for f in after)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ≥ 3.15). False when the system cannot; OSError on a real failure."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_dirs(new: Path, current: Path) -> str:
    """Put ``new`` at ``current``'s path and ``current``'s folder at ``new``'s path.

    Returns:
        ``"exchange"`` (one atomic system call) or ``"rename"`` (two renames; the first is undone if the second
        fails, so the model path holds the old folder or the new one, never a mix).
    """
    if _renameat2_exchange(new, current):
        return "exchange"
    parked = current.with_name(f".{current.name}.old-{uuid.uuid4().hex[:8]}")
    current.rename(parked)
    try:
        new.rename(current)
    except BaseException:
        parked.rename(current)
        raise
    parked.rename(new)
    return "rename"
