"""Loader for the incident responder's ``actions.log`` (``[ISO-time] STEP: message`` lines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, iter_lines, parse_time, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["ActionsLogLoader"]

#: ``[2026-11-19T09:05:12Z] ASSESS: Starting incident assessment`` — the step tag is optional.
_LINE = re.compile(r"^\[(?P<ts>[^\]]{4,64})\]\s*(?:(?P<action>[A-Z][A-Z0-9_ -]{0,40}?):\s)?\s*(?P<message>.*)$")
_NAME = re.compile(r"^actions?([._-][\w.-]*)?\.(log|txt)$", re.IGNORECASE)


class ActionsLogLoader(Loader):
    """The responders' action log written by the containment playbook.

    One row per entry, in file order.

    Columns:
        line (int): 1-based line number.
        timestamp (datetime): when the action was logged (UTC; NaT with a warning when unparseable).
        action (str): the upper-case step tag before the colon (``ASSESS``, ``CONTAIN``...), or None.
        message (str): the rest of the line.
    """

    name: ClassVar[str] = "actions_log"
    columns: ClassVar[dict[str, str]] = {"line": "int", "timestamp": "datetime", "action": "str", "message": "str"}

    def detect(self, path: Path) -> bool:
        """``actions.log`` by name, or a ``.log``/``.txt`` outside ``logs/`` starting with ``[time] STEP: ...``."""
        if not is_regular_file(path):
            return False
        lines = sniff_lines(path, limit=3)
        if _NAME.match(path.name):
            return not lines or bool(_LINE.match(lines[0]))
        if path.suffix.lower() not in {".log", ".txt"} or path.parent.name.lower() == "logs" or not lines:
            return False
        m = _LINE.match(lines[0])
        return bool(m and m.group("action") and parse_time(m.group("ts"), LoadContext("")) is not None)

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """Parse every non-blank line; a line without ``[time]`` is a warning and is skipped."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        rejected = 0
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            m = _LINE.match(text.strip())
            if not m:
                warnings.append(EvidenceWarning(ctx.relpath, number, "not a '[time] message' line"))
                rejected += 1
                continue
            ts = parse_time(m.group("ts"), ctx)
            if ts is None:
                warnings.append(EvidenceWarning(ctx.relpath, number, f"unparseable timestamp {m.group('ts')!r}"))
            action = m.group("action")
            rows.append(
                {
                    "line": number,
                    "timestamp": ts,
                    "action": action.strip() if action else None,
                    "message": m.group("message").strip(),
                }
            )
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no '[time] message' line in the file")
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)
