"""Offline verification of a ``cosign sign-blob --key`` signature, for every key type and encoding cosign writes.

What cosign does (``pkg/cosign/keys.go`` ``LoadPrivateKey`` -> sigstore's ``signature.LoadDefaultSignerVerifier``,
hash per key from ``pkg/signature/algorithm_registry.go``):

* ECDSA P-256 / SHA-256, P-384 / SHA-384, P-521 / SHA-512, the signature DER-encoded. Cosign before 2.x hashed with
  SHA-256 whatever the curve (``LoadPublicKey`` "hardcoding SHA256"); such a signature is still accepted.
* Ed25519: Ed25519ph (RFC 8032, SHA-512 pre-hash) by default since cosign 2.x (``GetDefaultLoadOptions``:
  ``WithED25519ph``); older cosign used pure Ed25519. Both are accepted.
* RSA: PKCS#1 v1.5 / SHA-256 (the default for RSA keys); RSA-PSS / SHA-256 is accepted too.

The signature file is base64 (the default) or raw bytes (``--b64=false``), with or without a trailing newline, as
``cosign verify-blob`` accepts. Any other key type is :class:`SignatureUnsupported` (not a sign of tampering).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = ["BlobVerification", "SignatureError", "SignatureUnsupported", "load_public_key", "verify_cosign_blob"]

_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_CURVE_NAME = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
MIN_RSA_BITS = 2048  # cosign's cryptoutils.ValidatePubKey refuses smaller RSA keys


class SignatureError(Exception):
    """The signature does not verify; ``reason`` says why in one sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SignatureUnsupported(SignatureError):
    """The key (or scheme) is one cosign does not sign with: the signature cannot be checked, it is not invalid."""


@dataclass(frozen=True, slots=True)
class BlobVerification:
    """A verified blob signature: ``algorithm`` (e.g. ``ecdsa-p384-sha384``) and ``encoding`` (base64 / raw)."""

    algorithm: str
    encoding: str


_Check = Callable[[bytes, bytes], None]  # (signature, blob) -> None, raises InvalidSignature


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey:
    """The PEM public key, of a type cosign signs with.

    Raises:
        SignatureError: not a PEM public key.
        SignatureUnsupported: a public key of another type (or curve, or an RSA key under 2048 bits).
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError("the public key is not a PEM public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASH:
            raise SignatureUnsupported(f"key type ECDSA {key.curve.name} is not supported (cosign signs with "
                                       "P-256, P-384 or P-521)")  # fmt: skip
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise SignatureUnsupported(f"key type RSA-{key.key_size} is not supported (cosign needs 2048 bits or more)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    name = type(key).__name__.removeprefix("_").replace("PublicKey", "")
    raise SignatureUnsupported(f"key type {name} is not supported (cosign signs with ECDSA, Ed25519 or RSA keys)")


def _checks(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> list[tuple[str, _Check]]:
    """Every (algorithm name, check) cosign may have used with this key, the current default first."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve, algo = _CURVE_NAME[key.curve.name], _CURVE_HASH[key.curve.name]
        out = [(f"ecdsa-{curve.lower()}-{algo.name}", lambda s, b: key.verify(s, b, ec.ECDSA(algo())))]
        if algo is not hashes.SHA256:
            out.append((f"ecdsa-{curve.lower()}-sha256", lambda s, b: key.verify(s, b, ec.ECDSA(hashes.SHA256()))))
        return out
    if isinstance(key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        return [
            (f"rsa-pkcs1v15-{key.key_size}-sha256", lambda s, b: key.verify(s, b, padding.PKCS1v15(), hashes.SHA256())),
            (f"rsa-pss-{key.key_size}-sha256", lambda s, b: key.verify(s, b, pss, hashes.SHA256())),
        ]
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return [("ed25519ph", lambda s, b: _verify_ed25519ph(raw, s, b)), ("ed25519", key.verify)]


def _verify_ed25519ph(raw_key: bytes, signature: bytes, blob: bytes) -> None:
    """RFC 8032 Ed25519ph (SHA-512 pre-hash, empty context), as sigstore's ED25519phVerifier; ``cryptography`` has
    no Ed25519ph, pycryptodomex (a declared dependency) has."""
    from Cryptodome.Hash import SHA512
    from Cryptodome.PublicKey import ECC
    from Cryptodome.Signature import eddsa

    try:
        eddsa.new(ECC.import_key(_ed25519_der(raw_key)), "rfc8032").verify(SHA512.new(blob), signature)
    except ValueError:
        raise InvalidSignature from None


def _ed25519_der(raw_key: bytes) -> bytes:
    """SubjectPublicKeyInfo DER of a raw Ed25519 public key (OID 1.3.101.112)."""
    return bytes.fromhex("302a300506032b6570032100") + raw_key


def _decodings(signature: bytes) -> list[tuple[str, bytes]]:
    """The signature as cosign verify-blob reads it: base64 (whitespace ignored) if it decodes, else raw bytes."""
    out = []
    with_b64 = b"".join(signature.split())
    try:
        der = base64.b64decode(with_b64, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if der:
        out.append(("base64", der))
    out.append(("raw", signature))
    if signature.endswith(b"\n"):
        out.append(("raw", signature.rstrip(b"\r\n")))
    return out


def verify_cosign_blob(blob: bytes, signature: bytes, public_key_pem: bytes) -> BlobVerification:
    """Verify like ``cosign verify-blob --key KEY --signature SIG BLOB``, offline.

    Returns:
        Which algorithm and encoding matched.

    Raises:
        SignatureUnsupported: the key is of a type cosign does not sign with.
        SignatureError: the key is unreadable, the signature empty, or it does not match the blob under the key.
    """
    key = load_public_key(public_key_pem)
    if not signature.strip():
        raise SignatureError("the signature is empty")
    for encoding, sig in _decodings(signature):
        for algorithm, check in _checks(key):
            try:
                check(sig, blob)
            except (InvalidSignature, ValueError):
                continue
            return BlobVerification(algorithm, encoding)
    raise SignatureError("the signature does not match the signed file under the given public key")
