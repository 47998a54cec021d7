"""Onset, end and exposure window of a shift in a model's output distribution.

The stream of predicted classes (sorted by time) is cut into at most ``max_bins`` bins of equal count. Two
multinomial likelihood-ratio scans run over the bin edges:

- the *step* scan, one change at τ: ``LR(τ) = 2·[ℓ(before) + ℓ(after) − ℓ(all)]``;
- the *two-boundary* (epidemic) scan, a segment [a, b) that differs from the rest: inside against outside, on
  at most ``coarse_bins`` bins, then refined on the fine bins.

Significance is calibrated by permutation: tables with the same bin sizes and class totals as the observed one
(scipy's ``random_table``, i.e. the exact permutation distribution of the binned labels) give the null maxima of
both scans, and the two are combined by the min-p method. The 95 % interval for a boundary is the likelihood-ratio
confidence set ``{τ : LR(τ̂) − LR(τ) ≤ 2·c}``, with ``c`` the 95 % point of the maximum of a two-sided Brownian motion
with drift −|t|/2 (P(max ≤ c) = (1 − e^−c)², c ≈ 3.68), widened by a bin on each side.

The shift ends (rollback) when the two-boundary fit is confirmed on both sides: a further permutation test (level
alpha / 5) finds a change between the onset interval and the end of the stream, inside the end's interval; another
finds the onset before the end, inside the onset's interval; the predictions after the end resemble those before
the onset more than those inside (a return, not a second change); and, given a baseline, the inside departs from it
more than the outside. Otherwise the step model holds: one change, the shift lasts to the last record (or, with a
baseline, precedes the first record when the earlier side is the one further from the baseline).

Accuracy is bounded by information: a boundary is located to about ±1.5/δ² predictions (median), where δ² is the
chi-square divergence between the shares before and after. See ``benchmarks/bench_changepoint.py``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.drift.columns import Instants, as_ns, bincount, utc_index
from workbench.drift.metrics import js_distance, newcombe_interval, wilson_interval

__all__ = ["INTERVAL_C", "ChangeScan", "scan_changes"]

#: 95 % point of max_t (W(t) − |t|/2) over both sides: (1 − e^−c)² = 0.95.
INTERVAL_C = -math.log(1 - math.sqrt(0.95))


@dataclass(frozen=True, slots=True)
class ChangeScan:
    """What the scan concluded about one stream.

    Attributes:
        verdict: ``change``, ``no change`` or ``insufficient data``.
        reason: one line explaining the verdict.
        model: ``step`` (one change, the shift lasts), ``epidemic`` (onset and end) or None.
        p_value: permutation p-value of "the distribution changed" (min-p over both scans), or None.
        onset / end: first and last-plus-one prediction time of the exposure (UTC); ``end`` None while ongoing.
        onset_interval / end_interval: 95 % intervals (UTC).
        onset_censored: True when the exposure begins before the first record (its onset cannot be seen).
        start / stop: record indices of the exposure window ``[start, stop)`` in the sorted stream.
        n_exposed: predictions served in the exposure window.
        classes: class labels, in code order.
        excess: per class ``class``, ``share_in``, ``share_out``, ``excess``, ``excess_low``, ``excess_high``.
        profile: per bin edge ``time`` (UTC) and ``statistic`` (step LR), for the plot.
        threshold: (1 − alpha) quantile of the null maximum of the step scan.
        statistic: observed maximum of the step scan.
        permutations / alpha: settings used.
        p_step / p_two_boundary: permutation p-values of each scan alone.
    """

    verdict: str
    reason: str
    model: str | None = None
    p_value: float | None = None
    onset: pd.Timestamp | None = None
    onset_interval: tuple[pd.Timestamp, pd.Timestamp] | None = None
    onset_censored: bool = False
    end: pd.Timestamp | None = None
    end_interval: tuple[pd.Timestamp, pd.Timestamp] | None = None
    start: int = 0
    stop: int = 0
    n_exposed: int = 0
    classes: tuple[str, ...] = ()
    excess: pd.DataFrame | None = None
    profile: pd.DataFrame | None = None
    threshold: float | None = None
    statistic: float | None = None
    permutations: int = 0
    alpha: float = 0.05
    p_step: float | None = None
    p_two_boundary: float | None = None

    @property
    def changed(self) -> bool:
        return self.verdict == "change"


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x * np.log(np.maximum(x, 1.0))


class _Scans:
    """Step and two-boundary LR scans for tables that share bin sizes and class totals (observed and permuted).

    Everything that depends only on the margins is computed once; a table then costs two ``x·log x`` passes
    (computed on the counts: a lookup table of ``n + 1`` values took 80 MB per ten million predictions).
    """

    def __init__(self, counts: np.ndarray, m: int, coarse_edges: np.ndarray) -> None:
        self.total = counts.sum(0).astype(np.int64)
        sizes = np.concatenate([[0], np.cumsum(counts.sum(1))])
        n = float(sizes[-1])
        self.const = _xlogx(self.total).sum() - _xlogx(n)
        left = sizes[1:-1]
        self.step_fixed = np.where((left >= m) & (n - left >= m), -_xlogx(left) - _xlogx(n - left), -np.inf)
        c = sizes[coarse_edges]
        a, b = np.triu_indices(len(coarse_edges) - 2, k=1)
        a, b = a + 1, b + 1
        n_in = c[b] - c[a]
        ok = (n_in >= m) & (c[a] >= m) & (n - c[b] >= m)
        self.pair_a, self.pair_b = a[ok], b[ok]
        self.epi_fixed = -_xlogx(n_in[ok]) - _xlogx(n - n_in[ok])
        self.sizes, self.n, self.m = sizes, n, m

    def _ll(self, lower: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
        """Σ_k [x·log x(c_k) + x·log x(total_k − c_k)] with c = upper − lower (or lower), class axis first (K, ...)."""
        out = 0.0
        for j, tot in enumerate(self.total):
            x = lower[j] if upper is None else upper[j] - lower[j]
            out = out + _xlogx(x) + _xlogx(tot - x)  # computed, not looked up: no table of n + 1 values
        return np.asarray(out)

    def step(self, cum: np.ndarray) -> np.ndarray:
        """Step LR at every interior fine edge (index i is edge i + 1) for ``cum`` (..., B+1, K); trimmed: −inf."""
        left = np.moveaxis(cum[..., 1:-1, :], -1, 0)
        return 2 * (self._ll(left) + self.step_fixed - self.const)

    def epidemic_max(self, ccum: np.ndarray, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Largest two-boundary LR over coarse edge pairs, and its (a, b), for each table in ``ccum`` (P, C+1, K)."""
        best = np.full(ccum.shape[0], -np.inf)
        pairs = np.zeros((ccum.shape[0], 2), dtype=np.int64)
        if not len(self.pair_a):
            return best, pairs
        by_class = np.ascontiguousarray(np.moveaxis(ccum, -1, 0))  # (K, P, C+1)
        for i in range(0, ccum.shape[0], chunk):
            part = by_class[:, i : i + chunk]
            lr = self._ll(part[..., self.pair_a], part[..., self.pair_b]) + self.epi_fixed
            arg = lr.argmax(-1)
            best[i : i + chunk] = 2 * (lr.max(-1) - self.const)
            pairs[i : i + chunk] = np.stack([self.pair_a[arg], self.pair_b[arg]], axis=1)
        return best, pairs

    def epidemic_fine(self, cum: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Two-boundary LR for fine edge pairs (arrays of equal length); pairs breaking the trim give −inf."""
        b = np.maximum(a, b)  # pairs with a >= b are empty segments, masked below
        n_in = self.sizes[b] - self.sizes[a]
        ok = (n_in >= self.m) & (self.sizes[a] >= self.m) & (self.n - self.sizes[b] >= self.m)
        by_class = cum.T
        lr = self._ll(by_class[:, a], by_class[:, b]) - _xlogx(n_in) - _xlogx(self.n - n_in)
        return np.where(ok, 2 * (lr - self.const), -np.inf)


def _null_tables(counts: np.ndarray, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Permutation tables: same bin sizes and class totals as ``counts`` (B, K) -> (P, B, K)."""
    rows, cols = counts.sum(1), counts.sum(0)
    keep = cols > 0
    tables = np.zeros((permutations, *counts.shape), dtype=np.int64)
    tables[..., keep] = stats.random_table(rows, cols[keep], seed=rng).rvs(size=permutations, method="patefield")
    return tables


def _cum(counts: np.ndarray) -> np.ndarray:
    zero = np.zeros((*counts.shape[:-2], 1, counts.shape[-1]), dtype=np.int64)
    return np.concatenate([zero, np.cumsum(counts, axis=-2)], axis=-2)


def _p_value(observed: float, null: np.ndarray) -> float:
    return (1 + int(np.sum(null >= observed - 1e-9))) / (len(null) + 1)


def _rank_p(values: np.ndarray) -> np.ndarray:
    """Permutation p-value of each value among all of them: the share of values at least as large."""
    order = np.sort(values)
    return (len(values) - np.searchsorted(order, values - 1e-9, side="left")) / len(values)


def _confidence_set(profile: np.ndarray, best: int) -> tuple[int, int]:
    """First and last edge whose LR is within 2·c of the maximum (``profile`` indexed by edge)."""
    inside = np.flatnonzero(profile >= profile[best] - 2 * INTERVAL_C)
    return int(inside.min()), int(inside.max())


def _sub_scan(counts: np.ndarray, m: int, permutations: int, rng: np.random.Generator) -> tuple[float, int]:
    """Permutation p-value and best edge of a step scan on a sub-table of bins (p = 1 when too short)."""
    if counts.sum() < 2 * m or (counts.sum(0) > 0).sum() < 2:
        return 1.0, 0
    scans = _Scans(counts, m, np.array([0, len(counts)]))
    lr = scans.step(_cum(counts))
    if not np.isfinite(lr).any():
        return 1.0, 0
    null = scans.step(_cum(_null_tables(counts, permutations, rng))).max(-1)
    return _p_value(float(lr.max()), null), int(lr.argmax()) + 1


def _refine(codes: np.ndarray, k: int, left: np.ndarray, total: np.ndarray, lo: int, hi: int,
            inside_after: bool, rest: np.ndarray | None = None) -> int:  # fmt: skip
    """Record-level best split in records [lo, hi): ``left`` counts precede ``lo``; returns a record index.

    For a step (``rest`` None) the segments are [0, s) and [s, N). For an epidemic boundary, ``rest`` holds the counts
    of the far outside part, and the segment is [s, end) (onset, ``inside_after``) or [start, s) (end).
    """
    if hi - lo < 2:
        return lo
    onehot = np.zeros((hi - lo, k), dtype=np.int64)
    onehot[np.arange(hi - lo), codes[lo:hi]] = 1
    before = left + np.vstack([np.zeros((1, k), dtype=np.int64), np.cumsum(onehot, 0)])
    if rest is None:
        seg_a, seg_b = before, total - before
    elif inside_after:  # onset: inside = total - before - rest, outside = before + rest
        seg_a, seg_b = before + rest, total - before - rest
    else:  # end: inside = before - rest, outside = total - before + rest
        seg_a, seg_b = before - rest, total - before + rest
    na, nb = seg_a.sum(1), seg_b.sum(1)
    ll = _xlogx(seg_a).sum(1) + _xlogx(seg_b).sum(1) - _xlogx(na) - _xlogx(nb)
    return lo + int(np.argmax(ll))


def scan_changes(
    timestamps: np.ndarray | pd.Series,
    codes: np.ndarray,
    classes: tuple[str, ...] | list[str],
    *,
    alpha: float = 0.05,
    permutations: int = 199,
    max_bins: int = 500,
    coarse_bins: int = 100,
    min_segment: int = 50,
    trim: float = 0.01,
    baseline_shares: np.ndarray | None = None,
    seed: int | np.random.Generator = 0,
) -> ChangeScan:
    """Find whether, when and for how long the class distribution of a prediction stream changed.

    Args:
        timestamps: prediction times, sorted ascending: int64 UTC nanoseconds or datetime64[ns] (not copied), or
            a tz-aware Series or index (read as UTC).
        codes: class index of each prediction into ``classes``.
        classes: class labels.
        alpha: significance level of the permutation tests.
        permutations: permutation tables per test (p-values have resolution 1 / (permutations + 1)).
        max_bins: fine bins (equal count) for the step scan and the intervals.
        coarse_bins: bins for the two-boundary scan (cost grows with its square).
        min_segment / trim: every segment holds at least max(min_segment, trim · N) predictions.
        baseline_shares: baseline share per class (same order as ``classes``): when only one change is found,
            the side further from the baseline is the exposure (else the later side).
        seed: seed of the permutations (fixed by default: same evidence, same report).

    Returns:
        A :class:`ChangeScan`; ``insufficient data`` for fewer than 2·min_segment predictions, a single class or
        a single timestamp.

    Raises:
        ValueError: timestamps not sorted, or not one per prediction.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    raw = as_ns(timestamps)  # int64 UTC nanoseconds; pandas timestamps only for the instants reported
    ts = Instants(raw)
    codes = np.asarray(codes)  # small integer codes are counted in steps (columns.bincount): no full-size cast
    classes, k, n = tuple(classes), len(classes), len(codes)
    if len(raw) != n or (n > 1 and (raw[1:] < raw[:-1]).any()):
        raise ValueError("scan_changes needs one timestamp per prediction, sorted ascending")
    m = max(min_segment, math.ceil(trim * n))
    base = {"classes": classes, "permutations": permutations, "alpha": alpha}
    present = bincount(codes, minlength=k) if n else np.zeros(k, dtype=np.int64)
    if n < 2 * m or (present > 0).sum() < 2 or raw[0] == raw[-1]:  # sorted: one time iff first == last
        why = (
            f"{n} predictions (at least {2 * m} needed)"
            if n < 2 * m
            else "only one class in the stream"
            if (present > 0).sum() < 2
            else "every prediction has the same time"
        )
        return ChangeScan("insufficient data", why, **base)
    bins = min(max_bins, n)
    edges = (np.arange(bins + 1) * n) // bins
    counts = np.stack([bincount(codes[lo:hi], minlength=k) for lo, hi in itertools.pairwise(edges)])
    groups = (np.arange(bins) * min(coarse_bins, bins)) // bins
    c_edges = np.concatenate([[0], np.flatnonzero(np.diff(groups)) + 1, [bins]])
    scans = _Scans(counts, m, c_edges)
    cum = _cum(counts)
    tables = _null_tables(counts, permutations, rng)
    step = scans.step(cum)
    t_step = float(step.max()) if np.isfinite(step).any() else -np.inf
    null_step = scans.step(_cum(tables)).max(-1)
    epi_obs, epi_pair = scans.epidemic_max(cum[c_edges][None])
    null_epi, _ = scans.epidemic_max(_cum(tables)[:, c_edges])
    del tables
    p1, p2 = _p_value(t_step, null_step), _p_value(float(epi_obs[0]), null_epi)
    min_p = np.minimum(_rank_p(np.append(null_step, t_step)), _rank_p(np.append(null_epi, epi_obs[0])))
    p_change = float(np.mean(min_p <= min_p[-1] + 1e-12))
    threshold = float(np.quantile(null_step, 1 - alpha))
    profile = pd.DataFrame({"time": utc_index(raw[edges[1:-1]]), "statistic": np.where(np.isfinite(step), step,
                                                                                      np.nan)})  # fmt: skip
    base.update(profile=profile, threshold=threshold, statistic=t_step, p_value=p_change, p_step=p1, p_two_boundary=p2)
    if p_change >= alpha:
        why = f"permutation p={p_change:.3g} (step scan p={p1:.3g}, two-boundary scan p={p2:.3g})"
        return ChangeScan("no change", why, **base)

    def when(edge: int) -> pd.Timestamp:
        return ts[edges[edge]] if edge < bins else ts[-1]

    def interval(lo: int, hi: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        return when(max(lo - 1, 0)), when(min(hi + 1, bins))

    onset_found = end_found = False
    if np.isfinite(epi_obs[0]):  # two-boundary fit: coarse pair, then coordinate ascent on the fine edges
        a, b = int(c_edges[epi_pair[0, 0]]), int(c_edges[epi_pair[0, 1]])
        fine = np.arange(bins + 1)
        for _ in range(3):
            prof_a = scans.epidemic_fine(cum, fine, np.full(len(fine), b))
            a = int(np.argmax(prof_a))
            prof_b = scans.epidemic_fine(cum, np.full(len(fine), a), fine)
            b = int(np.argmax(prof_b))
        a_lo, a_hi = _confidence_set(prof_a, a)
        b_lo, b_hi = _confidence_set(prof_b, b)
        # each boundary must be confirmed by its own permutation test, at the place the fit put it
        first, level = min(a_hi + 1, b), alpha / 5
        perms = max(permutations, math.ceil(1 / level) - 1)  # so that p <= level is reachable
        p_end, at_end = _sub_scan(counts[first:], m, perms, rng)
        p_onset, at_onset = _sub_scan(counts[: max(b_lo - 1, a)], m, perms, rng)
        # ... and the outside parts must agree: a rollback returns to the distribution from before the onset
        pre, inside, post = cum[a], cum[b] - cum[a], cum[-1] - cum[b]
        back = js_distance(pre, post) < min(js_distance(pre, inside), js_distance(post, inside))
        if baseline_shares is not None:  # and the exposure is the part that departs from the baseline
            back = back and js_distance(inside, baseline_shares) > js_distance(pre + post, baseline_shares)
        onset_found = back and p_onset <= level and a_lo - 1 <= at_onset <= a_hi + 1
        end_found = back and p_end <= level and b_lo - 1 <= first + at_end <= b_hi + 1

    def records(lo: int, hi: int) -> tuple[int, int]:
        return int(edges[max(lo - 1, 0)]), int(edges[min(hi + 1, bins)])

    if onset_found and end_found:
        model, censored = "epidemic", False
        on_int, end_int = interval(a_lo, a_hi), interval(b_lo, b_hi)
        start = _refine(codes, k, cum[a - 1], cum[-1], edges[a - 1], edges[min(a + 1, b)], True, cum[-1] - cum[b])
        stop = _refine(codes, k, cum[b - 1], cum[-1], edges[b - 1], edges[min(b + 1, bins)], False, cum[a])
        starts, stops = (start, *records(a_lo, a_hi)), (stop, *records(b_lo, b_hi))
    else:
        model = "step"
        tau = int(np.argmax(step)) + 1
        lo, hi = _confidence_set(np.concatenate([[-np.inf], step, [-np.inf]]), tau)
        split = _refine(codes, k, cum[tau - 1], cum[-1], edges[tau - 1], edges[min(tau + 1, bins)], True)
        censored = baseline_shares is not None and js_distance(cum[tau], baseline_shares) > js_distance(
            cum[-1] - cum[tau], baseline_shares
        )
        if censored:
            start, stop, on_int, end_int = 0, split, None, interval(lo, hi)
            starts, stops = (0,), (split, *records(lo, hi))
        else:
            start, stop, on_int, end_int = split, n, interval(lo, hi), None
            starts, stops = (split, *records(lo, hi)), (n,)
    excess = _excess(codes, k, starts, stops, classes, baseline_shares)
    reason = f"permutation p={p_change:.3g}; {model} model" + (" (onset before the first record)" if censored else "")
    return ChangeScan(
        "change", reason, model=model, onset=ts[start], onset_interval=on_int, onset_censored=censored,
        end=ts[stop] if stop < n else None, end_interval=end_int if stop < n else None, start=start, stop=stop,
        n_exposed=stop - start, excess=excess, **base,
    )  # fmt: skip


def _excess(codes: np.ndarray, k: int, starts: tuple[int, ...], stops: tuple[int, ...], classes: tuple[str, ...],
            baseline_shares: np.ndarray | None) -> pd.DataFrame:  # fmt: skip
    """Excess predictions per class in the window: ``n_in × (p_in − p_out)`` with a 95 % interval.

    The estimate uses the window ``[starts[0], stops[0])``. The interval is the union of Newcombe intervals over
    every window whose boundaries are the estimate or an end of the boundary's 95 % interval, so it carries the
    uncertainty of the boundaries as well as sampling noise. The outside shares come from the predictions outside
    the window, or from the baseline when fewer than 30 remain.
    """
    estimate, lows, highs = None, [], []
    for start in starts:
        for stop in stops:
            if stop <= start:
                continue
            inside = bincount(codes[start:stop], minlength=k)
            outside = bincount(codes[:start], minlength=k) + bincount(codes[stop:], minlength=k)
            n_in, n_out = int(inside.sum()), int(outside.sum())
            p_in = inside / n_in
            if n_out >= 30 or baseline_shares is None:
                p_out = outside / max(n_out, 1)
                lo, hi = newcombe_interval(inside, n_in, outside, n_out)
            else:
                p_out = np.asarray(baseline_shares, dtype=float)
                wl, wh = wilson_interval(inside, n_in)
                lo, hi = wl - p_out, wh - p_out
            lows.append(n_in * lo)
            highs.append(n_in * hi)
            if estimate is None:
                estimate = (p_in, p_out, n_in * (p_in - p_out))
    p_in, p_out, excess = estimate
    return pd.DataFrame(
        {"class": list(classes), "share_in": p_in, "share_out": p_out, "excess": excess,
         "excess_low": np.min(lows, axis=0), "excess_high": np.max(highs, axis=0)}
    )  # fmt: skip
