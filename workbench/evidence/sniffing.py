"""What ``detect`` may read: the head of a file, read once per file while the registry asks every loader.

A loader's ``detect`` looks at the file name and at most :data:`SNIFF_BYTES` of its head (:func:`sniff`,
:func:`sniff_text`, :func:`sniff_lines`). The registry asks each loader in turn, so without care a file is opened
and read once per loader. Inside :func:`sniffing` (what :func:`workbench.collect.collect_evidence` does around the
detection of one file) the first stat, the first read of that file and its decoded lines are kept and every later
``detect`` of the same path reuses them; outside it every call reads the file afresh.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench import safeio

__all__ = ["SNIFF_BYTES", "is_regular_file", "sniff", "sniff_lines", "sniff_text", "sniffing"]

#: How much ``detect`` may read.
SNIFF_BYTES = 4096


class _Head:
    """One file's stat result, head and its decoded lines, filled on first use."""

    __slots__ = ("head", "key", "lines", "regular", "text")

    def __init__(self, path: Path) -> None:
        self.key = str(path)
        self.regular: bool | None = None
        self.head: bytes | None = None
        self.text: tuple[str, bool] | None = None
        self.lines: list[str] | None = None


_CURRENT: contextvars.ContextVar[_Head | None] = contextvars.ContextVar("workbench_sniffed", default=None)


@contextmanager
def sniffing(path: Path) -> Iterator[None]:
    """Within the block, :func:`is_regular_file` and :func:`sniff` of ``path`` stat and read it once."""
    token = _CURRENT.set(_Head(Path(path)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _current(path: Path) -> _Head | None:
    held = _CURRENT.get()
    return held if held is not None and str(path) == held.key else None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_regular_file(path: Path) -> bool:
    """True for a regular file (symlinks followed); False for anything else, including unreadable paths."""
    held = _current(path)
    if held is None:
        return _is_file(path)
    if held.regular is None:
        held.regular = _is_file(path)
    return held.regular


def _read(path: Path, size: int) -> bytes:
    try:
        if not is_regular_file(path):
            return b""
        with safeio.open_evidence(path) as fh:
            return fh.read(size)
    except OSError:
        return b""


def sniff(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """First ``size`` bytes of a regular file, or b"" when it cannot be read (never follows to a non-file)."""
    held = _current(path)
    if held is None or size > SNIFF_BYTES:
        return _read(path, size)
    if held.head is None:
        held.head = _read(path, SNIFF_BYTES)
    return held.head[:size]


def sniff_text(path: Path) -> tuple[str, bool]:
    """The decoded head of a file (BOM dropped, bad bytes replaced) and whether it is the whole file."""
    held = _current(path)
    if held is not None and held.text is not None:
        return held.text
    data = sniff(path)
    text = data.decode("utf-8-sig", errors="replace"), len(data) < SNIFF_BYTES
    if held is not None:
        held.text = text
    return text


def sniff_lines(path: Path, limit: int = 20) -> list[str]:
    """Up to ``limit`` complete, stripped, non-blank lines from the head of a file (the cut last line is dropped)."""
    held = _current(path)
    if held is not None and held.lines is not None:
        return held.lines[:limit]
    text, complete = sniff_text(path)
    if "\x00" in text:
        kept: list[str] = []
    else:
        lines = text.splitlines()
        if not complete and lines:
            lines.pop()
        kept = [s for s in (line.strip() for line in lines) if s]
    if held is not None:
        held.lines = kept
    return kept[:limit]
