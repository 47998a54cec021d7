"""Text from evidence made valid Unicode before it leaves a parser: lone surrogates replaced, and said so.

A Python ``str`` can hold code points that no UTF-8 (or UTF-16) writer accepts: the UTF-16 surrogates
U+D800..U+DFFF. Evidence puts them there through JSON ``"\\ud800"`` escapes (prediction labels, alerts, safetensors
tensor names, configs), through pickle strings (``pickletools`` decodes with ``surrogatepass``) and through file
names that are not valid UTF-8 (``os.scandir`` decodes them with ``surrogateescape``). Written to a report, a JSON
file, a CSV or a terminal they raise ``UnicodeEncodeError``. Every parser passes the text it returns through
:func:`clean_text` (or :func:`clean_data` for parsed documents) and records a warning when something was replaced.

Rule: a high surrogate followed by a low one (a pair split into two code points) is joined into the character it
encodes; every other surrogate becomes U+FFFD (REPLACEMENT CHARACTER). Nothing else is changed: these are the only
code points a ``str`` can hold that UTF-8 cannot encode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REPLACEMENT", "clean_data", "clean_text", "is_clean", "replaced_reason"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
#: nesting followed by :func:`clean_data`; deeper containers are returned as they are (parsers cap depth far below)
MAX_DEPTH = 200
_SCALARS = frozenset({int, float, bool})


def is_clean(text: str) -> bool:
    """True when ``text`` can be encoded as UTF-8 (it holds no surrogate code point)."""
    if text.isascii():
        return True
    return _SURROGATE.search(text) is None


def _join_pair(match: re.Match[str]) -> str:
    high, low = match.group(0)
    return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))


def clean_text(text: str) -> tuple[str, bool]:
    """``text`` with split surrogate pairs joined and lone surrogates replaced by U+FFFD.

    Returns:
        ``(clean text, changed)``; the text is returned as it is (same object) when nothing had to change.
    """
    if is_clean(text):
        return text, False
    return _SURROGATE.sub(REPLACEMENT, _PAIR.sub(_join_pair, text)), True


def clean_data(value: Any, _depth: int = 0) -> tuple[Any, bool]:
    """:func:`clean_text` applied to every string of a parsed document (dict keys and values, lists, tuples).

    Containers are rebuilt only when something changed (their type kept for dicts, lists and tuples); other values
    are returned as they are.

    Returns:
        ``(clean value, changed)``.
    """
    if isinstance(value, str):
        return clean_text(value)
    if value is None or type(value) in _SCALARS:  # most values of parsed records: no ABC check per value
        return value, False
    if _depth >= MAX_DEPTH:
        return value, False
    if type(value) is dict and all(type(k) is str and k.isascii() and (v is None or type(v) in _SCALARS or (
            type(v) is str and v.isascii())) for k, v in value.items()):  # fmt: skip
        return value, False  # a flat record of ASCII text and numbers (an Event's extra): nothing to clean
    if type(value) is dict or isinstance(value, Mapping):
        changed = False
        items = []
        for k, v in value.items():
            ck, c1 = clean_data(k, _depth + 1) if isinstance(k, str) else (k, False)
            cv, c2 = clean_data(v, _depth + 1)
            changed = changed or c1 or c2
            items.append((ck, cv))
        if not changed:
            return value, False
        try:
            out = type(value)()
            for k, v in items:
                out[k] = v
            if hasattr(value, "__dict__"):  # e.g. a dict subclass carrying parse facts (duplicate keys)
                out.__dict__.update(value.__dict__)
            return out, True
        except TypeError:
            return dict(items), True
    if isinstance(value, list | tuple):
        cleaned = [clean_data(v, _depth + 1) for v in value]
        if not any(c for _, c in cleaned):
            return value, False
        items = [v for v, _ in cleaned]
        return (items if isinstance(value, list) else tuple(items)), True
    return value, False


def replaced_reason(what: str = "text") -> str:
    """The warning text for a replacement (one wording everywhere, so warnings group and tests can match it)."""
    return f"{what} is not valid Unicode (lone UTF-16 surrogate): replaced with U+FFFD"
