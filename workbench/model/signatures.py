"""One verifier for every way a model is signed: find the signature, check it offline, check every file against it.

Used by ``diff-model`` / ``verify-model``, ``investigate`` (the model analysis), ``contain rollback``/``assess``
(:mod:`workbench.ops.signing`) and the monitor. The signature is found where the tools put it
(:mod:`workbench.model.sig_locate`), checked with the trust material given (:class:`~workbench.model.trust.Trust`)
by the scheme's checker -- OpenSSF model signing bundles by key, certificate or Sigstore
(:mod:`workbench.model.ms_bundle`); cosign signatures and bundles over ``.signatures/manifest.json``
(:mod:`workbench.model.cosign_bundle`) -- and the folder is compared with the digests it signed (model_signing's
statement says how to hash: per file or per shard; a cosign manifest lists SHA-256 per file). Signature files are
never model content.

Every check ends in exactly one outcome (:data:`OUTCOMES`), stated by :mod:`workbench.model.signature_findings`:
``verified``, ``invalid`` (the signature, or a file against it), ``unsupported``, ``unverifiable_offline``,
``unverified`` (no trust material for its method), ``unsigned``. No network is used; nothing is executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.case import walk_tree
from workbench.checks.integrity import hash_model_dir, is_model_content
from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext
from workbench.evidence.signature_manifest import SignatureManifestLoader
from workbench.model.cosign_blob import SignatureError, SignatureUnsupported, verify_cosign_blob
from workbench.model.sig_locate import Located, locate
from workbench.model.sig_signed import Signed
from workbench.model.trust import Trust
from workbench.records import EvidenceWarning, Finding
from workbench.timeparse import parse_timestamp

__all__ = ["OUTCOMES", "FileCheck", "SignatureError", "SignatureResult", "verify_cosign_blob",
           "verify_model_signature"]  # fmt: skip

#: every outcome of a signature check
OUTCOMES = ("verified", "invalid", "unsupported", "unverifiable_offline", "unverified", "unsigned")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


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
        scheme: ``cosign-manifest``, ``model-signing``, ``unrecognised`` or ``none``.
        outcome: one of :data:`OUTCOMES`.
        signature: the signature file as displayed, or None.
        key: the public key as displayed, or None.
        signature_valid: True when the signature's bytes check out (under a trusted or an unverified signer),
            False when they do not, None when not checked.
        reason: why it is not verified ("" when verified).
        method / signer / issuer / signed_at / signed_at_source / tlog / notes: from the scheme's checker (see
            :class:`~workbench.model.sig_signed.Signed`).
        files: per-file (or per-shard) checks against the signed digests.
        trusted: the signer was verified against the trust material.
        findings / warnings: records for the report.
    """

    scheme: str
    outcome: str = "unsigned"
    signature: str | None = None
    key: str | None = None
    signature_valid: bool | None = None
    reason: str = ""
    method: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    signed_at_source: str = ""
    tlog: str | None = None
    trusted: bool = False
    notes: list[str] = field(default_factory=list)
    files: list[FileCheck] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """The signature is valid under a trusted signer and every file matches it."""
        return self.outcome == "verified"

    @property
    def algorithm(self) -> str | None:
        """How it was made (the method), kept for older callers."""
        return self.method

    @property
    def bad_files(self) -> list[FileCheck]:
        return [f for f in self.files if f.status != "ok"]

    def frame(self) -> pd.DataFrame:
        """Columns ``path``, ``status``, ``expected``, ``actual`` (str; None where not applicable)."""
        cols = ["path", "status", "expected", "actual"]
        return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in self.files], columns=cols, dtype=object)

    def to_dict(self) -> dict[str, Any]:
        keys = ("scheme", "outcome", "signature", "key", "signature_valid", "reason", "method", "signer", "issuer",
                "signed_at", "signed_at_source", "tlog", "trusted", "notes")  # fmt: skip
        return {**{k: getattr(self, k) for k in keys}, "verified": self.verified,
                "files": self.frame().to_dict(orient="records")}  # fmt: skip


def _as_trust(trust: Trust | Path | None, key_display: str | None) -> Trust:
    if isinstance(trust, Trust):
        return trust
    return Trust(key=trust, shown={"key": key_display} if key_display and trust else {})


