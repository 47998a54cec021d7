"""The original monitor's integrity checks as library functions.

* :func:`check_model_integrity`: a model folder against a hash baseline → ``model_file_tampered``,
  ``unexpected_model_file``, ``model_file_missing``.

The dependency check that was here is :func:`workbench.deps.check_dependencies`.

Signature files are never model content (:data:`SIGNATURE_PATTERNS`, :func:`is_signature_file`): they are left
out of every digest map here, hence of the file diff and of every "unexpected", "missing" and "differs" finding, so
two copies that differ only in their signatures are the same model.

Files are hashed by streaming, unless their digest is already known (the custody intake's, passed down by the
analysis); nothing in the model folder is opened other than to read bytes. Dangerous file types are the model
scan's (:mod:`workbench.model.scan_findings`), a missing signature the signature check's
(:mod:`workbench.model.signatures`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path

from workbench.case import walk_tree
from workbench.hashing import hash_files
from workbench.records import Finding, Severity

__all__ = [
    "SIGNATURE_PATTERNS",
    "check_model_integrity",
    "hash_model_dir",
    "is_signature_file",
    "known_digests",
]

DETECTOR = "workbench.checks.integrity"
ATLAS_MODEL = ("AML.T0010.003", "AML.T0018.000")

#: files the responders themselves add to a model folder (not part of the model)
MARKER_FILES = {"COMPROMISED.txt"}


#: Where signing tools put signatures, as glob patterns on a path relative to the model folder: a pattern ending in
#: ``/`` is a top-level folder (everything under it), any other is matched against the file's name, at any depth.
#:
#: Followed: model_signing 1.1.1, ``model_signing/_cli.py``: every ``sign`` command (``sigstore``, ``key``,
#: ``certificate``, ``pkcs11-*``) hashes the folder with ``ignore_paths + [signature]`` passed to
#: ``hashing.Config.set_ignored_paths`` (``_resolve_ignore_paths``), where ``--signature`` defaults to ``model.sig``
#: in the model folder; ``verifying.Config.verify`` re-applies the ``ignore_paths`` recorded in the signed manifest.
#: So the signature file is never part of the signed model, wherever it is written. The library knows only the one
#: path it was given; the names are the tools' own: ``*.sig`` (model_signing's ``model.sig``, cosign
#: ``sign-blob --output-signature``), ``*.sigstore.json`` (sigstore-python's and cosign 3's bundle),
#: ``*.sigstore`` (sigstore-python's older bundle name), ``.signatures/`` (this workbench's cosign manifest folder).
#: model_signing's other default exclusions (``.git/``, ``.gitattributes``, ``.github/``, ``.gitignore``,
#: ``hashing.Config.hash``) are not signatures and stay model-folder content here.
SIGNATURE_PATTERNS: tuple[str, ...] = (".signatures/", "*.sig", "*.sigstore.json", "*.sigstore")


def is_signature_file(rel: str) -> bool:
    """Whether ``rel`` (a ``/``-separated path relative to the model folder) is a signature file or folder
    (:data:`SIGNATURE_PATTERNS`), which is never model content."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in SIGNATURE_PATTERNS:
        if pattern.endswith("/"):
            if rel == pattern[:-1] or rel.startswith(pattern):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def is_model_content(rel: str) -> bool:
    """Whether a file of a model folder is model content: neither a signature file nor a responder's marker (what
    :func:`hash_model_dir` digests and every comparison compares)."""
    return not is_signature_file(rel) and Path(rel).name not in MARKER_FILES


def known_digests(intake_hashes: Mapping[str, str], folder: str) -> dict[str, str]:
    """The intake's digests of the files under one case folder, keyed relative to that folder.

    Args:
        intake_hashes: ``{case-relative path: sha256}`` from the custody intake (may be empty).
        folder: the folder's case-relative path (``models/suspect/m``).
    """
    prefix = folder.rstrip("/") + "/"
    return {rel[len(prefix) :]: digest for rel, digest in intake_hashes.items() if rel.startswith(prefix)}


