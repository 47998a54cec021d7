"""The one setup call of the investigation notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from IPython.display import HTML, display

from workbench.investigation import Investigation
from workbench.report import plotly_offline
from workbench.report.present import STYLE

__all__ = ["setup"]


def setup(
    case_dir: str | Path,
    out_dir: str | Path | None = None,
    reference: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> Investigation:
    """Prepare the kernel for an offline report and open the investigation.

    Activates the offline plotly renderer, embeds plotly.js and the report's styles once, then opens the case
    (custody intake unless this run's ledger already exists in ``out_dir``) and runs the analyses.

    Returns:
        The :class:`~workbench.investigation.Investigation`.
    """
    plotly_offline.activate()
    display(HTML(STYLE + plotly_offline.plotlyjs_html()))
    return Investigation.open(case_dir, out_dir or None, reference or None, options or {})
