"""Statistics of one modified tensor, computed over its changed blocks only, on both cores, in bounded memory.

:func:`measure` is step 2 and 3 of :mod:`workbench.model.tensors`: changed elements and rows, max and relative change,
the heat grid and the randomized sketch of the change ``Δ`` in one pass over the blocks (every block of the reference
for ``‖reference‖_F``, the changed ones for the rest), then the power iteration and the projection ``B = QᵀΔ`` over
the changed blocks only. Blocks are processed by a pool of :data:`THREADS` threads (numpy releases the GIL in its
element-wise loops and in BLAS), results combined in file order, so that the outcome does not depend on timing
(sums of per-block partials in a fixed order).

Precision: the measuring pass and the final projection use float64, as before. The power iteration only finds the
subspace ``Q``: it runs in float32 when the values are float32, float16 or bfloat16 (all exact in float32), which
halves its memory traffic and doubles its BLAS speed; an error ``ε`` in ``Q`` moves the Rayleigh-Ritz estimate
``σ₁(QᵀΔ)`` by ``O(ε²)`` only (about 1e-14 here), and ``B`` itself is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO

import numpy as np
from threadpoolctl import threadpool_limits

from workbench.model.tensor_io import KINDS, TensorSource, changed_units, decode, read_block
from workbench.model.tensor_record import TensorDiff

__all__ = ["EXACT_SVD_ELEMENTS", "HEAT_CELLS", "MAX_ROWS_LISTED", "MAX_SKETCH_DIM", "POWER_ITERATIONS", "SKETCH",
           "THREADS", "Side", "measure"]  # fmt: skip

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
#: threads measuring blocks (two blocks in flight: memory stays a few blocks' worth)
THREADS = 2
#: kinds whose values float32 holds exactly (the power iteration runs in float32 for them)
_FLOAT32_EXACT = {"F32": "<f4", "F16": "<f2"}

Block = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: its open file, source, and matrix geometry in units."""

    fh: IO[bytes]
    src: TensorSource
    n_units: int

    def raw(self, block: Block) -> np.ndarray:
        return read_block(self.fh, self.src, self.n_units, block)


@dataclass(slots=True)
class _Acc:
    """Running sums of the measuring pass."""

    changed: int = 0
    nonfinite: int = 0
    max_abs: float = 0.0
    delta_sq: float = 0.0
    ref_sq: float = 0.0
    rows: list[int] = field(default_factory=list)
    row_count: int = 0
    last_row: int = -1
    heat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@dataclass(slots=True)
class _BlockResult:
    """What one block contributes (None fields: the block did not change)."""

    ref_sq: float = 0.0
    changed: int = 0
    rows: np.ndarray | None = None
    nonfinite: int = 0
    max_abs: float = 0.0
    delta_sq: float = 0.0
    heat: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    sketch: np.ndarray | None = None


def _elements(block: Block, ue: int) -> Block:
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


def _heat_cells(values: np.ndarray, block: Block, m: int, n: int, cells: tuple[int, int]):
    """A block's values summed per heat cell: row r goes to cell ``r * rows // m``, likewise for columns."""
    r0, r1, c0, c1 = block
    rows, cols = cells
    rb = (np.arange(r0, r1) * rows) // m
    cb = (np.arange(c0, c1) * cols) // n
    rstarts = np.flatnonzero(np.r_[True, rb[1:] != rb[:-1]])
    cstarts = np.flatnonzero(np.r_[True, cb[1:] != cb[:-1]])
    summed = np.add.reduceat(np.add.reduceat(values, rstarts, axis=0), cstarts, axis=1)
    return rb[rstarts], cb[cstarts], summed


