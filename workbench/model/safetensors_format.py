"""A strict, forensic parser of safetensors headers.

The ``safetensors`` library is lenient where an attacker can hide things: it accepts duplicate tensor names (the last
one wins), leading whitespace before the JSON header, and some readers never look at bytes no tensor claims. This
parser reads only the 8-byte length prefix and the JSON header (never the tensor data), validates every entry, and
returns what it found together with every violation, so that a hostile file yields findings instead of a crash.

Layout (https://github.com/huggingface/safetensors): ``u64 little-endian N``, ``N`` bytes of UTF-8 JSON (an object
mapping tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` plus an optional ``__metadata__``
object of strings; trailing spaces pad it), then the data section; offsets are relative to the data section.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from workbench import safeio
from workbench.records import Finding, Severity
from workbench.textsafe import clean_data, clean_text

__all__ = [
    "DTYPE_SIZES",
    "MAX_HEADER_BYTES",
    "SafetensorsHeader",
    "TensorInfo",
    "Violation",
    "header_findings",
    "looks_like_safetensors",
    "open_nofollow",
    "read_header",
    "read_metadata",
]

DETECTOR = "workbench.model.safetensors_format"
ATLAS = ("AML.T0010.003", "AML.T0018.000")
#: the safetensors library refuses headers above 100 MB; so do we
MAX_HEADER_BYTES = 100_000_000
#: element size in bytes of every dtype the format defines (sub-byte and exotic float8 kinds are not accepted)
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}
#: findings per file beyond which violations are summarised in one finding
MAX_FINDINGS_PER_FILE = 20


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One valid tensor entry of a header.

    Attributes:
        name: tensor name.
        dtype: safetensors dtype (``F32``, ``BF16``...).
        shape: dimensions.
        start / end: absolute byte offsets in the file (data section start already added).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class Violation:
    """One way in which a file breaks the format.

    Attributes:
        code: stable identifier (``duplicate_key``, ``overlapping_offsets``...).
        reason: plain-text explanation naming the tensor and values concerned.
        severity: how suspicious it is (ambiguities a parser may resolve differently are high).
        tensor: the tensor concerned, or None for file-level problems.
    """

    code: str
    reason: str
    severity: Severity = Severity.HIGH
    tensor: str | None = None


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """What :func:`read_header` learned about one file.

    Attributes:
        path: the file read.
        file_size: its size in bytes.
        header_size: the length prefix ``N`` (0 when the file is shorter than 8 bytes).
        data_start: absolute offset of the data section (``8 + N``).
        tensors: valid entries, in header order (entries with violations that make them unreadable are left out).
        metadata: the ``__metadata__`` strings.
        violations: every problem found, in order.
    """

    path: Path
    file_size: int
    header_size: int
    data_start: int
    tensors: tuple[TensorInfo, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()

    @property
    def parsed(self) -> bool:
        """True when the JSON header could be read (tensors may still carry violations)."""
        return not any(v.code in _FATAL for v in self.violations)

    def tensor_map(self) -> dict[str, TensorInfo]:
        return {t.name: t for t in self.tensors}


_FATAL = {"empty_file", "truncated_prefix", "header_too_large", "truncated_header", "not_utf8", "not_json",
          "not_object", "not_a_file", "unreadable"}  # fmt: skip


class _Dup(dict):
    """A JSON object that remembers keys seen more than once (``object_pairs_hook`` target)."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Dup:
    obj = _Dup()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _no_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def _valid_unicode(doc: _Dup) -> tuple[_Dup, bool]:
    """The header with every name and string valid Unicode (duplicate-key records included), and whether it changed."""
    cleaned, changed = clean_data(doc)
    if not changed:
        return doc, False
    for obj in [cleaned, *(v for v in cleaned.values() if isinstance(v, _Dup))]:
        if isinstance(obj, _Dup):
            obj.duplicates = [clean_text(k)[0] for k in getattr(obj, "duplicates", [])]
    return cleaned, True


