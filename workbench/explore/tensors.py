"""The tensor explorer: pick a tensor of the model diff and see its change, read back from both checkpoints.

The tensors are the model diff's (every compared pair's :class:`~workbench.model.tensor_record.TensorDiff`
records, the primary pair first: the model section's ``tensors`` table), modified ones first. Picking one shows
its record, a heatmap of ``|suspect − reference|`` (the maximum per cell; a vector as a line), the changed rows and
their tokens as a table, and the singular values of the difference; all of it is read back from both checkpoints,
bounded, by :func:`workbench.explore.tensor_change.tensor_change` (which says why when a tensor cannot be shown).
:func:`heat_figure`, :func:`spectrum_figure` and :func:`tensor_detail` draw a :class:`TensorChange`;
:func:`tensor_explorer` wires a Dropdown to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.explore.common import Explorer, export_bar, figure_html, redraw
from workbench.explore.tensor_change import TensorChange, TensorChoice, shape_text, tensor_change, tensor_choices
from workbench.htmlkit import html_table, note, text

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from workbench.investigation import Investigation

__all__ = ["TensorChange", "TensorChoice", "heat_figure", "spectrum_figure", "tensor_change", "tensor_choices",
           "tensor_detail", "tensor_explorer"]  # fmt: skip

_LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 10, "t": 50, "b": 40}}


# ---------------------------------------------------------------------------------------------- figures, detail
def heat_figure(change: TensorChange) -> go.Figure:
    """``|Δ|`` as a heatmap (max per cell; row 0 at the top), a vector's as a line; empty with the reason when
    there are no values."""
    import plotly.graph_objects as go

    fig = go.Figure()
    layout = {"height": 420, **_LAYOUT}
    if change.heat is None:
        fig.add_annotation(text=text(change.reason or "no values"), showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")  # fmt: skip
        fig.update_layout(title="no change to show", xaxis_visible=False, yaxis_visible=False, **layout)
    elif change.vector:
        fig.add_scatter(x=change.heat_rows, y=change.heat[:, 0], mode="lines", name="max |Δ|", line_shape="hv")
        fig.update_layout(title=f"|suspect − reference| of {text(change.choice.diff.name)} (max per point)",
                          xaxis_title="element", yaxis_title="|Δ|", **layout)  # fmt: skip
    else:
        fig.add_heatmap(z=change.heat, x=change.heat_cols, y=change.heat_rows, colorscale="Reds", zmin=0,
                        colorbar={"title": "max |Δ|"}, hovertemplate="rows from %{y}, columns from %{x}<br>"
                        "max |Δ| %{z:.4g}<extra></extra>")  # fmt: skip
        fig.update_layout(title=f"|suspect − reference| of {text(change.choice.diff.name)} (max per cell)",
                          xaxis_title="column", yaxis_title="row", yaxis_autorange="reversed", **layout)  # fmt: skip
    return fig


def spectrum_figure(change: TensorChange) -> go.Figure:
    """The top singular values of ``Δ`` (log scale); empty with a note when not computed."""
    import plotly.graph_objects as go

    fig = go.Figure()
    layout = {"height": 320, **_LAYOUT}
    if change.spectrum is None:
        why = change.reason or "; ".join(change.notes[:1]) or "no spectrum"
        fig.add_annotation(text=text(why[:120]), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(title="singular values: not computed", xaxis_visible=False, yaxis_visible=False, **layout)
        return fig
    values = np.maximum(change.spectrum, np.finfo(np.float64).tiny)
    fig.add_bar(x=np.arange(1, len(values) + 1), y=values, marker_color="#2f6fb0", name="σ",
                hovertemplate="σ%{x} = %{y:.4g}<extra></extra>")  # fmt: skip
    fig.update_layout(title=f"Singular values of the difference ({change.method}, top {len(values)})",
                      xaxis_title="index", yaxis_title="σ", yaxis_type="log", **layout)  # fmt: skip
    return fig


def tensor_detail(change: TensorChange) -> str:
    """The detail pane: the tensor's record, what was read, caps, and the changed rows table (HTML, escaped)."""
    d = change.choice.diff
    facts = [("tensor", d.name), ("model", change.choice.pair.name), ("status", d.status),
             ("dtype / shape", f"{d.dtype or d.reference_dtype} / {shape_text(d.shape or d.reference_shape)}"),
             ("suspect file", d.path), ("reference file", d.reference_path or "")]  # fmt: skip
    if d.status == "modified":
        energy = "n/a" if d.top_singular_energy is None else f"{d.top_singular_energy:.4f}"
        facts += [("changed elements", f"{d.changed_elements:,} ({100 * (d.changed_fraction or 0):.2f}%)"),
                  ("changed rows", f"{d.changed_row_count:,}"), ("max |change| (diff)", f"{d.max_abs_change}"),
                  ("relative change", f"{d.relative_change}"), ("top singular energy", energy)]  # fmt: skip
    if change.heat is not None:
        lo, hi = change.rows_read
        facts += [("read back", f"rows {lo:,} to {hi - 1:,} of {change.rows:,}, {change.columns:,} columns: "
                                f"{change.changed:,} elements differ, max |Δ| {change.max_abs:.6g}, "
                                f"‖Δ‖_F {change.frobenius:.6g}")]  # fmt: skip
    rows = "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in facts)
    out = [f'<table class="wb-table">{rows}</table>']
    if change.reason:
        out.append(f'<p class="wb-bad">{text(change.reason)}</p>')
    out += [note(n) for n in change.notes]
    if len(change.table):
        more = d.changed_row_count - len(d.changed_rows)
        title = f"Changed rows ({len(change.table):,} listed" + (f", {more:,} more not listed by the diff)" if more
                                                                 else ")")  # fmt: skip
        out += [f"<h4>{text(title)}</h4>", html_table(change.table, max_rows=200)]
    return "".join(out)


