"""Whether the first bytes of a file can begin a pickle, read as the unpickler reads them (for the content sniffer).

A crafted file can look like something else in its first bytes (a BINFLOAT whose eight bytes make a safetensors
length, ``GGUF`` or ``GIF8``; a BININT2 that starts ``MZ``), start with an argument longer than the sniff budget
(``STRING``, ``BINBYTES``, ``BINUNICODE`` of megabytes, padding before the payload), or carry a ``STRING`` with
UTF-8 bytes that ``pickletools`` rejects while ``torch.load`` (``encoding="utf-8"``) accepts it. :func:`pickle_head`
walks the opcodes of the head with the opcode table only: every argument is skipped by its length or its newline,
never decoded, so none of these stops it. Nothing is unpickled.
"""

from __future__ import annotations

import pickletools
import struct
from dataclasses import dataclass

__all__ = ["PickleHead", "pickle_head"]

_OPS = [pickletools.code2op.get(chr(b)) for b in range(256)]
#: opcodes taking two newline-terminated arguments
_TWO_LINES = {ord("c"), ord("i")}
#: length prefixes: ArgumentDescriptor.n -> (struct format, bytes)
_COUNTED = {
    pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1),
    pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
    pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4),
    pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8),
}
#: opcodes a walk must decode before a head that merely runs out counts as a pickle (without PROTO first)
MIN_OPCODES = 64


@dataclass(frozen=True, slots=True)
class PickleHead:
    """How far the head reads as a pickle.

    Attributes:
        ending: ``stop`` (a complete stream ends within the head), ``argument`` (the head ends inside an argument
            the file is long enough to hold: the first argument may be far longer than the sniff budget), or
            ``budget`` (the head ends between opcodes).
        opcodes: opcodes decoded.
        protocol: the PROTO number when the head starts with PROTO, else None.
    """

    ending: str
    opcodes: int
    protocol: int | None

    @property
    def is_pickle(self) -> bool:
        """A complete stream of at least two opcodes, or a run of valid opcodes filling the head that starts with
        PROTO or is long enough not to be chance."""
        if self.ending == "stop":
            return self.opcodes >= 2
        return self.protocol is not None or self.opcodes >= MIN_OPCODES

    @property
    def is_candidate(self) -> bool:
        """Not settled by the head (an argument runs past it): to be analysed as a pickle to decide."""
        return not self.is_pickle and self.ending == "argument"


def pickle_head(head: bytes, size: int) -> PickleHead | None:
    """Walk the opcodes of ``head`` (the first bytes of a file of ``size`` bytes) without decoding any argument.

    Returns:
        The :class:`PickleHead`, or None when an invalid opcode, an impossible length or the end of the whole file
        (without STOP) shows that the bytes are no pickle.
    """
    n = len(head)
    whole = n >= size
    protocol = head[1] if n > 1 and head[0] == 0x80 else None
    pos = count = 0
    while pos < n:
        code = head[pos]
        op = _OPS[code]
        if op is None:
            return None
        pos += 1
        count += 1
        arg = op.arg
        if arg is not None:
            width = arg.n
            if width >= 0:
                end = pos + width
            elif width == pickletools.UP_TO_NEWLINE:
                end = _line_end(head, pos, 2 if code in _TWO_LINES else 1)
                if end < 0:
                    return None if whole else PickleHead("argument", count, protocol)
            else:
                fmt, prefix = _COUNTED[width]
                if pos + prefix > n:
                    return None if whole else PickleHead("argument", count, protocol)
                (length,) = struct.unpack_from(fmt, head, pos)
                if length < 0:
                    return None
                end = pos + prefix + length
            if end > size:
                return None
            if end > n:
                return PickleHead("argument", count, protocol)
            pos = end
        if code == 0x2E:  # STOP
            return PickleHead("stop", count, protocol)
    return None if whole else PickleHead("budget", count, protocol)


def _line_end(head: bytes, pos: int, lines: int) -> int:
    for _ in range(lines):
        nl = head.find(b"\n", pos)
        if nl < 0:
            return -1
        pos = nl + 1
    return pos
