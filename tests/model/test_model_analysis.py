"""The model section over every model pair of a case (workbench.model.analysis, workbench.model.pair_analysis).

Cases are built in tmp_path with the same helpers as the other model tests (``small_model`` writes safetensors with
the ``safetensors`` library, ``write_signed_manifest`` signs like ``cosign sign-blob``); nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.model.analysis import analyse, render

TAMPER = {"encoder.layer.0.mlp.weight"}
_TAMPER_CATEGORIES = {"tensor_modified", "tensor_added", "tensor_removed", "model_file_tampered",
                      "unexpected_model_file", "model_file_missing", "signature_invalid", "config_changed"}  # fmt: skip


@pytest.fixture
def build(tmp_path, small_model, ec_keys, write_signed_manifest):
    """``build(rel, tampered=False, signed=True)`` writes a model folder at ``case/<rel>``; returns the case root."""
    key, _, pub = ec_keys
    root = tmp_path / "case"
    (root / "keys").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pub, root / "keys" / "cosign.pub")

    def make(rel: str, *, tampered: bool = False, signed: bool = True) -> Path:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        folder = small_model(f"case/{rel}")
        if signed:
            write_signed_manifest(folder, key)  # signs the release; a later edit breaks the signature
        if tampered:
            from safetensors.numpy import save_file

            tensors = dict(small_model.base)
            edited = tensors["encoder.layer.0.mlp.weight"].copy()
            edited[3] += 0.25
            tensors["encoder.layer.0.mlp.weight"] = edited
            save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return root

    make.root = root  # type: ignore[attr-defined]
    return make


def _context(root: Path, **kw) -> AnalysisContext:
    case = Case.open(root)
    kw.setdefault("reference", case.model_dir("reference"))  # what the investigation passes without --reference
    return AnalysisContext(case=case, evidence=collect_evidence(case), **kw)


def _pair(result, name):
    return next(p for p in result.data["pairs"] if p.name == name)


def _tamper(findings, folder):
    return [f for f in findings if f.category in _TAMPER_CATEGORIES and str(f.evidence.get("path")).startswith(folder)]


def test_two_pairs_one_tampered_one_intact_are_both_diffed(build):
    build("models/suspect/alpha", tampered=True)
    build("models/reference/alpha", signed=False)
    build("models/suspect/beta")
    root = build("models/reference/beta", signed=False)
    result = analyse(_context(root))
    alpha, beta = _pair(result, "alpha"), _pair(result, "beta")
    assert [p.name for p in result.data["pairs"]] == ["alpha", "beta"] and alpha.pair.primary
    assert alpha.diff is not None and beta.diff is not None
    assert alpha.compared_with == beta.compared_with == "reference copy"
    tampered = _tamper(result.findings, "models/suspect/alpha/")
    assert {f.category for f in tampered} == {"tensor_modified", "model_file_tampered", "signature_invalid"}
    assert all(f.title.startswith("alpha: ") for f in tampered)
    (edit,) = [f for f in tampered if f.category == "tensor_modified"]
    assert edit.evidence == {**edit.evidence, "path": "models/suspect/alpha/model.safetensors", "tensor": "encoder."
                             "layer.0.mlp.weight"} and "3" in edit.evidence["rows"]  # fmt: skip
    # the intact model: every tensor compared, none differs, no tamper finding, a verified signature
    assert _tamper(result.findings, "models/suspect/beta/") == []
    assert len(beta.diff.tensors) == 4 and {t.status for t in beta.diff.tensors} == {"identical"}
    assert [f.category for f in beta.findings] == ["signature_verified"]
    assert beta.findings[0].title.startswith("beta: ")
    # the primary pair keeps the section's existing keys; every pair has its own tables
    assert result.data["diff"] is alpha.diff and result.data["signature"] is alpha.signature
    assert list(result.data["tensors"]["status"]).count("modified") == 1
    assert list(result.data["model_pairs"]["model"]) == ["alpha", "beta"]
    assert list(result.data["model_pairs"]["tensors_differing"]) == [1, 0]
    assert "1 other model(s): beta: 0 tensor(s) differ from the reference, signature (cosign-manifest) valid" in (
        result.summary
    )
    html = "".join(i for i in render(result) if isinstance(i, str))
    assert html.index("<h3>Model alpha</h3>") < html.index("<h3>Model beta</h3>")
    assert "Model folders (2)" in html and "models/suspect/beta" in html.split("<h3>Model beta</h3>")[1]
    assert result.not_applicable is None
    assert "models/reference/beta/model.safetensors" in result.inputs and "keys/cosign.pub" in result.inputs


def test_unpaired_suspect_and_reference_only_folders_are_reported(build):
    build("models/suspect/alpha")
    build("models/reference/alpha", signed=False)
    build("models/suspect/bravo")  # signed: compared with its manifest
    build("models/suspect/charlie", signed=False)  # nothing to compare with
    root = build("models/reference/delta", signed=False)
    result = analyse(_context(root))
    assert [p.name for p in result.data["pairs"]] == ["alpha", "bravo", "charlie", "delta"]
    bravo, charlie, delta = (_pair(result, n) for n in ("bravo", "charlie", "delta"))
    warned = {w.path: w.reason for w in result.warnings}
    assert warned["models/suspect/bravo"].startswith("no reference copy for model 'bravo' (no models/reference/bravo")
    assert "compared with its signed manifest only" in warned["models/suspect/bravo"]
    assert bravo.compared_with == "signature manifest" and bravo.diff is not None and bravo.scan is not None
    assert "scanned and signature-checked, not compared" in warned["models/suspect/charlie"]
    assert "unpaired on the other side: models/reference/delta" in warned["models/suspect/charlie"]
    assert charlie.diff is None and charlie.scan is not None and charlie.signature.scheme == "none"
    assert warned["models/reference/delta"].startswith("no suspect counterpart for the reference copy 'delta'")
    assert delta.scan is not None and delta.diff is None and delta.signature is not None
    unsigned = {f.evidence["path"]: f.severity.value for f in result.findings if f.category == "model_unsigned"}
    # an unsigned suspect is critical as ever; an unsigned reference with no suspect serves nobody: low
    assert unsigned == {"models/suspect/charlie": "critical", "models/reference/delta": "low"}
    frame = result.data["model_pairs"].set_index("model")
    assert list(frame["status"]) == ["paired", "suspect_only", "suspect_only", "reference_only"]
    assert frame.loc["charlie", "compared_with"] == "nothing"
    html = "".join(i for i in render(result) if isinstance(i, str))
    for name in ("bravo", "charlie", "delta"):
        assert f"<h3>Model {name}</h3>" in html
    assert "no suspect counterpart for the reference copy &#x27;delta&#x27;" in html
    assert "models/reference/delta/model.safetensors" in result.inputs


def test_folder_names_differing_in_case_are_not_paired_and_the_warning_says_why(build):
    build("models/suspect/Model", signed=False)
    root = build("models/reference/model", signed=False)
    result = analyse(_context(root))
    assert [(p.name, p.pair.status) for p in result.data["pairs"]] == [("Model", "suspect_only"),
                                                                      ("model", "reference_only")]  # fmt: skip
    warned = {w.path: w.reason for w in result.warnings}
    assert "models/reference/model differs only in letter case" in warned["models/suspect/Model"]
    assert result.data["diff"] is None


def test_a_model_with_a_tokenizer_subfolder_is_one_model(build):
    for side in ("suspect", "reference"):
        folder = build(f"models/{side}/m", signed=False) / "models" / side / "m"
        (folder / "tokenizer").mkdir()
        (folder / "tokenizer" / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    result = analyse(_context(build.root))
    (pair,) = result.data["pairs"]
    assert pair.name == "m" and pair.pair.status == "paired"
    assert "tokenizer/tokenizer_config.json" in set(pair.diff.file_frame()["path"])
    assert not any("no reference copy" in w.reason or "counterpart" in w.reason for w in result.warnings)


def test_case_yaml_names_the_primary_and_reference_override_replaces_only_its_reference(build, tmp_path):
    build("models/suspect/alpha")
    build("models/reference/alpha", signed=False)
    build("models/suspect/beta")
    root = build("models/reference/beta", signed=False)
    (root / "case.yaml").write_text("suspect_model: models/suspect/beta\n")
    result = analyse(_context(root))
    assert [p.name for p in result.data["pairs"]] == ["beta", "alpha"]
    assert result.data["diff"].suspect == "models/suspect/beta" and result.data["pairs"][0].pair.primary
    # --reference: an edited copy outside the case becomes beta's reference; alpha keeps its own
    other = tmp_path / "elsewhere" / "beta"
    shutil.copytree(root / "models" / "reference" / "beta", other)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(other / "model.safetensors"))
    tensors["classifier.bias"] = tensors["classifier.bias"] + np.float32(1.0)
    save_file(tensors, str(other / "model.safetensors"), metadata={"format": "pt"})
    result = analyse(_context(root, reference=other))
    beta, alpha = result.data["pairs"]
    assert beta.reference == str(other) and beta.diff.reference == str(other)
    assert {t.name for t in beta.diff.tensors if t.status != "identical"} == {"classifier.bias"}
    assert alpha.reference == "models/reference/alpha" and alpha.tensors_differing == 0
    assert not any(f.startswith("models/reference/beta/") for f in result.inputs)
    replaced = [w.reason for w in result.warnings if w.path == "models/reference/beta"]
    assert replaced == [f"replaced by the reference given ({other}) for model 'beta': not compared"]
    assert "models/reference/alpha/model.safetensors" in result.inputs


def _count_hashing(monkeypatch) -> list[str]:
    from workbench.checks import integrity

    read: list[str] = []
    real = integrity.hash_files

    def spy(paths):
        paths = list(paths)
        read.extend(Path(p).relative_to(Path(p).parents[3]).as_posix() for p in paths)  # case-relative
        return real(paths)

    monkeypatch.setattr(integrity, "hash_files", spy)
    return read


def test_intake_digests_are_trusted_and_an_empty_mapping_hashes_each_file_once(build, monkeypatch):
    from workbench.checks import integrity

    build("models/suspect/alpha")
    root = build("models/reference/alpha", signed=False)
    intake = {f.relpath: hashlib.sha256((root / f.relpath).read_bytes()).hexdigest() for f in Case.open(root).files}
    planted = "0" * 64  # deliberately wrong: if the diff re-read the file it would see it unchanged
    intake["models/suspect/alpha/config.json"] = planted
    read = _count_hashing(monkeypatch)
    result = analyse(_context(root, intake_hashes=intake))
    assert read == []  # every digest came from the intake: no model file was read to be hashed
    (tampered,) = [f for f in result.findings if f.category == "model_file_tampered"]
    assert tampered.evidence["path"] == "models/suspect/alpha/config.json" and tampered.evidence["sha256"] == planted
    # the signature check got the same digests (one hashing shared by both), so it disagrees too
    (bad,) = [f for f in result.findings if f.category == "signature_invalid"]
    assert bad.evidence["sha256"] == planted
    # without intake digests the real digest is computed, each file read once although two checks need it
    clean = analyse(_context(root))
    assert not [f for f in clean.findings if f.category in ("model_file_tampered", "signature_invalid")]
    tree = ("config.json", "model.safetensors", "tokenizer.json")
    assert sorted(read) == sorted(f"models/{side}/alpha/{n}" for side in ("suspect", "reference") for n in tree)
    assert not hasattr(integrity, "_RECENT")


def test_no_model_folder_is_not_applicable(tmp_path):
    root = tmp_path / "case"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "ci.log").write_text("ok\n")
    result = analyse(_context(root))
    assert result.not_applicable == "no model folder in the case" and result.findings == []
    assert result.inputs == ["logs/ci.log"]  # sniffed: not a model, an archive or code
    assert render(result) == ['<p class="wb-note">No model folder in the case; no artefact scan.</p>']


def test_evidence_model_names_are_escaped_in_every_pair_heading(build):
    build("models/suspect/alpha", signed=False)
    root = build("models/suspect/<img src=x onerror=alert(1)>", signed=False)
    result = analyse(_context(root))
    assert [p.name for p in result.data["pairs"]] == ["<img src=x onerror=alert(1)>", "alpha"]
    html = "".join(i for i in render(result) if isinstance(i, str))
    assert "<img" not in html and "<h3>Model &lt;img src=x onerror=alert(1)&gt;</h3>" in html
