"""What every explorer shares: the static view under papermill and nbconvert, paging, and the export of a selection.

An explorer is one call from a notebook cell returning an :class:`Explorer`: in JupyterLab the live ipywidgets view
(its widget-view output), and in the same output a ``text/html`` static view of its first state, which is what
nbconvert's HTML and a notebook viewer without a kernel show. The logic of each explorer is in plain functions
tested without a browser; the widgets only wire controls to them. Every value shown comes from the investigation's
(already redacted) records and goes through :func:`workbench.htmlkit.text` or :func:`~workbench.htmlkit.html_table`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.htmlkit import text

if TYPE_CHECKING:
    import ipywidgets
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["PAGE_SIZE", "Explorer", "export_bar", "export_frame", "figure_html", "page_of", "pager", "redraw"]

#: rows of a paged table shown at once
PAGE_SIZE = 25
#: what an export's file name may hold (the explorer's name, made from our own words, never evidence)
_NAME = re.compile(r"[^a-z0-9-]+")


class Explorer:
    """A live widget with a static fallback (see the module docstring).

    Attributes:
        widget: the ipywidgets box shown in JupyterLab.
        static: called when the output is made: the HTML of the explorer's current state.
        parts: the explorer's controls and panes by name, for tests and for analysts who script them.
    """

    def __init__(self, widget: ipywidgets.Widget, static: Callable[[], str], **parts: Any) -> None:
        self.widget, self.static, self.parts = widget, static, parts
        widget.add_class("wb-explorer")  # full width; its HTML panes scroll sideways instead of clipping (STYLE)
        widget.layout.width = "100%"

    def __getitem__(self, name: str) -> Any:
        return self.parts[name]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.static()
        return bundle


def page_of(frame: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int, int]:
    """Rows of page ``page`` (counted from 0, clamped), the page shown and the number of pages (at least 1)."""
    pages = max(1, -(-len(frame) // size))
    page = min(max(page, 0), pages - 1)
    return frame.iloc[page * size : (page + 1) * size], page, pages


def pager(on_change: Callable[[int], None]) -> tuple[ipywidgets.HBox, Callable[[int, int, int], None]]:
    """Previous/next buttons and a "page k of n (rows)" label; returns the bar and ``show(page, pages, rows)``, which
    the explorer calls after each refresh. ``on_change(page)`` is called with the page asked for."""
    import ipywidgets as w

    state = {"page": 0}
    back = w.Button(description="◀ previous", layout={"width": "110px"})
    forth = w.Button(description="next ▶", layout={"width": "110px"})
    label = w.HTML()
    back.on_click(lambda _: on_change(state["page"] - 1))
    forth.on_click(lambda _: on_change(state["page"] + 1))

    def show(page: int, pages: int, rows: int) -> None:
        state["page"] = page
        back.disabled, forth.disabled = page <= 0, page >= pages - 1
        label.value = f"page {page + 1} of {pages} ({rows:,} rows)"

    bar = w.HBox([back, forth, label])
    bar.add_class("wb-pager")
    return bar, show


def export_frame(
    frame: pd.DataFrame, out_dir: Path, name: str, fmt: str = "csv", *, now: datetime | None = None
) -> Path:
    """Write ``frame`` under ``out_dir/exports/`` as ``NAME-YYYYmmddTHHMMSSZ.csv`` (or ``.json``: a list of records,
    times in ISO 8601) and return the path. A second export in the same second gets ``-2``, ``-3``..."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"export format {fmt!r}: csv or json")
    folder = Path(out_dir) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{_NAME.sub('-', name.lower()).strip('-') or 'selection'}-{stamp}"
    path, n = folder / f"{stem}.{fmt}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")), indent=1) + "\n",
                        encoding="utf-8")  # fmt: skip
    return path


def export_bar(selection: Callable[[], pd.DataFrame], out_dir: Path, name: str) -> ipywidgets.HBox:
    """ "Export CSV" and "Export JSON" buttons writing ``selection()`` with :func:`export_frame`; the written path (or
    the error) is shown beside them."""
    import ipywidgets as w

    status = w.HTML()
    status.add_class("wb-export-status")

    def export(fmt: str) -> None:
        try:
            path = export_frame(selection(), out_dir, name, fmt)
        except (OSError, ValueError) as exc:
            status.value = f'<span class="wb-bad">export failed: {text(str(exc))}</span>'
        else:
            status.value = f"{len(selection()):,} rows written to <code>{text(str(path))}</code>"

    buttons = []
    for fmt in ("csv", "json"):
        button = w.Button(description=f"Export {fmt.upper()}", icon="download", layout={"width": "130px"})
        button.on_click(lambda _, fmt=fmt: export(fmt))
        buttons.append(button)
    bar = w.HBox([*buttons, status])
    bar.add_class("wb-export")
    return bar


def figure_html(fig: go.Figure) -> str:
    """A figure as an HTML div for a static view; plotly.js is the one the notebook's setup cell loads."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False,
                       config={"displaylogo": False, "responsive": False})  # fmt: skip
    return f'<div class="wb-figure">{html}</div>'


#: trace attributes that may hold times
_TIME_ATTRS = ("x", "y", "base")


def _times_as_text(fig: go.Figure) -> None:
    """Datetime64 arrays of the traces as ISO 8601 text: a ``FigureWidget`` sends numpy arrays to the browser as
    binary buffers, where datetime64 arrives as nanosecond integers (an axis of ``1.794×10¹⁸``)."""
    import numpy as np

    for trace in fig.data:
        for attr in _TIME_ATTRS:
            value = getattr(trace, attr, None)
            if isinstance(value, np.ndarray) and value.dtype.kind == "M":
                trace[attr] = np.datetime_as_string(value.astype("datetime64[us]"), unit="us")


def redraw(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig`` in a live ``FigureWidget``: its traces and layout replaced in one update (times as text)."""
    _times_as_text(fig)
    with widget.batch_update():
        widget.data = ()
        widget.add_traces(fig.data)
        widget.layout = fig.layout
