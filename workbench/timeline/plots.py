"""Interactive plotly timeline: events by source lane (or ATLAS tactic), coloured by severity, with milestone
markers and the exposure window shaded.

plotly drops time zones, so every time is converted to UTC and shown without offset; the axis says "UTC". Text from
evidence is escaped (``html.escape``) before it reaches a hover label, and cut to :data:`HOVER_CHARS` characters.

Up to :data:`MAX_POINTS` rows each row is a marker (SVG ``scatter``). Beyond that the rows are aggregated to counts
per lane and time bin (:data:`BINS` bins over the span), coloured by the worst severity in the bin, and drawn with
WebGL (``scattergl``): a 100,000-event timeline stays responsive and its figure stays small. Rows with flagged times
(unparseable, before 1990, future) are left out; the title says how many.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.conclusions.record import iso
from workbench.htmlkit import SEVERITY_COLOURS, html_table
from workbench.records import Severity
from workbench.timeline.build import LANES, Timeline

if TYPE_CHECKING:
    from workbench.conclusions import Conclusions

__all__ = ["BINS", "HOVER_CHARS", "MAX_POINTS", "milestones_table", "timeline_figure"]

MAX_POINTS = 5000
BINS = 300
HOVER_CHARS = 240
MILESTONE_COLOURS = {
    "first_indicator": "#e8a200",
    "compromise": "#8b0000",
    "detection": "#d9480f",
    "containment": "#2f6fb0",
    "recovery": "#2b8a3e",
    "report": "#495057",
}
EXPOSURE_FILL = "rgba(139, 0, 0, 0.10)"
_SEVERITIES = [s.value for s in Severity]


def _naive_utc(values: pd.Series) -> pd.Series:
    return values.dt.tz_convert("UTC").dt.tz_localize(None)


def _hover(df: pd.DataFrame) -> list[str]:
    out = []
    for msg, kind, source, count, tactic in zip(
        df["message"], df["kind"], df["source"], df["count"], df["tactic"], strict=True
    ):
        text = str(msg)
        text = text if len(text) <= HOVER_CHARS else text[: HOVER_CHARS - 1] + "…"
        times = f" ×{count}" if count > 1 else ""
        out.append(f"{escape(text)}{times}<br>{escape(str(kind))} · {escape(str(tactic))}<br>{escape(str(source))}")
    return out


def _points(df: pd.DataFrame, group: str) -> list[go.Scatter]:
    traces = []
    for sev in _SEVERITIES:
        part = df[df["severity"] == sev]
        if part.empty:
            continue
        sizes = [8 + 3 * math.log10(c) for c in part["count"]]
        traces.append(
            go.Scatter(
                x=_naive_utc(part["timestamp"]),
                y=part[group],
                mode="markers",
                name=sev,
                marker={"size": sizes, "color": SEVERITY_COLOURS[sev], "line": {"width": 0.5, "color": "#fff"}},
                text=_hover(part),
                hovertemplate="%{x|%Y-%m-%d %H:%M:%S} UTC<br>%{text}<extra></extra>",
            )
        )
    return traces


def _aggregated(df: pd.DataFrame, group: str, bins: int) -> list[go.Scattergl]:
    ns = df["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]").astype("int64").to_numpy()
    lo, hi = int(ns.min()), int(ns.max())
    width = max((hi - lo) // bins + 1, 1)
    agg = pd.DataFrame(
        {
            "group": df[group].to_numpy(),
            "bin": (ns - lo) // width,
            "count": df["count"].to_numpy(),
            "sev": df["severity"].cat.codes.to_numpy(),
        }
    )
    agg = agg.groupby(["group", "bin"], sort=True).agg(count=("count", "sum"), sev=("sev", "min")).reset_index()
    centre = pd.to_datetime(lo + agg["bin"].to_numpy() * width + width // 2, unit="ns")
    traces = []
    for code, sev in enumerate(_SEVERITIES):
        mask = (agg["sev"] == code).to_numpy()
        if not mask.any():
            continue
        counts = agg["count"].to_numpy()[mask]
        traces.append(
            go.Scattergl(
                x=centre[mask],
                y=agg["group"].to_numpy()[mask],
                mode="markers",
                name=f"{sev} (worst in bin)",
                marker={"size": 6 + 3 * np.log10(counts), "color": SEVERITY_COLOURS[sev]},
                customdata=counts,
                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y}: %{customdata} events<extra></extra>",
            )
        )
    return traces


def _to_naive(ts: object) -> pd.Timestamp | None:
    if ts is None:
        return None
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None)


def timeline_figure(
    timeline: Timeline,
    conclusions: Conclusions | None = None,
    *,
    group_by: str = "lane",
    max_points: int = MAX_POINTS,
    bins: int = BINS,
) -> go.Figure:
    """The timeline as an interactive figure.

    Args:
        timeline: the built timeline.
        conclusions: the run's conclusions: their milestones are marked and their exposure window shaded.
        group_by: ``"lane"`` (source lanes) or ``"tactic"`` (ATLAS tactics) on the y axis.
        max_points: beyond this many rows, aggregate per lane and time bin and draw with WebGL.
        bins: number of time bins when aggregating.

    Returns:
        A plotly figure (x axis UTC), with milestone lines and labels and the exposure window shaded.
    """
    if group_by not in {"lane", "tactic"}:
        raise ValueError(f"group_by must be 'lane' or 'tactic', not {group_by!r}")
    df = timeline.frame()
    flagged = int((df["flag"] != "").sum())
    df = df[df["flag"] == ""]
    present = set(df[group_by])
    order = [g for g in LANES if g in present] if group_by == "lane" else sorted(present)
    aggregated = len(df) > max_points
    fig = go.Figure(_aggregated(df, group_by, bins) if aggregated else _points(df, group_by))
    if conclusions is not None:
        _add_exposure(fig, conclusions, timeline.horizon)
        _add_milestones(fig, conclusions)
    name = f"Timeline {escape(timeline.incident_id)}" if timeline.incident_id else "Timeline"
    title = f"{name}: {int(df['count'].sum()):,} events"
    if aggregated:
        title += f" (aggregated into {bins} time bins)"
    if flagged:
        title += f"; {flagged} with unusable times not shown"
    fig.update_layout(
        title={"text": title, "font": {"size": 15}},
        xaxis={"title": {"text": "time (UTC)"}, "type": "date"},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(order)), "title": None},
        height=240 + 36 * max(1, len(order)),
        legend={"title": {"text": "severity"}},
        margin={"l": 10, "r": 10, "t": 90, "b": 40},
        hovermode="closest",
    )
    return fig


def _add_exposure(fig: go.Figure, conclusions: Conclusions, horizon: datetime) -> None:
    window = conclusions.intervals.get("exposure_window")
    if window is None or window.start is None:
        return
    end = window.end or horizon
    fig.add_shape(
        type="rect",
        xref="x",
        yref="paper",
        x0=_to_naive(window.start),
        x1=_to_naive(end),
        y0=0,
        y1=1,
        fillcolor=EXPOSURE_FILL,
        line={"width": 0},
        layer="below",
    )
    fig.add_annotation(
        x=_to_naive(window.start),
        y=0,
        xref="x",
        yref="paper",
        text=f"exposure window ({window.text})",
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font={"size": 11, "color": "#8b0000"},
    )


def _add_milestones(fig: go.Figure, conclusions: Conclusions) -> None:
    for i, m in enumerate(conclusions.milestones.values()):
        if m.time is None or m.name == "report":  # the report's own time would stretch the axis to today
            continue
        x = _to_naive(m.time)
        colour = MILESTONE_COLOURS.get(m.name, "#495057")
        fig.add_shape(
            type="line",
            xref="x",
            yref="paper",
            x0=x,
            x1=x,
            y0=0,
            y1=1,
            line={"color": colour, "width": 1.5, "dash": "dash"},
        )
        fig.add_annotation(
            x=x,
            y=1.0 + 0.06 * (i % 3),
            xref="x",
            yref="paper",
            text=escape(m.label),
            showarrow=False,
            yanchor="bottom",
            font={"size": 11, "color": colour},
            hovertext=escape(f"{m.label}: {m.time:%Y-%m-%d %H:%M:%S} UTC ({m.rule})"),
        )


def milestones_table(conclusions: Conclusions) -> str:
    """Milestones then intervals as one escaped HTML table: what, when (UTC) or how long, and the rule used."""
    rows = [
        {
            "milestone": m.label,
            "time (UTC) / duration": iso(m.time) or "—",
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
