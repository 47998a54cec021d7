"""Communication drafts: every template for every sample case, person-only fields, escaping, redaction, exposure."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime

import jinja2
import pytest
import yaml

from workbench.comms.drafts import (
    TEMPLATES,
    CommsContext,
    Md,
    md_escape,
    render_comms,
    todo,
    write_comms,
)
from workbench.investigation import Investigation
from workbench.records import Finding, Severity
from workbench.resources import templates_dir

SAMPLES = "evidence-samples"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECRET = "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"  # the samples' fake token
MARKER = re.compile(r"(?<!\\)\[TO BE COMPLETED: [^\]\n]+\]")
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}|(?<!\\)\{[a-z_0-9]+\}")


def fake_redact(text: str) -> str:
    return re.sub(r"\b(hf_[A-Za-z0-9]{2})[A-Za-z0-9]{28,}", r"\1…[redacted]", text)


CASES = ["tampered-weights", "poisoned-dependency", "false-alarm"]
PINNED = {"now": NOW}


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """``opened(name)``: the sample case's investigation, opened once per module."""
    cache: dict[str, Investigation] = {}

    def get(name: str) -> Investigation:
        if name not in cache:
            cache[name] = Investigation.open(f"{SAMPLES}/{name}", out_dir=tmp_path_factory.mktemp(name), write=False)
        return cache[name]

    return get


#: markers a person must fill per sample case and template (the samples carry no comms: mapping); the exposure,
#: the affected predictions and the duration come from the conclusions, so they are never markers
MARKERS = {
    "initial_alert": ("service impact",),
    "stakeholder_update": ("update number", "ETA to resolution"),
    "post_incident_report": ("data exposure", "customer impact", "what went well", "what needs improvement",
                             "owner", "due date"),
}  # fmt: skip


def expected_markers(name: str) -> dict[str, tuple[str, ...]]:
    report = MARKERS["post_incident_report"]
    if name == "false-alarm":
        report = ("root cause of the alert", *report, "preventive measures")
    return {**MARKERS, "post_incident_report": report}


def copy_case(name: str, tmp_path) -> tuple[object, object]:
    case = tmp_path / name
    shutil.copytree(f"{SAMPLES}/{name}", case)
    return case, tmp_path / "out"


# ----------------------------------------------------------------------------------------------- sample cases
DETECTED = {"tampered-weights": "2026-11-19T08:40:03Z", "poisoned-dependency": "2026-11-21T14:25:04Z",
            "false-alarm": "2026-11-25T02:50:02Z"}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_every_template_renders_for_every_sample_case(opened, name):
    inv = opened(name)
    ctx = CommsContext.from_investigation(inv, **PINNED)
    rendered = render_comms(ctx)
    assert list(rendered) == list(TEMPLATES)
    assert ctx.warnings == []
    meta = inv.case.meta
    for template, comm in rendered.items():
        text = comm.text
        assert not PLACEHOLDER.search(text), (template, PLACEHOLDER.search(text))
        assert "Undefined" not in text
        assert "[TO BE COMPLETED" not in MARKER.sub("", text), template  # every marker is well formed
        assert comm.todo_markers == expected_markers(name)[template], (template, comm.todo_markers)
        assert comm.subject.startswith("[AI Security] ") and meta.incident_id in comm.subject
        header = yaml.safe_load(text.split("---\n")[1])
        assert header["template"] == template and header["subject"] == comm.subject
        assert comm.audience and comm.timing and header["timing"] == comm.timing
        assert f"**Incident ID:** {meta.incident_id}" in text
    alert = rendered["initial_alert"].text
    assert rendered["initial_alert"].subject.endswith(f" - {meta.severity.value.upper()}")
    assert f"**Detected:** {DETECTED[name]}" in alert
    assert f"**Model(s) Affected:** {meta.affected_models[0]}" in alert
    assert f"**Incident Commander:** {meta.commander}" in alert
    assert f"Detection method: {meta.detection_method}" in alert
    assert "Within 1 hour of detection" in alert
    report = rendered["post_incident_report"].text
    assert "| Time (UTC) | Source | Event |" in report and "**Detection**" in report
    assert "Every 4 hours during active incident" in rendered["stakeholder_update"].text


