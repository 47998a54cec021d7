"""Tensor-level diff of two safetensors checkpoints, streamed in constant memory.

Each tensor is viewed as a matrix ``(shape[0], rest)`` (a vector as a column) and read in blocks of at most
:data:`CHUNK_ELEMENTS` elements through a memory map of just that window, released after use, so peak memory does not
grow with checkpoint size. Per tensor:

1. raw bytes compared block by block (most tensors stop here: ``identical``);
2. for a modified tensor, values decoded to float64 (bf16 by shifting ``uint16`` into ``float32``): changed elements,
   max absolute change, Frobenius norms, changed rows, a coarse heat grid, and a randomized sketch ``Y = ΔΩ``;
3. one power iteration and ``B = QᵀΔ`` (three more passes, over the changed blocks only), whose singular values
   give the change's top singular value (Halko, Martinsson & Tropp 2011: a lower bound, exact when the change has
   rank ≤ the sketch size; an exact SVD when the matrix is small).

``top_singular_energy`` = σ₁² / ‖Δ‖²_F: 1.0 for a rank-1 edit (ROME-style model editing as in PoisonGPT), small for
fine-tuning noise. Headers come from :mod:`workbench.model.safetensors_format`; nothing in the files is executed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from workbench.model.safetensors_format import DTYPE_SIZES, TensorInfo, open_nofollow

__all__ = ["CHUNK_ELEMENTS", "STATUSES", "TensorDiff", "diff_tensor", "finite_or_none", "is_embedding", "layer_of"]


#: elements per block (8 MiB of float64 per decoded array)
CHUNK_ELEMENTS = 1 << 20
#: sketch width of the randomized SVD (target rank 1, generous oversampling)
SKETCH = 16
#: power iterations refining the sketch (each costs two passes over the changed blocks)
POWER_ITERATIONS = 1
#: matrices with at most this many elements get an exact SVD of the whole change
EXACT_SVD_ELEMENTS = 1 << 18
#: beyond this many rows + columns the sketch is skipped (its arrays would dominate memory)
MAX_SKETCH_DIM = 1 << 18
#: changed row indices listed per tensor (the count is always exact)
MAX_ROWS_LISTED = 1000
#: heat grid resolution (rows x columns of cells)
HEAT_CELLS = 64
STATUSES = ("added", "removed", "shape_changed", "dtype_changed", "modified", "identical")
_RAW = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}
_NUMERIC = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "<i1", "U8": "<u1", "BOOL": "<u1", "I16": "<i2",
            "U16": "<u2", "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8"}  # fmt: skip
_EMBED_HINTS = ("embed", "wte", "tok_embeddings", "lm_head")


@dataclass(frozen=True, slots=True)
class TensorDiff:
    """How one tensor differs between the suspect and the reference.

    Attributes:
        name: tensor name.
        status: one of :data:`STATUSES`.
        path: the file holding it (suspect's, or the reference's for a removed tensor), as displayed.
        dtype / shape: in the suspect (None when removed).
        reference_dtype / reference_shape: in the reference (None when added).
        changed_elements: elements whose bytes differ (modified only).
        changed_fraction: ``changed_elements / numel``.
        max_abs_change: largest finite absolute difference (None for float8 kinds, which are compared as bytes).
        relative_change: ``‖Δ‖_F / ‖reference‖_F`` over finite values (None when the reference norm is 0).
        changed_rows: first :data:`MAX_ROWS_LISTED` indices along the first dimension that changed.
        changed_row_count: how many rows changed.
        changed_tokens: tokens of the changed rows, for an embedding matrix when a vocabulary was given.
        top_singular_energy: share of the change's energy in its top singular value (None for vectors).
        nonfinite: changed elements whose difference is not finite (NaN or infinity on either side); they are left
            out of the norms and the maximum.
    """

    name: str
    status: str
    path: str
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    reference_dtype: str | None = None
    reference_shape: tuple[int, ...] | None = None
    changed_elements: int | None = None
    changed_fraction: float | None = None
    max_abs_change: float | None = None
    relative_change: float | None = None
    changed_rows: tuple[int, ...] = ()
    changed_row_count: int = 0
    changed_tokens: tuple[str, ...] = ()
    top_singular_energy: float | None = None
    nonfinite: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``tensors`` entry of the ``diff-model`` JSON contract (metrics only for modified tensors)."""
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "path": self.path,
            "dtype": self.dtype,
            "shape": list(self.shape) if self.shape is not None else None,
            "reference_dtype": self.reference_dtype,
            "reference_shape": list(self.reference_shape) if self.reference_shape is not None else None,
        }
        if self.status == "modified":
            out.update(
                changed_elements=self.changed_elements,
                changed_fraction=self.changed_fraction,
                max_abs_change=finite_or_none(self.max_abs_change),
                relative_change=finite_or_none(self.relative_change),
                changed_rows=list(self.changed_rows),
                changed_row_count=self.changed_row_count,
                top_singular_energy=self.top_singular_energy,
                nonfinite=self.nonfinite,
            )
            if self.changed_tokens:
                out["changed_tokens"] = list(self.changed_tokens)
        return out


