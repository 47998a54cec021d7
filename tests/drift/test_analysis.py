"""The drift analysis end to end: hostile prediction files, the sample cases, findings, events, exposure, render."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.analysis import AnalysisContext
from workbench.collect import EvidenceSet
from workbench.drift import Baseline, analyse, analyse_stream, prepare_stream, render
from workbench.drift.simulate import simulate_stream
from workbench.evidence import LoadContext, Loaded, load_file
from workbench.evidence.predictions import PredictionsLoader
from workbench.timeparse import resolve_timezone

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
TAMPER = pd.Timestamp("2026-11-14T03:12:00Z")
SENTIMENT = {"positive": 0.55, "negative": 0.30, "neutral": 0.15}


def context(folder: Path, *names: str, parameters: dict | None = None) -> AnalysisContext:
    """An AnalysisContext whose evidence holds the given files of a case, loaded by the registry."""
    evidence = EvidenceSet()
    for name in names:
        loaded = load_file(folder / name, LoadContext(relpath=name))
        evidence.by_kind[loaded.kind].append(loaded)
    return AnalysisContext(case=None, evidence=evidence, parameters=parameters or {})  # type: ignore[arg-type]


def sample(case: str) -> AnalysisContext:
    folder = SAMPLES / case
    if not folder.is_dir():
        pytest.skip("evidence-samples not generated")
    pred = next(p.name for p in (folder / "predictions").iterdir() if p.name.startswith("predictions."))
    return context(folder, f"predictions/{pred}", "predictions/baseline_distribution.json")


def loaded_from(sim_frame: pd.DataFrame, path: str = "predictions.jsonl") -> Loaded:
    return Loaded("predictions", path, sim_frame)


# ------------------------------------------------------------------------------------------ hostile input
def test_prepare_stream_sorts_deduplicates_and_warns(tmp_path: Path) -> None:
    rows = [
        {"timestamp": "2026-11-01T10:00:00Z", "predicted_class": "positive", "request_id": "r1", "confidence": 0.9},
        {"timestamp": "2026-11-01T09:00:00Z", "predicted_class": " negative ", "request_id": "r2"},  # earlier
        {"timestamp": "2026-11-01T10:00:00Z", "predicted_class": "positive", "request_id": "r1", "confidence": 0.9},
        {"timestamp": "yesterday", "predicted_class": "neutral", "request_id": "r3"},
        {"timestamp": "2026-11-01T11:00:00", "predicted_class": "neutral", "request_id": "r4"},  # naive
        {"timestamp": "2026-11-01T12:00:00Z", "predicted_class": "", "request_id": "r5"},
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    loaded = load_file(path, LoadContext(relpath="predictions.jsonl"))
    stream, warnings = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    assert stream.frame["label"].tolist() == ["negative", "positive", "neutral"]
    assert stream.frame["line"].tolist() == [2, 1, 5]
    assert stream.frame["timestamp"].iloc[-1] == pd.Timestamp("2026-11-01T11:00:00Z")  # naive read as UTC
    assert stream.codes.tolist() == [1, 0, 2]
    text = [str(w) for w in warnings]
    assert "predictions.jsonl:3: duplicate of predictions.jsonl line 1; dropped" in text
    assert any(w.line == 2 and "out of time order" in w.reason for w in warnings)
    assert any(w.line is None and "without a usable time or label" in w.reason for w in warnings)
    # the loader warned per line for the bad time, the missing label and the broken JSON
    assert {w.line for w in loaded.warnings} >= {4, 6, 7}


def test_naive_timestamps_follow_the_case_rule(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"timestamp": "2026-11-01T11:00:00", "label": "a", "request_id": "x"}) + "\n")
    ctx = LoadContext(relpath="predictions.jsonl", naive_tz=resolve_timezone("Europe/Berlin"))
    stream, _ = prepare_stream([load_file(path, ctx)])
    assert stream.frame["timestamp"].iloc[0] == pd.Timestamp("2026-11-01T10:00:00Z")


def test_baseline_shares_not_summing_to_one_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "baseline_distribution.json"
    path.write_text(json.dumps({"positive": 0.5, "negative": 0.3, "neutral": 0.1}))
    loaded = load_file(path, LoadContext(relpath="baseline_distribution.json"))
    assert any("normalised" in w.reason for w in loaded.warnings)
    assert Baseline.from_loaded(loaded).shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("labels", [[], ["positive"] * 400])
def test_empty_or_one_class_stream_is_insufficient_data(labels: list[str]) -> None:
    times = pd.date_range("2026-11-01", periods=len(labels), freq="min", tz="UTC")
    frame = PredictionsLoader().make_frame({"line": list(range(1, len(labels) + 1)), "timestamp": list(times),
                                            "label": labels})  # fmt: skip
    stream, _ = prepare_stream([loaded_from(frame)], Baseline.from_mapping(SENTIMENT))
    report = analyse_stream(stream, Baseline.from_mapping(SENTIMENT))
    assert report.verdict == "insufficient data"
    assert report.exposure() is None and report.findings == [] and report.events == []
    assert "insufficient data" in report.summary
    json.dumps(report.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------------------ the sample cases
def test_tampered_sample_onset_near_the_tamper_time() -> None:
    result = analyse(sample("tampered-weights"))
    exposure = result.data["report"].exposure()
    assert exposure is not None
    shift = result.outputs.shift
    assert shift.onset.isoformat(timespec="milliseconds").replace("+00:00", "Z") == exposure["onset"]
    assert shift.onset_low <= TAMPER.to_pydatetime() <= shift.onset_high
    assert result.inputs == ["predictions/predictions.jsonl", "predictions/baseline_distribution.json"]
    onset = pd.Timestamp(exposure["onset"])
    assert abs(onset - TAMPER) < pd.Timedelta(hours=6)
    low, high = (pd.Timestamp(t) for t in exposure["onset_interval"])
    assert low <= TAMPER <= high
    assert exposure["onset"].endswith("Z") and exposure["end"] is None
    assert 3800 <= exposure["predictions"] <= 4800  # 4240 served after the tamper
    pos = exposure["excess_by_class"]["positive"]
    assert pos["low"] <= 4240 * (0.606 - 0.543) <= pos["high"]  # ~267 predictions flipped to 'positive'
    (finding,) = result.findings
    assert finding.category == "behavior_drift" and finding.severity.value == "high"
    assert finding.atlas == ("AML.T0018.000", "AML.T0031")
    assert finding.evidence["path"] == "predictions/predictions.jsonl"
    kinds = {e.kind: e for e in result.events}
    assert kinds["ml:drift:onset"].timestamp_desc == "Estimated Drift Onset"
    assert kinds["ml:drift:onset"].ref == finding.id
    assert "ml:drift:end" not in kinds
    assert "statistical estimate" in result.summary and "exposed" not in result.summary


@pytest.mark.parametrize("case", ["false-alarm", "poisoned-dependency"])
def test_samples_without_drift(case: str) -> None:
    result = analyse(sample(case))
    report = result.data["report"]
    assert report.verdict == "no drift"
    assert report.exposure() is None and result.outputs.shift is None
    assert result.findings == [] and result.events == []
    assert result.outputs.total == len(report.stream)  # the records are there for the conclusions all the same
    assert not report.overall.legacy_fired


def test_rollback_gives_end_event_and_new_class_finding() -> None:
    sim = simulate_stream(seed=21, n=12_000, shift_pp=12.0, target="positive", onset=0.3, end=0.6)
    frame = sim.frame()
    frame.loc[::300, "label"] = "<b>unknown</b>"  # a new class, spread over the whole stream
    stream, _ = prepare_stream([loaded_from(frame)], Baseline.from_mapping(SENTIMENT))
    report = analyse_stream(stream, Baseline.from_mapping(SENTIMENT), window="12h")
    kinds = [e.kind for e in report.events]
    assert "ml:drift:onset" in kinds and "ml:drift:end" in kinds and "ml:drift:detected" in kinds
    assert abs(pd.Timestamp(report.exposure()["end"]) - sim.end) < pd.Timedelta(hours=3)
    new = [f for f in report.findings if "absent from the baseline" in f.title]
    assert len(new) == 1 and new[0].severity.value == "medium"
    doc = report.to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False))["exposure"]["end"] == report.exposure()["end"]
    assert {"start", "end", "n", "js_distance", "p_adjusted", "verdict"} <= set(doc["windows"][0])


def test_analyse_without_predictions_or_baseline(tmp_path: Path) -> None:
    empty = analyse(AnalysisContext(case=None, evidence=EvidenceSet()))  # type: ignore[arg-type]
    assert empty.section == "drift" and empty.outputs is None and "No prediction" in empty.summary
    assert empty.not_applicable == "no prediction records in the case"
    sim = simulate_stream(seed=2, n=5000, shift_pp=15.0, target="neutral", onset=0.5)
    evidence = EvidenceSet()
    evidence.by_kind["predictions"].append(loaded_from(sim.frame()))
    result = analyse(AnalysisContext(case=None, evidence=evidence))  # type: ignore[arg-type]
    report = result.data["report"]
    assert report.baseline is None and report.windows.empty and report.overall is None
    assert result.outputs.shift is not None  # the scan needs no baseline


def test_legacy_threshold_comes_from_the_monitor_config(tmp_path: Path) -> None:
    folder = SAMPLES / "false-alarm"
    if not folder.is_dir():
        pytest.skip("evidence-samples not generated")
    ctx = context(folder, "predictions/predictions.jsonl", "predictions/baseline_distribution.json",
                  "monitor/config.json", parameters={"drift_window": "6h"})  # fmt: skip
    report = analyse(ctx).data["report"]
    assert report.legacy_threshold == 0.15 and report.window == "6h"
    assert len(report.windows) > 40


# ------------------------------------------------------------------------------------------ render
def test_render_escapes_and_draws_light_utc_figures() -> None:
    sim = simulate_stream(seed=4, n=4000, shift_pp=12.0, target="neutral", onset=0.5)
    frame = sim.frame()
    frame.loc[100:140, "label"] = "<script>alert(1)</script>"
    evidence = EvidenceSet()
    evidence.by_kind["predictions"].append(loaded_from(frame))
    evidence.by_kind["baseline_distribution"].append(
        Loaded("baseline_distribution", "baseline.json",
               pd.DataFrame({"label": list(SENTIMENT), "share": list(SENTIMENT.values()), "count": [None] * 3}))
    )  # fmt: skip
    items = render(analyse(AnalysisContext(case=None, evidence=evidence)))  # type: ignore[arg-type]
    figures = [i for i in items if isinstance(i, go.Figure)]
    html = "".join(i for i in items if isinstance(i, str))
    assert len(figures) == 5
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    for fig in figures:
        assert fig.layout.xaxis.title.text is None or "UTC" in fig.layout.xaxis.title.text or fig.data[0].type == "bar"
    assert sum(len(f.to_json()) for f in figures) < 400_000
    stacked = next(f for f in figures if "stacked" in f.layout.title.text)
    assert len(stacked.layout.shapes) >= 2  # exposure window, onset interval, onset line
    assert np.all([len(t.x) <= 600 for f in figures for t in f.data if t.x is not None])
