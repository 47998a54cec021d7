"""A throw-away Sigstore PKI for tests: real Sigstore "keyless" bundles that verify offline against our own root.

``make_trust`` makes a Fulcio-like CA, a Rekor key and a CT key and writes ``trusted_root.json`` (TrustedRoot) and
``trust_config.json`` (a ClientTrustConfig around it, as model_signing's ``trust_config=`` reads it);
``sign_dsse``, ``sign_blob_keyless`` and ``sign_model_sigstore`` make bundles that sigstore-python 4.5.1's
``Verifier`` and model_signing 1.1.1's ``use_sigstore_verifier`` accept with no network. Followed, per structure
(site-packages paths; the code is our own):

* Trust files: ``sigstore_models/trustroot/v1/__init__.py`` (strict pydantic: uint64 as strings, bytes base64);
  ``sigstore/models.py`` ``TrustedRoot.rekor_keyring``/``ct_keyring``/``get_fulcio_certs`` (a key whose
  ``validFor.start`` is in the future is skipped; ``sigstore/_internal/trust.py`` ``Key`` recomputes key IDs as
  SHA-256 of the SPKI DER); ``model_signing/_signing/sign_sigstore.py`` ``Verifier`` uses only ``trusted_root``.
* Leaf: ``sigstore/verify/verifier.py`` ``_verify_chain_at_time`` (cryptography webpki client verifier at the log
  time, EKU relaxed: AKI, critical SAN for an empty subject) and ``_verify_common_signing_cert`` steps 3 and 6
  (KeyUsage digitalSignature, EKU codeSigning, integrated time inside the leaf's validity);
  ``sigstore/verify/policy.py`` ``Identity`` (email/URI SAN) and ``OIDCIssuer`` (1.3.6.1.4.1.57264.1.1, raw
  bytes; .1.8, a DER UTF8String as ``_SingleX509ExtPolicyV2`` reads it, is added as Fulcio does).
* SCT: ``sigstore/_internal/sct.py`` ``verify_sct``/``_pack_digitally_signed``/``_pack_signed_entry``: the CT key
  signs (ECDSA SHA-256) the RFC 6962 precert ``digitally-signed`` struct over SHA-256(issuer SPKI) and
  ``tbs_precertificate_bytes`` (the leaf's TBS without the SCT list); the SCT's log ID is the CT key ID.
* DSSE: ``sigstore/dsse/__init__.py`` ``_pae``/``_verify``. Entry bodies: ``verifier.py``
  ``_validate_dsse_v001_entry_body`` (rekor_types ``Dsse`` without ``proposedContent``: payload hash, signatures
  with the base64 PEM certificate) and ``_validate_hashedrekord_v001_entry_body`` /
  ``sigstore/_internal/rekor/__init__.py`` ``_hashedrekord_from_parts``.
* Promise: ``sigstore/models.py`` ``TransparencyLogEntry._encode_canonical``/``_verify_set`` (the Rekor key signs
  RFC 8785 JSON of body, integratedTime, logID hex, logIndex); ``Verifier._establish_time`` (the integrated time
  counts only with a promise). Proof: ``sigstore/_internal/merkle.py`` (RFC 6962 hashing, audit path lowest level
  first) and ``sigstore/_internal/rekor/checkpoint.py`` ``verify_checkpoint``/``SignedNote`` (the note up to the
  blank line is signed; the signature's 4-byte hint is the log ID's prefix).
* Bundle: ``sigstore/models.py`` ``Bundle._verify``/``_from_parts`` (v0.3: one leaf certificate, exactly one tlog
  entry whose inclusion proof carries a checkpoint, and a promise or a timestamp).
* Model payload: ``model_signing/_cli.py`` ``_sign_sigstore`` (signature path added to the ignored paths, git paths
  ignored, symlinks refused by default), ``model_signing/signing.py`` ``Config.sign``, ``sign_sigstore.py``
  ``Signer.sign``/``Signature.write`` (statement = ``MessageToJson(Payload(manifest).statement.pb)``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

IN_TOTO = "application/vnd.in-toto+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_V01 = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
CLIENT_TRUST_CONFIG_V01 = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
SIGNING_CONFIG_V02 = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
REKOR_URL = "https://rekor.sigstore-pki.invalid"  # never contacted: .invalid cannot resolve
FULCIO_URL = "https://fulcio.sigstore-pki.invalid"
CT_URL = "https://ctfe.sigstore-pki.invalid"
REKOR_NAME = "rekor.sigstore-pki.invalid"
_KEY_DETAILS = {"secp256r1": "PKIX_ECDSA_P256_SHA_256", "secp384r1": "PKIX_ECDSA_P384_SHA_384"}
_CURVE_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key ID: SHA-256 of the DER SubjectPublicKeyInfo (what sigstore-python computes)."""
    return hashlib.sha256(_spki(key)).digest()


