"""Weights that no tensor reader takes (ONNX, torch.export, Keras, NumPy, plain pickles) fail closed: compared by
digest only, said so, and a modified one leaves the model section partial.

Every file is real: HDF5 written by h5py, ``.npy`` / ``.npz`` by numpy, zips laid out as torch.export and Keras
write them, an ONNX ModelProto written field by field.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import save_file

from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.model.analysis import analyse
from workbench.model.checkpoints import digest_only_format
from workbench.model.dirdiff import diff_model

NOTE = "compared by digest only: no tensor-level diff for"
DIFFERS = "(the file differs from the reference; the change was not localised)"


def _onnx(value: float) -> bytes:
    """A ModelProto: ir_version 8, producer, a graph with one float initializer (raw_data)."""
    raw = np.full(4, value, np.float32).tobytes()
    init = b"\x08\x04" + b"\x10\x01" + b"\x42\x01w" + b"\x4a" + bytes([len(raw)]) + raw  # dims, FLOAT, name, raw_data
    graph = b"\x0a\x00" + b"\x2a" + bytes([len(init)]) + init  # node list empty, initializer
    return b"\x08\x08" + b"\x12\x04test" + b"\x3a" + bytes([len(graph)]) + graph


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)  # the same bytes every time
    return buf.getvalue()


def _h5(path: Path, value: float) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("model_weights/dense/kernel:0", data=np.full((3, 2), value, np.float32))


def _npy(value: float) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.full(5, value, np.float32))
    return buf.getvalue()


def _write(folder: Path, value: float, *, same: float = 1.0) -> Path:
    """A model folder in every digest-only format; ``value`` goes into the files meant to differ."""
    folder.mkdir(parents=True)
    save_file({"w": np.full((2, 2), same, np.float32)}, str(folder / "model.safetensors"))
    (folder / "model.onnx").write_bytes(_onnx(value))
    _h5(folder / "tf_model.h5", value)
    (folder / "model.pt2").write_bytes(_zip({"model/archive_format": b"pt2", "model/data/weights/w0": _npy(value)}))
    (folder / "model.keras").write_bytes(_zip({"config.json": b"{}", "model.weights.h5": _npy(value)}))
    (folder / "arrays.npz").write_bytes(_zip({"a.npy": _npy(same)}))
    (folder / "mean.npy").write_bytes(_npy(same))
    _h5(folder / "weights.dat", same)  # HDF5 under a name that says nothing: found by its magic number
    (folder / "README.md").write_text(f"notes {value}\n")  # not weights: never listed
    return folder


def test_every_digest_only_format_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "m", 1.0)
    got = {p.name: digest_only_format(p, p.name) for p in sorted((tmp_path / "m").iterdir())}
    assert got == {"README.md": None, "arrays.npz": "NumPy (.npz)", "mean.npy": "NumPy (.npy)",
                   "model.keras": "Keras (.keras)", "model.onnx": "ONNX", "model.pt2": "torch.export (.pt2)",
                   "model.safetensors": "safetensors (header unreadable)", "tf_model.h5": "HDF5 (Keras .h5)",
                   "weights.dat": "HDF5 (Keras .h5)"}  # fmt: skip


def test_modified_digest_only_weights_are_unexamined_identical_ones_limits(tmp_path: Path) -> None:
    ref, sus = _write(tmp_path / "ref", 1.0), _write(tmp_path / "sus", 2.0)
    result = diff_model(sus, ref, model_id="m", display_prefix="models/suspect/m")
    assert sorted(result.files.paths("modified")) == ["README.md", "model.keras", "model.onnx", "model.pt2",
                                                      "tf_model.h5"]  # fmt: skip
    p = "models/suspect/m/"
    assert sorted(result.unexamined) == [f"{p}model.keras: {NOTE} Keras (.keras) {DIFFERS}",
                                         f"{p}model.onnx: {NOTE} ONNX {DIFFERS}",
                                         f"{p}model.pt2: {NOTE} torch.export (.pt2) {DIFFERS}",
                                         f"{p}tf_model.h5: {NOTE} HDF5 (Keras .h5) {DIFFERS}"]  # fmt: skip
    assert sorted(n for n in result.limits if NOTE in n) == [f"{p}arrays.npz: {NOTE} NumPy (.npz) (identical SHA-256)",
                                                             f"{p}mean.npy: {NOTE} NumPy (.npy) (identical SHA-256)",
                                                             f"{p}weights.dat: {NOTE} HDF5 (Keras .h5) (identical "
                                                             "SHA-256)"]  # fmt: skip
    assert [(t.name, t.status) for t in result.tensors] == [("w", "identical")]  # the safetensors file is read


def test_benign_twin_has_nothing_unexamined(tmp_path: Path) -> None:
    ref, sus = _write(tmp_path / "ref", 1.0), _write(tmp_path / "sus", 1.0)
    result = diff_model(sus, ref, model_id="m")
    assert result.unexamined == [] and result.files.paths("modified") == []
    assert len([n for n in result.limits if NOTE in n]) == 7  # every digest-only file, none of safetensors/README


def test_a_read_checkpoint_that_differs_is_not_digest_only(tmp_path: Path) -> None:
    ref, sus = _write(tmp_path / "ref", 1.0), _write(tmp_path / "sus", 1.0, same=3.0)
    result = diff_model(sus, ref, model_id="m")
    assert [(t.name, t.status) for t in result.tensors] == [("w", "modified")]
    assert not any("model.safetensors" in u for u in result.unexamined + result.limits)


def test_single_onnx_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    a.write_bytes(_onnx(1.0))
    b.write_bytes(_onnx(2.0))
    c.write_bytes(_onnx(1.0))
    assert diff_model(b, a).unexamined == [f"b.onnx: {NOTE} ONNX {DIFFERS}"]
    same = diff_model(c, a)
    assert same.unexamined == [] and same.limits == [f"c.onnx: {NOTE} ONNX (identical SHA-256)"]


def test_modified_onnx_makes_the_model_section_partial(tmp_path: Path) -> None:
    root = tmp_path / "case"
    for side, value in (("reference", 1.0), ("suspect", 2.0)):
        folder = root / "models" / side / "m"
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(_onnx(value))
    case = Case.open(root)
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case), reference=case.model_dir("reference")))
    assert f"models/suspect/m/model.onnx: {NOTE} ONNX {DIFFERS}" in result.unexamined
