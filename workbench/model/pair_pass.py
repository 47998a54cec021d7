"""One read pass over a pair of files that hashes both and finds where they differ (the tensor diff's first step).

:func:`hash_and_compare` maps both files window by window (read-only, ``MAP_POPULATE``, :data:`WINDOW` bytes,
unmapped before the next: resident memory about two windows whatever the sizes), hashes the suspect's window in a
worker thread while the calling thread maps and hashes the reference's (``mmap`` and hashlib release the GIL: both
cores work), then both threads compare half of the two windows each with ``memcmp`` (through ctypes, which releases
the GIL too) piece by piece (:data:`PIECE` bytes). The result gives each file's SHA-256 and size and the byte
ranges, at piece granularity, that may differ: every byte that differs lies in one of them (bytes past the shorter
file's end are a range too); ranges one piece apart are merged, and their number is capped (:data:`MAX_RANGES`, by
coarsening).

The tensor diff reads back only the tensors, and blocks of them, that these ranges touch
(:class:`Changes`); a tensor lying at the same offsets in both files and touched by no range is identical without
being read again. A side whose digest is known already (the custody intake's) is only compared, not hashed.
Files are opened through :func:`workbench.safeio.open_evidence` (no symlink followed, no FIFO blocked on);
nothing is executed.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import hashlib
import mmap
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.case import walk_tree
from workbench.checks.integrity import is_model_content
from workbench.hashing import HashingStopped, hash_files
from workbench.safeio import open_evidence

__all__ = ["PIECE", "WINDOW", "Changes", "PairPass", "hash_and_compare", "pair_key", "pass_folders"]

#: bytes mapped per file at a time
WINDOW = 4 * 1024 * 1024
#: granularity of the differing ranges (ranges one piece apart or less are merged)
PIECE = 64 * 1024
#: most ranges kept before they are coarsened
MAX_RANGES = 1 << 16
_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_memcmp = _libc.memcmp
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int


@dataclass(frozen=True, slots=True)
class Changes:
    """Byte ranges ``[start, end)`` of a file pair that may differ (sorted, disjoint); empty: identical bytes."""

    ranges: tuple[tuple[int, int], ...] = ()

    def touches(self, start: int, end: int) -> bool:
        """Whether some range overlaps ``[start, end)`` (an empty interval overlaps nothing)."""
        if end <= start:
            return False
        i = bisect.bisect_right(self.ranges, (start, float("inf"))) - 1
        if i >= 0 and self.ranges[i][1] > start:
            return True
        return i + 1 < len(self.ranges) and self.ranges[i + 1][0] < end


@dataclass(slots=True)
class PairPass:
    """What one pass over a file pair found: each side's digest (None when not hashed) and size, and the changes."""

    suspect_sha256: str | None
    reference_sha256: str | None
    suspect_size: int
    reference_size: int
    changes: Changes = field(default_factory=Changes)

    @property
    def identical(self) -> bool:
        return not self.changes.ranges and self.suspect_size == self.reference_size


class _Ranges:
    """Differing ranges, merged when closer than ``gap``; past :data:`MAX_RANGES` the gap doubles and the ranges
    are merged again (a file pair differing in every other piece keeps a bounded list, of coarser ranges)."""

    def __init__(self, gap: int) -> None:
        self.gap = gap
        self.items: list[list[int]] = []

    def add(self, start: int, end: int) -> None:
        if self.items and start - self.items[-1][1] <= self.gap:
            self.items[-1][1] = max(self.items[-1][1], end)
            return
        self.items.append([start, end])
        if len(self.items) > MAX_RANGES:
            self.gap *= 2
            merged: list[list[int]] = []
            for a, b in self.items:
                if merged and a - merged[-1][1] <= self.gap:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            self.items = merged


def _differing(a: mmap.mmap, b: mmap.mmap, lo: int, hi: int) -> list[tuple[int, int]]:
    """The pieces of ``[lo, hi)`` (offsets in two windows) whose bytes differ."""
    if hi <= lo:
        return []
    pa, pb = _buffer_address(a), _buffer_address(b)
    if _memcmp(pa + lo, pb + lo, hi - lo) == 0:
        return []
    out = []
    for off in range(lo, hi, PIECE):
        k = min(PIECE, hi - off)
        if _memcmp(pa + off, pb + off, k) != 0:
            out.append((off, off + k))
    return out


def _map_and_hash(fd: int, offset: int, digest: Any) -> mmap.mmap | None:
    """One file's window, mapped (populated) and added to its digest (None: nothing left of the file there)."""
    m = _window(fd, offset, WINDOW)
    if m is not None and digest is not None:
        try:
            digest.update(m)
        except BaseException:
            m.close()
            raise
    return m


class _Py_buffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.py_object), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]  # fmt: skip


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = (ctypes.py_object, ctypes.POINTER(_Py_buffer), ctypes.c_int)
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = (ctypes.POINTER(_Py_buffer),)


def _buffer_address(obj: object) -> int:
    """Address of a buffer's first byte; the buffer is released at once (the caller keeps ``obj`` alive and
    mapped while it uses the address)."""
    view = _Py_buffer()
    _get_buffer(obj, ctypes.byref(view), 0)
    try:
        return int(view.buf or 0)
    finally:
        _release_buffer(ctypes.byref(view))


def _window(fd: int, offset: int, size: int) -> mmap.mmap | None:
    """A populated read-only map of ``[offset, offset + size)``, or None when nothing is left of it."""
    size = min(size, os.fstat(fd).st_size - offset)  # a file that shrank is never mapped past its end
    if size <= 0:
        return None
    return mmap.mmap(fd, size, flags=_FLAGS, prot=mmap.PROT_READ, offset=offset)


