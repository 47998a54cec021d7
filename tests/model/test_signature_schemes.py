"""Every signing scheme x every change to the model: the one verifier's outcome, and model_signing's own verdict.

Signatures are made by the real model_signing API (key, certificate; Sigstore through our own test PKI) and as
cosign writes them (:mod:`tests.model.signing_tools`). For each scheme: a clean copy is ``verified``; a flipped
tensor byte, an edited config, an added and a removed file are ``invalid`` naming the file; wrong trust material
is ``invalid`` (never an exception's text); and wherever model_signing can verify, its verdict is the same.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.model import signing_tools as st
from tests.model.sigstore_pki import make_trust, sign_blob_keyless, sign_model_sigstore
from workbench.model.signatures import verify_model_signature
from workbench.model.trust import Trust

IDENTITY, ISSUER = "release@example.com", "https://issuer.example.com"


@pytest.fixture(autouse=True)
def no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network use during a signature check")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@dataclass
class Signed:
    """A signed model: the folder, the signature, the trust to verify with, another trust that must fail, and
    model_signing's own verification of the folder (None for cosign)."""

    model: Path
    sig: Path
    trust: Trust
    wrong: Trust
    library: Callable[[Trust], bool] | None


def _ms_key(model: Path, keys: Path, curve: str = "p256", shard: int | None = None) -> Signed:
    _, priv, pub = st.new_key(keys, "signer", curve)
    _, _, other = st.new_key(keys, "other", curve)
    sig = st.ms_sign_key(model, priv, model / "model.sig", shard_size=shard)
    return Signed(model, sig, Trust(key=pub), Trust(key=other),
                  lambda t: st.library_verdict(model, sig, key=t.key, shard_size=shard))  # fmt: skip


def _ms_cert(model: Path, keys: Path, shard: int | None = None) -> Signed:
    pki, other = st.make_pki(keys / "pki"), st.make_pki(keys / "other-pki")
    sig = st.ms_sign_certificate(model, pki, model / "model.sig", shard_size=shard)
    return Signed(model, sig, Trust(ca_bundle=pki["ca"]), Trust(ca_bundle=other["ca"]),
                  lambda t: st.library_verdict(model, sig, ca=t.ca_bundle, shard_size=shard))  # fmt: skip


def _ms_sigstore(model: Path, keys: Path) -> Signed:
    trust, other = make_trust(keys / "root"), make_trust(keys / "other-root")
    sig = model / "model.sig"
    sign_model_sigstore(trust, model, sig, identity=IDENTITY, issuer=ISSUER)
    return Signed(model, sig, Trust(trusted_root=trust.trusted_root), Trust(trusted_root=other.trusted_root),
                  lambda t: st.library_verdict(model, sig, trust_config=Path(str(t.trusted_root).replace(
                      "trusted_root.json", "trust_config.json")), identity=IDENTITY, issuer=ISSUER))  # fmt: skip


def _cosign(model: Path, keys: Path, form: str, curve: str = "p256") -> Signed:
    key, _, pub = st.new_key(keys, "cosign", curve)
    _, _, other = st.new_key(keys, "other", curve)
    blob = st.write_manifest(model)
    name, data = {
        "b64": ("manifest.sig", lambda: __import__("base64").b64encode(st.cosign_signature(key, blob))),
        "raw": ("manifest.sig", lambda: st.cosign_signature(key, blob)),
        "old-bundle": ("manifest.sig", lambda: st.cosign_old_bundle(key, blob)),
        "new-bundle": ("manifest.sigstore.json", lambda: st.cosign_new_bundle(key, blob)),
    }[form]
    sig = model / ".signatures" / name
    sig.write_bytes(data())
    return Signed(model, sig, Trust(key=pub), Trust(key=other), None)


def _cosign_keyless(model: Path, keys: Path) -> Signed:
    import json

    trust, other = make_trust(keys / "root"), make_trust(keys / "other-root")
    blob = st.write_manifest(model)
    sig = model / ".signatures" / "manifest.sigstore.json"
    sig.write_text(json.dumps(sign_blob_keyless(trust, blob, identity=IDENTITY, issuer=ISSUER)))
    return Signed(model, sig, Trust(trusted_root=trust.trusted_root), Trust(trusted_root=other.trusted_root), None)


SCHEMES: dict[str, Callable[[Path, Path], Signed]] = {
    "model_signing key P-256": lambda m, k: _ms_key(m, k, "p256"),
    "model_signing key P-384": lambda m, k: _ms_key(m, k, "p384"),
    "model_signing key P-521": lambda m, k: _ms_key(m, k, "p521"),
    "model_signing key sharded": lambda m, k: _ms_key(m, k, "p256", shard=1024),
    "model_signing certificate": _ms_cert,
    "model_signing certificate sharded": lambda m, k: _ms_cert(m, k, shard=1024),
    "model_signing sigstore": _ms_sigstore,
    "cosign sign-blob base64 P-256": lambda m, k: _cosign(m, k, "b64"),
    "cosign sign-blob raw P-256": lambda m, k: _cosign(m, k, "raw"),
    "cosign sign-blob base64 P-384": lambda m, k: _cosign(m, k, "b64", "p384"),
    "cosign old bundle": lambda m, k: _cosign(m, k, "old-bundle"),
    "cosign new bundle": lambda m, k: _cosign(m, k, "new-bundle"),
    "cosign new bundle keyless": _cosign_keyless,
}


