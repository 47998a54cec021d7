"""Tensor diff of PyTorch checkpoints (zip, legacy stacked, legacy tar) built in the tests without torch.

The pickles are written opcode by opcode as ``torch.save`` writes them (``checkpoint_writers``); the workbench walks
them statically. Each suspect has an edited row, a rank-1 edit and an added tensor; expected values are computed
with numpy on the arrays written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.model import checkpoint_writers as cw
from workbench.model.checkpoints import read_file, sniff_checkpoint
from workbench.model.dirdiff import diff_model

ROW = "encoder.layer.0.attn.weight"
RANK1 = "encoder.layer.1.mlp.weight"
BIAS = "encoder.layer.1.mlp.bias"
EMB = "embeddings.weight"
ADDED = "encoder.layer.1.backdoor.trigger"
WRITERS: dict[str, Callable[..., Path]] = {"zip": cw.write_torch_zip, "legacy": cw.write_torch_legacy,
                                           "tar": cw.write_torch_tar}  # fmt: skip


def reference_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    f32, f16 = np.float32, np.float16
    return {ROW: rng.standard_normal((32, 48)).astype(f32), RANK1: rng.standard_normal((40, 64)).astype(f32),
            BIAS: rng.standard_normal(40).astype(f32), EMB: rng.standard_normal((16, 8)).astype(f16)}  # fmt: skip


def edited(ref: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row 5 of ROW edited in three columns, a dense rank-1 change of RANK1, ADDED new."""
    sus = {k: v.copy() for k, v in ref.items()}
    sus[ROW][5, [1, 7, 30]] += np.float32(0.5)
    rng = np.random.default_rng(3)
    m = ref[RANK1].astype(np.float64)
    u, v = rng.standard_normal(m.shape[0]), rng.standard_normal(m.shape[1])
    sus[RANK1] = (m + 0.2 * np.linalg.norm(m) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))).astype(
        np.float32
    )
    sus[ADDED] = np.ones(4, np.float32)
    return sus


def check_edits(result, ref: dict[str, np.ndarray], sus: dict[str, np.ndarray]) -> None:
    by = {t.name: t for t in result.tensors}
    assert {n: t.status for n, t in by.items()} == {ROW: "modified", RANK1: "modified", BIAS: "identical",
                                                   EMB: "identical", ADDED: "added"}  # fmt: skip
    row = by[ROW]
    assert (row.changed_elements, row.changed_rows, row.changed_row_count) == (3, (5,), 1)
    assert row.max_abs_change == pytest.approx(float(np.max(np.abs(sus[ROW].astype(np.float64) - ref[ROW]))), rel=1e-12)
    rank1 = by[RANK1]
    assert rank1.changed_row_count == 40 and rank1.changed_rows == tuple(range(40))
    assert rank1.top_singular_energy == pytest.approx(1.0, abs=1e-6)
    before = ref[RANK1].astype(np.float64)
    delta = sus[RANK1].astype(np.float64) - before
    assert rank1.relative_change == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(before), rel=1e-9)
    assert (by[ADDED].dtype, by[ADDED].shape) == ("F32", (4,))
    severities = {f.evidence["tensor"]: f.severity.value for f in result.findings if f.category.startswith("tensor_")}
    assert severities == {ROW: "high", RANK1: "critical", ADDED: "high"}


@pytest.mark.parametrize("kind", ["zip", "legacy", "tar"])
def test_torch_checkpoint_edits_found(tmp_path: Path, kind: str) -> None:
    ref, write = reference_arrays(), WRITERS[kind]
    sus = edited(ref)
    r = write(tmp_path / "ref.pt", cw.simple(ref, parameter=kind == "zip"))
    s = write(tmp_path / "sus.pt", cw.simple(sus, parameter=kind == "zip"))
    assert sniff_checkpoint(s) == f"pytorch-{kind}"
    result = diff_model(s, r, model_id="m")
    check_edits(result, ref, sus)
    assert result.unexamined == [] and result.warnings == []


@pytest.mark.parametrize("kind", ["zip", "legacy", "tar"])
def test_benign_twin_gives_no_change(tmp_path: Path, kind: str) -> None:
    ref = reference_arrays()
    r = WRITERS[kind](tmp_path / "ref.pt", cw.simple(ref))
    s = WRITERS[kind](tmp_path / "twin.pt", cw.simple(reference_arrays()))
    result = diff_model(s, r)
    assert {t.status for t in result.tensors} == {"identical"} and len(result.tensors) == 4
    assert result.findings == [] and result.unexamined == []


