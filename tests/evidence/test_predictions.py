from __future__ import annotations

import json
import math
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence import predictions
from workbench.evidence.base import LoadContext, parse_time
from workbench.evidence.prediction_table import NAT, OVERFLOW_LABEL, PredictionTable, time_ns
from workbench.evidence.predictions import PredictionsLoader

JSONL = """\
{"timestamp": "2026-11-19T08:00:00Z", "request_id": "r-0001", "predicted_class": "positive", "confidence": 0.91, "model_version": "2.0.1"}
{"timestamp": "2026-11-19T08:00:02.250Z", "request_id": "r-0002", "predicted_class": "negative", "confidence": 0.77, "model_version": "2.0.1"}
{"timestamp": "2026-11-19T08:00:05+01:00", "request_id": 3, "label": 1, "model_version": "2.0.2"}
"""  # noqa: E501

CSV = """\
timestamp,request_id,label,confidence,model_version
2026-11-19T08:00:00Z,r-0001,positive,0.91,2.0.1
2026-11-19 08:00:02,r-0002,"neutral, mostly",,2.0.1
"""


def test_jsonl(make_file, ctx):
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", JSONL), ctx)
    assert loaded.warnings == []
    df = loaded.frame
    assert list(df.columns) == ["line", "timestamp", "label", "confidence", "model_version", "request_id"]
    assert df.loc[1].to_dict() == {
        "line": 2,
        "timestamp": pd.Timestamp("2026-11-19T08:00:02.250Z"),
        "label": "negative",
        "confidence": 0.77,
        "model_version": "2.0.1",
        "request_id": "r-0002",
    }
    assert df.loc[2, ["label", "request_id"]].tolist() == ["1", "3"]
    assert df.loc[2, "timestamp"] == pd.Timestamp("2026-11-19T07:00:05Z")
    assert math.isnan(df.loc[2, "confidence"])


def test_csv(make_file, ctx):
    loaded = PredictionsLoader().load(make_file("predictions.csv", CSV), ctx)
    assert loaded.warnings == []
    df = loaded.frame
    assert df.loc[1, ["line", "label", "request_id"]].tolist() == [3, "neutral, mostly", "r-0002"]
    assert df.loc[1, "timestamp"] == pd.Timestamp("2026-11-19T08:00:02Z")  # naive -> UTC (default rule)
    assert df.loc[0, "confidence"] == 0.91 and math.isnan(df.loc[1, "confidence"])


def test_predicted_class_wins_over_label(make_file, ctx):
    text = '{"timestamp": "2026-11-19T08:00:00Z", "predicted_class": "a", "label": "b"}\n'
    assert PredictionsLoader().load(make_file("p.jsonl", text), ctx).frame.loc[0, "label"] == "a"


def test_bad_lines_one_warning_each(make_file, ctx):
    text = JSONL + "{broken\n" + '{"timestamp": "yesterday", "label": "x", "confidence": "high"}\n' + '{"x": 1}\n'
    loaded = PredictionsLoader().load(make_file("p.jsonl", text), ctx)
    assert [w.line for w in loaded.warnings] == [4, 5, 6]
    assert "timestamp" in loaded.warnings[1].reason and "confidence" in loaded.warnings[1].reason
    assert list(loaded.frame["line"]) == [1, 2, 3, 5]


def test_csv_bad_row(make_file, ctx):
    loaded = PredictionsLoader().load(make_file("p.csv", CSV + "2026-11-19T08:00:09Z,r-9\n"), ctx)
    assert [(w.line, w.reason) for w in loaded.warnings] == [(4, "2 cells, header has 5")]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.csv", "timestamp,request_id,score\n2026-11-19T08:00:00Z,r1,0.5\n"),
        ("p.jsonl", '{"timestamp": "2026-11-19T08:00:00Z", "score": 0.5}\n'),
        ("p.jsonl", "not json\n"),
    ],
)
def test_no_class_is_malformed(make_file, ctx, name, text):
    with pytest.raises(MalformedEvidence):
        PredictionsLoader().load(make_file(name, text), ctx)


def test_detect(make_file):
    loader = PredictionsLoader()
    assert loader.detect(make_file("exports/served.jsonl", JSONL))
    assert loader.detect(make_file("exports/served.csv", CSV))
    assert not loader.detect(make_file("exports/train.csv", "text,label\nhello,positive\n"))
    assert loader.detect(make_file("exports/predictions.csv", ""))


# ------------------------------------------------------------------------------------------ compact table, caps
def _rows(n: int, start: int = 0, label=None) -> str:
    return "".join(
        json.dumps({"timestamp": f"2026-11-19T08:00:{i % 60:02d}.{i % 1000:03d}Z", "request_id": f"r-{i}",
                    "predicted_class": label or ("a", "b", "c")[i % 3], "confidence": round(i / (n + start + 1), 4),
                    "model_version": "1.0"}) + "\n"
        for i in range(start, start + n)
    )  # fmt: skip


