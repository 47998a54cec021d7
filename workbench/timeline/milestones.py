"""Incident milestones and the intervals reviewers ask for, each with the rule that produced it.

Milestones (in order; each is None when the evidence does not show it):

* ``first_indicator``: the earliest event that is not the responders' or analysts' own (kinds ``ir:*`` and
  ``analyst:*`` excluded) with severity medium or above (low matches, e.g. a routine `pip install` in a build
  log, are context rather than indicators).
* ``compromise`` (estimated): the earliest of three candidates, so that dwell time and exposure are never
  understated: the drift onset (``ml:drift:onset``), the earliest malicious pipeline-log line (a ``ci:*`` event,
  e.g. ``ci:log:match``, of severity high or above), the earliest finding time (findings about the evidence
  handling, e.g. ``evidence_malformed``, excluded). The other candidates are kept in ``candidates``.
* ``detection``: ``case.yaml`` ``detection_time``, else the first monitor alert (``ml:monitor:alert``).
* ``containment``: the playbook's ISOLATE step in ``actions.log`` (``ir:action`` with ``step=isolate``), else the
  ``COMPROMISED.txt`` marker that step writes (``ir:marker``).
* ``recovery``: the playbook's ROLLBACK step (``ir:action`` with ``step=rollback``).
* ``report``: the generation time of the report.

Intervals: ``dwell_time`` compromise → detection; ``time_to_contain`` detection → containment; ``time_to_recover``
detection → recovery; ``exposure_window`` from the drift analysis's exposure object (onset → end; an open end
closes at containment when known) when it has an onset, else compromise → containment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.records import Event, Finding, Severity
from workbench.timeparse import parse_timestamp

if TYPE_CHECKING:
    from workbench.case import CaseMeta

__all__ = ["MILESTONES", "Interval", "Milestone", "Milestones", "derive_milestones", "format_duration"]

#: milestone name → label, in timeline order
MILESTONES: dict[str, str] = {
    "first_indicator": "First indicator",
    "compromise": "Estimated compromise",
    "detection": "Detection",
    "containment": "Containment",
    "recovery": "Recovery",
    "report": "Report",
}
#: interval name → (label, start milestone, end milestone)
INTERVALS: dict[str, tuple[str, str, str]] = {
    "dwell_time": ("Dwell time", "compromise", "detection"),
    "time_to_contain": ("Time to contain", "detection", "containment"),
    "time_to_recover": ("Time to recover", "detection", "recovery"),
    "exposure_window": ("Exposure window", "compromise", "containment"),
}
#: finding categories about evidence handling, not the incident: never a compromise time
PROCESS_CATEGORIES = frozenset({"evidence_malformed", "custody_violation", "signature_verified", "monitor_alert"})


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def format_duration(delta: timedelta | None) -> str:
    """``1 h 0 min 30 s``, ``5 d 5 h 32 min 2 s``, ``45 s`` (rounded to the second); ``—`` for None."""
    if delta is None:
        return "—"
    seconds = round(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "< 1 s" if delta else "0 s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next(i for i, (v, _) in enumerate(parts) if v)
    return sign + " ".join(f"{v} {unit}" for v, unit in parts[first:])


@dataclass(frozen=True, slots=True)
class Milestone:
    """One point of the incident's story.

    Attributes:
        name: key in :data:`MILESTONES`.
        label: human name.
        time: when (UTC), or None when the evidence does not show it.
        rule: which rule produced it (or why it is missing).
        source: evidence file of the event it came from, if any.
        message: that event's message, if any.
        ref: finding id it came from, if any.
        candidates: for the compromise estimate, ``(rule, time)`` of every candidate considered.
    """

    name: str
    label: str
    time: datetime | None
    rule: str
    source: str | None = None
    message: str | None = None
    ref: str | None = None
    candidates: tuple[tuple[str, datetime], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "label": self.label,
            "time": _iso(self.time),
            "rule": self.rule,
            "source": self.source,
            "message": self.message,
            "ref": self.ref,
            "candidates": [{"rule": r, "time": _iso(t)} for r, t in self.candidates],
        }


@dataclass(frozen=True, slots=True)
class Interval:
    """A span between two milestones (or the exposure object's onset and end).

    Attributes:
        name: key in :data:`INTERVALS`.
        label: human name.
        start / end: UTC times; either may be None (``end`` None with a start means still open).
        rule: how it was computed.
    """

    name: str
    label: str
    start: datetime | None
    end: datetime | None
    rule: str

    @property
    def duration(self) -> timedelta | None:
        """``end - start``, or None when either is missing."""
        return None if self.start is None or self.end is None else self.end - self.start

    @property
    def text(self) -> str:
        """The duration for people (see :func:`format_duration`), ``open`` when only the start is known."""
        if self.start is not None and self.end is None:
            return "open (no end in the evidence)"
        return format_duration(self.duration)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``seconds`` (float or None) and ``text``."""
        d = self.duration
        return {
            "name": self.name,
            "label": self.label,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "seconds": None if d is None else d.total_seconds(),
            "text": self.text,
            "rule": self.rule,
        }


@dataclass(slots=True)
class Milestones:
    """The milestones and intervals of one timeline, by name (see the module docstring for the rules)."""

    milestones: dict[str, Milestone] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Milestone | Interval:
        return self.milestones[name] if name in self.milestones else self.intervals[name]

    def to_dict(self) -> dict[str, Any]:
        """``{"milestones": {name: ...}, "intervals": {name: ...}}``."""
        return {
            "milestones": {k: m.to_dict() for k, m in self.milestones.items()},
            "intervals": {k: i.to_dict() for k, i in self.intervals.items()},
        }

    def frame(self) -> pd.DataFrame:
        """Milestones as a table: ``milestone``, ``label``, ``time`` (datetime64[us, UTC]), ``rule``, ``source``,
        ``message``; then intervals as rows with ``time`` empty and the duration in ``message``."""
        rows = [
            {
                "milestone": m.name,
                "label": m.label,
                "time": m.time,
                "rule": m.rule,
                "source": m.source,
                "message": m.message,
            }
            for m in self.milestones.values()
        ]
        rows += [
            {"milestone": i.name, "label": i.label, "time": None, "rule": i.rule, "source": None, "message": i.text}
            for i in self.intervals.values()
        ]
        df = pd.DataFrame(rows, columns=["milestone", "label", "time", "rule", "source", "message"])
        df["time"] = pd.Series([r["time"] for r in rows], dtype="datetime64[us, UTC]")
        return df


def _earliest(events: list[Event], keep: Callable[[Event], bool]) -> Event | None:
    """The first event (of a time-sorted list) that ``keep`` accepts."""
    return next((e for e in events if keep(e)), None)


def _from_event(name: str, event: Event | None, rule: str, missing: str) -> Milestone:
    if event is None:
        return Milestone(name, MILESTONES[name], None, missing)
    return Milestone(name, MILESTONES[name], event.timestamp, rule, event.source, event.message, event.ref)


def _step(step: str) -> Callable[[Event], bool]:
    return lambda e: e.kind == "ir:action" and e.extra.get("step") == step


def _compromise(events: list[Event], findings: Iterable[Finding], plausible: Callable[[datetime], bool]) -> Milestone:
    found: list[tuple[str, datetime, Event | Finding]] = []
    onset = _earliest(events, lambda e: e.kind == "ml:drift:onset")
    if onset is not None:
        found.append(("drift onset (ml:drift:onset)", onset.timestamp, onset))
    log = _earliest(events, lambda e: e.kind.startswith("ci:") and e.severity.rank >= Severity.HIGH.rank)
    if log is not None:
        found.append(
            (f"earliest malicious pipeline-log line ({log.kind}, severity {log.severity.value})", log.timestamp, log)
        )
    timed = [
        f
        for f in findings
        if f.timestamp is not None and f.category not in PROCESS_CATEGORIES and plausible(f.timestamp)
    ]
    if timed:
        first = min(timed, key=lambda f: f.timestamp)
        found.append((f"earliest finding time ({first.category})", first.timestamp, first))
    if not found:
        return Milestone(
            "compromise",
            MILESTONES["compromise"],
            None,
            "no drift onset, no malicious pipeline-log line and no timed finding",
        )
    rule, ts, origin = min(found, key=lambda c: c[1])
    candidates = tuple((r, t) for r, t, _ in found)
    if isinstance(origin, Event):
        return Milestone(
            "compromise", MILESTONES["compromise"], ts, rule, origin.source, origin.message, origin.ref, candidates
        )
    return Milestone(
        "compromise",
        MILESTONES["compromise"],
        ts,
        rule,
        str(origin.evidence.get("path") or ""),
        origin.title,
        origin.id,
        candidates,
    )


def _time(value: object) -> datetime | None:
    """An exposure-object time (ISO text, datetime or pandas Timestamp) as a plain UTC datetime, or None."""
    ts = parse_timestamp(value)
    return ts.to_pydatetime() if isinstance(ts, pd.Timestamp) else ts


def _exposure_interval(exposure: Mapping[str, Any] | None, ms: dict[str, Milestone]) -> Interval:
    label = INTERVALS["exposure_window"][0]
    containment = ms["containment"].time
    onset = _time(exposure.get("onset")) if exposure else None
    if onset is not None:
        end = _time(exposure.get("end"))
        if end is not None:
            return Interval("exposure_window", label, onset, end, "drift analysis: exposure onset → end")
        if containment is not None:
            return Interval(
                "exposure_window",
                label,
                onset,
                containment,
                "drift analysis: exposure onset → containment (no end in the predictions)",
            )
        return Interval("exposure_window", label, onset, None, "drift analysis: exposure onset, still open")
    return Interval("exposure_window", label, ms["compromise"].time, containment, "estimated compromise → containment")


def derive_milestones(
    events: Iterable[Event],
    *,
    findings: Iterable[Finding] = (),
    meta: CaseMeta | None = None,
    exposure: Mapping[str, Any] | None = None,
    generated_at: datetime | None = None,
    plausible: Callable[[datetime], bool] = lambda ts: True,
) -> Milestones:
    """Milestones and intervals from events whose times are usable (flagged ones left out by the caller).

    Args:
        events: the timeline's events (one per collapsed group is enough: only earliest times matter).
        findings: every finding (their times are compromise candidates).
        meta: the case metadata (``detection_time``).
        exposure: the drift analysis's exposure object (``onset``, ``end``...), or None.
        generated_at: report generation time.
        plausible: whether a finding's time is usable (the timeline's absurd-time rule).

    Returns:
        The :class:`Milestones`.
    """
    events = sorted(events, key=lambda e: e.timestamp)
    ms: dict[str, Milestone] = {}
    ms["first_indicator"] = _from_event(
        "first_indicator",
        _earliest(
            events, lambda e: not e.kind.startswith(("ir:", "analyst:")) and e.severity.rank >= Severity.MEDIUM.rank
        ),
        "earliest event outside the response record with severity medium or above",
        "no indicator event",
    )
    ms["compromise"] = _compromise(events, findings, plausible)
    if meta is not None and meta.detection_time is not None:
        ms["detection"] = Milestone(
            "detection",
            MILESTONES["detection"],
            meta.detection_time,
            "case.yaml detection_time",
            "case.yaml",
            meta.detection_method,
        )
    else:
        ms["detection"] = _from_event(
            "detection",
            _earliest(events, lambda e: e.kind == "ml:monitor:alert"),
            "first monitor alert",
            "no detection_time in case.yaml and no monitor alert",
        )
    isolate = _earliest(events, _step("isolate"))
    if isolate is not None:
        ms["containment"] = _from_event("containment", isolate, "playbook step ISOLATE in the actions log", "")
    else:
        ms["containment"] = _from_event(
            "containment",
            _earliest(events, lambda e: e.kind == "ir:marker"),
            "COMPROMISED marker written by the isolate step",
            "no isolate step",
        )
    ms["recovery"] = _from_event(
        "recovery",
        _earliest(events, _step("rollback")),
        "playbook step ROLLBACK in the actions log",
        "no rollback step",
    )
    ms["report"] = Milestone(
        "report",
        MILESTONES["report"],
        generated_at,
        "report generation time" if generated_at else "no generation time given",
    )
    intervals: dict[str, Interval] = {}
    for name, (label, start, end) in INTERVALS.items():
        if name == "exposure_window":
            intervals[name] = _exposure_interval(exposure, ms)
        else:
            intervals[name] = Interval(
                name, label, ms[start].time, ms[end].time, f"{MILESTONES[start].lower()} → {MILESTONES[end].lower()}"
            )
    return Milestones(ms, intervals)
