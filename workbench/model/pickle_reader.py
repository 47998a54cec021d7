"""The byte reader of the pickle walk and the opcode arguments decoded as the unpickler decodes them.

:class:`WalkReader` serves the walk from a window of the stream (one ``read`` of the underlying file per MiB, not
per opcode), with a byte budget, a cap on newline-terminated arguments, huge length-prefixed arguments skipped
(seeked over when the stream allows) with their first bytes kept for the nested-pickle check, and
:meth:`WalkReader.skip_run` to pass runs of opcode pairs that leave the machine unchanged at the speed of a regular
expression (``)0``, ``(1``, ``K\\x000`` repeated millions of times as padding before a payload).

:func:`arg_reader` gives the reader of one opcode's argument: ``pickletools``' readers, except where
``pickletools`` is stricter than the unpickler: ``INT``/``LONG`` with a base prefix, leading zeros, or more digits
than ``int`` converts by default (``pickle`` calls ``int(text, 0)``; the C unpickler ``strtol(text, 0)``
first), and ``STRING`` whose bytes are not ASCII (``torch.load`` and ``encoding="latin1"`` accept them). Each such
leniency is returned as a note, never a stop. Nothing is unpickled.
"""

from __future__ import annotations

import codecs
import io
import pickletools
import re
from typing import Any, BinaryIO

from workbench.model.streams import BudgetExceeded, LineTooLong, SkippedBytes

__all__ = ["NEUTRAL_STARTS", "BigBytes", "LenientInt", "WalkReader", "arg_reader"]

_CHUNK = 1024 * 1024
#: a neutral run is matched on at least this many buffered bytes (the buffer is refilled below it)
_RUN_REFILL = 4096
#: bytes of a skipped argument kept for the nested-pickle check
HEAD_BYTES = 64 * 1024
#: runs of two-byte opcode pairs that leave stack, marks and memo as they were (push then POP, MARK then POP or
#: POP_MARK): every byte is one opcode
_PAIRS = re.compile(rb"(?:[)\]}N\x88\x89(]0|\(1)+")
#: push-with-argument then POP, one pattern each (width in bytes, two opcodes a unit)
_WITH_ARG = {ord("K"): (re.compile(rb"(?:K[\x00-\xff]0)+"), 3), ord("M"): (re.compile(rb"(?:M[\x00-\xff]{2}0)+"), 4),
             ord("J"): (re.compile(rb"(?:J[\x00-\xff]{4}0)+"), 6)}  # fmt: skip
NEUTRAL_STARTS = frozenset(b")]}N\x88\x89(KMJ")
#: Python's default ``int`` conversion limit (``sys.get_int_max_str_digits``)
_MAX_DIGITS = 4300
_STRTOL = re.compile(rb"\s*[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\0?\n?$")


class BigBytes(SkippedBytes):
    """A skipped byte argument that keeps its first :data:`HEAD_BYTES` (``head``)."""

    head: bytes


class LenientInt(int):
    """An integer decoded leniently; ``note`` says what ``pickletools`` would have rejected."""

    note: str


