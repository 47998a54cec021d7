"""Offline signature verification: cosign-style manifests and OpenSSF model-signing bundles, signed in the test."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from workbench.model.plots import render_signature
from workbench.model.signatures import SignatureError, verify_cosign_blob, verify_model_signature

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


def cats(result) -> list[tuple[str, str, str]]:
    return [(f.severity.value, f.category, f.title) for f in result.findings]


@pytest.fixture
def signed(small_model, ec_keys, write_signed_manifest) -> tuple[Path, Path]:
    key, _, pub = ec_keys
    model = small_model("m")
    write_signed_manifest(model, key)
    return model, pub


def test_valid_manifest_signature(signed) -> None:
    model, pub = signed
    result = verify_model_signature(model, pub, display_prefix="models/suspect/m")
    assert result.verified and result.scheme == "cosign-manifest"
    assert cats(result) == [("info", "signature_verified", "m: signature verified, 3 files match")]
    assert result.findings[0].evidence == {"path": "models/suspect/m/.signatures/manifest.sig", "key": "cosign.pub",
                                           "scheme": "cosign-manifest", "signer": "cosign.pub",
                                           "method": "cosign sign-blob (ecdsa-p-256-sha256, base64)"}  # fmt: skip
    assert [(f.path, f.status) for f in result.files] == [("config.json", "ok"), ("model.safetensors", "ok"),
                                                          ("tokenizer.json", "ok")]  # fmt: skip
    assert "Signature verified" in render_signature(result)[0]


def test_one_byte_flipped_in_weights(signed) -> None:
    model, pub = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-3] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    result = verify_model_signature(model, pub)
    assert result.signature_valid is True and not result.verified
    assert cats(result) == [("critical", "signature_invalid", "m: model.safetensors does not match its signed digest")]
    assert result.findings[0].evidence["path"] == "model.safetensors"
    assert result.findings[0].atlas == ("AML.T0010.003", "AML.T0018.000")


def test_added_and_missing_files(signed) -> None:
    model, pub = signed
    (model / "optimizer.pkl").write_bytes(b"\x80\x02.")
    (model / "tokenizer.json").unlink()
    (model / "COMPROMISED.txt").write_text("COMPROMISED - Incident X - 2026-01-01T00:00:00Z\n")
    result = verify_model_signature(model, pub)
    assert [t for _, _, t in cats(result)] == ["m: optimizer.pkl is not covered by the signature",
                                               "m: tokenizer.json is signed but missing"]  # fmt: skip


def test_manifest_edited_after_signing(signed) -> None:
    model, pub = signed
    path = model / ".signatures" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["files"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    result = verify_model_signature(model, pub)
    assert result.signature_valid is False and result.files == []
    assert result.reason == "the signature does not match the signed file under the given public key"
    assert [c[:2] for c in cats(result)] == [("critical", "signature_invalid")]


def test_wrong_key(signed, tmp_path: Path) -> None:
    model, _ = signed
    other = tmp_path / "other.pub"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    result = verify_model_signature(model, other)
    assert result.signature_valid is False
    assert cats(result)[0][2] == ("m: signature .signatures/manifest.sig is invalid: the signature does not match "
                                  "the signed file under the given public key")  # fmt: skip


def test_missing_signature_and_unsigned(signed, small_model) -> None:
    model, pub = signed
    (model / ".signatures" / "manifest.sig").unlink()
    result = verify_model_signature(model, pub)
    assert cats(result) == [("critical", "model_unsigned", "m: manifest present but its signature "
                                                            ".signatures/manifest.sig is missing")]  # fmt: skip
    bare = verify_model_signature(small_model("bare"), pub)
    assert bare.scheme == "none" and cats(bare) == [("critical", "model_unsigned", "bare: model is unsigned")]


def test_no_key_given(signed) -> None:
    model, _ = signed
    result = verify_model_signature(model, None)
    assert result.signature_valid is None
    assert cats(result) == [("medium", "signature_unverified",
                             "m: signature .signatures/manifest.sig not verified (no public key given)")]  # fmt: skip


@pytest.mark.parametrize(
    ("sig", "key_kind", "reason"),
    [
        (b"not base64 !!", "ec", "the signature does not match the signed file under the given public key"),
        (b"", "ec", "the signature is empty"),
        (
            base64.b64encode(b"\x30\x03\x02\x01\x01"),
            "ec",
            "the signature does not match the signed file under the given public key",
        ),
        (b"AAAA", "ed25519", "the signature does not match the signed file under the given public key"),
        (b"AAAA", "garbage", "the public key is not a PEM public key"),
    ],
)
def test_verify_cosign_blob_rejects(sig: bytes, key_kind: str, reason: str) -> None:
    if key_kind == "ec":
        pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
    elif key_kind == "ed25519":
        pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
    else:
        pem = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(SignatureError) as err:
        verify_cosign_blob(b"blob", sig, pem)
    assert err.value.reason.startswith(reason)


def test_cosign_signature_with_trailing_newline(ec_keys, cosign_sign) -> None:
    key, _, pub = ec_keys
    verify_cosign_blob(b"manifest", cosign_sign(key, b"manifest") + b"\n", pub.read_bytes())


# ------------------------------------------------------------------ OpenSSF model signing


def sign_bundle(model: Path, private_key: Path) -> Path:
    sig = model / "model.sig"
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key)
    config.set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]))
    config.sign(model, sig)
    return sig


def test_model_signing_bundle_valid(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    model = small_model("m")
    sign_bundle(model, priv)
    result = verify_model_signature(model, pub)
    assert result.scheme == "model-signing" and result.verified
    assert cats(result) == [("info", "signature_verified", "m: signature verified, 3 files match")]


def test_model_signing_bundle_tampered_file(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    model = small_model("m")
    sign_bundle(model, priv)
    (model / "config.json").write_text("{}")
    result = verify_model_signature(model, pub)
    assert result.signature_valid is True
    assert cats(result) == [("critical", "signature_invalid", "m: config.json does not match its signed digest")]


def test_model_signing_bundle_wrong_key_and_forged_payload(small_model, ec_keys, tmp_path: Path, capsys) -> None:
    _, priv, pub = ec_keys
    model = small_model("m")
    sig = sign_bundle(model, priv)
    other = tmp_path / "other.pub"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    assert verify_model_signature(model, other).reason == ("the bundle was signed with another key than other.pub "
                                                           "(its key hint differs)")  # fmt: skip
    bundle = json.loads(sig.read_text())
    del bundle["verificationMaterial"]["publicKey"]["hint"]  # no key hint: the ECDSA check itself must fail
    sig.write_text(json.dumps(bundle))
    unhinted = verify_model_signature(model, other)
    assert unhinted.reason == "the envelope's signature does not verify under other.pub"
    assert capsys.readouterr().out == ""  # the library's print() is kept off stdout (--json)
    assert verify_model_signature(model, pub).verified
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    forged = verify_model_signature(model, pub)
    assert forged.signature_valid is False and forged.files == []
    assert forged.findings[0].category == "signature_invalid"


def test_model_signing_bundle_garbage(small_model, ec_keys) -> None:
    _, _, pub = ec_keys
    model = small_model("m")
    (model / "model.sig").write_text('{"mediaType": 3}')
    result = verify_model_signature(model, pub)
    assert result.signature_valid is False and result.reason == "the bundle has no verification material"
    assert cats(result) == [("critical", "signature_invalid", "m: signature model.sig is invalid: the bundle has no "
                                                              "verification material")]  # fmt: skip


# ------------------------------------------------------------------ the generated sample cases


@pytest.mark.skipif(not (SAMPLES / "tampered-weights").is_dir(), reason="evidence-samples not generated")
def test_sample_cases() -> None:
    case = SAMPLES / "tampered-weights"
    tampered = verify_model_signature(case / "models/suspect/sentiment-model-v2.1", case / "keys/cosign.pub")
    assert tampered.signature_valid is True
    assert [f.evidence["path"] for f in tampered.findings] == ["model.safetensors", "optimizer.pkl"]
    assert {f.category for f in tampered.findings} == {"signature_invalid"}
    clean = SAMPLES / "false-alarm"
    ok = verify_model_signature(clean / "models/suspect/intent-classifier-v1.0", clean / "keys/cosign.pub")
    assert ok.verified and [f.category for f in ok.findings] == ["signature_verified"]
