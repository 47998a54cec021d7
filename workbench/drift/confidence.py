"""Confidence scores inside and outside a window: Kolmogorov-Smirnov test and population stability index.

Both work on millions of scores in bounded memory: bins and empirical distribution functions are counted in steps
(scipy's ``ks_2samp`` holds five arrays of both samples' size), with the same statistics and p-values.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["confidence_shift", "ks_2samp", "psi"]

#: largest sample scipy's ``ks_2samp`` treats exactly (its ``MAX_AUTO_N``); past it, the asymptotic p-value
_KS_EXACT_LIMIT = 10_000


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` on the reference's quantile bins.

    Empty bins get half a count so the index stays finite. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate,
    > 0.25 large shift. NaN when either sample is empty.
    """
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if not len(reference) or not len(current):
        return math.nan
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    r = _bin_counts(edges, reference) + 0.5
    c = _bin_counts(edges, current) + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def _bin_counts(edges: np.ndarray, values: np.ndarray, step: int = 1 << 20) -> np.ndarray:
    """Values per bin between ``edges`` (``searchsorted`` right), in steps: no index array of the values' size."""
    out = np.zeros(len(edges) + 1, dtype=np.int64)
    for lo in range(0, len(values), step):
        out += np.bincount(np.searchsorted(edges, values[lo : lo + step], side="right"), minlength=len(edges) + 1)
    return out


def ks_2samp(data1: np.ndarray, data2: np.ndarray, step: int = 1 << 20) -> tuple[float, float]:
    """``scipy.stats.ks_2samp`` (two-sided, method ``auto``): the same statistic and p-value, and for samples past
    scipy's exact limit the empirical distribution functions are compared in steps (scipy's own code holds five
    arrays of both samples' size: about 250 MB for five million confidences)."""
    if max(len(data1), len(data2)) <= _KS_EXACT_LIMIT:
        res = stats.ks_2samp(data1, data2)
        return float(res.statistic), float(res.pvalue)
    data1, data2 = np.sort(data1), np.sort(data2)
    n1, n2 = len(data1), len(data2)
    low, high = np.inf, -np.inf
    for data in (data1, data2):  # scipy's data_all is both samples, one after the other
        for lo in range(0, len(data), step):
            part = data[lo : lo + step]
            diffs = np.searchsorted(data1, part, side="right") / n1 - np.searchsorted(data2, part, side="right") / n2
            low, high = min(low, float(diffs.min())), max(high, float(diffs.max()))
    min_s, max_s = float(np.clip(-low, 0, 1)), high
    d = min_s if min_s > max_s else max_s
    m, n = sorted([float(n1), float(n2)], reverse=True)
    prob = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, prob


def confidence_shift(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Two-sample Kolmogorov-Smirnov test and PSI between two samples of confidence scores.

    Returns:
        ``{"n_reference", "n_current", "ks", "p_value", "psi"}``; NaN statistics when a sample is empty.
    """
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    out = {"n_reference": float(len(reference)), "n_current": float(len(current)), "ks": math.nan,
           "p_value": math.nan, "psi": math.nan}  # fmt: skip
    if len(reference) and len(current):
        ks, p_value = ks_2samp(reference, current)
        out.update(ks=ks, p_value=p_value, psi=psi(reference, current, bins))
    return out
