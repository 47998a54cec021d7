"""Drift metrics: exact values on small hand-computed cases, test selection, verdicts and the legacy rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workbench.drift.metrics import (
    Baseline,
    compare_to_baseline,
    confidence_shift,
    js_distance,
    legacy_jsd,
    newcombe_interval,
    psi,
    wilson_interval,
)

SENTIMENT = {"positive": 0.55, "negative": 0.30, "neutral": 0.15}


def shifted(pp: float, base: dict[str, float] = SENTIMENT, target: str = "positive") -> dict[str, float]:
    """``base`` with ``pp`` points moved to ``target``, the others scaled down proportionally."""
    rest = 1 - base[target]
    return {c: base[c] + pp / 100 if c == target else base[c] * (rest - pp / 100) / rest for c in base}


def counts_of(shares: dict[str, float], n: int) -> dict[str, int]:
    return {c: round(s * n) for c, s in shares.items()}


# ------------------------------------------------------------------------------------------ effect size
def test_js_distance_base2_hand_computed() -> None:
    # p = (1/2, 1/2), q = (1, 0): M = (3/4, 1/4); KL(p||M) = 1/2·log2(2/3) + 1/2·log2(2) = 0.2075187,
    # KL(q||M) = log2(4/3) = 0.4150375; JSD = 0.3112781 bits; distance = sqrt = 0.5579230
    assert js_distance([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5579230, abs=1e-6)
    # (0.6, 0.4) vs (0.4, 0.6): JSD = 0.6·log2(1.2) + 0.4·log2(0.8) = 0.0290494 bits
    assert js_distance([0.6, 0.4], [0.4, 0.6]) == pytest.approx(math.sqrt(0.0290494), abs=1e-6)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([3, 1], [0.75, 0.25]) == pytest.approx(0.0, abs=1e-9)  # counts are normalised
    assert js_distance([0, 0], [0.5, 0.5]) == 0.0


# ------------------------------------------------------------------------------------------ intervals
def test_wilson_matches_scipy() -> None:
    lo, hi = wilson_interval(np.array([0, 7, 50]), np.array([20, 20, 50]))
    for i, (k, n) in enumerate([(0, 20), (7, 20), (50, 50)]):
        ci = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert (lo[i], hi[i]) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_newcombe_published_example() -> None:
    # Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339 (method 10)
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert (float(lo), float(hi)) == pytest.approx((0.0524, 0.3339), abs=1e-4)


# ------------------------------------------------------------------------------------------ tests and verdicts
def test_goodness_of_fit_hand_computed() -> None:
    # 30 / 20 against 1/2, 1/2: expected 25 / 25, X² = 25/25 + 25/25 = 2, p = P(chi2_1 >= 2) = 0.1572992
    cmp = compare_to_baseline({"a": 30, "b": 20}, Baseline.from_mapping({"a": 0.5, "b": 0.5}))
    assert cmp.test == "chi-square goodness of fit"
    assert cmp.statistic == pytest.approx(2.0)
    assert cmp.dof == 1
    assert cmp.p_value == pytest.approx(0.1572992, abs=1e-6)
    assert cmp.verdict == "no drift"
    assert cmp.table()["delta_pp"].tolist() == pytest.approx([10.0, -10.0])


def test_contingency_when_the_baseline_is_a_sample() -> None:
    # [[30, 20], [20, 30]]: expected 25 everywhere, X² = 4 · 25/25 = 4, p = P(chi2_1 >= 4) = 0.0455003
    cmp = compare_to_baseline({"a": 30, "b": 20}, Baseline.from_mapping({"a": 20, "b": 30}))
    assert cmp.test == "chi-square contingency"
    assert cmp.statistic == pytest.approx(4.0)
    assert cmp.p_value == pytest.approx(0.0455003, abs=1e-6)
    assert cmp.js_distance == pytest.approx(math.sqrt(0.0290494), abs=1e-6)
    assert cmp.verdict == "drift"


def test_exact_multinomial_when_expected_counts_are_small() -> None:
    # 8 of 30 in a class of share 0.1 (expected 3): exact test, likelihood ordering = scipy's two-sided binomtest
    cmp = compare_to_baseline({"a": 22, "b": 8}, Baseline.from_mapping({"a": 0.9, "b": 0.1}))
    assert cmp.test == "exact multinomial"
    assert cmp.p_value == pytest.approx(stats.binomtest(8, 30, 0.1).pvalue, rel=1e-9)
    assert cmp.verdict == "drift"


def test_monte_carlo_contingency_matches_exact_hypergeometric() -> None:
    # window 28/2 vs baseline sample 40/10: expected 1.2 in a cell -> Monte Carlo over tables with fixed margins.
    cmp = compare_to_baseline({"a": 28, "b": 2}, Baseline.from_mapping({"a": 40, "b": 10}))
    assert cmp.test == "Monte Carlo contingency"
    # exact: cell (window, b) ~ hypergeom(80 total, 12 b's, 30 drawn); p = P(X²(x) >= X²(2))
    dist = stats.hypergeom(80, 12, 30)
    x = np.arange(0, 13)
    exp_b = 30 * 12 / 80
    x2 = (x - exp_b) ** 2 * (1 / exp_b + 1 / (50 * 12 / 80) + 1 / (30 * 68 / 80) + 1 / (50 * 68 / 80))
    exact = dist.pmf(x)[x2 >= x2[2] - 1e-9].sum()
    assert cmp.p_value == pytest.approx(exact, abs=0.02)


def test_new_class_is_flagged_and_impossible_under_a_fixed_baseline() -> None:
    cmp = compare_to_baseline({"a": 40, "b": 40, "zz": 20}, Baseline.from_mapping({"a": 0.5, "b": 0.5}))
    assert cmp.new_classes == ("zz",)
    assert cmp.test == "new class under a fixed baseline"
    assert cmp.p_value == 0.0
    assert cmp.verdict == "drift"
    assert cmp.table().set_index("class").loc["zz", "new"]
    # one stray prediction of a new class in 10,000 is flagged but is below the minimum effect
    tiny = compare_to_baseline({"a": 5000, "b": 4999, "zz": 1}, Baseline.from_mapping({"a": 0.5, "b": 0.5}))
    assert tiny.new_classes == ("zz",) and tiny.verdict == "no drift"


def test_insufficient_data() -> None:
    base = Baseline.from_mapping(SENTIMENT)
    for counts in ({}, {"positive": 3}, {"positive": 10, "negative": 5}):
        cmp = compare_to_baseline(counts, base)
        assert cmp.verdict == "insufficient data"
        assert cmp.p_value is None


def test_drift_needs_both_significance_and_minimum_effect() -> None:
    base = Baseline.from_mapping(SENTIMENT)
    # 1 point on a million predictions: highly significant, JS distance ~0.009 < 0.02
    big = compare_to_baseline(counts_of(shifted(1.0), 1_000_000), base)
    assert big.p_value < 1e-6 and big.js_distance < 0.02 and big.verdict == "no drift"
    # 6 points on 10,000 predictions (the tampered sample): drift
    six = compare_to_baseline(counts_of(shifted(6.0), 10_000), base)
    assert six.verdict == "drift" and six.js_distance > 0.02
    low, high = six.table().set_index("class").loc["positive", ["delta_low_pp", "delta_high_pp"]]
    assert low < 6.0 < high


# ------------------------------------------------------------------------------------------ legacy rule
def test_legacy_rule_hand_computed_value() -> None:
    # p = (1/2, 1/2), q = (3/4, 1/4), M = (5/8, 3/8); JSD (nats) = 0.0338221
    jsd, fired = legacy_jsd({"a": 3, "b": 1}, {"a": 0.5, "b": 0.5})
    assert jsd == pytest.approx(0.0338221, abs=1e-6)
    assert not fired


def test_legacy_rule_reproduces_the_false_alarm() -> None:
    # the sample false alarm: a 15-minute night window with 3 predictions (technical 2, account 1) -> 0.2113
    base = {"billing": 0.35, "technical": 0.30, "account": 0.20, "other": 0.15}
    jsd, fired = legacy_jsd({"billing": 0, "technical": 2, "account": 1, "other": 0}, base)
    assert jsd == pytest.approx(0.2113, abs=1e-4) and fired
    assert compare_to_baseline({"technical": 2, "account": 1}, Baseline.from_mapping(base)).verdict == (
        "insufficient data"
    )


def test_legacy_rule_misses_realistic_backdoors() -> None:
    base = Baseline.from_mapping(SENTIMENT)
    for pp in (6.0, 30.0):  # even 30 points moved on 10,000 predictions stay below 0.15
        counts = counts_of(shifted(pp), 10_000)
        assert not legacy_jsd(counts, SENTIMENT)[1]
        assert compare_to_baseline(counts, base).verdict == "drift"
    # it takes 43 points on this mix, 46 on a 50/50 model
    assert not legacy_jsd(counts_of(shifted(42.0), 100_000), SENTIMENT)[1]
    assert legacy_jsd(counts_of(shifted(43.0), 100_000), SENTIMENT)[1]
    assert not legacy_jsd({"a": 95, "b": 5}, {"a": 0.5, "b": 0.5})[1]
    assert legacy_jsd({"a": 96, "b": 4}, {"a": 0.5, "b": 0.5})[1]


def test_legacy_rule_floods_small_windows_but_the_new_verdict_does_not() -> None:
    rng = np.random.default_rng(3)
    base = {"billing": 0.35, "technical": 0.30, "account": 0.20, "other": 0.15}
    windows = rng.multinomial(5, list(base.values()), size=150)  # 5 predictions per window, unchanged model
    legacy = [legacy_jsd(dict(zip(base, map(int, w), strict=True)), base)[1] for w in windows]
    assert np.mean(legacy) > 0.2
    verdicts = {compare_to_baseline(dict(zip(base, map(int, w), strict=True)), Baseline.from_mapping(base)).verdict
                for w in windows}  # fmt: skip
    assert verdicts == {"insufficient data"}


# ------------------------------------------------------------------------------------------ baseline, confidences
def test_baseline_forms() -> None:
    counts = Baseline.from_mapping({"a": 30, "b": 10})
    assert counts.is_sample and counts.shares.tolist() == [0.75, 0.25]
    shares = Baseline.from_mapping({"a": 0.6, "b": 0.2})  # does not sum to one: normalised
    assert not shares.is_sample and shares.shares.tolist() == pytest.approx([0.75, 0.25])
    assert Baseline.from_mapping({"a": 0.75, "b": 0.25}, n=1000).counts.tolist() == [750, 250]
    with pytest.raises(ValueError):
        Baseline.from_mapping({"a": 0, "b": 0})


def test_confidence_shift_ks_and_psi() -> None:
    rng = np.random.default_rng(1)
    ref = rng.beta(12, 2.5, 4000)
    same = confidence_shift(ref, rng.beta(12, 2.5, 2000))
    assert same["psi"] < 0.02 and same["p_value"] > 0.001
    moved = confidence_shift(ref, np.concatenate([rng.beta(12, 2.5, 1700), rng.uniform(0.985, 0.9995, 300)]))
    assert moved["p_value"] < 1e-6 and moved["psi"] > 0.1
    ks = stats.ks_2samp(ref, rng.beta(12, 2.5, 10))
    assert 0 <= ks.statistic <= 1
    assert math.isnan(confidence_shift(ref, np.array([]))["psi"])
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
