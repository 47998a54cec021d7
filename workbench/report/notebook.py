"""The one setup call of the investigation notebook."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from IPython.display import HTML, display

from workbench.htmlkit import STYLE
from workbench.investigation import Investigation
from workbench.parameters import validate
from workbench.progress import FileSink, Progress
from workbench.report import live, plotly_offline
from workbench.report.render import OWN_CODE
from workbench.report.view import ReportView

__all__ = ["setup"]


def setup(
    case_dir: str | Path,
    out_dir: str | Path | None = None,
    reference: str | Path | None = None,
    options: dict[str, Any] | None = None,
    progress_file: str | Path | None = None,
    *,
    rerun: bool = False,
) -> ReportView:
    """Prepare the kernel for an offline report, run the investigation and return what the cells show.

    Checks the options (:func:`workbench.parameters.validate`), activates the offline plotly renderer, embeds
    plotly.js and the report's styles once, then runs the investigation
    (:meth:`~workbench.investigation.Investigation.open`: custody intake unless this run's ledger already exists in
    ``out_dir``, every analysis, the conclusions, and the contract outputs written).

    Args:
        case_dir / out_dir / reference / options: the notebook's parameters.
        progress_file: a JSON-lines file receiving the run's stages (:class:`~workbench.progress.FileSink`), which
            ``workbench investigate`` follows; empty or None (an analyst's notebook): the stages are shown in the
            cell's output as they end (:class:`~workbench.report.live.NotebookSink`), then where the outputs are.
        rerun: run again even if this kernel already ran the same parameters (:mod:`workbench.report.live`:
            otherwise the kept run is returned, nothing re-hashed or re-analysed).

    Returns:
        The :class:`~workbench.report.view.ReportView`; its ``investigation`` is the run.

    Raises:
        ParameterError: an unknown option or a value of the wrong kind.
    """
    checked = validate(options)
    plotly_offline.activate()
    display(HTML(STYLE + plotly_offline.plotlyjs_html()), metadata={OWN_CODE: True})
    if progress_file:  # workbench investigate: the CLI follows the file and prints the stages
        progress = Progress(FileSink(Path(progress_file)))
        return ReportView(Investigation.open(case_dir, out_dir or None, reference or None, checked, progress=progress))
    key = live.run_key(case_dir, out_dir, reference, checked)
    kept = None if rerun else live.cached(key)
    if kept is not None:
        view, finished = kept
        display(HTML(live.where_note(view.investigation.out_dir, temporary=not out_dir, reused=finished)))
        return view
    sink = live.NotebookSink()
    started = time.monotonic()
    view = ReportView(Investigation.open(case_dir, out_dir or None, reference or None, checked,
                                         progress=Progress(sink)))  # fmt: skip
    sink.done(time.monotonic() - started)
    live.remember(key, view)
    display(HTML(live.where_note(view.investigation.out_dir, temporary=not out_dir)))
    return view
