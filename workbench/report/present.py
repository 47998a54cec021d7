"""HTML for the investigation notebook and report: the summary (page one), tables and lists.

Everything is read from the run and its conclusions; every string that may come from evidence goes through
:func:`workbench.htmlkit.text` (redacted, then escaped) before it reaches the page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.display import HTML

from workbench.comms.facts import affected_text, window_text
from workbench.conclusions import display
from workbench.conclusions.indicators import defang
from workbench.htmlkit import STYLE as _STYLE
from workbench.htmlkit import badge, html_table, note, sev, text
from workbench.records import Finding, Severity, to_frame
from workbench.report.findings_view import finding_link, findings_appendix, links

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.analysis import AnalysisResult
    from workbench.conclusions import Action, Conclusions
    from workbench.custody import VerifyResult
    from workbench.investigation import Investigation

#: sections whose analysis arrives with a later issue; their notebook cell says so instead of staying blank
PENDING: dict[str, str] = {}
STYLE = _STYLE
_sev = sev
MAX_INDICATORS = 20
#: what page one shows of the actions and indicators (the rest: Recommendations, findings.json)
SUMMARY_ACTIONS = 4
SUMMARY_INDICATORS = 8


def _li(items: list[str]) -> str:
    return "".join(f"<li>{i}</li>" for i in items)


def summary(inv: Investigation) -> HTML:
    """Page one: verdict with its reasons and what could not be examined (how sure), compromise start and exposure
    (since when, what was affected), what to do now, the indicators, counts by severity and the case facts.
    Everything is read from the conclusions."""
    c = inv.conclusions
    meta = inv.case.meta
    counts = Counter(f.severity.value for f in inv.findings)
    by_id = {f.id: f for f in inv.findings}
    reasons = [f"{sev(r.severity) + ' ' if r.severity else ''}{text(r.sentence)}"
               + (f" ({finding_link(r.finding)})" if r.finding else "")
               for r in c.reasons]  # fmt: skip
    parts = [badge(c.verdict), f"<p><b>Because:</b></p><ul>{_li(reasons)}</ul>"]
    gaps = c.gaps
    if gaps:
        items = [f"{text(g.title)}: {'FAILED: ' if g.status == 'failed' else ''}{text(g.detail)}" for g in gaps]
        parts.append(f"<p><b>Not examined:</b></p><ul>{_li(items)}</ul>")
    else:
        parts.append("<p><b>Coverage:</b> every analysis examined all of its evidence (Appendix E).</p>")
    if c.compromise is not None:
        comp = c.compromise
        when = text(display(comp.start)) if comp.start else "not established"
        basis = by_id.get(comp.basis) if comp.basis else None
        line = f"<p><b>Compromise start:</b> {when} ({text(comp.rule)})"
        if basis is not None and basis.category != "behavior_drift":
            line += f": {text(basis.title)} ({finding_link(basis.id)})"
        if comp.statistical_onset is not None and comp.statistical_onset.onset is not None:
            s = comp.statistical_onset
            agree = {True: "consistent with it", False: "NOT consistent with it", None: ""}[comp.onset_consistent]
            line += (
                f". Statistical onset of the output shift: {text(display(s.onset))} (95% interval "
                f"{text(display(s.onset_low))} to {text(display(s.onset_high))}){', ' + agree if agree else ''}"
            )
        parts.append(line + ".</p>")
    if c.exposure is not None:
        parts.append(f"<p><b>Exposure window:</b> {text(window_text(c.exposure))}.</p>")
    if c.actions:
        shown = c.actions[:SUMMARY_ACTIONS]
        more = ""
        if len(c.actions) > len(shown):
            more = (f' <span class="wb-note">(the first {len(shown)} of {len(c.actions)}; all of them, with the '
                    "findings behind each, under Recommendations)</span>")  # fmt: skip
        parts.append(f"<p><b>What to do now</b>{more}</p><ol>"
                     + _li([f"{sev(a.priority)} {text(a.text)}" for a in shown]) + "</ol>")  # fmt: skip
    affected = affected_text(c.exposure) if c.exposure is not None else ""
    if affected:
        parts.append(f"<p><b>Affected predictions:</b> {text(affected)}.</p>")
    if c.indicators:
        rows = [{"kind": i.kind, "indicator (defanged)": defang(i.kind, i.value),
                 "first seen (UTC)": display(i.first_seen), "context": i.context}
                for i in c.indicators[:SUMMARY_INDICATORS]]  # fmt: skip
        more = len(c.indicators) - SUMMARY_INDICATORS
        parts.append("<p><b>Indicators of compromise</b></p>" + html_table(pd.DataFrame(rows),
                     mono=("indicator (defanged)",)) + (note(f"{more} more in findings.json (conclusions.indicators)"
                                                         ".") if more > 0 else ""))  # fmt: skip
    counts_html = " ".join(f"{sev(s.value)} {counts.get(s.value, 0)}" for s in Severity)
    declared = meta.severity.value if meta.severity else "not declared"
    detected = display(meta.detection_time) if meta.detection_time else "not declared"
    parts.append(f"<p>Findings by severity: {counts_html} (all in Appendix B). Declared severity {text(declared)}; "
                 f"detected {text(detected)}; commander {text(meta.commander or 'not declared')}.</p>")  # fmt: skip
    return HTML('<div class="wb-summary">' + "".join(parts) + "</div>")


def coverage_table(c: Conclusions) -> HTML:
    """What each analysis examined (status, detail, files read)."""
    rows = [{"analysis": v.title, "status": v.status.replace("_", " "), "detail": v.detail,
             "files read": ", ".join(v.files[:6]) + (f" and {len(v.files) - 6} more" if len(v.files) > 6 else "")}
            for v in c.coverage.values()]  # fmt: skip
    return HTML(html_table(pd.DataFrame(rows), mono=("files read",)))


def failed(name: str, error: BaseException) -> str:
    """A section whose analysis raised: the error, and what it means for the verdict."""
    return (f'<p class="wb-bad">This analysis failed: {text(type(error).__name__)}: {text(error)}</p>'
            '<p class="wb-note">What it would have found is unknown; the verdict cannot be "clean" while it fails '
            "(see the coverage).</p>")  # fmt: skip


def not_applicable(reason: str) -> str:
    """A section that had nothing to examine."""
    return note(f"Nothing to examine: {reason}.")


def findings_by_tactic(findings: list[Finding]) -> HTML:
    """Appendix B: attack findings by MITRE ATLAS tactic, then the others, each with its anchor."""
    return HTML(findings_appendix(findings))


def evidence_table(inv: Investigation) -> HTML:
    from workbench.custody_names import hashes_by_relpath

    hashes = hashes_by_relpath(inv.ledger.entries, (f.relpath for f in inv.case.files))
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


def custody_status(result: VerifyResult) -> HTML:
    if result.verified:
        status = f'<p class="wb-ok">Evidence verified: all {result.files} files match their intake hashes.</p>'
    else:
        problems = [f"changed: {p}" for p in result.changed] + [f"missing: {p}" for p in result.missing]
        problems += [f"added: {p}" for p in result.added] + [f"ledger: {b}" for b in result.broken_links]
        items = "".join(f"<li>{text(p)}</li>" for p in problems)
        status = f'<p class="wb-bad">Evidence does NOT match its intake.</p><ul>{items}</ul>'
    head = f'<p>Custody ledger head: <span class="wb-mono">{text(result.head)}</span></p>'
    return HTML(status + head)


def findings_table(findings: list[Finding]) -> HTML:
    df = to_frame(findings, Finding)[["severity", "category", "title", "path", "line", "atlas", "id"]]
    return HTML(html_table(df, mono=("path", "id")))


def pending(name: str) -> str:
    """The note shown for a section whose analysis is not part of this version."""
    text = PENDING.get(name, f"No analysis named {name!r} in this workbench version.")
    return f'<p class="wb-note">{text(text)}</p>'


def findings_list(result: AnalysisResult) -> list[str]:
    """Default section rendering: the section's summary and its findings with details."""
    items: list[str] = []
    if result.summary:
        items.append(f"<p>{text(result.summary)}</p>")
    if not result.findings:
        items.append('<p class="wb-note">Nothing to report.</p>')
        return items
    details = "".join(
        f"<li>{_sev(f.severity.value)} <b>{text(f.title)}</b><br><span>{text(f.detail)}</span></li>"
        for f in sorted(result.findings, key=lambda f: -f.severity.rank)[:50]
    )
    items.append(f"<ul>{details}</ul>")
    return items


