"""Where one tensor's bytes are, whatever the format, and how a block of them is read and decoded.

A :class:`TensorSource` names a tensor's file, the offset of its first element, its element kind and, for a PyTorch
view that is not contiguous, its element strides. Every format reader (safetensors headers, PyTorch zip and legacy
checkpoints, GGUF tensor infos) produces sources, so that :mod:`workbench.model.tensors` diffs all of them the same
way. A tensor is viewed as a matrix of ``rows x units``: a unit is one element, or one quantisation block of a GGUF
row (``unit_elems`` elements in ``unit_bytes`` bytes). Blocks of units are read through a memory map of just their
window (or gathered from a strided view, touching only the pages they need) and released after use.

:class:`FileTensors` is what a format reader found in one file: its sources, names it could list but not compare,
findings, warnings, what it could not examine (``unexamined``) and softer ``limits``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from workbench.model.ggml_types import GGML_TYPES, dequantize
from workbench.records import EvidenceWarning, Finding

__all__ = ["KINDS", "FileTensors", "Kind", "TensorSource", "changed_units", "decode", "matrix", "read_block"]


@dataclass(frozen=True, slots=True)
class Kind:
    """How one dtype is stored: ``unit_bytes`` per unit of ``unit_elems`` elements; ``raw`` is the numpy code of the
    unsigned view of an element kind (None for block kinds, read as bytes); ``decode`` gives float64 values, or is
    None for kinds compared by bytes only (float8, most GGML quantisations)."""

    unit_bytes: int
    unit_elems: int
    raw: str | None
    decode: Callable[[np.ndarray], np.ndarray] | None


def _view(code: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda raw: raw.view(code).astype(np.float64)


def _bf16(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def _kinds() -> dict[str, Kind]:
    plain = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "<i1", "U8": "<u1", "BOOL": "<u1", "I16": "<i2",
             "U16": "<u2", "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8"}  # fmt: skip
    raw = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}
    out = {name: Kind(int(code[-1]), 1, raw[int(code[-1])], _view(code)) for name, code in plain.items()}
    out["BF16"] = Kind(2, 1, "<u2", _bf16)
    out["F8_E5M2"] = Kind(1, 1, "<u1", None)
    out["F8_E4M3"] = Kind(1, 1, "<u1", None)
    for t in GGML_TYPES.values():
        if t.quantized:
            out[t.name] = Kind(t.type_size, t.block_size, None, dequantize(t.name))
    return out


#: dtype name (safetensors names, GGML type names) -> storage kind
KINDS: dict[str, Kind] = _kinds()


@dataclass(frozen=True, slots=True)
class TensorSource:
    """One tensor's bytes in a file.

    Attributes:
        name: tensor name.
        dtype: a key of :data:`KINDS`.
        shape: dimensions in row-major order (GGUF's ``ne`` reversed).
        path: the file holding the bytes; display: that file as shown.
        offset: absolute byte offset of the first element.
        strides: element strides of a non-contiguous PyTorch view (None: contiguous row-major).
        big_endian: elements are stored big-endian (a PyTorch checkpoint saved on such a machine).
        member: the archive member holding the bytes (``archive/data/0``), when there is one.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int
    display: str
    strides: tuple[int, ...] | None = None
    big_endian: bool = False
    member: str | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        kind = KINDS[self.dtype]
        return self.numel // kind.unit_elems * kind.unit_bytes


@dataclass(slots=True)
class FileTensors:
    """What one format reader found in one file.

    Attributes:
        path / display: the file, and as shown.
        format: ``safetensors``, ``pytorch-zip``, ``pytorch-legacy``, ``pytorch-tar`` or ``gguf``.
        tensors: the comparable tensors, in file order.
        listed: names of tensors found but not comparable (unlocated, unknown type: each also in ``unexamined``).
        findings / warnings: about the file's structure, and what could not be read.
        unexamined: ``"path: reason"`` for tensors (or the whole file) that could not be compared.
        limits: softer notes (what was inventoried only, names normalised).
        aliases: tensor name -> the first name of the same bytes (tied weights of a PyTorch checkpoint).
        scratch: private temporary files holding inflated bytes (a compressed zip member), removed by
            :meth:`release`.
    """

    path: Path
    display: str
    format: str
    tensors: list[TensorSource] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    scratch: list[Path] = field(default_factory=list)

    def release(self) -> None:
        """Remove the temporary files of inflated members (the sources pointing at them become unreadable)."""
        for path in self.scratch:
            path.unlink(missing_ok=True)
        self.scratch.clear()

    def not_compared(self, what: str, reason: str, name: str | None = None) -> None:
        """Record something of this file left uncompared (``unexamined`` and a warning; ``name``: the tensor's, kept
        in ``listed`` so that a pairing does not call it added or removed)."""
        if name is not None:
            self.listed.append(name)
        self.unexamined.append(f"{self.display}: {what} not compared: {reason}")
        self.warnings.append(EvidenceWarning(self.display, None, f"{what} not compared: {reason}"))


def matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(rows, columns)`` of the matrix view: the first dimension by the rest (a vector as a column)."""
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], math.prod(shape[1:])


def read_block(fh: IO[bytes], src: TensorSource, n_units: int, block: tuple[int, int, int, int]) -> np.ndarray:
    """Raw units of one block ``(r0, r1, c0, c1)`` (rows, then unit columns) of ``src``.

    Element kinds give an unsigned-integer array ``(rows, units)`` in little-endian order; block kinds give uint8
    ``(rows, units, unit_bytes)``. Contiguous sources are memory-mapped (the map is released when the array is
    dropped); strided ones are gathered from a map of the span the block touches.
    """
    kind = KINDS[src.dtype]
    r0, r1, c0, c1 = block
    if src.strides is not None:
        return _gather(fh, src, kind, block)
    offset = src.offset + (r0 * n_units + c0) * kind.unit_bytes
    count = (r1 - r0) * (c1 - c0)
    if kind.raw is None:
        mm = np.memmap(fh, dtype=np.uint8, mode="r", offset=offset, shape=(count * kind.unit_bytes,))
        return mm.reshape(r1 - r0, c1 - c0, kind.unit_bytes)
    arr = np.memmap(fh, dtype=kind.raw, mode="r", offset=offset, shape=(count,)).reshape(r1 - r0, c1 - c0)
    return arr.byteswap() if src.big_endian and kind.unit_bytes > 1 else arr


def _gather(fh: IO[bytes], src: TensorSource, kind: Kind, block: tuple[int, int, int, int]) -> np.ndarray:
    """A strided block: element offsets computed from the strides, read from a map of their span only."""
    assert src.strides is not None and kind.raw is not None  # noqa: S101 - strided sources are element kinds
    r0, r1, c0, c1 = block
    cols = np.arange(c0, c1, dtype=np.int64)
    col_off = np.zeros(c1 - c0, dtype=np.int64)
    if len(src.shape) > 1:
        for index, stride in zip(np.unravel_index(cols, src.shape[1:]), src.strides[1:], strict=True):
            col_off += index.astype(np.int64) * stride
    row_stride = src.strides[0] if src.strides else 0
    offsets = (np.arange(r0, r1, dtype=np.int64) * row_stride)[:, None] + col_off[None, :]
    lo, hi = int(offsets.min()), int(offsets.max()) + 1
    mm = np.memmap(fh, dtype=kind.raw, mode="r", offset=src.offset + lo * kind.unit_bytes, shape=(hi - lo,))
    out = np.asarray(mm[offsets - lo])
    del mm
    return out.byteswap() if src.big_endian and kind.unit_bytes > 1 else out


def decode(raw: np.ndarray, dtype: str) -> np.ndarray | None:
    """float64 values ``(rows, units * unit_elems)`` of a raw block; None for kinds compared as bytes only."""
    fn = KINDS[dtype].decode
    if fn is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and infinities are counted by the caller
        return fn(np.asarray(raw))


def changed_units(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean ``(rows, units)``: units whose bytes differ."""
    diff = a != b
    return diff.any(axis=2) if diff.ndim == 3 else diff
