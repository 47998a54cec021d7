"""A sweep's baseline for each model (``--baseline``): a reference registry, a previous sweep, or a manifest.

* a **folder holding** ``sweep.sqlite``: a previous sweep; a model's baseline is the file digests that sweep stored
  for the same path in the registry;
* any other **folder**: a reference registry of the same layout; a model's baseline is its copy there
  (``REFERENCE/<path>``), compared file by file and, where a checkpoint differs, tensor by tensor;
* a **file**: a JSON manifest ``{"models": {"<path>": {"<file>": "<sha256>", ...}, ...}}`` (the ``--json`` document
  of an earlier sweep is one too: its ``models`` list carries each model's ``digests``). A manifest with a signature
  beside it (its name plus ``.sig``: ``fleet.json.sig``; cosign ``sign-blob`` format) is verified with the sweep's
  key before it is used (:func:`check_manifest_signature`).

A model the baseline does not know has no baseline (its own signature still applies).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from workbench.sweep.store import STORE_NAME, Store

__all__ = ["MAX_MANIFEST_BYTES", "BaselineError", "baseline_of", "check_manifest_signature"]

MAX_MANIFEST_BYTES = 256 * 1024 * 1024


class BaselineError(ValueError):
    """The baseline given cannot be used (named, with the reason)."""


def baseline_of(rel: str, baseline: Path | None) -> dict[str, Any] | None:
    """The baseline of the model at ``rel`` (module docstring), as :func:`workbench.sweep.tasks.model_task` takes it."""
    if baseline is None:
        return None
    if baseline.is_dir():
        if (baseline / STORE_NAME).is_file():
            digests = _previous(str(baseline)).get(rel)
            return None if digests is None else {"kind": "digests", "digests": digests,
                                                 "source": f"the previous sweep in {baseline}"}  # fmt: skip
        copy = baseline / rel
        return {"kind": "copy", "path": str(copy)} if copy.is_dir() and not copy.is_symlink() else None
    digests = _manifest(str(baseline)).get(rel)
    return None if digests is None else {"kind": "digests", "digests": digests, "source": f"manifest {baseline.name}"}


@cache
def _previous(folder: str) -> dict[str, dict[str, str]]:
    store = Store(Path(folder) / STORE_NAME)
    try:
        return {m.rel: m.digests for m in store.models()}
    finally:
        store.close()


@cache
def _manifest(path: str) -> dict[str, dict[str, str]]:
    from workbench import safeio

    try:
        doc = json.loads(safeio.read_bytes(Path(path), limit=MAX_MANIFEST_BYTES))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable JSON manifest ({exc})") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if isinstance(models, list):  # a sweep's --json document
        models = {m.get("path"): m.get("digests") for m in models if isinstance(m, dict)}
    if not isinstance(models, dict):
        raise BaselineError(f"{path}: no 'models' mapping of model path to file digests")
    out: dict[str, dict[str, str]] = {}
    for rel, files in models.items():
        if isinstance(rel, str) and isinstance(files, dict):
            out[rel] = {str(k): str(v) for k, v in files.items() if isinstance(v, str)}
    return out


def check_manifest_signature(manifest: Path, key: Path | None) -> str | None:
    """Verify the manifest's signature (its name plus ``.sig``, cosign ``sign-blob`` format) with ``key`` when it
    exists; returns what was checked.

    Raises:
        BaselineError: a signature exists and does not verify, or exists and no key was given.
    """
    sig = manifest.with_name(manifest.name + ".sig")
    if not sig.is_file():
        return None
    if key is None:
        raise BaselineError(f"{sig} signs the manifest, but no --key was given to verify it")
    from workbench import safeio
    from workbench.model.cosign_blob import SignatureError, verify_cosign_blob

    try:
        verify_cosign_blob(safeio.read_bytes(manifest, limit=MAX_MANIFEST_BYTES), safeio.read_bytes(sig, limit=1 << 20),
                           safeio.read_bytes(key, limit=1 << 20))  # fmt: skip
    except (OSError, ValueError, SignatureError) as exc:
        raise BaselineError(f"{manifest}: its signature {sig.name} does not verify with {key}: {exc}") from None
    return f"{manifest.name} signature verified with {key.name}"
