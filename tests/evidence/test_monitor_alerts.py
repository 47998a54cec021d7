from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.monitor_alerts import MonitorAlertsLoader

H1, H2 = "ab" * 32, "cd" * 32
ALERTS = (
    '{"timestamp": "2026-11-19T09:00:03Z", "type": "FILE_TAMPERED", "model": "sentiment-v2", '
    f'"file": "model.safetensors", "severity": "CRITICAL", "message": "hash mismatch", '
    f'"expected_hash": "{H1}", "actual_hash": "{H2}"}}\n'
    "\n"
    '{"timestamp": "2026-11-19T09:00:03Z", "type": "unexpected_file", "model": "sentiment-v2", '
    '"file": "extra.pkl", "severity": "HIGH", "message": "new file"}\n'
    '{"timestamp": 1763542800, "type": "DEPENDENCY_CHANGED", "model": "sentiment-v2", "severity": "HIGH", '
    '"message": "torch 2.3.1 -> 2.3.1+evil"}\n'
)


def test_load_alerts(make_file, ctx):
    loaded = MonitorAlertsLoader().load(make_file("monitor/alerts.jsonl", ALERTS), ctx)
    assert loaded.warnings == []
    df = loaded.frame
    assert list(df["line"]) == [1, 3, 4]
    assert df.loc[0].to_dict() == {
        "line": 1,
        "timestamp": pd.Timestamp("2026-11-19T09:00:03Z"),
        "type": "FILE_TAMPERED",
        "model": "sentiment-v2",
        "file": "model.safetensors",
        "severity": "CRITICAL",
        "message": "hash mismatch",
        "expected_hash": H1,
        "actual_hash": H2,
    }
    assert df.loc[1, "type"] == "UNEXPECTED_FILE"
    assert df.loc[2, "timestamp"] == pd.Timestamp("2025-11-19T09:00:00Z")
    assert pd.isna(df.loc[2, "file"])


def test_bad_lines_one_warning_each(make_file, ctx):
    text = ALERTS + '{"type": "FILE_MISSING"\n{"message": "no type"}\n{"type": "FILE_MISSING", "model": "m"}\n'
    loaded = MonitorAlertsLoader().load(make_file("alerts.jsonl", text), ctx)
    assert [w.line for w in loaded.warnings] == [5, 6, 7]
    assert "timestamp" in loaded.warnings[2].reason
    assert len(loaded.frame) == 4 and pd.isna(loaded.frame.iloc[-1]["timestamp"])


def test_all_bad_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        MonitorAlertsLoader().load(make_file("alerts.jsonl", "oops\n[1]\n"), ctx)


def test_detect(make_file):
    loader = MonitorAlertsLoader()
    assert loader.detect(make_file("x/events.jsonl", ALERTS))
    assert not loader.detect(make_file("x/preds.jsonl", '{"type": "x", "label": "positive", "model": "m"}\n'))
