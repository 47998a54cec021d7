"""Interactive plotly timeline of the incident: one lane per source (or ATLAS tactic), the events of a lane
collapsed into counted markers coloured by their worst severity, the conclusions' milestones as dashed lines with
labels that never overlap, and the conclusions' exposure window shaded.

* **Axis.** The time axis covers the incident: from its first dated event to its last (events, milestones and the
  exposure window), padded a little. The workbench's own events (the custody intake, the report's generation:
  :mod:`workbench.timeline.layout`) are left off it and named under the axis with their time and distance from
  the incident ("custody intake 2026-12-02T03:02:58Z, 12 d 16 h after the last incident event →").
* **Markers.** :mod:`workbench.timeline.markers`: one marker per burst per lane, its count printed above it, a
  hover listing the events (capped). Rows with flagged times (unparseable, before 1990, future) are left out; the
  subtitle says how many.
* **Labels.** The milestone labels and the exposure label are placed in rows above the plot
  (:func:`~workbench.timeline.layout.stack_labels`) from their pixel positions at the figure's fixed width, so
  labels of milestones closer than a label's width go to different rows.
* **Print.** The figure is :data:`~workbench.timeline.layout.FIGURE_WIDTH` wide with fixed margins; tick labels
  are spaced by their width (:func:`~workbench.timeline.layout.ticks_for`).

plotly drops time zones, so every time is converted to UTC and drawn without offset; every time written in the
figure is ISO 8601 UTC with ``Z`` to the second. Text from evidence is escaped (``html.escape``) before it reaches a
hover label.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from workbench.conclusions.record import display, format_duration
from workbench.htmlkit import SEVERITY_COLOURS, html_table
from workbench.records import Severity
from workbench.timeline.build import LANES, Timeline
from workbench.timeline.layout import (
    FIGURE_WIDTH,
    NARROWEST,
    RUN_KINDS,
    RUN_MILESTONES,
    AxisRange,
    axis_range,
    bucket_for,
    stack_labels,
    text_width,
    ticks_for,
)
from workbench.timeline.markers import Marker, at_second, count_text, lane_markers

if TYPE_CHECKING:
    from workbench.conclusions import Conclusions

__all__ = ["FIGURE_WIDTH", "milestones_table", "timeline_figure"]

MILESTONE_COLOURS = {
    "first_indicator": "#e8a200",
    "compromise": "#8b0000",
    "detection": "#d9480f",
    "containment": "#2f6fb0",
    "recovery": "#2b8a3e",
    "report": "#495057",
}
EXPOSURE_FILL = "rgba(139, 0, 0, 0.10)"
EXPOSURE_COLOUR = "#8b0000"
#: font sizes (px): title, subtitle, lane names, tick labels, milestone labels, notes under the axis, counts
FONTS = {"title": 14, "subtitle": 11, "lane": 11, "tick": 10, "label": 11, "note": 10, "count": 10}
#: vertical layout (px): title block, one label row, one lane, ticks and axis title, one note line, legend
TITLE_H, ROW_H, LANE_H, AXIS_H, NOTE_H, LEGEND_H = 52, 17, 38, 50, 15, 28
#: right margin (px)
RIGHT_MARGIN = 14
#: the most notes on the workbench's own events written under the axis
MAX_NOTES = 3
_SEVERITIES = [s.value for s in Severity]


def _naive(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None)


def _traces(markers: list[Marker]) -> list[go.Scatter]:
    traces = []
    for sev in _SEVERITIES:
        part = [m for m in markers if m.severity == sev]
        if not part:
            continue
        traces.append(
            go.Scatter(
                x=[_naive(m.time) for m in part],
                y=[m.group for m in part],
                mode="markers+text",
                name=sev,
                text=[count_text(m.count) if m.count > 1 else "" for m in part],
                textposition="top center",
                textfont={"size": FONTS["count"], "color": "#212529", "shadow": "0 0 2px #fff, 0 0 2px #fff"},
                marker={
                    "size": [7 if m.count == 1 else min(9 + 2.5 * len(str(m.count)), 19) for m in part],
                    "color": SEVERITY_COLOURS[sev],
                    "line": {"width": 0.5, "color": "#fff"},
                },
                customdata=[m.count for m in part],
                hovertext=[m.hover for m in part],
                hovertemplate="%{hovertext}<extra></extra>",
                cliponaxis=False,
            )
        )
    return traces


def _incident_times(df: pd.DataFrame, milestones: list, conclusions: Conclusions | None) -> list[datetime]:
    times = [df["timestamp"].min().to_pydatetime(), df["last_timestamp"].max().to_pydatetime()] if len(df) else []
    times += [m.time for m in milestones]
    exposure = conclusions.exposure if conclusions is not None else None
    if exposure is not None and exposure.start is not None:
        times += [t for t in (exposure.start, exposure.end) if t is not None]
    return times


def _run_notes(own: pd.DataFrame, conclusions: Conclusions | None, last: datetime | None) -> list[str]:
    """One line per event of the workbench's own, with its time and its distance from the incident's last event."""
    items = [(" ".join(k.split(":")[1:]) or k, t.to_pydatetime()) for k, t in zip(own["kind"], own["timestamp"],
                                                                                  strict=True)]  # fmt: skip
    if conclusions is not None:
        items += [(m.label.lower() + " generated", m.time) for m in conclusions.milestones.values()
                  if m.name in RUN_MILESTONES and m.time is not None]  # fmt: skip
    items.sort(key=lambda i: i[1])
    lines = []
    for what, ts in items[:MAX_NOTES]:
        if last is None:
            lines.append(f"{escape(what)} {at_second(ts)} (no dated incident event) →")
            continue
        side = "after" if ts >= last else "before"
        distance = format_duration(abs(ts - last))
        lines.append(f"{escape(what)} {at_second(ts)}, {distance} {side} the last incident event →")
    if len(items) > MAX_NOTES:
        lines.append(f"… and {len(items) - MAX_NOTES} more of the workbench's own events, not on the axis")
    return lines


def timeline_figure(
    timeline: Timeline,
    conclusions: Conclusions | None = None,
    *,
    group_by: str = "lane",
    width: int = FIGURE_WIDTH,
) -> go.Figure:
    """The incident's timeline as an interactive figure of fixed width (module docstring).

    Args:
        timeline: the built timeline.
        conclusions: the run's conclusions: their milestones are marked and their exposure window shaded.
        group_by: ``"lane"`` (source lanes) or ``"tactic"`` (ATLAS tactics) on the y axis.
        width: figure width (px); labels and ticks are laid out for it.

    Returns:
        A plotly figure (x axis UTC over the incident), markers carrying their count in ``customdata``.
    """
    if group_by not in {"lane", "tactic"}:
        raise ValueError(f"group_by must be 'lane' or 'tactic', not {group_by!r}")
    df = timeline.frame()
    flagged = int((df["flag"] != "").sum())
    df = df[df["flag"] == ""]
    run = df["kind"].str.startswith(RUN_KINDS)
    own, df = df[run], df[~run]
    milestones = []
    if conclusions is not None:
        milestones = [m for m in conclusions.milestones.values() if m.time is not None and m.name not in RUN_MILESTONES]
    present = set(df[group_by])
    order = [g for g in LANES if g in present] if group_by == "lane" else sorted(present)
    left = max([text_width(escape(g), FONTS["lane"]) for g in order] or [0]) + 14
    narrow = min(width, NARROWEST)  # laid out for the narrower of the HTML and the print width
    times = _incident_times(df, milestones, conclusions)
    axis = axis_range(times, left, narrow - RIGHT_MARGIN)
    notes = _run_notes(own, conclusions, max(times) if times else None)
    bucket = bucket_for(axis) if axis is not None else None
    markers = lane_markers(df, group_by, bucket) if bucket is not None else []
    fig = go.Figure(_traces(markers))
    rows = _decorate(fig, axis, milestones, conclusions, narrow) if axis is not None else 0
    top = TITLE_H + rows * ROW_H + 6
    bottom = AXIS_H + len(notes) * NOTE_H + LEGEND_H
    height = top + bottom + LANE_H * max(1, len(order))
    for i, line in enumerate(notes):
        fig.add_annotation(x=1, xref="paper", y=0, yref="paper", yanchor="top", xanchor="right", showarrow=False,
                           yshift=-(AXIS_H + i * NOTE_H), text=line,
                           font={"size": FONTS["note"], "color": "#495057"})  # fmt: skip
    if axis is None:
        fig.add_annotation(x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, text="no dated incident event",
                           font={"size": FONTS["label"], "color": "#495057"})  # fmt: skip
    _layout(fig, timeline, df, flagged, axis, bucket, order, width, height, (left, RIGHT_MARGIN, top, bottom))
    return fig


def _layout(fig, timeline, df, flagged, axis, bucket, order, width, height, margins) -> None:
    name = f"Timeline {escape(timeline.incident_id)}" if timeline.incident_id else "Timeline"
    lanes = "lanes" if len(order) != 1 else "lane"
    title = f"{name}: {int(df['count'].sum()):,} events in {len(order)} {lanes}"
    sub = []
    if bucket is not None:
        sub.append(f"one marker per burst of {format_duration(bucket)} in a lane; the number counts its events")
    if flagged:
        sub.append(f"{flagged} with unusable times not shown")
    xaxis: dict = {"title": {"text": "time (UTC)", "font": {"size": FONTS["tick"]}, "standoff": 6}, "type": "date",
                   "automargin": False, "tickfont": {"size": FONTS["tick"]}, "showline": True, "linecolor": "#999",
                   "ticks": "outside", "ticklen": 4}  # fmt: skip
    if axis is not None:
        ticks = ticks_for(axis, FONTS["tick"])
        xaxis.update(range=[_naive(axis.lo), _naive(axis.hi)], tick0=ticks.tick0, dtick=ticks.dtick,
                     tickformat=ticks.tickformat, tickmode="linear")  # fmt: skip
    left, right, top, bottom = margins
    fig.update_layout(
        title={"text": title, "font": {"size": FONTS["title"]}, "x": 0, "xref": "container", "xanchor": "left",
               "pad": {"l": 8}, "y": 1 - 8 / height, "yanchor": "top",
               "subtitle": {"text": "; ".join(sub), "font": {"size": FONTS["subtitle"], "color": "#495057"}}},
        xaxis=xaxis,
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(order)), "title": None, "automargin": False,
               "tickfont": {"size": FONTS["lane"]}, "range": [-0.6, max(1, len(order)) - 0.4]},
        width=width,
        height=height,
        autosize=False,
        showlegend=bool(fig.data),
        legend={"title": {"text": "worst severity", "font": {"size": FONTS["note"]}}, "orientation": "h",
                "itemsizing": "constant", "x": 1, "xanchor": "right", "y": 4 / height,
                "yref": "container", "yanchor": "bottom", "font": {"size": FONTS["note"]}},
        margin={"l": left, "r": right, "t": top, "b": bottom},
        hovermode="closest",
        hoverlabel={"align": "left", "font": {"size": 11}},
        plot_bgcolor="#f6f7f9",
    )  # fmt: skip


def _decorate(fig: go.Figure, axis: AxisRange, milestones: list, conclusions: Conclusions | None, width: int) -> int:
    """The exposure window, the milestone lines (under the markers) and the labels above the plot; returns the
    number of label rows."""
    labels: list[tuple[datetime, str, str, str]] = []  # (x, text, colour, hover)
    exposure = conclusions.exposure if conclusions is not None else None
    if exposure is not None and exposure.start is not None:
        end = exposure.end or axis.hi
        fig.add_shape(type="rect", xref="x", yref="paper", x0=_naive(exposure.start), x1=_naive(end), y0=0, y1=1,
                      fillcolor=EXPOSURE_FILL, line={"width": 0}, layer="below", name="exposure window")  # fmt: skip
        length = format_duration(exposure.duration) if exposure.end is not None else "open, no end in the evidence"
        until = at_second(exposure.end) if exposure.end is not None else "open"
        hover = f"Exposure window {at_second(exposure.start)} to {until} "
        hover += f"(end: {exposure.end_basis}; {exposure.end_rule})"
        exposure_label = (exposure.start + (end - exposure.start) / 2, escape(f"exposure window {length}"),
                          EXPOSURE_COLOUR, escape(hover))  # fmt: skip
    for m in milestones:
        colour = MILESTONE_COLOURS.get(m.name, "#495057")
        fig.add_shape(type="line", xref="x", yref="paper", x0=_naive(m.time), x1=_naive(m.time), y0=0, y1=1,
                      line={"color": colour, "width": 1.5, "dash": "dash"}, layer="below")  # fmt: skip
        hover = f"{m.label} {at_second(m.time)}: {m.rule}" + (f" ({m.source})" if m.source else "")
        labels.append((m.time, escape(m.label), colour, escape(hover)))
    if exposure is not None and exposure.start is not None:
        labels.append(exposure_label)
    boxes = stack_labels([axis.px(x) for x, *_ in labels], [text_width(t, FONTS["label"]) for _, t, *_ in labels],
                         4, width - 4)  # fmt: skip
    for (x, text, colour, hover), box in zip(labels, boxes, strict=True):
        fig.add_annotation(x=_naive(x), xref="x", y=1, yref="paper", yanchor="bottom", xanchor=box.anchor,
                           yshift=2 + box.row * ROW_H, text=text, showarrow=False, hovertext=hover,
                           font={"size": FONTS["label"], "color": colour})  # fmt: skip
    return 1 + max((b.row for b in boxes), default=-1)


def milestones_table(conclusions: Conclusions) -> str:
    """Milestones then intervals as one escaped HTML table: what, when (UTC) or how long, and the rule used."""
    rows = [
        {
            "milestone": m.label,
            "time (UTC) / duration": display(m.time) or "—",
            "rule": m.rule,
            "from": m.source or "",
        }
        for m in conclusions.milestones.values()
    ]
    rows += [
        {"milestone": i.label, "time (UTC) / duration": i.text, "rule": i.rule, "from": ""}
        for i in conclusions.intervals.values()
    ]
    return html_table(pd.DataFrame(rows), mono=("time (UTC) / duration", "from"))
