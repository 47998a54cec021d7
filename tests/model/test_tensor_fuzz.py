"""Mutated PyTorch (zip, legacy, tar) and GGUF checkpoints through the readers and the diff: nothing raises.

Deterministic (seeded) byte flips, cuts and insertions of small valid files; every outcome must be a diff, with
what could not be read in ``unexamined`` or the warnings.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tests.model import checkpoint_writers as cw
from tests.model.test_tensor_torch import reference_arrays
from workbench.model.checkpoints import read_file
from workbench.model.dirdiff import diff_model
from workbench.model.tensors import STATUSES

MUTANTS = 40


def seed_file(tmp_path: Path, kind: str) -> Path:
    tensors = cw.simple(reference_arrays())
    if kind == "gguf":
        q = cw.quantize_q8_0(np.linspace(-1, 1, 256, dtype=np.float32).reshape(4, 64))
        f = np.ones(9, np.float32)
        return cw.write_gguf(
            tmp_path / "seed.gguf", {"q": ("Q8_0", (4, 64), q.tobytes()), "f": ("F32", (3, 3), f.tobytes())}
        )
    writer = {"zip": cw.write_torch_zip, "legacy": cw.write_torch_legacy, "tar": cw.write_torch_tar}[kind]
    return writer(tmp_path / "seed.pt", tensors)


def mutate(raw: bytes, rng: random.Random) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        pos, op = rng.randrange(len(b)), rng.random()
        if op < 0.6:
            b[pos] = rng.randrange(256)
        elif op < 0.8:
            del b[pos : pos + rng.randint(1, 64)]
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


@pytest.mark.parametrize("kind", ["zip", "legacy", "tar", "gguf"])
def test_mutated_checkpoints_never_raise(tmp_path: Path, kind: str) -> None:
    seed = seed_file(tmp_path, kind)
    fmt = "gguf" if kind == "gguf" else f"pytorch-{kind}"
    rng = random.Random(kind)  # noqa: S311 - reproducible mutations, not secrets
    raw = seed.read_bytes()
    for i in range(MUTANTS):
        path = tmp_path / f"m{i}"
        path.write_bytes(mutate(raw, rng))
        found = read_file(path, path.name, fmt)
        assert all(t.offset + t.nbytes <= path.stat().st_size or t.path != path for t in found.tensors)
        result = diff_model(path, seed)
        assert {t.status for t in result.tensors} <= set(STATUSES)
