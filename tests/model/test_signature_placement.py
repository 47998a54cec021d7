"""Signature files are never model content: models signed with the real ``model_signing`` API (key method, EC P-256)
and compared with unsigned or separately signed copies, wherever the signature sits."""

from __future__ import annotations

import json
from pathlib import Path

import model_signing
import pytest
from click.testing import CliRunner

from workbench.checks.integrity import check_model_integrity, hash_model_dir, is_signature_file
from workbench.cli import cli
from workbench.model.dirdiff import diff_model

PLACEMENTS = ["model.sig", ".signatures/model.sig", "sigs/model.sig", "model.sigstore.json", "bundle.sigstore"]
EMPTY = {"only_in_suspect": [], "only_in_reference": [], "modified": []}


def sign(model: Path, private_key: Path, placement: str = "model.sig") -> Path:
    """What ``model_signing sign key MODEL --private_key KEY [--signature PATH]`` does (model_signing 1.1.1
    ``_cli.py``): the signature path joins the ignored paths, git paths are ignored, the bundle is written there."""
    sig = model / placement
    sig.parent.mkdir(parents=True, exist_ok=True)
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key)
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=[placement], ignore_git_paths=True)
    config.set_hashing_config(hashing)
    config.sign(model, sig)
    return sig


def library_verifies(model: Path, sig: Path, public_key: Path) -> bool:
    """model_signing's own verdict on the signed folder."""
    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(model, sig)
    except ValueError:
        return False
    return True


def file_diff(result) -> dict[str, list[str]]:
    return {k: v for k, v in result.files.to_dict().items() if k != "identical"}


MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json"]


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_signed_suspect_against_unsigned_identical_reference_is_identical(small_model, ec_keys, placement) -> None:
    _, priv, pub = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sig = sign(sus, priv, placement)
    assert library_verifies(sus, sig, pub)
    result = diff_model(sus, ref)
    assert result.findings == []
    assert file_diff(result) == EMPTY and result.files.paths("identical") == MODEL_FILES
    assert result.files.signatures == [placement]
    assert all(t.status == "identical" for t in result.tensors) and result.tensors
    if not placement.startswith(".signatures/"):
        assert [n for n in result.limits if "signature file" in n] == [
            "signature file(s) left out of the diff, not model content (as model_signing leaves the signature out "
            f"of what it signs): {placement}"
        ]
    # the reverse: an unsigned suspect against a signed reference misses nothing
    back = diff_model(ref, sus)
    assert back.findings == [] and file_diff(back) == EMPTY and back.files.signatures == []


def test_two_copies_signed_separately_are_identical(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sig_s, sig_r = sign(sus, priv), sign(ref, priv)
    assert sig_s.read_bytes() != sig_r.read_bytes()  # ECDSA signatures differ each time
    assert library_verifies(sus, sig_s, pub) and library_verifies(ref, sig_r, pub)
    result = diff_model(sus, ref)
    assert result.findings == []
    assert file_diff(result) == EMPTY and result.files.paths("identical") == MODEL_FILES
    assert "model.sig" not in hash_model_dir(sus)


def test_flipped_weight_byte_in_a_signed_copy_is_still_found(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sig = sign(sus, priv)
    sign(ref, priv)
    weights = sus / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor's data
    weights.write_bytes(bytes(data))
    assert not library_verifies(sus, sig, pub)
    result = diff_model(sus, ref)
    assert file_diff(result) == {**EMPTY, "modified": ["model.safetensors"]}
    cats = [(f.severity.value, f.category) for f in result.findings]
    assert ("critical", "model_file_tampered") in cats and ("tensor_modified" in {c for _, c in cats})


def test_added_non_signature_file_is_still_unexpected(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sign(ref, priv)
    (sus / "loader.py").write_text("print('hi')\n")
    (sus / "model.sig.bak").write_bytes(b"not a signature name")  # a suffix after .sig: model content
    sig = sign(sus, priv)
    assert library_verifies(sus, sig, pub)  # signed after the addition: model_signing covers the new files
    result = diff_model(sus, ref)
    assert file_diff(result) == {**EMPTY, "only_in_suspect": ["loader.py", "model.sig.bak"]}
    assert [(f.severity.value, f.category, f.title) for f in result.findings] == [
        ("high", "unexpected_model_file", "sus: unexpected file loader.py"),
        ("high", "unexpected_model_file", "sus: unexpected file model.sig.bak"),
    ]


def test_removed_model_file_is_still_missing(small_model, ec_keys) -> None:
    _, priv, _ = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sign(ref, priv)
    (sus / "tokenizer.json").unlink()
    sign(sus, priv)
    result = diff_model(sus, ref)
    assert file_diff(result) == {**EMPTY, "only_in_reference": ["tokenizer.json"]}
    assert [(f.severity.value, f.category) for f in result.findings] == [("critical", "model_file_missing")]


def test_baseline_listing_signature_files_misses_nothing(small_model) -> None:
    """A baseline that names signature files (a monitor state or manifest taken with them) finds none missing."""
    model = small_model("m")
    baseline = {**hash_model_dir(model), "model.sig": "0" * 64, "x.sigstore.json": "1" * 64, ".signatures/a": "2" * 64}
    assert check_model_integrity(model, baseline, model_id="m") == []
    assert check_model_integrity(model, {**baseline, "gone.bin": "3" * 64}, model_id="m")[0].category == (
        "model_file_missing"
    )


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("model.sig", True),
        ("manifest.sig", True),
        ("sub/dir/model.sig", True),
        ("model.sigstore.json", True),
        ("weights.safetensors.sigstore", True),
        (".signatures", True),
        (".signatures/manifest.json", True),
        ("model.sig.bak", False),
        ("model.SIG", False),
        ("sub/.signatures/x", False),
        ("signatures/manifest.json", False),
        ("model.safetensors", False),
        ("config.json", False),
        ("sigstore.json", False),
    ],
)
def test_is_signature_file(rel: str, expected: bool) -> None:
    assert is_signature_file(rel) is expected


def test_diff_model_cli_on_a_signed_pair(small_model, ec_keys) -> None:
    _, priv, pub = ec_keys
    sus, ref = small_model("sus"), small_model("ref")
    sign(sus, priv)
    res = CliRunner().invoke(cli, ["diff-model", str(sus), str(ref), "--json", "--key", str(pub), "--fail-on", "low"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["files"] == {**EMPTY, "identical": MODEL_FILES}
    assert [(f["severity"], f["category"]) for f in doc["findings"]] == [("info", "signature_verified")]
    sign(ref, priv)  # both signed separately, without a key: nothing at all
    res = CliRunner().invoke(cli, ["diff-model", str(sus), str(ref), "--fail-on", "info"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "files: 0 only_in_suspect, 0 only_in_reference, 0 modified, 3 identical"
