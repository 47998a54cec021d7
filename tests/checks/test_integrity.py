import hashlib

import pandas as pd

from workbench.checks.integrity import (
    check_model_integrity,
    hash_model_dir,
    known_digests,
)
from workbench.deps import check_dependencies


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


def _count_hashing(monkeypatch):
    """Record every path ``hash_model_dir`` reads to hash (through ``workbench.hashing.hash_files``)."""
    from workbench.checks import integrity

    read = []
    real = integrity.hash_files

    def spy(paths):
        paths = list(paths)
        read.extend(p.name for p in paths)
        return real(paths)

    monkeypatch.setattr(integrity, "hash_files", spy)
    return read


def test_hash_model_dir_takes_known_digests_and_reads_only_the_rest(tmp_path, monkeypatch):
    from workbench.checks import integrity

    files = {"a.bin": b"A" * 64, "b.bin": b"B" * 64, ".signatures/manifest.json": b"{}", "COMPROMISED.txt": b"x"}
    model = _model(tmp_path / "m", files)
    read = _count_hashing(monkeypatch)
    planted = "f" * 64  # deliberately not a.bin's digest: a known digest is trusted, the file is not re-read
    got = hash_model_dir(model, {"a.bin": planted, "gone.bin": "0" * 64})
    assert got == {"a.bin": planted, "b.bin": hashlib.sha256(b"B" * 64).hexdigest()}
    assert read == ["b.bin"]
    read.clear()
    assert hash_model_dir(model) == {n: hashlib.sha256(files[n]).hexdigest() for n in ("a.bin", "b.bin")}
    assert sorted(read) == ["a.bin", "b.bin"]
    read.clear()
    hash_model_dir(model)  # no cache between calls: the caller shares one result instead
    assert sorted(read) == ["a.bin", "b.bin"]
    assert not hasattr(integrity, "_RECENT") and not hasattr(integrity, "_stat_key")


def test_known_digests_selects_one_folder_by_path_component():
    intake = {"models/suspect/m/a.bin": "1", "models/suspect/m/sub/c.json": "2", "models/suspect/m2/a.bin": "3",
              "models/suspect/m": "4", "logs/ci.log": "5"}  # fmt: skip
    assert known_digests(intake, "models/suspect/m") == {"a.bin": "1", "sub/c.json": "2"}
    assert known_digests(intake, "models/suspect/m/") == {"a.bin": "1", "sub/c.json": "2"}
    assert known_digests({}, "models/suspect/m") == {}


def test_check_model_integrity_uses_the_digests_it_is_given(tmp_path, monkeypatch):
    model = _model(tmp_path / "m", {"w.bin": b"W"})
    read = _count_hashing(monkeypatch)
    found = check_model_integrity(model, {"w.bin": "1" * 64}, model_id="m", current={"w.bin": "2" * 64})
    assert [(f.category, f.evidence["sha256"]) for f in found] == [("model_file_tampered", "2" * 64)] and read == []
    found = check_model_integrity(model, {"w.bin": hashlib.sha256(b"W").hexdigest()}, model_id="m")
    assert found == [] and read == ["w.bin"]


def test_hash_model_dir_lists_what_its_walk_could_not_take_in(tmp_path, monkeypatch):
    import os

    from workbench import evidence_tree
    from workbench.checks.integrity import hash_model_dir

    (tmp_path / "a.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "b.safetensors").write_bytes(b"y" * 10)
    os.mkfifo(tmp_path / "pipe.bin")
    monkeypatch.setattr(evidence_tree, "MAX_FILES", 1)
    missed: list[str] = []
    hashed = hash_model_dir(tmp_path, None, missed)
    assert list(hashed) == ["a.safetensors"]
    assert any(m.startswith("pipe.bin: special file") for m in missed)
    assert any("b.safetensors" in m for m in missed)