def _flip_tensor_byte(m: Path) -> str:
    data = bytearray((m / "model.safetensors").read_bytes())
    data[-3] ^= 0x01
    (m / "model.safetensors").write_bytes(bytes(data))
    return "model.safetensors"


def _edit_config(m: Path) -> str:
    (m / "config.json").write_text('{"model_type": "bert", "hidden_size": 8, "vocab_size": 11}')
    return "config.json"


def _add_file(m: Path) -> str:
    (m / "modeling_extra.py").write_text("import os\n")
    return "modeling_extra.py"


def _remove_file(m: Path) -> str:
    (m / "tokenizer.json").unlink()
    return "tokenizer.json"


CHANGES = {"flipped tensor byte": _flip_tensor_byte, "edited config": _edit_config, "added file": _add_file,
           "removed file": _remove_file}  # fmt: skip
STATUS = {"flipped tensor byte": "modified", "edited config": "modified", "added file": "unsigned",
          "removed file": "missing"}  # fmt: skip


def _signed(name: str, small_model, tmp_path: Path) -> Signed:
    return SCHEMES[name](small_model("m"), tmp_path / "keys")


def _texts(result) -> str:
    return " ".join(f"{f.title} {f.detail}" for f in result.findings)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_clean_copy_is_verified(scheme: str, small_model, tmp_path: Path) -> None:
    s = _signed(scheme, small_model, tmp_path)
    result = verify_model_signature(s.model, s.trust)
    assert result.outcome == "verified", _texts(result)
    assert [(f.severity.value, f.category) for f in result.findings] == [("info", "signature_verified")]
    assert result.files and all(f.status == "ok" for f in result.files)
    assert result.method and result.signer
    if s.library is not None:
        assert s.library(s.trust) is True


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_changed_model_is_invalid_naming_the_file(scheme: str, change: str, small_model, tmp_path: Path) -> None:
    s = _signed(scheme, small_model, tmp_path)
    changed = CHANGES[change](s.model)
    result = verify_model_signature(s.model, s.trust)
    assert result.outcome == "invalid"
    bad = {f.path.split(":", 1)[0]: f.status for f in result.files if f.status != "ok"}
    assert bad == {changed: STATUS[change]}
    assert {(f.severity.value, f.category) for f in result.findings} == {("critical", "signature_invalid")}
    assert all(changed in f.title for f in result.findings)
    if s.library is not None:
        assert s.library(s.trust) is False


@pytest.mark.parametrize("scheme", SCHEMES)
def test_wrong_trust_material_is_invalid_in_words(scheme: str, small_model, tmp_path: Path) -> None:
    s = _signed(scheme, small_model, tmp_path)
    result = verify_model_signature(s.model, s.wrong)
    assert result.outcome == "invalid" and result.signature_valid is False
    [finding] = result.findings
    assert (finding.severity.value, finding.category) == ("critical", "signature_invalid")
    for leak in ("NoneType", "Traceback", "object has no attribute", "Error(", "b'"):
        assert leak not in finding.title + finding.detail
    if s.library is not None:
        assert s.library(s.wrong) is False


def test_expired_certificate_verifies_as_model_signing_does_and_says_so(small_model, tmp_path: Path) -> None:
    import datetime as dt

    model = small_model("m")
    pki = st.make_pki(tmp_path / "pki", leaf_not_before=dt.datetime(2021, 1, 1, tzinfo=dt.UTC), leaf_days=365)
    sig = st.ms_sign_certificate(model, pki, model / "model.sig")
    result = verify_model_signature(model, Trust(ca_bundle=pki["ca"]))
    assert st.library_verdict(model, sig, ca=pki["ca"]) is True
    assert result.outcome == "verified"
    assert result.signed_at == "2021-01-01T00:00:00Z" and result.signer == "release@example.com"
    assert "expired on 2022-01-01" in result.findings[0].detail


def test_certificate_not_for_signing_is_invalid_as_model_signing_says(small_model, tmp_path: Path) -> None:
    model = small_model("m")
    pki = st.make_pki(tmp_path / "pki", code_signing=False)
    sig = st.ms_sign_certificate(model, pki, model / "model.sig")
    result = verify_model_signature(model, Trust(ca_bundle=pki["ca"]))
    assert st.library_verdict(model, sig, ca=pki["ca"]) is False
    assert result.outcome == "invalid" and "is not allowed to sign" in result.reason


def test_sigstore_expected_identity_enforced(small_model, tmp_path: Path) -> None:
    s = _ms_sigstore(small_model("m"), tmp_path / "keys")
    root = s.trust.trusted_root
    ok = verify_model_signature(s.model, Trust(trusted_root=root, identity=IDENTITY, issuer=ISSUER))
    assert ok.outcome == "verified" and ok.signer == IDENTITY and ok.issuer == ISSUER
    assert ok.tlog == "present" and ok.signed_at and ok.signed_at_source == "transparency log, verified"
    other = verify_model_signature(s.model, Trust(trusted_root=root, identity="mallory@example.com", issuer=ISSUER))
    assert other.outcome == "invalid"
    reported = verify_model_signature(s.model, Trust(trusted_root=root))
    assert reported.outcome == "verified" and "no expected identity given: the signer is release@example.com" in (
        reported.findings[0].detail)  # fmt: skip
