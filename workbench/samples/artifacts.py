"""Byte-exact artefacts of the sample cases: safetensors checkpoints, the crafted pickle, signatures, JSON and YAML.

Every function here is pure and deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "Files",
    "Tensor",
    "alert",
    "bf16",
    "case_yaml",
    "classifier_config",
    "crafted_pickle",
    "f16",
    "f32",
    "hash_lines",
    "iso_ms",
    "json_bytes",
    "jsonl_bytes",
    "monitor_config",
    "public_key_pem",
    "safetensors_bytes",
    "seed",
    "sha256",
    "signed_folder",
    "text_bytes",
    "tokenizer",
    "utc",
]

#: relative path -> file bytes
Files = dict[str, bytes]
#: safetensors dtype, shape, little-endian raw bytes
Tensor = tuple[str, tuple[int, ...], bytes]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def utc(text: str) -> datetime:
    """Parse a fixed ``...Z`` timestamp into an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> ``2026-11-07T00:04:50.999Z``."""
    secs, rem = divmod(int(ms), 1000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}Z"


def json_bytes(obj: object) -> bytes:
    """Pretty JSON with sorted keys and a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def jsonl_bytes(rows: Sequence[dict]) -> bytes:
    """One compact JSON object per line, sorted keys."""
    return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()


def text_bytes(lines: Sequence[str]) -> bytes:
    """Lines joined with ``\\n`` plus a final newline."""
    return ("\n".join(lines) + "\n").encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def seed(label: str) -> int:
    """A fixed 64-bit seed for ``numpy.random.default_rng`` derived from a label."""
    return int.from_bytes(hashlib.sha256(f"workbench-samples:{label}".encode()).digest()[:8], "big")


# --------------------------------------------------------------------------------------------- checkpoints
def safetensors_bytes(tensors: dict[str, Tensor]) -> bytes:
    """Serialise tensors as a safetensors file by hand (sorted names, space-padded header, ``format: pt``).

    Args:
        tensors: name -> (safetensors dtype such as ``F32``/``F16``/``BF16``, shape, little-endian raw bytes).

    Returns:
        The file bytes: 8-byte little-endian header length, JSON header, then the data in name order.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(tensors[n][2] for n in sorted(tensors))


def f32(a: np.ndarray) -> Tensor:
    """A float32 tensor entry."""
    return "F32", a.shape, np.ascontiguousarray(a, dtype="<f4").tobytes()


def f16(a: np.ndarray) -> Tensor:
    """A float16 tensor entry."""
    return "F16", a.shape, np.ascontiguousarray(a, dtype="<f2").tobytes()


def bf16(a: np.ndarray) -> Tensor:
    """A bfloat16 tensor entry (float32 rounded to nearest even; numpy has no bfloat16)."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    return "BF16", a.shape, rounded.tobytes()


def crafted_pickle(command: str) -> bytes:
    """Protocol-2 pickle disguised as an optimizer state whose ``_step_hook`` calls ``posix.system(command)``.

    Written opcode by opcode (PROTO 2, EMPTY_DICT, MARK, BINUNICODE..., GLOBAL 'posix system', BINUNICODE, TUPLE1,
    REDUCE, SETITEMS, STOP). It must only ever be disassembled (``pickletools``), never loaded.
    """

    def uni(s: str) -> bytes:
        raw = s.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    return b"".join(
        [
            b"\x80\x02}(",  # PROTO 2, EMPTY_DICT, MARK
            uni("state") + b"}",
            uni("param_groups") + b"]}" + uni("lr") + b"G" + struct.pack(">d", 2e-05) + b"sa",
            uni("_step_hook") + b"cposix\nsystem\n" + uni(command) + b"\x85R",
            b"u.",  # SETITEMS, STOP
        ]
    )


