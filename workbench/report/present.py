"""HTML tables, summaries and figures for the investigation notebook and report.

Every string that comes from evidence is escaped here (``html.escape``) before it reaches the page.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.display import HTML

from workbench.atlas import tactic_of, technique_name
from workbench.records import Finding, Severity, to_frame

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.analysis import AnalysisResult
    from workbench.custody import VerifyResult
    from workbench.investigation import Investigation

SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#d9480f", "medium": "#e8a200", "low": "#2f6fb0", "info": "#6c757d"}
VERDICT_COLOURS = {"compromised": "#8b0000", "suspicious": "#d9480f", "clean": "#2b8a3e"}
SECTION_TITLES = {
    "model": "Model forensics",
    "dependencies": "Dependencies",
    "logs": "Pipeline logs",
    "host": "Host state",
    "drift": "Behaviour drift",
    "monitor": "Monitor alerts",
    "evidence": "Evidence handling",
}
#: sections whose analysis arrives with a later issue; their notebook cell says so instead of staying blank
PENDING: dict[str, str] = {}
MAX_ROWS = 500

STYLE = """
<style>
.wb-table{border-collapse:collapse;font-size:13px;margin:6px 0 14px 0;width:100%}
.jp-RenderedHTMLCommon .wb-table th,.wb-table th{background:#f1f3f5;text-align:left;padding:4px 8px;
  border-bottom:2px solid #adb5bd;max-width:none}
.jp-RenderedHTMLCommon .wb-table td,.wb-table td{text-align:left;padding:4px 8px;border-bottom:1px solid #dee2e6;
  vertical-align:top;word-break:break-word;max-width:none}
.wb-sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;font-weight:600;white-space:nowrap}
.wb-verdict{font-size:20px;font-weight:700;color:#fff;padding:6px 14px;border-radius:4px;display:inline-block}
.wb-note{color:#495057;font-style:italic}
.wb-ok{color:#2b8a3e;font-weight:600}.wb-bad{color:#8b0000;font-weight:600}
.wb-mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
</style>
"""


def _sev(value: Any) -> str:
    text = str(value)
    colour = SEVERITY_COLOURS.get(text, "#6c757d")
    return f'<span class="wb-sev" style="background:{colour}">{escape(text)}</span>'


def html_table(df: pd.DataFrame, *, mono: tuple[str, ...] = (), max_rows: int = MAX_ROWS) -> str:
    """An escaped HTML table; the ``severity`` column is shown as coloured badges."""
    if df.empty:
        return '<p class="wb-note">None.</p>'
    shown = df.head(max_rows)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for col, value in zip(shown.columns, rec, strict=True):
            if col == "severity":
                cells.append(f"<td>{_sev(value)}</td>")
                continue
            text = "" if value is None or (not isinstance(value, list | dict) and pd.isna(value)) else str(value)
            cls = ' class="wb-mono"' if col in mono else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="wb-note">{len(df) - max_rows} more rows not shown.</p>' if len(df) > max_rows else ""
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'


def summary(inv: Investigation) -> HTML:
    """Executive summary: verdict with reasons, counts by severity, exposure, the three most important findings."""
    verdict, reasons = inv.verdict
    counts = Counter(f.severity.value for f in inv.findings)
    meta = inv.case.meta
    facts = [
        ("Incident", meta.incident_id),
        ("Title", meta.title or "(no title in case.yaml)"),
        ("Severity (declared)", meta.severity.value if meta.severity else "(not declared)"),
        ("Affected models", ", ".join(meta.affected_models) or "(not declared)"),
        ("Detection time", meta.detection_time.isoformat() if meta.detection_time else "(not declared)"),
        ("Commander", meta.commander or "(not declared)"),
        ("Exposure window", _exposure_text(inv.exposure)),
    ]
    facts_html = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
    counts_html = " ".join(f"{_sev(s.value)} {counts.get(s.value, 0)}" for s in Severity)
    reasons_html = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    from workbench.investigation import headline

    top = headline(inv.findings, 3)
    top_html = "".join(
        f"<li>{_sev(f.severity.value)} <b>{escape(f.title)}</b> <span class='wb-note'>({escape(f.category)})</span>"
        f"<br>{escape(f.detail)}</li>"
        for f in top
    )
    colour = VERDICT_COLOURS[verdict]
    return HTML(
        '<div class="wb-summary">'
        f'<span class="wb-verdict" style="background:{colour}">Verdict: {verdict}</span>'
        f"<p><b>Because:</b></p><ul>{reasons_html}</ul><p>Findings by severity: {counts_html}</p>"
        + (f"<p><b>Most important findings</b></p><ol>{top_html}</ol>" if top else "")
        + f'<table class="wb-table">{facts_html}</table></div>'
    )


def _exposure_text(exposure: dict[str, Any] | None) -> str:
    if not exposure:
        return "no change in the model's outputs was found (or no predictions were given)"
    interval = exposure.get("onset_interval") or [None, None]
    end = exposure.get("end") or "still ongoing at the end of the records"
    excess = exposure.get("excess_by_class") or {}
    parts = [f"from {exposure.get('onset')} (95% interval {interval[0]} – {interval[1]}) to {end}"]
    if exposure.get("predictions") is not None:
        parts.append(f"{exposure['predictions']:,} predictions served in the window")
    if excess:
        shown = ", ".join(f"{k}: {_excess(v)}" for k, v in list(excess.items())[:5])
        parts.append(f"estimated excess predictions by class: {shown}")
    return "; ".join(parts)


def _excess(value: Any) -> str:
    if isinstance(value, dict):
        est = value.get("estimate")
        lo, hi = value.get("low"), value.get("high")
        if est is not None and lo is not None and hi is not None:
            return f"{est:+.0f} [{lo:+.0f}, {hi:+.0f}]"
        return str(est)
    return f"{value:+.0f}" if isinstance(value, int | float) else str(value)


def findings_by_tactic(findings: list[Finding]) -> HTML:
    """Findings grouped by MITRE ATLAS tactic (of each finding's first technique), worst first in each group."""
    if not findings:
        return HTML('<p class="wb-note">No findings.</p>')
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        tactic = tactic_of(f.atlas[0]) if f.atlas else "Other"
        groups.setdefault(tactic, []).append(f)
    order = sorted(groups, key=lambda t: (-max(f.severity.rank for f in groups[t]), t))
    parts = []
    for tactic in order:
        df = to_frame(groups[tactic], Finding)[["severity", "category", "title", "path", "line", "atlas", "id"]]
        names = {f.id: ", ".join(f"{t} {technique_name(t)}" for t in f.atlas) for f in groups[tactic]}
        df["atlas"] = df["id"].map(names)
        parts.append(f"<h3>{escape(tactic)} ({len(groups[tactic])})</h3>" + html_table(df, mono=("path", "id")))
    return HTML("".join(parts))


def evidence_table(inv: Investigation) -> HTML:
    hashes = {e["path"]: e["sha256"] for e in inv.ledger.entries if e.get("type") == "file"}
    rows = [
        {
            "path": f.relpath,
            "role": f.role,
            "kind": inv.evidence.kinds.get(f.relpath) or "",
            "bytes": f.size,
            "sha256 (intake)": hashes.get(f.relpath, "(not hashed)"),
        }
        for f in inv.case.files
    ]
    df = pd.DataFrame(rows)
    note = f"<p>{len(rows)} files, {sum(f.size for f in inv.case.files):,} bytes, hashed at intake.</p>"
    return HTML(note + html_table(df, mono=("sha256 (intake)", "path")))


def custody_status(inv: Investigation, result: VerifyResult) -> HTML:
    if result.verified:
        status = f'<p class="wb-ok">Evidence verified: all {result.files} files match their intake hashes.</p>'
    else:
        problems = [f"changed: {p}" for p in result.changed] + [f"missing: {p}" for p in result.missing]
        problems += [f"added: {p}" for p in result.added] + [f"ledger: {b}" for b in result.broken_links]
        items = "".join(f"<li>{escape(p)}</li>" for p in problems)
        status = f'<p class="wb-bad">Evidence does NOT match its intake.</p><ul>{items}</ul>'
    head = f'<p>Custody ledger head: <span class="wb-mono">{escape(result.head)}</span></p>'
    return HTML(status + head)


def findings_table(findings: list[Finding]) -> HTML:
    df = to_frame(findings, Finding)[["severity", "category", "title", "path", "line", "atlas", "id"]]
    return HTML(html_table(df, mono=("path", "id")))


def pending(name: str) -> str:
    """The note shown for a section whose analysis is not part of this version."""
    text = PENDING.get(name, f"No analysis named {name!r} in this workbench version.")
    return f'<p class="wb-note">{escape(text)}</p>'


def findings_list(result: AnalysisResult) -> list[str]:
    """Default section rendering: the section's summary and its findings with details."""
    items: list[str] = []
    if result.summary:
        items.append(f"<p>{escape(result.summary)}</p>")
    if not result.findings:
        items.append('<p class="wb-note">Nothing to report.</p>')
        return items
    details = "".join(
        f"<li>{_sev(f.severity.value)} <b>{escape(f.title)}</b><br><span>{escape(f.detail)}</span></li>"
        for f in sorted(result.findings, key=lambda f: -f.severity.rank)[:50]
    )
    items.append(f"<ul>{details}</ul>")
    return items


def warnings_table(inv: Investigation) -> HTML:
    df = to_frame(inv.evidence.warnings, type(inv.evidence.warnings[0])) if inv.evidence.warnings else pd.DataFrame()
    return HTML(html_table(df, mono=("path",)))


def recommendations_list(recs: list[Any]) -> HTML:
    """Recommendations with their priority and the findings that justify them."""
    if not recs:
        return HTML('<p class="wb-note">No recommendation.</p>')
    items = "".join(
        f"<li>{_sev(r.priority)} {escape(r.text)}"
        + (f'<br><span class="wb-note">because of {escape(", ".join(r.because))}</span>' if r.because else "")
        + "</li>"
        for r in recs
    )
    return HTML(f"<ol>{items}</ol>")


def comms(rendered: dict[str, Any], warnings: list[Any]) -> HTML:
    """The three communication drafts as escaped text, each with what remains for a person to complete."""
    notes = "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
    head = f'<p class="wb-bad">case.yaml comms:</p><ul>{notes}</ul>' if notes else ""
    body = "".join(r.to_html() for r in rendered.values())
    return HTML(head + '<p>Written to <span class="wb-mono">comms/</span> next to this report.</p>' + body)


#: packages whose versions the appendix states (those that shape the analyses and the report)
TOOL_PACKAGES = ("numpy", "pandas", "scipy", "plotly", "papermill", "nbconvert", "nbformat", "safetensors",
                 "picklescan", "cryptography", "pyyaml", "jinja2")  # fmt: skip


def appendix(inv: Investigation, extra: dict[str, str] | None = None) -> HTML:
    """Run parameters, the naive-time rule, tool versions and rule packs (HTML)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from workbench._version import __version__
    from workbench.timeparse import NAIVE_RULE

    params = {"case_dir": str(inv.case.root), "out_dir": str(inv.out_dir), "reference": str(inv.reference or ""),
              **{k: str(v) for k, v in inv.parameters.items()}}  # fmt: skip
    rows = [{"parameter": k, "value": v} for k, v in params.items()]
    versions = [{"tool": "workbench", "version": __version__}, {"tool": "python", "version": platform.python_version()}]
    for name in TOOL_PACKAGES:
        try:
            versions.append({"tool": name, "version": version(name)})
        except PackageNotFoundError:
            continue
    facts = [{"item": "naive timestamps", "value": NAIVE_RULE.format(tz=inv.case.meta.naive_timezone)}]
    facts += [{"item": k, "value": v} for k, v in (extra or {}).items()]
    return HTML(
        "<h3>Run parameters</h3>"
        + html_table(pd.DataFrame(rows), mono=("value",))
        + "<h3>Rules and conventions</h3>"
        + html_table(pd.DataFrame(facts))
        + "<h3>Tool versions</h3>"
        + html_table(pd.DataFrame(versions))
        + '<p class="wb-note">The SHA-256 of the executed notebook and the custody ledger head are printed at the '
        "foot of this report.</p>"
    )


def outputs(paths: dict[str, Path]) -> HTML:
    items = "".join(f"<li>{escape(k)}: <span class='wb-mono'>{escape(p.name)}</span></li>" for k, p in paths.items())
    return HTML(f"<p>Written next to this report:</p><ul>{items}</ul>")
