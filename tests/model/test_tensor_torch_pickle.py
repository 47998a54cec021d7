"""The static walk of a PyTorch ``data.pkl`` on hostile and unusual pickles: nothing runs, nothing crashes, what
cannot be followed is said (``unexamined`` or a warning)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.model import checkpoint_writers as cw
from workbench.model.checkpoints import read_file
from workbench.model.torch_names import name_tensors
from workbench.model.torch_pickle import WalkError, walk


def zip_with(path: Path, pickle: bytes, storages: dict[str, np.ndarray]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle)
        for key, arr in storages.items():
            zf.writestr(f"archive/data/{key}", arr.tobytes())
    return path


def tensor_ops(p: cw.Ops, key: str, n: int) -> None:
    p.glob("torch._utils", "_rebuild_tensor_v2").op(b"(")
    p.op(b"(").str("storage").glob("torch", "FloatStorage").str(key).str("cpu").int(n).op(b"tQ")
    p.int(0).ints((n,)).ints((1,)).op(b"\x89").ordered_dict().op(b"tR")


def test_repeated_key_last_wins_with_a_warning(tmp_path: Path) -> None:
    p = cw.Ops().ordered_dict().op(b"(")
    p.str("w")
    tensor_ops(p, "0", 4)
    p.str("w")
    tensor_ops(p, "1", 4)
    path = zip_with(tmp_path / "m.pt", p.op(b"u").done(), {"0": np.zeros(4, np.float32), "1": np.ones(4, np.float32)})
    ft = read_file(path, "m.pt", "pytorch-zip")
    assert [(t.name, t.member) for t in ft.tensors] == [("w", "archive/data/1")]
    assert [w.reason for w in ft.warnings] == ["1 dict key(s) appear more than once (the last value wins in a load)"]


def test_dangerous_globals_are_only_named_and_their_tensors_still_found(tmp_path: Path) -> None:
    """An os.system REDUCE is a description on the walk's stack (the scanner reports it); the tensor held by an
    unknown object's arguments is named by argument position."""
    p = cw.Ops().op(b"}(").str("payload").glob("os", "system").op(b"(").str("echo hi").op(b"tR")
    p.str("wrapped").glob("evil", "Box").op(b"(")
    tensor_ops(p, "0", 3)
    p.op(b"tR").op(b"u")
    path = zip_with(tmp_path / "m.pt", p.done(), {"0": np.arange(3, dtype=np.float32)})
    ft = read_file(path, "m.pt", "pytorch-zip")
    assert [(t.name, t.shape) for t in ft.tensors] == [("wrapped.<arg 0>", (3,))] and ft.unexamined == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x80\x02}q\x00\x82\x01.", "at offset 5: opcode EXT1 is not written by PyTorch; not followed"),
        (b"\x80\x02}q\x00(X\x01\x00\x00\x00a", "pickle exhausted before seeing STOP"),
        (b"\x80\x02h\x05.", "at offset 2: memo entry 5 read before it is stored"),
    ],
)
def test_pickles_that_cannot_be_followed_are_unexamined(tmp_path: Path, raw: bytes, reason: str) -> None:
    ft = read_file(zip_with(tmp_path / "m.pt", raw, {}), "m.pt", "pytorch-zip")
    assert ft.tensors == [] and ft.unexamined == [f"m.pt: checkpoint not compared: {reason}"]


def test_cycles_and_unsupported_rebuilds(tmp_path: Path) -> None:
    p = cw.Ops().op(b"}(").str("loop").op(b"]q\x01h\x01a")  # a list appended to itself
    p.str("q").glob("torch._utils", "_rebuild_qtensor").op(b")R").op(b"u")
    ft = read_file(zip_with(tmp_path / "m.pt", p.done(), {}), "m.pt", "pytorch-zip")
    assert ft.unexamined == ["m.pt: tensor q not compared: rebuilt by torch._utils._rebuild_qtensor"]
    assert [w.reason for w in ft.warnings] == [
        "loop.0: nested deeper than 64 levels or cyclic; not named",
        "tensor q not compared: rebuilt by torch._utils._rebuild_qtensor",
    ]


def test_walk_keeps_to_its_byte_budget() -> None:
    raw = cw.Ops().str("x" * 5000).done()
    with pytest.raises(WalkError, match="byte analysis budget"):
        walk(io.BytesIO(raw), limit=1000)
    named = name_tensors(walk(io.BytesIO(raw)).result)
    assert (named.tensors, named.problems) == ([], [])


def test_opcode_cap_leaves_the_checkpoint_unexamined(tmp_path: Path, monkeypatch) -> None:
    from workbench.model import torch_pickle

    path = cw.write_torch_zip(tmp_path / "m.pt", cw.simple({"w": np.zeros(3, np.float32)}))
    assert len(read_file(path, "m.pt", "pytorch-zip").tensors) == 1
    monkeypatch.setattr(torch_pickle, "MAX_OPCODES", 10)
    ft = read_file(path, "m.pt", "pytorch-zip")
    assert ft.tensors == [] and ft.unexamined == ["m.pt: checkpoint not compared: more than 10 opcodes"]
