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

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import numpy as np

from workbench.model.pair_pass import Changes
from workbench.model.safetensors_format import TensorInfo, open_nofollow
from workbench.model.tensor_io import KINDS, TensorSource, changed_units, decode, matrix, read_block
from workbench.model.tensor_record import STATUSES, TensorDiff, finite_or_none

__all__ = [
    "CHUNK_ELEMENTS",
    "STATUSES",
    "TensorDiff",
    "as_source",
    "diff_tensor",
    "finite_or_none",
    "is_embedding",
    "layer_of",
]


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
#: a strided (non-contiguous) view is read in blocks this many times smaller: a block may touch one page per element
STRIDED_DIVISOR = 16
_EMBED_HINTS = ("embed", "wte", "tok_embeddings", "lm_head")


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


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of a comparison: its open file, source, and matrix geometry in units."""

    fh: IO[bytes]
    src: TensorSource
    n_units: int

    def raw(self, block: tuple[int, int, int, int]) -> np.ndarray:
        return read_block(self.fh, self.src, self.n_units, block)


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
        sus, ref = _Side(sf, s, n // ue), _Side(rf, r, n // ue)
        blocks = list(_blocks(m, n // ue, chunk))
        todo = [b for b in blocks if changes.touches(*_span(s, n // ue, b))] if positional else blocks
        changed_blocks = [b for b in todo if not np.array_equal(sus.raw(b), ref.raw(b))]
        if not changed_blocks:
            return base, None
        return _measure(base, sus, ref, m, n, blocks, changed_blocks, vocab)


def _span(src: TensorSource, n_units: int, block: tuple[int, int, int, int]) -> tuple[int, int]:
    """Byte range ``[start, end)`` of a block of a contiguous source in its file."""
    r0, r1, c0, c1 = block
    unit = KINDS[src.dtype].unit_bytes
    return src.offset + (r0 * n_units + c0) * unit, src.offset + ((r1 - 1) * n_units + c1) * unit


def _elements(block: tuple[int, int, int, int], ue: int) -> tuple[int, int, int, int]:
    """A block of units as a block of elements."""
    r0, r1, c0, c1 = block
    return r0, r1, c0 * ue, c1 * ue


def _delta(
    a_raw: np.ndarray, b_raw: np.ndarray, a: np.ndarray, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Δ, changed units, changed elements)`` of a block. An element changed when its bytes differ (for a block
    kind: when its block's bytes differ and its decoded value differs); Δ is zero elsewhere. Non-finite values are
    left in Δ for the caller to count."""
    units = changed_units(a_raw, b_raw)
    ue = KINDS[dtype].unit_elems
    b = decode(b_raw, dtype)
    assert b is not None  # noqa: S101 - only called for decodable kinds
    d = b - a
    mask = units if ue == 1 else np.repeat(units, ue, axis=1) & (a != b)
    d[~mask] = 0.0
    return d, units, mask


def _measure(
    base: TensorDiff,
    sus: _Side,
    ref: _Side,
    m: int,
    n: int,
    blocks: list[tuple[int, int, int, int]],
    changed_blocks: list[tuple[int, int, int, int]],
    vocab: Mapping[int, str] | None,
) -> tuple[TensorDiff, np.ndarray]:
    s, r = sus.src, ref.src
    kind = KINDS[s.dtype]
    ue = kind.unit_elems
    numeric = kind.decode is not None
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
        a_raw = ref.raw(block)
        a = decode(a_raw, r.dtype) if numeric else None
        if a is not None:
            flat = a.ravel()
            sq = float(np.dot(flat, flat))
            acc.ref_sq += sq if math.isfinite(sq) else float(np.sum(np.square(flat[np.isfinite(flat)])))
        if block not in changed_set:
            continue
        b_raw = sus.raw(block)
        eb = _elements(block, ue)
        r0, r1, c0, c1 = eb
        if a is None:
            units = changed_units(a_raw, b_raw)
            mask = units if ue == 1 else np.repeat(units, ue, axis=1)
            acc.changed += int(mask.sum())
            _count_rows(acc, r0 + np.flatnonzero(units.any(axis=1)))
            _add_heat(acc.heat, mask.astype(np.float64), eb, m, n)
            continue
        d, units, mask = _delta(a_raw, b_raw, a, s.dtype)
        acc.changed += int(mask.sum())
        _count_rows(acc, r0 + np.flatnonzero(units.any(axis=1)))
        bad = ~np.isfinite(d)
        if bad.any():
            acc.nonfinite += int(bad.sum())
            d[bad] = 0.0
        acc.max_abs = max(acc.max_abs, float(np.abs(d).max()))
        acc.delta_sq += float(np.dot(d.ravel(), d.ravel()))
        _add_heat(acc.heat, d * d, eb, m, n)
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
    sus: _Side,
    ref: _Side,
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
            for (r0, r1, c0, c1), d in _deltas(sus, ref, changed_blocks):
                z[c0:c1] += d.T @ q[r0:r1]
            qz, _ = np.linalg.qr(z)
            y = np.zeros_like(q)
            for (r0, r1, c0, c1), d in _deltas(sus, ref, changed_blocks):
                y[r0:r1] += d @ qz[c0:c1]
            q, _ = np.linalg.qr(y)
        proj = np.zeros((q.shape[1], n))
        for (r0, r1, c0, c1), d in _deltas(sus, ref, changed_blocks):
            proj[:, c0:c1] += q[r0:r1].T @ d
        sigma = np.linalg.svd(proj, compute_uv=False)
    return float(min(1.0, sigma[0] ** 2 / total)) if sigma.size else None


def _deltas(
    sus: _Side, ref: _Side, blocks: list[tuple[int, int, int, int]]
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """``(block of elements, Δ)`` per block, with unchanged and non-finite entries zeroed (as in the measuring
    pass)."""
    ue = KINDS[sus.src.dtype].unit_elems
    for block in blocks:
        a_raw, b_raw = ref.raw(block), sus.raw(block)
        a = decode(a_raw, ref.src.dtype)
        assert a is not None  # noqa: S101 - the sketch is only built for decodable kinds
        d, _, _ = _delta(a_raw, b_raw, a, sus.src.dtype)
        d[~np.isfinite(d)] = 0.0
        yield _elements(block, ue), d


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
