"""cosign ``sign-blob --key`` signatures over the signed manifest, for every key type and encoding cosign writes.

Signatures are made here exactly as cosign's source does: ``sigstore/cosign`` ``pkg/cosign/keys.go``
(``LoadPrivateKey`` -> ``signature.LoadDefaultSignerVerifier`` with ``GetDefaultLoadOptions`` = ``WithED25519ph``)
and the hash per key from ``sigstore/sigstore`` ``pkg/signature/algorithm_registry.go`` (P-256/SHA-256,
P-384/SHA-384, P-521/SHA-512, RSA PKCS#1 v1.5 or PSS / SHA-256, Ed25519ph). The signature is over the blob's exact
bytes, DER for ECDSA, written base64 (the default) or raw (``--b64=false``). Older cosign (``pkg/signature/keys.go``
``LoadPublicKey``, "hardcoding SHA256") signed every curve with SHA-256 and Ed25519 keys with pure Ed25519.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from Cryptodome.Hash import SHA512
from Cryptodome.PublicKey import ECC
from Cryptodome.Signature import eddsa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from workbench.model.cosign_blob import SignatureError, SignatureUnsupported, verify_cosign_blob
from workbench.model.signatures import verify_model_signature

_PEM = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(private) -> bytes:
    return private.public_key().public_bytes(*_PEM)


class _Ed25519ph:
    """An Ed25519 key signing as cosign 2.x does (RFC 8032 Ed25519ph: SHA-512 pre-hash, empty context)."""

    def __init__(self) -> None:
        self.key = ECC.generate(curve="ed25519")

    def public_key(self) -> _Ed25519ph:
        return self

    def public_bytes(self, *_: object) -> bytes:
        return self.key.public_key().export_key(format="PEM").encode()

    def sign(self, blob: bytes) -> bytes:
        return eddsa.new(self.key, "rfc8032").sign(SHA512.new(blob))


# key type -> (new private key, sign(private key, blob) -> signature bytes, algorithm the verifier reports)
KEYS: dict[str, tuple[Callable[[], object], Callable[[object, bytes], bytes], str]] = {
    "ecdsa-p256": (lambda: ec.generate_private_key(ec.SECP256R1()),
                   lambda k, b: k.sign(b, ec.ECDSA(hashes.SHA256())), "ecdsa-p-256-sha256"),
    "ecdsa-p384": (lambda: ec.generate_private_key(ec.SECP384R1()),
                   lambda k, b: k.sign(b, ec.ECDSA(hashes.SHA384())), "ecdsa-p-384-sha384"),
    "ecdsa-p521": (lambda: ec.generate_private_key(ec.SECP521R1()),
                   lambda k, b: k.sign(b, ec.ECDSA(hashes.SHA512())), "ecdsa-p-521-sha512"),
    "ecdsa-p384-old-cosign-sha256": (lambda: ec.generate_private_key(ec.SECP384R1()),
                                     lambda k, b: k.sign(b, ec.ECDSA(hashes.SHA256())), "ecdsa-p-384-sha256"),
    "ed25519ph": (_Ed25519ph, lambda k, b: k.sign(b), "ed25519ph"),
    "ed25519-pure-old-cosign": (ed25519.Ed25519PrivateKey.generate, lambda k, b: k.sign(b), "ed25519"),
    "rsa-2048-pkcs1v15": (functools.partial(rsa.generate_private_key, 65537, 2048),
                          lambda k, b: k.sign(b, padding.PKCS1v15(), hashes.SHA256()), "rsa-pkcs1v15-2048-sha256"),
    "rsa-3072-pss": (functools.partial(rsa.generate_private_key, 65537, 3072),
                     lambda k, b: k.sign(b, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                        salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256()),
                     "rsa-pss-3072-sha256"),
}  # fmt: skip
ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "base64": base64.b64encode,
    "base64-newline": lambda s: base64.b64encode(s) + b"\n",
    "raw": lambda s: s,
}


@functools.cache
def _key(kind: str, n: int) -> object:
    return KEYS[kind][0]()


def _sign(kind: str, blob: bytes, encoding: str, n: int = 0) -> bytes:
    return ENCODINGS[encoding](KEYS[kind][1](_key(kind, n), blob))


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_blob_valid_tampered_wrong_key(kind: str, encoding: str) -> None:
    blob = b'{"files": [{"path": "model.safetensors", "sha256": "ab"}]}\n'
    sig, pem = _sign(kind, blob, encoding), _pem(_key(kind, 0))
    got = verify_cosign_blob(blob, sig, pem)
    assert (got.algorithm, got.encoding) == (KEYS[kind][2], "raw" if encoding == "raw" else "base64")
    for bad_blob, bad_pem in ((blob.replace(b"ab", b"ac"), pem), (blob, _pem(_key(kind, 1)))):
        with pytest.raises(SignatureError) as err:
            verify_cosign_blob(bad_blob, sig, bad_pem)
        assert type(err.value) is SignatureError
        assert err.value.reason == "the signature does not match the signed file under the given public key"


def test_p384_with_another_hash_is_not_accepted() -> None:
    """Only the hashes cosign uses for the curve: P-384 signed over SHA-512 does not verify."""
    key = _key("ecdsa-p384", 0)
    sig = key.sign(b"blob", ec.ECDSA(hashes.SHA512()))
    with pytest.raises(SignatureError):
        verify_cosign_blob(b"blob", sig, _pem(key))
    assert verify_cosign_blob(b"blob", key.sign(b"blob", ec.ECDSA(hashes.SHA384())), _pem(key)).encoding == "raw"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: ec.generate_private_key(ec.SECP256K1()), "key type ECDSA secp256k1 is not supported"),
        (ed448.Ed448PrivateKey.generate, "key type Ed448 is not supported"),
        (functools.partial(dsa.generate_private_key, 2048), "key type DSA is not supported"),
        (functools.partial(rsa.generate_private_key, 65537, 1024), "key type RSA-1024 is not supported"),
    ],
)
def test_unsupported_key_types(make: Callable[[], object], reason: str) -> None:
    with pytest.raises(SignatureUnsupported) as err:
        verify_cosign_blob(b"blob", b"MEUCIQ==", _pem(make()))
    assert err.value.reason.startswith(reason)


@pytest.mark.parametrize("sig", [b"", b"\n", b"  "])
def test_empty_signature(sig: bytes) -> None:
    with pytest.raises(SignatureError) as err:
        verify_cosign_blob(b"blob", sig, _pem(_key("ecdsa-p256", 0)))
    assert err.value.reason == "the signature is empty"


# ------------------------------------------------------------------ through the manifest check


@pytest.fixture
def manifest_model(small_model, write_signed_manifest) -> Callable[[str, str], tuple[Path, bytes]]:
    def make(kind: str, encoding: str) -> tuple[Path, bytes]:
        model = small_model(f"m-{kind}-{encoding}")
        manifest = write_signed_manifest(model, ec.generate_private_key(ec.SECP256R1()))
        (model / ".signatures" / "manifest.sig").write_bytes(_sign(kind, manifest, encoding))
        return model, manifest

    return make


def _cats(result) -> list[tuple[str, str]]:
    return [(f.severity.value, f.category) for f in result.findings]


@pytest.mark.parametrize("encoding", ["base64", "raw"])
@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519ph", "rsa-2048-pkcs1v15"])
def test_manifest_signed_by_each_key_type(manifest_model, tmp_path: Path, kind: str, encoding: str) -> None:
    model, _ = manifest_model(kind, encoding)
    pub, other = tmp_path / "cosign.pub", tmp_path / "other.pub"
    pub.write_bytes(_pem(_key(kind, 0)))
    other.write_bytes(_pem(_key(kind, 1)))
    ok = verify_model_signature(model, pub)
    assert ok.verified and _cats(ok) == [("info", "signature_verified")]
    assert ok.method == f"cosign sign-blob ({KEYS[kind][2]}, {encoding})"
    assert f"a valid {ok.method} signature by cosign.pub" in ok.findings[0].detail

    wrong = verify_model_signature(model, other)
    assert wrong.signature_valid is False and _cats(wrong) == [("critical", "signature_invalid")]
    assert wrong.reason == "the signature does not match the signed file under the given public key"

    path = model / ".signatures" / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"model_id"', b'"model_id" ', 1))
    tampered = verify_model_signature(model, pub)
    assert tampered.signature_valid is False and _cats(tampered) == [("critical", "signature_invalid")]
    assert "Traceback" not in tampered.findings[0].detail and "Error" not in tampered.findings[0].title


def test_manifest_with_unsupported_key_is_medium(manifest_model, tmp_path: Path) -> None:
    model, _ = manifest_model("ecdsa-p256", "base64")
    pub = tmp_path / "ed448.pub"
    pub.write_bytes(_pem(ed448.Ed448PrivateKey.generate()))
    result = verify_model_signature(model, pub)
    assert result.signature_valid is None and not result.verified
    assert _cats(result) == [("medium", "signature_unsupported")]
    assert result.findings[0].title == ("m-ecdsa-p256-base64: signature .signatures/manifest.sig cannot be checked: "
                                        "key type Ed448 is not supported (cosign signs with ECDSA, Ed25519 or RSA "
                                        "keys)")  # fmt: skip


def test_raw_signature_of_flipped_weights_names_the_file(manifest_model, tmp_path: Path) -> None:
    model, _ = manifest_model("ecdsa-p384", "raw")
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(_pem(_key("ecdsa-p384", 0)))
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    result = verify_model_signature(model, pub)
    assert result.signature_valid is True and not result.verified
    assert [(f.category, f.evidence["path"]) for f in result.findings] == [("signature_invalid", "model.safetensors")]
