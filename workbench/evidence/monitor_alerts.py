"""Loader for the integrity monitor's alert output (``monitor/alerts.jsonl``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import (
    LoadContext,
    Loaded,
    Loader,
    clean_parsed,
    is_regular_file,
    iter_lines,
    parse_json,
    parse_time,
    sniff_lines,
)
from workbench.records import EvidenceWarning

__all__ = ["ALERT_TYPES", "MonitorAlertsLoader"]

#: Alert types the monitor emits; others are kept as written (upper-cased).
ALERT_TYPES = frozenset(
    {"FILE_TAMPERED", "FILE_MISSING", "UNEXPECTED_FILE", "DEPENDENCY_CHANGED", "DEPENDENCY_MISSING", "BEHAVIOR_DRIFT"}
)
_SUFFIXES = {".jsonl", ".ndjson", ".json", ".log"}
_NAMES = re.compile(r"^(monitor[-_])?alerts?([._-][\w.-]*)?\.(jsonl|ndjson)$", re.IGNORECASE)
_TEXT_FIELDS = ("model", "file", "severity", "message", "expected_hash", "actual_hash")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def looks_like_alert(obj: Any) -> bool:
    """An object with a text ``type`` and at least one other alert field, and no prediction class field."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("type"), str)
        and any(k in obj for k in ("model", "file", "expected_hash", "actual_hash", "severity"))
        and not any(k in obj for k in ("predicted_class", "label"))
    )


class MonitorAlertsLoader(Loader):
    """Alerts written by the integrity monitor, one JSON object per line.

    Columns:
        line (int): 1-based line number.
        timestamp (datetime): when the monitor raised it (UTC; NaT with a warning when missing or bad).
        type (str): ``FILE_TAMPERED``, ``FILE_MISSING``, ``UNEXPECTED_FILE``, ``DEPENDENCY_CHANGED``,
            ``DEPENDENCY_MISSING``, ``BEHAVIOR_DRIFT`` (upper-cased; others kept).
        model (str): model id.
        file (str): file concerned, if any.
        severity (str): the monitor's severity word, as written.
        message (str): the monitor's message.
        expected_hash (str): expected digest, if any.
        actual_hash (str): observed digest, if any.
    """

    name: ClassVar[str] = "monitor_alerts"
    columns: ClassVar[dict[str, str]] = {
        "line": "int",
        "timestamp": "datetime",
        "type": "str",
        "model": "str",
        "file": "str",
        "severity": "str",
        "message": "str",
        "expected_hash": "str",
        "actual_hash": "str",
    }

    def detect(self, path: Path) -> bool:
        """An alerts-like name, or a JSON-lines file whose first line is an alert object."""
        if not is_regular_file(path) or path.suffix.lower() not in _SUFFIXES:
            return False
        lines = sniff_lines(path, limit=1)
        if not lines:
            return bool(_NAMES.match(path.name))
        try:
            return looks_like_alert(parse_json(lines[0]))
        except ValueError:
            return False

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per alert; a line that is not a JSON object with a ``type`` is a warning and is skipped."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        rejected = 0
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            try:
                obj = clean_parsed(parse_json(text), ctx, number, warnings)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not obj["type"].strip():
                reason = "not a JSON object" if not isinstance(obj, dict) else "alert without a 'type'"
                warnings.append(EvidenceWarning(ctx.relpath, number, reason))
                rejected += 1
                continue
            ts = parse_time(obj.get("timestamp"), ctx)
            if ts is None:
                warnings.append(EvidenceWarning(ctx.relpath, number, "missing or unparseable timestamp"))
            row = {"line": number, "timestamp": ts, "type": obj["type"].strip().upper()}
            rows.append(row | {k: _text(obj.get(k)) for k in _TEXT_FIELDS})
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no alert object in the file")
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)
