"""walk_registry: the layouts a registry may have, and what it must skip (symlinks, special files, too deep)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.sweep import registry as registry_mod
from workbench.sweep.registry import walk_registry


def _model(folder: Path, *extra: str) -> Path:
    """A small model folder: config.json, model.safetensors and any ``extra`` relative files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "bert"}\n')
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    for rel in extra:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"x")
    return folder


def _rels(reg) -> list[str]:
    return [m.rel for m in reg.models]


def test_versioned_and_flat_layouts(tmp_path):
    _model(tmp_path / "acme" / "embedder" / "r1")
    _model(tmp_path / "acme" / "embedder" / "r2")
    _model(tmp_path / "flat")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a model\n")
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["acme/embedder/r1", "acme/embedder/r2", "flat"]
    assert reg.root == str(tmp_path.absolute())
    flat = reg.models[-1]
    assert [f.rel for f in flat.files] == ["config.json", "model.safetensors"]
    assert flat.path == tmp_path / "flat"
    assert flat.key == f"{tmp_path.absolute()}::flat"
    st = (tmp_path / "flat" / "model.safetensors").stat()
    assert (flat.files[1].size, flat.files[1].mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert reg.skipped == []


def test_root_itself_is_one_model(tmp_path):
    _model(tmp_path, "tokenizer/tokenizer.json")
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["."]
    assert [f.rel for f in reg.models[0].files] == ["config.json", "model.safetensors", "tokenizer/tokenizer.json"]


def test_tokenizer_subfolder_is_part_of_its_model(tmp_path):
    # a tokenizer/ folder holding a config.json would be a model on its own if the walk looked inside models
    _model(tmp_path / "m" / "r1", "tokenizer/tokenizer.json", "tokenizer/config.json", "tokenizer/vocab.txt")
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["m/r1"]
    files = [f.rel for f in reg.models[0].files]
    assert files == ["config.json", "model.safetensors", "tokenizer/config.json", "tokenizer/tokenizer.json",
                     "tokenizer/vocab.txt"]  # fmt: skip


def test_signature_folder_alone_makes_a_model(tmp_path):
    sig = tmp_path / "signed-only" / ".signatures"
    sig.mkdir(parents=True)
    (sig / "manifest.json").write_text("{}")
    (tmp_path / "signed-only" / "weights.data").write_bytes(b"\0")
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["signed-only"]
    assert [f.rel for f in reg.models[0].files] == [".signatures/manifest.json", "weights.data"]


def test_symlinked_model_folder_and_file_are_skipped_not_followed(tmp_path):
    outside = _model(tmp_path / "outside" / "secret-model")
    root = tmp_path / "registry"
    real = _model(root / "real")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (real / "extra.safetensors").symlink_to(outside / "model.safetensors")
    reg = walk_registry(root)
    assert _rels(reg) == ["real"]
    assert reg.skipped == ["linked: symbolic link, not followed"]
    model = reg.models[0]
    assert [f.rel for f in model.files] == ["config.json", "model.safetensors"]
    assert model.skipped == ("real/extra.safetensors: symbolic link, not followed",)


def test_symlinked_root_is_refused(tmp_path):
    _model(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(NotADirectoryError, match="not a registry folder"):
        walk_registry(tmp_path / "link")


def test_fifo_inside_a_model_is_skipped(tmp_path):
    model = _model(tmp_path / "m")
    os.mkfifo(model / "pipe.bin")
    reg = walk_registry(tmp_path)  # would block forever if the FIFO were opened
    assert [f.rel for f in reg.models[0].files] == ["config.json", "model.safetensors"]
    assert reg.models[0].skipped == ("m/pipe.bin: not a regular file",)


def test_depth_cap_reports_what_it_did_not_search(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_mod, "MAX_DEPTH", 2)
    _model(tmp_path / "a" / "b")  # depth 2: found
    _model(tmp_path / "a" / "x" / "deep" / "m")  # below depth 2: not searched
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["a/b"]
    assert reg.skipped == ["a/x/deep: deeper than 2 folders, not searched"]


def test_model_and_file_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_mod, "MAX_MODELS", 1)
    monkeypatch.setattr(registry_mod, "MAX_FILES_PER_MODEL", 2)
    _model(tmp_path / "a", "z.txt")
    _model(tmp_path / "b")
    reg = walk_registry(tmp_path)
    assert _rels(reg) == ["a"]
    assert reg.skipped == ["b: past 1 models, not examined"]
    assert [f.rel for f in reg.models[0].files] == ["config.json", "model.safetensors"]
    assert reg.models[0].skipped == ("a/z.txt: past 2 files of one model, not examined",)


def test_root_that_is_not_a_folder(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="not a registry folder"):
        walk_registry(file)
    with pytest.raises(NotADirectoryError):
        walk_registry(tmp_path / "missing")