def warnings_table(inv: Investigation) -> HTML:
    df = to_frame(inv.evidence.warnings, type(inv.evidence.warnings[0])) if inv.evidence.warnings else pd.DataFrame()
    return HTML(html_table(df, mono=("path",)))


def actions_list(actions: Iterable[Action], preventive: Iterable[Action] = ()) -> HTML:
    """Actions now, then preventive measures, each with its priority and the findings that justify it."""

    def items(group: Iterable[Action]) -> str:
        return "".join(f"<li>{sev(a.priority)} {text(a.text)}" + (f'<br><span class="wb-note">because of '
                       f"{links(a.because)}</span>" if a.because else "") + "</li>"
                       for a in group)  # fmt: skip

    now, later = items(actions), items(preventive)
    if not now and not later:
        return HTML(note("No recommendation."))
    return HTML((f"<h3>What to do now</h3><ol>{now}</ol>" if now else "")
                + (f"<h3>Preventive measures</h3><ol>{later}</ol>" if later else ""))  # fmt: skip


def comms(rendered: Mapping[str, Any]) -> HTML:
    """The three communication drafts as escaped text, each with what remains for a person to complete."""
    body = "".join(r.to_html() for r in rendered.values())
    return HTML('<p>Written to <span class="wb-mono">comms/</span> next to this report.</p>' + body)


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
    items = "".join(f"<li>{text(k)}: <span class='wb-mono'>{text(p.name)}</span></li>" for k, p in paths.items())
    return HTML(f"<p>Written next to this report:</p><ul>{items}</ul>")
