"""Adapter between containment and the signature verification of :mod:`workbench.model.signatures`.

Containment needs one answer per archived model version: is it signed, does the signature verify under the
signing key, does every file match what was signed, and when was it signed (the version order used by rollback).
Only this module knows the verifier's API.

The signing time is the manifest's ``created`` field, read from the very bytes whose signature was just verified
(never from a file's mtime, which anyone with write access can set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from workbench import safeio
from workbench.timeparse import parse_timestamp

__all__ = ["VersionCheck", "verify_version"]

MAX_MANIFEST = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """The signature status of one model folder.

    Attributes:
        path: the folder.
        signed: it carries a signature (manifest + signature, or a model-signing bundle).
        verified: the signature is valid under the key and every file matches it.
        reason: why it is not verified ("" when verified).
        created: signing time from the verified manifest (UTC), or None.
        scheme: ``cosign-manifest``, ``model-signing`` or ``none``.
    """

    path: Path
    signed: bool
    verified: bool
    reason: str
    created: datetime | None
    scheme: str


def verify_version(model_dir: Path, public_key: Path | None) -> VersionCheck:
    """Verify ``model_dir``'s signature with ``public_key`` and every file against it.

    Reads: ``.signatures/manifest.json`` + ``manifest.sig`` (cosign ``sign-blob`` format) or a model-signing bundle,
    the public key, and every regular file of the folder (streamed; symlinks never followed).

    Returns:
        A :class:`VersionCheck`; never raises for a bad signature or key (the reason says what is wrong).
    """
    from workbench.model.signatures import SignatureError, verify_cosign_blob, verify_model_signature

    key = public_key if public_key is not None and public_key.is_file() else None
    try:
        result = verify_model_signature(model_dir, key, model_id=model_dir.name)
    except ImportError as exc:  # a model-signing bundle without the optional library
        return VersionCheck(model_dir, True, False, f"cannot be verified here: {exc}", None, "model-signing")
    if public_key is not None and key is None and result.scheme != "none":
        reason = f"public key {public_key} not found"
    else:
        reason = result.reason or ("unsigned" if result.scheme == "none" else "")
    if result.scheme == "none":
        return VersionCheck(
            model_dir, False, False, "unsigned (no .signatures/manifest.json + manifest.sig)", None, "none"
        )
    if not result.verified:
        return VersionCheck(model_dir, True, False, reason or "signature not verified", None, result.scheme)
    created = None
    if result.scheme == "cosign-manifest" and key is not None:
        sig_dir = model_dir / ".signatures"
        try:
            blob = _read_nofollow(sig_dir / "manifest.json")
            verify_cosign_blob(blob, _read_nofollow(sig_dir / "manifest.sig"), key.read_bytes())
            doc = json.loads(blob)
            created = parse_timestamp(doc.get("created")) if isinstance(doc, dict) else None
        except (OSError, ValueError, SignatureError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            return VersionCheck(
                model_dir, True, False, f"manifest changed while verified: {reason}", None, result.scheme
            )
    return VersionCheck(model_dir, True, True, "", created, result.scheme)


def _read_nofollow(path: Path) -> bytes:
    with safeio.open_evidence(path) as fh:
        data = fh.read(MAX_MANIFEST + 1)
    if len(data) > MAX_MANIFEST:
        raise ValueError(f"{path.name} is larger than {MAX_MANIFEST} bytes")
    return data