def test_facts_derived_for_the_tampered_case(opened):
    inv = opened("tampered-weights")
    c = inv.conclusions
    rendered = render_comms(CommsContext.from_investigation(inv, update_number=2, **PINNED))
    alert, update, report = (rendered[t].text for t in TEMPLATES)
    assert "# INCIDENT ALERT: AI Supply Chain Compromise Detected" in alert
    assert ("Containment status: Recovered: rolled back to a known-good model at 2026-11-19T11:20:47Z, after "
            "isolation at 2026-11-19T09:40:33Z") in alert  # fmt: skip
    assert "2026-11-19T09:40:33Z ISOLATE: Isolating compromised model sentiment-model-v2.1" in alert
    # the alert's bullets are the verdict's reasons, live attacker activity among them
    bullets = [line[2:] for line in alert.split("## Summary")[1].split("##")[0].splitlines() if line.startswith("- ")]
    assert len(bullets) == len(c.reasons) and bullets[3].startswith("Attacker activity is live on a host: gunicorn")
    iocs = alert.split("## Indicators of compromise")[1].split("##")[0]
    assert "- ip: 203.0.113\\[.\\]7" in iocs and "203.0.113.7" not in iocs  # defanged, Markdown-escaped
    assert rendered["stakeholder_update"].subject == "[AI Security] Incident INC-2026-0142 Update #2"
    assert "**Time Since Detection:** 7 d 3 h" in update
    assert "Models affected: 1 (sentiment-model-v2.1)" in update
    assert ("Time window of exposure: 2026-11-14T03:08:01Z to 2026-11-19T09:40:33Z (isolation); 4,240 "
            "predictions served") in update  # fmt: skip
    assert "Compromise start: 2026-11-14T03:08:01Z (earliest malicious pipeline step" in update
    assert ("**Duration:** 2026-11-14T03:08:01Z (compromise start) to 2026-11-19T09:40:33Z (isolation) "
            "(5 d 7 h)") in report  # fmt: skip
    assert "Dwell time (compromise start to detection): 5 d 6 h" in report
    assert "Time to contain (detection to containment): 1 h" in report
    assert "Working hypothesis (the evidence supports it" in report
    assert "the model files carry code that runs when the model is loaded" in report
    assert "- Models compromised: sentiment-model-v2.1" in report
    assert "predictions flipped to 'positive'" in report and "net excess by class against the" in report
    assert "safetensors-only policy" in report and "(owner: [TO BE COMPLETED: owner]" in report


@pytest.mark.parametrize("name", ["poisoned-dependency", "false-alarm"])
def test_facts_derived_for_the_other_cases(opened, name):
    rendered = render_comms(CommsContext.from_investigation(opened(name), **PINNED))
    alert, update, report = (rendered[t].text for t in TEMPLATES)
    assert "Not contained: assessment only (evidence captured at" in alert
    if name == "false-alarm":
        assert "# INCIDENT ALERT: AI Supply Chain Alert Investigated: No Compromise Evidenced" in alert
        assert "Models affected: 0 confirmed (clean); under investigation: intent-classifier-v1.0" in update
        assert "Confirm the verdict CLEAN" in update
        assert "The evidence shows no compromise (verdict CLEAN" in report
        assert "Models compromised: none evidenced (verdict CLEAN)" in report
        assert "**Duration:** none: no compromise evidenced (verdict CLEAN)" in report
        for text in (alert, update, report):  # no compromise time, no dwell time, no exposure anywhere
            assert "Dwell time" not in text and "compromise start" not in text.lower()
            assert "Indicators of compromise" not in text
        assert "Time window of exposure: none: no exposure (verdict CLEAN)" in update
    else:
        assert "Take fraud-scorer-v3 out of serving" not in update  # the model files are intact
        assert "Block traffic to 198.51.100.23, pypi.attacker.example" in update
        assert "Remove acme-feature-store==9.9.9, numpy==1.26.5" in update
        assert "affected through: fraud-scorer-v3" in report
        assert "the serving environment's packages were replaced" in report
        assert "(end of records)" in report and "no net change of the output distribution" in report


ASSESS = "[2026-11-25T09:14:26Z] ASSESS: Starting incident assessment for model intent-classifier-v1.0\n"
ISOLATE = "[2026-11-25T09:30:00Z] ISOLATE: Isolating compromised model intent-classifier-v1.0\n"
ROLLBACK = "[2026-11-25T10:00:00Z] ROLLBACK: Rolling back to last known-good model\n"


