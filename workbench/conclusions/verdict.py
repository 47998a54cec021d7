"""The verdict, its reasons and the coverage that may forbid "clean".

Rules:

* ``compromised``: a critical finding about the incident (categories of :data:`workbench.categories.GROUPS`).
* ``suspicious``: otherwise a high or medium one.
* ``inconclusive``: otherwise, when the evidence cannot support "clean": an analysis failed or left evidence
  unexamined (``partial``: a cap or a budget was reached, including the inventory's), or the analyses that
  would have seen the suspected kind of compromise had nothing to examine or could examine it only in part (their
  ``limits``, e.g. a model with no reference copy and no signed manifest). The suspected kind comes from the
  monitor's alerts (:data:`ALERT_SECTIONS`); with no alert, it is any AI supply-chain compromise, which needs at
  least the model, the dependencies or the installed packages examined (:data:`ANY_COMPROMISE`).
* ``clean``: otherwise.

Reasons for ``compromised`` and ``suspicious`` are one per category group, in group order (what the attack did to
the model first, then live attacker activity, then how it got in), from findings of high severity or above for
``compromised`` and medium or above for ``suspicious``, at most :data:`MAX_REASONS`. Each is one plain sentence
with the finding it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from workbench.categories import GROUP_RANK, GROUPS, LEADS, group_of, is_incident
from workbench.conclusions.record import Coverage, Reason
from workbench.records import Finding, Severity

__all__ = ["ALERT_SECTIONS", "ANY_COMPROMISE", "MAX_REASONS", "alert_types", "decide", "rank_findings", "reason_for"]

MAX_REASONS = 6
#: monitor alert type → the sections whose evidence can confirm or refute it
ALERT_SECTIONS: dict[str, tuple[str, ...]] = {
    "FILE_TAMPERED": ("model",),
    "FILE_MISSING": ("model",),
    "UNEXPECTED_FILE": ("model",),
    "FILE_UNREADABLE": ("model",),
    "MODEL_MISSING": ("model",),
    "DEPENDENCY_CHANGED": ("dependencies",),
    "DEPENDENCY_MISSING": ("dependencies",),
    "BEHAVIOR_DRIFT": ("drift",),
    "SWEEP_COMPROMISED": ("model",),
    "SWEEP_SUSPICIOUS": ("model",),
    "SWEEP_INCONCLUSIVE": ("model",),
}
#: with no specific suspicion, "clean" needs at least one of these sections examined
ANY_COMPROMISE = ("model", "dependencies", "packages")
_CATEGORY_ORDER = {c: i for g in GROUPS for i, c in enumerate(sorted(g.categories))}
_FIRST_IN_GROUP = (
    "pickle_dangerous_import", "tensor_modified", "model_file_tampered", "suspicious_connection",
    "dependency_confusion", "package_compromised_version", "behavior_drift", "log_pattern", "secret_exposed",
    "model_unsigned",
)  # fmt: skip


def rank_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Incident findings ordered by what they say the attack did: group order, then severity, then a fixed order
    inside the group (its lead category first), then title."""

    def key(f: Finding) -> tuple:
        group = group_of(f.category)
        lead = 0 if f.category in _FIRST_IN_GROUP else 1
        return (GROUP_RANK[group.key], -f.severity.rank, lead, _CATEGORY_ORDER.get(f.category, 0), f.title)

    return sorted((f for f in findings if is_incident(f.category)), key=key)


def reason_for(finding: Finding, more: int = 0) -> Reason:
    """One plain sentence for a finding: what its group means, then the finding's own title."""
    group = group_of(finding.category)
    phrase = group.phrase if group else finding.category.replace("_", " ")
    tail = f" (and {more} more finding{'s' if more > 1 else ''} of this kind)" if more else ""
    sentence = f"{phrase}: {finding.title.rstrip('.')}{tail}."
    return Reason(sentence, finding.id, finding.severity, group.key if group else None)


