"""The Timesketch JSONL export as it was before the columnar/memoised writer (issue 15), kept as the oracle of
tests/timeline/test_export_equivalence.py: the new writer must write the same bytes."""

from __future__ import annotations

import json
import math
from typing import IO, Any

from workbench.timeline.build import Timeline, TimelineEntry


def _scalar(value: Any, redact) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    return redact(value if isinstance(value, str) else str(value))


def entry_row(entry: TimelineEntry, *, redact) -> dict[str, Any]:
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


def write_jsonl(timeline: Timeline, fh: IO[str], *, redact=lambda text: text) -> int:
    n = 0
    for entry in timeline.entries:
        fh.write(json.dumps(entry_row(entry, redact=redact), ensure_ascii=True).replace("\x7f", "\\u007f") + "\n")
        n += 1
    return n
