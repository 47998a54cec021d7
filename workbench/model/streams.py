"""Byte streams with caps, for feeding hostile data to parsers that trust their input (``pickletools.genops``).

:class:`BoundedReader` counts what it hands out, refuses to go past a byte budget, refuses newline-terminated
arguments longer than a cap (``pickletools`` calls ``readline()`` without a size), and skips huge length-prefixed
arguments instead of holding them in memory. Nothing here interprets the bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from workbench import safeio

__all__ = ["BoundedReader", "BudgetExceeded", "LineTooLong", "SkippedBytes", "open_evidence"]

_DISCARD_CHUNK = 1024 * 1024


class BudgetExceeded(ValueError):
    """The stream went past its byte budget."""


class LineTooLong(ValueError):
    """A newline-terminated argument is longer than the cap."""


class SkippedBytes(bytes):
    """An empty ``bytes`` standing for a skipped argument: ``len()`` reports the skipped length.

    ``pickletools`` only checks the length of what it read, so a skipped argument keeps the opcode stream in step
    without the bytes ever being held in memory.
    """

    skipped: int

    def __new__(cls, length: int) -> SkippedBytes:
        obj = super().__new__(cls, b"")
        obj.skipped = length
        return obj

    def __len__(self) -> int:
        return self.skipped

    def __repr__(self) -> str:
        return f"<{self.skipped} bytes skipped>"


def open_evidence(path: Path) -> BinaryIO:
    """Open an evidence file for reading without following a symlink (``O_NOFOLLOW``).

    Returns:
        A buffered binary file object; the caller closes it.

    Raises:
        OSError: the file cannot be opened (or has become a symlink).
    """
    return safeio.open_evidence(path)


class BoundedReader:
    """Read-only view of a binary stream with a byte budget, a line cap and skipping of huge arguments.

    Args:
        raw: the underlying stream, positioned where reading starts (offsets are counted from there).
        limit: bytes that may be consumed in total; going past raises :class:`BudgetExceeded`.
        max_line: longest line ``readline`` returns; longer raises :class:`LineTooLong`.
        skip_threshold: ``read(n)`` with ``n`` at least this returns :class:`SkippedBytes` after skipping ``n`` bytes.
        size: bytes available from the start position, when known (lets skipping seek instead of reading).
    """

    def __init__(
        self, raw: BinaryIO, *, limit: int, max_line: int, skip_threshold: int, size: int | None = None
    ) -> None:
        self._raw = raw
        self._limit = limit
        self._max_line = max_line
        self._skip = skip_threshold
        self._size = size
        self._pos = 0
        self._pushback = b""
        self._seekable = size is not None and _is_seekable(raw)

    def tell(self) -> int:
        """Bytes consumed so far (the offset of the next byte, relative to the start)."""
        return self._pos

    def _account(self, n: int) -> None:
        self._pos += n
        if self._pos > self._limit:
            raise BudgetExceeded(f"stream longer than the {self._limit}-byte analysis budget")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (a :class:`SkippedBytes` for ``n >= skip_threshold``)."""
        if not self._pushback and 0 <= n < self._skip:  # the common case, kept short
            data = self._raw.read(n)
            self._pos += len(data)
            if self._pos > self._limit:
                raise BudgetExceeded(f"stream longer than the {self._limit}-byte analysis budget")
            return data
        if n is None or n < 0:
            n = max(0, self._limit - self._pos + 1)
        if n >= self._skip:
            return self._skip_bytes(n)
        head, self._pushback = self._pushback[:n], self._pushback[n:]
        data = head + (self._raw.read(n - len(head)) if n > len(head) else b"")
        self._account(len(data))
        return data

    def readline(self) -> bytes:
        """One line including its newline (or what is left), at most ``max_line`` bytes."""
        if self._pushback:
            head, self._pushback = self._pushback, b""
            if head.endswith(b"\n"):
                self._account(len(head))
                return head
        else:
            head = b""
        rest = self._raw.readline(self._max_line + 1 - len(head))
        line = head + rest
        if len(line) > self._max_line and not line.endswith(b"\n"):
            raise LineTooLong(f"argument line longer than {self._max_line} bytes")
        self._account(len(line))
        return line

    def peek_byte(self) -> bytes:
        """The next byte without consuming it (b"" at the end)."""
        if not self._pushback:
            self._pushback = self._raw.read(1)
        return self._pushback[:1]

    def _skip_bytes(self, n: int) -> bytes:
        skipped = len(self._pushback)
        self._pushback = b""
        want = n - skipped
        if self._seekable and self._size is not None:
            available = max(0, self._size - self._pos - skipped)
            step = min(want, available)
            self._raw.seek(step, io.SEEK_CUR)
            skipped += step
        else:
            while want > 0:
                chunk = self._raw.read(min(_DISCARD_CHUNK, want))
                if not chunk:
                    break
                skipped += len(chunk)
                want -= len(chunk)
                if self._pos + skipped > self._limit:
                    break
        self._account(skipped)
        return SkippedBytes(skipped)


def _is_seekable(raw: BinaryIO) -> bool:
    try:
        return bool(raw.seekable())
    except (AttributeError, OSError, ValueError):
        return False