@pytest.mark.parametrize(
    ("log", "status", "remaining"),
    [
        ("", "[TO BE COMPLETED: containment status]", None),
        (ASSESS + ISOLATE, "Contained: model isolated (removed from serving) at 2026-11-25T09:30:00Z", None),
        (ASSESS + ISOLATE + ROLLBACK + "[2026-11-25T10:00:01Z] ERROR: No known-good model found for rollback\n",
         "Contained: model isolated (removed from serving) at 2026-11-25T09:30:00Z; no completed rollback (a "
         "rollback at 2026-11-25T10:00:00Z failed)", None),
        (ASSESS + ISOLATE + ROLLBACK, "Contained: model isolated (removed from serving) at 2026-11-25T09:30:00Z; no "
         "completed rollback (a rollback at 2026-11-25T10:00:00Z has no completion line)", None),
        (ASSESS + ISOLATE + ROLLBACK + "[2026-11-25T10:00:02Z] Model rolled back to: /models/archive/x\n",
         "Recovered: rolled back to a known-good model at 2026-11-25T10:00:00Z, after isolation at "
         "2026-11-25T09:30:00Z", "end"),
    ],
)  # fmt: skip
def test_containment_status_follows_the_actions_log(tmp_path, log, status, remaining):
    case, out = copy_case("false-alarm", tmp_path)
    if log:
        (case / "actions.log").write_text(log, encoding="utf-8")
    else:
        (case / "actions.log").unlink()
    inv = Investigation.open(case, out_dir=out, write=False)
    rendered = render_comms(CommsContext.from_investigation(inv, **PINNED))
    assert f"Containment status: {status}" in rendered["initial_alert"].text
    assert (inv.conclusions.milestones["recovery"].time is not None) is (remaining == "end")
    if not log:
        assert "containment details" in rendered["stakeholder_update"].todo_markers
        assert "immediate actions taken" in rendered["initial_alert"].todo_markers


# ------------------------------------------------------------------------------------------- person-only fields
COMMS = {
    "service_impact": "Scoring API degraded for 40 minutes",
    "eta": "2026-11-22T18:00Z",
    "data_exposure": "None: the feature store holds no personal data",
    "customer_impact": "3 merchants saw delayed fraud decisions",
    "what_went_well": ["Monitor alerted within 6 minutes", "Evidence captured before any change"],
    "improvement_areas": "No isolation runbook for dependency incidents\nExtra index allowed in CI",
    "action_items": [
        {"item": "Remove --extra-index-url from Jenkinsfile", "owner": "D. Okafor", "due": "2026-12-01"},
        {"text": "Add hash pinning", "owner": "Platform team"},
    ],
    "end_time": "2026-11-21T17:05:00Z",
    "total_duration": "3 h 3 min",
    "impacted_predictions": "about 40 (14:19 to 15:31)",
    "exposure_window": "2026-11-21T14:19Z to 2026-11-21T15:31Z",
    "affected_predictions": "about 40",
    "update_number": 3,
    "not_a_field": "x",
    "eta_typo_list": [1],
}


def test_comms_mapping_replaces_markers(tmp_path):
    case, out = copy_case("poisoned-dependency", tmp_path)
    with (case / "case.yaml").open("a", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump({"comms": COMMS}, sort_keys=False))
    inv = Investigation.open(case, out_dir=out)
    ctx = CommsContext.from_investigation(inv, now=NOW)
    assert inv.verdict == "compromised"
    assert len(ctx.warnings) == 2 and "'not_a_field'" in ctx.warnings[0] and "eta_typo_list" in ctx.warnings[1]
    rendered = render_comms(ctx)
    assert rendered["initial_alert"].todo_markers == ()
    assert rendered["stakeholder_update"].todo_markers == ()
    assert rendered["stakeholder_update"].subject.endswith("Update #3")
    assert rendered["post_incident_report"].todo_markers == ("due date",)  # the second item has no date
    alert, update, report = (rendered[t].text for t in TEMPLATES)
    assert "Service impact: Scoring API degraded for 40 minutes" in alert
    assert "**ETA to resolution:** 2026-11-21T18:00Z".replace("21T18", "22T18") in update
    assert "Predictions potentially impacted: about 40 (14:19 to 15:31)" in update
    assert "- Monitor alerted within 6 minutes\n- Evidence captured before any change" in report
    assert "- No isolation runbook for dependency incidents\n- Extra index allowed in CI" in report
    assert "- Remove --extra-index-url from Jenkinsfile (owner: D. Okafor; due: 2026-12-01)" in report
    assert "- Add hash pinning (owner: Platform team; due: [TO BE COMPLETED: due date])" in report
    assert "to 2026-11-21T17:05:00Z (3 h 3 min)" in report
    assert "Customer impact: 3 merchants saw delayed fraud decisions" in report
    explicit = render_comms(CommsContext.from_investigation(inv, now=NOW, update_number=5))
    assert explicit["stakeholder_update"].subject.endswith("Update #5")


# ------------------------------------------------------------------------------------- escaping and redaction
PLANTED = f"<script>alert(1)</script> [click](http://203.0.113.7/x) `rm -rf` a|b token={SECRET}"


