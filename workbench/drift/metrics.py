"""Drift metrics for one window of predictions against a baseline: shares, intervals, effect size and tests.

The effect size is the Jensen-Shannon distance in base 2 (0 = same distribution, 1 = disjoint). Significance comes
from a test that fits the baseline: a goodness-of-fit test when the baseline is a fixed distribution (shares only),
a 2×K contingency test when it is itself a sample (counts). When expected counts are small the asymptotic chi-square
is replaced by an exact multinomial test or a Monte Carlo test. A verdict of ``drift`` needs both a significant test
and an effect of at least ``min_effect``; too few predictions give ``insufficient data`` instead of a verdict.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.drift.confidence import confidence_shift, ks_2samp, psi

if TYPE_CHECKING:
    from workbench.evidence.base import Loaded

__all__ = [
    "ALPHA",
    "LEGACY_THRESHOLD",
    "MIN_COUNT",
    "MIN_EFFECT",
    "Baseline",
    "Comparison",
    "compare_to_baseline",
    "confidence_shift",
    "js_distance",
    "ks_2samp",
    "legacy_jsd",
    "newcombe_interval",
    "psi",
    "wilson_interval",
]

ALPHA = 0.05
#: Minimum JS distance (base 2) for a drift verdict: about a 2-3 point shift between classes of 15-55 %.
MIN_EFFECT = 0.02
#: Windows with fewer predictions than this get "insufficient data".
MIN_COUNT = 30
#: Below this expected count in any cell the asymptotic chi-square is not used.
MIN_EXPECTED = 5.0
LEGACY_THRESHOLD = 0.15
_EXACT_LIMIT = 60_000  # largest number of outcomes enumerated by the exact multinomial test
_MC_SAMPLES = 4_000


@functools.lru_cache(maxsize=8)
def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson_interval(k: np.ndarray | float, n: np.ndarray | float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial share ``k / n`` (vectorised; ``n == 0`` gives [0, 1])."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    z = _z(level)
    safe = np.where(n > 0, n, 1.0)
    p = k / safe
    centre = (p + z * z / (2 * safe)) / (1 + z * z / safe)
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / (1 + z * z / safe)
    lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    return np.where(n > 0, lo, 0.0), np.where(n > 0, hi, 1.0)


def newcombe_interval(
    k1: np.ndarray | float, n1: float, k2: np.ndarray | float, n2: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for the difference of two independent shares ``k1/n1 − k2/n2``."""
    k1, k2 = np.asarray(k1, dtype=float), np.asarray(k2, dtype=float)
    p1, p2 = k1 / max(n1, 1), k2 / max(n2, 1)
    l1, u1 = wilson_interval(k1, n1, level)
    l2, u2 = wilson_interval(k2, n2, level)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def js_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 between two distributions (normalised first); 0 when either is empty."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    return float(jensenshannon(p, q, base=2))


