"""``workbench drift``: the CLI runner on sample files, the JSON contract, exit statuses and wrong arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import workbench.drift as drift
from workbench.cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


def case_files(case: str) -> tuple[str, str]:
    folder = SAMPLES / case / "predictions"
    if not folder.is_dir():
        pytest.skip("evidence-samples not generated")
    pred = next(p for p in folder.iterdir() if p.name.startswith("predictions."))
    return str(pred), str(folder / "baseline_distribution.json")


def run(*args: str):
    return CliRunner().invoke(cli, ["drift", *args])


def test_json_document_on_the_tampered_sample() -> None:
    pred, base = case_files("tampered-weights")
    result = run(pred, "--baseline", base, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert {"findings", "exposure", "windows"} <= set(doc)
    exposure = doc["exposure"]
    assert set(exposure) >= {"onset", "onset_interval", "end", "predictions", "excess_by_class"}
    assert exposure["onset"].startswith("2026-11-1") and exposure["onset"].endswith("Z")
    assert doc["findings"][0]["category"] == "behavior_drift"
    assert doc["findings"][0]["evidence"]["path"] == pred  # relative to the argument given
    assert len(doc["windows"]) == 13 and doc["windows"][0]["start"].endswith("Z")


def test_fail_on_and_text_output() -> None:
    pred, base = case_files("tampered-weights")
    assert run(pred, "--baseline", base, "--fail-on", "high").exit_code == 1
    text = run(pred, "--baseline", base, "--window", "12h", "--fail-on", "critical")
    assert text.exit_code == 0
    assert "verdict: drift" in text.output and "onset 95% interval:" in text.output
    assert "windows (12h):" in text.output


def test_no_drift_sample_exits_zero_with_null_exposure() -> None:
    pred, base = case_files("poisoned-dependency")  # CSV with a 'label' column
    result = run(pred, "--baseline", base, "--json", "--fail-on", "medium")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["exposure"] is None and doc["findings"] == [] and doc["verdict"] == "no drift"


def test_wrong_arguments(tmp_path: Path) -> None:
    pred, base = case_files("false-alarm")
    missing = run(pred)  # --baseline is required
    assert missing.exit_code == 2 and "--baseline" in missing.output
    for args, message in [
        ((str(tmp_path / "nope.jsonl"), "--baseline", base), "no such file"),
        ((pred, "--baseline", base, "--window", "fortnight"), "--window"),
        ((pred, "--baseline", base, "--window", "0"), "--window"),
    ]:
        result = run(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("workbench: error:") and message in result.stderr
        assert result.stderr.count("\n") == 1
    assert run(pred, "--baseline", base, "--fail-on", "bogus").exit_code == 2


def test_unusable_input_is_a_one_line_error(tmp_path: Path) -> None:
    pred, base = case_files("false-alarm")
    bad = tmp_path / "predictions.csv"
    bad.write_text("time,score\n2026-11-01T00:00:00Z,0.3\n")
    result = run(str(bad), "--baseline", base)
    assert result.exit_code == 2 and "predicted_class" in result.stderr and result.stderr.count("\n") == 1
    garbage = tmp_path / "baseline.json"
    garbage.write_text("{not json")
    result = run(pred, "--baseline", str(garbage))
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


def test_hostile_rows_are_warned_not_fatal(tmp_path: Path) -> None:
    pred = tmp_path / "predictions.jsonl"
    rows = [json.dumps({"timestamp": f"2026-11-01T{h:02d}:00:00Z", "predicted_class": "a", "request_id": str(h)})
            for h in range(20)]  # fmt: skip
    pred.write_text("\n".join([*rows, rows[3], "garbage", json.dumps({"timestamp": "never", "label": "b"})]) + "\n")
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps({"a": 3, "b": 1}))
    result = run(str(pred), "--baseline", str(base), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "insufficient data" and doc["exposure"] is None
    reasons = {(w["line"], w["reason"].split(";")[0]) for w in doc["warnings"]}
    assert (21, "duplicate of " + str(pred) + " line 4") in reasons
    assert any(line == 22 for line, _ in reasons) and any(line == 23 for line, _ in reasons)


def test_cli_passes_its_arguments_to_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    pred, base = case_files("false-alarm")
    seen = {}
    real = drift.analyse_stream

    def spy(stream, baseline, **kwargs):
        seen.update(kwargs, n=len(stream), classes=baseline.labels)
        return real(stream, baseline, **kwargs)

    monkeypatch.setattr(drift, "analyse_stream", spy)
    assert run(pred, "--baseline", base, "--window", "500").exit_code == 0
    assert seen == {"window": "500", "n": 3934, "classes": ("account", "billing", "other", "technical")}
