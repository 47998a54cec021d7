"""GGML tensor types (the element and block layouts of GGUF tensors) and the dequantisation of the simple ones.

A quantised GGML type stores a row as consecutive blocks, each encoding ``block_size`` elements in ``type_size``
bytes (a scale, sometimes a minimum, then packed integers). Sizes are those of ``ggml.c``'s type traits (and of the
``gguf`` package's ``GGML_QUANT_SIZES``). :func:`dequantize` decodes the types whose layout is one scale per block
(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) exactly as ``ggml-quants.c`` does; the K-quants, I-quants and the rest are compared
by their bytes only. Nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GGML_TYPES", "GgmlType", "dequantize"]


@dataclass(frozen=True, slots=True)
class GgmlType:
    """One GGML type: its name (the workbench's dtype), elements per block and bytes per block."""

    code: int
    name: str
    block_size: int
    type_size: int

    @property
    def quantized(self) -> bool:
        return self.block_size > 1


def _table() -> dict[int, GgmlType]:
    rows = [
        (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
        (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 40), (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110),
        (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292),
        (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50),
        (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136),
        (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8),
        (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66),
        (39, "MXFP4", 32, 17),
    ]  # fmt: skip
    return {code: GgmlType(code, name, bs, ts) for code, name, bs, ts in rows}


#: GGML type code -> type (types missing here are not compared)
GGML_TYPES: dict[int, GgmlType] = _table()


def _f16(raw: np.ndarray, at: int) -> np.ndarray:
    """The float16 at byte ``at`` of every block, as float64 of shape ``(rows, blocks, 1)``."""
    return np.ascontiguousarray(raw[..., at : at + 2]).view("<f2").astype(np.float64)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """16 bytes of packed 4-bit values -> 32 values: low nibbles are elements 0-15, high nibbles 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int64)


def _high_bits(qh: np.ndarray) -> np.ndarray:
    """The fifth bit of each of 32 elements, from the block's 4 bytes ``qh`` (little-endian uint32)."""
    bits = np.ascontiguousarray(qh).view("<u4").astype(np.int64)  # (rows, blocks, 1)
    return ((bits >> np.arange(32, dtype=np.int64)) & 1) << 4


def _q4_0(raw: np.ndarray) -> np.ndarray:
    return (_nibbles(raw[..., 2:18]) - 8) * _f16(raw, 0)


def _q4_1(raw: np.ndarray) -> np.ndarray:
    return _nibbles(raw[..., 4:20]) * _f16(raw, 0) + _f16(raw, 2)


def _q5_0(raw: np.ndarray) -> np.ndarray:
    return ((_nibbles(raw[..., 6:22]) | _high_bits(raw[..., 2:6])) - 16) * _f16(raw, 0)


def _q5_1(raw: np.ndarray) -> np.ndarray:
    return (_nibbles(raw[..., 8:24]) | _high_bits(raw[..., 4:8])) * _f16(raw, 0) + _f16(raw, 2)


def _q8_0(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw[..., 2:34]).view(np.int8).astype(np.float64) * _f16(raw, 0)


_DEQUANT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
}  # fmt: skip


def dequantize(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The decoder of a quantised type, or None when it is compared by bytes only.

    The decoder takes raw blocks of shape ``(rows, blocks, type_size)`` (uint8) and returns float64 values of shape
    ``(rows, blocks * block_size)``, elements in row order.
    """
    fn = _DEQUANT.get(name)
    if fn is None:
        return None

    def decode(raw: np.ndarray) -> np.ndarray:
        values = fn(raw)
        return values.reshape(raw.shape[0], -1)

    return decode