def _measure_block(sus: Side, ref: Side, block: Block, changed: bool, m: int, n: int, cells: tuple[int, int],
                   full: np.ndarray | None, omega: np.ndarray | None) -> _BlockResult:  # fmt: skip
    s_dtype, r_dtype = sus.src.dtype, ref.src.dtype
    ue = KINDS[s_dtype].unit_elems
    numeric = KINDS[s_dtype].decode is not None
    out = _BlockResult()
    a_raw = ref.raw(block)
    a = decode(a_raw, r_dtype) if numeric else None
    if a is not None:
        flat = a.ravel()
        sq = float(np.dot(flat, flat))
        out.ref_sq = sq if math.isfinite(sq) else float(np.sum(np.square(flat[np.isfinite(flat)])))
    if not changed:
        return out
    b_raw = sus.raw(block)
    eb = _elements(block, ue)
    r0, r1, c0, c1 = eb
    if a is None:
        units = changed_units(a_raw, b_raw)
        mask = units if ue == 1 else np.repeat(units, ue, axis=1)
        out.changed = int(mask.sum())
        out.rows = r0 + np.flatnonzero(units.any(axis=1))
        out.heat = _heat_cells(mask.astype(np.float64), eb, m, n, cells)
        return out
    d, units, mask = _delta(a_raw, b_raw, a, s_dtype)
    del a, a_raw, b_raw
    out.changed = int(mask.sum())
    out.rows = r0 + np.flatnonzero(units.any(axis=1))
    bad = ~np.isfinite(d)
    if bad.any():
        out.nonfinite = int(bad.sum())
        d[bad] = 0.0
    out.max_abs = max(float(d.max()), -float(d.min()))
    flat = d.ravel()
    out.delta_sq = float(np.dot(flat, flat))
    out.heat = _heat_cells(d * d, eb, m, n, cells)
    if full is not None:
        full[r0:r1, c0:c1] = d  # disjoint per block: safe from several threads
    elif omega is not None:
        out.sketch = d @ omega[c0:c1]
    return out


def measure(base: TensorDiff, sus: Side, ref: Side, m: int, n: int, blocks: list[Block], changed_blocks: list[Block],
            vocab: Mapping[int, str] | None,
            is_embedding: Callable[..., bool]) -> tuple[TensorDiff, np.ndarray]:  # fmt: skip
    """The statistics of a modified tensor (see the module docstring) and its heat grid."""
    s = sus.src
    kind = KINDS[s.dtype]
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
    todo = blocks if numeric else changed_blocks
    # BLAS held to one thread while the pool's threads call it (OpenBLAS threads would oversubscribe and spin)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(THREADS, thread_name_prefix="tensorstats") as pool:
        results = _ordered(pool, todo, lambda b: _measure_block(sus, ref, b, b in changed_set, m, n, cells, full,
                                                                omega))  # fmt: skip
        for block, res in zip(todo, results, strict=True):
            acc.ref_sq += res.ref_sq
            if res.rows is None:
                continue
            acc.changed += res.changed
            acc.nonfinite += res.nonfinite
            acc.max_abs = max(acc.max_abs, res.max_abs)
            acc.delta_sq += res.delta_sq
            _count_rows(acc, res.rows)
            if res.heat is not None:
                ri, ci, summed = res.heat
                acc.heat[np.ix_(ri, ci)] += summed
            if sketch is not None and res.sketch is not None:
                r0, r1 = block[0], block[1]
                sketch[r0:r1] += res.sketch
        energy = _energy(pool, svd_mode, full, sketch, sus, ref, n, changed_blocks, acc.delta_sq)
    rows = acc.rows
    tokens: tuple[str, ...] = ()
    if vocab is not None and is_embedding(s.name, s.shape, vocab):
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


def _ordered(pool: ThreadPoolExecutor, items: list[Block], fn: Callable[[Block], _BlockResult]) -> Iterable:
    """``fn`` over ``items`` in the pool, results in order, at most ``2 * THREADS`` blocks submitted ahead (so that
    the blocks' arrays in flight stay bounded)."""
    ahead = 2 * THREADS
    futures = [pool.submit(fn, b) for b in items[:ahead]]
    for i in range(len(items)):
        res = futures[i].result()
        futures[i] = None  # type: ignore[call-overload]
        if i + ahead < len(items):
            futures.append(pool.submit(fn, items[i + ahead]))
        yield res


def _count_rows(acc: _Acc, rows: np.ndarray) -> None:
    """Count changed rows in constant memory: blocks arrive in file order, and a row split into column blocks is
    seen in consecutive blocks, so only the last counted row can repeat."""
    if rows.size and rows[0] == acc.last_row:
        rows = rows[1:]
    if rows.size:
        acc.row_count += int(rows.size)
        acc.rows.extend(int(r) for r in rows[: MAX_ROWS_LISTED - len(acc.rows)])
        acc.last_row = int(rows[-1])


