"""Folder diff (files, tensors, configs) on small real folders, and against a signature manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.errors import EvidenceError, MalformedEvidence
from workbench.model.configdiff import diff_json, load_vocab
from workbench.model.dirdiff import diff_against_manifest, diff_dirs, diff_model
from workbench.model.plots import render_diff


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_diff_dirs_statuses_and_hashes(small_model) -> None:
    ref, sus = small_model("ref"), small_model("sus")
    (sus / "optimizer.pkl").write_bytes(b"\x80\x02}q\x00.")
    (ref / "tokenizer_config.json").write_text("{}")
    (sus / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "vocab_size": 11}))
    (sus / "COMPROMISED.txt").write_text("COMPROMISED - Incident X - 2026-01-01T00:00:00Z\n")
    diff = diff_dirs(sus, ref, model_id="m", display_prefix="models/suspect/m")
    assert diff.to_dict() == {
        "only_in_suspect": ["optimizer.pkl"],
        "only_in_reference": ["tokenizer_config.json"],
        "modified": ["config.json"],
        "identical": ["model.safetensors", "tokenizer.json"],
    }
    entry = next(e for e in diff.entries if e.path == "config.json")
    assert (entry.suspect_sha256, entry.reference_sha256) == (sha(sus / "config.json"), sha(ref / "config.json"))
    cats = sorted((f.category, f.evidence["path"]) for f in diff.findings)
    assert cats == [("model_file_missing", "models/suspect/m/tokenizer_config.json"),
                    ("model_file_tampered", "models/suspect/m/config.json"),
                    ("unexpected_model_file", "models/suspect/m/optimizer.pkl")]  # fmt: skip
    assert list(diff.frame().columns) == ["path", "status", "suspect_sha256", "reference_sha256"]


def test_symlink_out_of_tree_not_followed(small_model, tmp_path: Path) -> None:
    ref, sus = small_model("ref"), small_model("sus")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (sus / "leak.json").symlink_to(secret)
    diff = diff_dirs(sus, ref)
    assert diff.to_dict()["only_in_suspect"] == []
    assert [(w.path, "leaves the evidence tree" in w.reason) for w in diff.warnings] == [("leak.json", True)]


def test_diff_against_manifest(small_model) -> None:
    sus = small_model("sus")
    good = sha(sus / "model.safetensors")
    (sus / ".signatures").mkdir()
    manifest = {"files": [{"path": "model.safetensors", "sha256": good}, {"path": "config.json", "sha256": "0" * 64},
                          {"path": "weights.bin", "sha256": "1" * 64}]}  # fmt: skip
    (sus / ".signatures" / "manifest.json").write_text(json.dumps(manifest))
    diff = diff_against_manifest(sus, model_id="m")
    assert diff.baseline == "signature manifest"
    assert diff.to_dict() == {"only_in_suspect": ["tokenizer.json"], "only_in_reference": ["weights.bin"],
                              "modified": ["config.json"], "identical": ["model.safetensors"]}  # fmt: skip
    assert "differs from the signature manifest" in next(f.title for f in diff.findings
                                                         if f.category == "model_file_tampered")  # fmt: skip


def test_manifest_missing_or_bad(small_model) -> None:
    sus = small_model("sus")
    with pytest.raises(EvidenceError, match="no signature manifest"):
        diff_against_manifest(sus)
    (sus / ".signatures").mkdir()
    (sus / ".signatures" / "manifest.json").write_text("[1, 2]")
    with pytest.raises(MalformedEvidence, match=r"manifest\.json: manifest is not a JSON object"):
        diff_against_manifest(sus)


def test_diff_model_configs_tokens_and_render(small_model) -> None:
    base = small_model.base
    ref = small_model("ref")
    tensors = dict(base)
    emb = base["embeddings.word_embeddings.weight"].copy()
    emb[[6, 7, 8]] += np.float32(0.05)
    tensors["embeddings.word_embeddings.weight"] = emb
    sus = small_model("sus", tensors)
    cfg = {"model_type": "bert", "hidden_size": 8, "vocab_size": 10, "auto_map": {"AutoModel": "evil.Model"}}
    (sus / "config.json").write_text(json.dumps(cfg))
    result = diff_model(sus, ref, model_id="m")
    (emb_diff,) = [t for t in result.tensors if t.status != "identical"]
    assert (emb_diff.changed_rows, emb_diff.changed_tokens) == ((6, 7, 8), ("cf", "mn", "bb"))
    assert [(c.path, c.key, c.change) for c in result.configs] == [("config.json", "auto_map", "added")]
    (cfg_finding,) = [f for f in result.findings if f.category == "config_changed"]
    assert (cfg_finding.severity.value, cfg_finding.evidence["key"]) == ("high", "auto_map")
    emb_finding = next(f for f in result.findings if f.category == "tensor_modified")
    assert emb_finding.evidence["tokens"] == "cf, mn, bb" and emb_finding.severity.value == "high"
    doc = result.to_dict()
    assert set(doc) == {"findings", "files", "tensors", "configs", "warnings", "unexamined", "limits"}
    json.dumps(doc, allow_nan=False)
    items = render_diff(result)
    figs = [i for i in items if not isinstance(i, str)]
    assert [f.data[0].type for f in figs] == ["bar", "heatmap"]
    assert list(figs[0].data[0].x) == ["embeddings.word_embeddings.weight", "encoder.layer.0.mlp.weight",
                                       "encoder.layer.1.mlp.weight", "classifier.bias"]  # fmt: skip
    assert "embeddings.word_embeddings.weight" in figs[1].layout.title.text


def test_render_escapes_hostile_names(small_model) -> None:
    ref = small_model("ref")
    evil = "<script>alert(1)</script>"
    sus = small_model("sus", {**small_model.base, evil: np.ones((2, 2), np.float32)})
    (sus / "config.json").write_text(json.dumps({"model_type": "<img src=x onerror=alert(1)>"}))
    items = render_diff(diff_model(sus, ref))
    html = "".join(i for i in items if isinstance(i, str))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    bar = next(i for i in items if not isinstance(i, str))
    assert all("<script>" not in x for x in bar.data[0].x)


def test_malformed_checkpoint_gives_findings_not_crash(small_model) -> None:
    ref = small_model("ref")
    sus = small_model("sus")
    (sus / "model.safetensors").write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.")
    result = diff_model(sus, ref)
    assert [(f.category, f.evidence["violation"]) for f in result.findings if f.category == "safetensors_malformed"] \
        == [("safetensors_malformed", "header_too_large")]  # fmt: skip
    assert {t.status for t in result.tensors} == {"removed"} and len(result.tensors) == 4


def test_single_files_and_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"w": np.zeros((3, 3), np.float32)}, str(a))
    save_file({"w": np.eye(3, dtype=np.float32)}, str(b))
    result = diff_model(b, a)
    assert result.files.to_dict()["modified"] == ["b.safetensors"]
    assert [(t.name, t.status, t.changed_rows) for t in result.tensors] == [("w", "modified", (0, 1, 2))]
    assert result.tensors[0].relative_change is None  # reference norm is zero
    with pytest.raises(EvidenceError, match="does not exist"):
        diff_model(tmp_path / "nope", a)
    with pytest.raises(EvidenceError, match="a folder with a folder"):
        diff_model(tmp_path, a)


def test_diff_json_and_vocab(small_model) -> None:
    changes = list(diff_json({"a": 1, "b": [1, 2], "c": {"d": True}}, {"a": 1.0, "b": [1], "c": {"d": 1}, "e": None}))
    assert changes == [("a", "changed", 1, 1.0), ("b[1]", "removed", 2, None), ("c.d", "changed", True, 1),
                       ("e", "added", None, None)]  # fmt: skip
    assert load_vocab(small_model("m"))[6] == "cf"


def test_minilm_vocab(minilm_dir: Path) -> None:
    vocab = load_vocab(minilm_dir)
    assert len(vocab) == 30522 and vocab[101] == "[CLS]" and vocab[0] == "[PAD]"
