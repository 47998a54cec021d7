"""``workbench investigate``: checks, custody intake, the notebook executed in a kernel, HTML (and PDF) rendering.

Order of a run: every input is checked first (the options against :mod:`workbench.parameters`, the case, the
reference, the output folder, Chromium for ``--pdf``) and nothing is written when a check fails; an earlier run's
folder is then replaced (``force``), custody is taken in this process, and papermill executes
``notebooks/investigate.ipynb`` in a worker thread while this thread follows the kernel's progress file (the
analyses run in the kernel and report their stages there). The executed notebook is redacted and rendered.

A failing cell still yields a report (papermill saves the notebook with the error, the remaining cells run):
:attr:`RunResult.error` names the first failing cell. Ctrl-C at any stage raises :class:`Interrupted` (a
``KeyboardInterrupt``) naming the stage, after the kernel has been stopped; an interrupted intake is closed as
incomplete in the ledger (see :mod:`workbench.custody`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import custody, custody_anchors
from workbench._version import __version__
from workbench.case import Case
from workbench.categories import NOT_INCIDENT
from workbench.errors import CustodyError, EvidenceError, ReportError, WorkbenchError
from workbench.hashing import sha256_file
from workbench.parameters import validate as validate_options
from workbench.progress import SILENT, Follower, Progress, tee
from workbench.records import Severity, now_utc
from workbench.report import kernel
from workbench.resources import notebook_path

__all__ = ["EXIT_MEANING", "WORKBENCH_OUTPUTS", "Interrupted", "MissingTool", "RunResult", "investigate"]

log = logging.getLogger(__name__)

#: what ``investigate`` writes into its output folder: the only names ``--force`` deletes
WORKBENCH_OUTPUTS = frozenset(
    {
        custody.LEDGER_NAME,
        custody_anchors.SIGNATURE_NAME,
        "findings.json",
        "timeline.jsonl",
        "comms",
        "report.ipynb",
        "report.html",
        "report.pdf",
    }
)
#: exit status of ``workbench investigate`` -> its meaning (contract, docs/contracts.md)
EXIT_MEANING = {
    0: "done (whatever was found)",
    1: "findings at or above --fail-on",
    2: "usage error or unusable input; nothing was written",
    3: "an analysis or a notebook cell failed (the report is still written and shows the error)",
    130: "interrupted (Ctrl-C)",
}


class MissingTool(WorkbenchError):
    """A tool the run was asked to use is not installed (Chromium for ``--pdf``); nothing was written."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after the kernel (if any) was stopped.

    Attributes:
        stage: the stage that was running (``custody intake``, ``notebook``, ``html report``...), or "" before any.
        out_dir: the output folder, or None when nothing was written yet.
    """

    def __init__(self, stage: str, out_dir: Path | None) -> None:
        self.stage = stage
        self.out_dir = out_dir
        super().__init__(stage)


@dataclass(slots=True)
class RunResult:
    """What a run wrote and concluded.

    Attributes:
        out_dir: the output folder.
        notebook / html / findings: ``report.ipynb``, ``report.html``, ``findings.json``.
        doc: the ``findings.json`` document ({} when the notebook did not get to write it).
        pdf: ``report.pdf`` when asked for.
        error: what went wrong making the report (the first failing notebook cell, a kernel that died, HTML or
            PDF rendering), or None. The outputs written before it are kept.
        stages: the progress records of the run's stages (``{"stage", "seconds"}``), in order.
    """

    out_dir: Path
    notebook: Path
    html: Path
    findings: Path
    doc: dict[str, Any] = field(default_factory=dict)
    pdf: Path | None = None
    error: ReportError | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The conclusions' verdict (``unknown`` when findings.json was not written)."""
        return str(self.doc.get("verdict", "unknown"))

    def outputs(self) -> dict[str, str | None]:
        """Every output path (None for one that was not written)."""

        def present(path: Path | None) -> str | None:
            return str(path) if path is not None and path.exists() else None

        return {
            "out_dir": str(self.out_dir),
            "report_html": present(self.html),
            "report_pdf": present(self.pdf),
            "report_ipynb": present(self.notebook),
            "findings_json": present(self.findings),
            "timeline_jsonl": present(self.out_dir / "timeline.jsonl"),
            "comms_dir": present(self.out_dir / "comms"),
            "custody_ledger": present(self.out_dir / custody.LEDGER_NAME),
        }

    def failed_analyses(self) -> list[dict[str, str]]:
        """Analyses whose coverage is ``failed``: ``{"section", "title", "error"}`` each."""
        coverage = (self.doc.get("conclusions") or {}).get("coverage") or {}
        return [
            {"section": key, "title": str(c.get("title", key)), "error": str(c.get("detail", ""))}
            for key, c in coverage.items()
            if c.get("status") == "failed"
        ]

    def at_or_above(self, severity: str) -> list[dict[str, Any]]:
        """Findings about the incident at or above ``severity``, worst first (evidence handling and leads,
        :data:`workbench.categories.NOT_INCIDENT`, never count)."""
        floor = Severity.parse(severity).rank
        hits = [
            f
            for f in self.doc.get("findings", [])
            if f.get("category") not in NOT_INCIDENT and Severity.parse(f.get("severity", "info")).rank >= floor
        ]
        return sorted(hits, key=lambda f: -Severity.parse(f["severity"]).rank)

    def exit_code(self, fail_on: str | None = None) -> int:
        """3 when an analysis or a cell failed, else 1 when a finding reaches ``fail_on``, else 0."""
        if self.error is not None or self.failed_analyses():
            return 3
        return 1 if fail_on and self.at_or_above(fail_on) else 0

    def summary(self, fail_on: str | None = None) -> dict[str, Any]:
        """The ``investigate --json`` document (contract in docs/contracts.md)."""
        conclusions = self.doc.get("conclusions")
        code = self.exit_code(fail_on)
        tripped = self.at_or_above(fail_on) if fail_on else []
        return {
            "incident_id": self.doc.get("incident_id"),
            "verdict": self.verdict,
            "exit_status": {"code": code, "meaning": EXIT_MEANING[code]},
            "coverage": (conclusions or {}).get("coverage"),
            "conclusions": conclusions,
            "fail_on": None
            if not fail_on
            else {
                "severity": fail_on,
                "tripped": bool(tripped),
                "count": len(tripped),
                "findings": [{k: f.get(k) for k in ("id", "severity", "category", "title")} for f in tripped],
            },
            "failed_analyses": self.failed_analyses(),
            "report_error": str(self.error) if self.error else None,
            "custody": self.doc.get("custody"),
            "outputs": self.outputs(),
            "stages": [{"stage": s["stage"], "seconds": s["seconds"]} for s in self.stages],
            "workbench_version": __version__,
        }


