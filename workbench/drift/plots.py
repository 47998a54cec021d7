"""Figures and tables of the "Behaviour drift" section (plotly, UTC time axes, text from evidence escaped).

Every figure is aggregated (at most a few hundred bins or points) so the offline HTML report stays small.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.drift.columns import at, bincount
from workbench.drift.metrics import MIN_EFFECT, wilson_interval
from workbench.drift.windows import class_counts
from workbench.htmlkit import html_table
from workbench.timeparse import display_time

if TYPE_CHECKING:
    from workbench.drift.analysis import DriftReport
    from workbench.drift.changepoint import ChangeScan

__all__ = [
    "cumulative_excess_figure",
    "effect_figure",
    "facts_table",
    "scan_figure",
    "section_items",
    "shares_figure",
    "stacked_shares_figure",
]

_COLOURS = ["#2f6fb0", "#d9480f", "#2b8a3e", "#7048e8", "#e8a200", "#0c8599", "#c2255c", "#5c940d", "#868e96"]
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 50, "b": 40}, "height": 360, "template": "plotly_white"}
_MAX_POINTS = 600


def _naive(values: Any) -> pd.DatetimeIndex:
    """UTC times as naive datetimes (plotly draws them as given; axes say UTC)."""
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_localize(None)


def _shade(fig: go.Figure, scan: ChangeScan | None, *, onset_line: bool = True) -> None:
    """Exposure window (light), onset interval (darker) and onset line on a time-axis figure."""
    if scan is None or not scan.changed:
        return
    start = scan.profile["time"].iloc[0] if scan.onset_censored and scan.profile is not None else scan.onset
    stop = scan.end if scan.end is not None else (scan.profile["time"].iloc[-1] if scan.profile is not None else None)
    if start is not None and stop is not None:
        fig.add_vrect(x0=_naive([start])[0], x1=_naive([stop])[0], fillcolor="#fa5252", opacity=0.08, line_width=0,
                      annotation_text="exposure window", annotation_position="top left")  # fmt: skip
    for interval in (scan.onset_interval, scan.end_interval):
        if interval:
            fig.add_vrect(x0=_naive([interval[0]])[0], x1=_naive([interval[1]])[0], fillcolor="#fa5252",
                          opacity=0.18, line_width=0)  # fmt: skip
    if onset_line and not scan.onset_censored:
        fig.add_vline(x=_naive([scan.onset])[0], line_color="#8b0000", line_dash="dash")
    if onset_line and scan.end is not None:
        fig.add_vline(x=_naive([scan.end])[0], line_color="#8b0000", line_dash="dot")


def shares_figure(report: DriftReport) -> go.Figure:
    """Baseline vs exposure-window (or whole-stream) share per class, with 95 % Wilson intervals."""
    stream, scan, baseline = report.stream, report.scan, report.baseline
    inside = slice(scan.start, scan.stop) if scan.changed else slice(None)
    label = "exposure window" if scan.changed else "all predictions"
    k = len(stream.classes)
    counts = bincount(stream.codes[inside], minlength=k)
    fig = go.Figure()
    if baseline is not None:
        shares = np.concatenate([baseline.shares, np.zeros(k - len(baseline.labels))])
        err = None
        if baseline.counts is not None:
            base_n = int(baseline.counts.sum())
            lo, hi = wilson_interval(np.rint(shares * base_n), base_n)
            err = {"type": "data", "symmetric": False, "array": 100 * (hi - shares), "arrayminus": 100 * (shares - lo)}
        fig.add_bar(x=list(stream.classes), y=100 * shares, name="baseline", marker_color="#adb5bd", error_y=err)
    if scan.changed:
        out = bincount(stream.codes[: scan.start], minlength=k) + bincount(stream.codes[scan.stop :], minlength=k)
        _bar(fig, out, "outside the window", "#2f6fb0", stream.classes)
    _bar(fig, counts, label, "#d9480f", stream.classes)
    fig.update_layout(title="Class shares: baseline vs " + label, yaxis_title="share of predictions (%)",
                      barmode="group", **_LAYOUT)  # fmt: skip
    return fig


def _bar(fig: go.Figure, counts: np.ndarray, name: str, colour: str, classes: tuple[str, ...]) -> None:
    n = max(int(counts.sum()), 1)
    share = counts / n
    lo, hi = wilson_interval(counts, n)
    err = {"type": "data", "symmetric": False, "array": 100 * (hi - share), "arrayminus": 100 * (share - lo)}
    label = f"{name} (n={int(counts.sum())})"
    fig.add_bar(x=list(classes), y=100 * share, name=label, marker_color=colour, error_y=err)


def effect_figure(windows: pd.DataFrame, min_effect: float = MIN_EFFECT, window: str = "") -> go.Figure:
    """JS distance per window against the minimum-effect band and the noise level of an unchanged model.

    Windows with a drift verdict are red, others blue, low-count windows grey.
    """
    fig = go.Figure()
    if len(windows):
        shown = windows.iloc[:: -(-len(windows) // _MAX_POINTS)]
        x = _naive(shown["start"])
        fig.add_hrect(
            y0=0,
            y1=min_effect,
            fillcolor="#adb5bd",
            opacity=0.25,
            line_width=0,
            annotation_text=f"below the minimum effect ({min_effect})",
            annotation_position="top left",
        )
        fig.add_scatter(x=x, y=shown["noise_level"], mode="lines", name="95% noise level, unchanged model",
                        line={"color": "#868e96", "dash": "dot"})  # fmt: skip
        for verdict, colour in (("no drift", "#2f6fb0"), ("drift", "#c92a2a"), ("insufficient data", "#ced4da")):
            sel = shown["verdict"] == verdict
            if sel.any():
                fig.add_scatter(x=x[sel.to_numpy()], y=shown.loc[sel, "js_distance"], mode="markers", name=verdict,
                                marker={"color": colour, "size": 7},
                                customdata=np.stack([shown.loc[sel, "n"], shown.loc[sel, "p_adjusted"]], axis=1),
                                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>JS %{y:.3f}<br>n %{customdata[0]}"
                                              "<br>p (adj.) %{customdata[1]:.3g}<extra></extra>")  # fmt: skip
    fig.update_layout(title=f"Effect size per {window} window (JS distance, base 2)".replace("per  ", "per "),
                      xaxis_title="window start (UTC)", yaxis_title="JS distance", **_LAYOUT)  # fmt: skip
    return fig


def stacked_shares_figure(report: DriftReport, bins: int = 200) -> go.Figure:
    """100 %-stacked class shares over time, with the onset, its interval and the exposure window shaded."""
    stream = report.stream
    table = class_counts(stream.times, stream.labels, stream.classes, bins)
    fig = go.Figure()
    x = _naive(table.index)
    for i, cls in enumerate(table.columns):
        fig.add_scatter(x=x, y=table[cls], name=str(cls), mode="lines", stackgroup="one", groupnorm="percent",
                        line={"width": 0.5, "color": _COLOURS[i % len(_COLOURS)]})  # fmt: skip
    _shade(fig, report.scan)
    fig.update_layout(title="Class shares over time (100% stacked)", xaxis_title="time (UTC)",
                      yaxis_title="share of predictions (%)", yaxis_range=[0, 100], **_LAYOUT)  # fmt: skip
    return fig


def scan_figure(scan: ChangeScan) -> go.Figure:
    """The step scan's likelihood-ratio statistic over time and its permutation null threshold."""
    fig = go.Figure()
    if scan.profile is not None and len(scan.profile):
        prof = scan.profile
        step = -(-len(prof) // _MAX_POINTS)
        prof = prof.groupby(np.arange(len(prof)) // step).agg(time=("time", "first"), statistic=("statistic", "max"))
        fig.add_scatter(x=_naive(prof["time"]), y=prof["statistic"].round(3), mode="lines", name="LR statistic",
                        line={"color": "#2f6fb0"})  # fmt: skip
        if scan.threshold is not None:
            fig.add_hline(y=scan.threshold, line_color="#c92a2a", line_dash="dash",
                          annotation_text=f"null {100 * (1 - scan.alpha):g}% threshold ({scan.permutations} "
                                          "permutations)")  # fmt: skip
        _shade(fig, scan)
    fig.update_layout(title="Change-point scan: likelihood ratio of a change at each time", xaxis_title="time (UTC)",
                      yaxis_title="2 × log-likelihood ratio", **_LAYOUT)  # fmt: skip
    return fig


def cumulative_excess_figure(report: DriftReport, bins: int = 300) -> go.Figure:
    """Cumulative excess per class: observed minus expected at the shares outside the exposure window."""
    stream, scan = report.stream, report.scan
    fig = go.Figure()
    if scan.changed and scan.excess is not None:
        table = class_counts(stream.times, stream.labels, stream.classes, bins)
        expected = np.outer(table.sum(axis=1), scan.excess["share_out"].to_numpy())
        cusum = np.cumsum(table.to_numpy() - expected, axis=0)
        for i, cls in enumerate(table.columns):
            fig.add_scatter(x=_naive(table.index), y=np.round(cusum[:, i], 1), mode="lines", name=str(cls),
                            line={"color": _COLOURS[i % len(_COLOURS)]})  # fmt: skip
        _shade(fig, scan)
    fig.update_layout(title="Cumulative excess predictions per class (observed − expected outside the window)",
                      xaxis_title="time (UTC)", yaxis_title="predictions", **_LAYOUT)  # fmt: skip
    return fig


def _when(ts: pd.Timestamp | None) -> str:
    return "—" if ts is None else display_time(pd.Timestamp(ts).tz_convert("UTC").floor("s").to_pydatetime()) or "—"


def facts_table(report: DriftReport) -> str:
    """Key facts (verdict, period, onset and interval, exposure, excess) as an escaped HTML table."""
    scan, stream = report.scan, report.stream
    facts = [("Verdict", f"{report.verdict}: {report.reason}"), ("Predictions analysed", f"{len(stream):,}")]
    if len(stream):
        facts.append(("Period", f"{_when(at(stream.times, 0))} to {_when(at(stream.times, -1))}"))
    if scan.changed:
        lo, hi = scan.onset_interval or (None, None)
        facts += [
            ("Onset", "before the first record" if scan.onset_censored else _when(scan.onset)),
            ("Onset 95% interval", f"{_when(lo)} to {_when(hi)}" if scan.onset_interval else "—"),
            ("End", _when(scan.end) if scan.end is not None else "ongoing at the last record"),
            ("Predictions in the exposure window", f"{scan.n_exposed:,}"),
            ("Change-point p-value", f"{scan.p_value:.3g} ({scan.permutations} permutations, {scan.model} model)"),
        ]
        if scan.excess is not None:
            pos = scan.excess[scan.excess["excess"] > 0]
            facts += [(f"Excess '{r['class']}' (estimated poisoned predictions)",
                       f"{r['excess']:.0f} (95% {r['excess_low']:.0f} to {r['excess_high']:.0f})")
                      for _, r in pos.iterrows()]  # fmt: skip
    if report.overall is not None:
        fired = report.overall.legacy_jsd > report.legacy_threshold
        facts.append(
            (
                "Legacy monitor rule (whole stream)",
                f"JSD {report.overall.legacy_jsd:.4f} "
                f"{'>' if fired else '≤'} {report.legacy_threshold}: {'fires' if fired else 'silent'}",
            )
        )
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    return f'<table class="wb-table">{rows}</table>'


def _class_table(report: DriftReport) -> pd.DataFrame:
    cmp = report.exposed or report.overall
    if cmp is None:
        return pd.DataFrame()
    t = cmp.table()
    out = pd.DataFrame({"class": t["class"], "baseline %": (100 * t["baseline"]).round(2),
                        ("window %" if report.exposed else "stream %"): (100 * t["share"]).round(2),
                        "change (pp, 95%)": [f"{d:+.2f} ({lo:+.2f} to {hi:+.2f})" for d, lo, hi in
                                             zip(t["delta_pp"], t["delta_low_pp"], t["delta_high_pp"], strict=True)],
                        "new class": t["new"].map({True: "yes", False: ""})})  # fmt: skip
    if report.scan.changed and report.scan.excess is not None:
        ex = report.scan.excess.set_index("class")
        out["excess (95%)"] = [
            f"{ex.loc[c, 'excess']:+.0f} ({ex.loc[c, 'excess_low']:+.0f} to {ex.loc[c, 'excess_high']:+.0f})"
            if c in ex.index
            else ""
            for c in out["class"]
        ]
    return out


def section_items(report: DriftReport | None, summary: str = "") -> list[Any]:
    """Everything the section shows, in order: summary, facts, figures, then tables."""
    if report is None:
        return [f'<p class="wb-note">{escape(summary or "No prediction records: no drift analysis.")}</p>']
    items: list[Any] = [f"<p>{escape(report.summary)}</p>", facts_table(report), shares_figure(report),
                        stacked_shares_figure(report), scan_figure(report.scan)]  # fmt: skip
    if report.scan.changed:
        items.append(cumulative_excess_figure(report))
    if len(report.windows):
        items.append(effect_figure(report.windows, window=report.window))
    items += ["<h4>Classes</h4>", html_table(_class_table(report))]
    if len(report.windows):
        w = report.windows
        shown = w if len(w) <= 60 else w[(w["verdict"] == "drift") | w["legacy_fired"]]
        cols = ["start", "n", "js_distance", "p_adjusted", "top_class", "top_delta_pp", "legacy_jsd", "verdict"]
        table = shown[cols].round({"js_distance": 4, "p_adjusted": 4, "top_delta_pp": 2, "legacy_jsd": 4})
        table["start"] = table["start"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        note = "" if len(shown) == len(w) else f" (drifted or legacy-flagged only; {len(w)} windows in total)"
        items += [f"<h4>Windows ({escape(report.window)}){escape(note)}</h4>", html_table(table, max_rows=200)]
    if len(report.confidence):
        items += ["<h4>Confidence scores inside vs outside the exposure window</h4>",
                  html_table(report.confidence.round({"ks": 3, "p_value": 4, "psi": 3}))]  # fmt: skip
    return items
