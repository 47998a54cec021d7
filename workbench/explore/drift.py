"""The drift explorer: window, significance and minimum-effect controls that re-run only the drift analysis.

The predictions are the run's (``inv.results["drift"].data["report"]``: its prepared
:class:`~workbench.drift.stream.Stream` and baseline); nothing is read again. A change of a control calls
:func:`workbench.drift.analysis.analyse_stream` on them with the new window, significance level (``alpha``: the
change-point scan and the per-window tests) and minimum effect (the smallest JS distance a window or the whole
stream needs for a drift verdict), well under a second on the bundled cases. ``analyse_stream`` notes a widened
window in ``stream.limits``: each re-run gets its own copy of the stream's lists and read-only views of its arrays,
so the run's report is never changed. Results are memoised by ``(window, alpha, min_effect)``
(:class:`DriftRuns`); the run's own options map to the run's report itself.

The figures are the drift section's (:mod:`workbench.drift.plots`: effect size per window, change-point scan,
class shares over time); the onset text (:func:`onset_text`) gives the verdict, its reason, the onset with its 95%
interval, the end and the windows flagged; the window table (:func:`window_rows`) is paged and exported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.drift import analysis
from workbench.explore.common import PAGE_SIZE, Explorer, export_bar, figure_html, page_of, pager, redraw
from workbench.htmlkit import html_table, note, text
from workbench.parameters import value as option
from workbench.timeparse import display_time

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.drift.analysis import DriftReport
    from workbench.investigation import Investigation

__all__ = ["ALPHAS", "MIN_EFFECTS", "WINDOWS", "WINDOW_TABLE_COLUMNS", "DriftRuns", "drift_defaults",
           "drift_explorer", "drift_figures", "onset_text", "rerun", "window_rows"]  # fmt: skip

#: window sizes offered (the run's own is added when it is not one of them)
WINDOWS = ("1h", "6h", "12h", "1d", "7d", "250", "500", "1000")
#: significance levels offered
ALPHAS = (0.001, 0.01, 0.05, 0.1)
#: minimum effects (JS distance) offered
MIN_EFFECTS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: columns of the window table (the drift section's), ``start`` / ``end`` ISO 8601 UTC to the second
WINDOW_TABLE_COLUMNS = ["start", "end", "n", "js_distance", "p_adjusted", "top_class", "top_delta_pp", "legacy_jsd",
                        "legacy_fired", "verdict"]  # fmt: skip

Key = tuple[str, float, float]


def drift_defaults(inv: Investigation) -> Key:
    """The run's own ``(drift_window, drift_alpha, drift_min_effect)`` (its options, else the registry's)."""
    params = inv.parameters or {}
    return (str(option(params, "drift_window")), float(option(params, "drift_alpha")),
            float(option(params, "drift_min_effect")))  # fmt: skip


def _read_only(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False
    return view


def rerun(report: DriftReport, window: str, alpha: float, min_effect: float) -> DriftReport:
    """The drift analysis of ``report``'s stream and baseline again, with other options (its legacy threshold).

    The stream is a copy (its ``limits`` and ``unexamined`` lists new, its arrays read-only views), so ``report`` is
    left as it was.

    Raises:
        ValueError: a malformed ``window``.
    """
    s = report.stream
    stream = replace(s, times=_read_only(s.times), codes=_read_only(s.codes), confidence=_read_only(s.confidence),
                     line=_read_only(s.line), source=_read_only(s.source), limits=list(s.limits),
                     unexamined=list(s.unexamined))  # fmt: skip
    return analysis.analyse_stream(stream, report.baseline, window=window, alpha=alpha, min_effect=min_effect,
                                   legacy_threshold=report.legacy_threshold)  # fmt: skip


class DriftRuns:
    """Re-runs of one report, memoised by ``(window, alpha, min_effect)``.

    Attributes:
        report: the run's report (returned for ``own``, the run's options, without recomputing).
        computed: how many re-runs were computed; last_seconds: how long the last one took (0 when memoised).
    """

    def __init__(self, report: DriftReport, own: Key) -> None:
        self.report = report
        self._memo: dict[Key, DriftReport] = {self._key(*own): report}
        self.computed = 0
        self.last_seconds = 0.0

    @staticmethod
    def _key(window: str, alpha: float, min_effect: float) -> Key:
        return str(window).strip(), float(alpha), float(min_effect)

    def get(self, window: str, alpha: float, min_effect: float) -> DriftReport:
        """The report for these options (computed once; raises ValueError for a malformed window)."""
        key = self._key(window, alpha, min_effect)
        self.last_seconds = 0.0
        if key not in self._memo:
            began = time.perf_counter()
            self._memo[key] = rerun(self.report, *key)
            self.last_seconds = time.perf_counter() - began
            self.computed += 1
        return self._memo[key]


def _when(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return "unknown"
    return display_time(pd.Timestamp(ts).tz_convert("UTC").floor("s").to_pydatetime()) or "unknown"


def onset_text(report: DriftReport, min_effect: float | None = None) -> str:
    """The verdict and its reason, the onset with its 95% interval, the end, the exposure, and the windows flagged
    (HTML, escaped); ``min_effect`` is named beside the windows when given."""
    scan = report.scan
    parts = [f"<b>{text(report.verdict)}</b>: {text(report.reason)}."]
    if scan.changed:
        lo, hi = scan.onset_interval or (None, None)
        onset = "before the first record (censored)" if scan.onset_censored else _when(scan.onset)
        interval = f" (95% interval {_when(lo)} to {_when(hi)})" if scan.onset_interval else ""
        end = f"ends {_when(scan.end)}" if scan.end is not None else "ongoing at the last record"
        if scan.end is not None and scan.end_interval:
            end += f" (95% interval {_when(scan.end_interval[0])} to {_when(scan.end_interval[1])})"
        parts.append(f"Onset <b>{text(onset)}</b>{text(interval)}; {text(end)}; {scan.n_exposed:,} predictions "
                     f"exposed, change-point p={scan.p_value:.3g} at alpha {scan.alpha:g}.")  # fmt: skip
    else:
        parts.append(f"No onset: the change-point scan finds no change at alpha {scan.alpha:g}.")
    windows = report.windows
    if len(windows):
        flagged = int((windows["verdict"] == "drift").sum())
        effect = f", minimum effect {min_effect:g}" if min_effect is not None else ""
        parts.append(f"{flagged:,} of {len(windows):,} {text(report.window)} windows show drift{effect}.")
    else:
        parts.append("No per-window table (no baseline).")
    return " ".join(parts)


def window_rows(report: DriftReport) -> pd.DataFrame:
    """The per-window table in :data:`WINDOW_TABLE_COLUMNS` (empty without a baseline), rounded as the section
    shows it."""
    windows = report.windows
    if not len(windows):
        return pd.DataFrame(columns=WINDOW_TABLE_COLUMNS)
    out = windows[WINDOW_TABLE_COLUMNS].round({"js_distance": 4, "p_adjusted": 4, "top_delta_pp": 2, "legacy_jsd": 4})
    for col in ("start", "end"):
        out[col] = out[col].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.reset_index(drop=True)


def drift_figures(report: DriftReport, min_effect: float) -> dict[str, go.Figure]:
    """The drift section's figures of a report: ``effect`` (per window, against ``min_effect``), ``scan`` (the
    change-point statistic and its threshold at the report's alpha) and ``shares`` (class shares over time, the
    onset shaded)."""
    from workbench.drift.plots import effect_figure, scan_figure, stacked_shares_figure

    return {"effect": effect_figure(report.windows, min_effect=min_effect, window=report.window),
            "scan": scan_figure(report.scan), "shares": stacked_shares_figure(report)}  # fmt: skip


def _choices(values: Sequence[Any], own: Any) -> list[Any]:
    """``values`` with the run's own value added (in order for numbers, first for a window)."""
    if own in values:
        return list(values)
    return sorted([*values, own]) if isinstance(own, float) else [own, *values]