@dataclass(frozen=True, slots=True)
class Trust:
    """One throw-away Sigstore instance: its private keys and the trust files written for it."""

    dir: Path
    trusted_root: Path  # TrustedRoot JSON (sigstore.models.TrustedRoot.from_file)
    trust_config: Path  # ClientTrustConfig JSON (model_signing trust_config=)
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    rekor_key: ec.EllipticCurvePrivateKey
    ct_key: ec.EllipticCurvePrivateKey
    log_tree_id: int


def _ca_certificate(key: ec.EllipticCurvePrivateKey, name: str, not_before: dt.datetime, not_after: dt.datetime):
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore-pki"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])  # fmt: skip
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # keyCertSign, cRLSign
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _CURVE_HASH[key.curve.name]())
    )


def _log_instance(key: ec.EllipticCurvePrivateKey, url: str, start: dt.datetime) -> dict:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": _b64(_spki(key.public_key())),
            "keyDetails": _KEY_DETAILS[key.curve.name],
            "validFor": {"start": start.isoformat().replace("+00:00", "Z")},
        },
        "logId": {"keyId": _b64(key_id(key.public_key()))},
    }


def make_trust(dir: Path, *, ca_not_before: dt.datetime | None = None, ca_not_after: dt.datetime | None = None,
               ca_curve: ec.EllipticCurve | None = None, name: str = "sigstore-pki") -> Trust:  # fmt: skip
    """Generate a CA (self-signed root, P-384 by default like Fulcio's), a Rekor key and a CT key (P-256) and
    write ``trusted_root.json`` and ``trust_config.json`` into ``dir`` (created if needed).

    ``ca_not_before`` defaults to one day ago, ``ca_not_after`` to a year from now; the log keys' ``validFor``
    starts at ``ca_not_before`` (sigstore-python ignores a key whose start is in the future)."""
    dir.mkdir(parents=True, exist_ok=True)
    now = _now()
    not_before = ca_not_before or now - dt.timedelta(days=1)
    not_after = ca_not_after or now + dt.timedelta(days=365)
    ca_key = ec.generate_private_key(ca_curve or ec.SECP384R1())
    ca_cert = _ca_certificate(ca_key, f"{name} root", not_before, not_after)
    rekor_key = ec.generate_private_key(ec.SECP256R1())
    ct_key = ec.generate_private_key(ec.SECP256R1())
    validity = {"start": not_before.isoformat().replace("+00:00", "Z")}
    if ca_not_after is not None:
        validity["end"] = not_after.isoformat().replace("+00:00", "Z")
    root = {
        "mediaType": TRUSTED_ROOT_V01,
        "tlogs": [_log_instance(rekor_key, REKOR_URL, not_before)],
        "certificateAuthorities": [
            {
                "subject": {"organization": "sigstore-pki", "commonName": f"{name} root"},
                "uri": FULCIO_URL,
                "certChain": {"certificates": [{"rawBytes": _b64(ca_cert.public_bytes(serialization.Encoding.DER))}]},
                "validFor": validity,
            }
        ],
        "ctlogs": [_log_instance(ct_key, CT_URL, not_before)],
        "timestampAuthorities": [],
    }
    service = {"majorApiVersion": 1, "operator": "sigstore-pki", "validFor": {"start": validity["start"]}}
    config = {
        "mediaType": CLIENT_TRUST_CONFIG_V01,
        "trustedRoot": root,
        "signingConfig": {
            "mediaType": SIGNING_CONFIG_V02,
            "caUrls": [{"url": FULCIO_URL, **service}],
            "oidcUrls": [{"url": "https://issuer.sigstore-pki.invalid", **service}],
            "rekorTlogUrls": [{"url": REKOR_URL, **service}],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaUrls": [],
            "tsaConfig": {"selector": "ANY"},
        },
    }
    trusted_root = dir / "trusted_root.json"
    trust_config = dir / "trust_config.json"
    trusted_root.write_text(json.dumps(root, indent=2), encoding="utf-8")
    trust_config.write_text(json.dumps(config, indent=2), encoding="utf-8")
    tree_id = int.from_bytes(hashlib.sha256(key_id(rekor_key.public_key())).digest()[:7], "big")
    return Trust(dir, trusted_root, trust_config, ca_key, ca_cert, rekor_key, ct_key, tree_id)