def open_nofollow(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for reading, refusing a symlink (``O_NOFOLLOW``) rather than following it out of the tree."""
    return safeio.open_evidence(path)


def looks_like_safetensors(path: Path) -> bool:
    """Cheap sniff: a plausible length prefix followed by ``{`` (after optional whitespace). Never raises."""
    try:
        with safeio.open_evidence(path) as fh:
            head = fh.read(9 + 64)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= min(MAX_HEADER_BYTES, size - 8) and head[8:].lstrip(b" \t\r\n")[:1] == b"{"


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse and validate the header of a safetensors file without reading tensor data.

    Reads: the first ``8 + N`` bytes of the file (``N`` capped at :data:`MAX_HEADER_BYTES`). Symlinks are refused.

    Returns:
        The header; problems are listed in ``violations`` (never raised).
    """
    path = Path(path)
    try:
        st = path.lstat()
    except OSError as exc:
        return SafetensorsHeader(path, 0, 0, 0, violations=(Violation("unreadable", f"cannot stat: {exc.strerror}"),))
    if not stat.S_ISREG(st.st_mode):
        return SafetensorsHeader(path, 0, 0, 0, violations=(Violation("not_a_file", "not a regular file"),))
    size = st.st_size
    if size == 0:
        return SafetensorsHeader(path, 0, 0, 0, violations=(Violation("empty_file", "file is empty"),))
    try:
        with open_nofollow(path) as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                v = Violation("truncated_prefix", f"file has {size} bytes, fewer than the 8-byte header length")
                return SafetensorsHeader(path, size, 0, 0, violations=(v,))
            n = int.from_bytes(prefix, "little")
            if n > MAX_HEADER_BYTES:
                v = Violation("header_too_large", f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")
                return SafetensorsHeader(path, size, n, 0, violations=(v,))
            if 8 + n > size:
                v = Violation("truncated_header", f"header length {n} runs past the end of the {size}-byte file")
                return SafetensorsHeader(path, size, n, 0, violations=(v,))
            raw = fh.read(n)
    except OSError as exc:
        return SafetensorsHeader(path, size, 0, 0, violations=(Violation("unreadable", f"cannot read: {exc}"),))
    return _parse(path, size, n, raw)


def read_metadata(fh: IO[bytes], size: int) -> tuple[dict[str, str], str | None]:
    """The ``__metadata__`` of a safetensors stream (a file or an archive member, at its start), for inspection.

    Values that are not strings (the format forbids them; readers may still hand them on) are returned as their JSON
    text, so that nothing in the map goes unexamined.

    Returns:
        ``(metadata, problem)``: ``problem`` says why no metadata could be read (header over the size limit,
        truncated, not JSON), else None.
    """
    prefix = fh.read(8)
    if len(prefix) < 8:
        return {}, "shorter than the 8-byte header length"
    n = int.from_bytes(prefix, "little")
    if n > MAX_HEADER_BYTES or 8 + n > size:
        return {}, f"header length {n} is over the {MAX_HEADER_BYTES}-byte limit or runs past the end of the file"
    raw = fh.read(n)
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return {}, f"header is not JSON: {str(exc)[:200]}"
    meta = doc.get("__metadata__") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return {}, None
    meta, _changed = clean_data(meta)
    return {str(k): v if isinstance(v, str) else json.dumps(v)[:MAX_HEADER_BYTES] for k, v in meta.items()}, None


def _parse(path: Path, size: int, n: int, raw: bytes) -> SafetensorsHeader:
    data_start = 8 + n
    violations: list[Violation] = []

    def fatal(code: str, reason: str) -> SafetensorsHeader:
        return SafetensorsHeader(path, size, n, data_start, violations=(*violations, Violation(code, reason)))

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return fatal("not_utf8", f"header is not UTF-8 (byte {exc.start})")
    stripped = text.lstrip(" \t\r\n")
    if len(stripped) != len(text):
        violations.append(Violation("leading_whitespace", f"{len(text) - len(stripped)} whitespace byte(s) before "
                                    "the JSON header (accepted by the safetensors library, not by the format)",
                                    Severity.MEDIUM))  # fmt: skip
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return fatal("not_json", f"header is not JSON: {str(exc)[:200]}")
    if not isinstance(doc, dict):
        return fatal("not_object", f"header is a JSON {type(doc).__name__}, not an object")
    doc, changed = _valid_unicode(doc)
    if changed:
        violations.append(Violation("lone_surrogate", "the header escapes a lone UTF-16 surrogate (\\ud800...), which "
                                    "the safetensors library refuses; shown as U+FFFD", Severity.MEDIUM))  # fmt: skip
    for key in doc.duplicates:
        violations.append(Violation("duplicate_key", f"key {key!r} appears more than once in the header; readers "
                                    "disagree on which entry wins", Severity.HIGH, key))  # fmt: skip
    metadata: dict[str, str] = {}
    meta = doc.get("__metadata__")
    if meta is not None:
        if isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values()):
            metadata = dict(meta)
        else:
            violations.append(Violation("bad_metadata", "__metadata__ must be an object of strings", Severity.MEDIUM))
    tensors: list[TensorInfo] = []
    for name, entry in doc.items():
        if name == "__metadata__":
            continue
        info = _entry(name, entry, violations, size - data_start)
        if info is not None:
            tensors.append(TensorInfo(name, info.dtype, info.shape, info.start + data_start, info.end + data_start))
    _check_layout(tensors, size - data_start, data_start, violations)
    return SafetensorsHeader(path, size, n, data_start, tuple(tensors), metadata, tuple(violations))


def _entry(name: str, entry: Any, violations: list[Violation], data_len: int) -> TensorInfo | None:
    def bad(code: str, reason: str) -> None:
        violations.append(Violation(code, f"tensor {name!r}: {reason}", Severity.HIGH, name))

    if not isinstance(entry, dict):
        bad("bad_entry", f"entry is a JSON {type(entry).__name__}, not an object")
        return None
    for key in getattr(entry, "duplicates", []):
        bad("duplicate_key", f"field {key!r} appears more than once")
    if missing := _ENTRY_KEYS - entry.keys():
        bad("bad_entry", f"missing field(s) {', '.join(sorted(missing))}")
        return None
    if extra := entry.keys() - _ENTRY_KEYS:
        violations.append(Violation("extra_field", f"tensor {name!r}: unknown field(s) {', '.join(sorted(extra))}",
                                    Severity.MEDIUM, name))  # fmt: skip
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        bad("bad_dtype", f"unknown dtype {dtype!r}")
        return None
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        bad("bad_shape", f"shape {shape!r} is not a list of non-negative integers")
        return None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)):
        bad("bad_offsets", f"data_offsets {offsets!r} is not a pair of non-negative integers")
        return None
    begin, end = offsets
    if begin > end:
        bad("bad_offsets", f"data_offsets [{begin}, {end}] ends before it begins")
        return None
    if end > data_len:
        bad("offsets_out_of_range", f"data_offsets [{begin}, {end}] run past the {data_len}-byte data section")
        return None
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if expected != end - begin:
        bad("size_mismatch", f"{dtype} {shape} needs {expected} bytes but data_offsets [{begin}, {end}] span "
            f"{end - begin}")  # fmt: skip
        return None
    return TensorInfo(name, dtype, tuple(shape), begin, end)


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(tensors: list[TensorInfo], data_len: int, data_start: int, violations: list[Violation]) -> None:
    """Overlaps (two tensors sharing bytes), gaps and trailing bytes no tensor claims (room to hide a payload).

    Overlapping tensors stay readable (the bytes exist); the ambiguity itself is the violation.
    """
    ordered = sorted((t for t in tensors if t.nbytes), key=lambda t: (t.start, t.end))
    cursor, prev = data_start, None
    for t in ordered:
        if prev is not None and t.start < prev.end:
            violations.append(Violation("overlapping_offsets", f"tensors {prev.name!r} and {t.name!r} share bytes "
                                        f"{t.start - data_start}..{min(prev.end, t.end) - data_start} of the data "
                                        "section", Severity.HIGH, t.name))  # fmt: skip
        elif t.start > cursor:
            violations.append(Violation("unclaimed_bytes", f"{t.start - cursor} byte(s) before tensor {t.name!r} "
                                        "belong to no tensor", Severity.MEDIUM, t.name))  # fmt: skip
        if prev is None or t.end > prev.end:
            prev = t
        cursor = max(cursor, t.end)
    if data_len > cursor - data_start:
        violations.append(Violation("trailing_bytes", f"{data_len - (cursor - data_start)} byte(s) after the last "
                                    "tensor belong to no tensor", Severity.MEDIUM))  # fmt: skip


