"""Nothing leaks: one secret of each credential kind planted in each kind of evidence (tests/leak_case.py), every
CLI command run on the case as a subprocess, and every output searched for every secret: zero hits.

Outputs searched: every file under the investigation's output folder (report.html, report.ipynb, findings.json,
timeline.jsonl, comms/*.md, custody.jsonl ...), the timeline exports (JSONL and CSV), and the stdout and stderr of
``investigate``, ``custody verify`` (text and JSON), ``scan-model``, ``diff-model``, ``scan-logs``, ``drift``,
``timeline`` (each in text and JSON) and ``monitor --once``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.leak_case import ALL_SECRETS, SECRETS, build_case, forms, leaks, name_forms

WORKBENCH = [sys.executable, "-m", "workbench"]


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBENCH, *map(str, args)], capture_output=True, text=True, timeout=600, check=False,
                          cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("leaks")
    case = build_case(base / "case")
    out = base / "out"
    procs: dict[str, subprocess.CompletedProcess] = {}
    procs["investigate"] = _run("investigate", case, "--out", out, "--json")
    procs["investigate text"] = _run("investigate", case, "--out", base / "out-text")
    procs["custody verify"] = _run("custody", "verify", out)
    procs["custody verify --json"] = _run("custody", "verify", out, "--json")
    suspect, reference = case / "models" / "suspect" / "m", case / "models" / "reference" / "m"
    for name, args in {
        "scan-model": ("scan-model", suspect), "scan-model root pickle": ("scan-model", case / "payload.pkl"),
        "diff-model": ("diff-model", suspect, reference), "scan-logs": ("scan-logs", case / "logs"),
        "scan-logs exports": ("scan-logs", case / "exports"),
        "drift": ("drift", case / "predictions" / "predictions.jsonl", "--baseline",
                  case / "predictions" / "baseline_distribution.json"),
    }.items():  # fmt: skip
        procs[name] = _run(*args)
        procs[f"{name} --json"] = _run(*args, "--json")
    procs["timeline"] = _run("timeline", case)
    procs["timeline csv"] = _run("timeline", case, "--out", base / "timeline.csv")
    procs["timeline jsonl"] = _run("timeline", case, "--out", base / "timeline.jsonl")
    # the monitor watching a model folder in which a file named after each token appears
    watched = base / "watched"
    shutil.copytree(suspect, watched)
    config = base / "monitor.json"
    settings = {"check_interval_seconds": 1, "models": [{"id": "m", "path": str(watched)}],
                "state_file": str(base / "state.json"), "alerts_file": str(base / "alerts.jsonl")}  # fmt: skip
    config.write_text(json.dumps(settings))
    procs["monitor baseline"] = _run("monitor", "--config", config, "--once")
    for form in name_forms():
        (watched / form).write_text("x")
    procs["monitor alerts"] = _run("monitor", "--config", config, "--once")
    outputs = {f"{p.relative_to(base)}": p for p in [*out.rglob("*"), base / "timeline.csv", base / "timeline.jsonl"]
               if p.is_file()}  # fmt: skip
    return {"case": case, "out": out, "procs": procs, "files": outputs}


def test_the_secrets_are_planted_where_the_issue_says(runs) -> None:
    """The test is meaningful only if each secret really is in the evidence, in every kind of evidence."""
    case = runs["case"]
    log = (case / "logs" / "pipeline.log").read_text()
    assert leaks(log) == list(ALL_SECRETS)
    assert leaks((case / "models/suspect/m/config.json").read_text()) == list(ALL_SECRETS)
    for where in ("case.yaml", "processes.txt", "monitor/alerts.jsonl", "predictions/predictions.jsonl"):
        assert leaks((case / where).read_text()) == list(SECRETS), where
    assert b"ghp_" in (case / "models/suspect/m/optimizer.pkl").read_bytes()
    names = "\n".join(p.name for p in (case / "exports").iterdir())
    assert len(leaks(names)) == len(name_forms()) >= 18
    assert len(leaks((case / "network.txt").read_text())) == len(name_forms())
    assert leaks((case / "frozen_deps.txt").read_text()) == ["github", "gitlab", "postgres-url"]


def test_every_planted_form_is_a_secret_the_shipped_rules_know() -> None:
    from workbench.rulepack.redact import redact

    assert {kind: redact(form) for kind, (_, form) in SECRETS.items() if leaks(redact(form))} == {}


def test_every_command_ran(runs) -> None:
    procs = runs["procs"]
    for name, proc in procs.items():
        assert proc.returncode in (0, 1), f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    doc = json.loads(procs["investigate"].stdout)
    assert doc["verdict"] in {"compromised", "suspicious"}
    assert {"report.html", "report.ipynb", "findings.json", "timeline.jsonl", "custody.jsonl"} <= {
        p.name for p in runs["files"].values()
    }
    assert any(p.parent.name == "comms" for p in runs["files"].values())
    # the monitor saw the files named after tokens (so its log had them to leak)
    assert "UNEXPECTED_FILE" in procs["monitor alerts"].stderr


def test_no_secret_in_any_output_file(runs) -> None:
    found = {name: hit for name, path in runs["files"].items()
             if (hit := leaks(path.read_text(encoding="utf-8", errors="replace")))}  # fmt: skip
    assert found == {}


def test_no_secret_on_any_stdout_or_stderr(runs) -> None:
    found = {}
    for name, proc in runs["procs"].items():
        for stream in ("stdout", "stderr"):
            if hit := leaks(getattr(proc, stream)):
                found[f"{name} {stream}"] = hit
    assert found == {}


def test_evidence_is_still_named_and_found(runs) -> None:
    """Redaction does not cost custody: verify re-finds every file (names with tokens too) and says intact."""
    doc = json.loads(runs["procs"]["custody verify --json"].stdout)
    assert doc["verified"] is True and doc["changed"] == doc["missing"] == doc["added"] == []
    ledger = [json.loads(line) for line in (runs["out"] / "custody.jsonl").read_text().splitlines()]
    redacted = [e for e in ledger if e.get("type") == "file" and "path_sha256" in e]
    assert len(redacted) >= len(name_forms()) and all("[redacted]" in e["path"] for e in redacted)


def test_redacted_forms_are_still_recognisable(runs) -> None:
    """The report says what was exposed where: the kept prefix of a token shows its kind."""
    html = (runs["out"] / "report.html").read_text(encoding="utf-8")
    for prefix in ("xoxb-", "ghp_", "glpat-", "npm_", "hf_", "AKIA", "AIza"):
        assert prefix in html, prefix
    assert len(forms()) == len(SECRETS)