# --------------------------------------------------------------------------------------------------- the widget
def tensor_explorer(inv: Investigation) -> Explorer:
    """A tensor picker (``wb-tensor-select``), its detail (``wb-tensor-detail``), its heatmap and singular values
    (``FigureWidget``), and an export of its changed rows. A tensor's change is computed once per explorer.

    Parts: ``select``, ``detail``, ``heatmap``, ``spectrum``, ``export``, ``choices``, ``state`` (``change``: the
    :class:`TensorChange` shown) and ``change(index)`` (the memoised :func:`tensor_change`).
    """
    import ipywidgets as w
    import plotly.graph_objects as go

    choices = tensor_choices(inv)
    if not choices:
        pane = w.HTML(note("No tensor diff in this run (no model pair compared with a reference copy)."))
        pane.add_class("wb-tensor-detail")
        return Explorer(w.VBox([pane]), lambda: pane.value, detail=pane, choices=choices, state={})
    select = w.Dropdown(options=[(c.label, i) for i, c in enumerate(choices)], value=0, description="tensor",
                        layout={"width": "100%"}, style={"description_width": "initial"})  # fmt: skip
    select.add_class("wb-tensor-select")
    detail = w.HTML()
    detail.add_class("wb-tensor-detail")
    heatmap, spectrum = go.FigureWidget(), go.FigureWidget()
    memo: dict[int, TensorChange] = {}
    state: dict[str, Any] = {}

    def change(index: int) -> TensorChange:
        if index not in memo:
            memo[index] = tensor_change(inv, choices[index])
        return memo[index]

    def refresh(*_: object) -> None:
        state["change"] = current = change(select.value)
        detail.value = tensor_detail(current)
        redraw(heatmap, heat_figure(current))
        redraw(spectrum, spectrum_figure(current))

    select.observe(refresh, names="value")
    refresh()
    exports = export_bar(lambda: state["change"].table.assign(tensor=state["change"].choice.diff.name),
                         inv.out_dir, "tensor-rows")  # fmt: skip
    box = w.VBox([select, detail, heatmap, spectrum, exports])

    def static() -> str:
        current = state["change"]
        return detail.value + figure_html(heat_figure(current)) + figure_html(spectrum_figure(current))

    return Explorer(box, static, select=select, detail=detail, heatmap=heatmap, spectrum=spectrum, export=exports,
                    choices=choices, state=state, change=change)  # fmt: skip
