"""Tensor diff of sharded checkpoints (``*.index.json`` weight maps) and across formats (safetensors vs PyTorch zip).

Shards are written with the safetensors library and the tests' PyTorch writer; the suspect and the reference are
sharded differently, so tensors can only be matched by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.model import checkpoint_writers as cw
from tests.model.test_tensor_torch import ADDED, BIAS, EMB, RANK1, ROW, check_edits, edited, reference_arrays
from workbench.model.dirdiff import diff_model


def shard(folder: Path, arrays: dict[str, np.ndarray], layout: list[list[str]], *, torch: bool = False,
          index: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Write ``arrays`` into ``len(layout)`` shards (names per shard) and the index (``index`` overrides entries)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, ext = ("pytorch_model", "bin") if torch else ("model", "safetensors")
    weight_map = {}
    for i, names in enumerate(layout, 1):
        file = f"{stem}-{i:05d}-of-{len(layout):05d}.{ext}"
        part = {n: arrays[n] for n in names}
        if torch:
            cw.write_torch_zip(folder / file, cw.simple(part))
        else:
            save_file(part, str(folder / file))
        weight_map.update(dict.fromkeys(names, file))
    weight_map.update(index or {})
    doc = {"metadata": {"total_size": sum(a.nbytes for a in arrays.values())}, "weight_map": weight_map}
    (folder / f"{stem}.{ext}.index.json").write_text(json.dumps(doc))
    return folder


def test_sharded_safetensors_matched_across_different_sharding(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    r = shard(tmp_path / "ref", ref, [[ROW, EMB], [RANK1, BIAS]])
    s = shard(tmp_path / "sus", sus, [[ROW], [EMB, RANK1], [BIAS, ADDED]])
    result = diff_model(s, r, model_id="m")
    check_edits(result, ref, sus)
    by = {t.name: t for t in result.tensors}
    assert (by[ROW].path, by[ROW].reference_path) == ("model-00001-of-00003.safetensors",
                                                      "(reference)/model-00001-of-00002.safetensors")  # fmt: skip
    assert (by[RANK1].path, by[ADDED].path) == ("model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors")
    assert result.warnings == [] and result.unexamined == []
    assert sorted(result.limits) == [
        "(reference)/model.safetensors.index.json: sharding index of 4 tensors in 2 shard(s) applied",
        "model.safetensors.index.json: sharding index of 5 tensors in 3 shard(s) applied",
    ]


def test_removed_tensor_and_index_disagreements(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = {k: v for k, v in ref.items() if k != EMB}
    r = shard(tmp_path / "ref", ref, [[ROW, EMB], [RANK1, BIAS]])
    s = shard(tmp_path / "sus", sus, [[ROW, RANK1], [BIAS]], index={BIAS: "model-00001-of-00002.safetensors"})
    save_file({"stray": np.zeros(2, np.float32)}, str(s / "extra.safetensors"))
    result = diff_model(s, r)
    assert {t.name: t.status for t in result.tensors if t.status != "identical"} == {EMB: "removed", "stray": "added"}
    unread = "not named by the sharding index model.safetensors.index.json: a loader following the index never reads it"
    assert sorted((w.path, w.reason) for w in result.warnings) == [
        ("extra.safetensors", f"{unread} (compared)"),
        ("model-00002-of-00002.safetensors", f"{unread} (compared)"),  # the index moved BIAS, its only tensor
        ("model.safetensors.index.json", f"maps tensor {BIAS!r} to 'model-00001-of-00002.safetensors', which does "
         "not hold it (it is in model-00002-of-00002.safetensors)"),
    ]  # fmt: skip


def test_index_decides_between_two_copies(tmp_path: Path) -> None:
    """Two shards hold ROW; the index names the second, whose copy is edited: that copy is the one compared."""
    ref = reference_arrays()
    r = shard(tmp_path / "ref", ref, [[ROW, EMB], [RANK1, BIAS]])
    s = shard(tmp_path / "sus", ref, [[ROW, EMB], [RANK1, BIAS]], index={ROW: "model-00002-of-00002.safetensors"})
    sus = edited(ref)
    save_file({RANK1: ref[RANK1], BIAS: ref[BIAS], ROW: sus[ROW]}, str(s / "model-00002-of-00002.safetensors"))
    result = diff_model(s, r)
    assert {t.name: t.status for t in result.tensors if t.status != "identical"} == {ROW: "modified"}
    assert next(t for t in result.tensors if t.name == ROW).changed_rows == (5,)
    assert [w.reason for w in result.warnings] == [f"tensor {ROW!r} also in model-00002-of-00002.safetensors; this "
                                                   "copy ignored"]  # fmt: skip


def test_benign_twin_sharded_differently(tmp_path: Path) -> None:
    ref = reference_arrays()
    r = shard(tmp_path / "ref", ref, [[ROW, EMB], [RANK1, BIAS]])
    s = shard(tmp_path / "sus", reference_arrays(), [[ROW], [EMB], [RANK1, BIAS]])
    result = diff_model(s, r)
    assert {t.status for t in result.tensors} == {"identical"} and len(result.tensors) == 4
    assert [f.category for f in result.findings if f.category.startswith("tensor_")] == []


def test_sharded_pytorch_against_single_safetensors(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    r = tmp_path / "ref"
    r.mkdir()
    save_file(ref, str(r / "model.safetensors"))
    s = shard(tmp_path / "sus", sus, [[ROW, RANK1], [BIAS, EMB, ADDED]], torch=True)
    result = diff_model(s, r, model_id="m")
    check_edits(result, ref, sus)
    assert "pytorch-zip checkpoint compared with a safetensors reference: tensors matched by name, dtypes and " \
           "shapes checked" in result.limits  # fmt: skip


def test_cross_format_dtype_and_shape_checked(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = dict(ref)
    sus[BIAS] = ref[BIAS].astype(np.float16)
    sus[EMB] = ref[EMB][:8]
    save_file(ref, str(tmp_path / "model.safetensors"))
    s = cw.write_torch_zip(tmp_path / "pytorch_model.bin", cw.simple(sus))
    result = diff_model(s, tmp_path / "model.safetensors")
    by = {t.name: t for t in result.tensors}
    assert {n: t.status for n, t in by.items()} == {ROW: "identical", RANK1: "identical", BIAS: "dtype_changed",
                                                   EMB: "shape_changed"}  # fmt: skip
    assert (by[BIAS].dtype, by[BIAS].reference_dtype, by[EMB].shape) == ("F16", "F32", (8, 8))


def test_both_formats_on_both_sides_pair_by_format(tmp_path: Path) -> None:
    """A folder shipping model.safetensors and pytorch_model.bin: each is compared with its own format."""
    ref = reference_arrays()
    sus = edited(ref)
    for side, arrays in (("ref", ref), ("sus", sus)):
        (tmp_path / side).mkdir()
        save_file(ref, str(tmp_path / side / "model.safetensors"))  # the safetensors copy is left untouched
        cw.write_torch_zip(tmp_path / side / "pytorch_model.bin", cw.simple(arrays))
    result = diff_model(tmp_path / "sus", tmp_path / "ref")
    changed = sorted((t.name, t.status, t.path) for t in result.tensors if t.status != "identical")
    assert changed == [(ROW, "modified", "pytorch_model.bin"), (ADDED, "added", "pytorch_model.bin"),
                       (RANK1, "modified", "pytorch_model.bin")]  # fmt: skip
    assert sum(t.status == "identical" for t in result.tensors) == 6


def test_data_parallel_prefix_removed_when_no_name_is_shared(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    save_file(ref, str(tmp_path / "model.safetensors"))
    s = cw.write_torch_zip(tmp_path / "dp.pt", cw.simple({f"module.{n}": a for n, a in sus.items()}))
    result = diff_model(s, tmp_path / "model.safetensors")
    check_edits(result, ref, sus)
    assert "every suspect tensor name starts with 'module.'; compared without it" in result.limits


def test_formats_that_cannot_be_paired_are_unexamined_not_added(tmp_path: Path) -> None:
    ref = reference_arrays()
    (tmp_path / "sus").mkdir()
    (tmp_path / "ref").mkdir()
    cw.write_gguf(tmp_path / "sus" / "model.gguf", {"w": ("F32", (2, 3), np.zeros(6, np.float32).tobytes())})
    save_file(ref, str(tmp_path / "ref" / "model.safetensors"))
    result = diff_model(tmp_path / "sus", tmp_path / "ref")
    assert result.tensors == []
    assert result.unexamined == [
        "model.gguf: tensors not compared: the reference has no checkpoint of this format (gguf) to pair it with, "
        "only safetensors",
        "(reference)/model.safetensors: tensors not compared: the suspect has no checkpoint of this format "
        "(safetensors) to pair it with, only gguf",
    ]