# --------------------------------------------------------------------------------------------------- the widget
def drift_explorer(inv: Investigation) -> Explorer:
    """Window (``wb-drift-window``), significance (``wb-drift-alpha``) and minimum-effect (``wb-drift-min-effect``)
    Dropdowns, defaulting to the run's options, re-running the drift analysis on the loaded predictions; the onset
    text (``wb-drift-onset``), the section's figures (``FigureWidget``), the paged window table and its export.

    Parts: ``window``, ``alpha``, ``min_effect``, ``onset``, ``status``, ``figures`` (name -> FigureWidget),
    ``table``, ``pager``, ``export``, ``runs`` (:class:`DriftRuns`) and ``state`` (``report``: the report shown,
    ``rows``: its window table, ``page``). A case without predictions gets a note.
    """
    import ipywidgets as w
    import plotly.graph_objects as go

    result = inv.results.get("drift")
    report = result.data.get("report") if result is not None else None
    if report is None:
        why = (result.not_applicable or result.summary) if result is not None else "no drift analysis in this run"
        pane = w.HTML(note(f"No drift analysis to tune: {why or 'no prediction records'}."))
        pane.add_class("wb-drift-note")
        return Explorer(w.VBox([pane]), lambda: pane.value, note=pane, state={})
    own = drift_defaults(inv)
    runs = DriftRuns(report, own)
    style = {"description_width": "initial"}
    window = w.Dropdown(options=_choices(WINDOWS, own[0]), value=own[0], description="window", style=style)
    alpha = w.Dropdown(options=[(f"{a:g}", a) for a in _choices(ALPHAS, own[1])], value=own[1],
                       description="significance (alpha)", style=style)  # fmt: skip
    effect = w.Dropdown(options=[(f"{e:g}", e) for e in _choices(MIN_EFFECTS, own[2])], value=own[2],
                        description="minimum effect (JS)", style=style)  # fmt: skip
    for control, css in ((window, "wb-drift-window"), (alpha, "wb-drift-alpha"), (effect, "wb-drift-min-effect")):
        control.add_class(css)
    onset, status, table = w.HTML(), w.HTML(), w.HTML()
    onset.add_class("wb-drift-onset")
    status.add_class("wb-drift-status")
    table.add_class("wb-drift-table")
    figures = {name: go.FigureWidget() for name in ("effect", "scan", "shares")}
    state: dict[str, Any] = {"report": report, "rows": window_rows(report), "page": 0}

    def show_page(page: int) -> None:
        rows, state["page"], pages = page_of(state["rows"], page, PAGE_SIZE)
        table.value = html_table(rows, mono=("start", "end"), max_rows=PAGE_SIZE) if len(rows) else note(
            "No per-window table (no baseline).")  # fmt: skip
        show(state["page"], pages, len(state["rows"]))

    bar, show = pager(show_page)

    def refresh(*_: object) -> None:
        try:
            current = runs.get(window.value, alpha.value, effect.value)
        except ValueError as exc:
            onset.value = f'<span class="wb-bad">{text(str(exc))}</span>'
            return
        state["report"], state["rows"] = current, window_rows(current)
        onset.value = onset_text(current, effect.value)
        added = current.stream.limits[len(report.stream.limits) :]
        took = ("the run's own analysis" if current is report else f"re-run in {runs.last_seconds:.2f} s"
                if runs.last_seconds else "shown before: not recomputed")  # fmt: skip
        status.value = text("; ".join([took, *added]))
        for name, fig in drift_figures(current, effect.value).items():
            redraw(figures[name], fig)
        show_page(0)

    for control in (window, alpha, effect):
        control.observe(refresh, names="value")
    refresh()
    exports = export_bar(lambda: state["rows"], inv.out_dir, "drift-windows")
    box = w.VBox([w.HBox([window, alpha, effect]), onset, status, *figures.values(), bar, table, exports])

    def static() -> str:
        shown = drift_figures(state["report"], effect.value)
        return f"<p>{onset.value}</p>" + "".join(figure_html(f) for f in shown.values()) + table.value

    return Explorer(box, static, window=window, alpha=alpha, min_effect=effect, onset=onset, status=status,
                    figures=figures, table=table, pager=bar, export=exports, runs=runs, state=state)  # fmt: skip
