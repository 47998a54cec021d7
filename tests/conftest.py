"""Session-wide fixtures: each bundled case investigated once, end to end, by the CLI, for every e2e test.

The tampered case runs as a CI gate would (``--json --fail-on high``: exit 1), the poisoned-dependency case with
``--json``, the false alarm plainly; each run's stdout and stderr are kept for the tests that read them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "evidence-samples"
CASES = ("tampered-weights", "poisoned-dependency", "false-alarm", "poisoned-package")
#: how each bundled case is run once for the whole session
ARGS = {"tampered-weights": ("--json", "--fail-on", "high"), "poisoned-dependency": ("--json",), "false-alarm": (),
        "poisoned-package": ("--json", "--fail-on", "critical")}  # fmt: skip


@pytest.fixture(scope="session")
def sample_procs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """``{case name: (output folder, completed process)}`` of ``workbench investigate`` on every bundled case."""
    base = tmp_path_factory.mktemp("sample-runs")
    out = {}
    for name, extra in ARGS.items():
        proc = subprocess.run(
            [sys.executable, "-m", "workbench", "investigate", str(SAMPLES / name), "--out", str(base / name), *extra],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == (1 if "--fail-on" in extra else 0), proc.stderr
        out[name] = (base / name, proc)
    return out


@pytest.fixture(scope="session")
def sample_runs(sample_procs) -> dict[str, Path]:
    """``{case name: output folder}`` of the session's runs."""
    return {name: out for name, (out, _) in sample_procs.items()}


@pytest.fixture(scope="session")
def printed_runs(tmp_path_factory) -> dict[str, Path]:
    """``{case name: output folder}`` of ``workbench investigate --pdf`` on every bundled case, run side by side
    once for the session (they mostly wait on the kernel and the browser); shared by the PDF tests."""
    base = tmp_path_factory.mktemp("printed-runs")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "workbench", "investigate", str(SAMPLES / name), "--out", str(base / name), "--pdf"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for name in CASES
    }  # fmt: skip
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0 and (base / name / "report.pdf").is_file(), stderr[-2000:]
    return {name: base / name for name in CASES}
