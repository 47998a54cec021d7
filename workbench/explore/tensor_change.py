"""A tensor's change read back from both checkpoints: heat cells, changed rows, singular values (the tensor
explorer's logic, :mod:`workbench.explore.tensors`).

For a modified tensor of the model diff both sides are located again by the project's own readers
(:func:`workbench.model.checkpoints.read_checkpoints`: headers and archive listings, nothing unpickled) and read in
blocks of at most :data:`CHUNK` elements through memory maps (:func:`workbench.model.tensor_io.read_block`,
:func:`~workbench.model.tensor_io.decode`), never whole. A tensor is viewed as the diff views it, its first dimension
by the rest (:func:`~workbench.model.tensor_io.matrix`); one pass over ``Δ = suspect − reference`` gives

* the heat cells: the maximum ``|Δ|`` per cell of at most :data:`HEAT_CELLS` x :data:`HEAT_CELLS` cells (a vector:
  at most :data:`LINE_POINTS` points);
* the changed rows the diff listed (``changed_rows``, ``changed_tokens``) with each row's changed elements and
  largest change;
* the top :data:`SPECTRUM` singular values: exact for a small matrix, else a randomized range finder with power
  iterations (Halko, Martinsson & Tropp 2011: lower bounds, exact for a change of rank below the sketch) over the
  difference held in memory (float32, up to :data:`IN_MEMORY` elements) or streamed again from the files.

At most :data:`MAX_ELEMENTS` elements are read per side: past that, a window of rows starting at the first changed
row, and a note says so. A tensor that cannot be shown (added, removed, reshaped, a kind compared by bytes only,
unreadable) gets a ``reason``; nothing raises on evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.investigation import Investigation
    from workbench.model.pair_analysis import PairResult
    from workbench.model.tensor_io import FileTensors, TensorSource
    from workbench.model.tensor_record import TensorDiff

__all__ = ["CHUNK", "EXACT_SVD", "HEAT_CELLS", "IN_MEMORY", "LINE_POINTS", "MAX_ELEMENTS", "SPECTRUM", "TensorChange",
           "TensorChoice", "rows_table", "shape_text", "tensor_change", "tensor_choices"]  # fmt: skip

#: elements read per side at most (a window of rows past it)
MAX_ELEMENTS = 64 << 20
#: the difference is kept in memory (float32) up to this many elements; past it every pass reads the files again
IN_MEMORY = 1 << 22
#: matrices of at most this many elements get an exact SVD
EXACT_SVD = 1 << 20
#: singular values shown
SPECTRUM = 32
#: columns of the randomized sketch beyond :data:`SPECTRUM`
OVERSAMPLE = 8
#: rows + columns past which no spectrum is computed (the sketch's arrays would dominate memory)
MAX_SKETCH_DIM = 1 << 17
#: heatmap cells per side, and points of a vector's line
HEAT_CELLS = 200
LINE_POINTS = 2000
#: elements per block read
CHUNK = 1 << 20
_STATUS_ORDER = {"modified": 0, "added": 1, "removed": 1, "shape_changed": 1, "dtype_changed": 1, "identical": 2}


@dataclass(frozen=True, slots=True)
class TensorChoice:
    """One tensor of the model diff: the pair it belongs to, its record and its label in the picker."""

    pair: PairResult
    diff: TensorDiff
    label: str


@dataclass(slots=True)
class TensorChange:
    """What the explorer shows of one tensor.

    Attributes:
        choice: the tensor picked.
        reason: why no values are shown ("" when they are).
        heat: max ``|Δ|`` per cell, ``(cells of rows, cells of columns)``; a vector's is ``(points, 1)``.
        heat_rows / heat_cols: the first row / column of each cell.
        spectrum: the top singular values of ``Δ`` over the rows read (None: not computed, see ``notes``).
        method: ``exact``, ``randomized`` or "".
        rows_read: ``(first, end)`` rows read of ``rows``; columns: the matrix view's columns.
        changed / max_abs / frobenius: over the rows read (non-finite differences left out, counted in
            ``nonfinite``).
        table: the changed rows (:func:`rows_table`).
        notes: caps and approximations, one sentence each.
    """

    choice: TensorChoice
    reason: str = ""
    heat: np.ndarray | None = None
    heat_rows: np.ndarray | None = None
    heat_cols: np.ndarray | None = None
    spectrum: np.ndarray | None = None
    method: str = ""
    rows_read: tuple[int, int] = (0, 0)
    rows: int = 0
    columns: int = 0
    changed: int = 0
    max_abs: float = 0.0
    frobenius: float = 0.0
    nonfinite: int = 0
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    @property
    def vector(self) -> bool:
        shape = self.choice.diff.shape or ()
        return len(shape) <= 1


# ------------------------------------------------------------------------------------------------- the choices
def tensor_choices(inv: Investigation) -> list[TensorChoice]:
    """Every tensor of every compared model pair (primary first), modified first, then other changes, then the
    identical ones, by name within each group; labelled ``name (status)``, prefixed by the model when several."""
    result = inv.results.get("model")
    pairs = [p for p in (result.data.get("pairs") or []) if p.diff is not None] if result is not None else []
    out = []
    for pr in pairs:
        prefix = f"{pr.name}: " if len(pairs) > 1 else ""
        for d in sorted(pr.diff.tensors, key=lambda d: (_STATUS_ORDER.get(d.status, 1), d.name)):
            out.append(TensorChoice(pr, d, f"{prefix}{d.name} ({d.status.replace('_', ' ')})"))
    return out


def rows_table(diff: TensorDiff, stats: dict[int, tuple[int, float]] | None = None) -> pd.DataFrame:
    """The diff's changed rows: ``row`` (Int64), ``token`` (str, "" unless an embedding), ``changed_elements``
    (Int64) and ``max_abs_change`` (float64) of each row read (NA for a row outside the rows read)."""
    rows = list(diff.changed_rows)
    tokens = list(diff.changed_tokens) + [""] * (len(rows) - len(diff.changed_tokens))
    got = stats or {}
    frame = pd.DataFrame({"row": pd.array(rows, dtype="Int64"), "token": tokens[: len(rows)],
                          "changed_elements": pd.array([got[r][0] if r in got else None for r in rows], dtype="Int64"),
                          "max_abs_change": [got[r][1] if r in got else np.nan for r in rows]})  # fmt: skip
    return frame.astype({"max_abs_change": "float64"})


# ------------------------------------------------------------------------------------------------ reading back
def _files(folder: Path) -> list[tuple[str, str]]:
    from workbench.case import walk_tree
    from workbench.checks.integrity import is_signature_file

    if folder.is_file():
        return [("", "")]
    return [(f.fs_relpath, f.relpath) for f in walk_tree(folder, []) if not is_signature_file(f.relpath)]


def _lookup(tensors: dict[str, TensorSource], name: str) -> TensorSource | None:
    """The source named ``name``, or named ``X.name`` when every name carries one leading component (``module.``)."""
    if name in tensors:
        return tensors[name]
    heads = {n.split(".", 1)[0] for n in tensors}
    return tensors.get(f"{heads.pop()}.{name}") if len(heads) == 1 else None


def _sources(inv: Investigation, choice: TensorChoice) -> tuple[TensorSource | None, TensorSource | None,
                                                                 list[FileTensors]]:  # fmt: skip
    """Both sides' sources of the tensor (the checkpoint pair whose files the diff named), and every file read
    (released by the caller)."""
    from workbench.model.checkpoints import pair_checkpoints, read_checkpoints

    pr, d = choice.pair, choice.diff
    root = inv.case.root
    sus = read_checkpoints(root / pr.suspect, _files(root / pr.suspect), pr.suspect)
    ref = read_checkpoints(root / pr.reference, _files(root / pr.reference), pr.reference)
    read = [f for ckpt in sus + ref for f in ckpt.files]
    found: tuple[TensorSource | None, TensorSource | None] = (None, None)
    for s, r in pair_checkpoints(sus, ref):
        if s is None or r is None:
            continue
        a, b = _lookup(s.tensors, d.name), _lookup(r.tensors, d.name)
        if a is not None and b is not None and (found[0] is None or a.display == d.path):
            found = (a, b)
    return found[0], found[1], read


def _blocks(r0: int, r1: int, n_units: int) -> Iterator[tuple[int, int, int, int]]:
    """Blocks ``(r0, r1, c0, c1)`` of units over rows ``r0..r1``, each contiguous in the file, at most :data:`CHUNK`."""
    if n_units <= CHUNK:
        step = max(1, CHUNK // n_units)
        for r in range(r0, r1, step):
            yield r, min(r1, r + step), 0, n_units
    else:
        for r in range(r0, r1):
            for c in range(0, n_units, CHUNK):
                yield r, r + 1, c, min(n_units, c + CHUNK)


class _Delta:
    """``Δ = suspect − reference`` over rows ``lo..hi`` of the matrix view, block by block (float32, non-finite
    differences zeroed), from two open files."""

    def __init__(self, fs: Any, fr: Any, s: TensorSource, r: TensorSource, lo: int, hi: int, n: int) -> None:
        from workbench.model.tensor_io import KINDS

        self.fs, self.fr, self.s, self.r, self.lo, self.hi, self.n = fs, fr, s, r, lo, hi, n
        self.ue = KINDS[s.dtype].unit_elems

    def __iter__(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """``(first row, first column, non-finite count, Δ)`` per block (rows and columns in elements)."""
        from workbench.model.tensor_io import decode, read_block

        units = self.n // self.ue
        for block in _blocks(self.lo, self.hi, units):
            a = decode(read_block(self.fs, self.s, units, block), self.s.dtype)
            b = decode(read_block(self.fr, self.r, units, block), self.r.dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                d = (a - b).astype(np.float32)
            bad = ~np.isfinite(d)
            count = int(bad.sum())
            if count:
                d[bad] = 0.0
            yield block[0], block[2] * self.ue, count, d


def _cells(size: int, cells: int) -> np.ndarray:
    """The cell of each of ``size`` positions, ``cells`` cells at most (equal shares, in order)."""
    return (np.arange(size, dtype=np.int64) * min(size, cells)) // max(size, 1)


def _into_cells(heat: np.ndarray, rcell: np.ndarray, ccell: np.ndarray, d: np.ndarray, r0: int, c0: int) -> None:
    """Raise ``heat`` to the block's max ``|Δ|`` per cell (``r0``, ``c0``: the block's place among the cells' rows
    and columns)."""
    ri, ci = rcell[r0 : r0 + d.shape[0]], ccell[c0 : c0 + d.shape[1]]
    rs = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]])
    cs = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]])
    block = np.maximum.reduceat(np.maximum.reduceat(np.abs(d), rs, axis=0), cs, axis=1)
    cell = np.ix_(ri[rs], ci[cs])
    heat[cell] = np.maximum(heat[cell], block)


def _randomized(apply: Callable[[np.ndarray], np.ndarray], apply_t: Callable[[np.ndarray], np.ndarray], n: int,
                k: int, iterations: int) -> np.ndarray:  # fmt: skip
    """Top ``k`` singular values of an operator given by ``Δ X`` and ``Δᵀ Y`` (a randomized range finder with
    ``iterations`` power iterations, fixed seed)."""
    omega = np.random.default_rng(0).standard_normal((n, k + OVERSAMPLE))
    y = apply(omega)
    for _ in range(iterations):
        q = np.linalg.qr(apply_t(np.linalg.qr(y)[0]))[0]
        y = apply(q)
    q = np.linalg.qr(y)[0]
    return np.linalg.svd(apply_t(q).T, compute_uv=False)[:k]


def _measure(change: TensorChange, delta: _Delta) -> None:
    """One pass over ``Δ``: heat cells, totals, the listed rows' statistics; then the spectrum."""
    m, n = delta.hi - delta.lo, delta.n
    vec = change.vector
    rcell = _cells(m, LINE_POINTS if vec else HEAT_CELLS)
    ccell = _cells(n, 1 if vec else HEAT_CELLS)
    heat = np.zeros((int(rcell[-1]) + 1, int(ccell[-1]) + 1))
    listed = np.array(sorted(r for r in change.choice.diff.changed_rows if delta.lo <= r < delta.hi), dtype=np.int64)
    stats: dict[int, tuple[int, float]] = {}
    whole = np.zeros((m, n), dtype=np.float32) if m * n <= IN_MEMORY and not vec else None
    sq = 0.0
    for r0, c0, bad, d in delta:
        change.nonfinite += bad
        change.changed += int(np.count_nonzero(d))
        change.max_abs = max(change.max_abs, float(np.abs(d).max(initial=0.0)))
        sq += float(np.square(d, dtype=np.float64).sum())
        _into_cells(heat, rcell, ccell, d, r0 - delta.lo, c0)
        for r in listed[(listed >= r0) & (listed < r0 + d.shape[0])]:
            row = d[r - r0]
            had = stats.get(int(r), (0, 0.0))
            stats[int(r)] = (had[0] + int(np.count_nonzero(row)), max(had[1], float(np.abs(row).max(initial=0.0))))
        if whole is not None:
            whole[r0 - delta.lo : r0 - delta.lo + d.shape[0], c0 : c0 + d.shape[1]] = d
    change.frobenius = float(np.sqrt(sq))
    change.heat, change.table = heat, rows_table(change.choice.diff, stats)
    change.heat_rows = delta.lo + np.flatnonzero(np.r_[True, rcell[1:] != rcell[:-1]])
    change.heat_cols = np.flatnonzero(np.r_[True, ccell[1:] != ccell[:-1]])
    _spectrum(change, delta, whole, m, n)


