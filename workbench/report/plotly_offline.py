"""An offline plotly renderer for notebooks that become HTML reports.

plotly's default renderer in a kernel leaves figures out of nbconvert's HTML, ``notebook_connected`` loads
plotly.js from a CDN, and ``notebook`` pulls MathJax from one. This renderer writes each figure as an HTML div
with neither plotly.js nor MathJax; :func:`plotlyjs_html` embeds plotly.js exactly once (the setup cell). The
combination ``plotly_mimetype+workbench`` keeps interactive figures in JupyterLab and gives nbconvert HTML.
"""

from __future__ import annotations

import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer
from plotly.offline import get_plotlyjs

__all__ = ["RENDERER", "activate", "plotlyjs_html"]

RENDERER = "workbench"
#: figure width in the HTML/PDF report (px): A4 portrait minus margins
REPORT_WIDTH = 620


class OfflineHtmlRenderer(MimetypeRenderer):
    """text/html bundle of a figure that relies on a plotly.js already loaded in the page."""

    def to_mimebundle(self, fig_dict):
        # A fixed width that fits an A4 page: responsive sizing measures the container before printing and
        # clips figures on paper. JupyterLab keeps the interactive, responsive figure (plotly mimetype).
        layout = dict(fig_dict.get("layout") or {})
        layout["width"] = min(int(layout.get("width") or REPORT_WIDTH), REPORT_WIDTH)
        layout["autosize"] = False
        fig_dict = {**fig_dict, "layout": layout}
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            config={"displaylogo": False, "responsive": False},
            validate=False,
        )
        return {"text/html": f'<div class="wb-figure">{html}</div>'}


def activate() -> None:
    """Register the renderer and make ``plotly_mimetype+workbench`` the default."""
    pio.renderers[RENDERER] = OfflineHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"


def plotlyjs_html() -> str:
    """plotly.js inlined in a script tag (about 5 MB), to be emitted once before any figure."""
    return f'<script type="text/javascript">{get_plotlyjs()}</script>'
