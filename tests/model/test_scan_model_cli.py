"""``workbench scan-model``: the adapter with the library call replaced, and end to end over real fixture files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.model import hostile_fixtures as hf
from workbench import cli as cli_mod
from workbench.errors import EvidenceError
from workbench.model import scan as scan_mod
from workbench.model.inventory import Inventory
from workbench.records import Finding


def _run(*args: str):
    return CliRunner().invoke(cli_mod.cli, ["scan-model", *args])


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen = []
    finding = Finding.create(severity="high", category="dangerous_file_type", title="x.pkl: pickle", detector="t",
                             evidence={"path": "x.pkl"}, atlas=["AML.T0011.000"])  # fmt: skip

    def fake(path, *, use_picklescan):
        seen.append({"path": path, "use_picklescan": use_picklescan})
        return scan_mod.ModelScan(Inventory(tmp_path), findings=[finding])

    monkeypatch.setattr(scan_mod, "scan_model", fake)
    return seen


def test_adapter_passes_arguments(calls, tmp_path):
    res = _run(str(tmp_path), "--no-picklescan")
    assert res.exit_code == 0, res.output
    assert calls == [{"path": tmp_path, "use_picklescan": False}]
    assert res.output.splitlines() == ["files: 0 classified, 0 of a dangerous type",
                                       "high     dangerous_file_type      x.pkl: pickle",
                                       "coverage: complete (every file and member analysed)"]  # fmt: skip


@pytest.mark.parametrize(("threshold", "code"), [("critical", 0), ("high", 1), ("info", 1)])
def test_fail_on(calls, tmp_path, threshold, code):
    assert _run(str(tmp_path), "--fail-on", threshold).exit_code == code


def test_usage_errors(calls, tmp_path):
    bad = _run(str(tmp_path), "--fail-on", "severe")
    assert bad.exit_code == 2 and "Invalid value for '--fail-on'" in bad.output
    missing = _run()
    assert missing.exit_code == 2 and "Missing argument 'PATH'" in missing.output
    assert calls == []


def test_missing_path_is_one_line_error(tmp_path):
    res = _run(str(tmp_path / "nope"))
    assert res.exit_code == 2
    assert res.stderr == f"workbench: error: {tmp_path / 'nope'}: model path does not exist\n"
    assert res.stdout == ""


def test_symlink_path_is_refused(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    res = _run(str(tmp_path / "link"))
    assert res.exit_code == 2 and res.stderr.startswith("workbench: error:") and "symlink" in res.stderr


def test_library_error_is_one_line(monkeypatch, tmp_path):
    def boom(path, *, use_picklescan):
        raise EvidenceError(path, "model path does not exist")

    monkeypatch.setattr(scan_mod, "scan_model", boom)
    res = _run(str(tmp_path))
    assert res.exit_code == 2 and res.stderr == f"workbench: error: {tmp_path}: model path does not exist\n"


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> Path:
    return hf.write_model_dir(tmp_path_factory.mktemp("cli") / "model")


def test_json_end_to_end(hostile_dir):
    res = _run(str(hostile_dir), "--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)  # exactly one JSON document on stdout
    assert set(doc) == {"findings", "files", "warnings", "unexamined", "coverage"}
    assert doc["coverage"] == "partial"
    assert any(u.startswith("truncated.pkl: pickle stream 0 not followed to its STOP") for u in doc["unexamined"])
    files = {f["path"]: f for f in doc["files"]}
    assert sorted(files) == sorted(hf.FILES)
    opt = files["optimizer.pkl"]
    assert (opt["kind"], opt["dangerous"], opt["coverage"]) == ("pickle", True, "analysed")
    assert files["truncated.pkl"]["coverage"].startswith("partially analysed: pickle stream 0 not followed")
    encrypted = files["encrypted.pt"]
    assert encrypted["coverage"].startswith("partially analysed: 3 member(s) not fully analysed")
    assert {m["member"]: m["coverage"] for m in encrypted["members"]}["archive/data.pkl"] == (
        "partially analysed: encryption flag set: bytes read as they are, as PyTorch reads them"
    )
    assert opt["imports"] == [{"name": "posix.system", "class": "dangerous", "offset": 2, "member": None,
                               "stream": 0, "opcode": "GLOBAL"}]  # fmt: skip
    assert opt["calls"] == [{"call": "posix.system('echo pwned')", "offset": 32, "member": None}]
    assert opt["picklescan"] == {"ran": True, "error": None, "scan_error": False,
                                 "globals": [{"name": "posix.system", "class": "dangerous"}]}  # fmt: skip
    memo = files["memo_evasion.pkl"]
    assert [(d["name"], d["ours"], d["theirs"]) for d in memo["disagreements"]] == [
        ("None.system", None, "unknown"),
        ("os.system", "dangerous", None),
    ]
    hidden = files["hidden.pt"]
    assert [(i["name"], i["class"], i["member"]) for i in hidden["imports"]] == [
        ("collections.OrderedDict", "safe", "archive/data.pkl"),
        ("torch._utils._rebuild_tensor_v2", "safe", "archive/data.pkl"),
        ("torch.FloatStorage", "safe", "archive/data.pkl"),
        ("collections.OrderedDict", "safe", "archive/data.pkl"),
        ("os.system", "dangerous", "archive/extra/payload"),
    ]
    assert files["picture.pt"]["kind"] == "image" and files["picture.pt"]["dangerous"] is False
    severities = [f["severity"] for f in doc["findings"]]
    assert severities == sorted(severities, key=["critical", "high", "medium", "low", "info"].index)
    flag = "encryption flag set: bytes read as they are, as PyTorch reads them"
    assert [(w["path"], w["reason"]) for w in doc["warnings"]] == [
        ("cut.gguf", "GGUF header: at offset 69: header truncated (needs 8 more bytes)"),
        *(("encrypted.pt", f"member archive/{m}: {flag}") for m in ("data.pkl", "version", "byteorder")),
        (
            "model.keras",
            "member model.weights.h5: Keras config not examined: h5py could not read it (OSError: "
            "Unable to synchronously open file (bad byte number in an address))",
        ),
        (
            "truncated.pkl",
            "pickle stream 0 not followed to its STOP (at offset 16: BINUNICODE: not enough data in "
            "stream to read uint4): what follows is not analysed",
        ),
        ("bad_utf8.pkl", "pickle: at offset 2: GLOBAL/INST argument is not valid UTF-8 (the unpickler fails here)"),
        ("truncated.pkl", "pickle: stream 0: at offset 16: BINUNICODE: not enough data in stream to read uint4"),
    ]


def test_single_file_and_fail_on_end_to_end(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(hf.global_reduce())
    res = _run(str(path), "--fail-on", "critical")
    assert res.exit_code == 1
    assert res.stdout.splitlines()[:3] == [
        "files: 1 classified, 1 of a dangerous type",
        "critical dangerous_file_type      model.safetensors: pickle in disguise (named 'model.safetensors'): "
        "loading it runs the pickle",
        "critical pickle_dangerous_import  model.safetensors: pickle imports posix.system: posix.system('echo pwned')",
    ]


def test_control_characters_are_escaped(tmp_path):
    (tmp_path / "evil\x1b[2J.pkl").write_bytes(hf.global_reduce())
    res = _run(str(tmp_path))
    assert "\x1b" not in res.stdout and "evil\\x1b[2J.pkl" in res.stdout


def test_clean_sample_passes_fail_on_high():
    sample = Path(__file__).resolve().parents[2] / "evidence-samples/false-alarm/models/suspect"
    res = _run(str(sample), "--fail-on", "medium")
    assert res.exit_code == 0 and "0 of a dangerous type" in res.stdout
