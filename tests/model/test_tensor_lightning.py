"""PyTorch Lightning ``.ckpt`` training checkpoints: model tensors under ``state_dict.`` matched with a safetensors
export's names, optimizer moments and other training state listed, never counted as model changes.

The checkpoints are written opcode by opcode as ``torch.save`` writes a Lightning checkpoint's top-level dict
(``checkpoint_writers.lightning``); the safetensors export by the safetensors library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.model import checkpoint_writers as cw
from tests.model.test_tensor_torch import ROW, check_edits, edited, reference_arrays
from workbench.model.checkpoints import read_checkpoints
from workbench.model.dirdiff import diff_model


def _ckpt(path: Path, arrays: dict[str, np.ndarray], seed: int, *, extra: dict | None = None) -> tuple[Path, list]:
    """A Lightning checkpoint of ``arrays`` with Adam moments drawn from ``seed``; returns it and the moment names."""
    model = cw.simple(arrays, parameter=True)
    rng = np.random.default_rng(seed)
    moments: dict[str, cw.Tensor] = {}
    for i, a in enumerate(arrays.values()):
        for slot in ("exp_avg", "exp_avg_sq"):
            key = str(len(model) + len(moments))
            moments[f"{i}.{slot}"] = cw.Tensor(key, rng.standard_normal(a.shape).astype(np.float32), a.shape)
    top = cw.lightning(model, moments)
    top.update(extra or {})
    every = {**model, **{f"m{k}": t for k, t in moments.items()}}
    for i, value in enumerate((extra or {}).values()):  # the storages of extra tensors
        every.update({f"x{i}.{k}": t for k, t in value.items.items()})
    names = sorted(f"optimizer_states.0.state.{k}" for k in moments)
    return cw.write_torch_zip(path, every, top=top), names


def test_lightning_checkpoint_against_a_safetensors_export(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    suspect, moments = _ckpt(tmp_path / "last.ckpt", sus, 1)
    export = tmp_path / "model.safetensors"
    save_file(ref, str(export))
    result = diff_model(suspect, export, model_id="m")
    check_edits(result, ref, sus)  # exact tensors, rows, rank-1 energy, findings: only the model's
    assert not any(t.name.startswith(("optimizer_states", "state_dict")) for t in result.tensors)
    assert result.unexamined == []
    (note,) = [n for n in result.limits if "training checkpoint" in n]
    assert note.startswith("last.ckpt: a training checkpoint: model tensors under 'state_dict.' compared without")
    assert f"{len(moments)} training-state tensor(s) (optimizer_states: {len(moments)}) listed, not compared" in note
    assert ", ".join(moments[:8]) + f" and {len(moments) - 8} more" in note


def test_optimizer_changes_are_not_model_changes(tmp_path: Path) -> None:
    ref = reference_arrays()
    a, _ = _ckpt(tmp_path / "epoch3.ckpt", ref, 1)
    b, _ = _ckpt(tmp_path / "epoch4.ckpt", ref, 2)  # same weights, other moments
    result = diff_model(b, a, model_id="m")
    assert result.files.paths("modified") == ["epoch4.ckpt"]
    assert {t.name: t.status for t in result.tensors} == dict.fromkeys(sorted(ref), "identical")
    assert not [f for f in result.findings if f.category.startswith("tensor_")]
    assert len([n for n in result.limits if "training-state tensor(s)" in n]) == 2  # both sides listed


def test_edited_weights_between_two_lightning_checkpoints(tmp_path: Path) -> None:
    ref = reference_arrays()
    sus = edited(ref)
    result = diff_model(_ckpt(tmp_path / "s.ckpt", sus, 1)[0], _ckpt(tmp_path / "r.ckpt", ref, 1)[0], model_id="m")
    check_edits(result, ref, sus)


def test_unknown_top_level_tensors_are_not_hidden_as_training_state(tmp_path: Path) -> None:
    ref = reference_arrays()
    extra = {"ema_weights": cw.Ordered({ROW: cw.Tensor("99", ref[ROW].copy(), ref[ROW].shape)})}
    path, _ = _ckpt(tmp_path / "ema.ckpt", ref, 1, extra=extra)
    (ckpt,) = read_checkpoints(path, [("", "")], "")
    assert ckpt.training == {} and f"ema_weights.{ROW}" in ckpt.tensors and f"state_dict.{ROW}" in ckpt.tensors
    assert any(n.startswith("optimizer_states.0.state.0.") for n in ckpt.tensors)  # compared, not set aside


def test_plain_state_dict_keeps_its_names(tmp_path: Path) -> None:
    ref = reference_arrays()
    path = cw.write_torch_zip(tmp_path / "model.pt", cw.simple({f"model.{k}": v for k, v in ref.items()}))
    (ckpt,) = read_checkpoints(path, [("", "")], "")
    assert ckpt.training == {} and sorted(ckpt.tensors) == sorted(f"model.{k}" for k in ref)
    assert not ckpt.limits
