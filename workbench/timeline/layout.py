"""Geometry of the timeline figure, computed before plotly draws it: which events are the incident's, the axis
range, the time bucket of the lane markers, the tick step and format, and the rows of the labels above the plot.

Everything here is in pixels of a figure of known width (:data:`FIGURE_WIDTH`, the printable width of an A4 page)
with fixed margins (plotly's automatic margins are switched off), so where a label lands can be computed and
tested without a browser. Text widths are estimated from the character count at :data:`CHAR_EM` em per
character, a conservative average for plotly's default sans-serif font (measured in headless Chromium 156 on the
figure's own labels: 0.40 to 0.53 em).

The run's own events are left off the axis: the custody intake (kinds ``ir:custody:*``, written when the workbench
takes custody, :func:`workbench.timeline.sources.evidence_events`) and the report milestone (the generation time,
:func:`workbench.conclusions.timing.milestones_of`). They are dated after the incident, often by days, and would
squeeze it into a corner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape

__all__ = [
    "CHAR_EM",
    "FIGURE_WIDTH",
    "NARROWEST",
    "RUN_KINDS",
    "RUN_MILESTONES",
    "AxisRange",
    "Box",
    "Ticks",
    "axis_range",
    "bucket_for",
    "is_run_event",
    "stack_labels",
    "text_width",
    "ticks_for",
]

#: figure width (px): the printable width of an A4 portrait page in the report
FIGURE_WIDTH = 680
#: narrowest width the figure is drawn at: the HTML report shows figures 620 px wide
#: (``workbench.report.plotly_offline.REPORT_WIDTH``) and prints them at :data:`FIGURE_WIDTH`; labels, ticks and
#: buckets are laid out for the narrower, so they hold at both
NARROWEST = 620
#: estimated glyph width, in em, of the figure's sans-serif font (conservative)
CHAR_EM = 0.62
#: event kinds (prefixes) that record the workbench's own work, not the incident
RUN_KINDS = ("ir:custody",)
#: milestones that record the workbench's own work
RUN_MILESTONES = frozenset({"report"})
#: margin on each side of the incident's span, as a fraction of the span
AXIS_PAD = 0.04
#: span shown around a single instant
MIN_SPAN = timedelta(minutes=30)
#: gap (px) kept between two labels of one row
LABEL_GAP = 6
#: least distance (px) between two markers of a lane: events closer than this are one marker
MIN_BIN_PX = 16
_STEPS = [timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)]
_STEPS += [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)]
_STEPS += [timedelta(hours=h) for h in (1, 2, 3, 6, 12)]
_STEPS += [timedelta(days=d) for d in (1, 2, 7, 14, 28, 91, 182, 364)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_run_event(kind: str) -> bool:
    """Whether an event kind records the workbench's own work (:data:`RUN_KINDS`), not the incident."""
    return kind.startswith(RUN_KINDS)


def text_width(text: str, size: float) -> float:
    """Estimated width (px) of one line of escaped plotly text at a font size (the widest ``<br>`` line)."""
    lines = unescape(text).split("<br>")
    return max(len(line) for line in lines) * size * CHAR_EM


@dataclass(frozen=True, slots=True)
class AxisRange:
    """The time axis: ``lo``..``hi`` (UTC) drawn between pixels ``left``..``right`` of the figure."""

    lo: datetime
    hi: datetime
    left: float
    right: float

    @property
    def span(self) -> timedelta:
        return self.hi - self.lo

    def px(self, ts: datetime) -> float:
        """Horizontal pixel of a time (may fall outside the plot)."""
        return self.left + (ts - self.lo) / self.span * (self.right - self.left)


def axis_range(times: Iterable[datetime], left: float, right: float) -> AxisRange | None:
    """The axis over the incident's times, padded by :data:`AXIS_PAD` (at least :data:`MIN_SPAN` in all); None
    without a time."""
    times = list(times)
    if not times:
        return None
    first, last = min(times), max(times)
    pad = max((last - first) * AXIS_PAD, (MIN_SPAN - (last - first)) / 2)
    return AxisRange(first - pad, last + pad, left, right)


def nice_step(least: timedelta) -> timedelta:
    """The smallest round step (1 s, 2 s, 5 s … 1 h, 3 h … 1 d, 7 d … a year) of at least ``least``."""
    for step in _STEPS:
        if step >= least:
            return step
    years = math.ceil(least / _STEPS[-1])
    return _STEPS[-1] * years


def bucket_for(axis: AxisRange) -> timedelta:
    """Time bucket of the lane markers: the round step covering :data:`MIN_BIN_PX` pixels of the axis."""
    return nice_step(axis.span * MIN_BIN_PX / (axis.right - axis.left))


@dataclass(frozen=True, slots=True)
class Ticks:
    """Ticks of the time axis: the first tick, the step between ticks (ms, or ``"M<n>"`` months), the format."""

    tick0: str
    dtick: int | str
    tickformat: str
    step: timedelta


def ticks_for(axis: AxisRange, size: float) -> Ticks:
    """Ticks whose labels never overlap: the format by span (date; date and minute; time to the second), the step
    the round step that leaves each label its width plus a gap."""
    span = axis.span
    if span > timedelta(days=3):
        fmt, longest = "%Y-%m-%d", "2026-11-19"
    elif span > timedelta(minutes=10):
        fmt, longest = "%H:%M<br>%Y-%m-%d", "2026-11-19"
    else:
        fmt, longest = "%H:%M:%S<br>%Y-%m-%d", "2026-11-19"
    room = text_width(longest, size) + 3 * LABEL_GAP
    step = nice_step(span * room / (axis.right - axis.left))
    if fmt == "%Y-%m-%d" and step < timedelta(days=1):
        step = timedelta(days=1)
    if step >= timedelta(days=28):
        months = max(1, round(step / timedelta(days=30.4)))
        return Ticks("2000-01-01", f"M{months}", "%Y-%m", step)
    start = _EPOCH + (axis.lo - _EPOCH) // step * step
    return Ticks(start.strftime("%Y-%m-%d %H:%M:%S"), int(step.total_seconds() * 1000), fmt, step)


@dataclass(frozen=True, slots=True)
class Box:
    """A label's box in figure pixels: ``x0``..``x1`` across, ``row`` up from the plot's top edge."""

    x0: float
    x1: float
    row: int
    anchor: str


def stack_labels(xs: Sequence[float], widths: Sequence[float], left: float, right: float) -> list[Box]:
    """Place labels (at pixels ``xs``, of ``widths``) in rows so that no two of a row come closer than
    :data:`LABEL_GAP`: each label centred on its x (left- or right-aligned where it would leave the figure), in the
    lowest row where it fits. Returns the boxes in the order of the input."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    rows: list[list[tuple[float, float]]] = []
    out: dict[int, Box] = {}
    for i in order:
        x, w = xs[i], widths[i]
        x0, anchor = x - w / 2, "center"
        if x0 < left:
            x0, anchor = x, "left"
        elif x0 + w > right:
            x0, anchor = x - w, "right"
        x1 = x0 + w
        row = next(
            (r for r, taken in enumerate(rows) if all(x1 + LABEL_GAP <= a or x0 >= b + LABEL_GAP for a, b in taken)),
            len(rows),
        )
        if row == len(rows):
            rows.append([])
        rows[row].append((x0, x1))
        out[i] = Box(x0, x1, row, anchor)
    return [out[i] for i in range(len(xs))]
