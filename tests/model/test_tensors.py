"""Tensor-level diff on the real all-MiniLM-L6-v2 checkpoint and on small crafted files (bf16, fp16, chunking).

Expected values are computed independently with plain numpy on the full arrays loaded by the safetensors library.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from workbench.model.dirdiff import diff_model, tensor_findings
from workbench.model.safetensors_format import read_header
from workbench.model.tensors import diff_tensor, is_embedding

SINGLE = "encoder.layer.3.attention.self.value.weight"
RANK1 = "encoder.layer.2.intermediate.dense.weight"
EMB = "embeddings.word_embeddings.weight"
DTYPE = "encoder.layer.5.output.LayerNorm.weight"
REMOVED = "pooler.dense.bias"
ADDED = "encoder.layer.5.backdoor.trigger"


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(np.linalg.norm(b64 - a64) / np.linalg.norm(a64))


@pytest.fixture(scope="module")
def minilm_edit(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """A copy of MiniLM with five kinds of edit, rewritten with the safetensors library."""
    ref_dir = minilm_dir
    ref = load_file(str(ref_dir / "model.safetensors"))
    sus = dict(ref)
    w = ref[SINGLE].copy()
    w[7, 11] += np.float32(0.5)
    sus[SINGLE] = w
    rng = np.random.default_rng(1)
    m = ref[RANK1].astype(np.float64)
    u, v = rng.normal(size=m.shape[0]), rng.normal(size=m.shape[1])
    sus[RANK1] = (m + 0.2 * np.linalg.norm(m) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))).astype(
        np.float32
    )
    vocab = json.loads((ref_dir / "tokenizer.json").read_text())["model"]["vocab"]
    i, j = vocab["apple"], vocab["banana"]
    emb = ref[EMB].copy()
    emb[[i, j]] = emb[[j, i]]
    sus[EMB] = emb
    sus[DTYPE] = ref[DTYPE].astype(np.float16)
    sus[ADDED] = np.ones(4, np.float32)
    del sus[REMOVED]
    out = tmp_path_factory.mktemp("minilm") / "suspect"
    out.mkdir()
    save_file(sus, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        (out / name).write_bytes((ref_dir / name).read_bytes())
    return out, ref_dir, ref, {"sus": sus, "rows": (min(i, j), max(i, j))}


def test_minilm_edits_reported_exactly(minilm_edit) -> None:
    sus_dir, ref_dir, ref, info = minilm_edit
    sus = info["sus"]
    result = diff_model(sus_dir, ref_dir, model_id="minilm")
    by_name = {t.name: t for t in result.tensors}
    assert len(by_name) == 105
    changed = {n: t.status for n, t in by_name.items() if t.status != "identical"}
    assert changed == {SINGLE: "modified", RANK1: "modified", EMB: "modified", DTYPE: "dtype_changed",
                       ADDED: "added", REMOVED: "removed"}  # fmt: skip
    assert sum(t.status == "identical" for t in result.tensors) == 99

    one = by_name[SINGLE]
    assert (one.changed_elements, one.changed_rows, one.changed_row_count) == (1, (7,), 1)
    assert one.changed_fraction == 1 / (384 * 384)
    assert one.max_abs_change == pytest.approx(abs(float(sus[SINGLE][7, 11]) - float(ref[SINGLE][7, 11])), rel=1e-12)
    assert one.relative_change == pytest.approx(rel(ref[SINGLE], sus[SINGLE]), rel=1e-9)
    assert one.top_singular_energy == pytest.approx(1.0, abs=1e-9)

    r1 = by_name[RANK1]
    diff = sus[RANK1].astype(np.float64) - ref[RANK1].astype(np.float64)
    assert r1.changed_elements == int(np.count_nonzero(sus[RANK1] != ref[RANK1]))
    assert r1.changed_fraction > 0.99 and r1.changed_row_count == 1536
    assert r1.max_abs_change == pytest.approx(float(np.abs(diff).max()), rel=1e-12)
    assert r1.relative_change == pytest.approx(rel(ref[RANK1], sus[RANK1]), rel=1e-9)
    assert r1.relative_change == pytest.approx(0.2, rel=1e-3)
    eig = np.linalg.eigvalsh(diff.T @ diff)  # squared singular values of the change
    assert r1.top_singular_energy == pytest.approx(eig[-1] / eig.sum(), abs=1e-9)
    assert r1.top_singular_energy > 0.9999

    emb = by_name[EMB]
    assert emb.changed_rows == info["rows"] and emb.changed_row_count == 2
    assert set(emb.changed_tokens) == {"apple", "banana"}
    assert emb.changed_elements == int(np.count_nonzero(sus[EMB] != ref[EMB]))
    assert emb.relative_change == pytest.approx(rel(ref[EMB], sus[EMB]), rel=1e-9)
    assert emb.top_singular_energy == pytest.approx(1.0, abs=1e-9)  # swapping two rows is a rank-1 change

    assert (by_name[DTYPE].reference_dtype, by_name[DTYPE].dtype) == ("F32", "F16")
    assert (by_name[ADDED].dtype, by_name[ADDED].shape) == ("F32", (4,))
    assert (by_name[REMOVED].reference_dtype, by_name[REMOVED].reference_shape) == ("F32", (384,))

    tensor_cats = sorted((f.category, f.severity.value, f.evidence["tensor"]) for f in result.findings
                         if f.category.startswith("tensor_"))  # fmt: skip
    assert tensor_cats == sorted([
        ("tensor_modified", "high", SINGLE), ("tensor_modified", "critical", RANK1), ("tensor_modified", "high", EMB),
        ("tensor_dtype_changed", "medium", DTYPE), ("tensor_added", "high", ADDED), ("tensor_removed", "high", REMOVED),
    ])  # fmt: skip
    rank1 = next(f for f in result.findings if f.evidence.get("tensor") == RANK1)
    assert "rank-1 edit" in rank1.title and rank1.atlas == ("AML.T0010.003", "AML.T0018.000")
    assert set(result.heat) == {SINGLE, RANK1, EMB}
    assert result.files.to_dict()["modified"] == ["model.safetensors"]


def test_minilm_identical_copy(minilm_copy, minilm_dir: Path) -> None:
    copy = minilm_copy("same")
    result = diff_model(copy, minilm_dir)
    assert len(result.tensors) == 104 and {t.status for t in result.tensors} == {"identical"}
    assert [f for f in result.findings if f.category.startswith("tensor_")] == []
    assert result.files.to_dict()["modified"] == []


def _write_raw(path: Path, dtype: str, shape: list[int], raw: bytes) -> None:
    header = json.dumps({"t": {"dtype": dtype, "shape": shape, "data_offsets": [0, len(raw)]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw)


def _pair(tmp_path: Path, dtype: str, shape: list[int], a: bytes, b: bytes) -> tuple:
    _write_raw(tmp_path / "ref.safetensors", dtype, shape, a)
    _write_raw(tmp_path / "sus.safetensors", dtype, shape, b)
    (r,), (s,) = read_header(tmp_path / "ref.safetensors").tensors, read_header(tmp_path / "sus.safetensors").tensors
    return (tmp_path / "sus.safetensors", s), (tmp_path / "ref.safetensors", r)


def bf16(values: list[float]) -> bytes:
    return (np.array(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def test_bf16_decoded(tmp_path: Path) -> None:
    sus, ref = _pair(tmp_path, "BF16", [2, 2], bf16([1.0, 2.5, -0.375, 4.0]), bf16([1.0, 2.5, 0.625, 4.0]))
    d, heat = diff_tensor(sus, ref, display_path="sus.safetensors")
    assert (d.status, d.changed_elements, d.changed_rows, d.max_abs_change) == ("modified", 1, (1,), 1.0)
    assert d.relative_change == pytest.approx(1.0 / np.sqrt(1 + 6.25 + 0.140625 + 16), rel=1e-12)
    assert heat is not None and heat.shape == (2, 2) and heat[1, 0] == 1.0 and heat.sum() == 1.0


def test_fp16_decoded_and_nan_counted(tmp_path: Path) -> None:
    a = np.array([0.5, -1.0, 2.0], np.float16)
    b = np.array([0.5, np.nan, 2.25], np.float16)
    sus, ref = _pair(tmp_path, "F16", [3], a.tobytes(), b.tobytes())
    d, _ = diff_tensor(sus, ref, display_path="sus.safetensors")
    assert (d.changed_elements, d.nonfinite, d.max_abs_change, d.changed_rows) == (2, 1, 0.25, (1, 2))
    assert d.top_singular_energy is None  # a vector has no meaningful spectrum
    assert d.to_dict()["max_abs_change"] == 0.25


def test_float8_compared_as_bytes(tmp_path: Path) -> None:
    sus, ref = _pair(tmp_path, "F8_E4M3", [2, 2], bytes([1, 2, 3, 4]), bytes([1, 2, 3, 9]))
    d, _ = diff_tensor(sus, ref, display_path="x")
    assert (d.status, d.changed_elements, d.max_abs_change, d.relative_change) == ("modified", 1, None, None)


@pytest.mark.parametrize("chunk", [7, 64, 1000, 1 << 20])
def test_chunking_does_not_change_results(tmp_path: Path, chunk: int) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(40, 30)).astype(np.float32)
    b = a + np.outer(rng.normal(size=40), rng.normal(size=30)).astype(np.float32) * 0.1
    b[5, :] = a[5, :]
    sus, ref = _pair(tmp_path, "F32", [40, 30], a.tobytes(), b.tobytes())
    d, heat = diff_tensor(sus, ref, display_path="x", chunk_elements=chunk)
    delta = b.astype(np.float64) - a.astype(np.float64)
    assert d.changed_row_count == 39 and 5 not in d.changed_rows
    assert d.relative_change == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(a.astype(np.float64)), rel=1e-9)
    assert d.top_singular_energy == pytest.approx(1.0, abs=1e-6)
    assert heat is not None and heat.shape == (40, 30)
    assert np.allclose(heat, np.abs(delta), rtol=1e-9)


def test_randomized_energy_matches_exact_on_dense_change(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(600, 500)).astype(np.float32)
    low = np.outer(rng.normal(size=600), rng.normal(size=500)) * 0.05 + rng.normal(size=(600, 500)) * 0.02
    b = (a + low).astype(np.float32)
    sus, ref = _pair(tmp_path, "F32", [600, 500], a.tobytes(), b.tobytes())
    d, _ = diff_tensor(sus, ref, display_path="x", chunk_elements=50_000)
    sigma = np.linalg.svd(b.astype(np.float64) - a.astype(np.float64), compute_uv=False)
    assert d.top_singular_energy == pytest.approx(sigma[0] ** 2 / np.sum(sigma**2), rel=1e-3)
    assert 0.5 < d.top_singular_energy < 0.99


def test_shape_change_and_findings(tmp_path: Path) -> None:
    _write_raw(tmp_path / "ref.safetensors", "F32", [2, 2], bytes(16))
    _write_raw(tmp_path / "sus.safetensors", "F32", [4, 1], bytes(16))
    (r,), (s,) = read_header(tmp_path / "ref.safetensors").tensors, read_header(tmp_path / "sus.safetensors").tensors
    d, heat = diff_tensor((tmp_path / "sus.safetensors", s), (tmp_path / "ref.safetensors", r), display_path="s")
    assert (d.status, heat) == ("shape_changed", None)
    (f,) = tensor_findings([d], model_id="m")
    assert (f.category, f.title) == ("tensor_shape_changed", "m: tensor t shape [2, 2] -> [4, 1]")


def test_is_embedding() -> None:
    vocab = {i: f"t{i}" for i in range(100)}
    assert is_embedding("model.embed_tokens.weight", (128, 16), vocab)
    assert not is_embedding("embeddings.position_embeddings.weight", (512, 16), vocab)
    assert not is_embedding("encoder.weight", (100, 16), vocab)
    assert not is_embedding("embed.weight", (100, 16), {})


def test_changed_rows_listed_up_to_cap_counted_exactly(tmp_path: Path) -> None:
    a = np.zeros(3000, np.float32)
    b = a.copy()
    b[::2] = 1.0
    sus, ref = _pair(tmp_path, "F32", [3000], a.tobytes(), b.tobytes())
    d, _ = diff_tensor(sus, ref, display_path="x", chunk_elements=256)
    assert d.changed_row_count == 1500 and len(d.changed_rows) == 1000
    assert d.changed_rows[:3] == (0, 2, 4) and d.changed_rows[-1] == 1998
