from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.timeline.conftest import SAMPLES
from workbench.cli import cli
from workbench.timeline.export import REQUIRED_FIELDS

TAMPERED = SAMPLES / "tampered-weights"


def _isolate_row(rows: list[dict]) -> dict:
    return next(r for r in rows if r.get("step") == "isolate")


@pytest.fixture(scope="module")
def stdout_rows() -> list[dict]:
    result = CliRunner().invoke(cli, ["timeline", str(TAMPERED)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_stdout_is_timesketch_jsonl(stdout_rows):
    kinds = Counter(r["kind"] for r in stdout_rows)
    # each action line and alert once, although the investigation collects them too
    assert (kinds["ir:action"], kinds["ml:monitor:alert"], kinds["ir:marker"], kinds["ir:custody:intake"]) == (
        22,
        4,
        1,
        1,
    )
    for row in stdout_rows:
        assert list(row)[:6] == list(REQUIRED_FIELDS)
        assert isinstance(row["timestamp"], int) and isinstance(row["tag"], list)
    assert _isolate_row(stdout_rows) == {
        "message": "ISOLATE: Isolating compromised model sentiment-model-v2.1",
        "datetime": "2026-11-19T09:40:33+00:00",
        "timestamp": 1795081233000000,
        "timestamp_desc": "Action Time",
        "data_type": "ir_action",
        "tag": ["info", "ir", "milestone:containment"],
        "source_file": "actions.log",
        "severity": "info",
        "kind": "ir:action",
        "line": 8,
        "action": "ISOLATE",
        "step": "isolate",
        "count": 1,
        "lane": "Response",
        "tactic": "Response",
        "milestone": "containment",
    }
    times = [r["timestamp"] for r in stdout_rows]
    assert times == sorted(times)


def test_out_csv(tmp_path: Path, stdout_rows):
    out = tmp_path / "timeline.csv"
    result = CliRunner().invoke(cli, ["timeline", str(TAMPERED), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"-> {out}" in result.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames[:6] == list(REQUIRED_FIELDS)
    assert len(rows) == len(stdout_rows)
    isolate = _isolate_row(rows)
    assert (isolate["timestamp"], isolate["tag"], isolate["datetime"]) == (
        "1795081233000000",
        "info,ir,milestone:containment",
        "2026-11-19T09:40:33+00:00",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["timeline", "/nonexistent/case"], "/nonexistent/case: evidence path does not exist"),
        (["timeline", str(TAMPERED / "actions.log")], "evidence path is not a directory"),
        (["timeline", str(TAMPERED), "--out", "timeline.txt"], "unknown timeline format '.txt'; use .jsonl or .csv"),
        (["timeline", str(TAMPERED), "--out", "/nonexistent/dir/t.jsonl"], "folder /nonexistent/dir does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("workbench: warning:")]
    assert len(lines) == 1 and lines[0].startswith("workbench: error: ") and message in lines[0]


def test_out_inside_the_evidence_tree_is_refused(tmp_path: Path):
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(TAMPERED / "actions.log", case / "actions.log")
    result = CliRunner().invoke(cli, ["timeline", str(case), "--out", str(case / "timeline.jsonl")])
    assert result.exit_code == 2
    target = case / "timeline.jsonl"
    assert (
        result.stderr.strip() == f"workbench: error: {target}: inside the evidence tree; write the timeline elsewhere"
    )
    assert sorted(p.name for p in case.iterdir()) == ["actions.log"]


def test_missing_argument_is_a_usage_error():
    result = CliRunner().invoke(cli, ["timeline"])
    assert result.exit_code == 2
    assert "Missing argument 'CASE_DIR'" in result.stderr


def test_end_to_end_jsonl(tmp_path: Path):
    out = tmp_path / "t.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "timeline", str(SAMPLES / "false-alarm"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # a clean case: no row is an indicator or a compromise, the alert is just the alert
    assert not [r for r in rows if r.get("milestone")]
    alert = next(r for r in rows if r["kind"] == "ml:monitor:alert")
    assert (alert["datetime"], alert["data_type"], alert["severity"], alert["tactic"]) == (
        "2026-11-25T02:50:02.417000+00:00",
        "ml_monitor_alert",
        "high",
        "Impact",
    )
    kinds = Counter(r["kind"] for r in rows)
    assert {k: kinds[k] for k in ("ir:action", "ml:monitor:alert", "ir:custody:intake")} == {
        "ir:action": 7,
        "ml:monitor:alert": 1,
        "ir:custody:intake": 1,
    }
    # the benign build log only gives low-severity context, never an indicator
    assert {r["severity"] for r in rows if r["kind"] == "ci:log:match"} <= {"low", "info"}
    assert set(kinds) <= {"ir:action", "ml:monitor:alert", "ir:custody:intake", "ci:log:match"}
