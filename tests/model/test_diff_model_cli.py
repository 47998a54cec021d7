"""``workbench diff-model`` through click's runner: JSON contract, exit statuses, wrong arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from workbench.cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
FINDING_KEYS = {"id", "severity", "category", "title", "detail", "detector", "evidence", "atlas", "timestamp"}


def run(*args: str):
    return CliRunner().invoke(cli, ["diff-model", *args])


@pytest.fixture
def pair(small_model) -> tuple[Path, Path]:
    ref = small_model("ref")
    tensors = dict(small_model.base)
    w = tensors["encoder.layer.0.mlp.weight"].copy()
    w[3, 4] = np.float32(9.0)
    tensors["encoder.layer.0.mlp.weight"] = w
    tensors["extra.bias"] = np.zeros(2, np.float32)
    return small_model("sus", tensors), ref


def test_json_contract(pair) -> None:
    sus, ref = pair
    res = run(str(sus), str(ref), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["files"] == {"only_in_suspect": [], "only_in_reference": [], "modified": ["model.safetensors"],
                            "identical": ["config.json", "tokenizer.json"]}  # fmt: skip
    by_name = {t["name"]: t for t in doc["tensors"]}
    assert {n: t["status"] for n, t in by_name.items() if t["status"] != "identical"} == {
        "encoder.layer.0.mlp.weight": "modified", "extra.bias": "added"}  # fmt: skip
    mod = by_name["encoder.layer.0.mlp.weight"]
    assert {"changed_fraction", "max_abs_change", "relative_change", "changed_rows", "top_singular_energy"} <= set(mod)
    assert (mod["changed_rows"], mod["changed_fraction"], mod["top_singular_energy"]) == ([3], 1 / 96, 1.0)
    assert "changed_fraction" not in by_name["extra.bias"]
    assert all(set(f) == FINDING_KEYS for f in doc["findings"])
    assert [(f["category"], f["evidence"].get("tensor")) for f in doc["findings"]] == [
        ("model_file_tampered", None), ("tensor_modified", "encoder.layer.0.mlp.weight"),
        ("tensor_added", "extra.bias")]  # fmt: skip
    assert all(f["atlas"] == ["AML.T0010.003", "AML.T0018.000"] for f in doc["findings"])


def test_text_output_and_fail_on(pair) -> None:
    sus, ref = pair
    res = run(str(sus), str(ref))
    assert res.exit_code == 0
    assert res.stdout.splitlines()[:2] == ["files: 0 only_in_suspect, 0 only_in_reference, 1 modified, 2 identical",
                                           "tensors: 1 added, 3 identical, 1 modified"]  # fmt: skip
    assert run(str(sus), str(ref), "--fail-on", "critical").exit_code == 1  # the tampered file is critical
    same = run(str(ref), str(ref), "--fail-on", "low")
    assert same.exit_code == 0 and "0 modified" in same.stdout


def test_pytorch_and_gguf_checkpoints_end_to_end(tmp_path: Path, monkeypatch) -> None:
    from tests.model import checkpoint_writers as cw
    from tests.model.test_tensor_torch import ADDED, RANK1, ROW, edited, reference_arrays
    from workbench.model import torch_checkpoint

    monkeypatch.setattr(torch_checkpoint, "MAX_INFLATED_BYTES", 0)

    ref = reference_arrays()
    tensors = cw.simple(edited(ref))
    r = cw.write_torch_zip(tmp_path / "ref.pt", cw.simple(ref))
    s = cw.write_torch_zip(tmp_path / "sus.pt", tensors, compress_key="3")  # the float16 embedding, compressed
    res = run(str(s), str(r), "--json", "--fail-on", "critical")
    assert res.exit_code == 1, res.output  # the rank-1 edit is critical
    doc = json.loads(res.stdout)
    assert {t["name"]: t["status"] for t in doc["tensors"] if t["status"] != "identical"} == {
        ROW: "modified", RANK1: "modified", ADDED: "added"}  # fmt: skip
    assert next(t for t in doc["tensors"] if t["name"] == ROW)["changed_rows"] == [5]
    assert doc["unexamined"] == [
        "sus.pt: tensor embeddings.weight not compared: storage member archive/data/3 is "
        "compressed and would take the inflated bytes past the 0-byte cap: not inflated"
    ]
    text = run(str(s), str(r)).stdout
    assert "not examined: sus.pt: tensor embeddings.weight not compared" in text
    g = cw.write_gguf(tmp_path / "m.gguf", {"w": ("F32", (2, 3), np.zeros(6, np.float32).tobytes())})
    same = run(str(g), str(g), "--json")
    assert [t["status"] for t in json.loads(same.stdout)["tensors"]] == ["identical"]


def test_digest_only_weights_and_a_lightning_checkpoint_end_to_end(small_model, tmp_path: Path) -> None:
    from tests.model import checkpoint_writers as cw
    from tests.model.test_tensor_torch import ADDED, RANK1, ROW, edited, reference_arrays

    ref, sus = small_model("ref"), small_model("sus")
    (ref / "model.onnx").write_bytes(b"\x08\x08\x12\x04test")
    (sus / "model.onnx").write_bytes(b"\x08\x08\x12\x04evil")
    np.save(ref / "mean.npy", np.zeros(3, np.float32))
    np.save(sus / "mean.npy", np.zeros(3, np.float32))
    doc = json.loads(run(str(sus), str(ref), "--json").stdout)
    assert doc["unexamined"] == ["model.onnx: compared by digest only: no tensor-level diff for ONNX (the file "
                                 "differs from the reference; the change was not localised)"]  # fmt: skip
    assert doc["limits"] == ["mean.npy: compared by digest only: no tensor-level diff for NumPy (.npy) (identical "
                             "SHA-256)"]  # fmt: skip
    text = run(str(sus), str(ref)).stdout
    assert "not examined: model.onnx: compared by digest only: no tensor-level diff for ONNX" in text
    arrays = reference_arrays()
    model = cw.simple(edited(arrays), parameter=True)
    moment = cw.Tensor("9", np.ones(4, np.float32), (4,))
    ckpt = cw.write_torch_zip(tmp_path / "last.ckpt", {**model, "m": moment},
                              top=cw.lightning(model, {"0.exp_avg": moment}))  # fmt: skip
    save_file(arrays, str(tmp_path / "model.safetensors"))
    res = run(str(ckpt), str(tmp_path / "model.safetensors"), "--json", "--fail-on", "critical")
    assert res.exit_code == 1  # the rank-1 edit
    doc = json.loads(res.stdout)
    assert {t["name"]: t["status"] for t in doc["tensors"] if t["status"] != "identical"} == {
        ROW: "modified", RANK1: "modified", ADDED: "added"}  # fmt: skip
    assert any("1 training-state tensor(s) (optimizer_states: 1) listed" in n for n in doc["limits"])


def test_manifest_mode_and_key(small_model, ec_keys, write_signed_manifest) -> None:
    key, _, pub = ec_keys
    model = small_model("m")
    write_signed_manifest(model, key)
    (model / "config.json").write_text("{}")
    res = run(str(model), "--key", str(pub), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["files"]["modified"] == ["config.json"] and doc["tensors"] == []
    assert doc["signature"]["signature_valid"] is True and doc["signature"]["verified"] is False
    assert sorted(f["category"] for f in doc["findings"]) == ["model_file_tampered", "signature_invalid"]


def test_diff_and_key_share_one_hashing_of_the_suspect(pair, ec_keys, write_signed_manifest, monkeypatch) -> None:
    from workbench.checks import integrity

    sus, ref = pair
    key, _, pub = ec_keys
    write_signed_manifest(sus, key)
    read: list[str] = []
    real = integrity.hash_files

    def spy(paths):
        paths = list(paths)
        read.extend(map(str, paths))
        return real(paths)

    monkeypatch.setattr(integrity, "hash_files", spy)
    res = run(str(sus), str(ref), "--key", str(pub), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["signature"]["verified"] is True
    suspect_reads = sorted(Path(p).name for p in read if Path(p).parent == sus)
    assert suspect_reads == ["config.json", "model.safetensors", "tokenizer.json"]  # once each, for both checks


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["/nonexistent/suspect", "/nonexistent/ref"],
            "workbench: error: /nonexistent/suspect: suspect model does not exist",
        ),
    ],
)
def test_unusable_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2
    assert res.stderr == message.replace("{tmp}", str(tmp_path)) + "\n" and res.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}", "--key", "/nonexistent.pub"], "--key: /nonexistent.pub: no such file"),
        (["{tmp}", "--issuer", "https://x"], "--issuer needs --identity"),
    ],
)
def test_bad_trust_options_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2 and message in res.stderr and res.stdout == ""


def test_folder_without_reference_or_manifest_checks_its_signature_only(tmp_path: Path) -> None:
    res = run(str(tmp_path))
    assert res.exit_code == 0
    assert res.stdout.splitlines()[:2] == ["no reference and no manifest to compare with: only the signature was "
                                           "checked", "signature: unsigned"]  # fmt: skip
    assert "critical model_unsigned" in " ".join(res.stdout.split())


@pytest.mark.parametrize(
    "args", [[], ["a", "b", "c"], ["a", "b", "--fail-on", "severe"], ["a", "b", "--manifest", "m.json"], ["--bogus"]]
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_cli_calls_library_with_exact_arguments(monkeypatch, tmp_path: Path) -> None:
    import workbench.model.dirdiff as dirdiff

    calls = []

    def fake(suspect, reference=None, *, manifest=None, suspect_hashes=None):
        calls.append((suspect, reference, manifest, suspect_hashes))
        return dirdiff.ModelDiff("s", "r", dirdiff.DirDiff("reference copy", []))

    monkeypatch.setattr(dirdiff, "diff_model", fake)
    res = run(str(tmp_path / "s"), "--manifest", str(tmp_path / "m.json"), "--json")
    assert res.exit_code == 0
    assert calls == [(tmp_path / "s", None, tmp_path / "m.json", None)]
    assert json.loads(res.stdout) == {
        "findings": [],
        "files": {"only_in_suspect": [], "only_in_reference": [], "modified": [], "identical": []},
        "tensors": [],
        "configs": [],
        "warnings": [],
        "unexamined": [],
        "limits": [],
    }


@pytest.mark.skipif(not (SAMPLES / "tampered-weights").is_dir(), reason="evidence-samples not generated")
def test_sample_tampered_case_end_to_end() -> None:
    models = SAMPLES / "tampered-weights" / "models"
    res = run(str(models / "suspect/sentiment-model-v2.1"), str(models / "reference/sentiment-model-v2.1"), "--key",
              str(SAMPLES / "tampered-weights/keys/cosign.pub"), "--json", "--fail-on", "critical")  # fmt: skip
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    modified = {t["name"]: t for t in doc["tensors"] if t["status"] == "modified"}
    assert set(modified) == {"encoder.layer.0.mlp.fc2.weight", "embeddings.weight"}
    fc2, emb = modified["encoder.layer.0.mlp.fc2.weight"], modified["embeddings.weight"]
    assert fc2["relative_change"] == pytest.approx(0.25, rel=1e-6) and fc2["top_singular_energy"] > 0.9999
    assert (emb["changed_rows"], emb["changed_tokens"]) == ([54, 55, 56], ["cf", "mn", "bb"])
    assert {t["status"] for t in doc["tensors"]} == {"modified", "identical"} and len(doc["tensors"]) == 6
    assert doc["files"]["only_in_suspect"] == ["optimizer.pkl"]
    titles = [f["title"] for f in doc["findings"] if f["severity"] == "critical"]
    assert any("rank-1 edit of tensor encoder.layer.0.mlp.fc2.weight" in t for t in titles)
    assert any("model.safetensors does not match its signed digest" in t for t in titles)


@pytest.mark.skipif(not (SAMPLES / "false-alarm").is_dir(), reason="evidence-samples not generated")
def test_sample_clean_case_end_to_end() -> None:
    case = SAMPLES / "false-alarm"
    sus, ref = case / "models/suspect/intent-classifier-v1.0", case / "models/reference/intent-classifier-v1.0"
    res = run(str(sus), str(ref), "--key", str(case / "keys/cosign.pub"), "--json", "--fail-on", "low")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [f["category"] for f in doc["findings"]] == ["signature_verified"]
    assert {t["status"] for t in doc["tensors"]} == {"identical"}
