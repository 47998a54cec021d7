"""cosign signatures over a model's manifest, in each form cosign writes them, checked offline.

The signed blob is the manifest (``.signatures/manifest.json``). The signature is one of (cosign 2.x/3.x,
``cmd/cosign/cli/sign/sign_blob.go`` and ``pkg/cosign/bundle``):

* ``cosign sign-blob --key`` output: the signature alone, base64 or raw (``--b64=false``); see
  :mod:`workbench.model.cosign_blob`.
* the **old bundle** (``--bundle`` before cosign 3): JSON ``{"base64Signature", "cert", "rekorBundle"}``; ``cert``
  is set for keyless signing, ``rekorBundle`` when the signature was logged (``SignedEntryTimestamp`` and the
  entry's ``integratedTime``).
* the **new bundle** (cosign 3's default, ``--new-bundle-format``): a Sigstore bundle (``mediaType``
  ``application/vnd.dev.sigstore.bundle...``) whose ``messageSignature`` holds the blob's SHA-256 and the
  signature, ``verificationMaterial`` a public-key hint or a Fulcio certificate, and ``tlogEntries``.

With the key, the signature is verified exactly as ``cosign verify-blob --key`` does; the transparency-log entry is
reported present or absent and not required (offline). A keyless bundle is verified against a Sigstore trusted
root by sigstore-python when one is given (new bundles); otherwise it is ``unverifiable_offline`` with the
certificate's identity, its signature still checked under the certificate's key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from workbench.model.cosign_blob import SignatureError, verify_cosign_blob
from workbench.model.sig_certs import cert_info
from workbench.model.sig_signed import Signed, bundle_b64
from workbench.model.sigstore_offline import identity_policy, trusted_root
from workbench.model.trust import Trust, read_trust

__all__ = ["check_cosign", "cosign_kind"]

BUNDLE_MEDIA = "application/vnd.dev.sigstore.bundle"


def cosign_kind(data: bytes) -> str:
    """``cosign-bundle-new``, ``cosign-bundle-old`` or ``cosign-blob`` (a bare signature), from the content."""
    if data.lstrip()[:1] != b"{":
        return "cosign-blob"
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "cosign-blob"
    if isinstance(doc, dict) and "messageSignature" in doc:
        return "cosign-bundle-new"
    if isinstance(doc, dict) and "base64Signature" in doc:
        return "cosign-bundle-old"
    return "cosign-blob"


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _with_key(blob: bytes, signature: bytes, trust: Trust, method: str, **kw: Any) -> Signed:
    how = verify_cosign_blob(blob, signature, read_trust(trust.key))  # type: ignore[arg-type]
    return Signed(method=f"{method} ({how.algorithm}, {how.encoding})", trusted=True, signer=trust.show("key"), **kw)


def _under_cert(blob: bytes, signature: bytes, cert: x509.Certificate, method: str, reason: str, **kw: Any) -> Signed:
    pem = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        how = verify_cosign_blob(blob, signature, pem)
    except SignatureError:
        raise SignatureError("the signature does not match the key of the certificate the bundle carries") from None
    info = cert_info(cert)
    return Signed(method=f"{method} ({how.algorithm})", trusted=False, untrusted="unverifiable_offline",
                  reason=reason, signer=info.identity, issuer=info.oidc_issuer or info.issuer_dn, **kw)  # fmt: skip


def _old(blob: bytes, doc: dict[str, Any], trust: Trust) -> Signed:
    signature = bundle_b64(doc.get("base64Signature", ""), "signature")
    rekor = doc.get("rekorBundle") if isinstance(doc.get("rekorBundle"), dict) else None
    logged = _time(((rekor or {}).get("Payload") or {}).get("integratedTime")) if rekor else None
    kw = {"tlog": "present" if rekor else "absent", "signed_at": logged,
          "signed_at_source": "transparency log, not verified offline" if logged else ""}  # fmt: skip
    method = "cosign bundle (old format)"
    if trust.key is not None:
        return _with_key(blob, signature, trust, method, **kw)
    if doc.get("cert"):
        try:
            cert = x509.load_pem_x509_certificate(bundle_b64(doc["cert"], "certificate"))
        except ValueError:
            raise SignatureError("the bundle's certificate is not a PEM certificate") from None
        why = ("cosign's old bundle format is verified keyless only by cosign verify-blob --bundle (online or with "
               "its own trust root)")  # fmt: skip
        return _under_cert(blob, signature, cert, method, why, **kw)
    return Signed(method=method, trusted=False, checked=False, reason="no public key given", **kw)


def _new(blob: bytes, data: bytes, doc: dict[str, Any], trust: Trust) -> Signed:
    msg = doc.get("messageSignature")
    if not isinstance(msg, dict):
        raise SignatureError("the bundle's messageSignature is not an object")
    digest = msg.get("messageDigest") or {}
    if isinstance(digest, dict) and digest.get("digest"):
        if str(digest.get("algorithm", "SHA2_256")) != "SHA2_256":
            raise SignatureError(f"the bundle's message digest uses {str(digest.get('algorithm'))[:40]}, not SHA-256")
        if bundle_b64(digest["digest"], "message digest") != hashlib.sha256(blob).digest():
            raise SignatureError("manifest.json is not the blob the bundle signed (its SHA-256 differs)")
    signature = bundle_b64(msg.get("signature", ""), "signature")
    material = doc.get("verificationMaterial") if isinstance(doc.get("verificationMaterial"), dict) else {}
    entries = material.get("tlogEntries") or []
    logged = _time(entries[0].get("integratedTime")) if entries and isinstance(entries[0], dict) else None
    kw = {"tlog": "present" if entries else "absent", "signed_at": logged}
    unchecked = {"signed_at_source": "transparency log, not verified offline" if logged else ""}
    method = "cosign bundle (new format)"
    raw_cert = (material.get("certificate") or {}).get("rawBytes") or next(
        iter((material.get("x509CertificateChain") or {}).get("certificates") or []), {}).get("rawBytes")  # fmt: skip
    if raw_cert is None:
        if trust.key is None:
            return Signed(method=method, trusted=False, checked=False, reason="no public key given", **unchecked, **kw)
        return _with_key(blob, signature, trust, method, **unchecked, **kw)
    try:
        cert = x509.load_der_x509_certificate(bundle_b64(raw_cert, "certificate"))
    except ValueError:
        raise SignatureError("the bundle's certificate is not a DER certificate") from None
    if trust.trusted_root is None:
        return _under_cert(blob, signature, cert, method, "no Sigstore trusted root given", **unchecked, **kw)
    return _keyless_verified(blob, data, cert, trust, method, kw)


def _keyless_verified(blob: bytes, data: bytes, cert: x509.Certificate, trust: Trust, method: str,
                      kw: dict[str, Any]) -> Signed:  # fmt: skip
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    info = cert_info(cert)
    try:
        Verifier(trusted_root=trusted_root(trust)).verify_artifact(blob, Bundle.from_json(data), identity_policy(trust))
    except (SigstoreError, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"the Sigstore bundle does not verify against {trust.show('trusted_root')}: "
                             f"{str(exc)[:160]}") from None  # fmt: skip
    notes = [] if trust.identity else [f"no expected identity given: the signer is {info.identity}"]
    return Signed(method=method, trusted=True, signer=info.identity, issuer=info.oidc_issuer, notes=notes,
                  signed_at_source="transparency log, verified" if kw.get("signed_at") else "", **kw)  # fmt: skip


def check_cosign(blob: bytes, data: bytes, trust: Trust) -> Signed:
    """Check the cosign signature or bundle ``data`` over ``blob`` (the manifest's exact bytes) with ``trust``.

    Raises:
        SignatureError: it does not verify (the reason in one sentence).
        SignatureUnsupported: the key is of a type cosign does not sign with.
    """
    kind = cosign_kind(data)
    if kind == "cosign-blob":
        if trust.key is None:
            return Signed(method="cosign sign-blob", trusted=False, checked=False, reason="no public key given")
        return _with_key(blob, data, trust, "cosign sign-blob")
    doc = json.loads(data)
    return _old(blob, doc, trust) if kind == "cosign-bundle-old" else _new(blob, data, doc, trust)
