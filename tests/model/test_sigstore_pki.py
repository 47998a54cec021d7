"""The throw-away Sigstore PKI (tests/model/sigstore_pki.py): its bundles verify offline with sigstore-python and
model_signing against its trusted root, and every tampering, wrong identity or foreign root is refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import PrecertificateSignedCertificateTimestamps
from cryptography.x509.certificate_transparency import LogEntryType
from model_signing import hashing, verifying
from sigstore.errors import VerificationError
from sigstore.models import Bundle, ClientTrustConfig, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier, policy

from tests.model import sigstore_pki as pki

ALICE = "alice@example.com"
ISSUER = "https://issuer.example.com"
WORKFLOW = "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1"
GITHUB = "https://token.actions.githubusercontent.com"
STATEMENT = json.dumps({
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
    "predicateType": "https://example.com/predicate/v1",
    "predicate": {"note": "signed by the throw-away PKI"},
}).encode()  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def no_network():
    """Everything here (the module's trust roots included) must work without a network: any connection or name
    lookup fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:]!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> pki.Trust:
    return pki.make_trust(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def other_trust(tmp_path_factory) -> pki.Trust:
    return pki.make_trust(tmp_path_factory.mktemp("other"))


def verifier(trust: pki.Trust) -> Verifier:
    return Verifier(trusted_root=TrustedRoot.from_file(str(trust.trusted_root)))


def load(bundle: dict) -> Bundle:
    return Bundle.from_json(json.dumps(bundle))


def verify_dsse(trust: pki.Trust, bundle: dict, identity: str = ALICE, issuer: str = ISSUER) -> tuple[str, bytes]:
    return verifier(trust).verify_dsse(load(bundle), policy.Identity(identity=identity, issuer=issuer))


def test_network_guard_is_active() -> None:
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)


def test_trust_files_load_with_sigstore(trust) -> None:
    root = TrustedRoot.from_file(str(trust.trusted_root))
    assert root._inner.media_type == pki.TRUSTED_ROOT_V01
    assert root.get_fulcio_certs() == [trust.ca_cert]
    config = ClientTrustConfig.from_json(trust.trust_config.read_text())
    assert config.trusted_root._inner == root._inner
    assert config.signing_config._inner.media_type == pki.SIGNING_CONFIG_V02
    assert base64.b64decode(json.loads(trust.trusted_root.read_text())["tlogs"][0]["logId"]["keyId"]) == pki.key_id(
        trust.rekor_key.public_key()
    )


def test_leaf_carries_one_precert_sct_from_the_ct_key(trust) -> None:
    cert = load(pki.sign_dsse(trust, STATEMENT)).signing_certificate
    scts = cert.extensions.get_extension_for_class(PrecertificateSignedCertificateTimestamps).value
    assert len(scts) == 1 and scts[0].entry_type == LogEntryType.PRE_CERTIFICATE
    assert scts[0].log_id == pki.key_id(trust.ct_key.public_key())
    assert scts[0].timestamp == cert.not_valid_before_utc.replace(tzinfo=None)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["ca-p256", "ca-p384"])
@pytest.mark.parametrize(("identity", "issuer"), [(ALICE, ISSUER), (WORKFLOW, GITHUB)], ids=["email", "uri"])
def test_dsse_bundle_verifies_offline(tmp_path, curve, identity, issuer) -> None:
    trust = pki.make_trust(tmp_path, ca_curve=curve)
    bundle = pki.sign_dsse(trust, STATEMENT, identity=identity, issuer=issuer)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert verify_dsse(trust, bundle, identity, issuer) == (pki.IN_TOTO, STATEMENT)


@pytest.mark.parametrize(("log_index", "tree_size"), [(0, 1), (1, 2), (0, 4), (3, 4), (4, 5), (8, 13), (12, 13)])
def test_inclusion_proof_for_any_tree_shape(trust, log_index, tree_size) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT, log_index=log_index, tree_size=tree_size)
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    assert (proof["logIndex"], proof["treeSize"]) == (str(log_index), str(tree_size))
    assert verify_dsse(trust, bundle)[1] == STATEMENT


def test_dsse_tampered_payload_is_refused(trust) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(STATEMENT.replace(b"ab", b"ac", 1)).decode()
    with pytest.raises(VerificationError, match="DSSE: invalid signature"):
        verify_dsse(trust, bundle)


@pytest.mark.parametrize(
    ("identity", "issuer", "message"),
    [("mallory@example.com", ISSUER, "SANs do not match"), (ALICE, GITHUB, "OIDCIssuer does not match")],
    ids=["identity", "issuer"],
)
def test_dsse_wrong_identity_or_issuer_is_refused(trust, identity, issuer, message) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT)
    with pytest.raises(VerificationError, match=message):
        verify_dsse(trust, bundle, identity, issuer)


