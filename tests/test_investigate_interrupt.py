"""Ctrl-C and earlier runs, end to end: ``workbench investigate`` in a subprocess interrupted by SIGINT during the
intake and during the kernel's work, then run again into the same folder (refused, then ``--force``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "evidence-samples"
WORKBENCH = [sys.executable, "-m", "workbench"]

pytestmark = pytest.mark.e2e


def _default_sigint() -> None:
    # a process started in the background of a shell inherits SIGINT ignored; Ctrl-C must reach this one
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(case: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*WORKBENCH, "investigate", str(case), "--out", str(out), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip


def workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBENCH, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def interrupt(proc: subprocess.Popen) -> tuple[str, str, float]:
    """SIGINT (what Ctrl-C sends); returns stdout, stderr and the seconds the process took to exit."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return out, err, time.monotonic() - sent


def test_ctrl_c_in_the_kernel_then_refused_then_forced(tmp_path):
    out = tmp_path / "out"
    proc = start(SAMPLES / "false-alarm", out)
    seen = []
    os.set_blocking(proc.stderr.fileno(), False)
    deadline = time.monotonic() + 120
    while not any(line.startswith("evidence loaders:") for line in seen):  # the kernel is running the analyses
        assert proc.poll() is None and time.monotonic() < deadline, "".join(seen)
        line = proc.stderr.readline()
        seen.append(line) if line else time.sleep(0.02)
    assert "notebook: started (the analyses run in the notebook kernel)\n" in seen
    kernels = children(proc.pid)
    assert kernels, "no kernel process found"
    os.set_blocking(proc.stderr.fileno(), True)
    stdout, stderr, took = interrupt(proc)
    stderr = "".join(seen) + stderr
    assert proc.returncode == 130, stderr
    assert took < 10 and stdout == ""
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("workbench: interrupted during the notebook stage; the kernel was stopped")
    assert "notebook: interrupted after" in stderr
    time.sleep(0.5)
    assert [k for k in kernels if alive(k)] == [], "the kernel outlived the CLI"

    # the intake had completed: the ledger verifies, and the folder is an earlier run
    assert workbench("custody", "verify", str(out)).returncode == 0
    head = json.loads((out / "custody.jsonl").read_text().splitlines()[-1])["hash"]
    again = workbench("investigate", str(SAMPLES / "false-alarm"), "--out", str(out))
    assert again.returncode == 2 and "holds an earlier run" in again.stderr and "--force" in again.stderr
    assert again.stderr.count("\n") == 1

    # a rule pack that does not validate is refused before anything is written: exit 2, named, the folder kept
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text(
        "family: planted\ndescription: a rule that does not match its own example\nrules:\n"
        "  - id: planted.bad\n    title: Planted\n    severity: high\n    pattern: 'never-matches'\n"
        "    description: planted by a test\n    examples:\n      match: ['some line']\n      no_match: ['x']\n"
    )
    refused = workbench("investigate", str(SAMPLES / "false-alarm"), "--out", str(out), "--force",
                        "-p", f"log_rules={rules}", "--json")  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert "planted.bad" in refused.stderr and "example does not match" in refused.stderr
    assert json.loads((out / "custody.jsonl").read_text().splitlines()[-1])["hash"] == head  # nothing written

    # --force with a rule pack that validates replaces the interrupted run
    (rules / "bad.yaml").write_text((rules / "bad.yaml").read_text().replace("'never-matches'", "'some line'"))
    forced = workbench("investigate", str(SAMPLES / "false-alarm"), "--out", str(out), "--force",
                       "-p", f"log_rules={rules}", "--json")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    doc = json.loads(forced.stdout)
    assert doc["exit_status"]["code"] == 0 and doc["conclusions"]["coverage"]["logs"]["status"] == "analysed"
    ledger = [json.loads(line) for line in (out / "custody.jsonl").read_text().splitlines()]
    assert ledger[0]["type"] == "intake" and all(e["hash"] != head for e in ledger), "the old ledger was kept"
    assert str(rules) in (out / "report.html").read_text().replace("<wbr/>", "")  # the run parameters name it


def test_ctrl_c_during_intake_marks_the_ledger_incomplete(tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    (case / "actions.log").write_text("[2026-11-19T09:05:12Z] ASSESS: start\n")
    with (case / "checkpoint.bin").open("wb") as fh:  # sparse: 8 GiB to hash, nothing on disk
        fh.truncate(8 * 1024**3)
    (case / "frozen_deps.txt").write_text("torch==2.2.0\n")
    out = tmp_path / "out"
    proc = start(case, out)
    ledger = out / "custody.jsonl"
    deadline = time.monotonic() + 60
    while not (ledger.exists() and ledger.read_text().count("\n") >= 2):  # intake entry and the first file
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    stdout, stderr, took = interrupt(proc)
    assert proc.returncode == 130, stderr
    assert took < 5, f"{took:.1f} s to stop hashing"
    assert stdout == "" and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("workbench: interrupted during the custody intake; the ledger")
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [e["type"] for e in entries] == ["intake", "file", "intake_incomplete"]
    assert entries[0]["files_expected"] == 3 and entries[-1]["reason"] == "interrupted by Ctrl-C"

    verify = workbench("custody", "verify", str(out))
    assert verify.returncode == 4, verify.stdout + verify.stderr
    assert "intake incomplete (interrupted by Ctrl-C): 1 of 3 files recorded" in verify.stdout
    assert "changed:" not in verify.stdout and "added:" not in verify.stdout

    again = workbench("investigate", str(case), "--out", str(out))
    assert again.returncode == 2 and "intake incomplete" in again.stderr and "--force" in again.stderr
