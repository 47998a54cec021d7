"""Pickles carried inside a pickle's values: raw bytes, or base64 or hex text, recognised without unpickling.

An inert outer stream (a dict of strings, one ``BINBYTES``) may carry another pickle that the loading code feeds
to ``pickle.loads`` later. :func:`carried_pickle` looks at one constant the walk pushed (bytes or text) and returns
the bytes of the pickle it carries, if its first bytes walk as pickle opcodes (arguments skipped by their length
or newline, never decoded): a stream starting with ``PROTO``, a complete stream, or a long run of valid opcodes.
Text is decoded only when its first characters decode, in that encoding, to such a head.
"""

from __future__ import annotations

import base64
import binascii
import pickletools
import re
import struct
from dataclasses import dataclass

__all__ = ["Carried", "carried_pickle"]

#: bytes of a candidate whose opcodes are walked to decide
_HEAD = 4096
_MIN_LEN = 8
_B64 = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){4,}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Carried:
    """A pickle found inside a value: ``data`` (its bytes, or its first bytes when ``truncated``), ``encoding``
    (``bytes``, ``base64`` or ``hex``) and ``size`` (its full length in bytes)."""

    data: bytes
    encoding: str
    size: int
    truncated: bool = False


_OPS = [pickletools.code2op.get(chr(b)) for b in range(256)]
_COUNTED = {pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1), pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
            pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4), pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8)}  # fmt: skip
#: valid opcodes a head without PROTO must hold before it counts as a pickle when it does not reach STOP
_MIN_OPCODES = 64


def _is_pickle(head: bytes, size: int) -> bool:
    """Whether ``head`` (the first bytes of ``size``) walks as pickle opcodes: PROTO first and a valid opcode after
    it, a complete stream of two opcodes or more, or a run of :data:`_MIN_OPCODES` valid opcodes."""
    head = head[:_HEAD]
    n = len(head)
    if n < 2 or (head[0] == 0x80 and head[1] > 5):
        return False
    pos = count = 0
    while pos < n:
        op = _OPS[head[pos]]
        if op is None:
            return False
        code = head[pos]
        pos += 1
        count += 1
        if op.arg is not None:
            width = op.arg.n
            if width >= 0:
                pos += width
            elif width == pickletools.UP_TO_NEWLINE:
                for _ in range(2 if code in (0x63, 0x69) else 1):  # GLOBAL and INST take two lines
                    nl = head.find(b"\n", pos)
                    if nl < 0:
                        return head[0] == 0x80 and count >= 2
                    pos = nl + 1
            else:
                fmt, prefix = _COUNTED[width]
                if pos + prefix > n:
                    break
                (length,) = struct.unpack_from(fmt, head, pos)
                pos += prefix + length
                if length < 0 or pos > size:
                    return False
        if code == 0x2E:  # STOP
            return count >= 2
    return (head[0] == 0x80 and count >= 2) or (count >= _MIN_OPCODES and n < size)


def carried_pickle(value: object, *, max_bytes: int, size: int | None = None) -> Carried | None:
    """The pickle ``value`` carries, or None.

    Args:
        value: a constant the walk pushed (``bytes``, ``bytearray`` or ``str``); anything else gives None.
        max_bytes: text longer than this (once decoded) is not decoded in full: its first bytes are returned,
            marked ``truncated``.
        size: the full length of ``value`` when ``value`` holds only its first bytes (a skipped argument).
    """
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        total = size if size is not None else len(data)
        if len(data) >= _MIN_LEN and _is_pickle(data, total):
            return Carried(data, "bytes", total, total > len(data))
        if not data.isascii():
            return None
        if size is not None:  # the head of a longer text: what it decodes to is only the carried pickle's head
            found = _from_text(data.decode("ascii"), max_bytes, size)
            if found is None:
                return None
            full = size // 2 if found.encoding == "hex" else size * 3 // 4
            return Carried(found.data, found.encoding, full, True)
        text = data.decode("ascii")
    elif isinstance(value, str):
        text = value
    else:
        return None
    if len(text) < 2 * _MIN_LEN:
        return None
    return _from_text(text, max_bytes)


def _from_text(text: str, max_bytes: int, chars: int | None = None) -> Carried | None:
    """The pickle ``text`` carries (``chars``: the full text's length when ``text`` is its head)."""
    head = text[: 2 * _HEAD]
    chars = chars or len(text)
    if _HEX.match(head) and len(head) >= 16:
        compact = _SPACE.sub("", text) if _SPACE.search(text[:64]) else text
        prefix = compact[: 2 * _HEAD]
        try:
            first = bytes.fromhex(prefix[: len(prefix) // 2 * 2])
        except ValueError:
            first = b""
        if _is_pickle(first, chars // 2):
            return _decode(compact, "hex", max_bytes)
    if _B64.match(head):
        compact = _SPACE.sub("", text) if _SPACE.search(text[:80]) else text
        cut = compact[: (len(compact[: _HEAD * 4 // 3]) // 4) * 4]
        try:
            first = base64.b64decode(_std(cut))
        except (binascii.Error, ValueError):
            return None
        if _is_pickle(first, chars * 3 // 4):
            return _decode(compact, "base64", max_bytes)
    return None


def _std(text: str) -> str:
    return text.replace("-", "+").replace("_", "/")


def _decode(text: str, encoding: str, max_bytes: int) -> Carried | None:
    size = len(text) // 2 if encoding == "hex" else len(text) * 3 // 4
    truncated = size > max_bytes
    part = text[: (2 * max_bytes if encoding == "hex" else max_bytes // 3 * 4)] if truncated else text
    try:
        if encoding == "hex":
            data = bytes.fromhex(part[: len(part) // 2 * 2])
        else:
            part = part[: len(part) // 4 * 4] if truncated else part
            data = base64.b64decode(_std(part) + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None
    return Carried(data, encoding, size, truncated)
