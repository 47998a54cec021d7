"""The findings explorer: filter, page, and drill from one finding to its evidence, events and conclusions.

:func:`filter_findings` and :func:`finding_detail` are the logic (tested without a browser); :func:`findings_explorer`
wires ipywidgets controls to them. The evidence a finding points at is looked up in the tables its section produced:
the log lines with their context (as text, numbered), the tensor's change statistics, the pickle's decompiled calls,
the process or connection; then the timeline events that point at it and the conclusions that cite it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.explore.common import PAGE_SIZE, Explorer, export_bar, page_of, pager
from workbench.htmlkit import html_table, sev, text
from workbench.records import Finding, Severity, to_frame

if TYPE_CHECKING:
    from workbench.investigation import Investigation

__all__ = ["FINDING_COLUMNS", "filter_findings", "finding_detail", "finding_sections", "findings_explorer"]

FINDING_COLUMNS = ["severity", "category", "title", "path", "line", "atlas", "id"]
#: options of a list control: the title is cut here (the detail pane shows it whole)
_LABEL_CHARS = 110
#: matched log lines of one finding shown with their context in the detail
_CONTEXT_LINES = 10


def finding_sections(inv: Investigation) -> dict[str, str]:
    """Finding id -> the section whose analysis produced it."""
    return {f.id: name for name, result in inv.results.items() for f in result.findings}


def filter_findings(
    findings: Iterable[Finding],
    *,
    min_severity: str = "info",
    categories: Iterable[str] = (),
    text: str = "",
    technique: str = "",
    section: str = "",
    sections: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Findings at or above ``min_severity``, in ``categories`` (all when empty), tagged with the ATLAS
    ``technique`` (or a sub-technique of it), from ``section`` (``sections``: :func:`finding_sections`), whose
    title, detail or path contains ``text`` (case-insensitive).

    Returns:
        The :func:`~workbench.records.to_frame` columns in :data:`FINDING_COLUMNS` order, worst first.
    """
    floor = Severity.parse(min_severity).rank
    wanted = set(categories)
    needle = text.strip().lower()
    where = sections or {}
    kept = [
        f
        for f in findings
        if f.severity.rank >= floor
        and (not wanted or f.category in wanted)
        and (not technique or any(t == technique or t.startswith(technique + ".") for t in f.atlas))
        and (not section or where.get(f.id) == section)
        and (not needle or needle in f"{f.title} {f.detail} {f.evidence.get('path', '')}".lower())
    ]
    return to_frame(kept, Finding)[FINDING_COLUMNS]


# ------------------------------------------------------------------------------------------------ the detail
def _frame(inv: Investigation, section: str, table: str) -> pd.DataFrame:
    result = inv.results.get(section)
    frame = result.data.get(table) if result is not None else None
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()


def _log_context(inv: Investigation, finding: Finding) -> str:
    """The finding's log lines (a grouped finding's first :data:`_CONTEXT_LINES`) with their context, numbered."""
    matches = _frame(inv, "logs", "matches")
    ev = finding.evidence
    path, line = ev.get("path"), ev.get("line")
    if matches.empty or path is None or not isinstance(line, int):
        return ""
    last = ev.get("last_line") if isinstance(ev.get("last_line"), int) else line
    keep = (matches["path"] == path) & (matches["line"] >= line) & (matches["line"] <= last)
    if "rule_id" in ev:
        keep &= matches["rule_id"] == ev["rule_id"]
    rows = matches[keep].sort_values("line").drop_duplicates("line")
    if rows.empty:
        return ""
    blocks = []
    for row in rows.head(_CONTEXT_LINES).itertuples(index=False):
        before, after, number = list(row.before or ()), list(row.after or ()), int(row.line)
        numbered = [(number - len(before) + i, t, " ") for i, t in enumerate(before)] + [(number, row.text, "▶")]
        numbered += [(number + 1 + i, t, " ") for i, t in enumerate(after)]
        blocks.append("\n".join(f"{mark} {n:>7}  {text(t)}" for n, t, mark in numbered))
    more = len(rows) - _CONTEXT_LINES
    tail = f'<p class="wb-note">{more:,} more matching line(s) in the log-matches table.</p>' if more > 0 else ""
    return (f"<h4>Log lines ({text(path)})</h4>"
            + "".join(f'<pre class="wb-log-context">{b}</pre>' for b in blocks) + tail)  # fmt: skip


def _rows(frame: pd.DataFrame, title: str, **equal: Any) -> str:
    """The rows of ``frame`` whose columns equal the given values (values that are None are not compared)."""
    if frame.empty:
        return ""
    mask = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        if value is None or column not in frame:
            continue
        mask &= frame[column].astype(str) == str(value)
    if not any(v is not None and c in frame for c, v in equal.items()) or not mask.any():
        return ""
    return f"<h4>{text(title)}</h4>" + html_table(frame[mask], max_rows=20)


def _evidence_views(inv: Investigation, finding: Finding) -> str:
    ev = finding.evidence
    parts = [_log_context(inv, finding)]
    if finding.category.startswith("tensor") or "tensor" in ev:
        parts.append(_rows(_frame(inv, "model", "tensors"), "Tensor change", name=ev.get("tensor")))
    if finding.category.startswith("pickle") or "call" in ev:
        parts.append(_rows(_frame(inv, "model", "pickle_calls"), "Decompiled pickle calls", path=ev.get("path")))
    if finding.category == "suspicious_process":
        parts.append(_rows(_frame(inv, "host", "processes"), "Process", pid=ev.get("pid"), line=ev.get("line")))
    if finding.category == "suspicious_connection":
        parts.append(_rows(_frame(inv, "host", "connections"), "Connection", pid=ev.get("pid"), peer=ev.get("peer")))
    return "".join(p for p in parts if p)