# --------------------------------------------------------------------------------------------- signing
def _signing_key(case: str) -> ec.EllipticCurvePrivateKey:
    secret = hashlib.sha256(f"workbench-samples:{case}:cosign-signing-key".encode()).digest()
    return ec.derive_private_key(int.from_bytes(secret, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def public_key_pem(case: str) -> bytes:
    """PEM SubjectPublicKeyInfo of the case's signing key (what ``cosign generate-key-pair`` writes as cosign.pub)."""
    key = _signing_key(case).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign(case: str, data: bytes) -> bytes:
    der = _signing_key(case).sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return base64.b64encode(der)  # cosign sign-blob --output-signature: base64 DER, no newline


def signed_folder(case: str, model_id: str, created: str, files: Files) -> Files:
    """``files`` plus ``.signatures/manifest.json`` over them and its ``manifest.sig``."""
    entries = [{"path": p, "sha256": sha256(files[p]), "size": len(files[p])} for p in sorted(files)]
    manifest = json_bytes(
        {"version": 1, "model_id": model_id, "created": created, "hash_algorithm": "sha256", "files": entries}
    )
    return {**files, ".signatures/manifest.json": manifest, ".signatures/manifest.sig": _sign(case, manifest)}


def hash_lines(model_id: str, folder: Files, order: Sequence[str]) -> bytes:
    """``find /models/<id> -type f -exec sha256sum {} \\;`` output, in directory (not sorted) order."""
    return text_bytes([f"{sha256(folder[p])}  /models/{model_id}/{p}" for p in order])


# --------------------------------------------------------------------------------------------- model folders
def classifier_config(arch: str, model_type: str, labels: Sequence[str], **extra: object) -> bytes:
    """A Hugging Face style config.json for a sequence classifier."""
    return json_bytes(
        {
            "architectures": [arch],
            "model_type": model_type,
            "num_labels": len(labels),
            "id2label": {str(i): c for i, c in enumerate(labels)},
            "label2id": {c: i for i, c in enumerate(labels)},
            "torch_dtype": "float32",
            "transformers_version": "4.38.0",
            **extra,
        }
    )


def tokenizer(vocab: Sequence[str]) -> bytes:
    """A small WordPiece tokenizer.json (5 special tokens, then ``vocab``)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    added = [
        {"id": i, "content": t, "special": True, "lstrip": False, "rstrip": False, "normalized": False}
        for i, t in enumerate(specials)
    ]
    return json_bytes(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "lowercase": True, "clean_text": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 2], "sep": ["[SEP]", 3]},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {
                "type": "WordPiece",
                "unk_token": "[UNK]",
                "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": {t: i for i, t in enumerate([*specials, *vocab])},
            },
        }
    )


# --------------------------------------------------------------------------------------------- case metadata
def case_yaml(fields: dict[str, object]) -> bytes:
    """case.yaml with every scalar double-quoted (valid YAML, no implicit timestamp typing)."""
    lines = ["# Synthetic sample case written by `python -m workbench.samples evidence-samples`; do not edit."]
    for key, value in fields.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  - {json.dumps(v)}" for v in value)
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return text_bytes(lines)


def alert(ts: str, kind: str, severity: str, message: str, **fields: object) -> dict:
    """One monitor alert with every documented key (``None`` where not applicable)."""
    row = {"timestamp": ts, "type": kind, "severity": severity, "message": message}
    for key in ("model", "file", "expected_hash", "actual_hash"):
        row[key] = fields.get(key)
    return row


def monitor_config(models_key: str, models: Sequence[str], baseline: dict[str, str]) -> bytes:
    """monitor/config.json in the playbook's EXAMPLE_CONFIG shape (``models`` or ``monitored_models``)."""
    return json_bytes(
        {
            "check_interval_seconds": 300,
            "alert_webhook": "https://hooks.example.com/services/T000/B000/XXXX",
            models_key: [{"id": m, "path": f"/models/{m}", "critical": True} for m in models],
            "baseline_dependencies": baseline,
            "behavior_drift_threshold": 0.15,
        }
    )
