"""The prepared stream: compact columns taken from the loader's table (no copy when already in order), merged and
de-duplicated as before, at most MAX_CLASSES classes, the loader's caps carried to the drift section's coverage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.analysis import AnalysisContext
from workbench.collect import EvidenceSet
from workbench.drift import Baseline, analyse, analyse_stream, prepare_stream
from workbench.drift import stream as stream_module
from workbench.drift.stream import OTHER_CLASS
from workbench.evidence import LoadContext, Loaded, load_file, predictions

SENTIMENT = {"positive": 0.55, "negative": 0.30, "neutral": 0.15}


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n: int, *, classes=("positive", "negative", "neutral"), start: int = 0) -> list[dict]:
    return [{"timestamp": pd.Timestamp("2026-11-01T00:00:00Z", tz="UTC").value // 10**9 + 60 * i,
             "predicted_class": classes[i % len(classes)], "confidence": (i % 97) / 100, "request_id": f"q{i}"}
            for i in range(start, start + n)]  # fmt: skip


def test_sorted_single_file_is_taken_without_copy(tmp_path: Path) -> None:
    loaded = load_file(_write(tmp_path / "predictions.jsonl", _rows(500)), LoadContext("predictions.jsonl"))
    stream, warnings = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    table = loaded.meta["table"]
    assert warnings == [] and len(stream) == 500
    assert np.shares_memory(stream.times, table.time_ns) and np.shares_memory(stream.confidence, table.confidence)
    assert stream.classes == ("positive", "negative", "neutral") and stream.codes.tolist()[:4] == [0, 1, 2, 0]
    assert stream.frame["label"].tolist()[:2] == ["positive", "negative"]


def test_table_and_frame_give_the_same_stream(tmp_path: Path) -> None:
    rows = _rows(300)
    rows[10], rows[20] = rows[20], rows[10]  # out of order
    rows.append(dict(rows[5]))  # a duplicate
    loaded = load_file(_write(tmp_path / "predictions.jsonl", rows), LoadContext("predictions.jsonl"))
    from_table, w1 = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    from_frame, w2 = prepare_stream(
        [Loaded("predictions", loaded.path, loaded.frame)], Baseline.from_mapping(SENTIMENT)
    )
    assert [str(w) for w in w1] == [str(w) for w in w2]
    assert "predictions.jsonl:301: duplicate of predictions.jsonl line 6; dropped" in [str(w) for w in w1]
    for name in ("times", "codes", "confidence", "line", "source"):
        assert np.array_equal(getattr(from_table, name), getattr(from_frame, name), equal_nan=True), name


def test_duplicates_across_files_with_missing_confidence(tmp_path: Path) -> None:
    a = _rows(100)
    for r in a:
        r.pop("confidence")
    b = [dict(r) for r in a[40:60]] + _rows(50, start=100)
    first = load_file(_write(tmp_path / "a.jsonl", a), LoadContext("a.jsonl"))
    second = load_file(_write(tmp_path / "b.jsonl", b), LoadContext("b.jsonl"))
    stream, warnings = prepare_stream([second, first], Baseline.from_mapping(SENTIMENT))
    assert len(stream) == 150  # the 20 rows of b.jsonl also in a.jsonl (NaN confidences alike) are dropped once
    text = [str(w) for w in warnings]
    assert "b.jsonl:1: duplicate of a.jsonl line 41; dropped" not in text  # b.jsonl comes first: a's copy goes
    assert "a.jsonl:41: duplicate of b.jsonl line 1; dropped" in text
    assert any(w.reason == "2 prediction files merged into one stream" for w in warnings)
    assert (np.diff(stream.times) >= 0).all()


def test_more_classes_than_the_cap_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "MAX_CLASSES", 5)
    classes = [f"c{i}" for i in range(12)]
    rows = _rows(2400, classes=["positive"] * 6 + ["negative"] * 3 + ["neutral"] * 2 + classes)
    loaded = load_file(_write(tmp_path / "predictions.jsonl", rows), LoadContext("predictions.jsonl"))
    stream, _ = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    assert len(stream.classes) == 5 and stream.classes[:3] == ("positive", "negative", "neutral")
    assert OTHER_CLASS in stream.classes and stream.baseline is not None
    assert stream.baseline.labels == ("positive", "negative", "neutral", OTHER_CLASS)
    assert stream.baseline.shares.tolist() == pytest.approx([0.55, 0.30, 0.15, 0.0])
    assert stream.limits == [f"15 classes: the 11 rarest are analysed together as {OTHER_CLASS!r} (at most 5 classes)"]
    assert stream.classes == ("positive", "negative", "neutral", OTHER_CLASS, "c0")
    assert int(np.bincount(stream.codes)[3]) == 11 * (2400 // 23)  # c1 to c11
    report = analyse_stream(stream, Baseline.from_mapping(SENTIMENT))
    json.dumps(report.to_dict(), allow_nan=False)


def test_records_left_out_by_the_loader_make_the_section_partial(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(predictions, "MAX_ROWS", 200)
    monkeypatch.setattr(predictions, "_CHUNK", 50)
    loaded = load_file(_write(tmp_path / "predictions.jsonl", _rows(500)), LoadContext("predictions/p.jsonl"))
    evidence = EvidenceSet()
    evidence.by_kind["predictions"].append(loaded)
    result = analyse(AnalysisContext(case=None, evidence=evidence))  # type: ignore[arg-type]
    assert result.unexamined == ["predictions/p.jsonl: 300 records of lines 101 to 400 not analysed (over the cap "
                                 "of 200 records: the first and the last 100 are)"]  # fmt: skip
    assert result.data["report"].stream.line.tolist() == [*range(1, 101), *range(401, 501)]


def test_lone_surrogate_label_reaches_the_json_document(tmp_path: Path) -> None:
    text = "".join(json.dumps(r) + "\n" for r in _rows(400)).replace('"neutral"', '"neu\\ud800tral"')
    path = tmp_path / "predictions.jsonl"
    path.write_text(text, encoding="utf-8")
    loaded = load_file(path, LoadContext("predictions.jsonl"))
    stream, _ = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    assert "neu\ufffdtral" in stream.classes
    doc = json.dumps(analyse_stream(stream, Baseline.from_mapping(SENTIMENT)).to_dict(), ensure_ascii=False)
    doc.encode("utf-8")  # valid Unicode all the way


def test_records_over_too_many_windows_widen_the_window(tmp_path: Path) -> None:
    """One record a day for 25,000 days (a hostile spread of timestamps): 1d windows would be 25,000 windows, over
    the cap; the analysis widens them instead of failing, and says so."""
    rows = [
        {"timestamp": 86_400 * (400 + i), "predicted_class": ("positive", "negative")[i % 2]} for i in range(25_000)
    ]
    loaded = load_file(_write(tmp_path / "predictions.jsonl", rows), LoadContext("predictions.jsonl"))
    stream, _ = prepare_stream([loaded], Baseline.from_mapping(SENTIMENT))
    report = analyse_stream(stream, Baseline.from_mapping(SENTIMENT), window="1d")
    assert report.window == "2d" and len(report.windows) == 12_500
    assert stream.limits == ["window 1d gives more than 20,000 windows over these records: widened to 2d"]
    narrow = analyse_stream(stream, Baseline.from_mapping(SENTIMENT), window="30d")
    assert narrow.window == "30d"  # fits as asked: unchanged