def verify_model_signature(
    model_dir: Path,
    trust: Trust | Path | None = None,
    *,
    model_id: str | None = None,
    display_prefix: str = "",
    key_display: str | None = None,
    hashes: Mapping[str, str] | None = None,
) -> SignatureResult:
    """Find the model's signature, check it with ``trust`` and check every file against it.

    Reads: the signature file(s) (16 MiB cap), the signed manifest, the trust files, and every regular file of
    the folder (streamed; symlinks never followed) unless ``hashes`` gives them and the signature lists SHA-256 per
    file (a model_signing statement with another hash or with shards is re-hashed as it prescribes).

    Args:
        model_dir: the model folder.
        trust: the trust material (a :class:`Trust`), or just a public key path (None: nothing to verify with).
        model_id: shown in titles (default: the folder's name).
        display_prefix: the folder's path as shown in ``evidence.path`` (relative to the case).
        key_display: how a bare key path is shown (with a :class:`Trust`, use its ``shown``).
        hashes: ``{relative path: sha256}`` of the folder (from :func:`~workbench.checks.integrity.hash_model_dir`)
            when the caller has them; None: hashed here when needed.

    Returns:
        The :class:`SignatureResult` with its outcome and findings (one about the signature, or one per bad file).
    """
    from workbench.model.signature_findings import state_outcome

    trust = _as_trust(trust, key_display)
    model_id = model_id or model_dir.name
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    warnings: list[EvidenceWarning] = []
    try:
        found = locate(model_dir, trust.signature, trust.show("signature"), warnings)
    except OSError as exc:
        result = SignatureResult("none", key=trust.show("key"), warnings=warnings)
        state_outcome(result, model_id, prefix, error=SignatureUnsupported(
            f"the signature {trust.show('signature')} cannot be read: {exc.strerror or 'error'}"))  # fmt: skip
        return result
    result = SignatureResult(found.scheme if found else "none", key=trust.show("key"), warnings=warnings)
    if found is None:
        state_outcome(result, model_id, prefix)
        return result
    result.signature = found.shown if found.rel is None else prefix + found.rel
    if found.others:
        result.notes.append(f"other signature files not verified: {', '.join(found.others[:10])}")
    try:
        signed, actual = _check(model_dir, found, trust, hashes, result)
    except SignatureError as exc:  # SignatureUnsupported included: the finding says which
        state_outcome(result, model_id, prefix, error=exc)
        return result
    _take(result, signed)
    result.files = _compare(signed.digests, actual) if actual is not None else []
    state_outcome(result, model_id, prefix)
    return result


def _take(result: SignatureResult, signed: Signed) -> None:
    result.signature_valid = True if signed.checked else None
    result.trusted = signed.trusted
    result.method, result.signer, result.issuer, result.tlog = signed.method, signed.signer, signed.issuer, signed.tlog
    result.signed_at = signed.signed_at.isoformat().replace("+00:00", "Z") if signed.signed_at else None
    result.signed_at_source = signed.signed_at_source
    result.reason = signed.reason
    result.notes += signed.notes
    result.outcome = "verified" if signed.trusted else signed.untrusted


def _check(model_dir: Path, found: Located, trust: Trust, hashes: Mapping[str, str] | None,
           result: SignatureResult) -> tuple[Signed, dict[str, str] | None]:  # fmt: skip
    """The checked signature and the folder's digests to compare with it (None: not compared)."""
    from workbench.model.cosign_bundle import check_cosign
    from workbench.model.ms_bundle import check_bundle

    for problem in trust.missing():
        raise SignatureUnsupported(f"the {problem} cannot be read (missing, or not a regular file)")
    if found.scheme == "unrecognised":
        raise SignatureUnsupported(f"{found.shown} is neither a model_signing bundle nor a cosign signature over "
                                   ".signatures/manifest.json")  # fmt: skip
    if found.path is None:
        raise _Unsigned(f"{found.shown} is missing: the manifest lists file digests but nothing vouches for it")
    if found.scheme == "model-signing":
        signed = check_bundle(found.data, trust)
        return signed, _rehash(model_dir, signed, found.rel, hashes, result)
    if found.manifest is None:
        raise SignatureError(f"{found.shown} is a cosign signature but there is no manifest.json it signs")
    blob = _read_manifest(found.manifest)
    signed = check_cosign(blob, found.data, trust)
    signed.digests, created = _manifest_digests(found.manifest, blob, result)
    if created is not None and signed.signed_at is None:
        signed.signed_at = created
        signed.signed_at_source = "the signed manifest's created field" if signed.trusted else (
            "the manifest's created field, not verified")  # fmt: skip
    if not signed.trusted:  # an unauthenticated manifest is compared by the diff, not here
        return signed, None
    return signed, dict(hashes) if hashes is not None else hash_model_dir(model_dir)


