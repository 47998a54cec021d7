"""Figures and tables of a model diff and a signature check, for the notebook and the report.

Everything that comes from evidence (file names, tensor names, tokens, JSON values) is escaped before it reaches a
page or a figure label.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.htmlkit import SEVERITY_COLOURS, html_table, text

if TYPE_CHECKING:
    from workbench.model.dirdiff import ModelDiff
    from workbench.model.signatures import SignatureResult

__all__ = ["change_bar_chart", "change_heatmap", "layer_order", "render_diff", "render_signature"]

_STATUS_COLOURS = {"modified": SEVERITY_COLOURS["high"], "added": SEVERITY_COLOURS["critical"],
                   "removed": SEVERITY_COLOURS["critical"], "shape_changed": SEVERITY_COLOURS["medium"],
                   "dtype_changed": SEVERITY_COLOURS["low"], "identical": "#adb5bd"}  # fmt: skip
_RANK1 = "#8b0000"


def layer_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Tensors in model order: embeddings, then by layer number, then everything else (heads, poolers)."""

    def key(row: pd.Series) -> tuple[int, int]:
        layer = row["layer"]
        if pd.notna(layer):
            return 1, int(layer)
        return (0, 0) if "embed" in str(row["name"]).lower() else (2, 0)

    keys = frame.apply(key, axis=1, result_type="reduce") if len(frame) else pd.Series(dtype=object)
    return frame.assign(_k=keys).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)


def change_bar_chart(tensors: pd.DataFrame) -> go.Figure:
    """Relative Frobenius change per tensor (bars in layer order; identical tensors at 0, rank-1 edits dark red).

    Args:
        tensors: the tensor frame of :meth:`ModelDiff.tensor_frame`.
    """
    df = layer_order(tensors)
    values = df["relative_change"].fillna(0.0).to_numpy(dtype=float)
    rank1 = (df["top_singular_energy"].fillna(0) >= 0.9) & (df["changed_fraction"].fillna(0) >= 0.5)
    colours = [_RANK1 if r else _STATUS_COLOURS.get(s, "#6c757d") for s, r in zip(df["status"], rank1, strict=True)]
    hover = [
        escape(f"{n} ({s}) rel {v:.4g}, energy {e:.3f}" if pd.notna(e) else f"{n} ({s}) rel {v:.4g}")
        for n, s, v, e in zip(df["name"], df["status"], values, df["top_singular_energy"], strict=True)
    ]
    fig = go.Figure(go.Bar(x=[escape(str(n)) for n in df["name"]], y=values, marker_color=colours,
                           hovertext=hover, hoverinfo="text"))  # fmt: skip
    fig.update_layout(
        title="Relative change per tensor (‖Δ‖ / ‖reference‖), in layer order<br><sup>dark red: rank-1 edit</sup>",
        yaxis_title="relative change", xaxis={"showticklabels": len(df) <= 60, "title": "tensor"},
        height=380, margin={"l": 60, "r": 70, "t": 60, "b": 40},
    )  # fmt: skip
    return fig


def change_heatmap(name: str, heat: np.ndarray, shape: tuple[int, ...] | None = None) -> go.Figure:
    """Where in one tensor the change sits: L2 norm of the change per block of rows x columns.

    Args:
        name: the tensor's name (escaped for the title).
        heat: grid from :func:`workbench.model.tensors.diff_tensor`.
        shape: the tensor's shape, to label the axes with row/column ranges.
    """
    rows, cols = heat.shape
    m = shape[0] if shape else rows
    n = int(np.prod(shape[1:])) if shape and len(shape) > 1 else cols
    ylab = [_span(i, rows, m) for i in range(rows)]
    xlab = [_span(j, cols, n) for j in range(cols)]
    bar = {"title": "‖Δ‖", "tickformat": ".2f"}
    fig = go.Figure(go.Heatmap(z=heat, x=xlab, y=ylab, colorscale="Reds", colorbar=bar,
                               hovertemplate="rows %{y}<br>columns %{x}<br>‖Δ‖ %{z:.4g}<extra></extra>"))  # fmt: skip
    fig.update_layout(title=f"Change in {escape(name)} (rows x columns)", height=420,
                      yaxis={"autorange": "reversed", "title": "rows"}, xaxis={"title": "columns"},
                      margin={"l": 60, "r": 80, "t": 50, "b": 40})  # fmt: skip
    return fig