def _check_reference(reference: str | Path | None, out: Path) -> Path | None:
    if reference is None or str(reference) == "":
        return None
    ref = Path(reference).expanduser().resolve()
    if not ref.exists():
        raise EvidenceError(str(reference), "reference model folder does not exist")
    if not ref.is_dir():
        raise EvidenceError(str(reference), "reference is not a folder (give the known-good model folder)")
    if ref == out or out in ref.parents:
        raise EvidenceError(str(reference), f"reference lies inside the output folder {out}; choose another --out")
    if ref in out.parents:
        raise CustodyError(f"{out}: output folder is inside the reference model folder; choose one outside it")
    return ref


def _describe_run(out: Path) -> str:
    ledger_path = out / custody.LEDGER_NAME
    if not ledger_path.is_file():
        return "an earlier run's findings.json"
    try:
        ledger, broken = custody.Ledger.read(ledger_path)
    except CustodyError as exc:
        return f"an unusable custody ledger ({exc})"
    if broken:
        return "a custody ledger whose chain is broken"
    state = ledger.intake_state()
    if not state.complete:
        return f"a run whose {state.describe()}"
    return f"an earlier run (custody ledger of {state.recorded} files)"


def _check_out_dir(out: Path, case: Case, force: bool) -> bool:
    """Refuse an unusable output folder; True when an earlier run's folder is to be replaced (``force``)."""
    if out == case.root or case.root in out.parents:
        raise CustodyError(f"{out}: output folder is inside the evidence tree; choose one outside it")
    if out in case.root.parents:
        raise CustodyError(f"{out}: the evidence ({case.root}) lies inside this output folder; choose another --out")
    if not out.exists():
        return False
    if not out.is_dir():
        raise CustodyError(f"{out}: exists and is not a folder; choose another --out")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return False
    if custody.LEDGER_NAME not in entries and "findings.json" not in entries:
        raise CustodyError(
            f"{out}: not empty and not a workbench output folder (no {custody.LEDGER_NAME}, no findings.json); "
            "choose a new or empty one (--force only replaces an earlier run)"
        )
    if not force:
        raise CustodyError(f"{out}: holds {_describe_run(out)}; pass --force to replace it, or choose another --out")
    if foreign := [e for e in entries if e not in WORKBENCH_OUTPUTS and not kernel.is_kernel_socket(out / e)]:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise CustodyError(f"{out}: --force refused: the folder also holds files the workbench does not write "
                           f"({listed}); move them away or choose another --out")  # fmt: skip
    return True


def _title_block(case: Case, doc: dict[str, Any], executed: Path) -> dict[str, Any]:
    """The report's title block (notebook metadata read by the template); case.yaml's text is evidence: redacted."""
    from workbench.rulepack.redact import redact

    meta = case.meta
    return {
        "incident_id": redact(case.incident_id),
        "title": redact(meta.title) if meta.title else meta.title,
        "verdict": doc.get("verdict", "unknown (the run failed before its outputs were written)"),
        "severity": meta.severity.value if meta.severity else None,
        "models": redact(", ".join(meta.affected_models)),
        "generated_at": doc.get("generated_at") or now_utc().isoformat(),
        "workbench_version": __version__,
        "notebook_sha256": sha256_file(executed)[0],
        "custody_head": (doc.get("custody") or {}).get("head", ""),
    }