def _reasons(findings: list[Finding], floor: Severity) -> tuple[Reason, ...]:
    chosen: dict[str, list[Finding]] = {}
    for f in rank_findings(findings):
        if f.severity.rank >= floor.rank:
            chosen.setdefault(group_of(f.category).key, []).append(f)
    out = [reason_for(members[0], len(members) - 1) for members in chosen.values()]
    return tuple(out[:MAX_REASONS])


def _suspected_sections(alert_types: Iterable[str]) -> tuple[tuple[str, ...], str]:
    sections: list[str] = []
    for kind in alert_types:
        for s in ALERT_SECTIONS.get(kind.upper(), ()):
            if s not in sections:
                sections.append(s)
    if sections:
        return tuple(sections), "the monitor's alerts"
    return (), "any AI supply-chain compromise"


def alert_types(findings: Iterable[Finding]) -> list[str]:
    """The monitor's alert types (``FILE_TAMPERED``...) named by the case's ``monitor_alert`` findings."""
    out: list[str] = []
    for f in findings:
        if f.category in LEADS:
            for kind in str(f.evidence.get("types") or "").split(","):
                if kind.strip() and kind.strip() not in out:
                    out.append(kind.strip())
    return out


def decide(findings: list[Finding], coverage: Mapping[str, Coverage]) -> tuple[str, tuple[Reason, ...]]:
    """The verdict and its reasons (module docstring).

    Args:
        findings: every finding of the run; evidence-handling categories are ignored, and the monitor's alerts
            (leads) only say what is suspected.
        coverage: per section, what it examined (:func:`workbench.conclusions.coverage.coverage_of`).
    """
    incident = [f for f in findings if is_incident(f.category)]
    if any(f.severity is Severity.CRITICAL for f in incident):
        return "compromised", _reasons(incident, Severity.HIGH)
    if any(f.severity.rank >= Severity.MEDIUM.rank for f in incident):
        return "suspicious", _reasons(incident, Severity.MEDIUM)
    gaps: list[Reason] = []
    for c in coverage.values():
        if c.status == "failed":
            gaps.append(Reason(f"The {c.title.lower()} analysis failed ({c.detail}): what it would have seen is "
                               "unknown."))  # fmt: skip
        elif c.status == "partial":
            gaps.append(Reason(f"The {c.title.lower()} stopped short of part of the evidence ({c.detail}): what is "
                               "there is unknown."))  # fmt: skip
    suspected, why = _suspected_sections(alert_types(findings))
    if suspected:
        for section in suspected:
            c = coverage.get(section)
            if c is not None and c.status == "not_applicable":
                gaps.append(Reason(f"Suspected by {why}, but there was nothing to examine for it: "
                                   f"{c.title.lower()}: {c.detail}."))  # fmt: skip
            elif c is not None and c.limits:
                gaps.append(Reason(f"Suspected by {why}, but only partly examined: {'; '.join(c.limits)}."))
    elif not any(coverage.get(s) is not None and coverage[s].status == "analysed" for s in ANY_COMPROMISE):
        missing = "; ".join(f"{coverage[s].title.lower()}: {coverage[s].detail}" for s in ANY_COMPROMISE
                            if s in coverage)  # fmt: skip
        gaps.append(Reason(f"Neither the model, the dependencies nor the installed packages could be examined "
                           f"({missing}), so a compromise of the AI supply chain cannot be ruled out."))  # fmt: skip
    if gaps:
        return "inconclusive", tuple(gaps)
    examined = [c.title.lower() for c in coverage.values() if c.status == "analysed"]
    reasons = [Reason(f"No finding above low severity in what was examined ({', '.join(examined)}).")]
    for lead in (f for f in findings if f.category in LEADS):
        reasons.append(Reason(f"Not corroborated by any analysis: {lead.title.rstrip('.')}.", lead.id, lead.severity))
    return "clean", tuple(reasons)