def _citations(inv: Investigation, finding_id: str) -> list[str]:
    """Sentences of the conclusions that cite the finding: reasons, milestones, indicators."""
    c = inv.conclusions
    out = [f"Reason for the verdict: {r.sentence}" for r in c.reasons if r.finding == finding_id]
    out += [f"Milestone {m.label}: {m.time:%Y-%m-%d %H:%M:%S}Z" for m in c.milestones.values()
            if getattr(m, "ref", None) == finding_id and m.time is not None]  # fmt: skip
    out += [f"Indicator {i.kind} {i.value}" for i in c.indicators if finding_id in i.findings]
    return out


def finding_detail(inv: Investigation, finding_id: str) -> str:
    """The HTML detail of one finding: what it says, its evidence, its timeline events, the conclusions citing it."""
    finding = next((f for f in inv.findings if f.id == finding_id), None)
    if finding is None:
        return '<p class="wb-note">No finding selected.</p>'
    ev = {k: v for k, v in finding.evidence.items() if not isinstance(v, list | tuple | dict)}
    facts = pd.DataFrame({"field": list(ev), "value": [str(v) for v in ev.values()]})
    head = (f"<h3>{sev(finding.severity.value)} {text(finding.title)}</h3>"
            f"<p><code>{text(finding.id)}</code> · {text(finding.category)} · {text(finding.detector)}"
            f"{' · ATLAS ' + text(', '.join(finding.atlas)) if finding.atlas else ''}</p>"
            f"<p>{text(finding.detail)}</p>")  # fmt: skip
    events = [e for e in inv.events if e.ref == finding_id]
    ev_frame = pd.DataFrame([{"time": e.timestamp, "kind": e.kind, "severity": e.severity.value,
                              "source": e.source, "message": e.message} for e in events])  # fmt: skip
    cited = _citations(inv, finding_id)
    return "".join([
        head,
        "<h4>Evidence</h4>" + html_table(facts, mono=("value",)) if len(facts) else "",
        _evidence_views(inv, finding),
        f"<h4>Timeline events ({len(events)})</h4>" + (html_table(ev_frame, max_rows=20) if events else
                                                       '<p class="wb-note">None point at this finding.</p>'),
        "<h4>Cited by the conclusions</h4>" + ("<ul>" + "".join(f"<li>{text(s)}</li>" for s in cited) + "</ul>"
                                               if cited else '<p class="wb-note">Not cited.</p>'),
    ])  # fmt: skip


# ------------------------------------------------------------------------------------------------- the widget
def _label(row: Any) -> str:
    title = str(row.title)
    title = title if len(title) <= _LABEL_CHARS else title[: _LABEL_CHARS - 1] + "…"
    return f"{row.severity.upper():<8} {title}"


def findings_explorer(inv: Investigation) -> Explorer:
    """Severity, category, ATLAS technique, section and text filters over the findings; a paged list; the selected
    finding's detail (:func:`finding_detail`); an export of the filtered findings."""
    import ipywidgets as w

    where = finding_sections(inv)
    categories = sorted({f.category for f in inv.findings})
    techniques = sorted({t for f in inv.findings for t in f.atlas})
    severity = w.Dropdown(options=[s.value for s in Severity], value="info", description="at least")
    chosen = w.SelectMultiple(options=categories, rows=min(6, max(2, len(categories))), description="categories")
    technique = w.Dropdown(options=[("any", "")] + [(t, t) for t in techniques], value="", description="ATLAS")
    section = w.Dropdown(options=[("any", "")] + [(s, s) for s in sorted(set(where.values()))], value="",
                         description="section")  # fmt: skip
    search = w.Text(placeholder="search title, detail, path", description="search")
    listing = w.Select(options=[], rows=12, layout={"width": "100%"})
    listing.add_class("wb-findings-select")
    detail = w.HTML()
    detail.add_class("wb-finding-detail")
    count = w.HTML()
    state: dict[str, Any] = {"frame": filter_findings(inv.findings), "page": 0}

    def show_page(page: int) -> None:
        rows, state["page"], pages = page_of(state["frame"], page, PAGE_SIZE)
        listing.options = [(_label(r), r.id) for r in rows.itertuples(index=False)]
        show(state["page"], pages, len(state["frame"]))
        listing.value = listing.options[0][1] if listing.options else None

    bar, show = pager(show_page)

    def refresh(*_: object) -> None:
        state["frame"] = filter_findings(inv.findings, min_severity=severity.value, categories=chosen.value,
                                         text=search.value, technique=technique.value, section=section.value,
                                         sections=where)  # fmt: skip
        count.value = f"<b>{len(state['frame'])}</b> of {len(inv.findings)} findings"
        show_page(0)

    def select(*_: object) -> None:
        detail.value = finding_detail(inv, listing.value) if listing.value else '<p class="wb-note">None.</p>'

    listing.observe(select, names="value")
    for control in (severity, chosen, technique, section, search):
        control.observe(refresh, names="value")
    refresh()
    select()
    exports = export_bar(lambda: state["frame"], inv.out_dir, "findings")
    box = w.VBox([w.HBox([severity, technique, section]), w.HBox([chosen, search]), count, listing, bar, exports,
                  detail])  # fmt: skip

    def static() -> str:
        return (f"<p>{count.value}</p>" + html_table(state["frame"], mono=("path", "id"), max_rows=PAGE_SIZE)
                + detail.value)  # fmt: skip

    return Explorer(box, static, severity=severity, categories=chosen, technique=technique, section=section,
                    search=search, listing=listing, detail=detail, count=count, pager=bar)  # fmt: skip
