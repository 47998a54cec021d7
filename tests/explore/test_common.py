"""explore.common: live figures keep their time axes (no nanosecond integers in the browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.explore.common import figure_html, redraw


def test_redraw_sends_times_as_iso_text():
    times = pd.date_range("2026-11-14T03:00:00", periods=3, freq="h").to_numpy()  # naive UTC, as the figures hold
    assert times.dtype.kind == "M"
    fig = go.Figure(go.Scatter(x=times, y=[1, 2, 3]))
    widget = go.FigureWidget()
    redraw(widget, fig)
    x = widget.data[0].x
    assert [str(v) for v in x] == ["2026-11-14T03:00:00.000000", "2026-11-14T04:00:00.000000",
                                   "2026-11-14T05:00:00.000000"]  # fmt: skip
    assert list(widget.data[0].y) == [1, 2, 3]


def test_redraw_leaves_other_arrays_alone():
    fig = go.Figure(go.Bar(x=np.array([1.5, 2.5]), y=np.array([3, 4])))
    widget = go.FigureWidget()
    redraw(widget, fig)
    assert widget.data[0].x.dtype.kind == "f" and list(widget.data[0].x) == [1.5, 2.5]


def test_figure_html_leaves_plotlyjs_to_the_setup_cell():
    html = figure_html(go.Figure(go.Scatter(x=[1], y=[2])))
    assert html.startswith('<div class="wb-figure">') and "Plotly.newPlot" in html and len(html) < 20_000
