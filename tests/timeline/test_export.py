from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.timeline.conftest import open_case
from tests.timeline.test_build import conclude
from workbench.records import Event
from workbench.timeline.build import build_timeline
from workbench.timeline.export import REQUIRED_FIELDS, timesketch_rows, write_csv, write_jsonl, write_timeline
from workbench.timeline.sources import evidence_events

GENERATED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECRET = "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"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_timesketch(row: dict) -> None:
    """Timesketch's import contract: the required fields with their types, the rest flat scalars."""
    assert list(row)[:6] == list(REQUIRED_FIELDS)
    assert isinstance(row["message"], str) and row["message"]
    ts = datetime.fromisoformat(row["datetime"])
    assert ts.utcoffset() == timedelta(0)
    assert isinstance(row["timestamp"], int) and not isinstance(row["timestamp"], bool)
    assert row["timestamp"] == (ts - EPOCH) // timedelta(microseconds=1)
    assert isinstance(row["timestamp_desc"], str) and row["timestamp_desc"]
    assert isinstance(row["data_type"], str) and ":" not in row["data_type"]
    assert isinstance(row["tag"], list) and all(isinstance(t, str) for t in row["tag"])
    for key, value in row.items():
        if key != "tag":
            assert value is None or isinstance(value, str | int | float | bool), key


@pytest.fixture
def timeline(hostile_case: Path, tmp_path: Path):
    o = open_case(hostile_case, tmp_path / "out")
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    leak = Event(
        datetime(2026, 11, 19, 7, 0, tzinfo=UTC),
        "logs/pipeline.log",
        "ci:log:match",
        f'HF_TOKEN={SECRET}\nsecond line, "quoted"',
        "critical",
        extra={"line": 48, "token": SECRET, "ratio": float("nan")},
    )
    tl = build_timeline([*events, leak], meta=o.case.meta, generated_at=GENERATED)
    conclude(tl, meta=o.case.meta)  # anchors the milestones, as the run does
    return tl


def test_rows_have_timesketch_fields_and_types(timeline):
    rows = list(timesketch_rows(timeline))
    assert len(rows) == len(timeline.entries) == 20
    for row in rows:
        _check_timesketch(row)
    isolate = next(r for r in rows if r.get("step") == "isolate" and r["datetime"].startswith("2026"))
    assert isolate == {
        "message": "ISOLATE: Isolating compromised model demo-model",
        "datetime": "2026-11-19T09:40:33+00:00",
        "timestamp": 1795081233000000,
        "timestamp_desc": "Action Time",
        "data_type": "ir_action",
        "tag": ["info", "ir", "milestone:containment"],
        "source_file": "actions.log",
        "severity": "info",
        "kind": "ir:action",
        "line": 2,
        "action": "ISOLATE",
        "step": "isolate",
        "count": 1,
        "lane": "Response",
        "tactic": "Response",
        "milestone": "containment",
    }
    collapsed = next(r for r in rows if r["message"] == "Scaled down: deployment.apps/demo-api")
    assert (collapsed["count"], "collapsed" in collapsed["tag"]) == (2, True)
    assert "last_datetime" not in collapsed  # same time: nothing more to say
    future = next(r for r in rows if r.get("time_flag") == "future")
    assert (future["datetime"], future["tag"][-1]) == ("2099-01-01T00:00:00+00:00", "time_future")
    unparsed = [r for r in rows if r.get("time_flag") == "unparseable"]
    assert [(r["timestamp"], r["timestamp_desc"]) for r in unparsed] == [(0, "Not a time")] * 3
    vendor = next(r for r in rows if r["message"] == "Vendor called the hotline")
    assert vendor["tag"] == ["low", "analyst", "external", "vendor"]
    leak = next(r for r in rows if r["kind"] == "ci:log:match")
    assert leak["ratio"] is None  # NaN is no JSON


def test_jsonl_round_trip(timeline, tmp_path: Path):
    path = tmp_path / "timeline.jsonl"
    assert write_timeline(timeline, path) == 20
    back = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert back == list(timesketch_rows(timeline))


