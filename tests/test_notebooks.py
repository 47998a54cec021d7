"""The notebooks stay thin, parameterized and clean (STYLE.md): checked on the committed files."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_library_call_per_cell(path):
    nb = json.loads(path.read_text())
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "parameters" in cell["metadata"].get("tags", []):
            continue
        tree = ast.parse("".join(cell["source"]))
        assert len(tree.body) == 1, f"more than one statement: {cell['source']}"
        assert not any(isinstance(n, ast.FunctionDef | ast.ClassDef | ast.For | ast.While) for n in ast.walk(tree))


def test_papermill_sees_every_parameter():
    params = papermill.inspect_notebook(str(NOTEBOOKS[0].parent / "investigate.ipynb"))
    assert list(params) == ["CASE_DIR", "OUT_DIR", "REFERENCE", "OPTIONS", "PROGRESS_FILE"]
