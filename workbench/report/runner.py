"""``workbench investigate``: custody intake, papermill execution of the notebook, HTML rendering.

A failing cell still yields a report (papermill saves the notebook with the error, the remaining cells run) and
the run ends with a :class:`~workbench.errors.ReportError` naming the cell.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import custody
from workbench._version import __version__
from workbench.case import Case
from workbench.errors import CustodyError, ReportError
from workbench.hashing import sha256_file
from workbench.records import now_utc
from workbench.report.pdf import html_to_pdf
from workbench.report.render import render_html
from workbench.report.resources import notebook_path

__all__ = ["RunResult", "investigate"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunResult:
    """Paths written by a run and its verdict."""

    out_dir: Path
    notebook: Path
    html: Path
    findings: Path
    verdict: str
    critical: int


def _ipc_kernel_manager() -> type:
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class _IPC(AsyncKernelManager):
        """Kernel on local IPC sockets: nothing listens on TCP while evidence is being analysed."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return _IPC


def __getattr__(name: str) -> Any:  # lazy: jupyter_client is imported only when a report runs
    if name == "IPCKernelManager":
        return _ipc_kernel_manager()
    raise AttributeError(name)


def _redact_in_place(executed: Path) -> None:
    """The executed notebook is an output too: no secret found in the evidence stays in it in clear."""
    import nbformat

    from workbench.report.render import redact_notebook

    nb = nbformat.read(executed, as_version=4)
    if redact_notebook(nb):
        nbformat.write(nb, executed)


def _title_block(case: Case, doc: dict[str, Any], executed: Path) -> dict[str, Any]:
    meta = case.meta
    return {
        "incident_id": case.incident_id,
        "title": meta.title,
        "verdict": doc.get("verdict", "unknown (the run failed before its outputs were written)"),
        "severity": meta.severity.value if meta.severity else None,
        "models": ", ".join(meta.affected_models),
        "generated_at": doc.get("generated_at") or now_utc().isoformat(),
        "workbench_version": __version__,
        "notebook_sha256": sha256_file(executed)[0],
        "custody_head": (doc.get("custody") or {}).get("head", ""),
    }


def _first_failure(executed: Path) -> ReportError | None:
    """The FIRST failing cell (papermill reports the last one; later failures usually follow from the first)."""
    import nbformat

    if not executed.exists():
        return None
    nb = nbformat.read(executed, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = cell.source.strip().splitlines()
                first_line = lines[0] if lines else ""
                return ReportError(
                    f"notebook cell {cell.get('execution_count')} ({first_line!r}) raised "
                    f"{output.get('ename')}: {output.get('evalue')}",
                    cell_index=index,
                    ename=output.get("ename"),
                    evalue=output.get("evalue"),
                )
    return None


def investigate(
    case_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    reference: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    pdf: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Investigate one case end to end.

    Args:
        case_dir: the evidence tree (read-only).
        out_dir: output folder (default ``./out/<incident id>``); must not exist inside the evidence tree and must
            not already hold a custody ledger.
        reference: known-good model folder overriding the case's.
        parameters: extra papermill parameters (``-p NAME=VALUE``).
        pdf: also print ``report.pdf`` with headless Chromium.
        progress: called with one line per step.

    Returns:
        A :class:`RunResult`.

    Raises:
        EvidenceError: the case cannot be opened.
        CustodyError: the output folder is unusable.
        ReportError: a notebook cell failed (the report is still written) or rendering failed.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    case = Case.open(case_dir)
    out = Path(out_dir) if out_dir else Path("out") / case.incident_id
    out = out.resolve()
    if out == case.root or case.root in out.parents:
        raise CustodyError(f"{out}: output folder is inside the evidence tree; choose one outside it")
    say(f"case {case.incident_id}: {len(case.files)} evidence files, {len(case.warnings)} inventory warnings")
    ledger = custody.intake(case, out, progress=None)
    say(f"custody: ledger {out / custody.LEDGER_NAME} (head {ledger.head[:16]}…)")

    params: dict[str, Any] = {
        "CASE_DIR": str(case.root),
        "OUT_DIR": str(out),
        "REFERENCE": str(Path(reference).resolve()) if reference else "",
        "OPTIONS": dict(parameters or {}),
    }
    executed = out / "report.ipynb"
    failure: ReportError | None = None
    say("executing notebooks/investigate.ipynb …")
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(notebook_path()),
            str(executed),
            parameters=params,
            cwd=str(out),
            progress_bar=False,
            kernel_name="python3",
            kernel_manager_class=f"{__name__}.IPCKernelManager",
            allow_errors=True,
            log_output=False,
        )
    except PapermillExecutionError as exc:
        failure = _first_failure(executed) or ReportError(
            f"notebook cell {exc.exec_count} raised {exc.ename}: {exc.evalue}",
            cell_index=exc.cell_index,
            ename=exc.ename,
            evalue=exc.evalue,
        )
    html = out / "report.html"
    findings_path = out / "findings.json"
    doc = json.loads(findings_path.read_text(encoding="utf-8")) if findings_path.exists() else {}
    if executed.exists():
        _redact_in_place(executed)
        render_html(executed, html, title=f"Incident {case.incident_id}", metadata=_title_block(case, doc, executed))
        say(f"report: {html}")
        if pdf:
            html_to_pdf(html, out / "report.pdf")
            say(f"pdf: {out / 'report.pdf'}")
    if failure is not None:
        raise failure
    if not findings_path.exists():
        raise ReportError(f"{findings_path} was not written: the notebook did not finish the run")
    critical = sum(1 for f in doc.get("findings", []) if f.get("severity") == "critical")
    return RunResult(out, executed, html, findings_path, doc.get("verdict", "unknown"), critical)
