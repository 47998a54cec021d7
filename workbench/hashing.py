"""Streaming SHA-256 of files and trees: constant memory whatever the file size, parallel across files.

hashlib releases the GIL while hashing large buffers, so a thread pool uses every core (SHA-256 is CPU-bound here:
about 1 GB/s per core against 6 GB/s from the page cache).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["CHUNK", "hash_files", "sha256_file"]

#: Read size: large enough to amortise syscalls, small enough to keep memory flat.
CHUNK = 1024 * 1024


def sha256_file(path: str | os.PathLike[str], *, chunk: int = CHUNK) -> tuple[str, int]:
    """SHA-256 of one file, streamed.

    Returns:
        ``(hex digest, bytes read)``.

    Raises:
        OSError: the file cannot be opened or read (callers record it as a warning).
    """
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    # O_NOFOLLOW: a path that became a symlink after inventory is refused, not followed.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def hash_files(
    paths: Iterable[Path],
    *,
    workers: int | None = None,
    progress: Callable[[Path, int], None] | None = None,
) -> dict[Path, tuple[str, int] | OSError]:
    """Hash many files in parallel.

    Args:
        paths: files to hash.
        workers: threads (default: CPU count, at most 8).
        progress: called as ``progress(path, size)`` after each file (from the calling thread).

    Returns:
        For each path, ``(hex digest, size)`` or the ``OSError`` that prevented reading it.
    """
    paths = list(paths)
    workers = workers or min(8, os.cpu_count() or 1)

    def one(p: Path) -> tuple[str, int] | OSError:
        try:
            return sha256_file(p)
        except OSError as exc:
            return exc

    results: dict[Path, tuple[str, int] | OSError] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, res in zip(paths, pool.map(one, paths), strict=True):
            results[path] = res
            if progress is not None:
                progress(path, res[1] if isinstance(res, tuple) else 0)
    return results
