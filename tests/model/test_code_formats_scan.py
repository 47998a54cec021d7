"""Carried code through the whole model scan: each file and archive member reaches its reader, every finding names
the file, the member and the construct, a reader that cannot finish leaves the file not analysed, and the benign
twins give no finding at all."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.model.code_writers import field, node, safetensors, saved_model, torchscript_zip
from workbench.model import h5_reader
from workbench.model.scan import scan_model

PICKLE = b"\x80\x04cposix\nsystem\n(S'id'\ntR."
HOSTILE_SOURCE = (
    "class M(Module):\n  __parameters__ = []\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    "    _0 = os.system('id')\n    return ops.evil.run(x)\n"
)
BENIGN_SOURCE = (
    "class M(Module):\n  __parameters__ = []\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    "    if torch.__is__(x, None):\n      pass\n    return torch.add(x, 1)\n"
)


def _code_findings(scan) -> dict[str, tuple[str, str]]:
    return {f.title: (f.severity.value, f.detail) for f in scan.findings if f.category == "custom_code_reference"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("carried")
    (root / "scripted.pt").write_bytes(torchscript_zip(HOSTILE_SOURCE))
    meta = {"format": "pt", "blob": base64.b64encode(PICKLE).decode()}
    (root / "model.safetensors").write_bytes(safetensors(meta))
    (root / "export").mkdir()
    graph = saved_model([node("exfil", "PyFunc", token="pyfunc_3")], {"__inference_f": [node("w", "WriteFile")]})
    (root / "export" / "saved_model.pb").write_bytes(graph)
    layer = {"class_name": "Lambda", "config": {"name": "lam"}}
    (root / "export" / "keras_metadata.pb").write_bytes(
        field(1, field(3, "root.layer-0") + field(5, json.dumps(layer)))
    )
    (root / "frozen.pb").write_bytes(field(1, node("r", "ReadFile")))
    return root


def test_each_carrier_names_file_member_and_construct(hostile):
    scan = scan_model(hostile)
    assert _code_findings(scan) == {
        "scripted.pt [m/code/__torch__.py]: has TorchScript code that reaches outside the model (2)": (
            "high", "TorchScript source: call of os.system() (line 4); TorchScript source: operator ops.evil.run of "
                    "the namespace 'evil', not shipped with PyTorch (line 5)."),
        "model.safetensors: carries code or payloads in its safetensors metadata (1)": (
            "high", "__metadata__['blob']: base64 text of a pickle (26 bytes; analysed as a pickle)."),
        "export/saved_model.pb: has TensorFlow graph ops that reach outside the graph (2)": (
            "high", "op PyFunc at node 'exfil': runs a Python function of the loading process when the graph runs "
                    "(token 'pyfunc_3'); op WriteFile at node 'w' of function '__inference_f': writes a file when the "
                    "graph runs."),
        "export/keras_metadata.pb: has Keras Lambda layers (1)": (
            "high", "root.layer-0: Lambda layer 'lam' carries Python code run on load."),
        "frozen.pb: has TensorFlow graph ops that reach outside the graph (1)": (
            "high", "op ReadFile at node 'r': reads a file when the graph runs."),
    }  # fmt: skip
    [pickle] = [f for f in scan.findings if f.category == "pickle_dangerous_import"]
    assert pickle.severity.value == "critical"
    assert pickle.title == "model.safetensors [__metadata__['blob']]: pickle imports posix.system: posix.system('id')"
    assert scan.inventory.unexamined == []


def test_benign_twins_are_quiet(tmp_path):
    (tmp_path / "scripted.pt").write_bytes(torchscript_zip(BENIGN_SOURCE))
    (tmp_path / "model.safetensors").write_bytes(safetensors({"format": "pt"}))
    (tmp_path / "saved_model.pb").write_bytes(saved_model([node("w", "Const"), node("y", "MatMul")],
                                                          {"__inference_save": [node("s", "SaveV2")]}))  # fmt: skip
    (tmp_path / "other.pb").write_bytes(b"\x08\x01\x12\x03abc")  # a protobuf that is no graph
    scan = scan_model(tmp_path)
    assert _code_findings(scan) == {}
    assert [f for f in scan.findings if f.category == "pickle_dangerous_import"] == []
    assert scan.inventory.unexamined == []
    details = {a.path: a.details for a in scan.inventory.artefacts if a.member is None}
    assert details["saved_model.pb"]["graph_nodes"] == 3 and details["model.safetensors"]["metadata_keys"] == 1


def test_a_broken_graph_is_partially_analysed(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(saved_model([node("exfil", "PyFunc"), node("w", "Const")])[:-4])
    scan = scan_model(tmp_path)
    [art] = scan.inventory.artefacts
    assert art.coverage == (
        "partially analysed: TensorFlow graph: at offset 2: a length runs past the end of the file (truncated), "
        "read as far as it goes: the rest is not examined"
    )
    assert "op PyFunc at node 'exfil'" in next(iter(_code_findings(scan).values()))[1]


def test_an_h5_child_that_times_out_leaves_the_file_not_analysed(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "x"}}]}}
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
    assert _code_findings(scan_model(tmp_path)) == {
        "m.h5: has Keras Lambda layers (1)": ("high", "HDF5 model_config: Lambda layer 'x' carries Python code run "
                                                      "on load.")}  # fmt: skip
    monkeypatch.setattr(h5_reader, "TIMEOUT", 0.001)
    scan = scan_model(tmp_path)
    [art] = scan.inventory.artefacts
    assert art.coverage == "not analysed: Keras config not examined: h5py did not finish within 0.001 s"
    assert scan.inventory.unexamined == [f"m.h5: {art.coverage.removeprefix('not analysed: ')}"]
    [(title, (severity, detail))] = _code_findings(scan).items()
    assert (title, severity) == ("m.h5: has Keras Lambda layers (1)", "high")
    assert detail.startswith("HDF5 model config names a Lambda layer (offset ")


def test_keras_h5_inside_an_archive(tmp_path):
    h5py = pytest.importorskip("h5py")
    import zipfile

    config = {"class_name": "Functional", "config": {"layers": [{"module": "evil.layers", "class_name": "B"}]}}
    with h5py.File(tmp_path / "inner.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "inner.h5", "models/inner.h5")
    (tmp_path / "inner.h5").unlink()
    assert _code_findings(scan_model(tmp_path)) == {
        "bundle.zip [models/inner.h5]: refers to Keras custom objects or modules imported on load (1)": (
            "high", "HDF5 model_config: object 'evil.layers.B': module 'evil.layers' imported on load.")}  # fmt: skip


PBTXT = """saved_model_schema_version: 1
meta_graphs {
  graph_def {
    node {
      name: "exfil"
      op: "EagerPyFunc"
      attr {
        key: "token"
        value {
          s: "pyfunc_9"
        }
      }
    }
    node {
      name: "y"
      op: "%s"
    }
  }
}
"""


def test_text_format_saved_model(tmp_path):
    (tmp_path / "saved_model.pbtxt").write_text(PBTXT % "MatMul")
    assert _code_findings(scan_model(tmp_path)) == {
        "saved_model.pbtxt: has TensorFlow graph ops that reach outside the graph (1)": (
            "high", "op EagerPyFunc at node 'exfil': runs a Python function of the loading process when the graph "
                    "runs (token 'pyfunc_9').")}  # fmt: skip
    (tmp_path / "saved_model.pbtxt").write_text((PBTXT % "MatMul").replace("EagerPyFunc", "Add"))
    scan = scan_model(tmp_path)
    assert _code_findings(scan) == {} and scan.inventory.artefacts[0].details["graph_nodes"] == 2
