"""What a checked signature vouches for and who vouches: the record every signature scheme's checker returns.

:class:`Signed` is filled by :mod:`workbench.model.ms_bundle` (OpenSSF model signing bundles) and
:mod:`workbench.model.cosign_bundle` (cosign signatures and bundles over a manifest); :mod:`workbench.model.signatures`
turns it, with the folder's comparison against the signed digests, into one outcome.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.model.cosign_blob import SignatureError

__all__ = ["UNTRUSTED_OUTCOMES", "Signed", "bundle_b64"]

#: what an envelope that checks out under an unverified signer is reported as
UNTRUSTED_OUTCOMES = ("unverified", "unverifiable_offline")


def bundle_b64(value: Any, what: str) -> bytes:
    """A base64 field of a signature bundle, decoded strictly.

    Raises:
        SignatureError: the field is not base64 (the message names it).
    """
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"the bundle's {what} is not base64") from None


@dataclass(slots=True)
class Signed:
    """A signature whose bytes were checked; whether its signer is trusted is ``trusted``.

    Attributes:
        method: how it was made, in words (``model_signing key (ECDSA P-256)``, ``cosign sign-blob, base64``...).
        trusted: the signer was verified against the trust material given (key, CA bundle, trusted root).
        checked: the signature's bytes were checked (under the trusted signer or the certificate it carries);
            False when nothing could check them (no key for a key-signed signature).
        untrusted: when not trusted, the outcome it gets (one of :data:`UNTRUSTED_OUTCOMES`) and ``reason`` why.
        signer: the key (as shown), or the identity the certificate names.
        issuer: the certificate's issuer (OIDC issuer for Sigstore, the CA's name for certificates), or None.
        signed_at / signed_at_source: the signing time and where it comes from (the signed manifest's ``created``
            field, ``transparency log, verified``, ``transparency log, not verified offline``, the certificate's
            start).
        tlog: ``present`` / ``absent`` for schemes that can carry a transparency-log entry, else None.
        digests: ``{identifier: hex digest}`` the signature covers (per file, or ``path:start:end`` per shard).
        serialization: model_signing's hashing configuration (method, hash type, shard size, ignored paths), or
            None for a cosign manifest (SHA-256 per file).
        notes: what a reviewer should know that does not change the outcome (an expired certificate...).
    """

    method: str
    trusted: bool
    checked: bool = True
    untrusted: str = "unverified"
    reason: str = ""
    signer: str | None = None
    issuer: str | None = None
    signed_at: datetime | None = None
    signed_at_source: str = ""
    tlog: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    serialization: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
