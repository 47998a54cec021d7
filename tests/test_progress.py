"""Progress: stage records, the console's lines and bar, the file a kernel writes and the CLI follows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from workbench import progress as progress_mod
from workbench.progress import ConsoleSink, FileSink, Follower, Progress

SAMPLES = Path(__file__).resolve().parents[1] / "evidence-samples"


def test_stage_records_duration_detail_and_how_it_ended():
    records = []
    p = Progress(records.append)
    with p.stage("custody intake") as info:
        info["detail"] = "3 files"
    with pytest.raises(KeyboardInterrupt), p.stage("notebook", announce="in the kernel"):
        raise KeyboardInterrupt
    with pytest.raises(ValueError), p.stage("html report"):
        raise ValueError("x")
    assert [r["stage"] for r in records] == ["custody intake", "notebook", "notebook", "html report"]
    assert records[0]["detail"] == "3 files" and records[0]["seconds"] >= 0
    assert records[1] == {"stage": "notebook", "started": True, "detail": "in the kernel"}
    assert records[2]["interrupted"] is True
    assert records[3]["failed"] == "ValueError"


def test_console_prints_one_line_per_stage_and_no_bar_off_a_terminal():
    stream = io.StringIO()  # not a terminal
    sink = ConsoleSink(stream)
    assert sink.bar is False
    p = Progress(sink)
    with p.stage("pipeline logs"):
        p.task("custody intake: hashing", 1, 2**30)
    assert stream.getvalue().count("\n") == 1 and "\r" not in stream.getvalue()
    assert stream.getvalue().startswith("pipeline logs: ") and stream.getvalue().rstrip().endswith(" s")


def test_console_bar_updates_in_place_and_is_cleared_before_a_line():
    stream = io.StringIO()
    p = Progress(ConsoleSink(stream, bar=True))
    p.task("tensor diff models/suspect/m/model.safetensors", 2**29, 2**30)
    assert stream.getvalue().startswith("\r") and "50%" in stream.getvalue() and "\n" not in stream.getvalue()
    p.task("tensor diff models/suspect/a-model-with-a-very-long-name-v2.1/model-00001-of-00002.safetensors", 1, 2**30)
    line = stream.getvalue().split("\r")[-1]
    assert line.startswith("tensor diff …") and "model-00001-of-00002.safetensors [" in line
    with p.stage("model forensics"):
        pass
    tail = stream.getvalue().split("\r")[-1]
    assert tail.startswith("model forensics: "), "the bar was not cleared before the stage line"


def test_small_files_get_no_counter():
    records = []
    Progress(records.append).task("x", 10, progress_mod.BAR_MIN_BYTES - 1)
    assert records == []


def test_evidence_controlled_labels_cannot_send_terminal_escapes():
    stream = io.StringIO()
    sink = ConsoleSink(stream, bar=True)
    sink({"task": "models/\x1b]0;pwned\x07evil.bin", "done": 1, "total": 2})
    sink({"stage": "\x1b[2Jstage", "seconds": 1.0})
    assert "\x1b" not in stream.getvalue() and "\x07" not in stream.getvalue()


def test_follower_reads_complete_lines_only(tmp_path):
    path = tmp_path / "progress.jsonl"
    got = []
    follower = Follower(path, got.append)
    assert follower.poll() == 0  # no file yet
    FileSink(path)({"stage": "evidence loaders", "seconds": 0.2})
    with path.open("a") as fh:
        fh.write('{"stage": "model forensics", ')  # a record being written
    assert follower.poll() == 1 and got == [{"stage": "evidence loaders", "seconds": 0.2}]
    with path.open("a") as fh:
        fh.write('"seconds": 1.5}\nnot json\n[1]\n')
    assert follower.poll() == 1 and got[-1] == {"stage": "model forensics", "seconds": 1.5}
    assert follower.poll() == 0


def test_tensor_diff_reports_bytes_compared(monkeypatch):
    from workbench.model.dirdiff import diff_model

    monkeypatch.setattr(progress_mod, "BAR_MIN_BYTES", 0)
    models = SAMPLES / "tampered-weights" / "models"
    suspect = next(p for p in (models / "suspect").iterdir() if p.is_dir())
    records = []
    diff_model(suspect, models / "reference" / suspect.name, progress=Progress(records.append))
    tasks = [r for r in records if "task" in r]
    assert tasks, "no byte counter during the tensor diff"
    last = tasks[-1]
    assert last["task"].startswith("tensor diff ") and last["done"] == last["total"] > 0
    from workbench.model.safetensors_format import read_header

    sus = {t.name: t.nbytes for t in read_header(suspect / "model.safetensors").tensors}
    ref = {t.name for t in read_header(models / "reference" / suspect.name / "model.safetensors").tensors}
    assert last["total"] == sum(n for name, n in sus.items() if name in ref)
