"""Session-wide fixtures: each bundled case investigated once, end to end, by the CLI (for the e2e tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "evidence-samples"
CASES = ("tampered-weights", "poisoned-dependency", "false-alarm")


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> dict[str, Path]:
    """``{case name: output folder}`` of ``workbench investigate`` on every bundled case (run once a session)."""
    base = tmp_path_factory.mktemp("sample-runs")
    out = {}
    for name in CASES:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench", "investigate", str(SAMPLES / name), "--out", str(base / name)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out[name] = base / name
    return out
