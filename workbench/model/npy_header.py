"""The header of a ``.npy`` file read without loading the array: its dict, and whether the data is a pickle.

``np.load(..., allow_pickle=True)`` unpickles the data of an array whose dtype holds Python objects. Which ``descr``
means objects is numpy's decision (``'O'``, ``'|O8'``, ``'object'``, ``'object_'``, a structured dtype with an
object field ...), so the dtype is built with :func:`numpy.lib.format.descr_to_dtype` from the literal (parsed with
``ast.literal_eval``, never evaluated); a ``descr`` numpy refuses, or one nested too deep to ask it about, counts as
holding objects (fail closed). numpy ignores its header size limit when pickles are allowed, so a header of any size
must be read: see ``ScanLimits.max_npy_header_bytes``.
"""

from __future__ import annotations

import ast
import re
import struct
from typing import Any

__all__ = ["header_span", "parse_npy_header"]

_PY2_LONG = re.compile(r"\b(\d+)L\b")
_OBJECT_TEXT = re.compile(r"(^|[^A-Za-z])(O|object_?)\d*($|[^A-Za-z])")
#: nesting of a structured descr beyond which numpy is not asked (the answer is then "objects": fail closed)
_MAX_DESCR_DEPTH = 32
#: header text (after trailing padding is stripped) parsed with ``ast.literal_eval``; longer is not parsed
MAX_LITERAL_CHARS = 1024 * 1024


def header_span(head: bytes) -> tuple[int, int]:
    """``(start, length)`` of the header text as the preamble declares it.

    Raises:
        ValueError: not an npy file, or a format version numpy does not define.
    """
    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        raise ValueError("not an npy file")
    major = head[6]
    if major == 1:
        return 10, struct.unpack("<H", head[8:10])[0]
    if major in (2, 3) and len(head) >= 12:
        return 12, struct.unpack("<I", head[8:12])[0]
    raise ValueError(f"npy format version {major}.{head[7]} not supported")


def parse_npy_header(head: bytes, max_header: int = 65536) -> tuple[dict[str, Any], int]:
    """Read a ``.npy`` header without numpy's loader (``ast.literal_eval`` of the header dict only; never
    ``np.load``).

    Args:
        head: the file's first bytes, at least the whole header.
        max_header: longest header accepted (a longer one raises, its message naming the cap).

    Returns:
        ``(header, data_offset)`` where header has ``descr``, ``fortran_order``, ``shape`` and ``has_object``
        (True when the dtype holds Python objects, i.e. the data is a pickle).

    Raises:
        ValueError: not a valid npy header (the message says why).
    """
    start, hlen = header_span(head)
    if hlen > max_header:
        raise ValueError(f"npy header of {hlen} bytes is larger than the {max_header}-byte cap")
    if start + hlen > len(head):
        raise ValueError(f"npy header of {hlen} bytes is truncated")
    raw = head[start : start + hlen].decode("utf-8" if head[6] == 3 else "latin-1").strip()
    if len(raw) > MAX_LITERAL_CHARS:
        raise ValueError(f"npy header holds {len(raw)} characters besides padding: not parsed")
    try:
        header = _literal(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"npy header is not a Python literal: {exc}") from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise ValueError("npy header lacks descr, fortran_order or shape")
    header["has_object"] = descr_has_object(header["descr"])
    return header, start + hlen


def _literal(raw: str) -> Any:
    """``ast.literal_eval`` of the header; a header written by Python 2 (``(3L, 3L)``) is read as numpy reads it,
    with the ``L`` suffixes of its integers dropped."""
    try:
        return ast.literal_eval(raw)
    except SyntaxError:
        return ast.literal_eval(_PY2_LONG.sub(r"\1", raw))


def descr_has_object(descr: Any) -> bool:
    """Whether numpy makes ``descr`` a dtype holding Python objects (True as well when numpy refuses it)."""
    if _depth(descr) > _MAX_DESCR_DEPTH:
        return True
    from numpy.lib.format import descr_to_dtype

    try:
        return bool(descr_to_dtype(descr).hasobject)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, MemoryError, RecursionError):
        return _mentions_object(descr)


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DESCR_DEPTH or not isinstance(value, list | tuple | dict):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(v, level + 1) for v in items), default=level + 1)


def _mentions_object(value: Any) -> bool:
    """Fallback for a descr numpy refuses: any string part naming objects (``O``, ``object``) counts."""
    if isinstance(value, str):
        return bool(_OBJECT_TEXT.search(value))
    if isinstance(value, list | tuple):
        return any(_mentions_object(v) for v in value)
    if isinstance(value, dict):
        return any(_mentions_object(v) for v in value.values())
    return False