def test_csv_round_trip(timeline, tmp_path: Path):
    path = tmp_path / "timeline.csv"
    assert write_timeline(timeline, path) == 20
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        back = list(reader)
    assert header[:6] == list(REQUIRED_FIELDS)
    rows = list(timesketch_rows(timeline))
    assert len(back) == len(rows)
    for csv_row, row in zip(back, rows, strict=True):
        assert csv_row["tag"] == ",".join(row["tag"])
        assert int(csv_row["timestamp"]) == row["timestamp"]
        for key in ("message", "datetime", "timestamp_desc", "data_type", "source_file", "kind"):
            assert csv_row[key] == row[key]
        assert set(csv_row) == set(header)
        for key, value in row.items():
            if key != "tag":
                assert csv_row[key] == ("" if value is None else str(value)), key
    leak = next(r for r in back if r["kind"] == "ci:log:match")
    assert leak["message"] == f'HF_TOKEN={SECRET}\nsecond line, "quoted"'  # newline, comma and quotes survive


@pytest.mark.parametrize("writer", [write_jsonl, write_csv])
def test_redaction_reaches_every_text_field(timeline, writer):
    buf = io.StringIO()
    writer(timeline, buf, redact=lambda text: text.replace(SECRET, "hf_DV…[redacted]"))
    text = buf.getvalue()
    assert SECRET not in text
    marker = "hf_DV…[redacted]" if writer is write_csv else "hf_DV\\u2026[redacted]"  # JSONL is ASCII-escaped
    assert text.count(marker) == 2  # the message and the extra field


def test_without_redaction_text_is_written_as_found(timeline):
    buf = io.StringIO()
    write_jsonl(timeline, buf)
    assert buf.getvalue().count(SECRET) == 2


def test_unknown_extension(timeline, tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown timeline format '\.txt'; use \.jsonl or \.csv"):
        write_timeline(timeline, tmp_path / "timeline.txt")
    assert not (tmp_path / "timeline.txt").exists()


FORMULAS = ["=HYPERLINK(\"http://203.0.113.7/x\",\"click\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]  # fmt: skip


@pytest.mark.parametrize("value", FORMULAS)
def test_csv_cell_neutralises_formula_starts(value):
    from workbench.timeline.export import csv_cell

    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["plain text", "2026-11-19T09:40:33+00:00", " =not first", "'=quoted", "", -5, 1.5,
                                   None, True])  # fmt: skip
def test_csv_cell_leaves_other_values(value):
    from workbench.timeline.export import csv_cell

    assert csv_cell(value) == value


def test_csv_injection_from_evidence_is_neutralised(hostile_case: Path, tmp_path: Path):
    """Formula text in a message, an extra value and an extra field name (a header cell) is quoted in CSV only."""
    o = open_case(hostile_case, tmp_path / "out")
    when = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)
    events = [Event(when + timedelta(minutes=i), "logs/pipeline.log", "ci:log:match", text, "high",
                    extra={"cmd": text, "=evil()": "x", "delta": -7}) for i, text in enumerate(FORMULAS)]  # fmt: skip
    tl = build_timeline(events, meta=o.case.meta, generated_at=GENERATED)
    buf = io.StringIO(newline="")
    assert write_csv(tl, buf) == len(FORMULAS)
    reader = csv.reader(io.StringIO(buf.getvalue(), newline=""))
    header, *rows = list(reader)
    assert "'=evil()" in header and "=evil()" not in header
    assert all(len(row) == len(header) for row in rows)  # a carriage return in a cell does not split its row
    cells = [cell for row in rows for name, cell in zip(header, row, strict=True) if name != "delta"]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    messages = sorted(row[header.index("message")] for row in rows)
    assert messages == sorted("'" + text for text in FORMULAS)
    assert {row[header.index("cmd")] for row in rows} == {"'" + text for text in FORMULAS}
    assert {row[header.index("delta")] for row in rows} == {"-7"}  # a number stays a number
    # JSONL keeps the text as found (JSON consumers do not evaluate formulas); DEL and controls are escaped
    jsonl = io.StringIO()
    write_jsonl(tl, jsonl)
    assert sorted(json.loads(line)["message"] for line in jsonl.getvalue().splitlines()) == sorted(FORMULAS)
    assert "\t" not in jsonl.getvalue() and "\r" not in jsonl.getvalue()


def test_jsonl_escapes_del(hostile_case: Path, tmp_path: Path):
    o = open_case(hostile_case, tmp_path / "out")
    event = Event(datetime(2026, 11, 19, 7, 0, tzinfo=UTC), "logs/x.log", "ci:log:match", "rub\x7fout\x1b]0;t\x07",
                  "high")  # fmt: skip
    buf = io.StringIO()
    write_jsonl(build_timeline([event], meta=o.case.meta, generated_at=GENERATED), buf)
    text = buf.getvalue()
    assert "\x7f" not in text and "\x1b" not in text and "\x07" not in text
    assert json.loads(text)["message"] == "rub\x7fout\x1b]0;t\x07"
