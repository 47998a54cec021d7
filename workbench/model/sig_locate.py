"""Where a model's signature is, and what kind it is: found where the signing tools put it, recognised by content.

Looked for, in this order (the first found is verified; the other signature files are named in a note):

1. the file the user names (``--signature PATH``, ``case.yaml signature``), which may lie outside the folder;
2. a cosign manifest: ``.signatures/manifest.json`` with its signature beside it (``manifest.sig``,
   ``manifest.json.sig``, ``manifest.sigstore.json``, ``manifest.json.sigstore.json``, ``manifest.bundle``,
   ``manifest.json.bundle``) -- the signature alone or a cosign bundle;
3. an OpenSSF model signing bundle: ``model.sig`` (the ``model_signing`` CLI's default), ``.signatures/model.sig``,
   then any other signature file of the folder (:func:`~workbench.checks.integrity.is_signature_file`) whose
   content is a Sigstore bundle with a DSSE envelope.

The kind comes from the content, not the name: a JSON bundle with ``dsseEnvelope`` is model_signing's; one with
``messageSignature`` or ``base64Signature`` is a cosign bundle over the manifest; anything else a bare cosign
signature. A cosign signature given by path signs the folder's ``.signatures/manifest.json``, else the
``manifest.json`` beside it. Symlinks are never followed; every file is read within a size cap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from workbench import safeio
from workbench.case import walk_tree
from workbench.checks.integrity import is_signature_file
from workbench.records import EvidenceWarning

__all__ = ["MAX_SIGNATURE_FILE", "Located", "locate"]

MAX_SIGNATURE_FILE = 16 * 1024 * 1024
MANIFEST = ".signatures/manifest.json"
MANIFEST_SIGNATURES = ("manifest.sig", "manifest.json.sig", "manifest.sigstore.json", "manifest.json.sigstore.json",
                       "manifest.bundle", "manifest.json.bundle")  # fmt: skip
BUNDLE_NAMES = ("model.sig", ".signatures/model.sig")
MAX_CANDIDATES = 64


@dataclass(slots=True)
class Located:
    """The signature to verify.

    Attributes:
        scheme: ``model-signing`` (a DSSE bundle), ``cosign-manifest`` (a signature or bundle over a manifest) or
            ``unrecognised`` (signature files, none of them either).
        path: the signature file (None: a manifest whose signature is missing).
        shown: the signature as displayed (relative to the model folder, or as given).
        rel: its path relative to the model folder, or None when it lies outside.
        manifest: the signed manifest of a cosign signature, or None.
        data: the signature's bytes (read once, capped).
        others: the folder's other signature files (relative), not verified.
    """

    scheme: str
    path: Path | None
    shown: str
    rel: str | None
    manifest: Path | None = None
    data: bytes = b""
    others: list[str] = field(default_factory=list)


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _read(path: Path) -> bytes:
    return safeio.read_bytes(path, limit=MAX_SIGNATURE_FILE)


def is_dsse_bundle(data: bytes) -> bool:
    """A Sigstore bundle holding a DSSE envelope (what model_signing writes)."""
    if data.lstrip()[:1] != b"{":
        return False
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("dsseEnvelope"), dict)


def _given(model_dir: Path, signature: Path, shown: str) -> Located:
    data = _read(signature)
    try:
        rel: str | None = signature.resolve().relative_to(model_dir.resolve()).as_posix()
    except ValueError:
        rel = None
    if is_dsse_bundle(data):
        return Located("model-signing", signature, shown, rel, data=data)
    manifest = model_dir / MANIFEST
    if not _regular(manifest):
        manifest = signature.parent / "manifest.json"
    return Located("cosign-manifest", signature, shown, rel, manifest if _regular(manifest) else None, data)


def locate(model_dir: Path, signature: Path | None = None, shown: str | None = None,
           warnings: list[EvidenceWarning] | None = None) -> Located | None:  # fmt: skip
    """Find the signature of ``model_dir`` (``signature``: the one the user named; ``shown``: how it is displayed).

    Returns:
        The :class:`Located` signature, or None when the folder carries none (and none was named).

    Raises:
        OSError: the named signature cannot be read (missing, a symlink, larger than 16 MiB).
    """
    sigs = sorted(f.relpath for f in walk_tree(model_dir, warnings if warnings is not None else [])
                  if is_signature_file(f.relpath))  # fmt: skip
    if signature is not None:
        found = _given(model_dir, signature, shown or str(signature))
        found.others = [s for s in sigs if s != found.rel]
        return found
    if _regular(model_dir / MANIFEST):
        name = next((n for n in MANIFEST_SIGNATURES if _regular(model_dir / ".signatures" / n)), None)
        rel = f".signatures/{name or 'manifest.sig'}"
        path = model_dir / rel if name else None
        found = Located("cosign-manifest", path, rel, rel, model_dir / MANIFEST, _read(path) if path else b"")
        found.others = [s for s in sigs if s not in (rel, MANIFEST)]
        return found
    ordered = [n for n in BUNDLE_NAMES if n in sigs] + [s for s in sigs if s not in BUNDLE_NAMES]
    for rel in ordered[:MAX_CANDIDATES]:
        path = model_dir / rel
        try:
            data = _read(path)
        except OSError:
            continue
        if is_dsse_bundle(data) or rel in BUNDLE_NAMES:
            return Located("model-signing", path, rel, rel, data=data, others=[s for s in sigs if s != rel])
    if ordered:  # signature files, none of a kind verified here
        return Located("unrecognised", model_dir / ordered[0], ordered[0], ordered[0], others=ordered[1:])
    return None