def hash_and_compare(
    suspect: Path,
    reference: Path,
    *,
    hash_suspect: bool = True,
    hash_reference: bool = True,
    stop: threading.Event | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> PairPass:
    """Hash two files and find where they differ, in one pass over both (see the module docstring).

    Args:
        suspect / reference: the files (symlinks refused).
        hash_suspect / hash_reference: False: that side is not hashed (its digest is known already; None in the
            result).
        stop: when set, the pass stops at the next window with :class:`~workbench.hashing.HashingStopped`.
        on_bytes: called with the bytes of both files covered by each window (progress), or None.

    Raises:
        OSError: a file cannot be opened, mapped or read.
    """
    hs = hashlib.sha256() if hash_suspect else None
    hr = hashlib.sha256() if hash_reference else None
    ranges = _Ranges(PIECE)
    with open_evidence(suspect, buffering=0) as fs, open_evidence(reference, buffering=0) as fr, \
            ThreadPoolExecutor(1, thread_name_prefix="pairhash") as pool:  # fmt: skip
        ds, dr = fs.fileno(), fr.fileno()
        size_s, size_r = os.fstat(ds).st_size, os.fstat(dr).st_size
        done_s = done_r = off = 0
        while off < max(size_s, size_r):
            if stop is not None and stop.is_set():
                raise HashingStopped(str(suspect))
            job = pool.submit(_map_and_hash, ds, off, hs)  # the suspect's window, mapped and hashed by the worker
            ms = mr = None
            try:
                mr = _map_and_hash(dr, off, hr)
                ms = job.result()
                ns, nr = len(ms) if ms else 0, len(mr) if mr else 0
                if n := min(ns, nr):  # compared by both threads, half each
                    half = n // 2 // PIECE * PIECE
                    low = pool.submit(_differing, ms, mr, 0, half)
                    found = _differing(ms, mr, half, n)
                    for a, b in low.result() + found:
                        ranges.add(off + a, off + b)
            finally:
                if ms is None and job.exception() is None:
                    ms = job.result()  # this thread failed first: still unmap the worker's window
                for m in (ms, mr):
                    if m is not None:
                        m.close()
            done_s, done_r = done_s + ns, done_r + nr
            if max(ns, nr) < WINDOW:
                break  # both ends reached (or the files shrank under us)
            if on_bytes is not None:
                on_bytes(ns + nr)
            off += WINDOW
        if done_s != done_r:
            ranges.add(min(done_s, done_r), max(done_s, done_r))
    return PairPass(hs.hexdigest() if hs else None, hr.hexdigest() if hr else None, done_s, done_r,
                    Changes(tuple((a, b) for a, b in ranges.items)))  # fmt: skip


def pass_folders(
    suspect: Path,
    reference: Path,
    suspect_hashes: Mapping[str, str] | None,
    reference_hashes: Mapping[str, str] | None,
) -> tuple[dict[str, str], dict[str, str], dict[tuple[str, str], Changes]]:
    """Both folders' digests (as :func:`~workbench.checks.integrity.hash_model_dir` gives them) and the changes of
    every file both hold under one relative path, each pair read in one :func:`hash_and_compare` pass.

    Args:
        suspect_hashes / reference_hashes: digests already known (that side is then only compared), or None.

    Returns:
        ``(suspect digests, reference digests, {(suspect file, reference file) as absolute paths: changes})``;
        unreadable files are left out of the digests and of the changes.
    """
    sus_by_rel, ref_by_rel = _model_files(suspect), _model_files(reference)
    out_s = dict(suspect_hashes) if suspect_hashes is not None else {}
    out_r = dict(reference_hashes) if reference_hashes is not None else {}
    changes: dict[tuple[str, str], Changes] = {}
    for rel in sorted(sus_by_rel.keys() & ref_by_rel.keys()):
        a, b = suspect / sus_by_rel[rel], reference / ref_by_rel[rel]
        try:
            found = hash_and_compare(a, b, hash_suspect=suspect_hashes is None,
                                     hash_reference=reference_hashes is None)  # fmt: skip
        except OSError:
            continue  # hashed alone below (and left out if unreadable there too)
        if found.suspect_sha256 is not None:
            out_s[rel] = found.suspect_sha256
        if found.reference_sha256 is not None:
            out_r[rel] = found.reference_sha256
        changes[pair_key(a, b)] = found.changes
    for known, given, by_rel, root in ((out_s, suspect_hashes, sus_by_rel, suspect),
                                       (out_r, reference_hashes, ref_by_rel, reference)):  # fmt: skip
        if given is not None:
            continue
        todo = {rel: root / disk for rel, disk in by_rel.items() if rel not in known}
        hashed = hash_files(todo.values()) if todo else {}
        known.update({rel: res[0] for rel, path in todo.items() if isinstance(res := hashed[path], tuple)})
    return out_s, out_r, changes


def pair_key(suspect: Path, reference: Path) -> tuple[str, str]:
    """The key of a file pair in the changes returned by :func:`pass_folders` (absolute, symlinks not resolved)."""
    return str(Path(suspect).absolute()), str(Path(reference).absolute())


def _model_files(folder: Path) -> dict[str, str]:
    """``{path shown: path on disk}`` of the files :func:`~workbench.checks.integrity.hash_model_dir` digests."""
    walked = walk_tree(folder, [])
    return {f.relpath: f.fs_relpath for f in walked if is_model_content(f.relpath)}
