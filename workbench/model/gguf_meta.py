"""GGUF metadata header, read strictly with caps (no tensor data, no ``gguf`` package, no memory map).

Layout (GGUF v1-v3): ``GGUF``, uint32 version, tensor count and metadata count (uint64; uint32 in v1), then
``count`` entries of (string key, uint32 type, value); strings are a length (uint64; uint32 in v1) and UTF-8 bytes.
Every length is checked against the caps in :class:`~workbench.model.limits.ScanLimits` before anything is
allocated; huge strings and arrays are skipped by seeking. The chat template (``tokenizer.chat_template`` and its
named variants) is kept in full for analysis.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from workbench.model.limits import ScanLimits

__all__ = ["GgufCapReached", "GgufError", "GgufHeader", "read_gguf_header"]

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
#: metadata values kept for display (the rest are counted)
MAX_KEPT = 256
#: longest metadata key read (keys are short dotted names)
MAX_KEY = 64 * 1024
SHOWN_STRING = 200
_OVER_CAP = "<string over the cap>"


class GgufError(ValueError):
    """The header cannot be read further (truncated, or a length past a cap)."""


class GgufCapReached(GgufError):
    """The header goes on past a cap (bytes walked, array length): the rest is not read."""


@dataclass(frozen=True, slots=True)
class GgufHeader:
    """What the GGUF header says.

    Attributes:
        version / tensor_count / kv_count: as declared.
        metadata: up to 256 entries: scalars, strings cut to 200 characters, arrays as ``<array of N type>``.
        chat_templates: key -> full template text (within the string cap).
        problems: what was wrong or skipped (caps, truncation, invalid UTF-8), each with its byte offset.
        header_bytes: bytes of metadata walked.
        capped: what a cap left unread that the analysis needs (entries past the entry or byte cap, a chat template
            over the string cap), each with its byte offset.
    """

    version: int
    tensor_count: int
    kv_count: int
    metadata: dict[str, Any]
    chat_templates: dict[str, str]
    problems: tuple[str, ...]
    header_bytes: int
    capped: tuple[str, ...] = ()


class _Reader:
    def __init__(self, fh: BinaryIO, size: int, limits: ScanLimits) -> None:
        self.fh, self.size, self.limits, self.pos = fh, size, limits, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise GgufError(f"at offset {self.pos}: header truncated (needs {n} more bytes)")
        if self.pos + n > self.limits.gguf_max_header_bytes:
            raise GgufCapReached(
                f"at offset {self.pos}: metadata larger than the {self.limits.gguf_max_header_bytes}-byte cap"
            )
        data = self.fh.read(n)
        if len(data) != n:
            raise GgufError(f"at offset {self.pos}: header truncated")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GgufError(f"at offset {self.pos}: a length of {n} bytes runs past the end of the file")
        if self.pos + n > self.limits.gguf_max_header_bytes:
            raise GgufCapReached(
                f"at offset {self.pos}: metadata larger than the {self.limits.gguf_max_header_bytes}-byte cap"
            )
        self.fh.seek(n, 1)
        self.pos += n

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]


def _open(fh: BinaryIO, size: int, limits: ScanLimits) -> tuple[_Reader, int, int, int]:
    """The fixed part of a GGUF header: ``(reader after it, version, tensor count, metadata entry count)``."""
    r = _Reader(fh, size, limits)
    if r.take(4) != b"GGUF":
        raise GgufError("no GGUF magic")
    version = r.unpack("<I")
    if version not in (1, 2, 3):
        raise GgufError(f"GGUF version {version} not supported")
    count_fmt = _count_fmt(version)
    return r, version, r.unpack(count_fmt), r.unpack(count_fmt)


def _count_fmt(version: int) -> str:
    """Counts and lengths are 32-bit in GGUF version 1, 64-bit after."""
    return "<I" if version == 1 else "<Q"


def read_gguf_header(fh: BinaryIO, size: int, limits: ScanLimits | None = None) -> GgufHeader:
    """Parse the metadata of a GGUF file.

    Args:
        fh: the file, seekable, positioned at 0.
        size: file size in bytes.
        limits: caps on entries, string and array lengths, and bytes walked.

    Returns:
        The :class:`GgufHeader`; a header that breaks off records why in ``problems`` with what was read before.

    Raises:
        GgufError: not a GGUF file, or the fixed part of the header is unusable.
    """
    limits = limits or ScanLimits()
    r, version, tensor_count, kv_count = _open(fh, size, limits)
    count_fmt = _count_fmt(version)
    metadata: dict[str, Any] = {}
    templates: dict[str, str] = {}
    problems: list[str] = []
    capped: list[str] = []
    if kv_count > limits.gguf_max_kv:
        capped.append(f"declares {kv_count} metadata entries; only {limits.gguf_max_kv} are read")
    try:
        for _ in range(min(kv_count, limits.gguf_max_kv)):
            at = r.pos
            key = _string(r, count_fmt, MAX_KEY, problems, keep=True) or f"<key at {at}>"
            vtype = r.unpack("<I")
            value = _value(r, vtype, count_fmt, key, templates, problems, depth=0)
            if value == _OVER_CAP and key.startswith("tokenizer.chat_template"):
                capped.append(f"at offset {at}: chat template {key!r} over the {limits.gguf_max_string}-byte string "
                              "cap, not analysed")  # fmt: skip
            if len(metadata) < MAX_KEPT:
                metadata[key] = value
    except GgufCapReached as exc:
        capped.append(f"{exc}; the rest of the metadata is not read")
    except GgufError as exc:
        problems.append(str(exc))
    return GgufHeader(version, tensor_count, kv_count, metadata, templates, tuple(problems), r.pos, tuple(capped))


def _string(r: _Reader, count_fmt: str, cap: int, problems: list[str], *, keep: bool) -> str | None:
    at = r.pos
    length = r.unpack(count_fmt)
    if length > cap:
        r.skip(length)
        problems.append(f"at offset {at}: string of {length} bytes exceeds the {cap}-byte cap, skipped")
        return None
    if not keep:
        r.skip(length)
        return None
    raw = r.take(length)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"at offset {at}: string is not valid UTF-8")
        return raw.decode("utf-8", "replace")


def _value(
    r: _Reader, vtype: int, count_fmt: str, key: str, templates: dict[str, str], problems: list[str], depth: int
) -> Any:
    if vtype in _SCALARS:
        return r.unpack(_SCALARS[vtype])
    if vtype == 8:
        text = _string(r, count_fmt, r.limits.gguf_max_string, problems, keep=True)
        if text is None:
            return _OVER_CAP
        if key.startswith("tokenizer.chat_template") and depth == 0:
            templates[key] = text
        return text if len(text) <= SHOWN_STRING else text[:SHOWN_STRING] + "…"
    if vtype == 9:
        at = r.pos
        item_type, count = r.unpack("<I"), r.unpack(count_fmt)
        if count > r.limits.gguf_max_array:
            raise GgufCapReached(
                f"at offset {at}: array of {count} items exceeds the {r.limits.gguf_max_array}-item cap"
            )
        if depth >= 2:
            raise GgufError(f"at offset {at}: arrays nested deeper than 2")
        if item_type in _SCALARS:
            r.skip(count * struct.calcsize(_SCALARS[item_type]))
        elif item_type == 8:
            for _ in range(count):
                _string(r, count_fmt, r.limits.gguf_max_string, problems, keep=False)
        elif item_type == 9:
            for _ in range(count):
                _value(r, 9, count_fmt, key, templates, problems, depth + 1)
        else:
            raise GgufError(f"at offset {at}: array item type {item_type} unknown")
        return f"<array of {count} {_TYPE_NAMES.get(item_type, item_type)}>"
    raise GgufError(f"at offset {r.pos - 4}: value type {vtype} unknown for key {key!r}")


# --- tensor infos (added for the tensor diff; the functions above are unchanged) -------------------------------------

#: tensor infos read per file
MAX_TENSOR_INFOS = 1_000_000
#: dimensions per tensor (GGML has 4)
MAX_DIMS = 8
#: alignment used when ``general.alignment`` is absent
DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True, slots=True)
class GgufTensorInfo:
    """One tensor info: name, dimensions as stored (``ne``, fastest first), GGML type code, offset in the data."""

    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int


@dataclass(frozen=True, slots=True)
class GgufLayout:
    """Where a GGUF file's tensors are: their infos, the alignment and the absolute offset of the data section."""

    version: int
    tensors: tuple[GgufTensorInfo, ...]
    alignment: int
    data_start: int


