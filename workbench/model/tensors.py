"""Tensor-level diff of two checkpoints (safetensors, PyTorch, GGUF, in any pairing), streamed in constant memory.

Each tensor is viewed as a matrix ``(shape[0], rest)`` (a vector as a column) and read in blocks of at most
:data:`CHUNK_ELEMENTS` elements through a memory map of just that window, released after use, so peak memory does not
grow with checkpoint size (:mod:`workbench.model.tensor_io` locates the bytes of every format; a GGUF quantised row is
read as its blocks). Per tensor:

1. raw bytes compared block by block (most tensors stop here: ``identical``);
2. for a modified tensor, values decoded to float64 (bf16 by shifting ``uint16`` into ``float32``; GGUF Q4_0, Q4_1,
   Q5_0, Q5_1 and Q8_0 dequantised): changed elements, max absolute change, Frobenius norms, changed rows, a coarse
   heat grid, and a randomized sketch ``Y = ΔΩ``. Kinds compared as bytes only (float8, the other GGML
   quantisations) give changed elements (every element of a changed quantisation block), rows and the heat grid;
3. one power iteration and ``B = QᵀΔ`` (three more passes, over the changed blocks only), whose singular values
   give the change's top singular value (Halko, Martinsson & Tropp 2011: a lower bound, exact when the change has
   rank ≤ the sketch size; an exact SVD when the matrix is small).

``top_singular_energy`` = σ₁² / ‖Δ‖²_F: 1.0 for a rank-1 edit (ROME-style model editing as in PoisonGPT), small for
fine-tuning noise. Nothing in the files is executed or unpickled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.model.pair_pass import Changes
from workbench.model.safetensors_format import TensorInfo, open_nofollow
from workbench.model.tensor_io import KINDS, TensorSource, matrix
from workbench.model.tensor_record import STATUSES, TensorDiff, finite_or_none
from workbench.model.tensor_stats import Side, measure

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHUNK_ELEMENTS",
    "STATUSES",
    "TensorDiff",
    "as_source",
    "diff_tensor",
    "finite_or_none",
    "is_embedding",
    "layer_of",
    "tensor_frame",
]


#: elements per block (2 MiB of float64 per decoded array: two blocks are measured at once, each holding a few
#: such arrays, so the statistics stay within about 30 MiB; 1 << 20 held 140 MiB at the peak)
CHUNK_ELEMENTS = 1 << 18
#: a strided (non-contiguous) view is read in blocks this many times smaller: a block may touch one page per element
STRIDED_DIVISOR = 16
_EMBED_HINTS = ("embed", "wte", "tok_embeddings", "lm_head")


def is_embedding(name: str, shape: tuple[int, ...], vocab: Mapping[int, str] | None) -> bool:
    """A 2-D tensor named like a token embedding (or output head) whose rows match the vocabulary size (+ padding)."""
    lowered = name.lower()
    if not vocab or len(shape) != 2 or not any(h in lowered for h in _EMBED_HINTS):
        return False
    if any(h in lowered for h in ("position", "token_type", "pos_emb")):
        return False
    size = max(vocab) + 1
    return size <= shape[0] <= size + max(64, size // 100)  # rows are often padded to a multiple of 64


def as_source(side: TensorSource | tuple[Path, TensorInfo], display: str = "") -> TensorSource:
    """A :class:`TensorSource` from a source or a safetensors ``(file, header entry)`` pair."""
    if isinstance(side, TensorSource):
        return side
    path, info = side
    return TensorSource(info.name, info.dtype, info.shape, path, info.start, display or path.name)


def _blocks(m: int, n: int, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` blocks of units, each contiguous in a row-major file, each at most ``chunk`` units."""
    if n <= chunk:
        step = max(1, chunk // n)
        for r0 in range(0, m, step):
            yield r0, min(m, r0 + step), 0, n
    else:
        for r in range(m):
            for c0 in range(0, n, chunk):
                yield r, r + 1, c0, min(n, c0 + chunk)


def diff_tensor(
    suspect: TensorSource | tuple[Path, TensorInfo],
    reference: TensorSource | tuple[Path, TensorInfo],
    *,
    display_path: str | None = None,
    vocab: Mapping[int, str] | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
    changes: Changes | None = None,
) -> tuple[TensorDiff, np.ndarray | None]:
    """Compare one tensor present in both checkpoints (any formats: see :mod:`workbench.model.tensor_io`).

    Args:
        suspect / reference: each side's :class:`~workbench.model.tensor_io.TensorSource`, or a safetensors
            ``(file, header entry)`` pair (headers already validated).
        display_path: the suspect file as shown in the result (default: the source's ``display``).
        vocab: token id -> token, to name the changed rows of an embedding matrix.
        chunk_elements: block size in elements (memory bound; strided views use a sixteenth of it).
        changes: the byte ranges where the two sides' files differ (:mod:`workbench.model.pair_pass`), when both
            sides are in that file pair; used only when the tensor lies at the same offset in both, contiguous and
            of one byte order: then the blocks no range touches are identical without being read.

    Returns:
        ``(diff, heat)``: ``heat`` is a grid (at most 64 x 64) of the change's L2 norm per cell of rows x columns
        for a modified tensor, else None.
    """
    s, r = as_source(suspect, display_path or ""), as_source(reference)
    base = TensorDiff(s.name, "identical", display_path or s.display, s.dtype, s.shape, r.dtype, r.shape,
                      reference_path=r.display)  # fmt: skip
    if s.shape != r.shape:
        return replace(base, status="shape_changed"), None
    if s.dtype != r.dtype:
        return replace(base, status="dtype_changed"), None
    m, n = matrix(s.shape)
    if m * n == 0:
        return base, None
    ue = KINDS[s.dtype].unit_elems
    chunk = max(1, chunk_elements // ue)
    if s.strides is not None or r.strides is not None:
        chunk = max(1, chunk // STRIDED_DIVISOR)
    positional = (changes is not None and s.offset == r.offset and s.strides is None and r.strides is None
                  and s.big_endian == r.big_endian)  # fmt: skip
    if positional and not changes.touches(s.offset, s.offset + s.nbytes):
        return base, None  # the pass that hashed both files found no difference in this tensor's bytes
    with open_nofollow(s.path) as sf, open_nofollow(r.path) as rf:
        sus, ref = Side(sf, s, n // ue), Side(rf, r, n // ue)
        blocks = list(_blocks(m, n // ue, chunk))
        todo = [b for b in blocks if changes.touches(*_span(s, n // ue, b))] if positional else blocks
        changed_blocks = [b for b in todo if not np.array_equal(sus.raw(b), ref.raw(b))]
        if not changed_blocks:
            return base, None
        return measure(base, sus, ref, m, n, blocks, changed_blocks, vocab, is_embedding)


def _span(src: TensorSource, n_units: int, block: tuple[int, int, int, int]) -> tuple[int, int]:
    """Byte range ``[start, end)`` of a block of a contiguous source in its file."""
    r0, r1, c0, c1 = block
    unit = KINDS[src.dtype].unit_bytes
    return src.offset + (r0 * n_units + c0) * unit, src.offset + ((r1 - 1) * n_units + c1) * unit


def layer_of(name: str) -> int | None:
    for part in name.split("."):
        if part.isdigit():
            return int(part)
    return None


def tensor_frame(diffs: list[TensorDiff]) -> pd.DataFrame:
    """One row per tensor: ``name``, ``status``, ``path``, ``dtype``, ``shape``, ``reference_dtype``,
    ``reference_shape`` (str), ``changed_elements``, ``changed_row_count`` (Int64), ``changed_fraction``,
    ``max_abs_change``, ``relative_change``, ``top_singular_energy`` (float64, NaN when not applicable),
    ``changed_rows``, ``changed_tokens`` (str, comma-joined), ``layer`` (Int64: first integer in the name)."""
    import pandas as pd

    cols = ["name", "status", "path", "dtype", "shape", "reference_dtype", "reference_shape", "changed_elements",
            "changed_fraction", "max_abs_change", "relative_change", "top_singular_energy", "changed_row_count",
            "changed_rows", "changed_tokens", "layer"]  # fmt: skip
    rows = [
        {**{c: getattr(d, c) for c in cols[:12] if c not in ("shape", "reference_shape")},
         "shape": "x".join(map(str, d.shape)) if d.shape is not None else None,
         "reference_shape": "x".join(map(str, d.reference_shape)) if d.reference_shape is not None else None,
         "changed_row_count": d.changed_row_count if d.status == "modified" else None,
         "changed_rows": ", ".join(map(str, d.changed_rows)), "changed_tokens": ", ".join(d.changed_tokens),
         "layer": layer_of(d.name)}
        for d in diffs
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=cols)
    for col in ("changed_elements", "changed_row_count", "layer"):
        df[col] = df[col].astype("Int64")
    for col in ("changed_fraction", "max_abs_change", "relative_change", "top_singular_energy"):
        df[col] = df[col].astype("float64")
    return df
