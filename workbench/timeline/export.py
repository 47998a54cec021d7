"""Timeline exports that Timesketch imports as they are: JSON lines and CSV.

Each row has Timesketch's fields: ``message`` (str), ``datetime`` (ISO 8601 with offset, UTC), ``timestamp`` (int,
microseconds since the Unix epoch), ``timestamp_desc`` (str), ``data_type`` (str, the event kind with ``:``
replaced by ``_``), ``tag`` (list of str in JSONL; one comma-joined string in CSV, as Timesketch's CSV importer
reads it), then flat fields: ``source_file``, ``severity``, ``kind``, ``finding_id`` (when the event supports a
finding), the event's extra fields, and the timeline's ``count``, ``last_datetime`` (rows collapsed over a time
span), ``lane``, ``tactic``, ``time_flag`` (flagged rows) and ``milestone`` (rows that anchor one).

Tags: the severity, the kind's namespace, the event's ``extra["tags"]`` (analyst tags), ``collapsed`` and the
time flag when set, and ``milestone:<name>``.

Secret-free: every text value (the ``datetime`` field aside) and every tag goes through ``redact`` (default: the
identity) before it is written. Values that are not JSON scalars are written as text; NaN becomes null.

Safe for their reader: JSON lines are ASCII with every control character escaped (DEL included), so printing them
to a terminal cannot act on it. In CSV, a text cell (header names included: field names come from evidence) that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read by a spreadsheet as a formula
(CSV injection, e.g. ``=HYPERLINK(...)`` or ``@SUM(...)`` in a log line or a file name); as OWASP recommends, it is
written with a single quote in front (``'=HYPERLINK(...)``), which the spreadsheet shows and does not evaluate.
Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from workbench.timeline.build import Timeline, TimelineEntry
from workbench.timeline.bulk import gc_paused

__all__ = ["FORMATS", "REQUIRED_FIELDS", "csv_cell", "entry_row", "timesketch_rows", "write_csv", "write_jsonl",
           "write_timeline"]  # fmt: skip

#: Timesketch's fields, first in every row and every CSV header.
REQUIRED_FIELDS = ("message", "datetime", "timestamp", "timestamp_desc", "data_type", "tag")
#: file extension → writer name
FORMATS = {".jsonl": "jsonl", ".csv": "csv"}
#: first characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Redact = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def _scalar(value: Any, redact: Redact) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    return redact(value if isinstance(value, str) else str(value))


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell that no spreadsheet evaluates: text starting with a formula character gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Memo:
    """``redact`` called once per distinct value of the low-cardinality fields (kinds, lanes, tags, file names...).

    ``redact`` is a pure function of its text (the identity, or the secret redaction), so a value redacted once is
    redacted the same way every time; messages, nearly all distinct, are redacted one by one without a cache.
    """

    __slots__ = ("cache", "redact", "tags")

    def __init__(self, redact: Redact) -> None:
        self.redact = redact
        self.cache: dict[str, str] = {}
        self.tags: dict[tuple, list[str]] = {}

    def __call__(self, text: str) -> str:
        out = self.cache.get(text)
        if out is None:
            if len(self.cache) >= MEMO_MAX:
                self.cache.clear()
            out = self.cache[text] = self.redact(text)
        return out


#: most distinct values a :class:`_Memo` keeps before it starts again
MEMO_MAX = 100_000


def _memo(redact: Redact) -> _Memo:
    return redact if isinstance(redact, _Memo) else _Memo(redact)


def _value(value: Any, memo: _Memo) -> str | int | float | bool | None:
    """:func:`_scalar` through the memo (int, bool and None as they are, NaN and infinities as null)."""
    if value is None or value is True or value is False or type(value) is int:
        return value
    if type(value) is str:
        return memo(value)
    return _scalar(value, memo)


def entry_row(entry: TimelineEntry, *, redact: Redact = _identity) -> dict[str, Any]:
    """One Timesketch row for a timeline entry (see the module docstring for the fields).

    Returns:
        A dict whose first keys are :data:`REQUIRED_FIELDS`, ``tag`` a list of str, ``timestamp`` an int.
    """
    memo = _memo(redact)
    event = entry.event
    kind, severity, extra = event.kind, event.severity.value, event.extra
    tags = [severity, kind.split(":", 1)[0]]
    extra_tags = extra.get("tags")
    if isinstance(extra_tags, str):
        tags += [t.strip() for t in extra_tags.split(",") if t.strip()]
    if entry.count > 1:
        tags.append("collapsed")
    if entry.flag:
        tags.append(f"time_{entry.flag}")
    tags += [f"milestone:{m}" for m in entry.milestones]
    ts = event.timestamp
    row: dict[str, Any] = {
        "message": memo.redact(event.message),
        "datetime": ts.isoformat(),
        "timestamp": (ts - _EPOCH) // _MICROSECOND,
        "timestamp_desc": memo(event.timestamp_desc),
        "data_type": memo(kind.replace(":", "_")),
        "tag": [memo(t) for t in dict.fromkeys(tags)],
    }
    # Event.to_timesketch's flat fields, then the extra fields, then the timeline's; a later value of a key
    # already present replaces it in place (the timeline's count, lane... over an extra field of the same name)
    added: dict[str, Any] = {"count": entry.count, "lane": entry.lane, "tactic": entry.tactic}
    if entry.last != ts:
        added["last_datetime"] = entry.last.isoformat()
    if entry.flag:
        added["time_flag"] = entry.flag
    if entry.milestones:
        added["milestone"] = ",".join(entry.milestones)
    flat: dict[str, Any] = {"source_file": event.source, "severity": severity, "kind": kind}
    if event.ref:
        flat["finding_id"] = event.ref
    for key, value in extra.items():
        if key not in flat and key not in _EVENT_FIELDS:
            flat[key] = value
    flat.pop("tags", None)
    flat.update(added)
    for key, value in flat.items():
        if key not in row:
            row[str(key)] = _value(value, memo)
    return row


#: the fields Event.to_timesketch sets before the extra ones (an extra field of the same name does not replace them)
_EVENT_FIELDS = frozenset(REQUIRED_FIELDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: one encoder for every row (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(ensure_ascii=True, check_circular=False)
#: rows encoded per write
_CHUNK = 4096


#: keys an extra field may not have for :func:`_fast_row` (the export's own; ``tags`` is skipped there)
_OWN_KEYS = frozenset(REQUIRED_FIELDS) | {"source_file", "severity", "kind", "finding_id", "count", "lane", "tactic",
                                          "last_datetime", "time_flag", "milestone"}  # fmt: skip


def _fast_row(entry: TimelineEntry, memo: _Memo) -> dict[str, Any] | None:
    """:func:`entry_row` for the usual entry (no extra field named like one of the export's own), the same dict
    built without intermediate dicts, the tags computed once per combination; None for any other entry."""
    event = entry.event
    extra = event.extra
    if not extra.keys().isdisjoint(_OWN_KEYS):
        return None
    kind, severity, ts = event.kind, event.severity.value, event.timestamp
    cache = memo.cache
    extra_tags = extra.get("tags")
    key = (severity, kind, extra_tags if isinstance(extra_tags, str) else None, entry.count > 1, entry.flag,
           entry.milestones)  # fmt: skip
    tags = memo.tags.get(key)
    if tags is None:
        tags = memo.tags[key] = entry_row(entry, redact=memo)["tag"]
    row: dict[str, Any] = {
        "message": memo.redact(event.message),
        "datetime": ts.isoformat(),
        "timestamp": (ts - _EPOCH) // _MICROSECOND,
        "timestamp_desc": cache.get(event.timestamp_desc) or memo(event.timestamp_desc),
        "data_type": memo(kind.replace(":", "_")),
        "tag": list(tags),
        "source_file": cache.get(event.source) or memo(event.source),
        "severity": cache.get(severity) or memo(severity),
        "kind": cache.get(kind) or memo(kind),
    }
    if event.ref:
        row["finding_id"] = memo(event.ref)
    for k, v in extra.items():
        if k == "tags":
            continue
        if not (v is None or v is True or v is False or type(v) is int):
            v = (cache.get(v) or memo(v)) if type(v) is str else _scalar(v, memo)
        row[k if type(k) is str else str(k)] = v
    row["count"] = entry.count
    row["lane"] = cache.get(entry.lane) or memo(entry.lane)
    row["tactic"] = cache.get(entry.tactic) or memo(entry.tactic)
    if entry.last != ts:
        row["last_datetime"] = memo.redact(entry.last.isoformat())
    if entry.flag:
        row["time_flag"] = memo(entry.flag)
    if entry.milestones:
        row["milestone"] = memo(",".join(entry.milestones))
    return row


def timesketch_rows(timeline: Timeline, *, redact: Redact = _identity) -> Iterator[dict[str, Any]]:
    """Timesketch rows for every entry of the timeline, in time order."""
    memo = _memo(redact)
    for entry in timeline.entries:
        yield _fast_row(entry, memo) or entry_row(entry, redact=memo)


@gc_paused()
def write_jsonl(timeline: Timeline, fh: IO[str], *, redact: Redact = _identity) -> int:
    """Write JSON lines (one object per entry, ASCII-escaped, DEL escaped too) to an open text stream.

    Returns:
        The number of rows written.
    """
    n = 0
    encode = _ENCODER.encode
    lines: list[str] = []
    for row in timesketch_rows(timeline, redact=redact):
        lines.append(encode(row))
        n += 1
        if len(lines) >= _CHUNK:
            fh.write("\n".join(lines).replace("\x7f", "\\u007f") + "\n")
            lines = []
    if lines:
        fh.write("\n".join(lines).replace("\x7f", "\\u007f") + "\n")
    return n


@gc_paused()
def write_csv(timeline: Timeline, fh: IO[str], *, redact: Redact = _identity) -> int:
    """Write CSV with a header: :data:`REQUIRED_FIELDS` first, then every other field in order of appearance.

    ``tag`` is one comma-joined string; empty cells stand for null; text cells are neutralised with
    :func:`csv_cell`. Lines end with CRLF (RFC 4180): Python's writer quotes a cell holding a carriage return only
    when the line terminator holds one, and an unquoted one would split the row. Open ``fh`` with ``newline=""``.

    Returns:
        The number of rows written.
    """
    rows = list(timesketch_rows(timeline, redact=redact))
    header = dict.fromkeys(REQUIRED_FIELDS)
    for row in rows:
        header.update(dict.fromkeys(row))
    names = list(header)
    writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180; a CR or LF inside a cell is then always quoted
    writer.writerow([csv_cell(name) for name in names])
    for row in rows:
        row = {**row, "tag": ",".join(row["tag"])}
        writer.writerow([csv_cell(row.get(name, "")) for name in names])
    return len(rows)


def write_timeline(timeline: Timeline, path: str | Path, *, redact: Redact = _identity) -> int:
    """Write ``path`` as JSON lines (``.jsonl``) or CSV (``.csv``), chosen by its extension.

    Returns:
        The number of rows written.

    Raises:
        ValueError: the extension is neither ``.jsonl`` nor ``.csv``.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: unknown timeline format {path.suffix or '(none)'!r}; use .jsonl or .csv")
    with path.open("w", encoding="utf-8", newline="") as fh:
        return write_jsonl(timeline, fh, redact=redact) if fmt == "jsonl" else write_csv(timeline, fh, redact=redact)