# --- leaf certificate with an embedded SCT -------------------------------------------------------------------------


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u24(data: bytes) -> bytes:
    return struct.pack("!I", len(data))[1:] + data


def _der(tag: int, content: bytes) -> bytes:
    """A DER TLV (definite length, short or long form)."""
    if len(content) < 128:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _sct_list(log_id: bytes, timestamp_ms: int, signature: bytes) -> bytes:
    """RFC 6962 3.3 SignedCertificateTimestampList holding one v1 SCT, wrapped in the DER OCTET STRING that is the
    extension's value (SHA-256 = 4, ECDSA = 3 in the TLS SignatureAndHashAlgorithm)."""
    sct = b"\x00" + log_id + struct.pack("!Q", timestamp_ms) + _u16(b"") + b"\x04\x03" + _u16(signature)
    return _der(0x04, _u16(_u16(sct)))


def issue_leaf(trust: Trust, public_key: ec.EllipticCurvePublicKey, *, identity: str, issuer: str,
               not_before: dt.datetime, lifetime: dt.timedelta = dt.timedelta(minutes=10),
               sct: bool = True) -> x509.Certificate:  # fmt: skip
    """A Fulcio-style code-signing leaf for ``identity`` (an email SAN when it has an ``@`` and no scheme, a URI
    SAN otherwise) with the OIDC issuer extensions and, unless ``sct=False``, an embedded SCT from the CT key."""
    san: x509.GeneralName
    if "@" in identity and "://" not in identity:
        san = x509.RFC822Name(identity)
    else:
        san = x509.UniformResourceIdentifier(identity)
    ca_pub = trust.ca_key.public_key()
    serial = x509.random_serial_number()
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)  # digitalSignature

    def build(sct_value: bytes | None) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(trust.ca_cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + lifetime)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_pub), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V2, _der(0x0C, issuer.encode())), critical=False)
        )
        if sct_value is not None:
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, sct_value), critical=False)
        return builder.sign(trust.ca_key, _CURVE_HASH[trust.ca_key.curve.name]())

    if not sct:
        return build(None)
    ct_log_id = key_id(trust.ct_key.public_key())
    timestamp_ms = int(not_before.timestamp() * 1000)
    # The SCT signs the precertificate TBS, which is the final TBS minus the SCT list: build once with a
    # placeholder SCT of the same shape to obtain it (cryptography strips the extension for us).
    draft = build(_sct_list(ct_log_id, timestamp_ms, b"\x00" * 72))
    signed_entry = hashlib.sha256(_spki(ca_pub)).digest() + _u24(draft.tbs_precertificate_bytes)
    digitally_signed = struct.pack("!BBQH", 0, 0, timestamp_ms, 1) + signed_entry + _u16(b"")
    signature = trust.ct_key.sign(digitally_signed, ec.ECDSA(hashes.SHA256()))
    return build(_sct_list(ct_log_id, timestamp_ms, signature))


# --- transparency log entry ----------------------------------------------------------------------------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962 2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:k]) + _tree_hash(leaves[k:])).digest()


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[n]), lowest level first."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_audit_path(index, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_audit_path(index - k, leaves[k:]), _tree_hash(leaves[:k])]


def _checkpoint(trust: Trust, tree_size: int, root_hash: bytes) -> str:
    note = f"{REKOR_NAME} - {trust.log_tree_id}\n{tree_size}\n{_b64(root_hash)}\n"
    signature = trust.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    hint = key_id(trust.rekor_key.public_key())[:4]
    return f"{note}\n\u2014 {REKOR_NAME} {_b64(hint + signature)}\n"


