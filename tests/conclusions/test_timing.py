"""Compromise start, exposure window and milestones: each rule on small constructed cases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conclusions.conftest import action, coverage, finding, outputs, shift, stream, t
from workbench.conclusions import derive_conclusions, format_duration
from workbench.records import Event


def conclude(findings, events=(), outs=None, **cov):
    return derive_conclusions(findings, list(events), coverage(**cov), outputs=outs, generated_at=t(500))


CURL = dict(path="logs/ci.log", line=12)


def test_direct_attack_evidence_after_the_statistical_onset_sets_the_start():
    """The output shift is estimated 3 h before the malicious CI step: the step is the start, the onset corroborates."""
    log = finding("log_pattern", "critical", "Remote script piped to a shell", at=t(100), **CURL)
    drift = finding("behavior_drift", "high", "Output distribution changed", at=t(97))
    outs = outputs(stream(flip_after=100), shift(t(97), t(80), t(110)))
    c = conclude([drift, log], outs=outs)
    assert c.verdict == "compromised"
    assert (c.compromise.start, c.compromise.basis) == (t(100), log.id)
    assert c.compromise.rule.startswith("earliest malicious pipeline step")
    assert c.compromise.statistical_onset.onset == t(97)
    assert c.compromise.onset_consistent is True  # the onset interval reaches the start
    assert c.milestones["compromise"].time == t(100)
    assert c.exposure.start == t(100)


def test_onset_interval_entirely_before_the_attack_is_flagged_inconsistent():
    log = finding("log_pattern", "critical", "curl | sh", at=t(150), **CURL)
    drift = finding("behavior_drift", "high", "shift", at=t(90))
    c = conclude([log, drift], outs=outputs(stream(flip_after=90), shift(t(90), t(85), t(95))))
    assert c.compromise.start == t(150)
    assert c.compromise.onset_consistent is False


def test_attack_evidence_before_the_onset_sets_the_start_too():
    log = finding("log_pattern", "high", "extra index", at=t(50), **CURL)
    pkg = finding("dependency_confusion", "critical", "acme 9.9.9 confusion", at=t(60), package="acme", version="9.9.9")
    c = conclude([pkg, log], outs=outputs(stream(flip_after=70), shift(t(70), t(65), t(75))))
    assert c.compromise.start == t(50)
    assert [cand[2] for cand in c.compromise.candidates] == [log.id, pkg.id]


def test_statistical_onset_sets_the_start_only_without_direct_evidence():
    drift = finding("behavior_drift", "critical", "shift", at=t(120))
    tamper = finding("model_file_tampered", "critical", "model.safetensors differs")  # undated: not a candidate
    c = conclude([drift, tamper], outs=outputs(stream(flip_after=120), shift(t(120), t(118), t(124))))
    assert c.compromise.start == t(120)
    assert c.compromise.basis == drift.id
    assert c.compromise.rule.startswith("no direct evidence dates the compromise; statistical onset")
    assert c.compromise.candidates == ()


def test_shift_present_at_the_first_record_starts_at_that_record():
    drift = finding("behavior_drift", "critical", "already shifted")
    outs = outputs(stream(), shift(t(0), t(0), t(0), censored=True))
    c = conclude([drift], outs=outs)
    assert c.compromise.start == outs.first
    assert "already present at the first prediction record" in c.compromise.rule


def test_low_or_process_findings_never_date_a_compromise():
    benign = finding("log_pattern", "low", "curl -o with checksum", at=t(1), **CURL)
    handling = finding("evidence_malformed", "critical", "bad file", at=t(2))
    crit = finding("tensor_modified", "critical", "rank-1 edit")
    c = conclude([benign, handling, crit])
    assert c.verdict == "compromised"
    assert c.compromise.start is None
    assert c.compromise.rule.startswith("no evidence dates the compromise")
    assert c.milestones["compromise"].time is None
    assert c.intervals["dwell_time"].text == "—"


@pytest.mark.parametrize(
    ("steps", "basis", "end"),
    [
        ([("ISOLATE", "Isolating model", "isolate", 300), ("ROLLBACK", "Rolling back", "rollback", 320)],
         "isolation", 300),
        ([("ROLLBACK", "Rolling back", "rollback", 320)], "rollback", 320),
        ([("ASSESS", "Assessing", "assess", 290)], "end_of_records", None),
    ],
)  # fmt: skip
def test_exposure_ends_at_isolation_rollback_or_end_of_records(steps, basis, end):
    events = []
    for i, (tag, msg, step, hour) in enumerate(steps):
        events.append(action(t(hour), tag, msg, 2 * i + 1, step))
        if step == "rollback":
            events.append(action(t(hour), "INFO", "Model rolled back to: /models/archive/v1", 2 * i + 2))
    log = finding("log_pattern", "critical", "curl | sh", at=t(100), **CURL)
    outs = outputs(stream(flip_after=100, hours=400))
    c = conclude([log], events, outs)
    assert c.exposure.end_basis == basis
    expected_end = t(end) if end is not None else outs.last
    assert c.exposure.end == expected_end
    assert c.intervals["exposure_window"].start == c.exposure.start == t(100)
    assert c.intervals["exposure_window"].end == expected_end
    frame = stream(flip_after=100, hours=400)[0]
    served = int(((frame["timestamp"] >= t(100)) & (frame["timestamp"] <= expected_end)).sum())
    assert c.exposure.predictions == served  # both ends included: the last record is inside


def test_affected_predictions_net_excess_and_flipped_are_labelled():
    log = finding("log_pattern", "critical", "curl | sh", at=t(100), **CURL)
    frame_codes = stream(n=4000, flip_after=100)
    c = conclude([log], outs=outputs(frame_codes))
    frame = frame_codes[0]
    e = c.exposure
    inside = frame[frame["timestamp"] >= t(100)]
    assert e.predictions == len(inside)
    by = {x.label: x for x in e.excess}
    assert by["positive"].low > 0 and by["negative"].high < 0 and e.shifted
    flipped_true = int(((inside["confidence"] > 0.98) & (inside["label"] == "positive")).sum())
    assert e.flipped.label == "positive"
    assert e.flipped.low <= flipped_true <= e.flipped.high + 5
    doc = c.to_dict()["exposure"]["affected"]
    assert set(doc) == {"net_excess_by_class", "net_excess_compared_with", "shifted", "flipped"}
    assert "outside the window" in doc["net_excess_compared_with"]


def test_no_change_in_outputs_gives_predictions_but_no_flip():
    pkg = finding("dependency_confusion", "critical", "acme 9.9.9", at=t(100), package="acme", version="9.9.9")
    c = conclude([pkg], outs=outputs(stream()))
    assert c.exposure.predictions > 0
    assert c.exposure.shifted is False and c.exposure.flipped is None


def test_clean_false_alarm_has_no_compromise_no_exposure_no_dwell():
    benign = finding("log_pattern", "low", "checksum-verified curl -o", at=t(1), **CURL)
    alert = Event(t(200), "monitor/alerts.jsonl", "ml:monitor:alert", "Monitor alert BEHAVIOR_DRIFT", "medium",
                  extra={"alert_type": "BEHAVIOR_DRIFT"})  # fmt: skip
    c = conclude([benign], [alert], outputs(stream()))
    assert c.verdict == "clean"
    assert c.compromise is None and c.exposure is None
    assert c.milestones["first_indicator"].time is None and c.milestones["compromise"].time is None
    assert c.milestones["detection"].time == t(200)
    assert c.intervals["dwell_time"].duration is None and c.intervals["exposure_window"].start is None
    doc = c.to_dict()
    assert doc["compromise"] is None and doc["exposure"] is None


def test_suspicious_verdict_has_a_first_indicator_but_no_compromise():
    medium = finding("log_pattern", "medium", "pip from several indexes", at=t(5), **CURL)
    ev = Event(t(5), "logs/ci.log", "ci:log:match", "pip from several indexes", "medium", ref=medium.id)
    c = conclude([medium], [ev])
    assert c.verdict == "suspicious"
    assert c.compromise is None and c.exposure is None
    assert c.milestones["first_indicator"].time == t(5)


def test_failed_rollback_is_not_a_recovery():
    events = [action(t(300), "ROLLBACK", "Rolling back", 1, "rollback"), action(t(300), "ERROR", "signature bad", 2)]
    c = conclude([finding("tensor_modified", "critical", "edit", at=None)], events)
    assert c.milestones["recovery"].time is None
    assert "failed" in c.milestones["recovery"].rule


def test_statistical_estimates_and_alerts_are_not_first_indicators():
    onset = Event(t(1), "predictions/p.jsonl", "ml:drift:onset", "estimated onset", "high")
    alert = Event(t(2), "monitor/alerts.jsonl", "ml:monitor:alert", "alert", "critical")
    line = Event(t(3), "logs/ci.log", "ci:log:match", "curl | sh", "critical")
    c = conclude([finding("log_pattern", "critical", "curl | sh", at=t(3), **CURL)], [onset, alert, line])
    assert c.milestones["first_indicator"].time == t(3)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1, seconds=30), "1 h"),
        (timedelta(hours=1, minutes=30, seconds=29), "1 h 30 min"),
        (timedelta(days=5, hours=7, minutes=45), "5 d 8 h"),
        (timedelta(hours=23, minutes=59, seconds=40), "24 h"),
        (timedelta(days=2), "2 d"),
        (timedelta(minutes=4, seconds=2), "4 min 2 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(milliseconds=300), "< 1 s"),
        (timedelta(0), "0 s"),
        (-timedelta(minutes=5), "-5 min"),
        (None, "—"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text
