"""Synthetic prediction traffic: diurnal arrivals, confidences, shares, and the playbook's legacy drift score."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

__all__ = ["arrivals", "confidences", "legacy_jsd", "request_ids", "shares"]


def arrivals(rng: np.random.Generator, start: datetime, end: datetime, per_day: float) -> np.ndarray:
    """Sorted epoch milliseconds of a Poisson stream with a diurnal cycle (peak 15:00 UTC) and quieter weekends."""
    t0 = int(start.timestamp())
    minutes = np.arange(int((end - start).total_seconds()) // 60, dtype=np.int64)
    secs = t0 + minutes * 60
    hours = (secs % 86400) / 3600.0
    weekend = ((secs // 86400 + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    rate = per_day / 1440.0 * (1.0 + 0.75 * np.cos(2 * np.pi * (hours - 15.0) / 24.0)) * np.where(weekend, 0.7, 1.0)
    counts = rng.poisson(rate)
    ms = np.repeat(secs * 1000, counts) + rng.integers(0, 60_000, int(counts.sum()))
    ms.sort()
    return ms[ms < int(end.timestamp()) * 1000]


def confidences(rng: np.random.Generator, labels: np.ndarray, shapes: Sequence[tuple[float, float]]) -> np.ndarray:
    """Beta-distributed confidence per prediction; ``shapes[c]`` is the (a, b) of class ``c``."""
    a = np.array([s[0] for s in shapes])[labels]
    b = np.array([s[1] for s in shapes])[labels]
    return np.clip(rng.beta(a, b), 0.34, 0.9999)


def request_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``req_`` plus 12 hex digits (48 random bits)."""
    return [f"req_{int(x):012x}" for x in rng.integers(0, 2**48, n, dtype=np.int64)]


def shares(labels: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Share of each class among ``labels`` (class indices), rounded to 4 decimals."""
    return {c: round(float(np.mean(labels == i)), 4) for i, c in enumerate(classes)}


def legacy_jsd(counts: dict[str, int], baseline: dict[str, float]) -> float:
    """Jensen-Shannon divergence exactly as the playbook monitor computes it (0.001 for absent classes, nats)."""
    from workbench.drift.metrics import legacy_jsd as playbook_rule

    return playbook_rule(counts, baseline)[0]
