"""Adapter between containment and the signature verification of :mod:`workbench.model.signatures`.

Containment needs one answer per archived model version: is it signed, does the signature verify under the
signing key, does every file match what was signed, and when was it signed (the version order used by rollback).
Only this module knows the verifier's API.

The signing time is the one the verifier established: a cosign manifest's ``created`` field read from the very bytes
whose signature was just verified, a verified transparency-log time, or a certificate's start (never a file's
mtime, which anyone with write access can set).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.timeparse import parse_timestamp

if TYPE_CHECKING:
    from workbench.model.trust import Trust

__all__ = ["VersionCheck", "verify_version"]


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


def verify_version(model_dir: Path, trust: Trust | Path | None) -> VersionCheck:
    """Verify ``model_dir``'s signature with ``trust`` (or a bare public key) and every file against it.

    The one verifier of :func:`workbench.model.signatures.verify_model_signature` is used: every scheme and
    placement it knows (cosign manifests and bundles, model_signing bundles by key, certificate or Sigstore).
    Only a ``verified`` outcome counts as verified; ``unverified``, ``unverifiable_offline`` and ``unsupported``
    are reported with their reason and never selected as a rollback target.

    Returns:
        A :class:`VersionCheck`; never raises for a bad signature or key (the reason says what is wrong).
    """
    from workbench.model.signatures import verify_model_signature

    if isinstance(trust, Path) and not trust.is_file():
        key_missing = f"public key {trust} not found"
        trust = None
    else:
        key_missing = ""
    result = verify_model_signature(model_dir, trust, model_id=model_dir.name)
    if result.scheme == "none":
        return VersionCheck(model_dir, False, False, "unsigned (no signature found)", None, "none")
    if not result.verified:
        reason = key_missing or result.reason or result.outcome
        return VersionCheck(model_dir, True, False, f"{result.outcome}: {reason}", None, result.scheme)
    created = parse_timestamp(result.signed_at) if result.signed_at else None
    return VersionCheck(model_dir, True, True, "", created, result.scheme)
