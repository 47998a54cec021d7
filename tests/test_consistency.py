"""Every output of a run states the same verdict, compromise start and exposure window (bundled cases, end to end).

findings.json is the reference; the report (summary and milestones table), the three communication drafts and the
milestone rows of timeline.jsonl must say the same thing, in the same time format.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime

import pytest

from tests.conftest import CASES
from workbench.timeparse import display_time

pytestmark = pytest.mark.e2e

HEADLINES = {
    "compromised": "AI Supply Chain Compromise Detected",
    "clean": "No Compromise Evidenced",
    "suspicious": "Possible AI Supply Chain Compromise",
    "inconclusive": "Investigation Inconclusive",
}


def page_text(path) -> str:
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<script.*?</script>|<style.*?</style>", " ", raw, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


def md_text(path) -> str:
    return re.sub(r"\\(.)", r"\1", path.read_text(encoding="utf-8"))  # Markdown escapes removed


def shown(ts: str | None) -> str | None:
    """A findings.json time as every human output states it (ISO 8601 UTC, to the second)."""
    return display_time(parse(ts)) if ts else None


def parse(ts: str) -> datetime:
    """A time at the outputs' common precision (milliseconds)."""
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.mark.parametrize("name", CASES)
def test_every_output_states_the_same_conclusions(sample_runs, name):
    out = sample_runs[name]
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    c = doc["conclusions"]
    verdict, compromise, exposure = c["verdict"], c["compromise"], c["exposure"]
    assert doc["verdict"] == verdict and doc["exposure"] == exposure
    assert doc["milestones"]["milestones"] == c["milestones"]
    start = shown(compromise["start"]) if compromise else None  # the human outputs' format, to the second
    assert c["milestones"]["compromise"]["time"] == (compromise["start"] if compromise else None)

    report = re.sub(r"\s+", " ", page_text(out / "report.html"))
    alert = md_text(out / "comms" / "initial_alert.md")
    update = md_text(out / "comms" / "stakeholder_update.md")
    post = md_text(out / "comms" / "post_incident_report.md")
    assert f"Verdict: {verdict}" in report
    assert "Output withheld" not in report  # every output was made of redacted text
    assert HEADLINES[verdict] in alert and f"Verdict from the evidence: {verdict.upper()}" in alert
    assert f"Verdict from the evidence: {verdict.upper()}" in update

    rows = [json.loads(line) for line in (out / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]
    anchored = {m: parse(r["datetime"]) for r in rows for m in r.get("milestone", "").split(",") if m}
    for key, m in c["milestones"].items():
        if m["time"] is not None and m["source"] not in (None, "case.yaml") and key != "report":
            assert anchored.get(key) == parse(m["time"]), key  # the timeline's row is the milestone's event
    if start is not None:
        end, basis = shown(exposure["end"]), exposure["end_basis"].replace("_", " ")
        assert f"Compromise start: {start}" in report
        assert f"Compromise start {start}" in report  # the milestones table, same time format
        assert f"Exposure window: {shown(exposure['start'])} to {end} ({basis})" in report
        assert f"Time window of exposure: {shown(exposure['start'])} to {end} ({basis})" in update
        assert f"Compromise start: {start}" in update
        assert f"**Duration:** {start} (compromise start) to {end} ({basis})" in post
        assert anchored["compromise"] == parse(compromise["start"])
        if exposure["predictions"] is None:  # no prediction records: no output invents a count
            assert "Predictions potentially impacted: [TO BE COMPLETED" in update and "predictions served" not in update
        else:
            assert f"{exposure['predictions']:,} predictions served" in update
            assert f"{exposure['predictions']:,}" in report
    else:
        assert exposure is None
        assert "Compromise start:" not in report and "Exposure window:" not in report
        for text in (alert, update, post):
            assert "Dwell time" not in text and "(compromise start)" not in text and "exposure window" not in text
        assert "compromise" not in anchored and "first_indicator" not in anchored
        assert "**Duration:** none: no compromise evidenced" in post
    if verdict == "clean":
        assert c["indicators"] == [] and "Indicators of compromise" not in alert + report


def test_tampered_compromise_starts_with_the_ci_run_not_the_drift_onset(sample_runs):
    c = json.loads((sample_runs["tampered-weights"] / "findings.json").read_text(encoding="utf-8"))["conclusions"]
    start = parse(c["compromise"]["start"])
    onset = parse(c["compromise"]["statistical_onset"]["onset"])
    assert parse("2026-11-14T03:05:41Z") <= start <= parse("2026-11-14T03:12:00Z")  # in the malicious CI run
    assert onset < start and c["compromise"]["onset_consistent"] is True
    assert c["exposure"]["end_basis"] == "isolation" and c["exposure"]["end"] == "2026-11-19T09:40:33Z"
    live = [r for r in c["reasons"] if r["group"] == "live_activity"]
    assert live and "203.0.113.7:4444" in live[0]["sentence"]


def test_false_alarm_mentions_no_compromise_time(sample_runs):
    out = sample_runs["false-alarm"]
    c = json.loads((out / "findings.json").read_text(encoding="utf-8"))["conclusions"]
    assert c["verdict"] == "clean" and c["compromise"] is None and c["exposure"] is None
    assert c["intervals"]["dwell_time"]["seconds"] is None
    for path in (out / "comms").iterdir():
        text = md_text(path)
        assert "estimated compromise" not in text.lower() and "Dwell time" not in text, path.name