def test_dsse_other_trust_root_is_refused(trust, other_trust) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT)
    with pytest.raises(VerificationError, match="failed to build timestamp certificate chain"):
        verify_dsse(other_trust, bundle)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tlog": False}, "expected exactly one log entry"),
        ({"inclusion_proof": False}, "inclusionProof"),
        ({"inclusion_promise": False}, "inclusion promise or signed timestamp"),
    ],
    ids=["no-tlog-entry", "no-inclusion-proof", "no-inclusion-promise"],
)
def test_dsse_incomplete_log_evidence_is_refused(trust, options, message) -> None:
    with pytest.raises(InvalidBundle, match=message):
        load(pki.sign_dsse(trust, STATEMENT, **options))


def test_dsse_without_sct_is_refused(trust) -> None:
    with pytest.raises(VerificationError, match="does not contain a signed certificate timestamp"):
        verify_dsse(trust, pki.sign_dsse(trust, STATEMENT, sct=False))


def test_dsse_forged_log_entry_is_refused(trust) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT)
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 60)  # still inside the leaf's validity
    with pytest.raises(VerificationError, match="SET: invalid inclusion promise"):
        verify_dsse(trust, bundle)
    bundle = pki.sign_dsse(trust, STATEMENT)
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(VerificationError, match="inclusion proof contains invalid root hash"):
        verify_dsse(trust, bundle)
    bundle = pki.sign_dsse(trust, STATEMENT)
    checkpoint = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
    checkpoint["envelope"] = checkpoint["envelope"].replace("\n7\n", "\n8\n", 1)
    with pytest.raises(VerificationError, match="checkpoint: invalid signature"):
        verify_dsse(trust, bundle)


