"""The drift explorer on real predictions: re-running only the drift analysis with other options leaves the run's
report untouched and is memoised; the window changes the window table and the figures; significance and minimum
effect change the onset text and the verdict where they should (the tampered sample, built stale and clean cases)
and not where they should not (no browser here; tests/browser/ drives it in JupyterLab)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.drift import analysis
from workbench.drift.simulate import simulate_stream
from workbench.explore.common import Explorer
from workbench.explore.drift import (
    WINDOW_TABLE_COLUMNS,
    DriftRuns,
    drift_defaults,
    drift_explorer,
    drift_figures,
    onset_text,
    rerun,
    window_rows,
)
from workbench.investigation import Investigation

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
BASELINE = {"positive": 0.55, "negative": 0.30, "neutral": 0.15}


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"), write=False)


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'")


def _case(root: Path, shares: dict[str, float], *, shift_pp: float = 0.0, seed: int = 1) -> Path:
    """A case holding only predictions (simulated: 3000 over 10 days) and the baseline."""
    sim = simulate_stream(seed=seed, n=3000, days=10, shares=shares, shift_pp=shift_pp, target="positive")
    folder = root / "predictions"
    folder.mkdir(parents=True)
    lines = [json.dumps({"timestamp": pd.Timestamp(t, tz="UTC").isoformat().replace("+00:00", "Z"),
                         "predicted_class": c, "confidence": round(float(p), 4), "request_id": f"r{i}"})
             for i, (t, c, p) in enumerate(zip(sim.timestamps, sim.labels, sim.confidence, strict=True))]  # fmt: skip
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "baseline_distribution.json").write_text(json.dumps(BASELINE), encoding="utf-8")
    return root


def _open(root: Path, out: Path, **params) -> Investigation:
    return Investigation.open(root, out, parameters=params or None, write=False)


# ------------------------------------------------------------------------------------------------ the logic
def test_defaults_are_the_runs_options(inv, tmp_path):
    assert drift_defaults(inv) == ("1d", 0.05, 0.02)
    other = _open(_case(tmp_path / "c", BASELINE), tmp_path / "out", drift_window="6h", drift_min_effect=0.05)
    assert drift_defaults(other) == ("6h", 0.05, 0.05)
    explorer = drift_explorer(other)
    assert (explorer["window"].value, explorer["alpha"].value, explorer["min_effect"].value) == ("6h", 0.05, 0.05)
    assert explorer["runs"].computed == 0  # the run's own report, shown as it is
    assert explorer["state"]["report"] is other.results["drift"].data["report"]


def test_rerun_leaves_the_runs_report_untouched(inv):
    report = inv.results["drift"].data["report"]
    before = (report.stream.times.copy(), report.stream.codes.copy(), list(report.stream.limits), report.window,
              report.windows.copy(), report.verdict)  # fmt: skip
    again = rerun(report, "1h", 0.05, 0.02)
    assert again is not report and again.stream is not report.stream
    assert np.array_equal(report.stream.times, before[0]) and np.array_equal(report.stream.codes, before[1])
    assert report.stream.limits == before[2] and report.window == before[3] and report.verdict == before[5]
    assert report.windows.equals(before[4])
    assert not again.stream.times.flags.writeable  # a view: the arrays are shared, never written


def test_a_widened_window_is_noted_in_the_copy_only(inv, monkeypatch):
    from workbench.drift import windows

    report = inv.results["drift"].data["report"]
    monkeypatch.setattr(windows, "MAX_WINDOWS", 20)  # 298 one-hour windows: widened, noted in the copy's limits
    again = rerun(report, "1h", 0.05, 0.02)
    assert again.stream.limits == ["window 1h gives more than 20 windows over these records: widened to 16h"]
    assert again.window == "16h" and report.stream.limits == [] and report.window == "1d"


def test_the_same_options_twice_are_not_recomputed(inv, monkeypatch):
    report = inv.results["drift"].data["report"]
    calls = []
    real = analysis.analyse_stream
    monkeypatch.setattr(analysis, "analyse_stream", lambda *a, **k: calls.append(k) or real(*a, **k))
    runs = DriftRuns(report, ("1d", 0.05, 0.02))
    assert runs.get("1d", 0.05, 0.02) is report and calls == []
    six = runs.get("6h", 0.05, 0.02)
    assert runs.get("6h", 0.05, 0.02) is six and runs.get(" 6h ", 0.05, 0.02) is six
    assert len(calls) == 1 and calls[0]["window"] == "6h" and calls[0]["legacy_threshold"] == report.legacy_threshold
    runs.get("6h", 0.01, 0.02)
    assert len(calls) == 2 and runs.computed == 2


def test_window_changes_the_table_and_the_effect_figure(inv):
    report = inv.results["drift"].data["report"]
    day, six = window_rows(report), window_rows(rerun(report, "6h", 0.05, 0.02))
    assert list(day.columns) == WINDOW_TABLE_COLUMNS and len(day) == 13 and len(six) == 50
    assert day["start"].iloc[0] == "2026-11-07T00:00:00Z" and six["start"].iloc[1] == "2026-11-07T06:00:00Z"
    fig_day, fig_six = drift_figures(report, 0.02)["effect"], drift_figures(rerun(report, "6h", 0.05, 0.02), 0.02)
    assert sum(len(t.x) for t in fig_day.data[1:]) == 13 and sum(len(t.x) for t in fig_six["effect"].data[1:]) == 50
    assert "per 6h window" in fig_six["effect"].layout.title.text


def test_significance_turns_the_tampered_onset_off(inv):
    report = inv.results["drift"].data["report"]
    text = _plain(onset_text(report, 0.02))
    assert text.startswith("drift: change point found") and "Onset 2026-11-13T23:59:27Z (95% interval " in text
    strict = rerun(report, "1d", 0.001, 0.02)  # 199 permutations: p cannot go below 0.005
    assert strict.verdict == "no drift" and "No onset" in _plain(onset_text(strict))
    assert "at alpha 0.001" in _plain(onset_text(strict))
    assert rerun(report, "1d", 0.1, 0.02).scan.onset == report.scan.onset  # looser: the same onset


def test_minimum_effect_decides_a_stale_baseline(tmp_path):
    stale = {"positive": 0.66, "negative": 0.22, "neutral": 0.12}  # shifted before the first record
    inv = _open(_case(tmp_path / "stale", stale), tmp_path / "out")
    report = inv.results["drift"].data["report"]
    assert not report.scan.changed and report.verdict == "drift"
    assert "whole stream differs from the baseline" in report.reason
    big = rerun(report, "1d", 0.05, 0.2)
    assert big.verdict == "no drift" and _plain(onset_text(big)).startswith("no drift")
    assert (window_rows(big)["verdict"] == "drift").sum() == 0 < (window_rows(report)["verdict"] == "drift").sum()


def test_a_clean_stream_stays_clean_under_other_options(tmp_path):
    inv = _open(_case(tmp_path / "clean", BASELINE, seed=4), tmp_path / "out")
    report = inv.results["drift"].data["report"]
    assert report.verdict == "no drift"
    for alpha, effect in ((0.01, 0.005), (0.05, 0.01), (0.001, 0.2), (0.05, 0.05)):
        again = rerun(report, "1d", alpha, effect)
        assert again.verdict == "no drift" and not again.scan.changed, (alpha, effect)


def test_a_shift_inside_the_records_has_an_onset_near_the_truth(tmp_path):
    inv = _open(_case(tmp_path / "shift", BASELINE, shift_pp=15.0), tmp_path / "out")
    report = inv.results["drift"].data["report"]
    assert report.scan.changed and not report.scan.onset_censored
    lo, hi = report.scan.onset_interval
    truth = pd.Timestamp(simulate_stream(seed=1, n=3000, days=10, shift_pp=15.0, target="positive").onset)
    assert lo - pd.Timedelta("1D") <= truth <= hi + pd.Timedelta("1D")
    assert "Onset " in _plain(onset_text(report))


# ----------------------------------------------------------------------------------------------- the widget
def test_widget_controls_rerun_and_redraw(inv):
    explorer = drift_explorer(inv)
    assert isinstance(explorer, Explorer)
    for part, css in (("window", "wb-drift-window"), ("alpha", "wb-drift-alpha"),
                      ("min_effect", "wb-drift-min-effect"), ("onset", "wb-drift-onset")):  # fmt: skip
        assert css in explorer[part]._dom_classes
    first, table = explorer["onset"].value, explorer["table"].value
    assert "1 of 13 1d windows show drift" in _plain(first)
    effect = explorer["figures"]["effect"]
    assert sum(len(t.x) for t in effect.data[1:]) == 13
    explorer["window"].value = "6h"
    assert explorer["onset"].value != first and "of 50 6h windows" in _plain(explorer["onset"].value)
    assert explorer["table"].value != table and sum(len(t.x) for t in effect.data[1:]) == 50
    assert "re-run in" in explorer["status"].value and explorer["runs"].computed == 1
    explorer["alpha"].value = 0.001
    assert _plain(explorer["onset"].value).startswith("no drift") and explorer["runs"].computed == 2
    assert not any(s.type == "line" and s.line.dash == "dash" for s in explorer["figures"]["shares"].layout.shapes)
    explorer["alpha"].value = 0.05
    assert "not recomputed" in explorer["status"].value and explorer["runs"].computed == 2
    explorer["window"].value = "1d"
    assert explorer["onset"].value == first and "own analysis" in _plain(explorer["status"].value)
    assert "1 of 13 1d windows" in _plain(explorer.static()) and "plotly" in explorer.static()


def test_widget_pages_and_exports_the_window_table(inv):
    explorer = drift_explorer(inv)
    explorer["window"].value = "1h"
    rows = explorer["state"]["rows"]
    assert len(rows) == 298 and explorer["table"].value.count("<tr>") - 1 == 25
    explorer["pager"].children[1].click()
    assert explorer["state"]["page"] == 1
    explorer["export"].children[0].click()
    written = list((inv.out_dir / "exports").glob("drift-windows-*.csv"))
    assert len(written) == 1
    exported = pd.read_csv(written[0])
    assert list(exported.columns) == WINDOW_TABLE_COLUMNS and len(exported) == 298


def test_a_case_without_predictions_gets_a_note(tmp_path):
    (tmp_path / "case" / "logs").mkdir(parents=True)
    (tmp_path / "case" / "logs" / "ci.log").write_text("2026-11-19T08:00:00Z build ok\n")
    explorer = drift_explorer(Investigation.open(tmp_path / "case", tmp_path / "out", write=False))
    assert "No drift analysis to tune" in explorer.static() and "no prediction records" in explorer.static()
