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
from pathlib import Path
from typing import IO, Any

from workbench.timeline.build import Timeline, TimelineEntry

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


def entry_row(entry: TimelineEntry, *, redact: Redact = _identity) -> dict[str, Any]:
    """One Timesketch row for a timeline entry (see the module docstring for the fields).

    Returns:
        A dict whose first keys are :data:`REQUIRED_FIELDS`, ``tag`` a list of str, ``timestamp`` an int.
    """
    base = entry.event.to_timesketch()
    tags = list(base.pop("tag"))
    extra_tags = entry.event.extra.get("tags")
    if isinstance(extra_tags, str):
        tags += [t.strip() for t in extra_tags.split(",") if t.strip()]
    if entry.count > 1:
        tags.append("collapsed")
    if entry.flag:
        tags.append(f"time_{entry.flag}")
    tags += [f"milestone:{m}" for m in entry.milestones]
    row: dict[str, Any] = {
        "message": redact(base.pop("message")),
        "datetime": base.pop("datetime"),
        "timestamp": int(base.pop("timestamp")),
        "timestamp_desc": redact(base.pop("timestamp_desc")),
        "data_type": redact(base.pop("data_type")),
        "tag": [redact(t) for t in dict.fromkeys(tags)],
    }
    base.pop("tags", None)
    added: dict[str, Any] = {"count": entry.count, "lane": entry.lane, "tactic": entry.tactic}
    if entry.last != entry.event.timestamp:
        added["last_datetime"] = entry.last.isoformat()
    if entry.flag:
        added["time_flag"] = entry.flag
    if entry.milestones:
        added["milestone"] = ",".join(entry.milestones)
    for key, value in {**base, **added}.items():
        if key not in row:
            row[str(key)] = _scalar(value, redact)
    return row


def timesketch_rows(timeline: Timeline, *, redact: Redact = _identity) -> Iterator[dict[str, Any]]:
    """Timesketch rows for every entry of the timeline, in time order."""
    for entry in timeline.entries:
        yield entry_row(entry, redact=redact)


def write_jsonl(timeline: Timeline, fh: IO[str], *, redact: Redact = _identity) -> int:
    """Write JSON lines (one object per entry, ASCII-escaped) to an open text stream.

    Returns:
        The number of rows written.
    """
    n = 0
    for row in timesketch_rows(timeline, redact=redact):
        fh.write(json.dumps(row, ensure_ascii=True).replace("\x7f", "\\u007f") + "\n")
        n += 1
    return n


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