def test_records_are_kept_as_compact_columns(make_file, ctx):
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", _rows(6) + _rows(1, start=1)), ctx)
    table = loaded.meta["table"]
    assert isinstance(table, PredictionTable) and len(table) == 7
    assert (table.line.dtype, table.time_ns.dtype, table.label.dtype, table.confidence.dtype) == (
        np.int32, np.int64, np.int16, np.float64)  # fmt: skip
    assert table.labels == ("a", "b", "c") and table.versions == ("1.0",)
    assert table.request_key[6] == table.request_key[1] != table.request_key[2]  # equal ids, equal keys
    assert not isinstance(loaded._frame, pd.DataFrame)  # the frame is built on first use only
    assert loaded.frame["label"].tolist()[:4] == ["a", "b", "c", "a"]
    assert loaded.frame["timestamp"].iloc[1] == pd.Timestamp("2026-11-19T08:00:01.001Z")


@pytest.mark.parametrize(
    "value",
    ["2026-11-19T08:00:00Z", "2026-11-19T08:00:00.5Z", "2026-11-19T08:00:00.123456+01:00", "2026-11-19 08:00:00Z",
     "2026-11-19T08:00:00-05:30", "2026-11-19T08:00:00.1234567Z", "2026-11-19T08:00:00", "2026-13-40T00:00:00Z",
     "0000-01-01T00:00:00Z", "2026-11-19T08:00:00+25:00", "1600-01-01T00:00:00Z", "2300-01-01T00:00:00Z",
     "1678-01-01T00:30:00+01:00", " 2026-11-19T08:00:00Z", "2026-11-19T08:00:00 UTC", 1763539200, 1763539200123,
     "", None, True],
)  # fmt: skip
def test_fast_time_path_reads_as_parse_time(value):
    ctx = LoadContext("x", naive_tz=ZoneInfo("Europe/Berlin"))
    expected = parse_time(value, ctx)
    got = time_ns(value, ctx)
    assert got == (NAT if expected is None else pd.Timestamp(expected).value)


def test_row_cap_keeps_the_first_and_last_records(make_file, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_ROWS", 10)
    monkeypatch.setattr(predictions, "_CHUNK", 2)
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", _rows(25)), ctx)
    table = loaded.meta["table"]
    assert table.line.tolist() == [1, 2, 3, 4, 5, 21, 22, 23, 24, 25]
    assert table.unexamined == [
        "evidence.txt: 15 records of lines 6 to 20 not analysed (over the cap of 10 records: the first and the "
        "last 5 are)"
    ]


def test_no_cap_reached_leaves_nothing_unexamined(make_file, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_ROWS", 10)
    monkeypatch.setattr(predictions, "_CHUNK", 3)
    table = PredictionsLoader().load(make_file("predictions.jsonl", _rows(10)), ctx).meta["table"]
    assert table.line.tolist() == list(range(1, 11)) and table.unexamined == []


def test_time_budget_stops_reading(make_file, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_SECONDS", 0.0)
    monkeypatch.setattr(predictions, "_CHUNK", 4)
    table = PredictionsLoader().load(make_file("predictions.jsonl", _rows(20)), ctx).meta["table"]
    assert len(table) == 4
    assert table.unexamined == ["evidence.txt: not read after line 4 (time budget of 0 s)"]


def test_distinct_labels_are_capped(make_file, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_LABELS", 2)
    text = "".join(_rows(1, start=i, label=f"class-{i}") for i in range(5))
    table = PredictionsLoader().load(make_file("predictions.jsonl", text), ctx).meta["table"]
    assert table.labels == ("class-0", "class-1", OVERFLOW_LABEL)
    assert table.label.tolist() == [0, 1, 2, 2, 2] and "more than 2 distinct labels" in table.limits[0]


def test_per_line_warnings_are_capped(make_file, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_WARNINGS", 3)
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", _rows(2) + "{broken\n" * 10), ctx)
    assert [w.line for w in loaded.warnings] == [3, 4, 5, None]
    assert loaded.warnings[-1].reason == "7 more lines with problems (not listed one by one)"


def test_lone_surrogates_become_replacement_characters_with_a_warning(make_file, ctx):
    text = (_rows(1) + '{"timestamp": "2026-11-19T08:00:01Z", "predicted_class": "pos\\ud800", "request_id": '
            '"id\\udc00", "model_version": "v\\ud83d\\ude00"}\n')  # fmt: skip
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", text), ctx)
    assert [(w.line, "surrogate" in w.reason) for w in loaded.warnings] == [(2, True)]
    row = loaded.frame.iloc[1]
    assert (row["label"], row["request_id"], row["model_version"]) == ("pos\ufffd", "id\ufffd", "v\U0001f600")
    json.dumps(loaded.frame.astype(str).to_dict(), ensure_ascii=False).encode("utf-8")  # encodable


def test_table_from_a_frame_matches_the_loader(make_file, ctx):
    loaded = PredictionsLoader().load(make_file("predictions.jsonl", _rows(9)), ctx)
    table, again = loaded.meta["table"], PredictionTable.from_frame(loaded.frame)
    for name in ("line", "time_ns", "label", "confidence", "version"):
        assert np.array_equal(getattr(table, name), getattr(again, name), equal_nan=name == "confidence"), name
    assert np.array_equal(table.request_key, again.request_key) and again.labels == table.labels
