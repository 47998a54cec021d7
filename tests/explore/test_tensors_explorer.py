"""The tensor explorer on real checkpoints: the tampered sample's rank-1 edit and backdoored embedding rows read
back from the files, and a built case with every kind of tensor the pane must explain (vector, 3-D, float8, added,
removed, reshaped, large, capped, PyTorch zip); the widget reacts to the picker (no browser here)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.model import checkpoint_writers as cw
from workbench.explore import tensor_change as tc
from workbench.explore.common import Explorer
from workbench.explore.tensors import (
    heat_figure,
    spectrum_figure,
    tensor_change,
    tensor_choices,
    tensor_detail,
    tensor_explorer,
)
from workbench.investigation import Investigation

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
HOSTILE = "<script>alert(1)</script>.weight"
_CODES = {"F32": "<f4", "F8_E4M3": "<u1"}


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"), write=False)


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html.replace("<wbr>", ""))


def _choice(inv, name: str):
    return next(c for c in tensor_choices(inv) if c.diff.name == name)


# ---------------------------------------------------------------------------------------------- the sample case
def test_modified_tensors_come_first_then_the_rest(inv):
    choices = tensor_choices(inv)
    frame = inv.results["model"].data["tensors"]
    assert sorted(c.diff.name for c in choices) == sorted(frame["name"])
    assert [c.diff.status for c in choices[:2]] == ["modified", "modified"]
    assert {c.diff.status for c in choices[2:]} == {"identical"}
    assert choices[0].label == "embeddings.weight (modified)"


def test_rank1_edit_read_back_has_one_singular_value(inv):
    change = tensor_change(inv, _choice(inv, "encoder.layer.0.mlp.fc2.weight"))
    assert change.reason == "" and change.method == "exact"
    assert change.spectrum[0] == pytest.approx(1.0213, abs=1e-4)  # the sample's s (README: s = 1.0213)
    assert change.spectrum[1] < 1e-6 * change.spectrum[0]  # float32 rounding only
    energy = change.spectrum[0] ** 2 / change.frobenius**2
    assert energy == pytest.approx(change.choice.diff.top_singular_energy, abs=1e-6)
    assert change.heat.shape == (16, 32) and change.changed == 512
    assert change.max_abs == pytest.approx(change.choice.diff.max_abs_change, rel=1e-6)
    assert list(change.table["row"]) == list(range(16)) and set(change.table["changed_elements"]) == {32}


def test_backdoored_embedding_rows_and_their_tokens(inv):
    change = tensor_change(inv, _choice(inv, "embeddings.weight"))
    assert change.heat.shape == (64, 16)
    assert list(np.flatnonzero(change.heat.max(axis=1))) == [54, 55, 56]
    assert list(change.table["row"]) == [54, 55, 56] and list(change.table["token"]) == ["cf", "mn", "bb"]
    assert list(change.table["changed_elements"]) == [16, 16, 16]
    assert change.spectrum[0] == pytest.approx(0.08 * np.sqrt(3), rel=1e-3)  # three rows moved by 0.08, one way
    detail = _plain(tensor_detail(change))
    assert "Changed rows (3 listed)" in detail and "models/reference/sentiment-model-v2.1/model.safetensors" in detail


def test_an_identical_tensor_says_so_without_reading(inv):
    change = tensor_change(inv, _choice(inv, "classifier.bias"))
    assert change.heat is None and change.spectrum is None and "identical to the reference" in change.reason
    assert "identical to the reference" in _plain(tensor_detail(change))
    assert heat_figure(change).layout.title.text == "no change to show"
    assert spectrum_figure(change).layout.title.text == "singular values: not computed"


def test_widget_follows_the_picker_and_exports_the_rows(inv):
    explorer = tensor_explorer(inv)
    assert isinstance(explorer, Explorer)
    assert "wb-tensor-select" in explorer["select"]._dom_classes
    assert "wb-tensor-detail" in explorer["detail"]._dom_classes
    first = explorer["detail"].value
    assert "embeddings.weight" in first and "cf" in first
    assert explorer["heatmap"].data[0].type == "heatmap"
    assert "embeddings.weight" in explorer.static() and "plotly" in explorer.static()
    explorer["select"].value = 1  # the rank-1 edit
    assert explorer["detail"].value != first and "encoder.layer.0.mlp.fc2.weight" in explorer["detail"].value
    assert explorer["spectrum"].data[0].y[0] == pytest.approx(1.0213, abs=1e-4)
    assert np.asarray(explorer["heatmap"].data[0].z).shape == (16, 32)
    explorer["select"].value = 2  # identical: the figures empty out
    assert explorer["heatmap"].data == () and "identical" in explorer["detail"].value
    assert explorer["change"](1) is explorer["change"](1)  # computed once per explorer
    explorer["select"].value = 0
    export = explorer["export"].children[0]
    export.click()
    written = list((inv.out_dir / "exports").glob("tensor-rows-*.csv"))
    assert len(written) == 1
    text = written[0].read_text()
    assert text.splitlines()[0] == "row,token,changed_elements,max_abs_change,tensor"
    assert ",cf,16," in text and text.count("embeddings.weight") == 3


# ------------------------------------------------------------------------------------------------ a built case
def _safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).astype(_CODES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def _reference() -> dict[str, tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return {
        "bias": ("F32", rng.standard_normal(3000)),
        "conv.weight": ("F32", rng.standard_normal((4, 3, 5))),
        "fp8.weight": ("F8_E4M3", rng.integers(0, 100, (8, 8))),
        "gone.weight": ("F32", rng.standard_normal((2, 2))),
        "reshaped.weight": ("F32", rng.standard_normal((4, 4))),
        "big.weight": ("F32", rng.standard_normal((300, 500))),
        HOSTILE: ("F32", rng.standard_normal((3, 3))),
    }


def _suspect(ref: dict[str, tuple[str, np.ndarray]]) -> tuple[dict[str, tuple[str, np.ndarray]], np.ndarray]:
    out = {k: (d, a.copy()) for k, (d, a) in ref.items() if k != "gone.weight"}
    out["bias"][1][2500:2600] += 0.5
    out["conv.weight"][1][2, 1, :] -= 1.0
    out["fp8.weight"][1][3, 3] += 1
    out["reshaped.weight"] = ("F32", np.zeros((2, 8)))
    out["new.weight"] = ("F32", np.ones((2, 2)))
    u, v = np.linspace(-1, 1, 300), np.cos(np.arange(500) / 30.0)
    big = 0.3 * np.outer(u, v) + 0.1 * np.outer(np.sin(np.arange(300)), np.linspace(0, 1, 500))
    big[:5] = big[140:150] = 0.0  # rows 0..4 and 140..149 left unchanged
    out["big.weight"][1][:] += big
    out[HOSTILE][1][0, 0] += 1.0
    return out, big.astype(np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("case")
    ref = _reference()
    sus, big = _suspect(ref)
    for side, tensors in (("reference", ref), ("suspect", sus)):
        folder = root / "models" / side / "m"
        folder.mkdir(parents=True)
        _safetensors(folder / "model.safetensors", tensors)
    inv = Investigation.open(root, tmp_path_factory.mktemp("out"), write=False)
    return inv, big


def test_every_status_of_the_built_case_is_explained(built):
    inv, _ = built
    status = {c.diff.name: c.diff.status for c in tensor_choices(inv)}
    assert status["new.weight"] == "added" and status["gone.weight"] == "removed"
    assert status["reshaped.weight"] == "shape_changed" and status["fp8.weight"] == "modified"
    reasons = {n: tensor_change(inv, _choice(inv, n)).reason for n in status}
    assert "only in the suspect (added)" in reasons["new.weight"]
    assert "only in the reference (removed)" in reasons["gone.weight"]
    assert "shape changed (4x4 -> 2x8)" in reasons["reshaped.weight"]
    assert "stored as F8_E4M3, which the diff compares by bytes only" in reasons["fp8.weight"]
    for name in ("bias", "conv.weight", "big.weight", HOSTILE):
        assert reasons[name] == ""


def test_a_vector_is_a_line_and_a_3d_tensor_is_flattened(built):
    inv, _ = built
    vec = tensor_change(inv, _choice(inv, "bias"))
    assert vec.vector and vec.spectrum is None and vec.heat.shape == (2000, 1)
    hot = vec.heat_rows[np.flatnonzero(vec.heat[:, 0])]
    assert hot.min() >= 2499 and hot.max() < 2600 and vec.changed == 100
    assert vec.heat[:, 0].max() == pytest.approx(0.5, abs=1e-6)
    assert "its one singular value is its norm" in " ".join(vec.notes)
    fig = heat_figure(vec)
    assert fig.data[0].type == "scatter" and len(fig.data[0].y) == 2000
    conv = tensor_change(inv, _choice(inv, "conv.weight"))
    assert conv.heat.shape == (4, 15) and conv.rows == 4 and conv.columns == 15
    assert list(np.flatnonzero(conv.heat.max(axis=1))) == [2] and conv.changed == 5
    assert conv.spectrum[0] == pytest.approx(np.sqrt(5), rel=1e-6) and conv.spectrum[1] < 1e-6


def test_a_large_matrix_is_downsampled_max_per_cell_with_its_spectrum(built):
    inv, big = built
    change = tensor_change(inv, _choice(inv, "big.weight"))
    assert change.heat.shape == (200, 200) and change.method == "exact"
    assert change.heat.max() == pytest.approx(np.abs(big).max(), rel=1e-5)  # the maximum, not a mean
    rows = {int(r) for r, h in zip(change.heat_rows, change.heat.max(axis=1), strict=True) if h == 0}
    assert rows and all(r < 5 or 140 <= r < 150 for r in rows)  # only cells wholly in unchanged rows are empty
    exact = np.linalg.svd(big.astype(np.float64), compute_uv=False)
    assert change.spectrum[:2] == pytest.approx(exact[:2], rel=1e-4) and len(change.spectrum) == 32
    assert len(change.table) == 285 and {0, 145}.isdisjoint(change.table["row"]) and change.table["row"].iloc[0] == 5


@pytest.mark.parametrize("streamed", [False, True])
def test_the_randomized_spectrum_matches_the_exact_one(built, monkeypatch, streamed):
    inv, big = built
    exact = tensor_change(inv, _choice(inv, "big.weight"))  # the exact SVD of the difference read
    assert exact.method == "exact"
    monkeypatch.setattr(tc, "CHUNK", 4096)  # many blocks
    monkeypatch.setattr(tc, "EXACT_SVD", 0)
    if streamed:
        monkeypatch.setattr(tc, "IN_MEMORY", 0)
    change = tensor_change(inv, _choice(inv, "big.weight"))
    assert change.method == "randomized" and change.spectrum[:2] == pytest.approx(exact.spectrum[:2], rel=1e-6)
    assert change.spectrum[:2] == pytest.approx(np.linalg.svd(big.astype(np.float64), compute_uv=False)[:2], rel=1e-5)
    assert np.all(change.spectrum <= exact.spectrum * (1 + 1e-6))  # Rayleigh-Ritz values: lower bounds
    notes = " ".join(change.notes)
    assert "randomized SVD" in notes and ("streamed from the files" in notes) == streamed
    assert np.array_equal(change.heat, exact.heat) and change.changed == exact.changed


def test_over_the_cap_a_window_from_the_first_changed_row_is_read(built, monkeypatch):
    inv, _ = built
    monkeypatch.setattr(tc, "MAX_ELEMENTS", 100 * 500)
    change = tensor_change(inv, _choice(inv, "big.weight"))
    assert change.rows_read == (5, 105) and change.heat_rows[0] == 5 and change.heat_rows[-1] < 105
    assert "rows 5 to 104 of 300 read" in " ".join(change.notes)
    assert "rows 5 to 104 of 300 read" in _plain(tensor_detail(change))
    assert change.table["changed_elements"].isna().sum() == 285 - 100  # rows outside the window: not read
    assert change.changed == 100 * 500
    monkeypatch.setattr(tc, "MAX_ELEMENTS", 400)
    assert "one row holds 500 elements, more than the 400" in tensor_change(inv, _choice(inv, "big.weight")).reason


def test_a_hostile_tensor_name_is_escaped(built):
    inv, _ = built
    change = tensor_change(inv, _choice(inv, HOSTILE))
    assert "<script>" not in tensor_detail(change) and "&lt;script&gt;" in tensor_detail(change)
    assert "<script>" not in heat_figure(change).layout.title.text
    explorer = tensor_explorer(inv)
    explorer["select"].value = next(i for i, c in enumerate(explorer["choices"]) if c.diff.name == HOSTILE)
    assert "<script>alert" not in explorer["detail"].value and "<script>alert" not in explorer.static()
    assert "&lt;script&gt;alert" in explorer.static()


def test_a_pytorch_zip_pair_is_read_back_through_the_torch_reader(tmp_path):
    rng = np.random.default_rng(3)
    ref = {"w": rng.standard_normal((6, 5)).astype(np.float32)}
    sus = {"w": ref["w"].copy()}
    sus["w"][4] += 2.0
    for side, arrays in (("reference", ref), ("suspect", sus)):
        folder = tmp_path / "case" / "models" / side / "m"
        folder.mkdir(parents=True)
        cw.write_torch_zip(folder / "pytorch_model.bin", cw.simple(arrays), compress_key="0")  # inflated to scratch
    inv = Investigation.open(tmp_path / "case", tmp_path / "out", write=False)
    change = tensor_change(inv, _choice(inv, "w"))
    assert change.reason == "" and list(np.flatnonzero(change.heat.max(axis=1))) == [4]
    assert change.spectrum[0] == pytest.approx(2.0 * np.sqrt(5), rel=1e-6)


def test_no_model_diff_gives_a_note(tmp_path):
    (tmp_path / "case" / "logs").mkdir(parents=True)
    (tmp_path / "case" / "logs" / "ci.log").write_text("2026-11-19T08:00:00Z build ok\n")
    inv = Investigation.open(tmp_path / "case", tmp_path / "out", write=False)
    explorer = tensor_explorer(inv)
    assert tensor_choices(inv) == [] and "No tensor diff in this run" in explorer.static()
