"""The whole loop on a temporary tree: monitor alert → contain assess → investigate → findings assert the tampering."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from tests.ops.conftest import read_jsonl, write_config
from tests.ops.test_monitor import _once
from workbench.commands.contain import command as contain
from workbench.report.runner import investigate

pytestmark = pytest.mark.e2e


def test_alert_to_assess_to_investigate(tmp_path, tree, signer, webhook):
    # a clean deployment of the signed v2, watched by the monitor
    deployed = tree["models"] / "sentiment"
    shutil.rmtree(deployed)
    shutil.copytree(tree["archive"] / "sentiment-v2", deployed)
    config = write_config(
        tmp_path / "monitor.json",
        [{"id": "sentiment", "path": str(deployed)}],
        alert_webhook=webhook.url,
    )
    state, alerts = tmp_path / "monitor" / "state.json", tmp_path / "monitor" / "alerts.jsonl"
    assert _once(config, state, alerts).returncode == 0  # baseline

    # the attack, then the monitor's alert
    (deployed / "model.safetensors").write_bytes(b"weights-v2-TAMPERED" * 100)
    (deployed / "optimizer.pkl").write_bytes(b"\x80\x04\x95\x10\x00cos\nsystem\n.")
    res = _once(config, state, alerts)
    assert res.returncode == 1, res.stderr
    assert webhook.ids() == {a["id"] for a in read_jsonl(alerts)}  # --once delivers before exiting
    assert {(a["type"], a["file"]) for a in read_jsonl(alerts)} == {
        ("FILE_TAMPERED", "model.safetensors"),
        ("UNEXPECTED_FILE", "optimizer.pkl"),
    }

    # containment: assess captures the evidence (and the newest verified archived version as reference)
    env = {
        "WORKBENCH_MODELS_ROOT": str(tree["models"]),
        "WORKBENCH_ARCHIVE_ROOT": str(tree["archive"]),
        "WORKBENCH_INCIDENTS_ROOT": str(tree["incidents"]),
        "WORKBENCH_QUARANTINE_ROOT": str(tree["quarantine"]),
        "WORKBENCH_SIGNING_KEY": str(signer.public),
    }
    res = CliRunner().invoke(
        contain,
        ["assess", "INC-2026-0142", "sentiment", "--monitor-config", str(config), "--alerts", str(alerts)],
        env=env,
    )
    assert res.exit_code == 0, res.output
    case = tree["incidents"] / "INC-2026-0142"

    # the investigation of the captured folder
    result = investigate(case, tmp_path / "report")
    doc = json.loads(result.findings.read_text())
    assert doc["incident_id"] == "INC-2026-0142"
    assert doc["verdict"] == "compromised" and result.verdict == "compromised"
    assert doc["custody"]["verified"] is True
    # every captured file loaded cleanly; the analyses may still warn about the hostile pickle they dissected
    assert [w for w in doc.get("warnings", []) if not w["path"].startswith("models/")] == []
    found = {(f["category"], f["evidence"].get("path")) for f in doc["findings"]}
    assert ("model_file_tampered", "models/suspect/sentiment/model.safetensors") in found
    assert ("unexpected_model_file", "models/suspect/sentiment/optimizer.pkl") in found
    assert ("dangerous_file_type", "models/suspect/sentiment/optimizer.pkl") in found
    tampered = next(f for f in doc["findings"] if f["category"] == "model_file_tampered")
    assert tampered["severity"] == "critical"
    alert = next(a for a in read_jsonl(alerts) if a["type"] == "FILE_TAMPERED")  # the monitor and the report agree
    assert (tampered["evidence"]["expected_sha256"], tampered["evidence"]["sha256"]) == (
        alert["expected_hash"],
        alert["actual_hash"],
    )
    timeline = [json.loads(line) for line in (result.out_dir / "timeline.jsonl").read_text().splitlines()]
    alert_events = sorted(r["message"] for r in timeline if r["kind"] == "ml:monitor:alert")
    assert len(alert_events) == 2 and "FILE_TAMPERED" in alert_events[0] and "UNEXPECTED_FILE" in alert_events[1]
    assert any(r["kind"] == "ir:action" and "Starting incident assessment" in r["message"] for r in timeline)