def finite_or_none(value: float | None) -> float | None:
    """The value, or None when it is None, NaN or infinite (JSON has no such numbers)."""
    return value if value is None or math.isfinite(value) else None


@dataclass(slots=True)
class _Acc:
    """Running sums of pass 2."""

    changed: int = 0
    nonfinite: int = 0
    max_abs: float = 0.0
    delta_sq: float = 0.0
    ref_sq: float = 0.0
    rows: list[int] = field(default_factory=list)
    row_count: int = 0
    last_row: int = -1
    heat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def is_embedding(name: str, shape: tuple[int, ...], vocab: Mapping[int, str] | None) -> bool:
    """A 2-D tensor named like a token embedding (or output head) whose rows match the vocabulary size (+ padding)."""
    lowered = name.lower()
    if not vocab or len(shape) != 2 or not any(h in lowered for h in _EMBED_HINTS):
        return False
    if any(h in lowered for h in ("position", "token_type", "pos_emb")):
        return False
    size = max(vocab) + 1
    return size <= shape[0] <= size + max(64, size // 100)  # rows are often padded to a multiple of 64


def _matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], math.prod(shape[1:])


def _blocks(m: int, n: int, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` blocks, each contiguous in the row-major file, each at most ``chunk`` elements."""
    if n <= chunk:
        step = max(1, chunk // n)
        for r0 in range(0, m, step):
            yield r0, min(m, r0 + step), 0, n
    else:
        for r in range(m):
            for c0 in range(0, n, chunk):
                yield r, r + 1, c0, min(n, c0 + chunk)


def _window(fh: IO[bytes], info: TensorInfo, n: int, block: tuple[int, int, int, int]) -> np.ndarray:
    """Raw unsigned-integer view of one block, memory-mapped (the map is released when the array is dropped)."""
    r0, r1, c0, c1 = block
    size = DTYPE_SIZES[info.dtype]
    offset = info.start + (r0 * n + c0) * size
    count = (r1 - r0) * (c1 - c0)
    mm = np.memmap(fh, dtype=_RAW[size], mode="r", offset=offset, shape=(count,))
    return mm.reshape(r1 - r0, c1 - c0)


def _decode(raw: np.ndarray, dtype: str) -> np.ndarray | None:
    """float64 values of a raw block; None for kinds compared as bytes only (float8)."""
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    code = _NUMERIC.get(dtype)
    return None if code is None else raw.view(code).astype(np.float64)


def diff_tensor(
    suspect: tuple[Path, TensorInfo],
    reference: tuple[Path, TensorInfo],
    *,
    display_path: str,
    vocab: Mapping[int, str] | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[TensorDiff, np.ndarray | None]:
    """Compare one tensor present in both checkpoints.

    Args:
        suspect / reference: ``(file, header entry)`` of each side (headers already validated).
        display_path: the suspect file as shown in the result.
        vocab: token id -> token, to name the changed rows of an embedding matrix.
        chunk_elements: block size in elements (memory bound).

    Returns:
        ``(diff, heat)``: ``heat`` is a grid (at most 64 x 64) of the change's L2 norm per cell of rows x columns
        for a modified tensor, else None.
    """
    (spath, s), (rpath, r) = suspect, reference
    base = TensorDiff(s.name, "identical", display_path, s.dtype, s.shape, r.dtype, r.shape)
    if s.shape != r.shape:
        return replace(base, status="shape_changed"), None
    if s.dtype != r.dtype:
        return replace(base, status="dtype_changed"), None
    m, n = _matrix(s.shape)
    if m * n == 0:
        return base, None
    with open_nofollow(spath) as sf, open_nofollow(rpath) as rf:
        blocks = list(_blocks(m, n, chunk_elements))
        changed_blocks = [b for b in blocks if not np.array_equal(_window(sf, s, n, b), _window(rf, r, n, b))]
        if not changed_blocks:
            return base, None
        return _measure(base, (sf, s), (rf, r), m, n, blocks, changed_blocks, vocab)


def _measure(
    base: TensorDiff,
    sus: tuple[IO[bytes], TensorInfo],
    ref: tuple[IO[bytes], TensorInfo],
    m: int,
    n: int,
    blocks: list[tuple[int, int, int, int]],
    changed_blocks: list[tuple[int, int, int, int]],
    vocab: Mapping[int, str] | None,
) -> tuple[TensorDiff, np.ndarray]:
    (sf, s), (rf, r) = sus, ref
    numeric = s.dtype in _NUMERIC or s.dtype == "BF16"
    cells = (min(m, HEAT_CELLS), min(n, HEAT_CELLS))
    acc = _Acc(heat=np.zeros(cells))
    k = min(SKETCH, m, n)
    svd_mode = "none" if not numeric or min(m, n) == 1 or m + n > MAX_SKETCH_DIM else "sketch"
    if svd_mode == "sketch" and m * n <= EXACT_SVD_ELEMENTS:
        svd_mode = "exact"
    full = np.zeros((m, n)) if svd_mode == "exact" else None
    omega = np.random.default_rng(0).standard_normal((n, k)) if svd_mode == "sketch" else None
    sketch = np.zeros((m, k)) if svd_mode == "sketch" else None
    changed_set = set(changed_blocks)
    for block in blocks:
        if not numeric and block not in changed_set:
            continue
        a_raw = _window(rf, r, n, block)
        if numeric:
            a = _decode(a_raw, r.dtype)
            flat = a.ravel()
            sq = float(np.dot(flat, flat))
            acc.ref_sq += sq if math.isfinite(sq) else float(np.sum(np.square(flat[np.isfinite(flat)])))
        if block not in changed_set:
            continue
        b_raw = _window(sf, s, n, block)
        r0, r1, c0, c1 = block
        mask = a_raw != b_raw
        acc.changed += int(mask.sum())
        _count_rows(acc, r0 + np.flatnonzero(mask.any(axis=1)))
        if not numeric:
            _add_heat(acc.heat, mask.astype(np.float64), block, m, n)
            continue
        d = _decode(b_raw, s.dtype) - a
        d[~mask] = 0.0
        bad = ~np.isfinite(d)
        if bad.any():
            acc.nonfinite += int(bad.sum())
            d[bad] = 0.0
        acc.max_abs = max(acc.max_abs, float(np.abs(d).max()))
        acc.delta_sq += float(np.dot(d.ravel(), d.ravel()))
        _add_heat(acc.heat, d * d, block, m, n)
        if full is not None:
            full[r0:r1, c0:c1] = d
        elif sketch is not None and omega is not None:
            sketch[r0:r1] += d @ omega[c0:c1]
    energy = _energy(svd_mode, full, sketch, sus, ref, n, changed_blocks, acc.delta_sq)
    rows = acc.rows
    tokens: tuple[str, ...] = ()
    if is_embedding(s.name, s.shape, vocab) and vocab is not None:
        tokens = tuple(vocab.get(i, f"<id {i}>") for i in rows)
    diff = replace(
        base,
        status="modified",
        changed_elements=acc.changed,
        changed_fraction=acc.changed / (m * n),
        max_abs_change=acc.max_abs if numeric else None,
        relative_change=(math.sqrt(acc.delta_sq / acc.ref_sq) if acc.ref_sq > 0 else None) if numeric else None,
        changed_rows=tuple(rows),
        changed_row_count=acc.row_count,
        changed_tokens=tokens,
        top_singular_energy=energy,
        nonfinite=acc.nonfinite,
    )
    return diff, np.sqrt(acc.heat) if numeric else acc.heat


def _count_rows(acc: _Acc, rows: np.ndarray) -> None:
    """Count changed rows in constant memory: blocks arrive in file order, and a row split into column blocks is
    seen in consecutive blocks, so only the last counted row can repeat."""
    if rows.size and rows[0] == acc.last_row:
        rows = rows[1:]
    if rows.size:
        acc.row_count += int(rows.size)
        acc.rows.extend(int(r) for r in rows[: MAX_ROWS_LISTED - len(acc.rows)])
        acc.last_row = int(rows[-1])


def _energy(
    mode: str,
    full: np.ndarray | None,
    sketch: np.ndarray | None,
    sus: tuple[IO[bytes], TensorInfo],
    ref: tuple[IO[bytes], TensorInfo],
    n: int,
    changed_blocks: list[tuple[int, int, int, int]],
    total: float,
) -> float | None:
    """σ₁² / ‖Δ‖²_F, from an exact SVD, or from the sketch refined by :data:`POWER_ITERATIONS` power iterations
    and a final projection ``B = QᵀΔ`` (each a pass over the changed blocks only)."""
    if mode == "none" or total <= 0:
        return None
    if full is not None:
        sigma = np.linalg.svd(full, compute_uv=False)
    else:
        assert sketch is not None  # noqa: S101 - set together with the mode
        q, _ = np.linalg.qr(sketch)
        for _ in range(POWER_ITERATIONS):
            z = np.zeros((n, q.shape[1]))
            for (r0, r1, c0, c1), d in _deltas(sus, ref, n, changed_blocks):
                z[c0:c1] += d.T @ q[r0:r1]
            qz, _ = np.linalg.qr(z)
            y = np.zeros_like(q)
            for (r0, r1, c0, c1), d in _deltas(sus, ref, n, changed_blocks):
                y[r0:r1] += d @ qz[c0:c1]
            q, _ = np.linalg.qr(y)
        proj = np.zeros((q.shape[1], n))
        for (r0, r1, c0, c1), d in _deltas(sus, ref, n, changed_blocks):
            proj[:, c0:c1] += q[r0:r1].T @ d
        sigma = np.linalg.svd(proj, compute_uv=False)
    return float(min(1.0, sigma[0] ** 2 / total)) if sigma.size else None


def _deltas(
    sus: tuple[IO[bytes], TensorInfo],
    ref: tuple[IO[bytes], TensorInfo],
    n: int,
    blocks: list[tuple[int, int, int, int]],
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """``(block, Δ)`` per block, with unchanged and non-finite entries zeroed (as in the measuring pass)."""
    (sf, s), (rf, r) = sus, ref
    for block in blocks:
        a_raw, b_raw = _window(rf, r, n, block), _window(sf, s, n, block)
        d = _decode(b_raw, s.dtype) - _decode(a_raw, r.dtype)
        d[(a_raw == b_raw) | ~np.isfinite(d)] = 0.0
        yield block, d


def _add_heat(heat: np.ndarray, values: np.ndarray, block: tuple[int, int, int, int], m: int, n: int) -> None:
    """Add a block's values into the heat grid: row r goes to cell ``r * rows // m``, likewise for columns."""
    r0, r1, c0, c1 = block
    rows, cols = heat.shape
    rb = (np.arange(r0, r1) * rows) // m
    cb = (np.arange(c0, c1) * cols) // n
    rstarts = np.flatnonzero(np.r_[True, rb[1:] != rb[:-1]])
    cstarts = np.flatnonzero(np.r_[True, cb[1:] != cb[:-1]])
    summed = np.add.reduceat(np.add.reduceat(values, rstarts, axis=0), cstarts, axis=1)
    heat[np.ix_(rb[rstarts], cb[cstarts])] += summed


def layer_of(name: str) -> int | None:
    for part in name.split("."):
        if part.isdigit():
            return int(part)
    return None