class _Unsigned(SignatureError):
    """A manifest without its signature: the model is as good as unsigned."""


def _read_manifest(path: Path) -> bytes:
    from workbench import safeio

    try:
        return safeio.read_bytes(path, limit=MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise SignatureError(f"the manifest cannot be read: {exc.strerror or 'error'}") from None


def _manifest_digests(manifest: Path, blob: bytes, result: SignatureResult) -> tuple[dict[str, str], Any]:
    try:
        loaded = SignatureManifestLoader().load(manifest, LoadContext(relpath=result.signature or "manifest.json"))
    except MalformedEvidence as exc:
        raise SignatureError(f"the signed manifest is unusable: {exc.reason}") from None
    if _read_manifest(manifest) != blob:
        raise SignatureError("manifest.json changed while it was being verified")
    result.warnings += loaded.warnings
    try:
        doc = json.loads(blob)
    except ValueError:
        doc = {}
    created = parse_timestamp(doc.get("created")) if isinstance(doc, dict) and doc.get("created") else None
    return dict(zip(loaded.frame["path"], loaded.frame["sha256"], strict=True)), created


def _rehash(model_dir: Path, signed: Signed, sig_rel: str | None, hashes: Mapping[str, str] | None,
            result: SignatureResult) -> dict[str, str]:  # fmt: skip
    """The folder hashed as the signed statement prescribes (model_signing's own hashing), signature files left
    out; SHA-256 per file is taken from ``hashes`` when given."""
    from model_signing import hashing

    args = signed.serialization or {}
    ignored = {str(p) for p in args.get("ignore_paths", ())} | ({sig_rel} if sig_rel else set())
    walked: list[EvidenceWarning] = []
    rels = [f for f in walk_tree(model_dir, walked)
            if is_model_content(f.relpath)
            and not any(f.relpath == p or f.relpath.startswith(p.rstrip("/") + "/") for p in ignored)]  # fmt: skip
    result.warnings += walked
    if hashes is not None and args.get("method") == "files" and args.get("hash_type") == "sha256":
        return {f.relpath: hashes[f.relpath] for f in rels if f.relpath in hashes}
    config = hashing.Config()
    try:
        if args.get("method") == "shards":
            config.use_shard_serialization(hashing_algorithm=args["hash_type"], shard_size=int(args["shard_size"]),
                                           allow_symlinks=False)  # fmt: skip
        else:
            config.use_file_serialization(hashing_algorithm=args["hash_type"], allow_symlinks=False)
    except (KeyError, ValueError, TypeError):
        raise SignatureUnsupported(f"the signed hashing configuration is not one model_signing knows "
                                   f"({str(args)[:120]})") from None  # fmt: skip
    config.add_ignored_paths(model_path=model_dir, paths=sorted(ignored))
    try:
        actual = config.hash(model_dir, files_to_hash=[model_dir / f.fs_relpath for f in rels])
    except (OSError, ValueError) as exc:
        raise SignatureError(f"the model folder cannot be hashed as signed: {type(exc).__name__}") from None
    return {str(rd.identifier): rd.digest.digest_hex for rd in actual.resource_descriptors()}


def _compare(expected: dict[str, str], actual: dict[str, str]) -> list[FileCheck]:
    out = []
    for path in sorted(set(expected) | set(actual)):
        exp, act = expected.get(path), actual.get(path)
        status = "unsigned" if exp is None else "missing" if act is None else "ok" if exp == act else "modified"
        out.append(FileCheck(path, status, exp, act))
    return out
