"""Loader for the model's prediction records (``predictions/predictions.jsonl`` or ``predictions.csv``).

The file is streamed once into compact columns (:class:`~workbench.evidence.prediction_table.PredictionTable`, in
``meta["table"]``; about 32 bytes a record); the documented frame is built from the table on first use only. Text
leaving the loader is valid Unicode (a JSON ``"\\ud800"`` escape becomes U+FFFD, with a warning naming the file and
line).

Caps (``docs/limits.md``): the table's (records kept, distinct labels and model versions); at most
:data:`MAX_WARNINGS` per-line warnings (then one summary); reading stops after :data:`MAX_SECONDS` (the rest of the
file is named in the table's ``unexamined``).
"""

from __future__ import annotations

import csv
import math
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence import prediction_fast
from workbench.evidence.base import (
    MAX_LINE_CHARS,
    LoadContext,
    Loaded,
    Loader,
    is_regular_file,
    iter_lines,
    parse_json,
    sniff_lines,
)
from workbench.evidence.prediction_lines import count_lines, csv_row, json_record, scalar_text
from workbench.evidence.prediction_table import (
    MAX_LABELS,
    MAX_ROWS,
    MAX_TEXT_ROWS,
    MAX_VERSIONS,
    NAT,
    OVERFLOW_LABEL,
    OVERFLOW_VERSION,
    PredictionTable,
    _Columns,
    request_key,
    time_ns,
)
from workbench.records import EvidenceWarning

__all__ = ["MAX_SECONDS", "MAX_WARNINGS", "PredictionsLoader"]

#: Per-line warnings per file; the rest are counted in one.
MAX_WARNINGS = 1_000
#: Seconds spent reading one file; the rest of it is not read (unexamined).
MAX_SECONDS = 600.0
_CHUNK = 65_536
_CLASS_KEYS = ("predicted_class", "label")
_OTHER_KEYS = ("timestamp", "request_id", "confidence", "model_version")
_JSONL = {".jsonl", ".ndjson"}
_NAMES = re.compile(r"^predictions?([._-][\w.-]*)?\.(jsonl|ndjson|csv)$", re.IGNORECASE)


class PredictionsLoader(Loader):
    """Prediction records of the served model, one per line (JSON lines) or row (CSV with a header).

    The class is taken from ``predicted_class`` or, when that field/column is absent, ``label``. The records are
    read into a :class:`PredictionTable` (``meta["table"]``); the frame below is built from it on first use.

    Columns:
        line (int): 1-based line number.
        timestamp (datetime): prediction time (UTC; NaT with a warning when missing or bad).
        label (str): predicted class, as text (categorical).
        confidence (float): model confidence, NaN when absent.
        model_version (str): served model version, or null (categorical).
        request_id (str): request id, or null (the first ``MAX_TEXT_ROWS`` records; the table keys them all).
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
                keys = {c.strip().lower() for c in csv_row(lines[0])}
            except csv.Error:
                return False
        else:
            try:
                obj = parse_json(lines[0])
            except ValueError:
                return False
            keys = set(obj) if isinstance(obj, dict) else set()
        return "predicted_class" in keys or ("label" in keys and any(k in keys for k in _OTHER_KEYS))

    def __init__(self, *, fast: bool = True) -> None:
        self.fast = fast

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per prediction; a record without a class is a warning and is skipped.

        Files go through :mod:`workbench.evidence.prediction_fast` (same table and warnings) unless the loader was
        made with ``fast=False`` or polars is missing.

        Raises:
            MalformedEvidence: no class field/column at all, or no usable record in a non-empty file.
        """
        reader = _Reader(ctx, count_lines(path, ctx))
        csv_file = path.suffix.lower() == ".csv"
        if self.fast and prediction_fast.available():
            try:
                fh = safeio.open_evidence(path)
            except OSError as exc:
                raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
            with fh:
                prediction_fast.read_fast(fh, reader, csv=csv_file)
        else:
            records = self._csv(path, ctx, reader) if csv_file else self._jsonl(path, ctx, reader)
            for number, rec in records:
                reader.add(number, rec)
                if reader.stopped:
                    break
        table = reader.table()
        if reader.rejected and not len(table):
            reason = (
                "no usable prediction record" if reader.saw_class else ("no 'predicted_class' or 'label' in any record")
            )
            raise MalformedEvidence(ctx.relpath, reason)
        return Loaded(self.name, ctx.relpath, table.frame, reader.warnings, {"table": table})

    @staticmethod
    def _jsonl(path: Path, ctx: LoadContext, reader: _Reader) -> Any:
        """Yield (line, object) or (line, reason) for each non-blank line."""
        for number, text in iter_lines(path, ctx, reader.warnings):
            if not text or text.isspace():
                continue
            yield number, json_record(text, number, ctx, reader.warnings)

    @staticmethod
    def _csv(path: Path, ctx: LoadContext, reader: _Reader) -> Any:
        """Yield (line, {column: value}) or (line, reason) for each data row after the header.

        Raises:
            MalformedEvidence: the header has neither ``predicted_class`` nor ``label``.
        """
        header: list[str] | None = None
        for number, text in iter_lines(path, ctx, reader.warnings):
            if not text or text.isspace():
                continue
            try:
                cells = csv_row(text)
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


