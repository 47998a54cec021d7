"""Offline verification of a model's signature, then of every file against what was signed.

Two layouts are recognised, by file name and content:

* **cosign manifest** (the original playbook's): ``.signatures/manifest.json`` listing ``{path, sha256}`` and
  ``.signatures/manifest.sig``, what ``cosign sign-blob --key`` writes over the exact manifest bytes (base64 or raw;
  ECDSA P-256/P-384/P-521, Ed25519 or RSA keys). Verified like ``cosign verify-blob --key KEY`` by
  :mod:`workbench.model.cosign_blob`.
* **OpenSSF model signing** (``model.sig`` in the folder or in ``.signatures/``): a Sigstore bundle holding a DSSE
  envelope over an in-toto statement, signed with an EC key. The envelope (DSSE PAE, payload type, statement type,
  root digest) is verified by the ``model-signing`` library's key verifier; the folder is then re-hashed with the
  hashing configuration taken from the signed statement (passed explicitly, symlinks never followed) and compared
  per file or shard.

Findings: ``signature_verified`` (info) when the signature and every file check out; ``signature_invalid``
(critical) naming the file or the reason; ``model_unsigned`` (critical) when there is no signature;
``signature_unverified`` (medium) when there is one but no public key to check it with; ``signature_unsupported``
(medium) when the key is of a type the scheme does not sign with. No network is used.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workbench.case import walk_tree
from workbench.checks.integrity import MARKER_FILES, hash_model_dir
from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext
from workbench.evidence.signature_manifest import SignatureManifestLoader
from workbench.model.cosign_blob import SignatureError, SignatureUnsupported, verify_cosign_blob
from workbench.model.safetensors_format import open_nofollow
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["FileCheck", "SignatureError", "SignatureResult", "verify_cosign_blob", "verify_model_signature"]

DETECTOR = "workbench.model.signatures"
ATLAS = ("AML.T0010.003", "AML.T0018.000")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_KEY_BYTES = 64 * 1024
BUNDLE_SIG_NAMES = ("model.sig", ".signatures/model.sig")


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One file (or shard) against the signed digest: ``status`` ok / modified / missing / unsigned."""

    path: str
    status: str
    expected: str | None
    actual: str | None


