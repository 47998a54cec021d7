"""The contract between an analysis and the investigation: a context in, an :class:`AnalysisResult` out.

Each analysis is a plain function ``analyse(ctx: AnalysisContext) -> AnalysisResult`` that never prints and never
writes into the evidence; its section of the notebook and report is drawn by ``render(result) -> list`` (HTML and
plotly figures), shown by :class:`SectionView` in one notebook cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.records import Event, EvidenceWarning, Finding

if TYPE_CHECKING:
    from workbench.case import Case
    from workbench.collect import EvidenceSet
    from workbench.estimates import PredictionOutputs

__all__ = ["AnalysisContext", "AnalysisResult", "SectionView", "describe_data_files"]


@dataclass(slots=True)
class AnalysisContext:
    """What every analysis may read.

    Attributes:
        case: the opened evidence tree (``case.root``, ``case.meta``, ``case.files``, ``case.model_dir(role)``).
        evidence: loaded evidence by kind (``evidence.first("frozen_deps")``, ``evidence.all("pipeline_log")``).
        reference: known-good model folder, or None.
        out_dir: the run's output folder (the only place an analysis may write, e.g. caches).
        parameters: notebook parameters (papermill ``-p``), for analysis options.
        intake_hashes: ``{relative path: sha256}`` of every evidence file, from the custody intake. An analysis
            that needs a file's digest reads it here instead of hashing the file again.
        progress: where long steps report what they are doing (see :mod:`workbench.progress`); None: silent.
    """

    case: Case
    evidence: EvidenceSet
    reference: Path | None = None
    out_dir: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    intake_hashes: Mapping[str, str] = field(default_factory=dict)
    progress: Any = None


@dataclass(slots=True)
class AnalysisResult:
    """What one analysis concluded.

    Attributes:
        section: section key (``model``, ``logs``, ``host``, ``dependencies``, ``drift``...).
        findings / events / warnings: records for the findings table, the timeline and the warnings table.
        data: DataFrames and objects the section's renderer and the notebook's explorers use.
        summary: one or two sentences of plain text for the executive summary.
        outputs: for the drift analysis, the prediction records as the conclusions read them (detected shift, the
            impact of any window).
        inputs: the evidence files (relative to the case) the analysis read, for the coverage record.
        not_applicable: why the analysis had nothing to examine (no such evidence in the case), or None when it
            examined something. An analysis that found nothing in the evidence it read leaves this None.
        limits: what it could not examine in the evidence it had (e.g. a model with no reference copy and no signed
            manifest: its weights could not be compared), one sentence each.
        unexamined: evidence it did not examine because a cap or a budget was reached (``"path: reason"`` each):
            the section's coverage is then ``partial`` and the verdict cannot be clean.
    """

    section: str
    findings: list[Finding] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    outputs: PredictionOutputs | None = None
    inputs: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    limits: list[str] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)


class SectionView:
    """Displays several objects (HTML, figures) from one notebook cell, in order."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        for item in self.items:
            display(HTML(item) if isinstance(item, str) else item)


Renderer = Callable[[AnalysisResult], list[Any]]


def describe_data_files(label: str, *paths: Path) -> str:
    """``label: name, name; sha256 <16 hex>`` over the files' bytes: which rule data a run used (appendix)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return f"{label}: {', '.join(p.name for p in paths)}; sha256 {digest.hexdigest()[:16]}"
