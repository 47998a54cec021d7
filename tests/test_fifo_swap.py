"""An evidence file swapped for a FIFO after intake, while the run goes on: never blocked on (the kernel used to hang
forever), a warning naming the file, the other analyses run and custody says the file changed."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from workbench import custody
from workbench import investigation as investigation_module
from workbench.case import Case
from workbench.investigation import Investigation

CASE = Path(__file__).resolve().parents[1] / "evidence-samples" / "tampered-weights"
LOG = "logs/pipeline.log"


@pytest.fixture
def taken(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the bundled case and an output folder holding its intake."""
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    out = tmp_path / "out"
    custody.intake(Case.open(case), out)
    return case, out


def _swap_for_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _run_guarded(case: Path, out: Path) -> Investigation:
    """Investigation.open under a 120 s alarm: a blocked open fails the test instead of hanging it."""

    def expired(signum, frame):
        raise TimeoutError("the run blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    try:
        return Investigation.open(case, out)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_swapped_before_the_loaders_read_it(taken, monkeypatch):
    """After the inventory (Case.open), before the loaders: the loaders' pass names it and the inventory is partial."""
    case, out = taken
    real = investigation_module.collect_evidence

    def swap_then_collect(c):
        _swap_for_fifo(case / LOG)
        return real(c)

    monkeypatch.setattr(investigation_module, "collect_evidence", swap_then_collect)
    inv = _run_guarded(case, out)
    said = [w.reason for w in inv.evidence.warnings if w.path == LOG]
    assert any("now a FIFO" in r and "swapped after the inventory" in r for r in said), said
    coverage = inv.conclusions.coverage["evidence"]
    assert coverage.status == "partial" and any(u.startswith(f"{LOG}: ") for u in coverage.unexamined)
    assert inv.verdict == "compromised" and not inv.errors  # every other analysis ran
    result = inv.verify_custody()
    assert LOG in result.changed and result.exit_code == 1


def test_swapped_after_the_loaders_before_the_log_scan(taken, monkeypatch):
    """After the loaders, before the logs analysis opens it: the scan names it and the run goes on."""
    case, out = taken
    real = investigation_module.collect_evidence

    def collect_then_swap(c):
        evidence = real(c)
        _swap_for_fifo(case / LOG)
        return evidence

    monkeypatch.setattr(investigation_module, "collect_evidence", collect_then_swap)
    inv = _run_guarded(case, out)
    said = [w.reason for w in inv.evidence.warnings if w.path == LOG]
    assert any("not a regular file (a FIFO" in r for r in said), said
    assert "model" in inv.results and not inv.errors
