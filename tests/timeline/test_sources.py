from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from tests.timeline.conftest import open_case
from workbench.records import Event, EvidenceWarning, Finding, Severity
from workbench.timeline.sources import NOT_A_TIME, evidence_events, finding_events, merge_events


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_tampered_weights_events_from_real_loaders(opened):
    o = opened("tampered-weights")
    warnings: list[EvidenceWarning] = []
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=warnings)
    assert warnings == []
    assert Counter(e.kind for e in events) == {
        "ir:action": 22,
        "ml:monitor:alert": 4,
        "ir:marker": 1,
        "ir:custody:intake": 1,
    }
    steps = {e.extra["step"]: (e.timestamp, e.extra["line"]) for e in events if "step" in e.extra}
    assert steps == {
        "assess": (_t("2026-11-19T09:05:12Z"), 1),
        "isolate": (_t("2026-11-19T09:40:33Z"), 8),
        "rollback": (_t("2026-11-19T11:20:47Z"), 17),
    }
    isolate = next(e for e in events if e.extra.get("step") == "isolate")
    assert isolate == Event(
        _t("2026-11-19T09:40:33Z"),
        "actions.log",
        "ir:action",
        "ISOLATE: Isolating compromised model sentiment-model-v2.1",
        Severity.INFO,
        timestamp_desc="Action Time",
        extra={"line": 8, "action": "ISOLATE", "step": "isolate"},
    )
    first_alert = next(e for e in events if e.kind == "ml:monitor:alert")
    assert first_alert.timestamp == _t("2026-11-19T08:40:03Z")
    assert first_alert.severity is Severity.CRITICAL
    assert first_alert.source == "monitor/alerts.jsonl"
    assert first_alert.extra["alert_type"] == "FILE_TAMPERED"
    assert first_alert.extra["atlas"] == "AML.T0010.003,AML.T0018.000"
    assert first_alert.message.startswith("Monitor alert FILE_TAMPERED: Model file 'model.safetensors' hash mismatch")
    marker = next(e for e in events if e.kind == "ir:marker")
    assert (marker.timestamp, marker.source) == (
        _t("2026-11-19T09:40:33Z"),
        "models/suspect/sentiment-model-v2.1/COMPROMISED.txt",
    )
    intake = next(e for e in events if e.kind == "ir:custody:intake")
    assert intake.timestamp == datetime.fromisoformat(o.ledger.entries[0]["time"])
    assert intake.extra["files"] == len(o.case.files) == 25
    assert events == sorted(events, key=lambda e: e.timestamp)


def test_default_warnings_go_to_evidence_once(hostile_case: Path, tmp_path: Path):
    o = open_case(hostile_case, tmp_path / "out")
    before = len(o.evidence.warnings)
    evidence_events(o.case, o.evidence, o.ledger)
    added = len(o.evidence.warnings) - before
    evidence_events(o.case, o.evidence, o.ledger)
    assert added == 10
    assert len(o.evidence.warnings) - before == added


def test_hostile_sources_are_kept_flagged_and_warned(hostile_case: Path, tmp_path: Path):
    o = open_case(hostile_case, tmp_path / "out")
    warnings: list[EvidenceWarning] = []
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=warnings)
    assert [str(w) for w in warnings] == [
        "monitor/alerts.jsonl:2: unknown alert severity 'catastrophic', shown as medium",
        "case.yaml: timeline entry 3: not a mapping of time, message, source, severity, tags",
        "case.yaml: timeline entry 4: no message; entry skipped",
        "case.yaml: timeline entry 5: unknown key 'colour' ignored",
        "case.yaml: timeline entry 5: unknown severity 'apocalyptic', shown as info",
        "case.yaml: timeline entry 6: time 'yesterday afternoon' is not an ISO 8601 time; kept, flagged unparseable",
        "notes/timeline.csv:1: unknown columns ignored: 'comment'",
        "notes/timeline.csv:3: row at line 3: time 'bad time' is not an ISO 8601 time; kept, flagged unparseable",
        "notes/timeline.csv:4: row at line 4: no message; entry skipped",
        "notes/timeline.csv:5: more cells than header columns; extra cells ignored",
    ]
    # the loader's own warning for the broken action time is in the evidence set already
    assert EvidenceWarning("actions.log", 5, "unparseable timestamp 'not-a-time'") in o.evidence.warnings

    broken = next(e for e in events if e.extra.get("line") == 5 and e.source == "actions.log")
    assert (broken.timestamp, broken.timestamp_desc, broken.extra["time_flag"]) == (
        NOT_A_TIME,
        "Not a time",
        "unparseable",
    )
    assert broken.extra["step"] == "isolate"  # CONTAIN is the isolate step, kept although its time is unusable

    alerts = {e.extra["line"]: e for e in events if e.kind == "ml:monitor:alert"}
    assert alerts[1].timestamp == _t("2026-11-19T08:40:03Z")  # epoch milliseconds
    assert alerts[2].severity is Severity.MEDIUM and alerts[2].extra["severity_raw"] == "catastrophic"
    assert alerts[3].severity is Severity.MEDIUM and "severity_raw" not in alerts[3].extra

    analyst = [
        (e.timestamp, e.source, e.message, e.severity, dict(e.extra)) for e in events if e.kind == "analyst:event"
    ]
    assert analyst == [
        (
            NOT_A_TIME,
            "case.yaml",
            "Time nobody can parse",
            Severity.INFO,
            {"entry": "timeline entry 6", "time_flag": "unparseable"},
        ),
        (
            NOT_A_TIME,
            "notes/timeline.csv",
            "Unparseable note time",
            Severity.INFO,
            {"line": 3, "time_flag": "unparseable"},
        ),
        (
            _t("2026-11-19T09:10:00Z"),
            "case.yaml",
            "Vendor called the hotline",
            Severity.LOW,
            {"entry": "timeline entry 1", "reported_source": "phone log", "tags": "external,vendor"},
        ),
        (
            _t("2026-11-19T09:20:00Z"),
            "case.yaml",
            "Naive Berlin time from the on-call notebook",
            Severity.INFO,
            {"entry": "timeline entry 2"},
        ),
        (
            _t("2026-11-19T09:25:00Z"),
            "case.yaml",
            "Severity word nobody knows",
            Severity.INFO,
            {"entry": "timeline entry 5"},
        ),
        (
            _t("2026-11-19T09:30:00.5Z"),
            "notes/timeline.csv",
            'Note with a comma, and "quotes"',
            Severity.INFO,
            {"line": 2, "reported_source": "chat", "tags": "a,b"},
        ),
        (_t("2026-11-19T09:36:00Z"), "notes/timeline.csv", "Too many cells", Severity.INFO, {"line": 5}),
    ]


