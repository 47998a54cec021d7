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

import numpy as np
import pandas as pd

from workbench.conclusions.record import display

__all__ = ["HOVER_CHARS", "HOVER_EVENTS", "Marker", "at_second", "count_text", "lane_markers"]

#: longest message shown in a hover line (characters)
HOVER_CHARS = 120
#: most events listed in one marker's hover
HOVER_EVENTS = 12


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


@dataclass(frozen=True, slots=True)
class _Lane:
    """One lane's rows as arrays, in time order (``codes``: severity category codes, 0 the worst)."""

    ns: np.ndarray
    first: pd.DatetimeIndex
    last: pd.DatetimeIndex
    counts: np.ndarray
    codes: np.ndarray
    severities: list[str]
    messages: np.ndarray


def _hover(group: str, lane: _Lane, a: int, b: int, count: int) -> str:
    first, last = lane.first[a], lane.last[a:b].max()
    head = f"<b>{escape(group)}</b>: {count} event{'s' if count != 1 else ''}"
    if count > 1:
        head += f", {at_second(first)} to {at_second(last)}"
    shown = np.arange(a, b)
    if b - a > HOVER_EVENTS:  # the most severe, earliest first among equals, then listed in time order
        shown = np.sort(shown[np.lexsort((lane.ns[a:b], lane.codes[a:b]))[:HOVER_EVENTS]])
    lines = [
        _line(lane.first[i], lane.last[i], int(lane.counts[i]), lane.severities[lane.codes[i]], lane.messages[i])
        for i in shown
    ]
    rest = count - int(lane.counts[shown].sum())
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
    step = int(pd.Timedelta(bucket).value)
    severities = [str(c) for c in df["severity"].cat.categories]
    for name, rows in df.sort_values("timestamp", kind="stable").groupby(group, sort=True):
        first = pd.DatetimeIndex(rows["timestamp"]).tz_convert("UTC")
        lane = _Lane(
            ns=first.as_unit("ns").asi8,
            first=first,
            last=pd.DatetimeIndex(rows["last_timestamp"]).tz_convert("UTC"),
            counts=rows["count"].to_numpy(),
            codes=rows["severity"].cat.codes.to_numpy(),
            severities=severities,
            messages=rows["message"].to_numpy(),
        )
        a = 0
        while a < len(lane.ns):  # greedy: a burst takes every event within one bucket of its first
            b = int(np.searchsorted(lane.ns, lane.ns[a] + step, side="left"))
            count = int(lane.counts[a:b].sum())
            out.append(
                Marker(
                    group=str(name),
                    time=lane.first[a].to_pydatetime(),
                    last=lane.last[a:b].max().to_pydatetime(),
                    count=count,
                    severity=severities[int(lane.codes[a:b].min())],
                    rows=b - a,
                    hover=_hover(str(name), lane, a, b, count),
                )
            )
            a = b
    return out
