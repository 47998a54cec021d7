"""The timeline explorer: a time range, lane and severity filters driving the report's timeline figure and a
linked, paged event table.

The rows are the timeline's (:meth:`workbench.timeline.build.Timeline.frame`: collapsed groups are one row with a
``count``), without those whose time is unusable (``flag`` set): they have no place on a time axis, and the
figure leaves them out too. The lanes are the timeline's (:data:`workbench.timeline.build.LANES`, given to each
row by :func:`~workbench.timeline.build.lane_of`); the figure is the report's
(:func:`workbench.timeline.plots.timeline_figure`), drawn over the rows kept. Narrowed to a range, the figure shows
the milestones inside it and the part of the exposure window inside it, labelled with the whole window's length
(its hover names the whole window). Clicking a marker turns the table to the page of that marker's first event.

:func:`filter_events` is the logic, tested without a browser; :func:`timeline_explorer` wires the controls to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.explore.common import PAGE_SIZE, Explorer, export_bar, figure_html, page_of, pager, redraw
from workbench.htmlkit import html_table, text
from workbench.records import Severity
from workbench.timeline.build import LANES, Timeline
from workbench.timeline.layout import RUN_KINDS, RUN_MILESTONES
from workbench.timeline.markers import at_second

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.conclusions import Conclusions
    from workbench.investigation import Investigation

__all__ = [
    "MAX_TIME_OPTIONS",
    "TABLE_COLUMNS",
    "event_frame",
    "filter_events",
    "range_figure",
    "table_rows",
    "time_options",
    "timeline_explorer",
]

#: columns of the event table, in order (``time`` ISO 8601 UTC to the second)
TABLE_COLUMNS = ["time", "lane", "kind", "severity", "source", "message", "count", "milestone"]
#: the slider's label of a time
_LABEL = "%Y-%m-%d %H:%M:%S"
#: most options of the range slider (each is sent to the browser)
MAX_TIME_OPTIONS = 2000
#: steps of the range slider's options, finest first
_STEPS = tuple(timedelta(seconds=s) for s in (1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400))
_RANKS = {s.value: s.rank for s in Severity}


def event_frame(timeline: Timeline) -> pd.DataFrame:
    """The timeline's rows with a usable time (:meth:`~workbench.timeline.build.Timeline.frame` columns), indexed by
    their position in ``timeline.entries``."""
    frame = timeline.frame()
    return frame[frame["flag"] == ""]


def _utc(ts: datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def filter_events(
    events: pd.DataFrame,
    start: datetime | None = None,
    end: datetime | None = None,
    lanes: Iterable[str] = (),
    min_severity: str = "info",
) -> pd.DataFrame:
    """Timeline rows in a time range, in some lanes, at or above a severity.

    Args:
        events: timeline rows (:func:`event_frame`).
        start / end: the range, both ends included (a naive time is UTC); None: unbounded. A collapsed row is kept
            when its span (``timestamp`` to ``last_timestamp``) meets the range.
        lanes: the lanes kept; empty: every lane.
        min_severity: the least severity kept.

    Returns:
        The rows kept, in their order, with their index.
    """
    floor = Severity.parse(min_severity).rank
    keep = events["severity"].astype(str).map(_RANKS) >= floor
    lo, hi = _utc(start), _utc(end)
    if lo is not None:
        keep &= events["last_timestamp"] >= lo
    if hi is not None:
        keep &= events["timestamp"] <= hi
    wanted = set(lanes)
    if wanted:
        keep &= events["lane"].isin(wanted)
    return events[keep]


def time_options(
    events: pd.DataFrame, most: int = MAX_TIME_OPTIONS
) -> tuple[list[tuple[str, pd.Timestamp]], timedelta]:
    """The range slider's options and the step they stand for: every distinct time of the rows (first and last of
    a collapsed group) to the second, in order, labelled ``YYYY-MM-DD HH:MM:SS`` (UTC); when there are more than
    ``most``, the times rounded down to the finest of :data:`_STEPS` that leaves at most ``most``. An option ``t``
    stands for ``t`` up to ``t + step``."""
    times = pd.concat([events["timestamp"], events["last_timestamp"]])
    for step in _STEPS:  # the coarsest step when none leaves few enough
        floors = times.dt.floor(step).drop_duplicates()
        if len(floors) <= most:
            break
    return [(t.strftime(_LABEL), t) for t in floors.sort_values()], step


def table_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The event table of some timeline rows: :data:`TABLE_COLUMNS`, times ISO 8601 UTC to the second."""
    out = events.assign(time=[at_second(t) for t in events["timestamp"]])
    return out[TABLE_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- the figure
@dataclass(frozen=True, slots=True)
class _Window:
    """The part of the exposure window inside a range, as the figure reads an exposure: its length and its rule
    are the whole window's."""

    start: datetime
    end: datetime | None
    duration: timedelta | None
    end_basis: str
    end_rule: str


@dataclass(frozen=True, slots=True)
class _Marks:
    """What the figure reads of the conclusions (milestones, exposure), narrowed to a range."""

    milestones: Mapping[str, Any]
    exposure: Any


def _within(ts: datetime | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> bool:
    return ts is not None and (lo is None or ts >= lo) and (hi is None or ts <= hi)


def _narrowed(conclusions: Conclusions | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> Any:
    """The conclusions' milestones inside ``lo``..``hi`` and the exposure window cut to the range; the conclusions
    themselves when the range is unbounded. The workbench's own milestone (the report), which the figure notes
    under its axis with its distance from the last incident event, is kept when the range runs to the end."""
    if conclusions is None or (lo is None and hi is None):
        return conclusions
    marks = {
        k: m
        for k, m in conclusions.milestones.items()
        if (m.name in RUN_MILESTONES and hi is None) or (m.name not in RUN_MILESTONES and _within(m.time, lo, hi))
    }
    window, e = None, conclusions.exposure
    meets = e is not None and e.start is not None and (hi is None or e.start <= hi)
    if meets and (lo is None or e.end is None or e.end >= lo):
        start = max(e.start, lo.to_pydatetime()) if lo is not None else e.start
        end = min(e.end, hi.to_pydatetime()) if e.end is not None and hi is not None else e.end
        if (start, end) == (e.start, e.end):
            window = e
        else:
            whole = f"{at_second(e.start)} to {at_second(e.end) if e.end is not None else 'open'}"
            window = _Window(start, end, e.duration, e.end_basis,
                             f"{e.end_rule}; the whole window runs {whole}, cut here to the range shown")  # fmt: skip
    return _Marks(marks, window)


def range_figure(
    inv: Investigation, events: pd.DataFrame, start: datetime | None = None, end: datetime | None = None
) -> go.Figure:
    """The report's timeline figure over some of the timeline's rows, with the milestones and the exposure window
    inside ``start``..``end`` (None: unbounded; both None: the report's marks).

    Args:
        inv: the investigation (its timeline and conclusions).
        events: the rows to draw (:func:`filter_events` of :func:`event_frame`: their index selects the entries).
        start / end: the range the rows were filtered to.
    """
    from workbench.timeline.plots import timeline_figure

    timeline = inv.timeline
    shown = replace(timeline, entries=[timeline.entries[i] for i in events.index])
    return timeline_figure(shown, _narrowed(inv.conclusions, _utc(start), _utc(end)))


# --------------------------------------------------------------------------------------------------- the widget
def timeline_explorer(inv: Investigation) -> Explorer:
    """A time range (``wb-timeline-range``), lane and severity filters over the timeline's rows; the report's
    figure of the rows kept (a ``FigureWidget``), their paged table, a count (``wb-timeline-count``) and an
    export of the rows kept.

    Parts: ``range``, ``lanes``, ``severity``, ``figure``, ``table``, ``count``, ``pager``, ``export``, and
    ``state`` (``rows``: the rows kept, ``page``) and ``jump(lane, time)`` (what a click on a marker does).
    """
    import ipywidgets as w
    import plotly.graph_objects as go

    frame = event_frame(inv.timeline)
    flagged = len(inv.timeline.entries) - len(frame)
    options, step = time_options(frame, MAX_TIME_OPTIONS)
    options = options or [("no dated event", pd.NaT)]
    span = w.SelectionRangeSlider(options=options, index=(0, len(options) - 1), description="time (UTC)",
                                  continuous_update=False, disabled=len(frame) == 0, readout=False,
                                  layout={"width": "100%"}, style={"description_width": "initial"})  # fmt: skip
    # no readout beside the slider (two times do not fit there): the count line below names the range
    span.add_class("wb-timeline-range")
    present = set(frame["lane"])
    lanes = w.SelectMultiple(options=[lane for lane in LANES if lane in present], rows=min(6, max(2, len(present))),
                             description="lanes")  # fmt: skip
    severity = w.Dropdown(options=[s.value for s in Severity], value="info", description="at least")
    count = w.HTML()
    count.add_class("wb-timeline-count")
    table = w.HTML()
    table.add_class("wb-timeline-table")
    figure = go.FigureWidget()  # drawn by the first refresh
    state: dict[str, Any] = {"rows": frame, "page": 0, "range": (None, None)}

    def bounds() -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        lo, hi = span.index
        start = None if lo == 0 else options[lo][1]
        end = None if hi == len(options) - 1 else options[hi][1] + step - pd.Timedelta(microseconds=1)
        return start, end

    def show_page(page: int) -> None:
        rows, state["page"], pages = page_of(state["rows"], page, PAGE_SIZE)
        table.value = html_table(table_rows(rows), mono=("time", "source"), max_rows=PAGE_SIZE)
        show(state["page"], pages, len(state["rows"]))

    bar, show = pager(show_page)

    def jump(lane: str, time: Any) -> None:
        """Turn the table to the page of the first row kept in ``lane`` at or after ``time`` (naive: UTC)."""
        rows = state["rows"].reset_index(drop=True)
        hits = rows.index[(rows["lane"] == lane) & (rows["last_timestamp"] >= _utc(time))]
        if len(hits):
            show_page(int(hits[0]) // PAGE_SIZE)

    def clicked(trace: Any, points: Any, _selector: Any) -> None:
        if points.point_inds:
            jump(points.ys[0], points.xs[0])

    def draw_range(start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
        fig = range_figure(inv, state["rows"], start, end)
        redraw(figure, fig)
        for trace in figure.data:
            trace.on_click(clicked)

    def refresh(*_: object) -> None:
        start, end = bounds()
        state["rows"] = filter_events(frame, start, end, lanes.value, severity.value)
        state["range"] = (start, end)
        rows = state["rows"]
        line = f"<b>{len(rows):,}</b> of {len(frame):,} events"
        if int(rows["count"].sum()) != len(rows):
            line += f" (timeline rows; {int(rows['count'].sum()):,} input events)"
        if start is not None or end is not None:
            line += f", {text(at_second(start or frame['timestamp'].min()))} to "
            line += text(at_second(end.floor("s") if end is not None else frame["last_timestamp"].max()))
        if flagged:
            line += f"; {flagged:,} with unusable times left out"
        own = int(rows["kind"].str.startswith(RUN_KINDS).sum())
        if own:  # the figure's title counts only the incident's events: say why the numbers differ
            line += f"; {own:,} of them the run's own (custody), noted under the figure's axis, not drawn"
        count.value = line
        draw_range(start, end)
        show_page(0)

    for control in (span, lanes, severity):
        control.observe(refresh, names="value")
    refresh()
    exports = export_bar(lambda: state["rows"].drop(columns=["flag"]), inv.out_dir, "timeline")
    box = w.VBox([span, w.HBox([lanes, severity]), count, figure, bar, table, exports])

    def static() -> str:
        return (f"<p>{count.value}</p>" + figure_html(range_figure(inv, state["rows"], *state["range"]))
                + table.value)  # fmt: skip

    return Explorer(box, static, range=span, lanes=lanes, severity=severity, figure=figure, table=table,
                    count=count, pager=bar, export=exports, state=state, jump=jump)  # fmt: skip