class WalkReader:
    """Windowed read-only view of a binary stream with a byte budget, a line cap and skipping of huge arguments.

    Args:
        raw: the underlying stream, positioned where reading starts (offsets are counted from there).
        limit: bytes that may be consumed in total; going past raises :class:`BudgetExceeded`.
        max_line: longest line ``readline`` returns; longer raises :class:`LineTooLong`.
        skip_threshold: ``read(n)`` with ``n`` at least this returns a :class:`BigBytes` after skipping ``n`` bytes.
        size: bytes available from the start position, when known (lets skipping seek instead of reading).
    """

    def __init__(
        self, raw: BinaryIO, *, limit: int, max_line: int, skip_threshold: int, size: int | None = None
    ) -> None:
        self._raw = raw
        self._limit = limit
        self._max_line = max_line
        self._skip = skip_threshold
        self.size = size
        self._buf = b""
        self._i = 0
        self._base = 0  # offset of _buf[0]
        self._eof = False
        #: the last argument skipped (text readers turn it into an empty string; its head is kept here)
        self.last_big: BigBytes | None = None
        try:
            self._seekable = size is not None and bool(raw.seekable())
        except (AttributeError, OSError, ValueError):
            self._seekable = False

    def tell(self) -> int:
        """Bytes consumed so far (the offset of the next byte, relative to the start)."""
        return self._base + self._i

    def _fill(self, n: int) -> int:
        """Make at least ``n`` bytes available from the current position if the stream has them; returns how many."""
        avail = len(self._buf) - self._i
        if avail >= n or self._eof:
            return avail
        chunks = [self._buf[self._i :]]
        while avail < n:
            more = self._raw.read(max(_CHUNK, n - avail))
            if not more:
                self._eof = True
                break
            chunks.append(more)
            avail += len(more)
        self._base += self._i
        self._buf = b"".join(chunks)
        self._i = 0
        return avail

    def _check(self) -> None:
        if self._base + self._i > self._limit:
            raise BudgetExceeded(f"stream longer than the {self._limit}-byte analysis budget")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (a :class:`BigBytes` for ``n >= skip_threshold``)."""
        if n is None or n < 0:
            n = max(0, self._limit - self.tell() + 1)
        if n >= self._skip:
            return self._skip_bytes(n)
        i = self._i
        if i + n > len(self._buf):
            self._fill(n)
            i = self._i
        data = self._buf[i : i + n]
        self._i = i + len(data)
        if self._base + self._i > self._limit:
            self._check()
        return data

    def readline(self) -> bytes:
        """One line including its newline (or what is left), at most ``max_line`` bytes."""
        want = self._max_line + 1
        nl = self._buf.find(b"\n", self._i, self._i + want)
        if nl < 0:
            self._fill(want)
            nl = self._buf.find(b"\n", self._i, self._i + want)
        end = nl + 1 if nl >= 0 else min(len(self._buf), self._i + want)
        line = self._buf[self._i : end]
        if len(line) > self._max_line and not line.endswith(b"\n"):
            raise LineTooLong(f"argument line longer than {self._max_line} bytes")
        self._i = end
        self._check()
        return line

    def peek_byte(self) -> bytes:
        """The next byte without consuming it (b"" at the end)."""
        if self._i >= len(self._buf):
            self._fill(1)
        return self._buf[self._i : self._i + 1]

    def skip_run(self, code: int, end: int | None) -> int:
        """Consume a run of neutral opcode pairs from the current position (pairs starting with byte ``code``, or
        any two-byte pairs), not past offset ``end`` (a frame's end) when given. Returns the opcodes consumed."""
        pattern, width = _WITH_ARG.get(code, (_PAIRS, 2))
        total = 0
        while True:
            if len(self._buf) - self._i < _RUN_REFILL:
                self._fill(_RUN_REFILL)
            stop = len(self._buf) if end is None else min(len(self._buf), end - self._base)
            m = pattern.match(self._buf, self._i, stop)
            if m is None:
                break
            length = m.end() - self._i
            self._i = m.end()
            total += length if width == 2 else 2 * (length // width)
            if m.end() < stop - width or stop < len(self._buf) or self._eof:
                break
        self._check()
        return total

    def _skip_bytes(self, n: int) -> bytes:
        start = self.tell()
        self._fill(HEAD_BYTES)
        head = self._buf[self._i : self._i + min(n, HEAD_BYTES)]
        have = min(n, len(self._buf) - self._i)
        self._i += have
        want = n - have
        if want and self._seekable and self.size is not None:
            step = min(want, max(0, self.size - self.tell()))
            self._raw.seek(step, io.SEEK_CUR)
            self._base += step
            want -= step
        while want > 0 and not self._eof and self.tell() <= self._limit:
            chunk = self._raw.read(min(_CHUNK, want))
            if not chunk:
                self._eof = True
                break
            self._base += len(chunk)
            want -= len(chunk)
        self._check()
        out = BigBytes(self.tell() - start)
        out.head = head
        self.last_big = out
        return out


def _lenient_int(text: bytes, long: bool) -> int:
    """``text`` (without its newline) as the unpickler reads it; raises ValueError where both unpicklers fail."""
    body = text[:-1] if long and text.endswith(b"L") else text
    try:
        value = int(body, 0)
    except ValueError as exc:
        digits = body.strip().lstrip(b"+-").replace(b"_", b"")
        if digits.isdigit() and len(digits) > _MAX_DIGITS:
            out = LenientInt(0)
            out.note = (f"{len(digits)}-digit integer: the unpickler fails under Python's default int conversion "
                        "limit, but not where the limit is raised; the walk goes on")  # fmt: skip
            return out
        if not long and _STRTOL.match(body):  # the C unpickler's strtol(base 0): leading zeros are octal
            value = int(body.strip().rstrip(b"\0"), 8) if body.strip().lstrip(b"+-")[:1] == b"0" else 0
            out = LenientInt(value)
            out.note = f"integer {body[:40]!r}: the C unpickler reads it (strtol), the pure-Python one fails"
            return out
        raise ValueError(f"integer {body[:40]!r} that no unpickler reads") from exc
    try:
        int(body)  # what pickletools converts (base 10)
    except ValueError:
        pass
    else:
        return value
    out = LenientInt(value)
    out.note = f"integer {text[:40]!r} in a form pickletools rejects and the unpickler accepts"
    return out


def _read_int(reader: WalkReader, long: bool) -> Any:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline found when trying to read an integer")
    text = line[:-1]
    if not long and text in (b"00", b"01"):
        return text == b"01"
    return _lenient_int(text, long)


def _read_string(reader: WalkReader) -> Any:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline found when trying to read stringnl")
    data = line[:-1]
    if len(data) < 2 or data[:1] != data[-1:] or data[:1] not in (b'"', b"'"):
        raise ValueError(f"no string quotes around {data[:40]!r}")
    raw = codecs.escape_decode(data[1:-1])[0]
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        out = _NoteStr(raw.decode("latin-1"))
        out.note = (
            "STRING with bytes that are not ASCII: pickletools stops here; torch.load and encoding='latin1' read on"
        )
        return out


class _NoteStr(str):
    note: str


_SPECIAL = {ord("I"): lambda r: _read_int(r, False), ord("L"): lambda r: _read_int(r, True), ord("S"): _read_string}


def arg_reader(code: int, op: pickletools.OpcodeInfo) -> Any:
    """The function reading the argument of opcode ``op`` (byte ``code``) from a :class:`WalkReader`, or None for
    opcodes without an argument."""
    special = _SPECIAL.get(code)
    if special is not None:
        return special
    return None if op.arg is None else op.arg.reader
