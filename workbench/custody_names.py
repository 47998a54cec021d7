"""File names in the custody ledger: redacted like every output, yet each one still pinned to its true name.

A file name is evidence, and it can hold a secret (``xoxb-….txt``, ``PGPASSWORD=….env``). The ledger
(``custody.jsonl``) is an output: it is copied with the report, attached to tickets and read by ``custody verify``.
So a ``file`` or ``skipped`` entry records the name as every output shows it, ``path`` (redacted by the shipped
credential rules, :mod:`workbench.rulepack.redact`), and, only when redaction changed it, ``path_sha256``: the
SHA-256 of the true name (its UTF-8 bytes, undecodable bytes kept as they were on disk). The entry's hash covers
both, so the chain vouches for the true name without holding it.

``custody verify`` and the run re-find each file by that digest (:func:`entry_key` on the ledger side,
:func:`name_key` on the evidence side), never by the redacted text, so a later change of the rule pack cannot make
a file look missing or added. The digest does not hide a guessable secret from someone who tries candidates (as any
unsalted hash); a token's entropy protects it, a dictionary password in a file name is only as safe as it is
strong, and the redacted name keeps at most a third of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["entry_key", "hashes_by_relpath", "ledger_path", "name_digest", "name_key"]


def name_digest(relpath: str) -> str:
    """SHA-256 (hex) of a case-relative path's bytes (``surrogateescape``: undecodable names hash as on disk)."""
    return hashlib.sha256(relpath.encode("utf-8", "surrogateescape")).hexdigest()


def ledger_path(relpath: str) -> dict[str, str]:
    """The ledger fields naming one file: ``path`` (redacted) and, when redaction changed it, ``path_sha256``."""
    from workbench.rulepack.redact import redact

    shown = redact(relpath)
    return {"path": shown} if shown == relpath else {"path": shown, "path_sha256": name_digest(relpath)}


def entry_key(entry: Mapping[str, Any]) -> str:
    """The key of a ledger entry's true name (its ``path_sha256``, else the digest of its ``path``)."""
    digest = entry.get("path_sha256")
    return digest if isinstance(digest, str) and digest else name_digest(str(entry.get("path", "")))


def name_key(relpath: str) -> str:
    """The key of a file found in the evidence tree (same space as :func:`entry_key`)."""
    return name_digest(relpath)


def hashes_by_relpath(entries: Iterable[Mapping[str, Any]], relpaths: Iterable[str]) -> dict[str, str]:
    """``{true relative path: sha256 at intake}`` for the given files that the ledger's ``file`` entries record."""
    by_key = {entry_key(e): e["sha256"] for e in entries if e.get("type") == "file" and "sha256" in e}
    return {p: by_key[k] for p in relpaths if (k := name_key(p)) in by_key}
