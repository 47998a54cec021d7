"""Any table a section produced (tensors, log matches, processes, packages...) with a value picker and a search."""

from __future__ import annotations

import pandas as pd

from workbench.explore.common import PAGE_SIZE, Explorer, export_bar, page_of, pager
from workbench.htmlkit import html_table

__all__ = ["filter_frame", "frame_explorer"]


def filter_frame(frame: pd.DataFrame, *, column: str | None = None, value: str = "", text: str = "") -> pd.DataFrame:
    """Rows whose ``column`` equals ``value`` (when both are given) and whose text contains ``text``."""
    out = frame
    if column and value and column in out.columns:
        out = out[out[column].astype(str) == value]
    needle = text.strip().lower()
    if needle:
        mask = out.astype(str).apply(lambda col: col.str.lower().str.contains(needle, regex=False)).any(axis=1)
        out = out[mask]
    return out


def frame_explorer(frame: pd.DataFrame, *, column: str | None = None, out_dir=None, name: str = "table") -> Explorer:
    """A paged table with a value picker on ``column`` and a search box; an export of the rows kept when
    ``out_dir`` is given."""
    import ipywidgets as w

    values = [""] + (sorted(frame[column].dropna().astype(str).unique()) if column and column in frame else [])
    picker = w.Dropdown(
        options=values, value="", description=column or "", layout={"display": "" if column else "none"}
    )
    search = w.Text(placeholder="search any column", description="search")
    table = w.HTML()
    state = {"rows": frame}

    def show_page(page: int) -> None:
        rows, page, pages = page_of(state["rows"], page, PAGE_SIZE)
        table.value = f"<p>{len(state['rows']):,} of {len(frame):,} rows</p>" + html_table(rows, max_rows=PAGE_SIZE)
        show(page, pages, len(state["rows"]))

    bar, show = pager(show_page)

    def refresh(*_: object) -> None:
        state["rows"] = filter_frame(frame, column=column, value=picker.value, text=search.value)
        show_page(0)

    picker.observe(refresh, names="value")
    search.observe(refresh, names="value")
    refresh()
    parts = [w.HBox([picker, search]), table, bar]
    if out_dir is not None:
        parts.append(export_bar(lambda: state["rows"], out_dir, name))
    return Explorer(w.VBox(parts), lambda: table.value, picker=picker, search=search, table=table, pager=bar)
