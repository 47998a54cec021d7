"""``runner.investigate`` refuses unusable input before writing anything (real folders, no kernel started),
replaces an earlier run's folder only with ``force`` and only when it holds workbench outputs alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import papermill
import pytest

from workbench import custody
from workbench.case import Case
from workbench.errors import CustodyError, EvidenceError
from workbench.parameters import ParameterError
from workbench.report import kernel, runner
from workbench.resources import notebook_path

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


@pytest.fixture
def case(tmp_path):
    root = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", root)
    return root


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail loudly if a check let the run go as far as the notebook."""

    def execute(*a, **k):
        raise AssertionError("the run reached the notebook")

    monkeypatch.setattr(kernel, "execute", execute)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"parameters": {"drift_windw": "1h"}}, ParameterError, "valid options: network_allowlist"),
        ({"parameters": {"drift_alpha": "often"}}, ParameterError, "expected a number"),
        ({"reference": "/no/such/model"}, EvidenceError, "reference model folder does not exist"),
    ],
)
def test_bad_input_writes_nothing(case, tmp_path, no_kernel, kwargs, error, needle):
    before = snapshot(case)
    out = tmp_path / "out"
    with pytest.raises(error, match=needle):
        runner.investigate(case, out, **kwargs)
    assert not out.exists()
    assert snapshot(case) == before


def test_reference_must_be_a_folder_outside_the_output(case, tmp_path, no_kernel):
    out = tmp_path / "out"
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(EvidenceError, match="not a folder"):
        runner.investigate(case, out, reference=tmp_path / "weights.bin")
    out.mkdir()
    (out / "ref").mkdir()
    with pytest.raises(EvidenceError, match="inside the output folder"):
        runner.investigate(case, out, reference=out / "ref")
    assert sorted(p.name for p in out.iterdir()) == ["ref"]


def test_evidence_inside_the_output_folder_refused(case, tmp_path, no_kernel):
    with pytest.raises(CustodyError, match="lies inside this output folder"):
        runner.investigate(case, tmp_path, force=True)
    assert (case / "case.yaml").exists() or any(case.iterdir())


def test_foreign_folder_refused_even_with_force(case, tmp_path, no_kernel):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(CustodyError, match="not a workbench output folder"):
            runner.investigate(case, out, force=force)
    assert snapshot(out) == {"todo.txt": b"mine"}


def test_earlier_run_refused_without_force_and_kept(case, tmp_path, no_kernel):
    out = tmp_path / "out"
    custody.intake(Case.open(case), out)
    (out / "findings.json").write_text("{}")
    before = snapshot(out)
    with pytest.raises(CustodyError, match=r"holds an earlier run .*pass --force"):
        runner.investigate(case, out)
    assert snapshot(out) == before


def test_force_refuses_a_run_folder_holding_other_files(case, tmp_path, no_kernel):
    out = tmp_path / "out"
    custody.intake(Case.open(case), out)
    (out / "my-notes.md").write_text("analyst notes")
    before = snapshot(out)
    with pytest.raises(CustodyError, match=r"--force refused: .*\(my-notes\.md\)"):
        runner.investigate(case, out, force=True)
    assert snapshot(out) == before


def test_interrupted_intake_folder_is_named_as_such(case, tmp_path, no_kernel, monkeypatch):
    out = tmp_path / "out"

    def interrupted(paths, **kwargs):
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(custody, "iter_hashes", interrupted)
    with pytest.raises(runner.Interrupted) as err:
        runner.investigate(case, out)
    assert err.value.stage == "custody intake" and err.value.out_dir == out.resolve()
    monkeypatch.undo()
    monkeypatch.setattr(kernel, "execute", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    with pytest.raises(CustodyError, match=r"intake incomplete \(interrupted by Ctrl-C\).*pass --force"):
        runner.investigate(case, out)


def test_force_replaces_an_earlier_run(case, tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = custody.intake(Case.open(case), out)
    (out / "report.html").write_text("old report")
    (out / "comms").mkdir()
    (out / "comms" / "initial_alert.md").write_text("old")
    seen = {}

    def execute(source, executed, params, cwd, follower):
        seen["files"] = sorted(p.name for p in Path(cwd).iterdir())
        seen["params"] = params
        return None

    monkeypatch.setattr(kernel, "execute", execute)
    result = runner.investigate(case, out, force=True, parameters={"drift_alpha": 0.01})
    assert seen["files"] == ["custody.jsonl"], "the earlier run's outputs were not removed"
    new = json.loads((out / "custody.jsonl").read_text().splitlines()[0])
    assert new["hash"] != old.entries[0]["hash"] and custody.Ledger.read(out / "custody.jsonl")[1] == []
    assert seen["params"]["OPTIONS"] == {"drift_alpha": 0.01} and seen["params"]["PROGRESS_FILE"].endswith(".jsonl")
    assert list(seen["params"]) == list(papermill.inspect_notebook(str(notebook_path())))  # every one, no other
    assert not (out / "report.html").exists()
    assert result.error is not None and "findings.json" in str(result.error)  # the stand-in notebook wrote nothing
    assert [s["stage"] for s in result.stages] == ["custody intake", "notebook"]


def test_pdf_without_chromium_is_refused_before_intake(case, tmp_path, no_kernel, monkeypatch):
    from workbench.report import pdf

    monkeypatch.setattr(pdf, "find_chromium", lambda: None)
    with pytest.raises(runner.MissingTool, match="Chromium"):
        runner.investigate(case, tmp_path / "out", pdf=True)
    assert not (tmp_path / "out").exists()
