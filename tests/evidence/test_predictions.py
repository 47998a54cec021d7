from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
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
