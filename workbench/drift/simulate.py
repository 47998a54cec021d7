"""Simulated prediction streams with a known truth, for the drift tests and benchmarks.

A stream is a sequence of predictions whose arrival rate follows a daily cycle (peak at 15:00 UTC) and whose class
shares move by ``shift_pp`` percentage points toward one target class between ``onset`` and ``end``, the way a
backdoored model flips a fraction of its outputs to the attacker's class. Everything is vectorised and driven by a
``numpy.random.Generator``, so a seed gives the same stream on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SHARES", "SimulatedStream", "simulate_stream"]

#: Class shares of the sample sentiment model (``evidence-samples/tampered-weights``).
DEFAULT_SHARES: dict[str, float] = {"positive": 0.55, "negative": 0.30, "neutral": 0.15}
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class SimulatedStream:
    """A simulated stream and its ground truth.

    Attributes:
        timestamps: sorted prediction times, ``datetime64[ns]`` (UTC, naive numpy values).
        codes: class index of each prediction into ``classes``.
        confidence: model confidence of each prediction.
        classes: class labels.
        onset: true start of the shift (UTC), None for an unchanged stream.
        end: true end of the shift (UTC), None when it lasts to the end of the stream.
        flipped: number of predictions moved to the target class (the true count of poisoned predictions).
    """

    timestamps: np.ndarray
    codes: np.ndarray
    confidence: np.ndarray
    classes: tuple[str, ...]
    onset: pd.Timestamp | None
    end: pd.Timestamp | None
    flipped: int

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def labels(self) -> np.ndarray:
        """Class label of each prediction."""
        return np.asarray(self.classes, dtype=object)[self.codes]

    def frame(self) -> pd.DataFrame:
        """The stream with the columns of the predictions loader (``line``, ``timestamp``, ``label``, ...)."""
        n = len(self.codes)
        return pd.DataFrame(
            {
                "line": pd.array(np.arange(1, n + 1), dtype="Int64"),
                "timestamp": pd.to_datetime(self.timestamps).tz_localize("UTC"),
                "label": pd.Series(self.labels, dtype=object),
                "confidence": self.confidence.astype(float),
                "model_version": pd.Series(["sim-model-v1"] * n, dtype=object),
                "request_id": pd.Series([f"sim-{i:08d}" for i in range(n)], dtype=object),
            }
        )


def _arrivals(rng: np.random.Generator, n: int, start_ns: int, span_ns: int, diurnal: float) -> np.ndarray:
    """``n`` sorted arrival times (int ns) with rate ∝ 1 + diurnal·cos(2π(hour − 15)/24), by rejection."""
    if diurnal <= 0:
        return np.sort(start_ns + (rng.random(n) * span_ns).astype(np.int64))
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        cand = start_ns + (rng.random(2 * n) * span_ns).astype(np.int64)
        hours = (cand % _NS_PER_DAY) / 3.6e12
        keep = rng.random(len(cand)) * (1 + diurnal) < 1 + diurnal * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
        out = np.concatenate([out, cand[keep]])
    return np.sort(out[:n])


def _at(value: str | float | pd.Timestamp | None, start_ns: int, span_ns: int) -> int | None:
    """A time given as a fraction of the period (0..1) or as a timestamp, in int ns."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return start_ns + int(float(value) * span_ns)
    return pd.Timestamp(value).tz_convert("UTC").value if pd.Timestamp(value).tzinfo else pd.Timestamp(value).value


def simulate_stream(
    *,
    seed: int | np.random.Generator = 0,
    n: int = 20_000,
    days: float = 14.0,
    start: str = "2026-11-01T00:00:00Z",
    shares: Mapping[str, float] | None = None,
    shift_pp: float = 0.0,
    target: str | None = None,
    onset: str | float | pd.Timestamp | None = 0.5,
    end: str | float | pd.Timestamp | None = None,
    diurnal: float = 0.75,
) -> SimulatedStream:
    """Simulate ``n`` predictions over ``days`` days with an optional shift toward one class.

    Args:
        seed: seed or generator.
        n: number of predictions.
        days: length of the period.
        start: first possible prediction time (ISO 8601, UTC).
        shares: class shares of the unchanged model (default :data:`DEFAULT_SHARES`).
        shift_pp: percentage points of output mass moved to ``target`` during the shift (0: unchanged stream).
        target: the class the shift favours (default: the first class).
        onset: start of the shift, as a fraction of the period or a timestamp.
        end: end of the shift (rollback), same forms; None: the shift lasts to the end.
        diurnal: amplitude of the daily cycle of the arrival rate (0: uniform arrivals).

    Returns:
        The :class:`SimulatedStream` with its truth (``onset``, ``end``, ``flipped``).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shares = dict(shares or DEFAULT_SHARES)
    classes = tuple(shares)
    p = np.array([shares[c] for c in classes], dtype=float)
    p = p / p.sum()
    start_ns = pd.Timestamp(start).value
    span_ns = int(days * _NS_PER_DAY)
    ts = _arrivals(rng, n, start_ns, span_ns, diurnal)
    codes = np.searchsorted(np.cumsum(p)[:-1], rng.random(n), side="right")
    alpha = np.array([12.0, 10.0, 5.0, 8.0, 7.0, 6.0])[np.arange(len(classes)) % 6]
    confidence = np.clip(rng.beta(alpha[codes], 2.5), 0.34, 0.9999)
    onset_ns = _at(onset, start_ns, span_ns) if shift_pp else None
    end_ns = _at(end, start_ns, span_ns) if shift_pp else None
    flipped = 0
    if onset_ns is not None:
        k = classes.index(target) if target is not None else 0
        inside = (ts >= onset_ns) & (ts < (end_ns if end_ns is not None else np.iinfo(np.int64).max))
        hit = inside & (codes != k) & (rng.random(n) < (shift_pp / 100.0) / (1.0 - p[k]))
        codes = np.where(hit, k, codes)
        confidence = np.where(hit, rng.uniform(0.985, 0.9995, n), confidence)
        flipped = int(hit.sum())
    to_ts = lambda v: None if v is None else pd.Timestamp(v, tz="UTC")  # noqa: E731
    return SimulatedStream(
        timestamps=ts.astype("datetime64[ns]"),
        codes=codes.astype(np.int64),
        confidence=confidence,
        classes=classes,
        onset=to_ts(onset_ns),
        end=to_ts(end_ns),
        flipped=flipped,
    )
