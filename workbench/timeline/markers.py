"""Lane markers of the timeline figure: the events of a lane collapsed into counts.

In each lane (or tactic) the events are taken in time order and gathered greedily: a marker starts at its first
event and takes every later event within one time bucket of it (:func:`workbench.timeline.layout.bucket_for`:
the round step covering a few pixels of the axis), so a burst is one marker however the clock divides it, and two
markers of a lane are at least a bucket apart. A marker stands at its first event, has the worst severity of its
events, and counts the input events (a collapsed timeline row counts as many as it stands for).

Its hover lists the events: time (ISO 8601 UTC to the second), severity, and the message, escaped and cut to
:data:`HOVER_CHARS`; at most :data:`HOVER_EVENTS` rows (the most severe, shown in time order), then "… and N more".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from itertools import pairwise

import pandas as pd

from workbench.conclusions.record import display
from workbench.records import Severity

__all__ = ["HOVER_CHARS", "HOVER_EVENTS", "Marker", "at_second", "count_text", "lane_markers"]

#: longest message shown in a hover line (characters)
HOVER_CHARS = 120
#: most events listed in one marker's hover
HOVER_EVENTS = 12
_RANK = {s.value: s.rank for s in Severity}


def at_second(ts: datetime | pd.Timestamp | None) -> str:
    """The one human time format (:func:`~workbench.conclusions.record.display`: ISO 8601 UTC to the second)."""
    if ts is None:
        return "—"
    return display(pd.Timestamp(ts).tz_convert("UTC").to_pydatetime(warn=False)) or "—"


def count_text(n: int) -> str:
    """A marker's count as a short label: ``7``, ``950``, ``1.2k``, ``15k``, ``2.3M``."""
    if n < 1000:
        return str(n)
    for size, unit in ((1_000_000, "M"), (1000, "k")):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(n)  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Marker:
    """One marker of a lane.

    Attributes:
        group: the lane (or tactic).
        time: time of its first event (UTC).
        last: time of its last event (UTC).
        count: input events it stands for.
        severity: the worst severity among them.
        rows: timeline rows gathered.
        hover: the hover text (escaped HTML).
    """

    group: str
    time: datetime
    last: datetime
    count: int
    severity: str
    rows: int
    hover: str


def _line(ts: pd.Timestamp, last: pd.Timestamp, count: int, severity: str, message: str) -> str:
    text = str(message)
    text = text if len(text) <= HOVER_CHARS else text[: HOVER_CHARS - 1] + "…"
    times = ""
    if count > 1:
        times = f" ×{count}" + (f" until {at_second(last)}" if last > ts else "")
    return f"{at_second(ts)} · {severity} · {escape(text)}{times}"


def _hover(group: str, part: pd.DataFrame, count: int) -> str:
    first, last = part["timestamp"].iloc[0], part["last_timestamp"].max()
    head = f"<b>{escape(group)}</b>: {count} event{'s' if count != 1 else ''}"
    if count > 1:
        head += f", {at_second(first)} to {at_second(last)}"
    shown = part
    if len(part) > HOVER_EVENTS:
        ranks = part["severity"].astype(str).map(_RANK)
        shown = part.assign(_rank=ranks).sort_values(["_rank", "timestamp"], ascending=[False, True], kind="stable")
        shown = shown.head(HOVER_EVENTS).sort_values("timestamp", kind="stable")
    lines = [
        _line(ts, lt, int(n), str(sev), msg)
        for ts, lt, n, sev, msg in zip(
            shown["timestamp"], shown["last_timestamp"], shown["count"], shown["severity"], shown["message"],
            strict=True,
        )
    ]  # fmt: skip
    rest = count - int(shown["count"].sum())
    if rest > 0:
        lines.append(f"… and {rest} more")
    return "<br>".join([head, *lines])


def lane_markers(df: pd.DataFrame, group: str, bucket: timedelta) -> list[Marker]:
    """Markers of every lane, in lane then time order.

    Args:
        df: timeline rows (:meth:`~workbench.timeline.build.Timeline.frame` columns) to draw, any order.
        group: the column naming the lane (``lane`` or ``tactic``).
        bucket: events within this long after a marker's first event join it.

    Returns:
        One :class:`Marker` per burst per lane.
    """
    out: list[Marker] = []
    step = pd.Timedelta(bucket)
    for name, rows in df.sort_values("timestamp", kind="stable").groupby(group, sort=True):
        times = rows["timestamp"].tolist()
        starts, start = [], None
        for i, ts in enumerate(times):
            if start is None or ts >= start + step:
                start = ts
                starts.append(i)
        bounds = [*starts, len(times)]
        for a, b in pairwise(bounds):
            part = rows.iloc[a:b]
            count = int(part["count"].sum())
            worst = max(part["severity"].astype(str), key=lambda s: _RANK[s])
            out.append(
                Marker(
                    group=str(name),
                    time=part["timestamp"].iloc[0].to_pydatetime(),
                    last=part["last_timestamp"].max().to_pydatetime(),
                    count=count,
                    severity=worst,
                    rows=len(part),
                    hover=_hover(str(name), part, count),
                )
            )
    return out
