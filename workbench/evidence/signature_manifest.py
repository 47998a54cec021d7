"""Loader for a model's signature manifest (``manifest.json`` / ``.signatures/manifest.json``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import (
    INT64_MAX,
    LoadContext,
    Loaded,
    Loader,
    is_regular_file,
    read_json,
    sniff_json,
    sniff_text,
)
from workbench.records import EvidenceWarning

__all__ = ["SignatureManifestLoader"]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
#: Head of a manifest too large to parse in ``detect``: an object with a ``"files"`` list or object.
_FILES_KEY = re.compile(r'^\s*\{.*?"files"\s*:\s*[\[{]', re.DOTALL)
_META_KEYS = ("version", "model_id", "created", "hash_algorithm")


def _digest(entry: dict[str, Any]) -> Any:
    for key in ("sha256", "digest", "hash"):
        if key in entry:
            value = entry[key]
            return value.removeprefix("sha256:") if isinstance(value, str) else value
    return None


class SignatureManifestLoader(Loader):
    """The list of files and SHA-256 digests that a model's signature covers.

    ``files`` may be a list of ``{"path", "sha256", "size"}`` objects or an object ``{"path": "<hex>"}``.
    ``meta`` keeps ``version``, ``model_id``, ``created`` and ``hash_algorithm`` when they are scalars.

    Columns:
        path (str): file path relative to the model folder, as written in the manifest.
        sha256 (str): lower-case hex digest.
        size (int): size in bytes, or null when absent.
    """

    name: ClassVar[str] = "signature_manifest"
    columns: ClassVar[dict[str, str]] = {"path": "str", "sha256": "str", "size": "int"}

    def detect(self, path: Path) -> bool:
        """A ``.json`` whose top level is an object with a ``"files"`` list or object (decided by content)."""
        if not is_regular_file(path) or path.suffix.lower() != ".json":
            return False
        doc = sniff_json(path)
        if isinstance(doc, dict):
            return isinstance(doc.get("files"), list | dict)
        text, complete = sniff_text(path)
        return not complete and bool(_FILES_KEY.match(text))

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """Parse the manifest; an entry without a path or a 64-hex digest is a warning and is skipped."""
        warnings: list[EvidenceWarning] = []
        doc = read_json(path, ctx, warnings)
        if not isinstance(doc, dict):
            raise MalformedEvidence(ctx.relpath, "manifest is not a JSON object")
        files = doc.get("files")
        if isinstance(files, dict):
            entries = [({"path": k, "sha256": v}, f"files[{k!r}]") for k, v in files.items()]
        elif isinstance(files, list):
            entries = [(e, f"files[{i}]") for i, e in enumerate(files)]
        else:
            raise MalformedEvidence(ctx.relpath, "manifest has no 'files' list or object")
        rows: list[dict] = []
        for entry, where in entries:
            if not isinstance(entry, dict):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: not an object"))
                continue
            fpath, digest, size = entry.get("path"), _digest(entry), entry.get("size")
            if not isinstance(fpath, str) or not fpath:
                warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: missing or non-text 'path'"))
                continue
            if not isinstance(digest, str) or not _HEX64.match(digest):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"{where} ({fpath}): no SHA-256 hex digest"))
                continue
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= INT64_MAX):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"{where} ({fpath}): bad size {size!r} ignored"))
                size = None
            rows.append({"path": fpath, "sha256": digest.lower(), "size": size})
        if entries and not rows:
            raise MalformedEvidence(ctx.relpath, "no usable entry in 'files'")
        if not entries:
            warnings.append(EvidenceWarning(ctx.relpath, None, "manifest lists no files"))
        meta = {k: doc[k] for k in _META_KEYS if isinstance(doc.get(k), str | int | float)}
        algo = meta.get("hash_algorithm")
        if isinstance(algo, str) and algo.lower().replace("-", "") != "sha256":
            warnings.append(EvidenceWarning(ctx.relpath, None, f"hash_algorithm is {algo!r}, expected sha256"))
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)
