"""Findings in the report: short linked lists in the body, and Appendix B, where every finding has its anchor.

Every reference to a finding (page 1's reasons, a section's findings, a recommendation's "because of") is a link
``#F-…`` to its entry in Appendix B, so that a reader of the HTML or the PDF can follow it. Only attack findings
(about the incident, with ATLAS techniques) are grouped under MITRE ATLAS tactics; the others (evidence handling,
provenance notices, information) are listed after them. Every string from evidence goes through
:func:`workbench.htmlkit.text`.
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.atlas import tactic_of, technique_name
from workbench.categories import is_incident
from workbench.htmlkit import note, sev, text
from workbench.records import Finding, Severity

__all__ = ["finding_link", "findings_appendix", "links", "section_findings"]

#: findings listed in a section's body (the rest are counted and found in Appendix B)
BODY_FINDINGS = 8
BODY_FLOOR = Severity.MEDIUM


def finding_link(finding_id: str) -> str:
    """``<a href="#F-…">F-…</a>``: a reference that leads to the finding in Appendix B."""
    safe = text(finding_id)
    return f'<a class="wb-mono wb-ref" href="#{safe}">{safe}</a>'


def links(ids: Iterable[str], limit: int = 12) -> str:
    """Several finding references, comma-separated, capped with "and N more"."""
    ids = list(ids)
    shown = ", ".join(finding_link(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _where(f: Finding) -> str:
    path = f.evidence.get("path")
    if not path:
        return ""
    line = f.evidence.get("line")
    return f'<span class="wb-mono">{text(path)}{":" + text(line) if line else ""}</span>'


def section_findings(findings: list[Finding]) -> str:
    """A section's findings of at least medium severity, worst first, each linked to Appendix B; the rest
    counted."""
    ranked = sorted(findings, key=lambda f: (-f.severity.rank, f.title))
    shown = [f for f in ranked if f.severity.rank >= BODY_FLOOR.rank][:BODY_FINDINGS]
    if not findings:
        return note("No findings.")
    items = "".join(f'<li>{sev(f.severity.value)} <a href="#{text(f.id)}">{text(f.title)}</a></li>' for f in shown)
    rest = len(findings) - len(shown)
    tail = note(f"{rest} more finding(s) of this section in Appendix B.") if rest else ""
    return (f'<ul class="wb-findings">{items}</ul>' if items else "") + tail


def _entry(f: Finding) -> str:
    techniques = ", ".join(f"{t} {technique_name(t)}" for t in f.atlas)
    meta = " · ".join(x for x in (f'<span class="wb-mono">{text(f.id)}</span>', text(f.category), _where(f),
                                  text(techniques) if techniques else "") if x)  # fmt: skip
    return (f'<div class="wb-finding" id="{text(f.id)}"><p>{sev(f.severity.value)} <b>{text(f.title)}</b><br>'
            f'<span class="wb-note">{meta}</span></p><p>{text(f.detail)}</p></div>')  # fmt: skip


def findings_appendix(findings: list[Finding]) -> str:
    """Appendix B: attack findings by ATLAS tactic (worst tactic first), then every other finding."""
    if not findings:
        return note("No findings.")
    attacks: dict[str, list[Finding]] = {}
    unmapped: list[Finding] = []
    handling: list[Finding] = []
    for f in findings:
        if not is_incident(f.category):
            handling.append(f)
        elif f.atlas:
            attacks.setdefault(tactic_of(f.atlas[0]), []).append(f)
        else:
            unmapped.append(f)
    order = sorted(attacks, key=lambda t: (-max(f.severity.rank for f in attacks[t]), t))
    groups = [(f"ATLAS tactic: {tactic}", attacks[tactic]) for tactic in order]
    groups += [("Other findings about the incident (no ATLAS technique)", unmapped),
               ("Evidence handling and information (not about the attack)", handling)]  # fmt: skip
    parts = []
    for title, members in groups:
        if members:
            ranked = sorted(members, key=lambda f: (-f.severity.rank, f.title))
            parts.append(f"<h3>{text(title)} ({len(ranked)})</h3>" + "".join(_entry(f) for f in ranked))
    return "".join(parts)
