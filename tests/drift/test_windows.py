"""Windows over time: parsing, assignment, multiple-testing correction and per-window verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.drift.metrics import Baseline
from workbench.drift.simulate import simulate_stream
from workbench.drift.windows import WINDOW_COLUMNS, adjust_p_values, class_counts, parse_window, window_table

BASE = Baseline.from_mapping({"positive": 0.55, "negative": 0.30, "neutral": 0.15})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1h", pd.Timedelta(hours=1)), ("1d", pd.Timedelta(days=1)), ("30min", pd.Timedelta(minutes=30)),
     ("2 hours", pd.Timedelta(hours=2)), ("500", 500), (250, 250)],
)  # fmt: skip
def test_parse_window(spec: str | int, expected: pd.Timedelta | int) -> None:
    assert parse_window(spec) == expected


@pytest.mark.parametrize("spec", ["0", "0h", "1x", "-1h", "h", "", "1.5h", "1w"])
def test_parse_window_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(spec)


def test_holm_hand_computed_and_bh_from_scipy() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3·0.01, 2·0.03, 1·0.04 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert adjust_p_values([0.01, 0.04, 0.03, np.nan], "holm")[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(adjust_p_values([0.01, np.nan])[1])
    assert adjust_p_values([0.01, 0.04, 0.03], "bh").tolist() == pytest.approx(
        stats.false_discovery_control([0.01, 0.04, 0.03]).tolist()
    )
    with pytest.raises(ValueError):
        adjust_p_values([0.1], "bonferroni-ish")


def _times(*values: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(values), utc=True))


def test_time_windows_are_utc_calendar_intervals() -> None:
    ts = _times("2026-11-01T00:10:00Z", "2026-11-01T00:50:00Z", "2026-11-01T02:05:00Z")
    table = window_table(ts, ["positive", "negative", "positive"], BASE, "1h")
    assert list(table.columns) == WINDOW_COLUMNS
    assert table["n"].tolist() == [2, 1]  # the empty 01:00 window is not listed
    assert table["start"].tolist() == list(_times("2026-11-01T00:00:00Z", "2026-11-01T02:00:00Z"))
    assert table["end"].iloc[0] == pd.Timestamp("2026-11-01T01:00:00Z")
    assert (table["verdict"] == "insufficient data").all() and table["low_count"].all()
    assert table["p_adjusted"].isna().all()


def test_count_windows() -> None:
    stream = simulate_stream(seed=1, n=1000)
    table = window_table(pd.DatetimeIndex(stream.timestamps).tz_localize("UTC"), stream.labels, BASE, "300")
    assert table["n"].tolist() == [300, 300, 300, 100]
    assert table["end"].iloc[-1] == pd.Timestamp(stream.timestamps[-1], tz="UTC")


def test_drifted_windows_are_found_and_corrected() -> None:
    stream = simulate_stream(seed=4, n=14_000, days=14, shift_pp=15, onset=0.5, diurnal=0)
    ts = pd.DatetimeIndex(stream.timestamps).tz_localize("UTC")
    table = window_table(ts, stream.labels, BASE, "1d")
    after = table["start"] >= stream.onset.floor("1D") + pd.Timedelta(days=1)
    assert (table.loc[after, "verdict"] == "drift").all()
    assert (table.loc[table["end"] <= stream.onset, "verdict"] == "no drift").all()
    assert (table["p_adjusted"] >= table["p_value"]).all()
    assert (table.loc[after, "top_class"] == "positive").all()
    assert not table["legacy_fired"].any()  # 15 points a day: the legacy rule stays silent


def test_unchanged_hourly_windows_rarely_flag_drift() -> None:
    stream = simulate_stream(seed=5, n=20_000, days=14)
    table = window_table(pd.DatetimeIndex(stream.timestamps).tz_localize("UTC"), stream.labels, BASE, "1h")
    assert len(table) > 300
    assert (table["verdict"] == "drift").sum() == 0  # Holm: family-wise 5 % over ~336 windows
    assert table["low_count"].any()  # quiet night hours


def test_too_many_windows_is_an_error() -> None:
    stream = simulate_stream(seed=1, n=25_000)
    with pytest.raises(ValueError, match="windows"):
        window_table(pd.DatetimeIndex(stream.timestamps).tz_localize("UTC"), stream.labels, BASE, "1")


def test_class_counts_bins_the_span() -> None:
    stream = simulate_stream(seed=2, n=5000, days=14)
    table = class_counts(pd.DatetimeIndex(stream.timestamps).tz_localize("UTC"), stream.labels, stream.classes, 200)
    assert list(table.columns) == list(stream.classes)
    assert len(table) <= 200 and table.to_numpy().sum() == 5000
