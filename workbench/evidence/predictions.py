"""Loader for the model's prediction records (``predictions/predictions.jsonl`` or ``predictions.csv``)."""

from __future__ import annotations

import csv
import math
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

__all__ = ["PredictionsLoader"]

_CLASS_KEYS = ("predicted_class", "label")
_OTHER_KEYS = ("timestamp", "request_id", "confidence", "model_version")
_JSONL = {".jsonl", ".ndjson"}
_NAMES = re.compile(r"^predictions?([._-][\w.-]*)?\.(jsonl|ndjson|csv)$", re.IGNORECASE)


def _scalar_text(value: Any) -> str | None:
    """Text of a JSON scalar (``1`` -> ``"1"``); None for null, objects and arrays."""
    if value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def _csv_row(text: str) -> list[str]:
    return next(csv.reader([text]), [])


class PredictionsLoader(Loader):
    """Prediction records of the served model, one per line (JSON lines) or row (CSV with a header).

    The class is taken from ``predicted_class`` or, when that field/column is absent, ``label``.

    Columns:
        line (int): 1-based line number.
        timestamp (datetime): prediction time (UTC; NaT with a warning when missing or bad).
        label (str): predicted class, as text.
        confidence (float): model confidence, NaN when absent.
        model_version (str): served model version, or null.
        request_id (str): request id, or null.
    """

    name: ClassVar[str] = "predictions"
    columns: ClassVar[dict[str, str]] = {
        "line": "int",
        "timestamp": "datetime",
        "label": "str",
        "confidence": "float",
        "model_version": "str",
        "request_id": "str",
    }

    def detect(self, path: Path) -> bool:
        """A JSON-lines file whose first object has a class field, or a CSV whose header has a class column."""
        suffix = path.suffix.lower()
        if not is_regular_file(path) or suffix not in _JSONL | {".csv"}:
            return False
        lines = sniff_lines(path, limit=1)
        if not lines:
            return bool(_NAMES.match(path.name))
        if suffix == ".csv":
            try:
                keys = {c.strip().lower() for c in _csv_row(lines[0])}
            except csv.Error:
                return False
        else:
            try:
                obj = parse_json(lines[0])
            except ValueError:
                return False
            keys = set(obj) if isinstance(obj, dict) else set()
        return "predicted_class" in keys or ("label" in keys and any(k in keys for k in _OTHER_KEYS))

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per prediction; a record without a class is a warning and is skipped.

        Raises:
            MalformedEvidence: no class field/column at all, or no usable record in a non-empty file.
        """
        warnings: list[EvidenceWarning] = []
        records = self._csv(path, ctx, warnings) if path.suffix.lower() == ".csv" else self._jsonl(path, ctx, warnings)
        rows: list[dict] = []
        rejected = 0
        saw_class = False
        for number, rec in records:
            if isinstance(rec, str):
                warnings.append(EvidenceWarning(ctx.relpath, number, rec))
                rejected += 1
                continue
            key = next((k for k in _CLASS_KEYS if rec.get(k) is not None), None)
            saw_class = saw_class or any(k in rec for k in _CLASS_KEYS)
            label = _scalar_text(rec.get(key)) if key else None
            if not label:
                warnings.append(EvidenceWarning(ctx.relpath, number, "no predicted_class or label"))
                rejected += 1
                continue
            row, problems = self._row(number, rec, label, ctx)
            if problems:
                warnings.append(EvidenceWarning(ctx.relpath, number, "; ".join(problems)))
            rows.append(row)
        if rejected and not rows:
            reason = "no usable prediction record" if saw_class else "no 'predicted_class' or 'label' in any record"
            raise MalformedEvidence(ctx.relpath, reason)
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)

    @staticmethod
    def _row(number: int, rec: dict, label: str, ctx: LoadContext) -> tuple[dict, list[str]]:
        problems: list[str] = []
        ts = parse_time(rec.get("timestamp"), ctx)
        if ts is None:
            problems.append("missing or unparseable timestamp")
        raw_conf = rec.get("confidence")
        confidence = None
        if raw_conf not in (None, ""):
            try:
                confidence = float(raw_conf) if not isinstance(raw_conf, bool | dict | list) else None
            except (ValueError, OverflowError):
                confidence = None
            if confidence is None or not math.isfinite(confidence):
                problems.append(f"confidence {raw_conf!r:.40} is not a number")
                confidence = None
            elif not 0.0 <= confidence <= 1.0:
                problems.append(f"confidence {confidence} outside [0, 1]")
        row = {
            "line": number,
            "timestamp": ts,
            "label": label,
            "confidence": confidence,
            "model_version": _scalar_text(rec.get("model_version")) or None,
            "request_id": _scalar_text(rec.get("request_id")) or None,
        }
        return row, problems

    @staticmethod
    def _jsonl(path: Path, ctx: LoadContext, warnings: list) -> Any:
        """Yield (line, object) or (line, reason) for each non-blank line."""
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            try:
                obj = clean_parsed(parse_json(text), ctx, number, warnings)
            except ValueError:
                obj = None
            yield number, obj if isinstance(obj, dict) else "not a JSON object"

    @staticmethod
    def _csv(path: Path, ctx: LoadContext, warnings: list) -> Any:
        """Yield (line, {column: value}) or (line, reason) for each data row after the header.

        Raises:
            MalformedEvidence: the header has neither ``predicted_class`` nor ``label``.
        """
        header: list[str] | None = None
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            try:
                cells = _csv_row(text)
            except csv.Error as exc:
                yield number, f"bad CSV: {exc}"
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                if not any(k in header for k in _CLASS_KEYS):
                    raise MalformedEvidence(ctx.relpath, "CSV header has no 'predicted_class' or 'label'", number)
                continue
            if len(cells) != len(header):
                yield number, f"{len(cells)} cells, header has {len(header)}"
                continue
            yield number, {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)}