@dataclass(slots=True)
class SignatureResult:
    """Outcome of :func:`verify_model_signature`.

    Attributes:
        scheme: ``cosign-manifest``, ``model-signing`` or ``none``.
        signature: the signature file (displayed path), or None.
        key: the public key file as given, or None.
        signature_valid: True / False, or None when not checked (no signature or no key).
        reason: why the signature is invalid or unchecked ("" when valid).
        algorithm: how a cosign signature was made (e.g. ``ecdsa-p-384-sha384, raw``), once it verified.
        files: per-file checks (only after a valid signature).
        findings / warnings: records for the report.
    """

    scheme: str
    signature: str | None = None
    key: str | None = None
    signature_valid: bool | None = None
    reason: str = ""
    algorithm: str | None = None
    files: list[FileCheck] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """The signature is valid and every file matches it."""
        return self.signature_valid is True and all(f.status == "ok" for f in self.files)

    def frame(self) -> pd.DataFrame:
        """Columns ``path``, ``status``, ``expected``, ``actual`` (str; None where not applicable)."""
        cols = ["path", "status", "expected", "actual"]
        return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in self.files], columns=cols, dtype=object)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "signature": self.signature, "key": self.key, "verified": self.verified,
                "signature_valid": self.signature_valid, "reason": self.reason, "algorithm": self.algorithm,
                "files": self.frame().to_dict(orient="records")}  # fmt: skip


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    try:
        with open_nofollow(path) as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise SignatureError(f"{what} cannot be read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise SignatureError(f"{what} is larger than {cap} bytes")
    return data


def _load_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError("the public key is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureUnsupported(f"key type {type(key).__name__.strip('_')} is not supported for model-signing "
                                   "bundles (ECDSA keys only)")  # fmt: skip
    return key


def _finding(severity: Severity, category: str, title: str, detail: str, evidence: dict[str, Any]) -> Finding:
    return Finding.create(severity=severity, category=category, title=title, detail=detail, detector=DETECTOR,
                          atlas=ATLAS, evidence=evidence)  # fmt: skip


def verify_model_signature(
    model_dir: Path,
    public_key: Path | None = None,
    *,
    model_id: str | None = None,
    display_prefix: str = "",
    key_display: str | None = None,
    hashes: Mapping[str, str] | None = None,
) -> SignatureResult:
    """Find the model's signature, verify it with ``public_key`` and check every file against it.

    Reads: ``.signatures/manifest.json`` + ``.signatures/manifest.sig``, or ``model.sig`` / ``.signatures/model.sig``;
    the public key (PEM); every regular file of the folder (streamed; symlinks never followed), unless ``hashes``
    gives the folder's digests already (cosign manifests; a model-signing bundle is always re-hashed by the library
    as its signed statement prescribes).

    Args:
        model_dir: the model folder.
        public_key: PEM public key; without one a present signature is reported as unverified.
        model_id: shown in titles (default: the folder's name).
        display_prefix: the folder's path as shown in ``evidence.path`` (relative to the case).
        key_display: the key's path as shown (default: its file name).
        hashes: ``{relative path: sha256}`` of the folder as :func:`~workbench.checks.integrity.hash_model_dir`
            gives it, when the caller has it (the analysis computes it once for the diff and this check); None:
            the folder is hashed here.

    Returns:
        The :class:`SignatureResult`, with exactly one finding about the signature itself or one per bad file.
    """
    model_id = model_id or model_dir.name
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    key_shown = key_display or (public_key.name if public_key else None)
    sig_dir = model_dir / ".signatures"
    manifest, msig = sig_dir / "manifest.json", sig_dir / "manifest.sig"
    bundle = next((model_dir / n for n in BUNDLE_SIG_NAMES if _regular(model_dir / n)), None)
    if _regular(manifest):
        scheme, sig_path = "cosign-manifest", msig
    elif bundle is not None:
        scheme, sig_path = "model-signing", bundle
    else:
        result = SignatureResult("none", key=key_shown)
        result.findings.append(_finding(Severity.CRITICAL, "model_unsigned", f"{model_id}: model is unsigned",
                                        "No .signatures/manifest.json + manifest.sig and no model-signing bundle "
                                        "(model.sig): the model's provenance cannot be verified.",
                                        {"path": prefix.rstrip("/") or "."}))  # fmt: skip
        return result
    sig_rel = sig_path.relative_to(model_dir).as_posix()
    result = SignatureResult(scheme, prefix + sig_rel, key_shown)
    if not _regular(sig_path):
        result.reason = f"{sig_rel} is missing"
        result.findings.append(
            _finding(
                Severity.CRITICAL,
                "model_unsigned",
                f"{model_id}: manifest present but its signature {sig_rel} is missing",
                "The manifest lists file digests but nothing vouches for it.",
                {"path": prefix + ".signatures/manifest.json"},
            )
        )
        return result  # fmt: skip
    if public_key is None:
        result.reason = "no public key given"
        result.findings.append(_finding(Severity.MEDIUM, "signature_unverified",
                                        f"{model_id}: signature {sig_rel} not verified (no public key given)",
                                        "Give the signer's public key to verify the signature.",
                                        {"path": result.signature}))  # fmt: skip
        return result
    try:
        key_pem = _read_capped(public_key, MAX_KEY_BYTES, "the public key")
        if scheme == "cosign-manifest":
            expected = _verify_cosign_manifest(manifest, sig_path, key_pem, result)
            actual = dict(hashes) if hashes is not None else hash_model_dir(model_dir)
        else:
            _load_key(key_pem)
            expected, actual = _verify_bundle(model_dir, sig_path, public_key, result)
    except SignatureUnsupported as exc:
        result.reason = exc.reason
        result.findings.append(_finding(Severity.MEDIUM, "signature_unsupported",
                                        f"{model_id}: signature {sig_rel} cannot be checked: {exc.reason}",
                                        f"Not verified with {key_shown} ({scheme}): {exc.reason}.",
                                        {"path": result.signature, "key": key_shown}))  # fmt: skip
        return result
    except SignatureError as exc:
        result.signature_valid, result.reason = False, exc.reason
        result.findings.append(_finding(Severity.CRITICAL, "signature_invalid",
                                        f"{model_id}: signature {sig_rel} is invalid: {exc.reason}",
                                        f"Verified with {key_shown} ({scheme}): {exc.reason}.",
                                        {"path": result.signature, "key": key_shown}))  # fmt: skip
        return result
    result.signature_valid = True
    result.files = _compare(expected, actual)
    _file_findings(result, model_id, prefix, sig_rel)
    return result


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _verify_cosign_manifest(manifest: Path, sig: Path, key_pem: bytes, result: SignatureResult) -> dict[str, str]:
    blob = _read_capped(manifest, MAX_MANIFEST_BYTES, "manifest.json")
    how = verify_cosign_blob(blob, _read_capped(sig, MAX_SIGNATURE_BYTES, "manifest.sig"), key_pem)
    result.algorithm = f"{how.algorithm}, {how.encoding}"
    try:
        loaded = SignatureManifestLoader().load(manifest, LoadContext(relpath=result.signature or "manifest.json"))
    except MalformedEvidence as exc:
        raise SignatureError(f"the signed manifest is unusable: {exc.reason}") from None
    if _read_capped(manifest, MAX_MANIFEST_BYTES, "manifest.json") != blob:
        raise SignatureError("manifest.json changed while it was being verified")
    result.warnings += loaded.warnings
    return dict(zip(loaded.frame["path"], loaded.frame["sha256"], strict=True))


def _verify_bundle(
    model_dir: Path, sig: Path, key: Path, result: SignatureResult
) -> tuple[dict[str, str], dict[str, str]]:
    """Verify the DSSE envelope with model-signing's EC-key verifier and re-hash the folder as the statement says."""
    from model_signing import hashing
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    _read_capped(sig, MAX_MANIFEST_BYTES, sig.name)  # size cap before the library reads it
    quiet = io.StringIO()  # the verifier prints a warning for old bundles; keep stdout clean for --json
    try:
        with contextlib.redirect_stdout(quiet):
            bundle = sign_sigstore_pb.Signature.read(sig)
            signed = sign_ec_key.Verifier(key).verify(bundle)
    except InvalidSignature:
        raise SignatureError("the DSSE envelope's signature does not match under the given public key") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{sig.name} does not verify: {str(exc)[:300]}") from None
    if quiet.getvalue().strip():
        result.warnings.append(EvidenceWarning(result.signature or sig.name, None, quiet.getvalue().strip()[:300]))
    args = dict(signed.serialization_type)
    ignored = [str(p) for p in args.get("ignore_paths", ())]
    config = hashing.Config()
    try:
        if args.get("method") == "shards":
            config.use_shard_serialization(hashing_algorithm=args["hash_type"], shard_size=int(args["shard_size"]),
                                           allow_symlinks=False)  # fmt: skip
        else:
            config.use_file_serialization(hashing_algorithm=args["hash_type"], allow_symlinks=False)
    except (KeyError, ValueError, TypeError) as exc:
        raise SignatureError(f"unsupported hashing configuration in the signature: {exc}") from None
    sig_rel = sig.relative_to(model_dir).as_posix()
    config.add_ignored_paths(model_path=model_dir, paths=[*ignored, sig_rel])
    walked: list[EvidenceWarning] = []
    files = [model_dir / f.fs_relpath for f in walk_tree(model_dir, walked)
             if f.relpath != sig_rel and Path(f.relpath).name not in MARKER_FILES]  # fmt: skip
    result.warnings += walked
    try:
        actual = config.hash(model_dir, files_to_hash=files)
    except (OSError, ValueError) as exc:
        raise SignatureError(f"the model folder cannot be hashed as signed: {exc}") from None
    digests = {str(rd.identifier): rd.digest.digest_hex for rd in signed.resource_descriptors()}
    return digests, {str(rd.identifier): rd.digest.digest_hex for rd in actual.resource_descriptors()}


def _compare(expected: dict[str, str], actual: dict[str, str]) -> list[FileCheck]:
    out = []
    for path in sorted(set(expected) | set(actual)):
        exp, act = expected.get(path), actual.get(path)
        status = "unsigned" if exp is None else "missing" if act is None else "ok" if exp == act else "modified"
        out.append(FileCheck(path, status, exp, act))
    return out


def _file_findings(result: SignatureResult, model_id: str, prefix: str, sig_rel: str) -> None:
    how = f"{result.scheme}, {result.algorithm}" if result.algorithm else result.scheme
    valid = f"{sig_rel} is a valid signature under {result.key} ({how})"
    bad = [f for f in result.files if f.status != "ok"]
    if not bad:
        result.findings.append(_finding(Severity.INFO, "signature_verified",
                                        f"{model_id}: signature verified, {len(result.files)} files match",
                                        f"{valid}, and every file matches its signed digest.",
                                        {"path": result.signature, "key": result.key}))  # fmt: skip
        return
    result.reason = f"{len(bad)} file(s) do not match the signature"
    what = {
        "modified": ("does not match its signed digest", "Signed {e}, found {a}."),
        "missing": ("is signed but missing", "Signed {e}; the file is not in the folder."),
        "unsigned": ("is not covered by the signature", "Found {a}; the signature does not list this file."),
    }
    for f in bad:
        path = f.path.split(":", 1)[0] if result.scheme == "model-signing" else f.path
        title, detail = what[f.status]
        result.findings.append(_finding(Severity.CRITICAL, "signature_invalid", f"{model_id}: {f.path} {title}",
                                        f"{valid}, but {f.path} {title}. " + detail.format(e=f.expected, a=f.actual),
                                        {"path": prefix + path, "signature": result.signature,
                                         "sha256": f.actual, "expected_sha256": f.expected}))  # fmt: skip