class _Reader:
    """The records of one file turned into columns, with the caps and the per-line warnings."""

    def __init__(self, ctx: LoadContext, capacity: int) -> None:
        self.ctx = ctx
        self.warnings: list[EvidenceWarning] = []
        self.columns = _Columns(capacity, MAX_ROWS, _CHUNK)
        self.labels: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.ids: list[str | None] = []
        self.rejected = 0
        self.saw_class = False
        self.stopped = False
        self.problems = 0
        self.last_line = 0
        self.limits: list[str] = []
        self.deadline = time.monotonic() + MAX_SECONDS
        self._decode_reported = False

    def warn(self, line: int, reason: str) -> None:
        self.problems += 1
        if self.problems <= MAX_WARNINGS:
            self.warnings.append(EvidenceWarning(self.ctx.relpath, line, reason))

    def add(self, number: int, rec: dict | str) -> None:
        self.last_line = number
        if isinstance(rec, str):
            self.warn(number, rec)
            self.rejected += 1
            return
        key = next((k for k in _CLASS_KEYS if rec.get(k) is not None), None)
        self.saw_class = self.saw_class or any(k in rec for k in _CLASS_KEYS)
        label = scalar_text(rec.get(key)) if key else None
        if not label:
            self.warn(number, "no predicted_class or label")
            self.rejected += 1
            return
        problems: list[str] = []
        raw_time = rec.get("timestamp")
        ns = time_ns(raw_time, self.ctx)
        if ns == NAT:
            problems.append("missing or unparseable timestamp")
        raw_conf = rec.get("confidence")
        confidence = math.nan
        if type(raw_conf) is float and 0.0 <= raw_conf <= 1.0:
            confidence = raw_conf
        elif raw_conf not in (None, ""):
            confidence = self._confidence(raw_conf, problems)
        if problems:
            self.warn(number, "; ".join(problems))
        cols = self.columns
        cols.line(number)
        cols.ts(ns)
        cols.label(self._code(self.labels, label, MAX_LABELS, OVERFLOW_LABEL, "labels"))
        cols.conf(confidence)
        version = scalar_text(rec.get("model_version")) or None
        cols.version(-1 if version is None else self._code(self.versions, version, MAX_VERSIONS, OVERFLOW_VERSION,
                                                           "model versions"))  # fmt: skip
        request_id = scalar_text(rec.get("request_id")) or None
        cols.key(request_key(request_id))
        if len(self.ids) < MAX_TEXT_ROWS:
            self.ids.append(request_id)
        if len(cols.cur[0]) >= cols.chunk:
            cols.flush()
            if time.monotonic() > self.deadline:
                self.stopped = True

    def _text(self, number: int, data: bytes) -> str:
        """One line's text (its bytes without the newline) as :func:`iter_lines` gives it."""
        if len(data) > MAX_LINE_CHARS:
            self.warnings.append(EvidenceWarning(self.ctx.relpath, number, f"line longer than {MAX_LINE_CHARS} "
                                                 "bytes, cut"))  # fmt: skip
            data = data[:MAX_LINE_CHARS]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            if not self._decode_reported:
                self.warnings.append(EvidenceWarning(self.ctx.relpath, number, "invalid UTF-8, bytes replaced"))
                self._decode_reported = True
        if number == 1:
            text = text.removeprefix("\ufeff")
        return text.rstrip("\r\n")

    def careful_line(self, number: int, data: bytes) -> dict | str | None:
        """One JSON line read and added as :meth:`PredictionsLoader._jsonl` does; the record (None when blank)."""
        text = self._text(number, data)
        if not text or text.isspace():
            return None
        rec = json_record(text, number, self.ctx, self.warnings)
        self.add(number, rec)
        return rec

    def csv_line(self, number: int, data: bytes, header: list[str] | None) -> list[str] | None:
        """One CSV line read and added as :meth:`PredictionsLoader._csv` does, under ``header`` (None before it);
        returns the header (this line's, when it is the first row).

        Raises:
            MalformedEvidence: the header has neither ``predicted_class`` nor ``label``.
        """
        text = self._text(number, data)
        if not text or text.isspace():
            return header
        try:
            cells = csv_row(text)
        except csv.Error as exc:
            self.add(number, f"bad CSV: {exc}")
            return header
        if header is None:
            header = [c.strip().lower() for c in cells]
            if not any(k in header for k in _CLASS_KEYS):
                raise MalformedEvidence(self.ctx.relpath, "CSV header has no 'predicted_class' or 'label'", number)
            return header
        if len(cells) != len(header):
            self.add(number, f"{len(cells)} cells, header has {len(header)}")
        else:
            self.add(number, {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)})
        return header

    def add_rows(self, lines: np.ndarray, cols: prediction_fast.Columns, start: int, stop: int) -> None:
        """Rows ``start:stop`` of a run's fast columns (lines ``lines``), with no problem to warn about."""
        big = np.iinfo(np.int64).max
        while True:  # codes in first-seen order, a record's label before its version (as :meth:`add` codes them)
            at_label = cols.label_first[cols.label_next] if cols.label_next < len(cols.labels) else big
            at_version = cols.version_first[cols.version_next] if cols.version_next < len(cols.versions) else big
            if min(at_label, at_version) >= stop:
                break
            if at_label <= at_version:
                j = cols.label_next
                cols.label_lut[j] = self._code(self.labels, cols.labels[j], MAX_LABELS, OVERFLOW_LABEL, "labels")
                cols.label_next += 1
            else:
                j = cols.version_next
                cols.version_lut[j] = self._code(self.versions, cols.versions[j], MAX_VERSIONS, OVERFLOW_VERSION,
                                                 "model versions")  # fmt: skip
                cols.version_next += 1
        self.saw_class = True
        columns = self.columns
        pos = start
        while pos < stop:
            take = min(stop - pos, max(1, columns.chunk - len(columns.cur[0])))
            part = slice(pos, pos + take)
            line, ts, label, conf, version, key = columns.cur
            line.frombytes(lines[pos - start : pos - start + take].astype(np.int32).tobytes())
            ts.frombytes(cols.time[part].tobytes())
            label.frombytes(cols.label_lut[cols.label[part]].tobytes())
            conf.frombytes(cols.conf[part].tobytes())
            version.frombytes(cols.version_lut[cols.version[part]].tobytes())
            key.frombytes(cols.key[part].tobytes())
            if len(self.ids) < MAX_TEXT_ROWS:
                self.ids.extend(cols.ids[part][: MAX_TEXT_ROWS - len(self.ids)])
            pos += take
            self.last_line = int(lines[pos - start - 1])
            if len(columns.cur[0]) >= columns.chunk:
                columns.flush()
                if time.monotonic() > self.deadline:
                    self.stopped = True
                    return

    @staticmethod
    def _confidence(raw: Any, problems: list[str]) -> float:
        try:
            value = float(raw) if not isinstance(raw, bool | dict | list) else None
        except (ValueError, OverflowError):
            value = None
        if value is None or not math.isfinite(value):
            problems.append(f"confidence {raw!r:.40} is not a number")
            return math.nan
        if not 0.0 <= value <= 1.0:
            problems.append(f"confidence {value} outside [0, 1]")
        return value

    def _code(self, codes: dict[str, int], text: str, cap: int, overflow: str, what: str) -> int:
        code = codes.get(text)
        if code is None:
            if len(codes) >= cap:
                if overflow not in codes:
                    codes[overflow] = len(codes)
                    self.limits.append(f"{self.ctx.relpath}: more than {cap:,} distinct {what}; the later new ones "
                                       f"are counted together as {overflow!r}")  # fmt: skip
                return codes[overflow]
            code = codes[text] = len(codes)
        return code

    def table(self) -> PredictionTable:
        (line, ts, label, conf, version, key), gap = self.columns.arrays()
        unexamined = []
        if gap is not None:
            unexamined.append(
                f"{self.ctx.relpath}: {gap[0]:,} records of lines {gap[1]:,} to {gap[2]:,} not analysed "
                f"(over the cap of {MAX_ROWS:,} records: the first and the last {MAX_ROWS // 2:,} are)"
            )
        if self.stopped:
            unexamined.append(f"{self.ctx.relpath}: not read after line {self.last_line:,} (time budget of "
                              f"{MAX_SECONDS:g} s)")  # fmt: skip
        if self.problems > MAX_WARNINGS:
            self.warnings.append(EvidenceWarning(self.ctx.relpath, None, f"{self.problems - MAX_WARNINGS:,} more "
                                                 "lines with problems (not listed one by one)"))  # fmt: skip
        return PredictionTable(line, ts, label, tuple(self.labels), conf, version, tuple(self.versions), key,
                               self.ids, unexamined, self.limits)  # fmt: skip
