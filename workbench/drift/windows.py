"""Drift over time: the stream cut into windows, each compared with the baseline, corrected for multiple testing.

Windows are fixed calendar intervals in UTC (``"1h"``, ``"30min"``, ``"1d"``, anchored at midnight) or runs of a
fixed number of consecutive predictions (``"500"``). Only windows holding predictions are listed. A window is
``drift`` when its corrected p-value is below ``alpha`` and its JS distance reaches ``min_effect``; windows with
fewer than ``min_count`` predictions are ``insufficient data`` and are left out of the correction.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from workbench.drift.columns import as_ns, at, bincount, utc_index
from workbench.drift.metrics import ALPHA, MIN_COUNT, MIN_EFFECT, Baseline, compare_to_baseline

__all__ = ["MAX_WINDOWS", "WINDOW_COLUMNS", "adjust_p_values", "class_counts", "fit_window", "parse_window",
           "window_table"]  # fmt: skip

#: More windows than this is refused (choose a larger window).
MAX_WINDOWS = 20_000
#: Columns of :func:`window_table`, in order.
WINDOW_COLUMNS = [
    "window", "start", "end", "n", "js_distance", "noise_level", "test", "statistic", "p_value", "p_adjusted",
    "top_class", "top_delta_pp", "new_classes", "legacy_jsd", "legacy_fired", "low_count", "verdict",
]  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hour|d|day)s?\s*$", re.IGNORECASE)
_STEP = 1 << 20
_UNITS = {"s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "hour": "h", "d": "D", "day": "D"}


def parse_window(spec: str | int) -> pd.Timedelta | int:
    """``"1h"``, ``"30min"``, ``"1d"`` -> a Timedelta; ``"500"`` or 500 -> a count of predictions.

    Raises:
        ValueError: anything else, or a non-positive size.
    """
    text = str(spec) if isinstance(spec, int) and not isinstance(spec, bool) else str(spec).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"window {spec!r}: a count of predictions must be at least 1")
        return int(text)
    m = _DURATION.match(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"window {spec!r} is not a duration such as 1h, 30min, 1d or a count such as 500")
    return pd.Timedelta(int(m.group(1)), unit=_UNITS[m.group(2).lower()])


def _window_bounds(ns: np.ndarray, window: pd.Timedelta | int) -> tuple[np.ndarray, np.ndarray]:
    """Record offsets where each non-empty window starts (and the end), and each window's start (int64 ns) for
    sorted UTC nanoseconds; windows of a duration are aligned on 1970-01-01 UTC (as ``Timestamp.floor``)."""
    n = len(ns)
    if isinstance(window, int):
        firsts = np.arange(0, n, window)
        return np.append(firsts, n), ns[firsts]
    width = int(window.value)
    cuts = [np.zeros(1, dtype=np.int64)]
    for lo in range(0, n - 1, _STEP):  # in steps: no array of n floored times
        part = ns[lo : min(n, lo + _STEP + 1)] // width
        cuts.append(np.flatnonzero(part[1:] != part[:-1]) + lo + 1)
    firsts = np.concatenate(cuts)
    return np.append(firsts, n), ns[firsts] // width * width


def fit_window(timestamps: np.ndarray | pd.Series, window: str | int) -> tuple[pd.Timedelta | int, str | None]:
    """``window`` parsed, widened (doubled until the stream fits in :data:`MAX_WINDOWS` non-empty windows) when the
    records span too many of them, and a note saying so (None when it fits as asked).

    Raises:
        ValueError: a malformed ``window``.
    """
    size = parse_window(window)
    ns = as_ns(timestamps)
    if not len(ns):
        return size, None
    first = size
    while len(_window_bounds(ns, size)[1]) > MAX_WINDOWS:
        size = 2 * size if isinstance(size, int) else size * 2
    if size == first:
        return size, None
    return size, (f"window {window} gives more than {MAX_WINDOWS:,} windows over these records: widened to "
                  f"{window_text(size)}")  # fmt: skip


def window_text(size: pd.Timedelta | int) -> str:
    """A window as the options write it: ``500``, ``6h``, ``2d``, ``90min``."""
    if isinstance(size, int):
        return str(size)
    for unit, text in ((pd.Timedelta("1D"), "d"), (pd.Timedelta("1h"), "h"), (pd.Timedelta("1min"), "min")):
        if size % unit == pd.Timedelta(0):
            return f"{size // unit}{text}"
    return f"{int(size.total_seconds())}s"


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Holm (family-wise) or Benjamini-Hochberg (``"bh"``, false discovery rate) adjusted p-values; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    if method == "bh":
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
        return out
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}; use 'holm' or 'bh'")
    q = p[ok]
    order = np.argsort(q, kind="stable")
    scaled = (len(q) - np.arange(len(q))) * q[order]
    adjusted = np.empty_like(q)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out[ok] = adjusted
    return out


def window_table(
    timestamps: pd.DatetimeIndex | pd.Series,
    labels: Sequence[str] | np.ndarray,
    baseline: Baseline,
    window: str | int | pd.Timedelta = "1d",
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_count: int = MIN_COUNT,
    correction: str = "holm",
    seed: int = 0,
) -> pd.DataFrame:
    """Compare every window of the (time-sorted) stream with the baseline.

    Args:
        timestamps: prediction times, sorted (UTC).
        labels: predicted class of each prediction.
        baseline: the known-good distribution.
        window: a duration, a count, or their text form (see :func:`parse_window`).
        alpha / min_effect / min_count: verdict rule (see :func:`workbench.drift.metrics.compare_to_baseline`).
        correction: ``holm`` or ``bh`` across the windows that have a verdict.
        seed: seed for the Monte Carlo tests of small windows.

    Returns:
        One row per non-empty window, columns :data:`WINDOW_COLUMNS`: ``window`` int, ``start`` / ``end``
        datetime64[UTC] (``end`` exclusive for time windows, the last prediction for count windows), ``n`` int,
        ``js_distance`` float (effect size), ``noise_level`` float (95 % JS distance of an unchanged model at this
        n), ``test`` str, ``statistic`` / ``p_value`` / ``p_adjusted`` float (NaN without a test), ``top_class`` str
        and ``top_delta_pp`` float (largest change), ``new_classes`` str, ``legacy_jsd`` float, ``legacy_fired``
        bool, ``low_count`` bool, ``verdict`` str.

    Raises:
        ValueError: a bad window, or more than :data:`MAX_WINDOWS` windows.
    """
    size = parse_window(window) if isinstance(window, str | int) else window
    ns = as_ns(timestamps)
    codes, names = _codes(labels)
    if not len(ns):
        return pd.DataFrame(columns=WINDOW_COLUMNS)
    bounds, start_ns = _window_bounds(ns, size)
    if len(start_ns) > MAX_WINDOWS:
        raise ValueError(
            f"window {window!r} gives {len(start_ns)} windows (at most {MAX_WINDOWS}); choose a larger one"
        )
    starts = utc_index(start_ns)
    rng = np.random.default_rng(seed)
    noise = stats.chi2.ppf(0.95, max(len(baseline.labels) - 1, 1)) / (8 * np.log(2))
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        counts = bincount(codes[lo:hi], minlength=len(names)).tolist()
        cmp = compare_to_baseline(dict(zip(names, counts, strict=True)), baseline, alpha=alpha,
                                  min_effect=min_effect, min_count=min_count, seed=rng)  # fmt: skip
        delta = cmp.shares - cmp.baseline_shares
        top = int(np.argmax(np.abs(delta)))
        end = at(ns, hi - 1) if isinstance(size, int) else starts[i] + size
        rows.append({
            "window": i, "start": starts[i], "end": end, "n": cmp.n, "js_distance": cmp.js_distance,
            "noise_level": float(np.sqrt(noise / cmp.n)),
            "test": cmp.test, "statistic": cmp.statistic, "p_value": cmp.p_value, "p_adjusted": np.nan,
            "top_class": cmp.classes[top], "top_delta_pp": 100 * float(delta[top]),
            "new_classes": ", ".join(cmp.new_classes), "legacy_jsd": cmp.legacy_jsd, "legacy_fired": cmp.legacy_fired,
            "low_count": cmp.n < min_count, "verdict": cmp.verdict,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    table["statistic"] = table["statistic"].astype(float)
    table["p_value"] = table["p_value"].astype(float)
    table["p_adjusted"] = adjust_p_values(table["p_value"], correction)
    tested = table["p_adjusted"].notna()
    drift = tested & (table["p_adjusted"] < alpha) & (table["js_distance"] >= min_effect)
    table.loc[tested, "verdict"] = np.where(drift[tested], "drift", "no drift")
    return table


def _codes(labels: Sequence[str] | np.ndarray | pd.Categorical) -> tuple[np.ndarray, list[str]]:
    """Integer code of each label and the label of each code (a categorical's own codes: no text per record)."""
    if isinstance(labels, pd.Categorical):
        return labels.codes, [str(c) for c in labels.categories]
    codes, uniques = pd.factorize(np.asarray(labels, dtype=object))
    return codes, [str(u) for u in uniques]


def class_counts(
    timestamps: pd.DatetimeIndex | pd.Series,
    labels: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    bins: int = 200,
) -> pd.DataFrame:
    """Predictions per class in at most ``bins`` equal time bins (for plots).

    Returns:
        Index ``start`` (datetime64[UTC], bin start), one int column per class in ``classes``; bin width is a
        round duration (1 min to 1 week) chosen so the span fits in ``bins`` bins.
    """
    ns = as_ns(timestamps)
    if not len(ns):
        return pd.DataFrame(columns=list(classes))
    span = pd.Timedelta(int(ns[-1] - ns[0]))
    steps = ["1min", "5min", "15min", "30min", "1h", "2h", "3h", "6h", "12h", "1D", "2D", "7D"]
    width = next((s for s in steps if span / pd.Timedelta(s) <= bins), "7D")
    codes, names = _codes(labels)
    bounds, start_ns = _window_bounds(ns, pd.Timedelta(width))
    table = np.zeros((len(start_ns), len(names)), dtype=np.int64)
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        table[i] = bincount(codes[lo:hi], minlength=len(names))
    frame = pd.DataFrame(table, index=utc_index(start_ns).rename("start"), columns=pd.Index(names, name="label"))
    frame = frame.loc[:, frame.sum() > 0]  # as a cross-table: only the classes present
    return frame.reindex(columns=list(classes), fill_value=0)