def log_entry(trust: Trust, body: dict, integrated_time: int, *, log_index: int = 5, tree_size: int = 7,
              inclusion_proof: bool = True, inclusion_promise: bool = True) -> dict:  # fmt: skip
    """A Rekor v1 ``TransparencyLogEntry`` (bundle JSON) for ``body``, logged at ``log_index`` of a tree of
    ``tree_size`` leaves (the others are filler), with the SET and a signed checkpoint from the Rekor key."""
    canonical_body = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    log_id = key_id(trust.rekor_key.public_key())
    entry: dict = {
        "logIndex": str(log_index),
        "logId": {"keyId": _b64(log_id)},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": str(integrated_time),
        "canonicalizedBody": _b64(canonical_body),
    }
    if inclusion_promise:
        # RFC 8785 of these four members equals sorted, compact json.dumps: ASCII strings and integers only.
        promised = {"body": _b64(canonical_body), "integratedTime": integrated_time, "logID": log_id.hex(),
                    "logIndex": log_index}  # fmt: skip
        set_bytes = trust.rekor_key.sign(json.dumps(promised, sort_keys=True, separators=(",", ":")).encode(),
                                         ec.ECDSA(hashes.SHA256()))  # fmt: skip
        entry["inclusionPromise"] = {"signedEntryTimestamp": _b64(set_bytes)}
    if inclusion_proof:
        leaves = [_leaf_hash(f"filler entry {i}".encode()) for i in range(tree_size)]
        leaves[log_index] = _leaf_hash(canonical_body)
        root_hash = _tree_hash(leaves)
        entry["inclusionProof"] = {
            "logIndex": str(log_index),
            "rootHash": _b64(root_hash),
            "treeSize": str(tree_size),
            "hashes": [_b64(h) for h in _audit_path(log_index, leaves)],
            "checkpoint": {"envelope": _checkpoint(trust, tree_size, root_hash)},
        }
    return entry


def _pem_b64(cert: x509.Certificate) -> str:
    return _b64(cert.public_bytes(serialization.Encoding.PEM))


# --- signing -------------------------------------------------------------------------------------------------------


