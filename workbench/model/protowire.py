"""A streaming reader of the protobuf wire format: fields read in order from a stream, nothing held but what is asked.

No generated code, no descriptor, no whole-message parse: the caller walks the fields of a message and, for each
length-delimited one, reads it (bounded), descends into it as a sub-message, or lets it be skipped (by seeking when
the stream can, else by reading and discarding in blocks). Memory stays at what the caller keeps, whatever the
file's size; every length is checked against the end of its enclosing message and of the stream before use.

Wire format (https://protobuf.dev/programming-guides/encoding/): a varint key ``field << 3 | wire type``, then a
varint (type 0), 8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5); types 3 and 4 (groups) are
refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["ProtoError", "WireReader", "fields_in"]

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
_BLOCK = 1024 * 1024


class ProtoError(ValueError):
    """The bytes break the wire format (the message says where)."""


class WireReader:
    """Fields of protobuf messages read from a binary stream, in order.

    Args:
        fh: the stream, positioned at the start of the outermost message.
        size: bytes in the stream (the outermost message's length).
        seekable: whether skipping may seek.
        lenient: a length running past its message or the stream is cut to fit (offset kept in :attr:`clamped`)
            instead of refused, so that a truncated file is read as far as it goes.
    """

    def __init__(self, fh: BinaryIO, size: int, *, seekable: bool, lenient: bool = False) -> None:
        self.fh, self.size, self.seekable, self.pos = fh, size, seekable, 0
        self.lenient = lenient
        #: offsets of fields whose length ran past their message or the stream (lenient reading: cut to fit)
        self.clamped: list[int] = []

    def _byte(self) -> int:
        data = self.fh.read(1)
        if not data:
            raise ProtoError(f"at offset {self.pos}: stream ends inside a varint")
        self.pos += 1
        return data[0]

    def varint(self) -> int:
        """One varint (at most 10 bytes)."""
        value = shift = 0
        for _ in range(10):
            byte = self._byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtoError(f"at offset {self.pos}: varint longer than 10 bytes")

    def read(self, n: int) -> bytes:
        """``n`` bytes (the caller bounds ``n``)."""
        data = self.fh.read(n)
        if len(data) != n:
            raise ProtoError(f"at offset {self.pos}: stream ends {n - len(data)} bytes early")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        """Move ``n`` bytes on without keeping them."""
        if n <= 0:
            return
        if self.seekable:
            self.fh.seek(n, 1)
            self.pos += n
            return
        while n:
            got = len(self.fh.read(min(n, _BLOCK)))
            if not got:
                raise ProtoError(f"at offset {self.pos}: stream ends {n} bytes early")
            self.pos += got
            n -= got

    def fields(self, end: int) -> Iterator[tuple[int, int, int]]:
        """The fields of the message that ends at offset ``end``: ``(number, wire type, value)``.

        For a varint field ``value`` is the integer; for fixed fields the bytes are skipped and ``value`` is 0; for
        a length-delimited field ``value`` is its length and the caller may :meth:`read` it, descend into it with
        ``fields(pos + value)``, or do nothing (what it leaves unread is skipped when the next field is asked for).

        Raises:
            ProtoError: a key or length breaks the format or runs past ``end``.
        """
        if end > self.size:
            if not self.lenient:
                raise ProtoError(f"at offset {self.pos}: message runs past the end of the stream ({end} > {self.size})")
            self.clamped.append(self.pos)
            end = self.size
        while self.pos < end:
            at = self.pos
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ProtoError(f"at offset {at}: field number 0")
            if wire == VARINT:
                value = self.varint()
                field_end = self.pos
            elif wire == LEN:
                value = self.varint()
                field_end = self.pos + value
            elif wire in (FIXED64, FIXED32):
                self.skip(8 if wire == FIXED64 else 4)
                value, field_end = 0, self.pos
            else:
                raise ProtoError(f"at offset {at}: wire type {wire} (groups or invalid) in field {number}")
            if field_end > end:
                if not self.lenient:
                    raise ProtoError(f"at offset {at}: field {number} runs past the end of its message")
                self.clamped.append(at)
                value, field_end = (end - self.pos, end) if wire == LEN else (value, field_end)
            yield number, wire, value
            if self.pos > field_end:
                raise ProtoError(f"at offset {at}: field {number} read past its end")
            self.skip(field_end - self.pos)
        if self.pos != end:
            raise ProtoError(f"at offset {self.pos}: message overruns its end ({end})")

    def string(self, n: int, cap: int) -> str:
        """A length-delimited string of ``n`` bytes: the first ``cap`` bytes decoded (invalid UTF-8 replaced)."""
        data = self.read(min(n, cap))
        return data.decode("utf-8", "replace")


def fields_in(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """The fields of a message held in memory (a small one read whole): ``(number, wire type, value, offset)``.

    ``value`` is the integer of a varint field, else 0 for fixed fields and the length for a length-delimited
    one whose bytes are ``buf[offset:offset + value]``.

    Raises:
        ProtoError: a key or length breaks the format or runs past ``end``.
    """
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        at = pos
        key = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ProtoError(f"at offset {at}: key runs past the end of its message")
            byte = buf[pos]
            pos += 1
            key |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError(f"at offset {at}: field number 0")
        if wire in (VARINT, LEN):
            value = shift = 0
            while True:
                if pos >= end or shift > 63:
                    raise ProtoError(f"at offset {at}: field {number} runs past the end of its message")
                byte = buf[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            offset = pos
            if wire == LEN:
                pos += value
        elif wire in (FIXED64, FIXED32):
            value, offset = 0, pos
            pos += 8 if wire == FIXED64 else 4
        else:
            raise ProtoError(f"at offset {at}: wire type {wire} (groups or invalid) in field {number}")
        if pos > end:
            raise ProtoError(f"at offset {at}: field {number} runs past the end of its message")
        yield number, wire, value, offset