def test_module_objects_named_by_attribute_path(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    r = cw.write_torch_zip(tmp_path / "ref.pt", cw.simple(ref), module=True)
    s = cw.write_torch_zip(tmp_path / "sus.pt", cw.simple(sus), module=True)
    assert [t.name for t in read_file(s, "sus.pt", "pytorch-zip").tensors] == [ROW, RANK1, BIAS, EMB, ADDED]
    check_edits(diff_model(s, r), ref, sus)


def test_views_into_shared_storages_and_strides(tmp_path: Path) -> None:
    """q and k are offsets into one storage; wt is a transposed (strided) view; the edit lands in k's row 2."""
    rng = np.random.default_rng(0)
    qk = rng.standard_normal(2 * 6 * 4).astype(np.float32)
    base = rng.standard_normal((5, 3)).astype(np.float32)

    def tensors(qk: np.ndarray, base: np.ndarray) -> dict[str, cw.Tensor]:
        return {"q": cw.Tensor("0", qk, (6, 4)), "k": cw.Tensor("0", qk, (6, 4), offset=24),
                "wt": cw.Tensor("1", base, (3, 5), stride=(1, 3))}  # fmt: skip

    r = cw.write_torch_zip(tmp_path / "ref.pt", tensors(qk, base))
    qk2, base2 = qk.copy(), base.copy()
    qk2[24 + 2 * 4 + 1] += 1.0  # k[2, 1]
    base2[4, 2] -= 1.0  # wt[2, 4]
    s = cw.write_torch_zip(tmp_path / "sus.pt", tensors(qk2, base2))
    by = {t.name: t for t in diff_model(s, r).tensors}
    assert by["q"].status == "identical"
    assert (by["k"].status, by["k"].changed_rows, by["k"].max_abs_change) == ("modified", (2,), pytest.approx(1.0))
    assert (by["wt"].status, by["wt"].changed_rows, by["wt"].changed_elements) == ("modified", (2,), 1)
    src = {t.name: t for t in read_file(s, "sus.pt", "pytorch-zip").tensors}
    assert (src["wt"].strides, src["k"].member) == ((1, 3), "archive/data/0")


def test_untyped_storage_with_dtype(tmp_path: Path) -> None:
    """torch 2 writes uint16 (and the other dtypes without a storage class) by _rebuild_tensor_v3."""
    ref = np.arange(60, dtype=np.uint16).reshape(6, 10)
    sus = ref.copy()
    sus[4, 9] = 7
    r = cw.write_torch_zip(tmp_path / "ref.pt", {"ids": cw.Tensor("0", ref, (6, 10), v3=True)})
    s = cw.write_torch_zip(tmp_path / "sus.pt", {"ids": cw.Tensor("0", sus, (6, 10), v3=True)})
    (src,) = read_file(s, "sus.pt", "pytorch-zip").tensors
    assert (src.dtype, src.shape, src.nbytes) == ("U16", (6, 10), 120)
    (diff,) = diff_model(s, r).tensors
    assert (diff.status, diff.changed_rows, diff.changed_elements, diff.max_abs_change) == ("modified", (4,), 1, 42.0)


def test_big_endian_storages_compared_by_value(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    r = cw.write_torch_zip(tmp_path / "ref.pt", cw.simple(ref), big_endian=True)
    s = cw.write_torch_zip(tmp_path / "sus.pt", cw.simple(sus), big_endian=True)
    assert all(t.big_endian for t in read_file(s, "s", "pytorch-zip").tensors if t.dtype != "U8")
    check_edits(diff_model(s, r), ref, sus)


def test_bad_view_is_unexamined(tmp_path: Path) -> None:
    ref = reference_arrays()
    r = cw.write_torch_zip(tmp_path / "ref.pt", cw.simple(ref))
    tensors = cw.simple(ref)
    tensors[BIAS] = cw.Tensor("2", ref[BIAS], (41,))  # one element past its storage of 40
    result = diff_model(cw.write_torch_zip(tmp_path / "sus.pt", tensors), r)
    assert result.unexamined == [f"sus.pt: tensor {BIAS} not compared: its view (offset 0, shape [41], stride [1]) "
                                 "runs past its storage of 160 bytes"]  # fmt: skip
    # a tensor that could not be located is unexamined, neither removed nor identical
    assert {t.name: t.status for t in result.tensors} == {ROW: "identical", RANK1: "identical", EMB: "identical"}


def test_compressed_member_inflated_within_the_cap(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    from workbench.model import torch_checkpoint

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ref = reference_arrays()
    sus = edited(ref)
    r = cw.write_torch_zip(tmp_path / "ref.pt", cw.simple(ref))
    s = cw.write_torch_zip(tmp_path / "sus.pt", cw.simple(sus), compress_key="1")  # RANK1's storage, deflated
    result = diff_model(s, r)
    check_edits(result, ref, sus)
    assert result.limits == ["sus.pt: archive/data/1 is compressed (method 8); inflated to 10240 bytes in a "
                             "temporary file to be compared"]  # fmt: skip
    assert list(scratch.iterdir()) == []  # the temporary file is gone
    monkeypatch.setattr(torch_checkpoint, "MAX_INFLATED_BYTES", 10239)
    result = diff_model(s, r)
    assert result.unexamined == [f"sus.pt: tensor {RANK1} not compared: storage member archive/data/1 is compressed "
                                 "and would take the inflated bytes past the 10239-byte cap: not inflated"]  # fmt: skip
    assert RANK1 not in {t.name for t in result.tensors} and list(scratch.iterdir()) == []


def test_tied_weights_across_formats_are_not_added(tmp_path: Path) -> None:
    """A PyTorch checkpoint keeps a tied lm_head next to the embedding; the safetensors conversion drops it."""
    from safetensors.numpy import save_file

    ref = reference_arrays()
    tensors = cw.simple(ref)
    tensors["lm_head.weight"] = cw.Tensor(tensors[EMB].key, ref[EMB], ref[EMB].shape)
    s = cw.write_torch_zip(tmp_path / "pytorch_model.bin", tensors)
    save_file(ref, str(tmp_path / "model.safetensors"))
    result = diff_model(s, tmp_path / "model.safetensors")
    assert {t.status for t in result.tensors} == {"identical"} and len(result.tensors) == 4
    assert any("1 tied tensor name" in note for note in result.limits)
    assert any("compared with a safetensors reference" in note for note in result.limits)
