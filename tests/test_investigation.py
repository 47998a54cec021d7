"""The run: a library call that writes every contract output with no notebook; failures and gaps are counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench import sections as inv_mod
from workbench.investigation import Investigation
from workbench.report.view import ReportView

SAMPLES = Path(__file__).resolve().parents[1] / "evidence-samples"


@pytest.fixture
def case(tmp_path):
    root = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", root)
    return root


def test_the_run_writes_every_contract_output_without_a_notebook(case, tmp_path):
    out = tmp_path / "out"
    inv = Investigation.open(case, out)
    assert sorted(p.name for p in out.iterdir()) == ["comms", "custody.jsonl", "findings.json", "timeline.jsonl"]
    assert sorted(p.name for p in (out / "comms").iterdir()) == [
        "initial_alert.md", "post_incident_report.md", "stakeholder_update.md"]  # fmt: skip
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert doc["verdict"] == doc["conclusions"]["verdict"] == inv.conclusions.verdict == "clean"
    assert doc["exposure"] is None and doc["conclusions"]["compromise"] is None
    assert list(doc["conclusions"]["coverage"]) == ["evidence", *inv_mod.SECTIONS]
    assert inv.outputs["findings"] == out / "findings.json"


def test_analysis_warnings_are_merged_once(case, tmp_path):
    with (case / "logs" / "pipeline.log").open("ab") as fh:
        fh.write(b"2026-11-03T10:21:06.000000Z bad \xff\xfe bytes\n")
    shutil.rmtree(case / "keys")
    inv = Investigation.open(case, tmp_path / "out", write=False)
    texts = [str(w) for w in inv.evidence.warnings]
    assert sum("pipeline.log" in t and "UTF-8" in t for t in texts) == 1, texts
    assert any("public_key 'keys/cosign.pub' is missing" in t for t in texts), texts


def test_a_failing_analysis_is_isolated_counted_and_forbids_clean(case, tmp_path, monkeypatch):
    monkeypatch.setitem(inv_mod.SECTIONS, "host", inv_mod.Section("Host state", "workbench.no_such_module:analyse"))
    inv = Investigation.open(case, tmp_path / "out")
    assert "host" in inv.errors and "drift" in inv.results and "logs" in inv.results
    c = inv.conclusions
    assert c.coverage["host"].status == "failed" and "ModuleNotFoundError" in c.coverage["host"].detail
    assert c.verdict == "inconclusive"  # the same evidence is clean when the host analysis runs
    assert "host state analysis failed" in c.reasons[0].sentence
    html = "".join(str(x) for x in ReportView(inv).section("host").items)
    assert "This analysis failed: ModuleNotFoundError" in html
    assert inv.findings_document()["analysis_errors"]["host"].startswith("ModuleNotFoundError")


def test_a_folder_with_one_benign_log_is_inconclusive(tmp_path):
    root = tmp_path / "one-log"
    (root / "logs").mkdir(parents=True)
    shutil.copy(SAMPLES / "false-alarm" / "logs" / "pipeline.log", root / "logs" / "pipeline.log")
    inv = Investigation.open(root, tmp_path / "out")
    c = inv.conclusions
    assert c.verdict == "inconclusive"
    assert {k for k, v in c.coverage.items() if v.status == "analysed"} == {"evidence", "logs"}
    assert c.coverage["logs"].files == ("logs/pipeline.log",)
    assert c.coverage["model"].detail == "no model folder in the case"
    doc = json.loads((tmp_path / "out" / "findings.json").read_text(encoding="utf-8"))
    assert doc["verdict"] == "inconclusive" and doc["conclusions"]["exposure"] is None


def test_tampered_reasons_lead_with_the_model_and_include_live_activity(tmp_path):
    inv = Investigation.open(SAMPLES / "tampered-weights", tmp_path / "out", write=False)
    groups = [r.group for r in inv.conclusions.reasons]
    assert groups[:4] == ["model_code", "weights", "artefacts", "live_activity"]
    assert inv.verdict == "compromised"


def test_clean_verdict_says_the_alert_is_not_corroborated(tmp_path):
    inv = Investigation.open(SAMPLES / "false-alarm", tmp_path / "out", write=False)
    reasons = inv.conclusions.reasons
    assert inv.verdict == "clean"
    assert reasons[1].sentence.startswith(
        "Not corroborated by any analysis: The integrity monitor raised 1 alert(s): BEHAVIOR_DRIFT"
    )


def test_a_model_that_could_not_be_compared_is_a_limit_of_the_coverage(case, tmp_path):
    shutil.rmtree(case / "models" / "reference")
    for sig in (case / "models" / "suspect").glob("*/.signatures"):
        shutil.rmtree(sig)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    model = inv.conclusions.coverage["model"]
    assert model.status == "analysed"
    assert len(model.limits) == 1 and "was not compared (no reference copy and no signed manifest)" in model.limits[0]