def read_gguf_layout(fh: BinaryIO, size: int, limits: ScanLimits | None = None) -> GgufLayout:
    """Walk the metadata (keeping only ``general.alignment``) and read every tensor info.

    Args:
        fh: the file, seekable, positioned at 0; size: its size in bytes.
        limits: the metadata caps of :func:`read_gguf_header`.

    Raises:
        GgufError: not a GGUF file, a header that cannot be walked to its end (truncated, past a cap, more than
            :data:`MAX_TENSOR_INFOS` tensors), or an alignment that is not a power of two.
    """
    limits = limits or ScanLimits()
    r, version, tensor_count, kv_count = _open(fh, size, limits)
    count_fmt = _count_fmt(version)
    if kv_count > limits.gguf_max_kv or tensor_count > MAX_TENSOR_INFOS:
        raise GgufCapReached(f"declares {kv_count} metadata entries and {tensor_count} tensors (caps "
                             f"{limits.gguf_max_kv} and {MAX_TENSOR_INFOS})")  # fmt: skip
    alignment = DEFAULT_ALIGNMENT
    problems: list[str] = []
    for _ in range(kv_count):
        key = _string(r, count_fmt, MAX_KEY, problems, keep=True)
        vtype = r.unpack("<I")
        if key == "general.alignment" and vtype == 4:
            alignment = r.unpack("<I")
        else:
            _value(r, vtype, count_fmt, key or "", {}, problems, depth=0)
    if alignment <= 0 or alignment & (alignment - 1):
        raise GgufError(f"general.alignment {alignment} is not a power of two")
    infos: list[GgufTensorInfo] = []
    for _ in range(tensor_count):
        at = r.pos
        name = _string(r, count_fmt, MAX_KEY, problems, keep=True)
        n_dims = r.unpack("<I")
        if name is None or n_dims > MAX_DIMS:
            raise GgufError(f"at offset {at}: tensor info with a name over {MAX_KEY} bytes or {n_dims} dimensions")
        dims = tuple(r.unpack(count_fmt) for _ in range(n_dims))
        infos.append(GgufTensorInfo(name, dims, r.unpack("<I"), r.unpack("<Q")))
    data_start = -(-r.pos // alignment) * alignment
    return GgufLayout(version, tuple(infos), alignment, data_start)