def test_dsse_log_entry_of_another_envelope_is_refused(trust) -> None:
    bundle = pki.sign_dsse(trust, STATEMENT)
    other = pki.sign_dsse(trust, STATEMENT)  # same statement, another key: the entry names other signatures
    bundle["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]
    with pytest.raises(VerificationError, match="log entry signatures do not match bundle"):
        verify_dsse(trust, bundle)


def test_dsse_signed_outside_ca_validity_is_refused(tmp_path) -> None:
    now = dt.datetime.now(dt.UTC)
    trust = pki.make_trust(tmp_path, ca_not_before=now - dt.timedelta(days=30), ca_not_after=now - dt.timedelta(days=1))
    assert verify_dsse(trust, pki.sign_dsse(trust, STATEMENT, signed_at=now - dt.timedelta(days=2)))[1] == STATEMENT
    with pytest.raises(VerificationError, match="failed to build timestamp certificate chain"):
        verify_dsse(trust, pki.sign_dsse(trust, STATEMENT, signed_at=now))


def test_blob_bundle_verifies_offline(trust, other_trust) -> None:
    blob = b"model weights, or any artifact\n"
    bundle = pki.sign_blob_keyless(trust, blob, identity=WORKFLOW, issuer=GITHUB)
    assert "messageSignature" in bundle and "dsseEnvelope" not in bundle
    identity = policy.Identity(identity=WORKFLOW, issuer=GITHUB)
    verifier(trust).verify_artifact(blob, load(bundle), identity)
    with pytest.raises(VerificationError, match="Bundle message digest mismatch"):
        verifier(trust).verify_artifact(blob + b"!", load(bundle), identity)
    with pytest.raises(VerificationError, match="SANs do not match"):
        verifier(trust).verify_artifact(blob, load(bundle), policy.Identity(identity=ALICE, issuer=GITHUB))
    with pytest.raises(VerificationError, match="failed to build timestamp certificate chain"):
        verifier(other_trust).verify_artifact(blob, load(bundle), identity)
    with pytest.raises(InvalidBundle, match="expected exactly one log entry"):
        load(pki.sign_blob_keyless(trust, blob, tlog=False))


# --- model_signing: the model.sig `model_signing sign sigstore` writes, verified by model_signing itself ----------


def ms_verify(trust: pki.Trust, model: Path, signature: Path, identity: str = WORKFLOW, issuer: str = GITHUB,
              shard_size: int | None = None) -> None:  # fmt: skip
    config = verifying.Config().use_sigstore_verifier(identity=identity, oidc_issuer=issuer,
                                                      trust_config=trust.trust_config)  # fmt: skip
    if shard_size is not None:
        # model_signing 1.1.1 records shard_size as a float (a protobuf Struct number) and cannot guess the
        # sharded config back from it (TypeError in file_shard._endpoints): name it, as its CLI user would.
        config.set_hashing_config(hashing.Config().use_shard_serialization(shard_size=shard_size))
    config.verify(model, signature)


@pytest.fixture
def signed_model(small_model, trust) -> tuple[Path, Path]:
    model = small_model("m")
    signature = model / "model.sig"
    pki.sign_model_sigstore(trust, model, signature, identity=WORKFLOW, issuer=GITHUB)
    return model, signature


def test_model_signature_verifies_offline(signed_model, trust) -> None:
    model, signature = signed_model
    ms_verify(trust, model, signature)
    bundle = json.loads(signature.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert sorted(r["name"] for r in statement["predicate"]["resources"]) == sorted(
        p.name for p in model.iterdir() if p.name != "model.sig"
    )
    assert "model.sig" in statement["predicate"]["serialization"]["ignore_paths"]


def test_model_signature_kept_outside_the_folder(small_model, trust, tmp_path) -> None:
    model = small_model("m")
    signature = tmp_path / "elsewhere" / "m.sigstore.json"
    signature.parent.mkdir()
    pki.sign_model_sigstore(trust, model, signature, identity=ALICE, issuer=ISSUER)
    ms_verify(trust, model, signature, ALICE, ISSUER)


def test_sharded_model_signature_pinpoints_the_shard(small_model, trust) -> None:
    model = small_model("m")
    signature = model / "model.sig"
    pki.sign_model_sigstore(trust, model, signature, identity=WORKFLOW, issuer=GITHUB, shard_size=64)
    statement = json.loads(base64.b64decode(json.loads(signature.read_text())["dsseEnvelope"]["payload"]))
    assert statement["predicate"]["serialization"]["method"] == "shards"
    ms_verify(trust, model, signature, shard_size=64)
    data = bytearray((model / "model.safetensors").read_bytes())
    data[70] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Hash mismatch for .{0,2}model\.safetensors:64:128"):
        ms_verify(trust, model, signature, shard_size=64)


def test_ignored_paths_are_left_out_of_the_signature(small_model, trust) -> None:
    model = small_model("m")
    (model / "notes").mkdir()
    (model / "notes" / "review.txt").write_text("draft\n")
    signature = model / "model.sig"
    pki.sign_model_sigstore(trust, model, signature, identity=WORKFLOW, issuer=GITHUB, ignore_paths=[Path("notes")])
    (model / "notes" / "review.txt").write_text("edited after signing\n")
    ms_verify(trust, model, signature)


def test_model_flipped_byte_is_refused(signed_model, trust) -> None:
    model, signature = signed_model
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Hash mismatch for 'model\.safetensors'"):
        ms_verify(trust, model, signature)


def test_model_added_file_is_refused(signed_model, trust) -> None:
    model, signature = signed_model
    (model / "extra.bin").write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"Extra files found in model 'm': extra\.bin"):
        ms_verify(trust, model, signature)


def test_model_wrong_identity_or_root_is_refused(signed_model, trust, other_trust) -> None:
    model, signature = signed_model
    with pytest.raises(VerificationError, match="SANs do not match"):
        ms_verify(trust, model, signature, identity="https://github.com/evil/models/.github/workflows/x.yml@main")
    with pytest.raises(VerificationError, match="OIDCIssuer does not match"):
        ms_verify(trust, model, signature, issuer=ISSUER)
    with pytest.raises(VerificationError, match="failed to build timestamp certificate chain"):
        ms_verify(other_trust, model, signature)


def test_model_signature_without_tlog_entry_is_refused(small_model, trust) -> None:
    model = small_model("m")
    signature = model / "model.sig"
    pki.sign_model_sigstore(trust, model, signature, identity=WORKFLOW, issuer=GITHUB, tlog=False)
    assert json.loads(signature.read_text())["verificationMaterial"]["tlogEntries"] == []
    with pytest.raises(InvalidBundle, match="expected exactly one log entry"):
        ms_verify(trust, model, signature)


def test_statement_is_the_one_model_signing_signs(small_model, trust, monkeypatch) -> None:
    """model_signing's own Sigstore signing path (signing.Config -> sign_sigstore.Signer.sign), with only the
    Fulcio/Rekor round trip replaced by this PKI, signs exactly the statement ``model_statement`` builds."""
    from contextlib import contextmanager

    from model_signing import signing
    from model_signing._signing import sign_sigstore

    seen: list[bytes] = []

    class OfflineSigner:
        def sign_dsse(self, statement):
            seen.append(statement._contents)
            return load(pki.sign_dsse(trust, statement._contents, identity=WORKFLOW, issuer=GITHUB))

    class OfflineContext:
        @classmethod
        def from_trust_config(cls, config):
            return cls()

        @contextmanager
        def signer(self, token):
            yield OfflineSigner()

    monkeypatch.setattr(sign_sigstore.sigstore_signer, "SigningContext", OfflineContext)
    monkeypatch.setattr(sign_sigstore.sigstore_oidc, "Issuer", lambda url: None)
    monkeypatch.setattr(sign_sigstore.sigstore_oidc, "IdentityToken", lambda raw, client_id: raw)
    model = small_model("m")
    signature = model / "model.sig"
    hashing_config = hashing.Config().set_ignored_paths(paths=[Path("model.sig")], ignore_git_paths=True)
    signing.Config().use_sigstore_signer(identity_token="token", oidc_issuer=ISSUER, trust_config=trust.trust_config
                                         ).set_hashing_config(hashing_config).sign(model, signature)  # fmt: skip
    assert seen == [pki.model_statement(model, signature)]
    ms_verify(trust, model, signature)