def test_notes_file_without_required_columns(hostile_case: Path, tmp_path: Path):
    (hostile_case / "notes" / "timeline.csv").write_text("when,what\n2026-11-19T09:00:00Z,x\n", encoding="utf-8")
    o = open_case(hostile_case, tmp_path / "out")
    warnings: list[EvidenceWarning] = []
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=warnings)
    assert EvidenceWarning("notes/timeline.csv", 1, "header must name at least the columns 'time' and 'message'") in (
        warnings
    )
    assert not [e for e in events if e.source == "notes/timeline.csv"]


def test_merge_events_keeps_one_copy_of_each_record(opened):
    o = opened("tampered-weights")
    mine = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    assert merge_events(mine, mine, list(reversed(mine))) == mine
    # another collector's version of the same action line and intake (other message, fewer fields): kept once,
    # the first group's version wins; a different record at the same time is kept
    other_action = Event(
        _t("2026-11-19T09:40:33Z"),
        "actions.log",
        "ir:action",
        "Isolating compromised model sentiment-model-v2.1",
        extra={"line": 8},
    )
    intake = next(e for e in mine if e.kind == "ir:custody:intake")
    other_intake = Event(intake.timestamp, "custody.jsonl", "ir:custody:intake", "Evidence intake: 25 files hashed")
    match = Event(_t("2026-11-19T09:40:33Z"), "actions.log", "ci:log:match", "a rule matched", extra={"line": 8})
    assert merge_events(mine, [other_action, other_intake, match]) == [*mine, match]


def test_finding_events_only_for_timed_unreferenced_findings():
    timed = Finding.create(
        severity="high",
        category="log_pattern",
        title="curl piped to a shell",
        detector="workbench.logscan",
        evidence={"path": "logs/pipeline.log", "line": 94},
        atlas=("AML.T0050",),
        timestamp=_t("2026-11-14T03:08:01Z"),
    )
    referenced = Finding.create(
        severity="low", category="log_pattern", title="other", timestamp=_t("2026-11-14T03:09Z")
    )
    untimed = Finding.create(severity="critical", category="model_file_tampered", title="tampered")
    existing = [Event(_t("2026-11-14T03:09Z"), "logs/pipeline.log", "ci:log:match", "other", ref=referenced.id)]
    events = finding_events([timed, referenced, untimed], existing)
    assert events == [
        Event(
            _t("2026-11-14T03:08:01Z"),
            "logs/pipeline.log",
            "finding:log_pattern",
            "curl piped to a shell",
            Severity.HIGH,
            timed.id,
            timestamp_desc="Finding Time",
            extra={"atlas": "AML.T0050"},
        )
    ]


def test_case_yaml_entries_of_wrong_types_never_crash(hostile_case: Path, tmp_path: Path):
    (hostile_case / "case.yaml").write_text(
        "timeline:\n"
        "  - {time: [1, 2], message: [a, b], tags: {x: 1}, severity: [high]}\n"
        "  - {time: 2026-11-19T09:00:00Z, message: 42, source: null}\n"
        "  - {time: 2026-11-19, message: a date without a time}\n"
        "  - null\n",
        encoding="utf-8",
    )
    (hostile_case / "notes" / "timeline.csv").unlink()
    o = open_case(hostile_case, tmp_path / "out")
    warnings: list[EvidenceWarning] = []
    events = [e for e in evidence_events(o.case, o.evidence, o.ledger, warnings=warnings) if e.source == "case.yaml"]
    assert [(e.timestamp, e.message, e.extra.get("time_flag")) for e in events] == [
        (NOT_A_TIME, "['a', 'b']", "unparseable"),
        (NOT_A_TIME, "a date without a time", "unparseable"),
        (_t("2026-11-19T09:00:00Z"), "42", None),  # YAML's own timestamp type, aware
    ]
    assert [w.reason for w in warnings if w.path == "case.yaml"] == [
        "timeline entry 1: unknown severity \"['high']\", shown as info",
        "timeline entry 1: time '[1, 2]' is not an ISO 8601 time; kept, flagged unparseable",
        "timeline entry 3: time '2026-11-19' is not an ISO 8601 time; kept, flagged unparseable",
        "timeline entry 4: not a mapping of time, message, source, severity, tags",
    ]
