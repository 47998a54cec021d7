"""Tensor diff on checkpoints written by real torch 2.13 (the benign set, ``tests/data/benign/torch``).

The files hold one tiny ResNet saved in several ways (state dict in the zip and the legacy formats, float16 and
bfloat16 copies, TorchScript, safetensors); the values of the copies differ slightly from one save to another, so
the assertions are on names, statuses and on edits made here in a copy.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workbench.model.checkpoints import read_file
from workbench.model.dirdiff import diff_model

TORCH = Path(__file__).resolve().parents[1] / "data" / "benign" / "torch"
pytestmark = pytest.mark.skipif(not (TORCH / "resnet_tiny_state_dict.pth").is_file(), reason="benign set not present")


def statuses(result) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in result.tensors:
        out[t.status] = out.get(t.status, 0) + 1
    return out


def test_legacy_and_zip_saves_of_one_state_dict_are_identical() -> None:
    result = diff_model(TORCH / "resnet_tiny_state_dict_legacy.pth", TORCH / "resnet_tiny_state_dict.pth")
    assert statuses(result) == {"identical": 74} and result.unexamined == [] and result.warnings == []


@pytest.mark.parametrize("other", ["resnet_tiny.safetensors", "resnet_tiny_scripted.pt", "resnet_tiny_traced.pt",
                                   "resnet_tiny_lite.ptl"])  # fmt: skip
def test_every_format_names_the_same_tensors(other: str) -> None:
    result = diff_model(TORCH / other, TORCH / "resnet_tiny_state_dict.pth")
    assert not {"added", "removed", "shape_changed", "dtype_changed"} & set(statuses(result))
    assert len(result.tensors) == 74 and result.unexamined == []


def test_half_precision_copies_are_dtype_changes() -> None:
    result = diff_model(TORCH / "resnet_tiny_fp16.pth", TORCH / "resnet_tiny_state_dict.pth")
    assert statuses(result) == {"dtype_changed": 62, "identical": 12}  # the int64 num_batches_tracked stay
    assert {t.dtype for t in result.tensors if t.status == "dtype_changed"} == {"F16"}


def test_a_row_edited_in_place_in_a_real_checkpoint(tmp_path: Path) -> None:
    copy = tmp_path / "resnet.pth"
    shutil.copyfile(TORCH / "resnet_tiny_state_dict.pth", copy)
    src = {t.name: t for t in read_file(copy, "resnet.pth", "pytorch-zip").tensors}["conv1.weight"]
    assert (src.dtype, src.shape) == ("F32", (4, 3, 7, 7))
    with copy.open("r+b") as fh:  # output channel 2, every input weight scaled
        fh.seek(src.offset + 2 * 147 * 4)
        row = np.frombuffer(fh.read(147 * 4), np.float32) * np.float32(1.5)
        fh.seek(src.offset + 2 * 147 * 4)
        fh.write(row.tobytes())
    result = diff_model(copy, TORCH / "resnet_tiny_state_dict.pth")
    (changed,) = [t for t in result.tensors if t.status != "identical"]
    assert (changed.name, changed.changed_rows, changed.changed_elements) == ("conv1.weight", (2,), 147)


def test_real_training_checkpoint_against_the_safetensors_export() -> None:
    result = diff_model(TORCH / "training_checkpoint.pt", TORCH / "resnet_tiny.safetensors")
    assert len(result.tensors) == 74 and not {"added", "removed"} & set(statuses(result))
    assert not any(t.name.startswith(("model_state_dict.", "optimizer_state_dict.")) for t in result.tensors)
    (note,) = [n for n in result.limits if "training checkpoint" in n]
    assert "39 training-state tensor(s) (optimizer_state_dict: 38, torch_rng_state: 1) listed" in note


@pytest.mark.parametrize(("name", "label"), [("resnet_tiny.onnx", "ONNX"),
                                             ("resnet_tiny_exported.pt2", "torch.export (.pt2)")])  # fmt: skip
def test_real_digest_only_weights_fail_closed(tmp_path: Path, name: str, label: str) -> None:
    ref, sus = tmp_path / "ref" / name, tmp_path / "sus" / name
    for copy in (ref, sus):
        copy.parent.mkdir()
        shutil.copyfile(TORCH / name, copy)
    same = diff_model(sus, ref)
    assert same.unexamined == [] and same.limits == [f"{name}: compared by digest only: no tensor-level diff for "
                                                     f"{label} (identical SHA-256)"]  # fmt: skip
    with sus.open("r+b") as fh:  # one byte of the weights near the end flipped
        fh.seek(-64, 2)
        byte = fh.read(1)
        fh.seek(-64, 2)
        fh.write(bytes([byte[0] ^ 1]))
    assert diff_model(sus, ref).unexamined == [
        f"{name}: compared by digest only: no tensor-level diff for {label} "
        "(the file differs from the reference; the change was not localised)"
    ]


def _rezip(dest: Path, source: Path, edit: str | None = None) -> Path:
    """A copy of a real archive member by member (new zip dates); ``edit``: that member gets a line appended."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info.filename, data + b"\n# changed\n" if info.filename.endswith(f"/{edit}") else data)
    return dest


def test_edited_torchscript_code_is_unexamined(tmp_path: Path) -> None:
    scripted = TORCH / "resnet_tiny_scripted.pt"
    result = diff_model(_rezip(tmp_path / "sus.pt", scripted, edit="code/__torch__.py"), scripted)
    assert statuses(result) == {"identical": 74}  # the tensors say nothing
    assert result.unexamined == ["sus.pt: member(s) code/__torch__.py differ from the reference's: compared by "
                                 "digest only: no tensor-level diff for TorchScript code"]  # fmt: skip
    twin = diff_model(_rezip(tmp_path / "twin.pt", scripted), scripted)
    assert twin.files.paths("modified") == ["twin.pt"] and twin.unexamined == [] and twin.limits == []
