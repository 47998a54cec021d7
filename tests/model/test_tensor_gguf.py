"""Tensor diff of GGUF files written by the tests' own minimal writer (the ``gguf`` package is not a dependency).

Q8_0 blocks are dequantised for statistics (expected values from an independent numpy dequantisation), F32 tensors
get the full treatment (rank-1 detection), Q4_K blocks are compared by bytes (block-level change counts).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.model import checkpoint_writers as cw
from workbench.model.checkpoints import read_file, sniff_checkpoint
from workbench.model.dirdiff import diff_model
from workbench.model.gguf_meta import read_gguf_layout

Q8 = "blk.0.attn_q.weight"
F32 = "blk.0.ffn_up.weight"
QK = "blk.0.ffn_down.weight"
NORM = "output_norm.weight"
ADDED = "blk.0.trigger"


def dequant_q8_0(blocks: np.ndarray) -> np.ndarray:
    d = blocks[..., :2].copy().view(np.float16).astype(np.float64)
    return (blocks[..., 2:].copy().view(np.int8).astype(np.float64) * d).reshape(blocks.shape[0], -1)


def arrays(edit: bool) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    rng = np.random.default_rng(11)
    q = rng.standard_normal((16, 64)).astype(np.float32)
    f = rng.standard_normal((24, 32)).astype(np.float32)
    k = rng.integers(0, 256, size=(4, 1, 144), dtype=np.uint8)
    norm = rng.standard_normal(32).astype(np.float32)
    if edit:
        q[3, :32] += 0.75  # row 3, first block only
        u, v = rng.standard_normal(24), rng.standard_normal(32)
        f = (f + 0.3 * np.linalg.norm(f) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))).astype(np.float32)
        k = k.copy()
        k[2, 0, 40] ^= 0xFF  # one byte of row 2's only block
    out = {Q8: ("Q8_0", (16, 64), cw.quantize_q8_0(q).tobytes()), F32: ("F32", (24, 32), f.tobytes()),
           QK: ("Q4_K", (4, 256), k.tobytes()), NORM: ("F32", (32,), norm.tobytes())}  # fmt: skip
    if edit:
        out[ADDED] = ("F32", (4,), np.ones(4, np.float32).tobytes())
    return out


def test_layout_read_exactly(tmp_path: Path) -> None:
    path = cw.write_gguf(tmp_path / "m.gguf", arrays(False), alignment=64, metadata={"general.name": "tiny"})
    with path.open("rb") as fh:
        layout = read_gguf_layout(fh, path.stat().st_size)
    assert (layout.version, layout.alignment, layout.data_start % 64) == (3, 64, 0)
    assert [(t.name, t.dims, t.ggml_type) for t in layout.tensors] == [
        (Q8, (64, 16), 8), (F32, (32, 24), 0), (QK, (256, 4), 12), (NORM, (32,), 0)]  # fmt: skip
    ft = read_file(path, "m.gguf", sniff_checkpoint(path) or "")
    assert [(t.name, t.dtype, t.shape, t.nbytes) for t in ft.tensors] == [
        (Q8, "Q8_0", (16, 64), 16 * 2 * 34), (F32, "F32", (24, 32), 24 * 32 * 4), (QK, "Q4_K", (4, 256), 4 * 144),
        (NORM, "F32", (32,), 128)]  # fmt: skip
    assert ft.unexamined == []


def test_gguf_edits_found(tmp_path: Path) -> None:
    ref_t, sus_t = arrays(False), arrays(True)
    r = cw.write_gguf(tmp_path / "ref.gguf", ref_t)
    s = cw.write_gguf(tmp_path / "sus.gguf", sus_t)
    result = diff_model(s, r, model_id="llm")
    by = {t.name: t for t in result.tensors}
    assert {n: t.status for n, t in by.items()} == {Q8: "modified", F32: "modified", QK: "modified",
                                                   NORM: "identical", ADDED: "added"}  # fmt: skip
    q8 = by[Q8]
    a = dequant_q8_0(np.frombuffer(ref_t[Q8][2], np.uint8).reshape(16, 2, 34))
    b = dequant_q8_0(np.frombuffer(sus_t[Q8][2], np.uint8).reshape(16, 2, 34))
    assert (q8.changed_rows, q8.changed_elements) == ((3,), int(np.count_nonzero(a != b)))
    assert q8.changed_elements > 16 and np.flatnonzero((a != b).any(axis=1)).tolist() == [3]
    assert q8.max_abs_change == pytest.approx(float(np.abs(b - a).max()), rel=1e-12)
    assert q8.relative_change == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-9)
    f = by[F32]
    assert (f.changed_row_count, f.top_singular_energy) == (24, pytest.approx(1.0, abs=1e-6))
    qk = by[QK]
    assert (qk.changed_rows, qk.changed_elements, qk.max_abs_change, qk.top_singular_energy) == ((2,), 256, None, None)
    severities = {f.evidence["tensor"]: f.severity.value for f in result.findings if f.category.startswith("tensor_")}
    assert severities == {Q8: "high", F32: "critical", QK: "high", ADDED: "high"}


def test_split_gguf_matched_across_different_splits(tmp_path: Path) -> None:
    ref_t, sus_t = arrays(False), arrays(True)
    (tmp_path / "ref").mkdir()
    (tmp_path / "sus").mkdir()
    cw.write_gguf(tmp_path / "ref" / "llm.gguf", ref_t)
    names = list(sus_t)
    for i, part in enumerate((names[:2], names[2:]), 1):
        cw.write_gguf(tmp_path / "sus" / f"llm-{i:05d}-of-00002.gguf", {n: sus_t[n] for n in part})
    by = {t.name: t for t in diff_model(tmp_path / "sus", tmp_path / "ref").tensors}
    assert {n: t.status for n, t in by.items()} == {Q8: "modified", F32: "modified", QK: "modified",
                                                   NORM: "identical", ADDED: "added"}  # fmt: skip
    assert (by[Q8].path, by[QK].path) == ("llm-00001-of-00002.gguf", "llm-00002-of-00002.gguf")


def test_benign_twin_and_other_alignment(tmp_path: Path) -> None:
    r = cw.write_gguf(tmp_path / "ref.gguf", arrays(False))
    s = cw.write_gguf(tmp_path / "twin.gguf", arrays(False), alignment=128)
    result = diff_model(s, r)
    assert [t.status for t in result.tensors] == ["identical"] * 4
    assert result.findings == [] and result.unexamined == []


def test_unknown_type_and_truncated_data_unexamined(tmp_path: Path) -> None:
    r = cw.write_gguf(tmp_path / "ref.gguf", arrays(False))
    raw = bytearray(r.read_bytes())
    at = raw.index(QK.encode()) + len(QK) + 4 + 16  # the type of QK's info
    struct.pack_into("<I", raw, at, 99)
    s = tmp_path / "sus.gguf"
    s.write_bytes(bytes(raw[:-64]))  # and NORM's last bytes cut off
    result = diff_model(s, r)
    assert sorted(result.unexamined) == [
        f"sus.gguf: tensor {QK} not compared: GGML type 99 unknown",
        f"sus.gguf: tensor {NORM} not compared: its 128 bytes at offset {len(raw) - 128} run past the end of the file",
    ]
    assert {t.name: t.status for t in result.tensors} == {Q8: "identical", F32: "identical"}


BENIGN_GGUF = Path(__file__).resolve().parents[1] / "data" / "benign" / "gguf" / "tiny_llama_q8_0.gguf"


@pytest.mark.skipif(not BENIGN_GGUF.is_file(), reason="benign set not present")
def test_file_written_by_the_gguf_package(tmp_path: Path) -> None:
    """A file written by gguf.GGUFWriter: its five tensors located; a flipped scale byte in row 9 is found."""
    ft = read_file(BENIGN_GGUF, "tiny.gguf", "gguf")
    assert [(t.name, t.dtype, t.shape) for t in ft.tensors] == [
        ("token_embd.weight", "F32", (8, 32)), ("blk.0.attn_norm.weight", "F32", (32,)),
        ("blk.0.attn_q.weight", "F16", (32, 32)), ("blk.0.ffn_up.weight", "Q8_0", (64, 32)),
        ("output.weight", "F32", (8, 32))]  # fmt: skip
    q8 = ft.tensors[3]
    raw = bytearray(BENIGN_GGUF.read_bytes())
    raw[q8.offset + 9 * 34 + 1] ^= 0x40  # the f16 scale of row 9's only block
    edited = tmp_path / "tiny.gguf"
    edited.write_bytes(bytes(raw))
    by = {t.name: t for t in diff_model(edited, BENIGN_GGUF).tensors}
    assert [n for n, t in by.items() if t.status != "identical"] == ["blk.0.ffn_up.weight"]
    assert by["blk.0.ffn_up.weight"].changed_rows == (9,)
