"""The report's papermill engine: the executed notebook is written at the start, on failure and at the end, not twice
per cell; what ran is on disk whatever way the run ends."""

from __future__ import annotations

import nbformat
import papermill
import papermill.engines as engines
import pytest
from papermill.exceptions import PapermillExecutionError

from workbench.report import papermill_engine


def _notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def writes(monkeypatch):
    seen = []
    real = engines.write_ipynb

    def counting(nb, path):
        seen.append(path)
        return real(nb, path)

    monkeypatch.setattr(engines, "write_ipynb", counting)
    return seen


def _run(src, out, **kw):
    return papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                                      engine_name=papermill_engine.register(), **kw)  # fmt: skip


def test_twenty_cells_are_written_at_start_and_end_only(tmp_path, writes):
    src = _notebook(tmp_path / "in.ipynb", [f"print({i})" for i in range(20)])
    _run(src, tmp_path / "out.ipynb")
    assert len(writes) == 2  # papermill's own engine writes 2 + 2 x 20
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.outputs[0]["text"].strip() for c in out.cells] == [str(i) for i in range(20)]


def test_a_long_run_is_still_saved_every_few_seconds(tmp_path, writes, monkeypatch):
    monkeypatch.setattr(papermill_engine, "SAVE_EVERY", 0.0)
    src = _notebook(tmp_path / "in.ipynb", ["x = 1", "y = 2"])
    _run(src, tmp_path / "out.ipynb")
    assert len(writes) >= 4  # per-cell saves come back once the interval has passed


def test_a_failing_cell_is_saved_with_the_cells_after_it(tmp_path, writes):
    src = _notebook(tmp_path / "in.ipynb", ["a = 1", "raise ValueError('boom')", "print('after')"])
    with pytest.raises(PapermillExecutionError):
        _run(src, tmp_path / "out.ipynb", allow_errors=True)  # as the report runs it
    code = {c.source: c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"}
    assert code["raise ValueError('boom')"].outputs[0]["ename"] == "ValueError"
    assert code["print('after')"].outputs[0]["text"].strip() == "after"


def test_a_kernel_that_dies_leaves_what_ran_on_disk(tmp_path, writes):
    src = _notebook(tmp_path / "in.ipynb", ["print('before')", "import os; os._exit(1)", "print('never')"])
    with pytest.raises(Exception):  # noqa: B017 - nbclient's DeadKernelError or papermill's wrapper
        _run(src, tmp_path / "out.ipynb")
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"].strip() == "before"
    assert not out.cells[2].outputs
