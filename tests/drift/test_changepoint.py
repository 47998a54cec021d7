"""Change-point scan on simulated streams with a known truth: detection, onset error, interval coverage, rollback.

The scans here run with lighter settings than the default (99 permutations, 300 fine and 60 coarse bins) to keep
the suite fast; ``benchmarks/bench_changepoint.py`` sweeps 200 seeds with the defaults. How precisely an onset can
be located depends on the chi-square divergence δ² between the shares before and after (about ±1.5/δ² predictions,
median): the issue's targets are asserted on a 3-point shift into the 10 % class of a binary model (δ² = 0.010),
and a looser bound on a 3-point shift into the 15 % class of the sentiment model (δ² = 0.007).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.drift.changepoint import INTERVAL_C, scan_changes
from workbench.drift.simulate import simulate_stream

FAST = {"permutations": 99, "max_bins": 300, "coarse_bins": 60}
BINARY = {"majority": 0.9, "minority": 0.1}


def sweep(seeds: range, settings: dict = FAST, **scenario: object) -> dict[str, list]:
    """Scan one simulated stream per seed (onset uniform in the middle half unless given); collect the errors."""
    out: dict[str, list] = {"changed": [], "error_h": [], "covered": [], "end_error_h": [], "end_covered": [],
                            "model": [], "p": [], "excess_covered": []}  # fmt: skip
    for seed in seeds:
        rng = np.random.default_rng(seed)
        kwargs = dict(scenario)
        kwargs.setdefault("onset", float(rng.uniform(0.25, 0.75)))
        stream = simulate_stream(seed=rng, **kwargs)
        scan = scan_changes(stream.timestamps, stream.codes, stream.classes, seed=seed, **settings)
        out["changed"].append(scan.changed)
        out["p"].append(scan.p_value)
        if not scan.changed or stream.onset is None:
            continue
        out["model"].append(scan.model)
        out["error_h"].append(abs((scan.onset - stream.onset).total_seconds()) / 3600)
        out["covered"].append(scan.onset_interval[0] <= stream.onset <= scan.onset_interval[1])
        if stream.end is not None and scan.end is not None:
            out["end_error_h"].append(abs((scan.end - stream.end).total_seconds()) / 3600)
            out["end_covered"].append(scan.end_interval[0] <= stream.end <= scan.end_interval[1])
        row = scan.excess.set_index("class").loc[kwargs.get("target") or stream.classes[0]]
        out["excess_covered"].append(row["excess_low"] <= stream.flipped <= row["excess_high"])
    return out


def test_interval_constant() -> None:
    assert (1 - math.exp(-INTERVAL_C)) ** 2 == pytest.approx(0.95)
    assert abs(INTERVAL_C - 3.676) < 1e-3


def test_subtle_shift_meets_the_accuracy_targets() -> None:
    # 3 points into the 10 % class, 20,000 predictions over 14 days, daily volume cycle
    r = sweep(range(20), shift_pp=3.0, target="minority", shares=BINARY)
    assert np.mean(r["changed"]) >= 0.95
    assert np.median(r["error_h"]) < 6.0
    assert np.mean(r["covered"]) >= 0.90
    assert np.mean(r["excess_covered"]) >= 0.85


def test_subtle_shift_in_the_sentiment_model() -> None:
    # 3 points into 'neutral' (15 %) of the 55/30/15 model: detected, located within hours (information-limited)
    r = sweep(range(100, 115), shift_pp=3.0, target="neutral")
    assert np.mean(r["changed"]) >= 0.90
    assert np.median(r["error_h"]) < 10.0
    assert np.mean(r["covered"]) >= 0.85


def test_loud_shift_is_located_tightly() -> None:
    r = sweep(range(200, 210), shift_pp=10.0, target="positive")
    assert all(r["changed"])
    assert np.median(r["error_h"]) < 1.5
    assert np.mean(r["covered"]) >= 0.9
    assert r["model"].count("step") >= 9  # a spurious end needs a confirmation test at level alpha / 5
    assert np.mean(r["excess_covered"]) >= 0.8


def test_unchanged_stream_yields_no_change_point() -> None:
    # the target is a rate (at least 95 % of seeds without a change point): on 120 seeds the false-change count
    # must not be significantly above 5 %, and the permutation p-values must be uniform
    cheap = {"permutations": 99, "max_bins": 80, "coarse_bins": 20}
    r = sweep(range(300, 420), cheap, n=2000, shift_pp=0.0)
    false_changes = int(np.sum(r["changed"]))
    assert stats.binomtest(false_changes, 120, 0.05, alternative="greater").pvalue > 0.001
    assert stats.kstest(r["p"], "uniform").pvalue > 0.001


def test_shift_with_rollback_gives_onset_and_end() -> None:
    r = sweep(range(400, 408), shift_pp=6.0, target="positive", onset=0.3, end=0.6)
    assert all(r["changed"])
    assert r["model"].count("epidemic") >= 7
    assert np.median(r["error_h"]) < 6.0 and np.median(r["end_error_h"]) < 6.0
    assert np.mean(r["covered"]) >= 0.9 and np.mean(r["end_covered"]) >= 0.9


def test_shift_present_from_the_start_is_censored() -> None:
    stream = simulate_stream(seed=7, shift_pp=8.0, target="positive", onset=0.0, end=0.5, diurnal=0)
    base = np.array([0.55, 0.30, 0.15])
    scan = scan_changes(stream.timestamps, stream.codes, stream.classes, baseline_shares=base, **FAST)
    assert scan.changed and scan.onset_censored and scan.onset_interval is None
    assert scan.start == 0
    assert abs((scan.end - stream.end).total_seconds()) < 6 * 3600
    assert scan.end_interval[0] <= stream.end <= scan.end_interval[1]
    # without a baseline the later side is taken as the exposure
    plain = scan_changes(stream.timestamps, stream.codes, stream.classes, **FAST)
    assert plain.changed and not plain.onset_censored and plain.end is None


def test_excess_estimates_the_poisoned_predictions() -> None:
    stream = simulate_stream(seed=11, n=200_000, shift_pp=5.0, target="neutral", onset=0.4)
    scan = scan_changes(stream.timestamps, stream.codes, stream.classes, **FAST)
    row = scan.excess.set_index("class").loc["neutral"]
    assert row["excess"] == pytest.approx(stream.flipped, rel=0.05)
    assert row["excess_low"] <= stream.flipped <= row["excess_high"]
    assert scan.n_exposed == len(stream) - scan.start
    assert scan.excess["excess"].sum() == pytest.approx(0.0, abs=1e-6)  # excess in one class is deficit elsewhere


@pytest.mark.parametrize(
    ("times", "codes", "reason"),
    [
        ([], [], "predictions"),
        (["2026-11-01T00:00:00Z"] * 3, [0, 1, 0], "predictions"),
        (pd.date_range("2026-11-01", periods=500, freq="min", tz="UTC"), [1] * 500, "one class"),
        (["2026-11-01T00:00:00Z"] * 500, [0, 1] * 250, "same time"),
    ],
)
def test_insufficient_data(times: list, codes: list, reason: str) -> None:
    scan = scan_changes(pd.to_datetime(times, utc=True), np.array(codes, dtype=int), ("a", "b"))
    assert scan.verdict == "insufficient data" and reason in scan.reason
    assert not scan.changed and scan.p_value is None


def test_unsorted_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        scan_changes(pd.to_datetime(["2026-11-02", "2026-11-01"], utc=True), np.array([0, 1]), ("a", "b"))


def test_profile_threshold_and_reproducibility() -> None:
    stream = simulate_stream(seed=3, n=6000, shift_pp=8.0, target="neutral")
    one = scan_changes(stream.timestamps, stream.codes, stream.classes, **FAST)
    two = scan_changes(stream.timestamps, stream.codes, stream.classes, **FAST)
    assert one.changed and one.statistic > one.threshold
    assert one.p_value == two.p_value and one.onset == two.onset and one.onset_interval == two.onset_interval
    assert len(one.profile) == FAST["max_bins"] - 1
    assert one.profile["time"].is_monotonic_increasing
    assert one.onset_interval[0] <= one.onset <= one.onset_interval[1]