def hash_model_dir(
    model_dir: Path, known: Mapping[str, str] | None = None, unexamined: list[str] | None = None
) -> dict[str, str]:
    """``{relative path: sha256}`` of the model's files, excluding signature files (:func:`is_signature_file`) and
    responder markers.

    The folder is walked (symlinks are never followed: they are not model files); each file's digest is taken from
    ``known`` when given there (the custody intake already hashed it: see :func:`known_digests`), otherwise the file
    is read and hashed (a ``--reference`` outside the case, or no intake digests, e.g. from the CLI commands).
    Unreadable files are left out. Nothing is cached between calls: a caller that needs a folder's digests twice
    computes them once and passes them on. Custody verification never goes through here: it always re-reads.

    Args:
        model_dir: the folder.
        known: digests already established, keyed relative to ``model_dir``; entries for files the walk does not
            find are ignored.
        unexamined: where files the walk could not take in (past the inventory cap, special files, unreadable
            folders) are listed, relative to ``model_dir``; the caller adds them to its section's ``unexamined``.
    """
    walked = [f for f in walk_tree(model_dir, [], unexamined) if is_model_content(f.relpath)]
    known = known or {}
    on_disk = {f.relpath: model_dir / f.fs_relpath for f in walked}  # a name that is not UTF-8 opens as it is
    todo = [on_disk[f.relpath] for f in walked if f.relpath not in known]
    results = hash_files(todo) if todo else {}
    hashed: dict[str, str] = {}
    for f in walked:
        if f.relpath in known:
            hashed[f.relpath] = known[f.relpath]
        elif isinstance(res := results[on_disk[f.relpath]], tuple):
            hashed[f.relpath] = res[0]
    return hashed


def check_model_integrity(
    model_dir: Path,
    baseline: Mapping[str, str],
    *,
    model_id: str,
    display_prefix: str = "",
    baseline_source: str = "baseline",
    current: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Compare a model folder with a hash baseline (the original ``check_model_integrity``).

    Args:
        model_dir: the folder to check.
        baseline: ``{relative path: sha256}`` of the known-good files (a signature manifest, a reference copy or
            the monitor's state).
        model_id: shown in titles.
        display_prefix: prepended to relative paths in ``evidence.path`` (the folder's path in the case).
        baseline_source: what the baseline is, for the finding's detail.
        current: the folder's digests as :func:`hash_model_dir` gives them, when the caller has them already;
            None: the folder is hashed here.

    Returns:
        One finding per modified (critical), unexpected (high) or missing (critical) file; signature files
        (:func:`is_signature_file`) on either side are never one.
    """
    current = hash_model_dir(model_dir) if current is None else current
    current = {rel: d for rel, d in current.items() if not is_signature_file(rel)}
    baseline = {rel: d for rel, d in baseline.items() if not is_signature_file(rel)}
    findings: list[Finding] = []
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    for rel in sorted(set(current) | set(baseline)):
        expected, actual = baseline.get(rel), current.get(rel)
        path = prefix + rel
        if expected and actual and expected != actual:
            findings.append(
                Finding.create(
                    severity=Severity.CRITICAL,
                    category="model_file_tampered",
                    detector=DETECTOR,
                    atlas=ATLAS_MODEL,
                    title=f"{model_id}: {rel} differs from the {baseline_source}",
                    detail=f"Expected SHA-256 {expected}, found {actual}.",
                    evidence={"path": path, "sha256": actual, "expected_sha256": expected},
                )
            )
        elif actual and not expected:
            findings.append(
                Finding.create(
                    severity=Severity.HIGH,
                    category="unexpected_model_file",
                    detector=DETECTOR,
                    atlas=ATLAS_MODEL,
                    title=f"{model_id}: unexpected file {rel}",
                    detail=f"{rel} is not in the {baseline_source}.",
                    evidence={"path": path, "sha256": actual},
                )
            )
        elif expected and not actual:
            findings.append(
                Finding.create(
                    severity=Severity.CRITICAL,
                    category="model_file_missing",
                    detector=DETECTOR,
                    atlas=ATLAS_MODEL,
                    title=f"{model_id}: expected file {rel} is missing",
                    detail=f"{rel} is in the {baseline_source} but not in the model folder.",
                    evidence={"path": path, "expected_sha256": expected},
                )
            )
    return findings