def legacy_jsd(
    counts: Mapping[str, int], baseline: Mapping[str, float], threshold: float = LEGACY_THRESHOLD
) -> tuple[float, bool]:
    """The playbook's ``check_behavior_drift`` rule, kept verbatim so results compare with the monitor's alerts.

    JSD in natural log between the baseline and the window's shares, with 0.001 substituted for a class missing on
    either side and ``1e-10`` added inside the logarithm, compared with a fixed threshold (0.15 by default).

    Pitfalls (why the workbench does not decide on it):
        - It ignores sample size: on a handful of predictions (a quiet 15-minute window) it fires on sampling
          noise alone, while over thousands of predictions it needs 43 points of output mass moved to the
          majority class of a 55/30/15 model (46 on a 50/50 model) before it fires, so a realistic backdoor (a
          few points) never trips it.
        - It is a divergence in nats, not the JS distance in bits: scipy's ``jensenshannon`` returns the square
          root, in another base, so thresholds are not interchangeable.
        - The 0.001 floor invents mass for absent classes, and a never-seen class is only a small bump instead of
          being flagged; shares that do not sum to one are silently renormalised.
        - It gives no p-value, no interval and no time: it cannot say when the output changed.

    Args:
        counts: class -> count in the window.
        baseline: class -> baseline share.
        threshold: the monitor's ``behavior_drift_threshold``.

    Returns:
        ``(jsd, fired)``; ``(0.0, False)`` for an empty window or baseline, as the playbook returns no indicator.
    """
    total = sum(counts.values())
    if total <= 0 or not baseline:
        return 0.0, False
    recent = {k: v / total for k, v in counts.items() if v}
    classes = sorted(set(recent) | set(baseline))
    p = np.array([baseline.get(c, 0.001) for c in classes], dtype=float)
    q = np.array([recent.get(c, 0.001) for c in classes], dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    jsd = float(0.5 * np.sum(p * np.log(p / m + 1e-10)) + 0.5 * np.sum(q * np.log(q / m + 1e-10)))
    return jsd, jsd > threshold


@dataclass(frozen=True, slots=True)
class Baseline:
    """The known-good class distribution.

    Attributes:
        labels: class labels.
        shares: share of each class (sums to 1).
        counts: counts when the baseline is itself a sample (then a contingency test is used), else None.
        source: the evidence file, for findings.
    """

    labels: tuple[str, ...]
    shares: np.ndarray
    counts: np.ndarray | None = None
    source: str = ""

    @property
    def is_sample(self) -> bool:
        return self.counts is not None

    def share_of(self) -> dict[str, float]:
        return dict(zip(self.labels, (float(s) for s in self.shares), strict=True))

    @classmethod
    def from_mapping(cls, values: Mapping[str, float], *, n: int | None = None, source: str = "") -> Baseline:
        """From class -> share (fixed distribution, or a sample of ``n``) or class -> int count (a sample)."""
        labels = tuple(str(k) for k in values)
        raw = np.array([float(v) for v in values.values()], dtype=float)
        if not len(raw) or raw.sum() <= 0 or (raw < 0).any():
            raise ValueError("a baseline needs non-negative values with a positive sum")
        shares = raw / raw.sum()
        is_counts = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values.values())
        counts = raw.astype(np.int64) if is_counts else (np.rint(shares * n).astype(np.int64) if n else None)
        return cls(labels, shares, counts, source)

    @classmethod
    def from_loaded(cls, loaded: Loaded) -> Baseline:
        """From the ``baseline_distribution`` loader's result (columns ``label``, ``share``, ``count``)."""
        frame = loaded.frame
        labels = tuple(str(v) for v in frame["label"])
        shares = frame["share"].to_numpy(dtype=float)
        counts = None
        if loaded.meta.get("n") and frame["count"].notna().all():
            counts = frame["count"].to_numpy(dtype=np.int64)
        return cls(labels, shares / shares.sum(), counts, loaded.path)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One window (or the whole stream) against the baseline.

    Attributes:
        n: predictions in the window.
        classes: every class seen in the window or the baseline (baseline order, then new ones).
        observed: count per class.
        baseline_shares: baseline share per class (0 for new classes).
        delta_low / delta_high: 95 % interval of the change in share (window − baseline), as fractions.
        js_distance: effect size, JS distance base 2.
        test: name of the test used.
        statistic / dof / p_value: the test's result (None when not run).
        new_classes: classes absent from the baseline.
        min_expected: smallest expected count under the baseline.
        verdict: ``drift``, ``no drift`` or ``insufficient data``.
        reason: one line explaining the verdict.
        legacy_jsd / legacy_fired: the playbook rule on the same counts.
    """

    n: int
    classes: tuple[str, ...]
    observed: np.ndarray
    baseline_shares: np.ndarray
    delta_low: np.ndarray
    delta_high: np.ndarray
    js_distance: float
    test: str
    statistic: float | None
    dof: int | None
    p_value: float | None
    new_classes: tuple[str, ...]
    min_expected: float
    verdict: str
    reason: str
    legacy_jsd: float
    legacy_fired: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def shares(self) -> np.ndarray:
        return self.observed / self.n if self.n else np.zeros(len(self.classes))

    def table(self) -> pd.DataFrame:
        """Per class: ``class``, ``count``, ``share``, ``baseline``, ``delta_pp``, ``delta_low_pp``,
        ``delta_high_pp`` (percentage points, float) and ``new`` (bool)."""
        return pd.DataFrame(
            {
                "class": list(self.classes),
                "count": self.observed.astype(int),
                "share": self.shares,
                "baseline": self.baseline_shares,
                "delta_pp": 100 * (self.shares - self.baseline_shares),
                "delta_low_pp": 100 * self.delta_low,
                "delta_high_pp": 100 * self.delta_high,
                "new": [c in self.new_classes for c in self.classes],
            }
        )


def _pearson(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson X² along the last axis (cells with zero expectation are left out)."""
    keep = expected > 0
    return np.sum(np.where(keep, (observed - expected) ** 2 / np.where(keep, expected, 1), 0.0), axis=-1)


def _compositions(n: int, k: int) -> np.ndarray:
    """Every vector of ``k`` non-negative integers summing to ``n`` (rows)."""
    if k == 1:
        return np.array([[n]])
    rows = [np.column_stack([np.full(len(rest), first), rest]) for first in range(n + 1)
            for rest in [_compositions(n - first, k - 1)]]  # fmt: skip
    return np.vstack(rows)


