"""The one verifier wherever the signature sits, whatever trust material is missing, and in every command that
uses it: ``verify-model``, ``diff-model`` without a reference, the investigation's model analysis, rollback's
version check and the monitor."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.model import signing_tools as st
from tests.model.sigstore_pki import make_trust, sign_blob_keyless, sign_model_sigstore
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.cli import cli
from workbench.collect import collect_evidence
from workbench.model.signatures import verify_model_signature
from workbench.model.trust import Trust

IDENTITY, ISSUER = "release@example.com", "https://issuer.example.com"


def outcome(result) -> tuple[str, list[tuple[str, str]]]:
    return result.outcome, [(f.severity.value, f.category) for f in result.findings]


@pytest.mark.parametrize("placement", ["model.sig", ".signatures/model.sig", "model.sigstore.json",
                                       "sigs/release.sig", "OUTSIDE"])  # fmt: skip
def test_model_signing_signature_wherever_it_sits(placement: str, small_model, tmp_path: Path) -> None:
    model = small_model("m")
    _, priv, pub = st.new_key(tmp_path / "keys", "signer")
    sig = tmp_path / "elsewhere" / "m.sig" if placement == "OUTSIDE" else model / placement
    st.ms_sign_key(model, priv, sig)
    assert st.library_verdict(model, sig, key=pub)
    trust = Trust(key=pub, signature=sig if placement == "OUTSIDE" else None)
    result = verify_model_signature(model, trust)
    assert outcome(result) == ("verified", [("info", "signature_verified")])
    assert result.signature == (sig.name if placement == "OUTSIDE" else placement)
    if placement == "OUTSIDE":  # without --signature the folder is unsigned
        assert outcome(verify_model_signature(model, Trust(key=pub))) == ("unsigned", [("critical", "model_unsigned")])


@pytest.mark.parametrize("placement", ["manifest.sig", "manifest.sigstore.json", "OUTSIDE-SIG", "OUTSIDE-BOTH"])
def test_cosign_signature_wherever_it_sits(placement: str, small_model, tmp_path: Path) -> None:
    model = small_model("m")
    key, _, pub = st.new_key(tmp_path / "keys", "cosign")
    blob = st.write_manifest(model)
    data = st.cosign_new_bundle(key, blob) if placement.endswith(".json") else st.cosign_signature(key, blob)
    if placement.startswith("OUTSIDE"):
        sig = tmp_path / "release" / "manifest.sig"
        sig.parent.mkdir()
        if placement == "OUTSIDE-BOTH":
            (sig.parent / "manifest.json").write_bytes(blob)
            (model / ".signatures/manifest.json").unlink()
            (model / ".signatures").rmdir()
    else:
        sig = model / ".signatures" / placement
    sig.write_bytes(data)
    result = verify_model_signature(model, Trust(key=pub, signature=sig if placement.startswith("OUTSIDE") else None))
    assert outcome(result) == ("verified", [("info", "signature_verified")])
    assert [f.path for f in result.files] == ["config.json", "model.safetensors", "tokenizer.json"]


def test_without_trust_material_the_signer_is_named_and_the_outcome_is_medium(small_model, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    by_key, by_cert, by_sigstore, by_cosign, keyless = (small_model(n) for n in ("k", "c", "s", "b", "kl"))
    _, priv, _ = st.new_key(keys, "signer")
    st.ms_sign_key(by_key, priv, by_key / "model.sig")
    st.ms_sign_certificate(by_cert, st.make_pki(keys / "pki"), by_cert / "model.sig")
    root = make_trust(keys / "root")
    sign_model_sigstore(root, by_sigstore, by_sigstore / "model.sig", identity=IDENTITY, issuer=ISSUER)
    key, _, _ = st.new_key(keys, "cosign")
    (by_cosign / ".signatures").mkdir()
    (by_cosign / ".signatures/manifest.sig").write_bytes(st.cosign_signature(key, st.write_manifest(by_cosign)))
    blob = st.write_manifest(keyless)
    (keyless / ".signatures/manifest.sigstore.json").write_text(
        json.dumps(sign_blob_keyless(root, blob, identity=IDENTITY, issuer=ISSUER)))  # fmt: skip
    none = Trust()
    k, c, s, b, kl = (verify_model_signature(m, none) for m in (by_key, by_cert, by_sigstore, by_cosign, keyless))
    assert outcome(k) == ("unverified", [("medium", "signature_unverified")]) and k.signer.startswith("a key (hint ")
    assert "3 files match the digests it lists (unauthenticated" in k.findings[0].detail
    assert "give the signer's public key" in k.findings[0].detail
    assert "checks out under the certificate it carries, and the 3 files match" in c.findings[0].detail
    assert outcome(c) == ("unverified", [("medium", "signature_unverified")])
    assert "CN=ml-release-bot" in c.reason and c.signer == "release@example.com"
    assert outcome(s) == ("unverifiable_offline", [("medium", "signature_unverifiable_offline")])
    assert s.findings[0].title == "s: signed by release@example.com, not verifiable offline"
    assert ISSUER in s.findings[0].detail and "--trusted-root" in s.findings[0].detail and s.tlog == "present"
    assert outcome(b) == ("unverified", [("medium", "signature_unverified")]) and b.signature_valid is None
    assert outcome(kl) == ("unverifiable_offline", [("medium", "signature_unverifiable_offline")])
    assert kl.signer == IDENTITY
    (by_sigstore / "config.json").write_text("{}")  # a file changed under an unverified signer: high
    changed = verify_model_signature(by_sigstore, none)
    assert outcome(changed) == ("invalid", [("high", "signature_invalid")])
    assert "config.json" in changed.findings[0].title


def test_unsupported_schemes_and_trust_files_are_medium_not_critical(small_model, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    model = small_model("m")
    _, priv, _ = st.new_key(tmp_path / "keys", "signer")
    st.ms_sign_key(model, priv, model / "model.sig")
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    rsa_result = verify_model_signature(model, Trust(key=rsa_pub))
    assert outcome(rsa_result) == ("unsupported", [("medium", "signature_unsupported")])
    assert "ECDSA P-256/P-384/P-521" in rsa_result.reason
    not_a_root = tmp_path / "root.json"
    not_a_root.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": 5}')
    other = small_model("s")
    sign_model_sigstore(make_trust(tmp_path / "r"), other, other / "model.sig", identity=IDENTITY, issuer=ISSUER)
    bad_root = verify_model_signature(other, Trust(trusted_root=not_a_root))
    assert outcome(bad_root) == ("unsupported", [("medium", "signature_unsupported")])
    odd = small_model("o")
    (odd / "weights.sig").write_bytes(b"\x00\x01 not a signature of any known kind")
    assert outcome(verify_model_signature(odd, Trust())) == ("unsupported", [("medium", "signature_unsupported")])


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_verify_model_and_diff_model_without_reference(small_model, tmp_path: Path) -> None:
    model = small_model("m")
    _, priv, pub = st.new_key(tmp_path / "keys", "signer")
    st.ms_sign_key(model, priv, model / "model.sig")
    res = run("verify-model", str(model), "--key", str(pub), "--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["outcome"] == "verified" and doc["method"] == "model_signing key (ECDSA P-256)"
    assert [f["category"] for f in doc["findings"]] == ["signature_verified"]
    diffed = run("diff-model", str(model), "--key", str(pub))
    assert diffed.exit_code == 0 and "signature: verified" in diffed.stdout
    assert "only the signature was checked" in diffed.stdout
    unverified = run("verify-model", str(model), "--fail-on", "medium")
    assert unverified.exit_code == 1 and "signature: unverified (no public key given)" in unverified.stdout
    assert run("verify-model", str(tmp_path / "nope")).exit_code == 2


def _pair(tmp_path: Path, small_model) -> tuple[Path, Path, Path]:
    """A case holding model ``m`` as suspect and as reference (identical copies): ``(case, suspect, reference)``."""
    root = tmp_path / "case"
    (root / "models/suspect").mkdir(parents=True)
    (root / "models/reference").mkdir(parents=True)
    return root, small_model("sus").rename(root / "models/suspect/m"), small_model("ref").rename(
        root / "models/reference/m")  # fmt: skip


def _case(tmp_path: Path, small_model, sign_reference: bool) -> Path:
    root, suspect, reference = _pair(tmp_path, small_model)
    pki = st.make_pki(tmp_path / "pki")
    st.ms_sign_certificate(suspect, pki, suspect / "model.sig")
    if sign_reference:
        st.ms_sign_certificate(reference, pki, reference / "model.sig")
    (root / "keys").mkdir()
    (root / "keys/ca.pem").write_bytes(pki["ca"].read_bytes())
    return root


@pytest.mark.parametrize("sign_reference", [False, True])
def test_signed_clean_model_is_clean_in_the_case_analysis(sign_reference: bool, small_model, tmp_path: Path) -> None:
    from workbench.model.analysis import analyse

    case = Case.open(_case(tmp_path, small_model, sign_reference))
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case), reference=case.model_dir("reference")))
    assert {(f.severity.value, f.category) for f in result.findings} == {("info", "signature_verified")}
    assert result.data["signature"].signer == "release@example.com" and "keys/ca.pem" in result.inputs
    assert result.data["diff"].files.paths("modified") == [] and result.unexamined == []


def test_rollback_version_check_uses_the_same_verifier(small_model, tmp_path: Path) -> None:
    from workbench.ops.rollback import choose_version
    from workbench.ops.signing import verify_version

    pki = st.make_pki(tmp_path / "pki")
    old, new = small_model("v1"), small_model("v2")
    for version in (old, new):
        st.ms_sign_certificate(version, pki, version / "model.sig")
    (new / "config.json").write_text("{}")  # tampered after signing
    checks = [verify_version(v, Trust(ca_bundle=pki["ca"])) for v in (old, new)]
    assert [c.verified for c in checks] == [True, False]
    assert checks[1].reason.startswith("invalid: 1 file(s) do not match") and checks[0].created is not None
    assert choose_version(checks).path == old
    assert not verify_version(old, Trust()).verified  # no CA bundle: unverified, never a rollback target


def test_monitor_ignores_signing_after_baseline_and_checks_the_signature(small_model, tmp_path: Path) -> None:
    from workbench.ops.alerts import AlertDispatcher
    from workbench.ops.baseline import StateStore
    from workbench.ops.config import parse_config
    from workbench.ops.monitor import Monitor

    model = small_model("m")
    _, priv, pub = st.new_key(tmp_path / "keys", "signer")
    cfg = parse_config({"check_interval_seconds": 1, "public_key": str(pub),
                        "models": [{"id": "m", "path": str(model)}]})  # fmt: skip
    mon = Monitor(cfg, StateStore(tmp_path / "state.json"), AlertDispatcher(tmp_path / "alerts.jsonl"),
                  threading.Event())  # fmt: skip
    mon.start(background=False)
    assert [a.type for a in mon.cycle().alerts] == ["MODEL_UNSIGNED"]
    st.ms_sign_key(model, priv, model / "model.sig")  # signed after the baseline: not an unexpected file
    assert mon.cycle().alerts == []
    (model / "config.json").write_text("{}")
    assert sorted(a.type for a in mon.cycle().alerts) == ["FILE_TAMPERED", "SIGNATURE_INVALID"]


@pytest.mark.parametrize("given", ["case.yaml", "option"])
def test_signature_kept_outside_the_model_folder_is_found_from_case_yaml_or_the_option(
    given: str, small_model, tmp_path: Path
) -> None:
    from workbench.model.analysis import analyse

    root = tmp_path / "case"
    (root / "models/suspect").mkdir(parents=True)
    model = small_model("m").rename(root / "models/suspect/m")
    _, priv, pub = st.new_key(tmp_path / "own", "signer")  # the signer's key pair; only the public key is evidence
    sig = st.ms_sign_key(model, priv, root / "signatures/m.sig")
    (root / "keys").mkdir()
    (root / "keys/signer.pub").write_bytes(pub.read_bytes())
    if given == "case.yaml":
        (root / "case.yaml").write_text("signature: signatures/m.sig\n")
        params = {}
    else:
        params = {"signature": str(sig)}
    case = Case.open(root)
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case), parameters=params))
    signature = result.data["signature"]
    assert signature.outcome == "verified" and signature.signature == "signatures/m.sig"
    assert "signatures/m.sig" in result.inputs and "keys/signer.pub" in result.inputs
    (root / "case.yaml").write_text("signature: ../outside.sig\n")
    escaped = Case.open(root)
    out = analyse(AnalysisContext(case=escaped, evidence=collect_evidence(escaped)))
    assert out.data["signature"].outcome == "unsigned"
    assert any("leaves the evidence tree" in w.reason for w in out.warnings)


@pytest.mark.parametrize("signed_reference", [False, True])
def test_investigation_of_a_clean_signed_model_is_clean(signed_reference: bool, small_model, tmp_path: Path) -> None:
    """``investigate CASE --key PUB``: the key given outside the case, as the CLI's trust options pass it."""
    from workbench.commands.trust_options import trust_parameters
    from workbench.investigation import Investigation

    root, suspect, reference = _pair(tmp_path, small_model)
    _, priv, pub = st.new_key(tmp_path / "signer", "release")
    st.ms_sign_key(suspect, priv, suspect / "model.sig")
    if signed_reference:  # signed separately: the ECDSA signatures differ, the models do not
        st.ms_sign_key(reference, priv, reference / "model.sig")
        assert (suspect / "model.sig").read_bytes() != (reference / "model.sig").read_bytes()
    inv = Investigation.open(root, tmp_path / "out", parameters=trust_parameters({"key": pub}), write=False)
    c = inv.conclusions
    assert c.verdict == "clean", [r.sentence for r in c.reasons]
    model = inv.results["model"]
    assert [(f.severity.value, f.category) for f in model.findings] == [("info", "signature_verified")]
    assert inv.results["model"].data["signature"].key == str(pub.resolve())
