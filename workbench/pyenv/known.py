"""Start-up hooks and native files that well-known distributions ship on purpose (``data/known_package_files.yaml``).

A hook or binary is *known* only when the distribution whose RECORD lists it is named by an entry, its path matches
the entry's, every executed line of a hook matches the entry's line pattern, and the file was not found modified
(the caller checks that). Known files are shown at info severity; everything else is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from workbench import safeio, safeyaml
from workbench.errors import RuleError
from workbench.evidence.deps import normalize_name

__all__ = ["DATA_FILE", "Known", "KnownFile", "known_files", "load_known"]

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "known_package_files.yaml"
MAX_BYTES = 256 * 1024
_ENTRY_KEYS = {"distribution", "path", "line", "why", "source"}


@dataclass(frozen=True, slots=True)
class KnownFile:
    """One shipped-on-purpose file: the distribution (normalized, ``*`` for any), path and line patterns, why."""

    distribution: str
    path: re.Pattern[str]
    line: re.Pattern[str] | None
    why: str
    source: str


@dataclass(frozen=True, slots=True)
class Known:
    """The loaded entries, with lookups."""

    hooks: tuple[KnownFile, ...]
    binaries: tuple[KnownFile, ...]

    def hook(self, distribution: str | None, path: str, lines: list[str]) -> KnownFile | None:
        """The entry that explains a hook file listed by ``distribution`` whose executed lines are ``lines``."""
        return next((k for k in self.hooks if _owned(k, distribution) and k.path.search(path)
                     and lines and all(k.line is not None and k.line.fullmatch(x) for x in lines)), None)  # fmt: skip

    def binary(self, distribution: str | None, path: str) -> KnownFile | None:
        """The entry that explains a native file listed by ``distribution``."""
        return next((k for k in self.binaries if _owned(k, distribution) and k.path.search(path)), None)


def _owned(k: KnownFile, distribution: str | None) -> bool:
    return distribution is not None and k.distribution in ("*", normalize_name(distribution))


def _compile(raw: object, key: str, source: Path, index: int) -> re.Pattern[str]:
    if not isinstance(raw, str) or not raw or len(raw) > 1000:
        raise RuleError(source, f"entry #{index + 1}: {key!r} must be a regular expression of at most 1000 characters")
    try:
        return re.compile(raw)
    except re.error as exc:
        raise RuleError(source, f"entry #{index + 1}: {key!r} is not a valid regular expression: {exc}") from None


def _entries(raw: object, source: Path, *, hooks: bool) -> tuple[KnownFile, ...]:
    if not isinstance(raw, list):
        raise RuleError(source, f"{'hooks' if hooks else 'binaries'} must be a list")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - _ENTRY_KEYS:
            raise RuleError(source, f"entry #{i + 1}: a mapping of {', '.join(sorted(_ENTRY_KEYS))} expected")
        dist, why, ref = item.get("distribution"), item.get("why"), item.get("source")
        if not all(isinstance(x, str) and x for x in (dist, why, ref)):
            raise RuleError(source, f"entry #{i + 1}: 'distribution', 'why' and 'source' are required text")
        line = _compile(item.get("line"), "line", source, i) if hooks else None
        out.append(KnownFile(dist if dist == "*" else normalize_name(dist), _compile(item.get("path"), "path", source,
                                                                                     i), line, why, ref))  # fmt: skip
    return tuple(out)


def load_known(path: Path = DATA_FILE) -> Known:
    """Read and validate a known-files file.

    Raises:
        RuleError: unreadable, invalid YAML, or an invalid entry (named by its number).
    """
    try:
        doc = safeyaml.load(safeio.read_text(path, limit=MAX_BYTES), source=str(path))
    except (OSError, ValueError) as exc:
        raise RuleError(path, f"cannot read: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise RuleError(path, "expected a mapping with 'version: 1'")
    return Known(_entries(doc.get("hooks") or [], path, hooks=True),
                 _entries(doc.get("binaries") or [], path, hooks=False))  # fmt: skip


@cache
def known_files() -> Known:
    """The shipped list (loaded once per process)."""
    return load_known()
