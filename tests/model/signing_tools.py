"""Signatures made as users make them, for the signature tests.

* OpenSSF model signing: the real ``model_signing`` 1.1.1 API, as its CLI calls it (``model_signing/_cli.py``: the
  signature path joins the ignored paths, git paths are ignored): ``sign key``, ``sign certificate``; the Sigstore
  method through :mod:`tests.model.sigstore_pki` (our own Fulcio/Rekor stand-ins). ``library_verdict`` is
  model_signing's own verification of the same folder.
* cosign: ``sign-blob --key`` over the exact manifest bytes, base64 or raw (``--b64=false``), as
  ``cmd/cosign/cli/sign/sign_blob.go`` writes it (the signer from ``pkg/signature`` for the key: ECDSA with the
  curve's hash, DER-encoded); the old bundle (``--bundle``: ``LocalSignedPayload`` of
  ``pkg/cosign/bundle``: ``base64Signature``, ``cert``, ``rekorBundle`` with ``SignedEntryTimestamp`` and the
  entry's ``integratedTime``/``logIndex``/``logID``/``body``); the new bundle (``--new-bundle-format``, cosign 3's
  default: a Sigstore v0.3 bundle whose ``messageSignature`` holds the blob's SHA-256 and the signature, with a
  ``publicKey`` hint as verification material and, when logged, a ``tlogEntries`` element).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import model_signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CURVES = {"p256": (ec.SECP256R1, hashes.SHA256), "p384": (ec.SECP384R1, hashes.SHA384),
          "p521": (ec.SECP521R1, hashes.SHA512)}  # fmt: skip


def write_key(folder: Path, name: str, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    """``name.key`` (PKCS#8 PEM) and ``name.pub`` (SPKI PEM) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    priv, pub = folder / f"{name}.key", folder / f"{name}.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return priv, pub


def new_key(folder: Path, name: str, curve: str = "p256") -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    key = ec.generate_private_key(CURVES[curve][0]())
    return (key, *write_key(folder, name, key))


def _hashing(placement: str | None, shard_size: int | None) -> model_signing.hashing.Config:
    config = model_signing.hashing.Config()
    if shard_size:
        config.use_shard_serialization(shard_size=shard_size)
    return config.set_ignored_paths(paths=[placement] if placement else [], ignore_git_paths=True)


def ms_sign_key(model: Path, private_key: Path, sig: Path, *, shard_size: int | None = None) -> Path:
    """``model_signing sign key MODEL --private_key KEY --signature SIG``."""
    sig.parent.mkdir(parents=True, exist_ok=True)
    rel = sig.relative_to(model).as_posix() if model in sig.parents else None
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key)
    config.set_hashing_config(_hashing(rel, shard_size)).sign(model, sig)
    return sig


def make_pki(folder: Path, *, leaf_not_before: dt.datetime | None = None, leaf_days: int = 365,
             code_signing: bool = True) -> dict[str, Path]:  # fmt: skip
    """A CA and a leaf certificate for ``model_signing sign certificate``: ``ca`` (PEM), ``leaf_key``, ``leaf``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Model Signing Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=3650))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    start = leaf_not_before or now - dt.timedelta(days=1)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml-release-bot"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=leaf_days))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("release@example.com")]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=code_signing, content_commitment=False,
                                         key_encipherment=not code_signing, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING if code_signing
                                                  else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    paths = {"ca": folder / "ca.pem", "leaf": folder / "leaf.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["leaf"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["leaf_key"], _ = write_key(folder, "leaf", leaf_key)
    return paths


def ms_sign_certificate(model: Path, pki: dict[str, Path], sig: Path, *, shard_size: int | None = None) -> Path:
    """``model_signing sign certificate MODEL --private_key K --signing_certificate C --certificate_chain CA``."""
    rel = sig.relative_to(model).as_posix() if model in sig.parents else None
    config = model_signing.signing.Config().use_certificate_signer(
        private_key=pki["leaf_key"], signing_certificate=pki["leaf"], certificate_chain=[pki["ca"]]
    )
    config.set_hashing_config(_hashing(rel, shard_size)).sign(model, sig)
    return sig


def library_verdict(model: Path, sig: Path, *, key: Path | None = None, ca: Path | None = None,
                    trust_config: Path | None = None, identity: str = "", issuer: str = "",
                    shard_size: int | None = None) -> bool:  # fmt: skip
    """model_signing's own verdict (``model_signing verify key|certificate|sigstore``)."""
    config = model_signing.verifying.Config()
    if key is not None:
        config.use_elliptic_key_verifier(public_key=key)
    elif ca is not None:
        config.use_certificate_verifier(certificate_chain=[ca])
    else:
        config.use_sigstore_verifier(identity=identity, oidc_issuer=issuer, trust_config=trust_config)
    rel = sig.relative_to(model).as_posix() if model in sig.parents else None
    config.set_hashing_config(_hashing(rel, shard_size))
    try:
        config.verify(model, sig)
    except (ValueError, Exception):  # noqa: BLE001 - the library raises ValueError, OpenSSL and sigstore errors
        return False
    return True


# ------------------------------------------------------------------------------------------- cosign over a manifest
def write_manifest(model: Path) -> bytes:
    """``.signatures/manifest.json`` listing every model file (what the playbook's signing step writes)."""
    files = sorted(p for p in model.rglob("*") if p.is_file() and ".signatures" not in p.parts)
    doc = {"version": "1.0", "model_id": model.name, "created": "2026-11-20T10:00:00Z", "hash_algorithm": "sha256",
           "files": [{"path": p.relative_to(model).as_posix(), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                      "size": p.stat().st_size} for p in files]}  # fmt: skip
    blob = json.dumps(doc, indent=2).encode()
    (model / ".signatures").mkdir(exist_ok=True)
    (model / ".signatures/manifest.json").write_bytes(blob)
    return blob


def cosign_signature(key: ec.EllipticCurvePrivateKey, blob: bytes) -> bytes:
    """The DER ECDSA signature cosign makes with this key (the curve's hash)."""
    algorithm = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}[key.curve.key_size]
    return key.sign(blob, ec.ECDSA(algorithm()))


def cosign_old_bundle(key: ec.EllipticCurvePrivateKey, blob: bytes, *, logged: bool = True) -> bytes:
    sig = cosign_signature(key, blob)
    doc: dict = {"base64Signature": base64.b64encode(sig).decode(), "cert": ""}
    if logged:
        doc["rekorBundle"] = {"SignedEntryTimestamp": base64.b64encode(b"\x30\x00").decode(),
                              "Payload": {"body": base64.b64encode(b"{}").decode(), "integratedTime": 1763632800,
                                          "logIndex": 12345, "logID": "c0d2" * 16}}  # fmt: skip
    return json.dumps(doc).encode()


def cosign_new_bundle(key: ec.EllipticCurvePrivateKey, blob: bytes, *, logged: bool = True) -> bytes:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    sig = cosign_signature(key, blob)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    doc: dict = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                 "verificationMaterial": {"publicKey": {"hint": b64(hashlib.sha256(spki).digest())}, "tlogEntries": []},
                 "messageSignature": {"signature": b64(sig), "messageDigest": {
                     "algorithm": "SHA2_256", "digest": b64(hashlib.sha256(blob).digest())}}}  # fmt: skip
    if logged:
        entry = {"logIndex": "12345", "integratedTime": "1763632800", "logId": {"keyId": b64(b"k" * 32)},
                 "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"}}  # fmt: skip
        doc["verificationMaterial"]["tlogEntries"] = [entry]
    return json.dumps(doc).encode()