def header_findings(header: SafetensorsHeader, display_path: str) -> list[Finding]:
    """One ``safetensors_malformed`` finding per violation (at most 20 per file, then one summary).

    Args:
        header: from :func:`read_header`.
        display_path: the file's path as shown in ``evidence.path``.
    """
    out: list[Finding] = []
    shown = header.violations[:MAX_FINDINGS_PER_FILE]
    for v in shown:
        evidence: dict[str, Any] = {"path": display_path, "violation": v.code}
        if v.tensor is not None:
            evidence["tensor"] = v.tensor
        out.append(Finding.create(
            severity=v.severity, category="safetensors_malformed", detector=DETECTOR, atlas=ATLAS,
            title=f"{display_path}: malformed safetensors ({v.code.replace('_', ' ')})",
            detail=v.reason, evidence=evidence,
        ))  # fmt: skip
    rest = header.violations[MAX_FINDINGS_PER_FILE:]
    if rest:
        worst = max((v.severity for v in rest), key=lambda s: s.rank)
        out.append(Finding.create(
            severity=worst, category="safetensors_malformed", detector=DETECTOR, atlas=ATLAS,
            title=f"{display_path}: {len(rest)} more safetensors violations",
            detail="; ".join(sorted({v.code for v in rest})), evidence={"path": display_path, "violation": "more"},
        ))  # fmt: skip
    return out
