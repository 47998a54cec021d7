"""Lines of a log as the scanner shows them: terminal escapes stripped, control and bidi characters made visible,
UTF-8 never cut in the middle of a character, neighbouring lines for context."""

from __future__ import annotations

import re

__all__ = ["ANSI", "printable", "strip_ansi"]

ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with control, bidi and zero-width characters shown as escapes (``\\x1b``, ``\\u202e``, ``\\r``)."""
    return _CONTROL.sub(_escape_char, text)


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    return "\\r" if code == 13 else (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _clean(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return printable(text[:-1] if text.endswith("\r") else text)


def strip_ansi(data: bytes) -> bytes:
    """``data`` without ANSI/terminal escape sequences (none spans a line end); no pass at all without an ESC byte."""
    return ANSI.sub(b"", data) if b"\x1b" in data else data


def _head(buf: bytes, start: int, cap: int) -> bytes:
    """``buf[start:start+cap]`` shortened so that it does not end inside a UTF-8 character."""
    end = start + cap
    for _ in range(3):
        if end < len(buf) and end > start and buf[end] & 0xC0 == 0x80:
            end -= 1
    return buf[start:end]


def _before(block: bytes, start: int, k: int, tail: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    pos = start
    while len(out) < k and pos > 0:
        prev = block.rfind(b"\n", 0, pos - 1) + 1
        out.append(block[prev : pos - 1])
        pos = prev
    out.reverse()
    missing = k - len(out)
    return (tail[-missing:] if missing and tail else []) + out


def _after(block: bytes, end: int, size: int, k: int) -> list[bytes]:
    out: list[bytes] = []
    pos = end + 1
    while len(out) < k and pos < size:
        nl = block.find(b"\n", pos)
        if nl < 0:
            nl = size
        out.append(block[pos:nl])
        pos = nl + 1
    return out
