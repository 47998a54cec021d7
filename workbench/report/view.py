"""What the notebook shows of a finished run: one method per notebook cell, each returning something Jupyter
renders (HTML, plotly figures, widgets). Nothing here analyses or concludes; everything reads the
:class:`~workbench.investigation.Investigation` and its :class:`~workbench.conclusions.Conclusions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.display import HTML

from workbench.analysis import SectionView
from workbench.htmlkit import text
from workbench.report import present
from workbench.report.findings_view import section_findings
from workbench.sections import SECTIONS, resolve

if TYPE_CHECKING:
    from workbench.investigation import Investigation

__all__ = ["ReportView"]


class ReportView:
    """The display side of one investigation (the notebook's ``view``).

    Attributes:
        investigation: the run shown (its findings, events, results, conclusions and outputs).
    """

    def __init__(self, investigation: Investigation) -> None:
        self.investigation = investigation
        self._rendered: dict[str, list[Any]] = {}

    @property
    def conclusions(self):
        return self.investigation.conclusions

    def summary(self) -> HTML:
        """Verdict with its reasons, compromise start, exposure, indicators, what to do now, coverage (HTML)."""
        return present.summary(self.investigation)

    def custody_status(self) -> HTML:
        """Re-hash the evidence now and show whether it still matches the intake (HTML)."""
        inv = self.investigation
        return present.custody_status(inv.verify_custody())

    def evidence_table(self) -> HTML:
        """Every evidence file with its size, detected kind and intake SHA-256 (HTML)."""
        return present.evidence_table(self.investigation)

    def coverage(self) -> HTML:
        """What each analysis examined, had nothing to examine, or failed at (HTML)."""
        return present.coverage_table(self.investigation.conclusions)

    def findings_table(self, section: str | None = None) -> HTML:
        """Findings (all, or one section's) as an escaped HTML table, worst first."""
        inv = self.investigation
        if section is None:
            return present.findings_table(inv.findings)
        result = inv.results.get(section)
        return present.findings_table(result.findings if result else [])

    def findings_by_tactic(self) -> HTML:
        """Appendix B: every finding with its anchor; attack findings grouped by MITRE ATLAS tactic (HTML)."""
        return present.findings_by_tactic(self.investigation.findings)

    def _items(self, name: str) -> list[Any]:
        """The section renderer's items (rendered once, for the body and Appendix C), or the reason it cannot
        render as the only item."""
        if name not in self._rendered:
            self._rendered[name] = self._render(name)
        return self._rendered[name]

    def _render(self, name: str) -> list[Any]:
        inv = self.investigation
        spec = SECTIONS.get(name)
        result = inv.results.get(name)
        if spec is None or result is None:
            return [present.pending(name)]
        if name in inv.errors:
            return [present.failed(name, inv.errors[name])]
        renderer = resolve(spec[2]) if spec[2] else present.findings_list
        items = renderer(result)
        if result.not_applicable:
            items = [present.not_applicable(result.not_applicable), *items]
        return items

    def section(self, name: str) -> SectionView:
        """One analysis section in the body: its summary, its key figure (the renderer's first) and its findings
        of at least medium severity, each linked to Appendix B; the tables are in :meth:`section_details`. A
        failed analysis says so (its error), and the run's coverage counts it as failed."""
        inv = self.investigation
        result = inv.results.get(name)
        if result is None or name in inv.errors or name not in SECTIONS:
            return SectionView(self._items(name))
        body: list[Any] = [present.not_applicable(result.not_applicable)] if result.not_applicable else []
        if result.summary:
            body.append(f"<p>{text(result.summary)}</p>")
        figure = next((i for i in self._items(name) if not isinstance(i, str)), None)
        if figure is not None:
            body.append(figure)
        if result.findings or not result.not_applicable:
            body.append(section_findings(result.findings))
        return SectionView(body)

    def section_details(self, name: str) -> SectionView:
        """The rest of what the section's renderer shows (tables, further figures, log lines with context), for
        Appendix C: everything but the key figure already shown in the body."""
        items = self._items(name)
        first = next((i for i, item in enumerate(items) if not isinstance(item, str)), None)
        return SectionView([item for i, item in enumerate(items) if i != first])

    def milestones_table(self) -> HTML:
        """Milestones and intervals, from the conclusions (HTML)."""
        from workbench.timeline.plots import milestones_table

        return HTML(milestones_table(self.investigation.conclusions))

    def timeline_figure(self, group_by: str = "lane") -> Any:
        """Events by source lane (or ATLAS tactic), milestones marked, the exposure window shaded (plotly, UTC)."""
        from workbench.timeline.plots import timeline_figure

        inv = self.investigation
        return timeline_figure(inv.timeline, inv.conclusions, group_by=group_by)

    def recommendations(self) -> HTML:
        """What to do now and the preventive measures, each with the findings that justify it (HTML)."""
        c = self.investigation.conclusions
        return present.actions_list(c.actions, c.recommendations)

    def comms(self) -> HTML:
        """The communication drafts the run wrote into OUT/comms/ (HTML)."""
        return present.comms(self.investigation.comms)

    def warnings_table(self) -> HTML:
        """Every recorded evidence warning: file, line, reason (HTML)."""
        return present.warnings_table(self.investigation)

    def appendix(self) -> HTML:
        """Run parameters, naive-time rule, rule packs and tool versions (HTML)."""
        inv = self.investigation
        return present.appendix(inv, inv.rule_packs())

    def outputs(self) -> HTML:
        """The contract files the run wrote (HTML)."""
        return present.outputs(self.investigation.outputs)

    # ---------------------------------------------------------------------------------------------- explorers
    # Each returns a workbench.explore.common.Explorer: the live widgets in JupyterLab, a static view elsewhere.
    def explore_findings(self) -> Any:
        """Findings: severity, category, ATLAS, section and text filters, paged; the selected one's evidence."""
        from workbench.explore.findings import findings_explorer

        return findings_explorer(self.investigation)

    def explore_timeline(self) -> Any:
        """The timeline: a time-range selector, lane and severity filters, the figure and a linked event table."""
        from workbench.explore.timeline import timeline_explorer

        return timeline_explorer(self.investigation)

    def explore_tensors(self) -> Any:
        """Any tensor of the model diff (modified first): its change heatmap, changed rows and spectrum."""
        from workbench.explore.tensors import tensor_explorer

        return tensor_explorer(self.investigation)

    def explore_drift(self) -> Any:
        """Window, significance and minimum effect: the drift analysis re-run on the loaded predictions."""
        from workbench.explore.drift import drift_explorer

        return drift_explorer(self.investigation)

    def explore_indicators(self) -> Any:
        """An indicator (IP, host, package, hash): every finding, event and log line that mentions it."""
        from workbench.explore.indicators import indicator_explorer

        return indicator_explorer(self.investigation)

    def explore(self, section: str, table: str, column: str | None = None) -> Any:
        """An explorer of one of a section's tables, e.g. ``("model", "tensors", "status")``: paged, searchable,
        exportable.

        Raises:
            KeyError: the section has no such table (the message lists the tables it has).
        """
        import pandas as pd

        from workbench.explore.tables import frame_explorer

        data = self.investigation.results[section].data
        frame = data.get(table)
        if not isinstance(frame, pd.DataFrame):
            tables = sorted(k for k, v in data.items() if isinstance(v, pd.DataFrame))
            raise KeyError(f"section {section!r} has no table {table!r}; it has: {', '.join(tables) or 'none'}")
        return frame_explorer(frame, column=column, out_dir=self.investigation.out_dir, name=f"{section}-{table}")
