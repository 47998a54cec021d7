"""The one setup call of the investigation notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from IPython.display import HTML, display

from workbench.htmlkit import STYLE
from workbench.investigation import Investigation
from workbench.report import plotly_offline
from workbench.report.render import OWN_CODE
from workbench.report.view import ReportView

__all__ = ["setup"]


def setup(
    case_dir: str | Path,
    out_dir: str | Path | None = None,
    reference: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> ReportView:
    """Prepare the kernel for an offline report, run the investigation and return what the cells show.

    Activates the offline plotly renderer, embeds plotly.js and the report's styles once, then runs the
    investigation (:meth:`~workbench.investigation.Investigation.open`: custody intake unless this run's ledger
    already exists in ``out_dir``, every analysis, the conclusions, and the contract outputs written).

    Returns:
        The :class:`~workbench.report.view.ReportView`; its ``investigation`` is the run.
    """
    plotly_offline.activate()
    display(HTML(STYLE + plotly_offline.plotlyjs_html()), metadata={OWN_CODE: True})
    return ReportView(Investigation.open(case_dir, out_dir or None, reference or None, options or {}))
