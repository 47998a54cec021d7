from __future__ import annotations

import json

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.signature_manifest import SignatureManifestLoader

H1, H2 = "ab" * 32, "CD" * 32


def _manifest(files, **extra) -> str:
    return json.dumps({"version": 1, "model_id": "m", "hash_algorithm": "sha256", **extra, "files": files})


def test_list_form(make_file, ctx):
    files = [{"path": "model.safetensors", "sha256": H1, "size": 1234}, {"path": "config.json", "sha256": H2}]
    loaded = SignatureManifestLoader().load(make_file(".signatures/manifest.json", _manifest(files)), ctx)
    assert loaded.warnings == []
    assert loaded.frame.to_dict("records")[0] == {"path": "model.safetensors", "sha256": H1, "size": 1234}
    assert loaded.frame.loc[1, "sha256"] == H2.lower()
    assert loaded.frame["size"].isna().tolist() == [False, True]
    assert loaded.meta == {"version": 1, "model_id": "m", "hash_algorithm": "sha256"}


def test_object_form(make_file, ctx):
    loaded = SignatureManifestLoader().load(make_file("manifest.json", _manifest({"a.bin": H1, "b.bin": H2})), ctx)
    assert list(loaded.frame["path"]) == ["a.bin", "b.bin"]


def test_bad_entry_one_warning(make_file, ctx):
    files = [{"path": "a", "sha256": H1}, {"path": "b", "sha256": "xyz"}, "junk", {"path": "c", "sha256": H2}]
    loaded = SignatureManifestLoader().load(make_file("manifest.json", _manifest(files)), ctx)
    assert len(loaded.warnings) == 2
    assert "files[1]" in loaded.warnings[0].reason and "files[2]" in loaded.warnings[1].reason
    assert list(loaded.frame["path"]) == ["a", "c"]


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '{"files": 3}', _manifest([{"path": "a"}])])
def test_unusable_manifest(make_file, ctx, text):
    with pytest.raises(MalformedEvidence):
        SignatureManifestLoader().load(make_file("manifest.json", text), ctx)


def test_detect_by_content(make_file):
    loader = SignatureManifestLoader()
    assert loader.detect(make_file("copy-of-manifest.json", _manifest([])))
    big = _manifest([{"path": f"shard-{i:05d}.safetensors", "sha256": H1} for i in range(200)])
    assert loader.detect(make_file("big.json", big))
    assert not loader.detect(make_file("config.json", '{"architectures": ["BertModel"], "hidden_size": 768}'))
    assert not loader.detect(make_file("dist.json", '{"files": 0.5, "images": 0.5}'))