def _energy(pool: ThreadPoolExecutor, mode: str, full: np.ndarray | None, sketch: np.ndarray | None, sus: Side,
            ref: Side, n: int, changed_blocks: list[Block], total: float) -> float | None:  # fmt: skip
    """σ₁² / ‖Δ‖²_F, from an exact SVD, or from the sketch refined by :data:`POWER_ITERATIONS` power iterations
    (float32 when exact for the kind) and a final float64 projection ``B = QᵀΔ``, each a pass over the changed
    blocks only, split between the pool's threads."""
    if mode == "none" or total <= 0:
        return None
    if full is not None:
        sigma = np.linalg.svd(full, compute_uv=False)
        return float(min(1.0, sigma[0] ** 2 / total)) if sigma.size else None
    assert sketch is not None  # noqa: S101 - set together with the mode
    low = np.float32 if sus.src.dtype in _FLOAT32_EXACT or sus.src.dtype == "BF16" else np.float64
    m = sketch.shape[0]
    q, _ = np.linalg.qr(sketch)
    for _ in range(POWER_ITERATIONS):
        ql = q.astype(low)

        def z_part(part: list[Block], ql: np.ndarray = ql) -> np.ndarray:
            z = np.zeros((n, ql.shape[1]), low)
            for (r0, r1, c0, c1), d in _deltas(sus, ref, part, low):
                z[c0:c1] += d.T @ ql[r0:r1]
            return z

        qz, _ = np.linalg.qr(_summed(pool, changed_blocks, z_part).astype(np.float64))
        qzl = qz.astype(low)

        def y_part(part: list[Block], qzl: np.ndarray = qzl) -> np.ndarray:
            y = np.zeros((m, qzl.shape[1]), low)
            for (r0, r1, c0, c1), d in _deltas(sus, ref, part, low):
                y[r0:r1] += d @ qzl[c0:c1]
            return y

        q, _ = np.linalg.qr(_summed(pool, changed_blocks, y_part).astype(np.float64))

    def proj_part(part: list[Block], q: np.ndarray = q) -> np.ndarray:
        proj = np.zeros((q.shape[1], n))
        for (r0, r1, c0, c1), d in _deltas(sus, ref, part, np.float64):
            proj[:, c0:c1] += q[r0:r1].T @ d
        return proj

    sigma = np.linalg.svd(_summed(pool, changed_blocks, proj_part), compute_uv=False)
    return float(min(1.0, sigma[0] ** 2 / total)) if sigma.size else None


def _summed(pool: ThreadPoolExecutor, blocks: list[Block], part: Callable[[list[Block]], np.ndarray]) -> np.ndarray:
    """``part`` over interleaved shares of ``blocks`` in the pool's threads, the partial arrays added in order."""
    shares = [blocks[i::THREADS] for i in range(THREADS) if blocks[i::THREADS]]
    partials = list(pool.map(part, shares))
    total = partials[0]
    for p in partials[1:]:
        total = total + p
    return total


def _deltas(sus: Side, ref: Side, blocks: list[Block], dtype: type) -> Iterable[tuple[Block, np.ndarray]]:
    """``(block of elements, Δ)`` per block, in ``dtype``, with unchanged and non-finite entries zeroed (as in the
    measuring pass). For an element kind, bytes that do not differ give a zero (or a non-finite, zeroed) difference
    by themselves, so no mask is needed."""
    s_dtype, r_dtype = sus.src.dtype, ref.src.dtype
    ue = KINDS[s_dtype].unit_elems
    for block in blocks:
        a_raw, b_raw = ref.raw(block), sus.raw(block)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite differences are zeroed just below
            if ue == 1 and dtype is np.float32:
                d = np.subtract(_as_float32(b_raw, s_dtype), _as_float32(a_raw, r_dtype))
            elif ue == 1:
                b, a = decode(b_raw, s_dtype), decode(a_raw, r_dtype)
                assert a is not None and b is not None  # noqa: S101 - the sketch is only built for decodable kinds
                d = b - a
            else:
                a = decode(a_raw, r_dtype)
                assert a is not None  # noqa: S101 - the sketch is only built for decodable kinds
                d, _, _ = _delta(a_raw, b_raw, a, s_dtype)
            d[~np.isfinite(d)] = 0.0
        yield _elements(block, ue), d


def _as_float32(raw: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values of a raw block of a kind float32 holds exactly (float32, float16, bfloat16)."""
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.view(_FLOAT32_EXACT[dtype]).astype(np.float32, copy=False)
