"""ipywidgets explorers for analysts in JupyterLab: filter findings, browse tensors and log matches.

Each explorer is one call from a notebook cell and returns a widget; the filtering logic lives in plain functions
(:func:`filter_findings`, :func:`filter_frame`) so that it is tested without a browser. Every value shown comes
from the investigation's (already redacted) records and is escaped by :func:`workbench.htmlkit.html_table`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from workbench.htmlkit import html_table
from workbench.records import Finding, Severity, to_frame

if TYPE_CHECKING:
    import ipywidgets

    from workbench.investigation import Investigation

__all__ = ["filter_findings", "filter_frame", "findings_explorer", "frame_explorer"]

FINDING_COLUMNS = ["severity", "category", "title", "path", "line", "atlas", "id"]


def filter_findings(
    findings: Iterable[Finding], *, min_severity: str = "info", categories: Iterable[str] = (), text: str = ""
) -> pd.DataFrame:
    """Findings at or above ``min_severity``, in ``categories`` (all when empty), whose title, detail or path
    contains ``text`` (case-insensitive).

    Returns:
        The :func:`~workbench.records.to_frame` columns in :data:`FINDING_COLUMNS` order, worst first.
    """
    floor = Severity.parse(min_severity).rank
    wanted = set(categories)
    needle = text.strip().lower()
    kept = [
        f
        for f in findings
        if f.severity.rank >= floor
        and (not wanted or f.category in wanted)
        and (not needle or needle in f"{f.title} {f.detail} {f.evidence.get('path', '')}".lower())
    ]
    return to_frame(kept, Finding)[FINDING_COLUMNS]


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


def findings_explorer(inv: Investigation) -> ipywidgets.VBox:
    """Severity floor, categories and a search box over the investigation's findings; the table follows."""
    import ipywidgets as w

    categories = sorted({f.category for f in inv.findings})
    severity = w.Dropdown(options=[s.value for s in Severity], value="info", description="at least")
    chosen = w.SelectMultiple(options=categories, rows=min(8, max(2, len(categories))), description="categories")
    search = w.Text(placeholder="search title, detail, path", description="search")
    count = w.HTML()
    table = w.HTML()

    def refresh(*_: object) -> None:
        df = filter_findings(inv.findings, min_severity=severity.value, categories=chosen.value, text=search.value)
        count.value = f"<b>{len(df)}</b> of {len(inv.findings)} findings"
        table.value = html_table(df, mono=("path", "id"))

    for control in (severity, chosen, search):
        control.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([severity, search]), chosen, count, table])


def frame_explorer(frame: pd.DataFrame, *, column: str | None = None, max_rows: int = 200) -> ipywidgets.VBox:
    """A table (tensors, log matches, processes...) with a value picker on ``column`` and a search box."""
    import ipywidgets as w

    values = [""] + (sorted(frame[column].dropna().astype(str).unique()) if column and column in frame else [])
    picker = w.Dropdown(
        options=values, value="", description=column or "", layout={"display": "" if column else "none"}
    )
    search = w.Text(placeholder="search any column", description="search")
    table = w.HTML()

    def refresh(*_: object) -> None:
        shown = filter_frame(frame, column=column, value=picker.value, text=search.value)
        table.value = f"<p>{len(shown)} of {len(frame)} rows</p>" + html_table(shown, max_rows=max_rows)

    picker.observe(refresh, names="value")
    search.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([picker, search]), table])
