"""Investigation: analyses' warnings reach the report once; a failing analysis fails only its own section."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench import investigation as inv_mod
from workbench.investigation import Investigation, headline

SAMPLES = Path(__file__).resolve().parents[1] / "evidence-samples"


@pytest.fixture
def case(tmp_path):
    root = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", root)
    return root


def test_analysis_warnings_are_merged_once(case, tmp_path):
    with (case / "logs" / "pipeline.log").open("ab") as fh:
        fh.write(b"2026-11-03T10:21:06.000000Z bad \xff\xfe bytes\n")
    shutil.rmtree(case / "keys")
    inv = Investigation.open(case, tmp_path / "out")
    texts = [str(w) for w in inv.evidence.warnings]
    assert sum("pipeline.log" in t and "UTF-8" in t for t in texts) == 1, texts
    assert any("no public key" in t for t in texts), texts


def test_failing_analysis_is_isolated(case, tmp_path, monkeypatch):
    monkeypatch.setitem(inv_mod.SECTIONS, "host", ("Host state", "workbench.no_such_module:analyse", None))
    inv = Investigation.open(case, tmp_path / "out")
    assert "host" in inv.errors and "drift" in inv.results and "logs" in inv.results
    with pytest.raises(ModuleNotFoundError):
        inv.section("host")
    assert inv.findings_document()["analysis_errors"]["host"].startswith("ModuleNotFoundError")


def test_headline_prefers_model_attack_and_one_per_category(tmp_path):
    inv = Investigation.open(SAMPLES / "tampered-weights", tmp_path / "out")
    top = headline(inv.findings, 3)
    assert [f.category for f in top] == ["pickle_dangerous_import", "tensor_modified", "model_file_tampered"]
    assert inv.verdict[0] == "compromised"


def test_clean_verdict_says_the_alert_is_not_corroborated(tmp_path):
    inv = Investigation.open(SAMPLES / "false-alarm", tmp_path / "out")
    verdict, reasons = inv.verdict
    assert verdict == "clean"
    assert reasons[1].startswith(
        "not corroborated by any analysis: The integrity monitor raised 1 alert(s): BEHAVIOR_DRIFT"
    )