def plant(case) -> None:
    with (case / "actions.log").open("a", encoding="utf-8") as fh:
        fh.write(f"[2026-11-21T15:40:00Z] ISOLATE: {PLANTED}\n")
        fh.write("[2026-11-21T15:40:01Z] # heading attempt\n")
    alert = {"timestamp": "2026-11-21T14:30:00Z", "type": "FILE_TAMPERED", "model": "fraud-scorer-v3",
             "file": "<img src=x>", "severity": "critical", "message": PLANTED}  # fmt: skip
    with (case / "monitor" / "alerts.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump(alert, default_flow_style=True, width=10_000).strip() + "\n")


@pytest.mark.parametrize("redactor", ["fake", "workbench"])
def test_planted_script_and_secret_do_not_appear_raw(tmp_path, redactor):
    redact = pytest.importorskip("workbench.rulepack.redact").redact if redactor == "workbench" else fake_redact
    case, out = copy_case("poisoned-dependency", tmp_path)
    plant(case)
    inv = Investigation.open(case, out_dir=out)
    inv.findings.insert(
        0,
        Finding.create(severity=Severity.CRITICAL, category="log_pattern", title=f"planted {PLANTED}",
                       evidence={"path": "logs/<b>.log", "line": 3}),
    )  # fmt: skip
    inv.conclude()  # the planted finding is among the verdict's reasons, which the alert lists
    rendered = render_comms(CommsContext.from_investigation(inv, now=NOW, redact=redact))
    for template, comm in rendered.items():
        text = comm.text
        assert "<script>" not in text and "<img" not in text and "<b>" not in text, template
        assert SECRET not in text, template
        assert not re.search(r"(?<!\\)\[click(?<!\\)\]\(|(?<!\\)`rm", text), template
        assert "\n# heading" not in text
    joined = "\n".join(c.text for c in rendered.values())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert "\\[click\\](http://203.0.113.7/x) \\`rm -rf\\` a\\|b" in joined
    assert "hf_DV" in joined and "redacted\\]" in joined
    assert "planted &lt;script&gt;alert(1)" in rendered["initial_alert"].text.split("## Summary")[1]
    mistune = pytest.importorskip("mistune")
    to_html = mistune.create_markdown(plugins=["table"])
    for template, comm in rendered.items():
        html = to_html(comm.text.split("---\n", 2)[2])  # the body, after the front-matter header
        assert "<script" not in html and "<img" not in html and "<a " not in html, template
        assert html.count("<h1>") == 1, template
        assert "<script" not in comm.to_html() and SECRET not in comm.to_html()
    without = render_comms(CommsContext.from_investigation(inv, now=NOW))
    assert SECRET in without["initial_alert"].text  # the default redactor is the identity; the lead passes one


def test_md_escape():
    assert md_escape("<a href='x'>&</a>") == "&lt;a href='x'&gt;&amp;&lt;/a&gt;"
    assert md_escape("# title") == "\\# title"
    assert md_escape("- item") == "\\- item"
    assert md_escape("* item") == "\\* item"
    assert md_escape("12. item") == "12\\. item"
    assert md_escape("a | b `c` [d](e) \\") == "a \\| b \\`c\\` \\[d\\](e) \\\\"
    assert md_escape("line one\n\n# two\x1b[31m") == "line one # two[31m".replace("[", "\\[")
    assert md_escape("x" * 1000).endswith("…") and len(md_escape("x" * 1000)) == 600
    assert md_escape("[TO BE COMPLETED: forged]") == "\\[TO BE COMPLETED: forged\\]"
    assert not MARKER.search(md_escape("[TO BE COMPLETED: forged]"))
    assert todo("eta") == "[TO BE COMPLETED: eta]" and isinstance(todo("eta"), Md)


# --------------------------------------------------------------------------------------- rendering machinery
@pytest.mark.parametrize("name", CASES)
def test_write_comms_writes_the_three_files(opened, name, tmp_path):
    inv = opened(name)
    rendered = render_comms(CommsContext.from_investigation(inv, **PINNED))
    folder = write_comms(rendered, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.md" for t in TEMPLATES)
    assert all(p.read_text(encoding="utf-8").startswith("---\ntemplate: ") for p in folder.iterdir())
    assert render_comms(CommsContext.from_investigation(inv, **PINNED), templates_dir())["initial_alert"].text == (
        (folder / "initial_alert.md").read_text(encoding="utf-8")
    )


def test_missing_field_and_none_fail_loudly(opened, tmp_path):
    ctx = CommsContext.from_investigation(opened("false-alarm"), **PINNED)
    for t in TEMPLATES:
        (tmp_path / f"{t}.md.j2").write_text("{{ incident_id }} {{ no_such_field }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError):
        render_comms(ctx, tmp_path)
    ctx.fields["eta"] = None
    with pytest.raises(TypeError):
        render_comms(ctx)
