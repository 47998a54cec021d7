"""The analyst's live session: setup shows its stages, says where the outputs are, and a second setup with the
same parameters returns the kept run without re-hashing or re-analysing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import investigation
from workbench.report import live
from workbench.report.notebook import setup

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


@pytest.fixture
def shown(monkeypatch):
    """Every HTML the setup cell displays (first displays and handle updates), in order."""
    out: list[str] = []

    class Handle:
        def update(self, obj):
            out.append(obj.data)

    def display(obj, *args, display_id=None, **kw):
        out.append(obj.data)
        return Handle() if display_id else None

    monkeypatch.setattr("IPython.display.display", display)
    monkeypatch.setattr("workbench.report.notebook.display", display)
    live.forget()
    yield out
    live.forget()


@pytest.fixture
def opens(monkeypatch):
    calls = []
    real = investigation.Investigation.open.__func__

    def counting(cls, *args, **kw):
        calls.append(args[0])
        return real(cls, *args, **kw)

    monkeypatch.setattr(investigation.Investigation, "open", classmethod(counting))
    return calls


def test_setup_shows_stages_and_where_outputs_go(shown, opens, tmp_path):
    view = setup(SAMPLES / "false-alarm", tmp_path / "out")
    progress = [h for h in shown if "wb-live-progress" in h]
    assert progress and "Investigation running" in progress[0]
    assert "Investigation done in" in progress[-1] and "model forensics: " in progress[-1]
    where = [h for h in shown if "wb-live-where" in h]
    assert len(where) == 1 and str(tmp_path / "out") in where[0] and "temporary" not in where[0]
    assert view.investigation.out_dir == tmp_path / "out" and len(opens) == 1


def test_setup_without_out_dir_says_the_folder_is_temporary(shown, opens):
    view = setup(SAMPLES / "false-alarm")
    where = next(h for h in shown if "wb-live-where" in h)
    assert "temporary folder" in where and str(view.investigation.out_dir) in where


def test_same_parameters_reuse_the_run(shown, opens, tmp_path):
    first = setup(SAMPLES / "false-alarm", tmp_path / "out", options={"drift_window": "6h"})
    ledger = (tmp_path / "out" / "custody.jsonl").read_bytes()
    shown.clear()
    again = setup(str(SAMPLES / "false-alarm"), str(tmp_path / "out"), options={"drift_window": "6h"})
    assert again is first and len(opens) == 1  # nothing opened, hashed or analysed again
    assert not any("wb-live-progress" in h for h in shown)
    assert any("Reusing this kernel's run" in h for h in shown)
    assert (tmp_path / "out" / "custody.jsonl").read_bytes() == ledger


def test_other_parameters_or_rerun_run_again(shown, opens, tmp_path):
    first = setup(SAMPLES / "false-alarm", tmp_path / "out")
    other = setup(SAMPLES / "false-alarm", tmp_path / "out", options={"drift_window": "6h"})
    forced = setup(SAMPLES / "false-alarm", tmp_path / "out", rerun=True)
    assert len({id(first), id(other), id(forced)}) == 3 and len(opens) == 3


def test_automated_runs_are_not_kept(shown, opens, tmp_path):
    progress = tmp_path / "progress.jsonl"
    setup(SAMPLES / "false-alarm", tmp_path / "out", progress_file=progress)
    setup(SAMPLES / "false-alarm", tmp_path / "out", progress_file=progress)
    assert len(opens) == 2 and progress.read_text().count('"stage"') > 4
    assert not any("wb-live" in h for h in shown)  # nothing of the live session in the report
