from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from workbench.records import CATEGORIES, Event, EvidenceWarning, Finding, Severity, to_frame


def make(sev="high", cat="model_file_tampered", title="t", **ev):
    return Finding.create(severity=sev, category=cat, title=title, evidence=ev or {"path": "a"})


def test_finding_id_is_deterministic_and_depends_on_evidence():
    assert make(path="a").id == make(path="a").id
    assert make(path="a").id != make(path="b").id
    assert make().id.startswith("F-")


def test_unknown_category_and_severity_rejected():
    with pytest.raises(ValueError, match="category"):
        make(cat="no_such_thing")
    with pytest.raises(ValueError, match="severity"):
        Severity.parse("catastrophic")
    assert Severity.parse("CRITICAL") is Severity.CRITICAL
    assert Severity.parse("warning") is Severity.MEDIUM


def test_original_categories_present():
    for cat in [
        "model_file_tampered",
        "unexpected_model_file",
        "model_file_missing",
        "behavior_drift",
        "dependency_changed",
        "dependency_missing",
        "dangerous_file_type",
        "model_unsigned",
    ]:
        assert cat in CATEGORIES


def test_naive_timestamp_refused_and_offsets_normalised():
    with pytest.raises(ValueError, match="naive"):
        Event(datetime(2026, 1, 1), "x", "ir:action", "m")
    ev = Event(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))), "x", "ir:action", "m")
    assert ev.timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_finding_to_dict_contract_fields():
    d = make(path="m/x.bin", line=3).to_dict()
    assert set(d) == {"id", "severity", "category", "title", "detail", "detector", "evidence", "atlas", "timestamp"}
    assert d["severity"] == "high" and d["evidence"] == {"path": "m/x.bin", "line": 3}


def test_timesketch_row():
    ev = Event(
        datetime(2026, 11, 19, 8, 40, 0, 123456, tzinfo=UTC),
        "monitor/alerts.jsonl",
        "ml:monitor:alert",
        "alert",
        "critical",
        ref="F-1",
    )
    row = ev.to_timesketch()
    assert row["timestamp"] == 1_795_077_600_123_456 and row["datetime"] == "2026-11-19T08:40:00.123456+00:00"
    assert row["timestamp_desc"] and row["data_type"] == "ml_monitor_alert" and isinstance(row["tag"], list)
    assert row["finding_id"] == "F-1"


def test_to_frame_columns_and_order():
    df = to_frame([make("low", title="b"), make("critical", title="a", line=7)])
    assert list(df.columns) == [
        "id",
        "severity",
        "category",
        "title",
        "detail",
        "detector",
        "path",
        "line",
        "atlas",
        "timestamp",
        "evidence",
    ]
    assert df["severity"].tolist() == ["critical", "low"]
    assert df["line"].dtype == "Int64" and df.loc[0, "line"] == 7
    assert isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)
    empty = to_frame([], Event)
    assert list(empty.columns)[:3] == ["timestamp", "source", "kind"] and empty.empty
    w = to_frame([EvidenceWarning("a.log", 3, "bad")])
    assert w.to_dict("records") == [{"path": "a.log", "line": 3, "reason": "bad"}]


def test_records_text_is_valid_unicode_whatever_a_parser_let_through():
    from datetime import UTC, datetime

    from workbench.records import Event, EvidenceWarning, Finding

    f = Finding.create(severity="high", category="log_pattern", title="bad \ud800 title", detail="x\udfff",
                       evidence={"path": "logs/\ud83d.log", "examples": ["a\ud800"]})  # fmt: skip
    e = Event(datetime(2026, 1, 1, tzinfo=UTC), "s", "ci:log:match", "m\ud800", extra={"k": "\udc00"})
    w = EvidenceWarning("p\ud800", 3, "r\ud800")
    for text in (f.title, f.detail, f.evidence["path"], f.evidence["examples"][0], e.message, e.extra["k"], w.path,
                 w.reason):  # fmt: skip
        text.encode("utf-8")  # raises on a lone surrogate
        assert "\ufffd" in text
    assert Finding.create(severity="low", category="log_pattern", title="plain").title == "plain"