def _spectrum(change: TensorChange, delta: _Delta, whole: np.ndarray | None, m: int, n: int) -> None:
    k = min(SPECTRUM, m, n)
    if change.vector or k < 2:
        change.notes.append(f"a vector: its one singular value is its norm, {change.frobenius:.6g}")
        return
    if whole is not None and m * n <= EXACT_SVD:
        change.spectrum, change.method = np.linalg.svd(whole.astype(np.float64), compute_uv=False)[:k], "exact"
        return
    if m + n > MAX_SKETCH_DIM:
        change.notes.append(f"no spectrum: {m:,} rows + {n:,} columns exceed the sketch's bound of "
                            f"{MAX_SKETCH_DIM:,}")  # fmt: skip
        return
    if whole is not None:
        full = whole.astype(np.float64)
        change.spectrum = _randomized(lambda x: full @ x, lambda y: full.T @ y, n, k, 2)
    else:  # every product reads both files again, block by block

        def apply(x: np.ndarray) -> np.ndarray:
            out = np.zeros((m, x.shape[1]))
            for r0, c0, _, d in delta:
                out[r0 - delta.lo : r0 - delta.lo + d.shape[0]] += d @ x[c0 : c0 + d.shape[1]]
            return out

        def apply_t(y: np.ndarray) -> np.ndarray:
            out = np.zeros((n, y.shape[1]))
            for r0, c0, _, d in delta:
                out[c0 : c0 + d.shape[1]] += d.T @ y[r0 - delta.lo : r0 - delta.lo + d.shape[0]]
            return out

        change.spectrum = _randomized(apply, apply_t, n, k, 1)
        change.notes.append("the difference was streamed from the files for each product of the randomized SVD")
    change.method = "randomized"
    change.notes.append(f"singular values from a randomized SVD (sketch of {k + OVERSAMPLE} columns): lower bounds, "
                        "exact when the change's rank is below the sketch")  # fmt: skip


