"""Pairing the model folders of a case (workbench.model_pairs) over inventories given as path lists.

Case-level behaviour on real trees (symlinks, case.yaml, roles) is in tests/test_case.py.
"""

from __future__ import annotations

from workbench.model_pairs import ModelPair, discover_models, find_model_pairs, is_model_file


def _pairs(files, **kw):
    warnings = []
    return find_model_pairs(files, warnings=warnings, **kw), warnings


def test_folders_pair_by_name_and_the_first_by_name_is_primary():
    files = ["models/suspect/b/model.safetensors", "models/suspect/a/model.safetensors", "models/suspect/c/x.bin",
             "models/reference/a/model.safetensors", "models/reference/b/model.safetensors",
             "models/reference/d/model.safetensors", "logs/ci.log"]  # fmt: skip
    pairs, warnings = _pairs(files)
    assert pairs == [
        ModelPair("a", "models/suspect/a", "models/reference/a", True),
        ModelPair("b", "models/suspect/b", "models/reference/b"),
        ModelPair("c", "models/suspect/c", None),
        ModelPair("d", None, "models/reference/d"),
    ]
    assert [p.status for p in pairs] == ["paired", "paired", "suspect_only", "reference_only"] and warnings == []


def test_matching_is_case_sensitive():
    pairs, _ = _pairs(["models/suspect/Model/w.safetensors", "models/reference/model/w.safetensors"])
    assert [(p.name, p.status) for p in pairs] == [("Model", "suspect_only"), ("model", "reference_only")]


def test_a_model_with_a_tokenizer_subfolder_is_one_model():
    model = ["config.json", "model.safetensors", "tokenizer/tokenizer.json", "tokenizer/vocab.txt"]
    nested, _ = _pairs([f"models/suspect/m/{f}" for f in model] + [f"models/reference/m/{f}" for f in model])
    assert nested == [ModelPair("m", "models/suspect/m", "models/reference/m", True)]
    flat, _ = _pairs([f"models/suspect/{f}" for f in model] + [f"models/reference/{f}" for f in model])
    assert flat == [ModelPair("suspect", "models/suspect", "models/reference", True)]
    # loose non-model files next to a subfolder that does not look like a model: still one model
    loose, _ = _pairs(["models/suspect/notes.txt", "models/suspect/tokenizer/vocab.txt"])
    assert loose == [ModelPair("suspect", "models/suspect", None, True)]


def test_model_like_subfolders_next_to_loose_files_are_separate_models():
    files = ["models/suspect/README.md", "models/suspect/a/config.json", "models/suspect/b/pytorch_model.bin",
             "models/suspect/COMPROMISED.txt"]  # fmt: skip
    pairs, warnings = _pairs(files)
    assert [(p.name, p.suspect) for p in pairs] == [("a", "models/suspect/a"), ("b", "models/suspect/b")]
    assert [(w.path, "not analysed as a model" in w.reason) for w in warnings] == [("models/suspect/README.md", True)]


def test_direct_model_files_make_the_location_one_model_whatever_its_subfolders_hold():
    files = ["models/suspect/model.safetensors", "models/suspect/extra/config.json", "models/suspect/extra/w.bin"]
    assert discover_models(files, "models/suspect", []) == {".": "models/suspect"}
    signed = ["models/suspect/.signatures/manifest.json", "models/suspect/sub/data.txt"]
    assert discover_models(signed, "models/suspect", []) == {".": "models/suspect"}
    # every subfolder is a model when the location holds no file itself, whatever the files are called
    odd = ["models/suspect/evil/payload.dat", "models/suspect/good/config.json"]
    assert discover_models(odd, "models/suspect", []) == {"evil": "models/suspect/evil", "good": "models/suspect/good"}
    assert discover_models(["models/suspectX/a/w.bin", "models/other.txt"], "models/suspect", []) == {}


def test_case_yaml_names_the_primary_anywhere_in_the_case():
    files = ["models/suspect/a/w.safetensors", "models/reference/a/w.safetensors", "captured/b/w.safetensors",
             "models/reference/b/w.safetensors"]  # fmt: skip
    pairs, _ = _pairs(files, suspect_model="captured/b")
    assert pairs[0] == ModelPair("b", "captured/b", "models/reference/b", True)
    assert pairs[1:] == [ModelPair("a", "models/suspect/a", "models/reference/a")]
    both, _ = _pairs(files, suspect_model="models/suspect/a", reference_model="models/reference/b")
    assert both[0] == ModelPair("a", "models/suspect/a", "models/reference/b", True)
    # reference a lost its suspect to the configured pair: reported on its own, under its path (the name is taken)
    assert both[1:] == [ModelPair("models/reference/a", None, "models/reference/a")]
    only_ref, _ = _pairs(files, reference_model="models/reference/b")
    assert only_ref[0] == ModelPair("a", "models/suspect/a", "models/reference/b", True)


def test_affected_models_break_the_tie():
    files = ["models/suspect/a/w.bin", "models/suspect/b/w.bin", "models/reference/b/w.bin"]
    pairs, _ = _pairs(files, affected_models=["zzz", "b"])
    assert [(p.name, p.primary) for p in pairs] == [("b", True), ("a", False)]
    default, _ = _pairs(files)
    assert [(p.name, p.primary) for p in default] == [("a", True), ("b", False)]


def test_folders_inside_a_configured_one_are_not_analysed_twice():
    files = ["models/suspect/a/w.bin", "models/suspect/b/w.bin"]
    pairs, warnings = _pairs(files, suspect_model="models/suspect")
    assert pairs == [ModelPair("suspect", "models/suspect", None, True)]
    assert sorted(w.path for w in warnings) == ["models/suspect/a", "models/suspect/b"]
    assert all("analysed only as part of models/suspect" in w.reason for w in warnings)


def test_a_name_taken_by_the_primary_is_replaced_by_the_folder_path():
    files = ["captured/a/w.bin", "models/suspect/a/w.bin"]
    pairs, _ = _pairs(files, suspect_model="captured/a")
    assert [p.name for p in pairs] == ["a", "models/suspect/a"] and len({p.name for p in pairs}) == 2


def test_no_model_folder_gives_no_pair():
    assert _pairs(["logs/ci.log", "models/readme.txt"]) == ([], [])
    only_ref, _ = _pairs(["models/reference/w.safetensors"])
    assert only_ref == [ModelPair("reference", None, "models/reference", True)]


def test_model_file_names():
    assert all(map(is_model_file, ["config.json", "x.SAFETENSORS", "pytorch_model-00001-of-00002.bin", "m.gguf"]))
    assert not any(map(is_model_file, ["README.md", "tokenizer.json", "vocab.txt", "notes"]))
