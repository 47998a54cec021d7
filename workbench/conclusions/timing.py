"""When: the compromise start, the exposure window, the milestones and the intervals, each with its rule.

Compromise start (only when the verdict is ``compromised``): the earliest evidenced attacker action among
:data:`ATTACK_RULES`: a malicious pipeline step (a pipeline-log finding of high severity or above), a malicious
package's install or download, attacker activity on a host, a tampered artefact's publish time; each from the time
of a finding of high severity or above. The statistical onset of the output shift is corroboration: it is reported
with its interval (and whether that interval reaches the start) and sets the start only when no direct evidence
dates the compromise (``onset`` rule); a shift already present at the first record sets it to that record.

Exposure (whenever there is a compromise): from the compromise start to the first of the isolation (the
playbook's ISOLATE step, else the COMPROMISED marker it writes), the completed rollback, or the end of the records
(the last prediction, else the latest dated evidence); predictions served and affected in that window come from the
prediction records (:class:`workbench.estimates.PredictionOutputs`).

Milestones: ``first_indicator`` (earliest observed event of medium severity or above outside the response record
and the statistical estimates; none when the verdict is clean or inconclusive), ``compromise``, ``detection``
(case.yaml ``detection_time``, else the first monitor alert), ``containment``, ``recovery``, ``report``. Intervals:
``dwell_time`` (compromise → detection), ``time_to_contain`` and ``time_to_recover`` (from detection),
``exposure_window`` (the exposure's own start and end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from workbench.categories import group_of
from workbench.conclusions.record import Compromise, Exposure, Interval, Milestone, display
from workbench.conclusions.response import Step
from workbench.estimates import PredictionOutputs
from workbench.records import Event, Finding, Severity

if TYPE_CHECKING:
    from workbench.case import CaseMeta

__all__ = ["ATTACK_RULES", "INTERVALS", "MILESTONES", "compromise_of", "exposure_of", "milestones_of"]

#: category group → the rule that makes a dated finding of it an attacker action
ATTACK_RULES: dict[str, str] = {
    "pipeline": "earliest malicious pipeline step",
    "dependencies": "earliest install or download of a malicious package",
    "packages": "earliest install of a tampered or known-compromised package, or drop of a start-up hook (file "
    "mtimes as captured)",
    "live_activity": "earliest attacker activity on a host",
    "artefacts": "publish time of a tampered model artefact",
    "weights": "publish time of edited weights",
    "model_code": "publish time of code planted in the model",
}
MILESTONES: dict[str, str] = {
    "first_indicator": "First indicator",
    "compromise": "Compromise start",
    "detection": "Detection",
    "containment": "Containment",
    "recovery": "Recovery",
    "report": "Report",
}
INTERVALS: dict[str, tuple[str, str, str]] = {
    "dwell_time": ("Dwell time", "compromise", "detection"),
    "time_to_contain": ("Time to contain", "detection", "containment"),
    "time_to_recover": ("Time to recover", "detection", "recovery"),
}
_NOT_OBSERVED = ("ir:", "analyst:", "ml:drift:")


def compromise_of(
    verdict: str,
    findings: Iterable[Finding],
    outputs: PredictionOutputs | None,
    plausible: Callable[[datetime], bool] = lambda ts: True,
) -> Compromise | None:
    """The compromise start (module docstring), or None unless the verdict is ``compromised``."""
    if verdict != "compromised":
        return None
    candidates: list[tuple[str, datetime, Finding]] = []
    for f in findings:
        group = group_of(f.category)
        if group is None or group.key not in ATTACK_RULES or f.severity.rank < Severity.HIGH.rank:
            continue
        if f.timestamp is not None and plausible(f.timestamp):
            candidates.append((ATTACK_RULES[group.key], f.timestamp, f))
    candidates.sort(key=lambda c: (c[1], -c[2].severity.rank, c[2].id))
    shift = outputs.shift if outputs is not None else None
    listed = tuple((rule, ts, f.id) for rule, ts, f in candidates)
    drifts = [f for f in findings if f.category == "behavior_drift" and f.severity.rank >= Severity.MEDIUM.rank]
    drift = drifts[0] if drifts else None
    if candidates:
        rule, start, first = candidates[0]
        consistent = None
        if shift is not None and shift.onset_high is not None:
            consistent = shift.onset_high >= start
        rule_text = f"{rule} ({first.category}, severity {first.severity.value})"
        source = str(first.evidence.get("path") or "") or None
        return Compromise(start, first.id, rule_text, source, first.title, shift, consistent, listed)
    if shift is not None and drift is not None:
        if shift.censored and outputs is not None:
            return Compromise(outputs.first, drift.id, "no direct evidence dates the compromise; the output shift is "
                              "already present at the first prediction record, so it started at or before it",
                              drift.evidence.get("path"), drift.title, shift, None, listed)  # fmt: skip
        if shift.onset is not None:
            return Compromise(shift.onset, drift.id, "no direct evidence dates the compromise; statistical onset of "
                              "the output shift (behaviour drift change point)", drift.evidence.get("path"),
                              drift.title, shift, None, listed)  # fmt: skip
    return Compromise(None, None, "no evidence dates the compromise (no dated attacker action, no output shift)",
                      statistical_onset=shift, candidates=listed)  # fmt: skip


def _indicator(e: Event) -> bool:
    """An observed event that may indicate the compromise (not the responders', not an estimate, not an alert)."""
    if e.kind.startswith(_NOT_OBSERVED) or e.kind in ("ml:monitor:alert", "ir:custody:intake"):
        return False
    return e.severity.rank >= Severity.MEDIUM.rank


def _earliest(events: list[Event], keep: Callable[[Event], bool]) -> Event | None:
    return next((e for e in events if keep(e)), None)


def _from_event(name: str, event: Event | None, rule: str, missing: str) -> Milestone:
    if event is None:
        return Milestone(name, MILESTONES[name], None, missing)
    return Milestone(name, MILESTONES[name], event.timestamp, rule, event.source, event.message, event.ref)


def _containment(events: list[Event], steps: list[Step]) -> Milestone:
    isolate = next((s for s in steps if s.step == "isolate" and s.time is not None and not s.failed), None)
    if isolate is not None:
        return Milestone("containment", MILESTONES["containment"], isolate.time,
                         "playbook step ISOLATE in the actions log", isolate.source,
                         f"{isolate.tag}: {isolate.headline}")  # fmt: skip
    marker = _earliest(events, lambda e: e.kind == "ir:marker")
    return _from_event("containment", marker, "COMPROMISED marker written by the isolate step",
                       "no isolation step and no COMPROMISED marker")  # fmt: skip


def _recovery(steps: list[Step]) -> Milestone:
    done = next((s for s in steps if s.step == "rollback" and s.time is not None and s.completed), None)
    if done is not None:
        return Milestone("recovery", MILESTONES["recovery"], done.time,
                         "completed playbook step ROLLBACK in the actions log", done.source,
                         f"{done.tag}: {done.headline}")  # fmt: skip
    started = next((s for s in steps if s.step == "rollback"), None)
    why = "no completed rollback" + (f" (a rollback at {display(started.time)} " + ("failed)" if started.failed else
                                     "has no completion line)") if started else "")  # fmt: skip
    return Milestone("recovery", MILESTONES["recovery"], None, why)


def milestones_of(
    verdict: str,
    compromise: Compromise | None,
    events: list[Event],
    steps: list[Step],
    meta: CaseMeta | None,
    generated_at: datetime | None,
) -> dict[str, Milestone]:
    """The milestones (module docstring) from usable, time-sorted events and the responders' steps."""
    ms: dict[str, Milestone] = {}
    if verdict in ("compromised", "suspicious"):
        ms["first_indicator"] = _from_event(
            "first_indicator",
            _earliest(events, _indicator),
            "earliest observed event outside the response record with severity medium or above",
            "no indicator event",
        )
    else:
        ms["first_indicator"] = Milestone("first_indicator", MILESTONES["first_indicator"], None,
                                          f"none: the verdict is {verdict}")  # fmt: skip
    if compromise is not None and compromise.start is not None:
        ms["compromise"] = Milestone("compromise", MILESTONES["compromise"], compromise.start, compromise.rule,
                                     compromise.source, compromise.summary, compromise.basis)  # fmt: skip
    else:
        why = compromise.rule if compromise is not None else f"none: the verdict is {verdict}"
        ms["compromise"] = Milestone("compromise", MILESTONES["compromise"], None, why)
    if meta is not None and meta.detection_time is not None:
        ms["detection"] = Milestone("detection", MILESTONES["detection"], meta.detection_time,
                                    "case.yaml detection_time", "case.yaml", meta.detection_method)  # fmt: skip
    else:
        ms["detection"] = _from_event(
            "detection",
            _earliest(events, lambda e: e.kind == "ml:monitor:alert"),
            "first monitor alert",
            "no detection_time in case.yaml and no monitor alert",
        )
    ms["containment"] = _containment(events, steps)
    ms["recovery"] = _recovery(steps)
    ms["report"] = Milestone("report", MILESTONES["report"], generated_at,
                             "report generation time" if generated_at else "no generation time given")  # fmt: skip
    return ms


def _end_of_records(events: list[Event], outputs: PredictionOutputs | None) -> tuple[datetime | None, str]:
    if outputs is not None:
        return outputs.last, f"last prediction record ({', '.join(outputs.sources) or 'predictions'})"
    dated = [e for e in events if not e.kind.startswith(("ir:custody", "analyst:"))]
    if dated:
        return dated[-1].timestamp, f"latest dated evidence ({dated[-1].source})"
    return None, "no dated evidence"


def exposure_of(
    compromise: Compromise | None,
    milestones: dict[str, Milestone],
    events: list[Event],
    outputs: PredictionOutputs | None,
) -> Exposure | None:
    """The exposure window (module docstring), or None when nothing is compromised."""
    if compromise is None:
        return None
    start = compromise.start
    containment, recovery = milestones["containment"], milestones["recovery"]
    ends = [(m.time, basis, m.rule) for m, basis in ((containment, "isolation"), (recovery, "rollback"))
            if m.time is not None and (start is None or m.time >= start)]  # fmt: skip
    if ends:
        end, basis, rule = min(ends, key=lambda e: e[0])
    else:
        end, rule = _end_of_records(events, outputs)
        basis = "end_of_records"
        if end is not None and start is not None and end < start:
            end = start
    if outputs is None or start is None:
        return Exposure(start, end, basis, rule, compared_with="no prediction records" if outputs is None else
                        "the compromise start is unknown")  # fmt: skip
    impact = outputs.impact(start, end)
    return Exposure(start, end, basis, rule, impact.predictions, impact.excess, impact.compared_with, impact.shifted,
                    impact.flipped)  # fmt: skip


def intervals_of(milestones: dict[str, Milestone], exposure: Exposure | None) -> dict[str, Interval]:
    """Dwell time, time to contain, time to recover and the exposure window (module docstring)."""
    out: dict[str, Interval] = {}
    for name, (label, a, b) in INTERVALS.items():
        out[name] = Interval(name, label, milestones[a].time, milestones[b].time,
                             f"{MILESTONES[a].lower()} → {MILESTONES[b].lower()}")  # fmt: skip
    if exposure is not None:
        out["exposure_window"] = Interval("exposure_window", "Exposure window", exposure.start, exposure.end,
                                          f"compromise start → {exposure.end_basis.replace('_', ' ')}")  # fmt: skip
    else:
        out["exposure_window"] = Interval("exposure_window", "Exposure window", None, None, "no exposure")
    return out