def tensor_change(inv: Investigation, choice: TensorChoice) -> TensorChange:
    """What the explorer shows of one tensor (see the module docstring); reads both checkpoints' files, bounded.

    Returns:
        The :class:`TensorChange`; ``reason`` says why there are no values (never raises on evidence).
    """
    from workbench.model.safetensors_format import open_nofollow
    from workbench.model.tensor_io import KINDS, matrix

    d = choice.diff
    change = TensorChange(choice, table=rows_table(d))
    if d.status != "modified":
        why = {"identical": "identical to the reference, byte for byte: no change to show",
               "added": "only in the suspect (added): nothing to subtract", "removed": "only in the reference "
               "(removed): nothing to subtract", "shape_changed": f"shape changed ({shape_text(d.reference_shape)} -> "
               f"{shape_text(d.shape)}): the two sides cannot be subtracted", "dtype_changed": f"dtype changed "
               f"({d.reference_dtype} -> {d.dtype}): the two sides cannot be subtracted"}  # fmt: skip
        change.reason = why.get(d.status, f"status {d.status}: no change to show")
        return change
    if choice.pair.suspect is None or choice.pair.reference is None:
        change.reason = "the model pair has no reference folder to read the tensor back from"
        return change
    if d.dtype not in KINDS or KINDS[d.dtype].decode is None:
        change.reason = f"stored as {d.dtype}, which the diff compares by bytes only: no values to subtract"
        return change
    m, n = matrix(tuple(d.shape or ()))
    change.rows, change.columns = m, n
    if n > MAX_ELEMENTS:
        change.reason = f"one row holds {n:,} elements, more than the {MAX_ELEMENTS:,} read per side at most"
        return change
    lo, hi = 0, m
    if m * n > MAX_ELEMENTS:
        fit = MAX_ELEMENTS // n
        lo = max(0, min(min(d.changed_rows, default=0), m - fit))
        hi = lo + fit
        change.notes.append(f"rows {lo:,} to {hi - 1:,} of {m:,} read (at most {MAX_ELEMENTS:,} elements per "
                            "side, from the first changed row): the heatmap and the spectrum cover those rows "
                            "only")  # fmt: skip
    change.rows_read = (lo, hi)
    files: list[FileTensors] = []
    try:
        s, r, files = _sources(inv, choice)
        if s is None or r is None:
            change.reason = "the tensor was not found again in both checkpoints"
            return change
        if s.shape != r.shape or s.dtype != r.dtype or s.dtype != d.dtype:
            change.reason = "the checkpoints read now disagree with the diff's record (changed since the run?)"
            return change
        # one BLAS thread: the thin QR and SVD steps gain nothing from more, and spinning threads slow a busy kernel
        with open_nofollow(s.path) as fs, open_nofollow(r.path) as fr, threadpool_limits(1, user_api="blas"):
            _measure(change, _Delta(fs, fr, s, r, lo, hi, n))
    except (OSError, ValueError, WorkbenchError) as exc:
        change.reason = f"could not be read: {exc}"
        change.heat = change.spectrum = None
    finally:
        for f in files:
            f.release()
    if change.nonfinite:
        change.notes.append(f"{change.nonfinite:,} non-finite differences left out (counted as no change)")
    return change


def shape_text(shape: tuple[int, ...] | None) -> str:
    """``16x32``, or ``none``."""
    return "x".join(map(str, shape)) if shape is not None else "none"
