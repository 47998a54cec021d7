"""The model section on PyTorch checkpoint pairs: tensor findings, what could not be compared, limits."""

from __future__ import annotations

from pathlib import Path

from tests.model import checkpoint_writers as cw
from tests.model.test_tensor_torch import ADDED, EMB, RANK1, ROW, edited, reference_arrays
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.model.analysis import analyse


def _case(tmp_path: Path, *, compress: str | None = None) -> Path:
    root = tmp_path / "case"
    ref = reference_arrays()
    for side, arrays in (("reference", ref), ("suspect", edited(ref))):
        folder = root / "models" / side / "m"
        folder.mkdir(parents=True)
        cw.write_torch_zip(folder / "pytorch_model.bin", cw.simple(arrays), compress_key=compress)
    return root


def _analyse(root: Path):
    case = Case.open(root)
    return analyse(AnalysisContext(case=case, evidence=collect_evidence(case), reference=case.model_dir("reference")))


def test_pytorch_pair_diffed_in_the_model_section(tmp_path: Path) -> None:
    result = _analyse(_case(tmp_path))
    tensors = result.data["tensors"]
    changed = dict(zip(tensors["name"], tensors["status"], strict=True))
    assert {n: s for n, s in changed.items() if s != "identical"} == {ROW: "modified", RANK1: "modified",
                                                                      ADDED: "added"}  # fmt: skip
    found = {(f.category, f.evidence.get("tensor"), f.severity.value) for f in result.findings
             if f.category.startswith("tensor_")}  # fmt: skip
    assert found == {("tensor_modified", ROW, "high"), ("tensor_modified", RANK1, "critical"),
                     ("tensor_added", ADDED, "high")}  # fmt: skip
    assert next(f for f in result.findings if f.evidence.get("tensor") == ROW).evidence["path"] == (
        "models/suspect/m/pytorch_model.bin"
    )
    assert result.unexamined == []


def test_uncompared_storage_makes_the_section_partial(tmp_path: Path, monkeypatch) -> None:
    from workbench.model import torch_checkpoint

    monkeypatch.setattr(torch_checkpoint, "MAX_INFLATED_BYTES", 0)
    result = _analyse(_case(tmp_path, compress="3"))
    why = "storage member archive/data/3 is compressed and would take the inflated bytes past the 0-byte cap"
    assert result.unexamined == [
        f"models/suspect/m/pytorch_model.bin: tensor {EMB} not compared: {why}: not inflated",
        f"models/reference/m/pytorch_model.bin: tensor {EMB} not compared: {why}: not inflated",
    ]


def test_tensor_table_shows_reference_dtype_and_shape_only_where_they_differ(small_model) -> None:
    import numpy as np

    from workbench.model.dirdiff import diff_model
    from workbench.model.plots import render_diff

    base = dict(small_model.base)
    edited = dict(base, **{"classifier.bias": base["classifier.bias"] + np.float32(0.5)})
    same_dtype = "".join(
        x for x in render_diff(diff_model(small_model("a", edited), small_model("b"))) if isinstance(x, str)
    ).replace("<wbr>", "")
    assert (
        "classifier.bias" in same_dtype and "reference_dtype" not in same_dtype and "reference_shape" not in same_dtype
    )
    recast = dict(base, **{"classifier.bias": base["classifier.bias"].astype(np.float16)})
    changed = "".join(
        x for x in render_diff(diff_model(small_model("c", recast), small_model("d"))) if isinstance(x, str)
    ).replace("<wbr>", "")
    assert "reference_dtype" in changed and "reference_shape" not in changed