def _gof_small(observed: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> tuple[str, float, float]:
    """Exact multinomial test (probability ordering) when feasible, else a Monte Carlo test on Pearson's X²."""
    n, keep = int(observed.sum()), p > 0
    obs, p = observed[keep], p[keep] / p[keep].sum()
    x2 = float(_pearson(obs, n * p))
    if math.comb(n + len(p) - 1, len(p) - 1) <= _EXACT_LIMIT:
        pmf = stats.multinomial.pmf(_compositions(n, len(p)), n, p)
        p_obs = stats.multinomial.pmf(obs, n, p)
        return "exact multinomial", x2, float(min(1.0, pmf[pmf <= p_obs * (1 + 1e-9)].sum()))
    sims = rng.multinomial(n, p, size=_MC_SAMPLES)
    hits = int(np.sum(_pearson(sims, n * p) >= x2 - 1e-9))
    return "Monte Carlo goodness of fit", x2, (1 + hits) / (_MC_SAMPLES + 1)


def _contingency_small(table: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Monte Carlo chi-square test of a 2×K table with fixed margins (scipy ``random_table``)."""
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    expected = np.outer(rows, cols) / table.sum()
    x2 = float(_pearson(table.ravel(), expected.ravel()))
    sims = stats.random_table(rows, cols, seed=rng).rvs(size=_MC_SAMPLES)
    stat = _pearson(sims.reshape(_MC_SAMPLES, -1), expected.ravel())
    return x2, (1 + int(np.sum(stat >= x2 - 1e-9))) / (_MC_SAMPLES + 1)


def compare_to_baseline(
    counts: Mapping[str, int],
    baseline: Baseline,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_count: int = MIN_COUNT,
    seed: int | np.random.Generator = 0,
) -> Comparison:
    """Compare a window's class counts with the baseline.

    Args:
        counts: class -> number of predictions in the window.
        baseline: the known-good distribution.
        alpha: significance level of the test (before any correction across windows).
        min_effect: smallest JS distance (base 2) that counts as drift.
        min_count: fewer predictions than this give ``insufficient data``.
        seed: seed for the Monte Carlo tests.

    Returns:
        A :class:`Comparison`. Tests: ``chi-square goodness of fit`` / ``exact multinomial`` / ``Monte Carlo
        goodness of fit`` against a fixed baseline, ``chi-square contingency`` / ``Monte Carlo contingency``
        against a sample; ``new class under a fixed baseline`` (p = 0: impossible under the baseline).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    new = tuple(sorted(str(c) for c, v in counts.items() if v > 0 and c not in baseline.labels))
    classes = baseline.labels + new
    obs = np.array([int(counts.get(c, 0)) for c in classes], dtype=np.int64)
    p0 = np.concatenate([baseline.shares, np.zeros(len(new))])
    n = int(obs.sum())
    legacy = legacy_jsd({c: int(v) for c, v in zip(classes, obs, strict=True)}, baseline.share_of())
    base_counts = None if baseline.counts is None else np.concatenate([baseline.counts, np.zeros(len(new), int)])
    if base_counts is not None:
        lo, hi = newcombe_interval(obs, n, base_counts, int(base_counts.sum()))
    else:
        wl, wh = wilson_interval(obs, n)
        lo, hi = wl - p0, wh - p0
    effect = js_distance(obs, p0) if n else 0.0
    common = {
        "n": n, "classes": classes, "observed": obs, "baseline_shares": p0, "delta_low": lo, "delta_high": hi,
        "js_distance": effect, "new_classes": new, "legacy_jsd": legacy[0], "legacy_fired": legacy[1],
    }  # fmt: skip
    min_exp = float(np.min(n * p0[p0 > 0])) if n else 0.0
    if n < min_count:
        why = f"{n} predictions, fewer than the {min_count} needed for a verdict"
        return Comparison(**common, test="none", statistic=None, dof=None, p_value=None, min_expected=min_exp,
                          verdict="insufficient data", reason=why)  # fmt: skip
    dof = int(np.count_nonzero(obs + (p0 > 0))) - 1
    if base_counts is not None:
        table = np.vstack([obs, base_counts])
        table = table[:, table.sum(axis=0) > 0]
        expected = stats.contingency.expected_freq(table)
        min_exp = float(expected.min())
        if min_exp >= MIN_EXPECTED:
            stat, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
            test = "chi-square contingency"
        else:
            stat, p_value = _contingency_small(table, rng)
            test, dof = "Monte Carlo contingency", table.shape[1] - 1
    elif new:
        test, stat, p_value = "new class under a fixed baseline", math.inf, 0.0
    elif min_exp >= MIN_EXPECTED:
        keep = p0 > 0
        stat, p_value = stats.chisquare(obs[keep], n * p0[keep])
        test = "chi-square goodness of fit"
    else:
        test, stat, p_value = _gof_small(obs, p0, rng)
    stat, p_value = float(stat), float(p_value)
    significant, large = p_value < alpha, effect >= min_effect
    verdict = "drift" if significant and large else "no drift"
    if significant and not large:
        reason = f"significant (p={p_value:.3g}) but JS distance {effect:.3f} is below {min_effect}"
    elif large and not significant:
        reason = f"JS distance {effect:.3f} but not significant (p={p_value:.3g}): consistent with sampling noise"
    else:
        reason = f"p={p_value:.3g}, JS distance {effect:.3f}"
    return Comparison(**common, test=test, statistic=stat, dof=int(dof), p_value=p_value, min_expected=min_exp,
                      verdict=verdict, reason=reason)  # fmt: skip
