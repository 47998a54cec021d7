"""Loader for ``current_hashes.txt``: ``sha256sum`` output (GNU text/binary mode, escaped names, BSD tag lines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, iter_lines, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["HashesLoader"]

#: GNU: ``<hex>  name`` (text) or ``<hex> *name`` (binary); a leading ``\\`` marks an escaped name.
_GNU = re.compile(r"^(?P<esc>\\)?(?P<hex>[0-9a-fA-F]{64}) (?P<mode>[ *])(?P<name>.*)$")
#: BSD / ``sha256sum --tag``: ``SHA256 (name) = <hex>``.
_TAG = re.compile(r"^(?P<esc>\\)?SHA256 \((?P<name>.*)\) = (?P<hex>[0-9a-fA-F]{64})$")
#: Looks like a checksum line of another length or algorithm (reported rather than silently skipped).
_OTHER = re.compile(r"^\\?[0-9a-fA-F]{32,128} [ *]")
_NAMES = re.compile(r"^(current_hashes.*\.txt|sha256sums?(\.txt)?|.*\.sha256)$", re.IGNORECASE)
_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r"}


def _unescape(name: str) -> str | None:
    """Undo sha256sum's ``\\\\``, ``\\n`` and ``\\r`` escapes; None for an unknown escape."""
    out: list[str] = []
    i = 0
    while i < len(name):
        if name[i] == "\\":
            pair = name[i : i + 2]
            if pair not in _ESCAPES:
                return None
            out.append(_ESCAPES[pair])
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


class HashesLoader(Loader):
    """SHA-256 checksums of the deployed model files as captured by ``sha256sum``.

    Columns:
        line (int): 1-based line number.
        sha256 (str): lower-case hex digest.
        path (str): file name as written (escapes undone), e.g. ``/models/m/model.safetensors``.
        binary (bool): True for binary-mode lines (``<hex> *path``).
    """

    name: ClassVar[str] = "current_hashes"
    columns: ClassVar[dict[str, str]] = {"line": "int", "sha256": "str", "path": "str", "binary": "bool"}

    def detect(self, path: Path) -> bool:
        """A checksum-list name, or a text file whose first non-comment line is a SHA-256 checksum line."""
        if not is_regular_file(path):
            return False
        lines = [s for s in sniff_lines(path, limit=5) if not s.startswith("#")]
        if not lines:
            return bool(_NAMES.match(path.name)) and path.suffix.lower() in {".txt", ".sha256", ""}
        return bool(_GNU.match(lines[0]) or _TAG.match(lines[0]))

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per checksum line; blank and ``#`` lines are skipped, anything else is a warning."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        rejected = 0
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            m = _GNU.match(text) or _TAG.match(text)
            reason = None
            if m is None:
                reason = "checksum is not SHA-256" if _OTHER.match(text) else "not a sha256sum line"
            else:
                name = m.group("name")
                if m.group("esc"):
                    name = _unescape(name)
                if not name:
                    reason = "empty or badly escaped file name"
            if reason:
                warnings.append(EvidenceWarning(ctx.relpath, number, reason))
                rejected += 1
                continue
            binary = m.re is _GNU and m.group("mode") == "*"
            rows.append({"line": number, "sha256": m.group("hex").lower(), "path": name, "binary": binary})
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no sha256sum line in the file")
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)
