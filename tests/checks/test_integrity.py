import hashlib

import pandas as pd

from workbench.checks.integrity import check_artefacts, check_dependencies, check_model_integrity, hash_model_dir


def _model(root, files):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_integrity_categories(tmp_path):
    ref = _model(tmp_path / "ref", {"w.safetensors": b"A" * 100, "config.json": b"{}", "tok.json": b"[]"})
    sus = _model(
        tmp_path / "sus",
        {
            "w.safetensors": b"B" * 100,
            "config.json": b"{}",
            "extra.pkl": b"\x80\x02.",
            ".signatures/manifest.json": b"{}",
            "COMPROMISED.txt": b"x",
        },
    )
    findings = check_model_integrity(sus, hash_model_dir(ref), model_id="m", display_prefix="models/suspect/m")
    got = {(f.category, f.evidence["path"], f.severity.value) for f in findings}
    assert got == {
        ("model_file_tampered", "models/suspect/m/w.safetensors", "critical"),
        ("unexpected_model_file", "models/suspect/m/extra.pkl", "high"),
        ("model_file_missing", "models/suspect/m/tok.json", "critical"),
    }
    tampered = next(f for f in findings if f.category == "model_file_tampered")
    assert tampered.evidence["sha256"] == hashlib.sha256(b"B" * 100).hexdigest()
    assert "AML.T0010.003" in tampered.atlas


def test_identical_model_gives_nothing(tmp_path):
    files = {"w.safetensors": b"A" * 10, "sub/config.json": b"{}"}
    assert (
        check_model_integrity(
            _model(tmp_path / "s", files), hash_model_dir(_model(tmp_path / "r", files)), model_id="m"
        )
        == []
    )


def test_dangerous_types_by_suffix_and_by_content(tmp_path):
    sus = _model(
        tmp_path / "m",
        {
            "a.pkl": b"x",
            "hook.py": b"import os",
            "lib.so": b"\x7fELF",
            "tokenizer.model": b"\x80\x04\x95",
            "w.safetensors": b"\x08\x00",
            ".signatures/manifest.json": b"{}",
        },
    )
    found = {f.evidence["path"]: f.evidence["file_type"] for f in check_artefacts(sus, model_id="m")}
    assert found == {
        "a.pkl": "pickle",
        "hook.py": "Python source",
        "lib.so": "shared library",
        "tokenizer.model": "pickle (by content)",
    }


def test_unsigned_model(tmp_path):
    sus = _model(tmp_path / "m", {"w.safetensors": b"x"})
    found = check_artefacts(sus, model_id="m", display_prefix="models/suspect/m")
    assert [(f.category, f.severity.value, f.evidence["path"]) for f in found] == [
        ("model_unsigned", "critical", "models/suspect/m")
    ]


def test_dependencies_against_baseline():
    installed = pd.DataFrame(
        {"name": ["torch", "transformers", "numpy"], "version": ["2.2.0", "4.38.1", "1.26.4"], "line": [1, 2, 3]}
    )
    found = check_dependencies(
        installed, {"torch": "2.2.0", "Transformers": "4.38.0", "safetensors": "0.4.2"}, source="frozen_deps.txt"
    )
    got = sorted((f.category, f.evidence["package"], f.severity.value) for f in found)
    assert got == [("dependency_changed", "Transformers", "critical"), ("dependency_missing", "safetensors", "high")]
    changed = next(f for f in found if f.category == "dependency_changed")
    assert changed.evidence["line"] == 2 and changed.evidence["actual"] == "4.38.1"


def test_hash_model_dir_reuses_an_unchanged_folder_but_sees_any_rewrite(tmp_path, monkeypatch):
    from workbench.checks import integrity

    model = _model(tmp_path / "m", {"w.bin": b"A" * 64})
    calls = []
    real = integrity.hash_files
    monkeypatch.setattr(integrity, "hash_files", lambda paths: calls.append(1) or real(paths))
    first = hash_model_dir(model)
    assert hash_model_dir(model) == first and len(calls) == 1
    (model / "w.bin").write_bytes(b"B" * 64)  # same size, new content
    assert hash_model_dir(model) == {"w.bin": hashlib.sha256(b"B" * 64).hexdigest()} and len(calls) == 2
