"""What the predictions served in any window show: count, net excess per class, flipped-prediction estimate.

The conclusions decide the exposure window (from the compromise and the containment, not from the statistics);
this module quantifies whatever window they choose, from the same prediction stream the drift analysis read:

* **net excess** per class: ``n_in × (share inside − share outside)`` with Newcombe's 95 % interval, outside being
  the predictions before and after the window (at least :data:`MIN_OUTSIDE` of them), else the baseline
  distribution (Wilson interval of the inside share minus the baseline share);
* **flipped predictions** to the class with the largest significant gain, when the records carry confidences:
  predictions of that class more confident than :data:`FLIP_QUANTILE` of its predictions outside the window,
  beyond the number expected at the outside rate. A backdoor's flips are typically very confident; flips below
  the threshold are not counted, so the estimate tends to understate.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from workbench.drift.columns import bincount
from workbench.drift.metrics import Baseline, newcombe_interval, wilson_interval
from workbench.estimates import ClassExcess, Flipped, OutputShift, PredictionOutputs, WindowImpact

__all__ = ["FLIP_QUANTILE", "MIN_OUTSIDE", "outputs_of", "outputs_of_arrays", "window_impact"]

MIN_OUTSIDE = 30
FLIP_QUANTILE = 0.99
#: outside predictions of the gaining class needed before its confidence quantile means anything
MIN_FLIP_REFERENCE = 50


def _bounds(times: np.ndarray, start: datetime, end: datetime | None) -> tuple[int, int]:
    lo = int(np.searchsorted(times, np.datetime64(pd.Timestamp(start).tz_convert("UTC").tz_localize(None)), "left"))
    if end is None:
        return lo, len(times)
    hi = int(np.searchsorted(times, np.datetime64(pd.Timestamp(end).tz_convert("UTC").tz_localize(None)), "right"))
    return lo, max(lo, hi)


def window_impact(
    times: np.ndarray,
    codes: np.ndarray,
    confidence: np.ndarray | None,
    classes: tuple[str, ...],
    baseline: Baseline | None,
    start: datetime,
    end: datetime | None,
) -> WindowImpact:
    """Quantify the predictions served in ``[start, end]`` (both ends included: the last record of an exposure that
    runs to the end of the records is inside it).

    Args:
        times: sorted prediction times (``datetime64[ns]``, UTC, naive).
        codes: class index of each prediction in ``classes``.
        confidence: confidence of each prediction (NaN where missing), or None.
        classes: class labels.
        baseline: the baseline distribution, or None.
        start / end: the window; ``end`` None runs to the last record.
    """
    lo, hi = _bounds(times, start, end)
    k = len(classes)
    inside = bincount(codes[lo:hi], minlength=k).astype(float)
    outside = bincount(codes[:lo], minlength=k).astype(float) + bincount(codes[hi:], minlength=k)
    n_in, n_out = int(inside.sum()), int(outside.sum())
    if n_in == 0:
        return WindowImpact(start, end, 0, compared_with="no prediction in the window")
    shares = None
    if baseline is not None:
        known = baseline.share_of()
        shares = [known.get(c, 0.0) for c in classes]
    if n_out >= MIN_OUTSIDE:
        p_out = outside / n_out
        low, high = newcombe_interval(inside, n_in, outside, n_out)
        compared = f"the {n_out} predictions outside the window"
    elif shares is not None:
        p_out = np.asarray(shares, dtype=float)
        wl, wh = wilson_interval(inside, n_in)
        low, high = wl - p_out, wh - p_out
        compared = "the baseline distribution (too few predictions outside the window)"
    else:
        return WindowImpact(start, end, n_in, compared_with="nothing: no baseline and too few predictions outside")
    estimate = n_in * (inside / n_in - p_out)
    excess = tuple(
        ClassExcess(classes[i], float(estimate[i]), float(n_in * low[i]), float(n_in * high[i])) for i in range(k)
    )
    shifted = any(e.low > 0 or e.high < 0 for e in excess)
    flipped = None
    if confidence is not None and shifted:
        flipped = _flipped(codes, confidence, classes, excess, lo, hi)
    return WindowImpact(start, end, n_in, excess, compared, shifted, flipped)


def _flipped(codes: np.ndarray, confidence: np.ndarray, classes: tuple[str, ...], excess: tuple[ClassExcess, ...],
             lo: int, hi: int) -> Flipped | None:  # fmt: skip
    gainers = [e for e in excess if e.low > 0]
    if not gainers:
        return None
    gain = max(gainers, key=lambda e: e.estimate)
    code = classes.index(gain.label)
    out_mask = np.ones(len(codes), dtype=bool)
    out_mask[lo:hi] = False
    reference = confidence[out_mask & (codes == code)]
    reference = reference[~np.isnan(reference)]
    if len(reference) < MIN_FLIP_REFERENCE:
        return None
    threshold = float(np.quantile(reference, FLIP_QUANTILE))
    confident = (codes == code) & (np.nan_to_num(confidence, nan=-1.0) > threshold)
    n_in, n_out = hi - lo, int(out_mask.sum())
    k_in, k_out = int(confident[lo:hi].sum()), int(confident[out_mask].sum())
    d_lo, d_hi = newcombe_interval(k_in, n_in, k_out, n_out)
    rate = k_out / max(n_out, 1)
    rule = (f"'{gain.label}' predictions more confident than {threshold:.4f} (the {FLIP_QUANTILE:.0%} point of its "
            f"confidences outside the window): {k_in} inside against {rate * n_in:.1f} expected at the outside rate; "
            "flips below that confidence are not counted")  # fmt: skip
    return Flipped(gain.label, max(0.0, k_in - rate * n_in), max(0.0, float(n_in * d_lo)), max(0.0, float(n_in * d_hi)),
                   threshold, rule)  # fmt: skip


def outputs_of(frame: pd.DataFrame, codes: np.ndarray, classes: tuple[str, ...], baseline: Baseline | None,
               shift: OutputShift | None, sources: tuple[str, ...]) -> PredictionOutputs | None:  # fmt: skip
    """The :class:`PredictionOutputs` of a prepared stream (``frame`` sorted by ``timestamp``), or None if empty."""
    if frame.empty:
        return None
    times = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    conf = pd.to_numeric(frame["confidence"], errors="coerce").to_numpy(dtype=float) if "confidence" in frame else None
    return outputs_of_arrays(times.view(np.int64), codes, conf, classes, baseline, shift, sources)


def outputs_of_arrays(times_ns: np.ndarray, codes: np.ndarray, confidence: np.ndarray | None,
                      classes: tuple[str, ...], baseline: Baseline | None, shift: OutputShift | None,
                      sources: tuple[str, ...]) -> PredictionOutputs | None:  # fmt: skip
    """:func:`outputs_of` from the stream's columns (int64 UTC nanoseconds, sorted; codes; confidences or None),
    kept by reference, not copied; None for an empty stream."""
    if not len(times_ns):
        return None
    times = times_ns.view("datetime64[ns]")
    conf = confidence if confidence is not None and not np.isnan(confidence).all() else None

    def impact(start: datetime, end: datetime | None) -> WindowImpact:
        return window_impact(times, codes, conf, classes, baseline, start, end)

    first, last = (pd.Timestamp(int(times_ns[i]) // 1000 * 1000, tz="UTC").to_pydatetime() for i in (0, -1))
    return PredictionOutputs(first, last, len(times_ns), shift, impact, sources)