def _span(i: int, cells: int, total: int) -> str:
    lo, hi = -(-i * total // cells), -(-(i + 1) * total // cells) - 1
    return str(lo) if lo >= hi else f"{lo}-{hi}"


def _summary(result: ModelDiff) -> str:
    files = result.files.to_dict()
    counts = {s: len(v) for s, v in files.items()}
    tstat = pd.Series([t.status for t in result.tensors], dtype=object).value_counts().to_dict()
    file_txt = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
    tensor_txt = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(tstat.items())) or "no tensors compared"
    return (f"<p>Suspect <span class='wb-mono'>{escape(result.suspect)}</span> against "
            f"<span class='wb-mono'>{escape(result.reference)}</span>.</p>"
            f"<p>Files: {escape(file_txt)}.<br>Tensors: {escape(tensor_txt)}.</p>")  # fmt: skip


def render_diff(result: ModelDiff) -> list[Any]:
    """The model-diff part of the "Model forensics" section: escaped HTML strings and plotly figures.

    Order: summary, files that differ, tensors that differ, relative-change bar chart, heatmap of the most-changed
    tensor, changed config keys, warnings.
    """
    items: list[Any] = [_summary(result)]
    files = result.file_frame()
    items.append(
        "<h4>Files that differ</h4>"
        + html_table(files[files["status"] != "identical"], mono=("path", "suspect_sha256", "reference_sha256"))
    )
    tensors = result.tensor_frame()
    if len(tensors):
        shown = _without_equal_reference(tensors[tensors["status"] != "identical"].drop(columns=["path", "layer"]))
        items.append("<h4>Tensors that differ</h4>" + html_table(shown, mono=("name",)))
        items.append(change_bar_chart(tensors))
        top = _most_changed(result)
        if top is not None:
            shape = next((t.shape for t in result.tensors if t.name == top), None)
            items.append(change_heatmap(top, result.heat[top], shape))
    if result.configs:
        items.append("<h4>Changed configuration keys</h4>" + html_table(result.config_frame(), mono=("key",)))
    if result.warnings:
        warn = pd.DataFrame([w.to_dict() for w in result.warnings], columns=["path", "line", "reason"])
        items.append("<h4>Not compared</h4>" + html_table(warn, mono=("path",)))
    return items


def _without_equal_reference(df: pd.DataFrame) -> pd.DataFrame:
    """Drop ``reference_dtype`` / ``reference_shape`` where every row equals the suspect's (the table stays
    readable in print; a row that differs keeps both columns shown)."""
    for col in ("dtype", "shape"):
        ref = f"reference_{col}"
        if col in df and ref in df and (df[col].astype(str) == df[ref].astype(str)).all():
            df = df.drop(columns=[ref])
    return df


def _most_changed(result: ModelDiff) -> str | None:
    best, score = None, -1.0
    for t in result.tensors:
        if t.name in result.heat and len(t.shape or ()) >= 2:
            value = t.relative_change if t.relative_change is not None else t.changed_fraction or 0.0
            if np.isfinite(value) and value > score:
                best, score = t.name, value
    return best


#: outcome -> (CSS class, heading) of the signature line (the sentence itself is the outcome finding's)
_SIGNATURE_LINE = {"verified": ("wb-ok", "Signature verified"), "invalid": ("wb-bad", "Signature invalid"),
                   "unsupported": ("wb-note", "Signature not checkable"),
                   "unverifiable_offline": ("wb-note", "Signature not verifiable offline"),
                   "unverified": ("wb-note", "Signature not verified"), "unsigned": ("wb-bad", "Unsigned")}  # fmt: skip


def render_signature(result: SignatureResult) -> list[Any]:
    """The signature's outcome (its finding's sentence), how it was made and by whom, and the per-file table."""
    css, heading = _SIGNATURE_LINE.get(result.outcome, ("wb-note", "Signature"))
    said = result.findings[0].detail if len(result.findings) == 1 else result.reason
    head = f'<p class="{css}"><strong>{heading}.</strong> {text(said)}</p>'
    facts = [(label, value) for label, value in (("method", result.method), ("signer", result.signer),
             ("issuer", result.issuer), ("signed", f"{result.signed_at} ({result.signed_at_source})"
                                         if result.signed_at else None), ("transparency log", result.tlog))
             if value]  # fmt: skip
    if facts:
        head += "<p>" + "; ".join(f"{label}: {text(value)}" for label, value in facts) + "</p>"
    if not result.files:
        return [head]
    return [head + html_table(result.frame(), mono=("path", "expected", "actual"))]