def _redact_in_place(executed: Path) -> None:
    """The executed notebook is an output too: no secret found in the evidence stays in it in clear."""
    import nbformat

    from workbench.report.render import redact_notebook

    nb = nbformat.read(executed, as_version=4)
    if redact_notebook(nb):
        nbformat.write(nb, executed)


def investigate(
    case_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    reference: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    pdf: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    notebook: Path | None = None,
    sign_head: Path | None = None,
) -> RunResult:
    """Investigate one case end to end.

    Args:
        case_dir: the evidence tree (read-only).
        out_dir: output folder (default ``./out/<incident id>``): new or empty, never inside the evidence (nor the
            evidence inside it); one holding an earlier run is refused unless ``force``.
        reference: known-good model folder overriding the case's (must exist, outside the output folder).
        parameters: analysis options (``-p NAME=VALUE``), checked against :data:`workbench.parameters.REGISTRY`.
        pdf: also print ``report.pdf`` with headless Chromium (which must be installed).
        force: replace an earlier run's output folder (only one holding nothing but workbench outputs).
        progress: receives the stages (this process's and the kernel's) and byte counters.
        notebook: the notebook to execute (default: the bundled ``investigate.ipynb``).
        sign_head: an ECDSA private key (PEM): the custody head quoted in findings.json is signed into
            ``custody.head.sig`` (checked before anything is written; :mod:`workbench.custody_anchors`).

    Returns:
        A :class:`RunResult` (its ``error`` is set when a cell failed; the report is still written).

    Raises:
        ParameterError: an unknown option or a value of the wrong kind (nothing written).
        EvidenceError: the case or the reference cannot be used (nothing written).
        CustodyError: the output folder is unusable or holds an earlier run without ``force`` (nothing written).
        MissingTool: ``pdf`` without Chromium (nothing written).
        Interrupted: Ctrl-C (the kernel is stopped first; an interrupted intake is closed as incomplete).
    """
    stages: list[dict[str, Any]] = []

    def record(r: dict[str, Any]) -> None:
        if "seconds" in r:
            stages.append(r)

    prog = Progress(tee(*(e for e in ((progress or SILENT).emit, record) if e is not None)))
    current = ""
    out: Path | None = None
    try:
        options = validate_options(parameters)
        case = Case.open(case_dir)
        resolved = (Path(out_dir) if out_dir else Path("out") / case.incident_id).expanduser().resolve()
        ref = _check_reference(reference, resolved)
        replace = _check_out_dir(resolved, case, force)
        if pdf:
            from workbench.report.pdf import INSTALL_HINT, find_chromium

            if find_chromium() is None:
                raise MissingTool(f"--pdf needs Chromium, which was not found; {INSTALL_HINT}")
        signing_key = custody_anchors.load_signing_key(sign_head) if sign_head else None
        out = resolved
        if replace:
            current = "--force removal"
            shutil.rmtree(out)
        current = "custody intake"
        with prog.stage(current) as info:
            ledger = custody.intake(case, out, progress=prog)
            state = ledger.intake_state()
            info["detail"] = f"{state.recorded} files, {len(case.warnings)} inventory warnings"
        executed = out / "report.ipynb"
        with tempfile.TemporaryDirectory(prefix="workbench-progress-") as tmp:
            progress_file = Path(tmp) / "progress.jsonl"
            params: dict[str, Any] = {
                "CASE_DIR": str(case.root),
                "OUT_DIR": str(out),
                "REFERENCE": str(ref or ""),
                "OPTIONS": options,
                "PROGRESS_FILE": str(progress_file),
            }
            current = "notebook"
            with prog.stage(current, announce="the analyses run in the notebook kernel") as info:
                try:
                    error = kernel.execute(notebook or notebook_path(), executed, params, out,
                                           Follower(progress_file, prog.forward))  # fmt: skip
                finally:
                    kernel.remove_kernel_sockets(out)
                info["detail"] = f"cell failed: {error.ename}" if error else ""
        html = out / "report.html"
        findings_path = out / "findings.json"
        doc = json.loads(findings_path.read_text(encoding="utf-8")) if findings_path.exists() else {}
        result = RunResult(out, executed, html, findings_path, doc, error=error, stages=stages)
        if executed.exists():
            from workbench.report.render import render_html

            current = "html report"
            try:
                with prog.stage(current):
                    _redact_in_place(executed)
                    render_html(executed, html, title=f"Incident {case.incident_id}",
                                metadata=_title_block(case, doc, executed))  # fmt: skip
                if pdf:
                    from workbench.report.pdf import html_to_pdf

                    current = "pdf report"
                    with prog.stage(current):
                        result.pdf = html_to_pdf(html, out / "report.pdf")
            except ReportError as exc:
                result.error = result.error or exc
        if result.error is None and not doc:
            result.error = ReportError(f"{findings_path} was not written: the notebook did not finish the run")
        if signing_key is not None:
            custody_anchors.sign_head(out, (doc.get("custody") or {}).get("head") or ledger.head, signing_key)
        return result
    except KeyboardInterrupt:
        raise Interrupted(current, out) from None
