"""Loader for ``COMPROMISED.txt`` markers left in a model folder by the containment playbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, iter_lines, parse_time, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["CompromisedMarkerLoader"]

#: ``COMPROMISED - Incident INC-2026-001 - 2026-11-19T09:30:00Z``
_MARKER = re.compile(r"^COMPROMISED\s+[-–—]\s+Incident\s+(?P<incident>\S+)\s+[-–—]\s+(?P<ts>\S.*?)\s*$", re.I)
_NAME = re.compile(r"^COMPROMISED(\.txt|\.md)?$", re.IGNORECASE)


class CompromisedMarkerLoader(Loader):
    """A marker saying that the model in the same folder was declared compromised.

    Every non-blank line becomes a row, so the marker is never lost; lines that do not follow
    ``COMPROMISED - Incident <id> - <ISO time>`` keep only ``text`` and get a warning. ``meta["model_dir"]`` is the
    name of the folder holding the marker.

    Columns:
        line (int): 1-based line number.
        incident_id (str): incident id, or null.
        timestamp (datetime): when the model was marked (UTC), or NaT.
        text (str): the line as written.
    """

    name: ClassVar[str] = "compromised_marker"
    columns: ClassVar[dict[str, str]] = {"line": "int", "incident_id": "str", "timestamp": "datetime", "text": "str"}

    def detect(self, path: Path) -> bool:
        """Named ``COMPROMISED.txt`` (any case), or a ``.txt`` whose first line is a marker line."""
        if not is_regular_file(path):
            return False
        if _NAME.match(path.name):
            return True
        if path.suffix.lower() != ".txt":
            return False
        lines = sniff_lines(path, limit=1)
        return bool(lines) and bool(_MARKER.match(lines[0]))

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per non-blank line; an empty marker file gives an empty frame (its presence is the fact)."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            row = {"line": number, "incident_id": None, "timestamp": None, "text": text.strip()}
            m = _MARKER.match(text.strip())
            if m is None:
                warnings.append(EvidenceWarning(ctx.relpath, number, "not 'COMPROMISED - Incident <id> - <time>'"))
            else:
                row["incident_id"] = m.group("incident")
                row["timestamp"] = parse_time(m.group("ts"), ctx)
                if row["timestamp"] is None:
                    warnings.append(EvidenceWarning(ctx.relpath, number, f"unparseable time {m.group('ts')!r:.60}"))
            rows.append(row)
        meta = {"model_dir": path.parent.name}
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)