def _pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def _keyless(trust: Trust, content: Callable, *, identity: str, issuer: str, tlog: bool = True,
             signed_at: dt.datetime | None = None, sct: bool = True, **log_options) -> dict:  # fmt: skip
    """The keyless flow: a fresh P-256 key (as sigstore-python's signer makes), its leaf valid from ``signed_at``
    (default now) for 10 minutes, ``content(key, cert)`` -> (bundle member, its value, log entry body), the entry
    integrated 1 s after ``signed_at``; assembled as ``Bundle._from_parts`` does."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = (signed_at or _now()).replace(microsecond=0)
    cert = issue_leaf(trust, key.public_key(), identity=identity, issuer=issuer, not_before=not_before, sct=sct)
    member, value, body = content(key, cert)
    entry = None
    if tlog:
        entry = log_entry(trust, body, int(not_before.timestamp()) + 1, **log_options)
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [entry] if entry is not None else [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
        },
        member: value,
    }


def sign_dsse(trust: Trust, statement_json: bytes, *, identity: str = "alice@example.com",
              issuer: str = "https://issuer.example.com", tlog: bool = True, inclusion_proof: bool = True,
              payload_type: str = IN_TOTO, **options) -> dict:  # fmt: skip
    """A v0.3 Sigstore bundle (JSON dict) with a DSSE envelope over ``statement_json`` signed by a fresh key whose
    leaf certificate names ``identity`` and ``issuer``, and a ``dsse`` 0.0.1 log entry. ``tlog=False`` leaves the
    entry out and ``inclusion_proof=False`` its proof (sigstore-python rejects both). ``options``: ``signed_at``
    (a datetime, default now), ``sct=False`` (leaf without SCT) and ``log_entry``'s ``inclusion_promise=False``
    (no SET), ``log_index``, ``tree_size``."""

    def dsse(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, dict, dict]:
        signature = key.sign(_pae(payload_type, statement_json), ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": _b64(statement_json), "payloadType": payload_type,
                    "signatures": [{"sig": _b64(signature)}]}  # fmt: skip
        envelope_hash = hashlib.sha256(json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode())
        spec = {
            "envelopeHash": {"algorithm": "sha256", "value": envelope_hash.hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement_json).hexdigest()},
            "signatures": [{"signature": _b64(signature), "verifier": _pem_b64(cert)}],
        }
        return "dsseEnvelope", envelope, {"apiVersion": "0.0.1", "kind": "dsse", "spec": spec}

    return _keyless(trust, dsse, identity=identity, issuer=issuer, tlog=tlog, inclusion_proof=inclusion_proof,
                    **options)  # fmt: skip


def sign_blob_keyless(trust: Trust, blob: bytes, *, identity: str = "alice@example.com",
                      issuer: str = "https://issuer.example.com", **options) -> dict:  # fmt: skip
    """A v0.3 bundle with a ``messageSignature`` (ECDSA P-256 over SHA-256 of ``blob``) and a ``hashedrekord``
    0.0.1 log entry, as ``sigstore sign`` / ``cosign sign-blob --bundle`` (keyless) write it; checked with
    ``Verifier.verify_artifact``. ``options`` as for ``sign_dsse`` (``tlog``, ``inclusion_proof``...)."""
    digest = hashlib.sha256(blob).digest()

    def message(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, dict, dict]:
        signature = key.sign(blob, ec.ECDSA(hashes.SHA256()))
        spec = {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {"content": _b64(signature), "publicKey": {"content": _pem_b64(cert)}},
        }
        value = {"messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)}, "signature": _b64(signature)}
        return "messageSignature", value, {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec}

    return _keyless(trust, message, identity=identity, issuer=issuer, **options)


def model_statement(model_dir: Path, signature_path: Path, *, ignore_paths: Iterable[Path] = (),
                    ignore_git_paths: bool = True, allow_symlinks: bool = False,
                    shard_size: int | None = None) -> bytes:  # fmt: skip
    """The in-toto statement ``model_signing sign sigstore MODEL --signature SIG`` signs, computed with
    model_signing's own hashing and payload code. ``signature_path`` resolves against the working directory as the
    CLI's does, ``ignore_paths`` against ``model_dir`` (or absolute); ``shard_size`` selects the sharded manifest
    (``hashing.Config.use_shard_serialization``) instead of the default per-file one."""
    from google.protobuf import json_format
    from model_signing import hashing
    from model_signing._signing import signing

    root = model_dir.resolve()
    ignored = []
    for path in [*(root / p for p in ignore_paths), signature_path.resolve()]:
        if path.resolve().is_relative_to(root):
            ignored.append(path.resolve().relative_to(root))
    config = hashing.Config().set_ignored_paths(paths=ignored, ignore_git_paths=ignore_git_paths)
    if shard_size is not None:
        config.use_shard_serialization(shard_size=shard_size)
    manifest = config.set_allow_symlinks(allow_symlinks).hash(model_dir)
    return json_format.MessageToJson(signing.Payload(manifest).statement.pb).encode("utf-8")


def sign_model_sigstore(trust: Trust, model_dir: Path, signature_path: Path, *, identity: str = "alice@example.com",
                        issuer: str = "https://issuer.example.com", ignore_paths: Iterable[Path] = (),
                        ignore_git_paths: bool = True, allow_symlinks: bool = False, shard_size: int | None = None,
                        **bundle_options) -> dict:  # fmt: skip
    """Write the ``model.sig`` that ``model_signing sign sigstore`` would write for ``model_dir`` (same statement,
    same writer: ``sign_sigstore.Signature.write``), with the certificate and log entry from ``trust``; return the
    bundle dict. ``bundle_options`` go to ``sign_dsse`` (``tlog``, ``signed_at``...); a bundle sigstore-python
    cannot even parse (no tlog entry, no inclusion proof) is written as plain JSON."""
    from model_signing._signing import sign_sigstore
    from sigstore.models import Bundle, InvalidBundle

    statement = model_statement(model_dir, signature_path, ignore_paths=ignore_paths, ignore_git_paths=ignore_git_paths,
                                allow_symlinks=allow_symlinks, shard_size=shard_size)  # fmt: skip
    bundle = sign_dsse(trust, statement, identity=identity, issuer=issuer, **bundle_options)
    try:
        sign_sigstore.Signature(Bundle.from_json(json.dumps(bundle))).write(signature_path)
    except InvalidBundle:
        signature_path.write_text(json.dumps(bundle), encoding="utf-8")
    return bundle
