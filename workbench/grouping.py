"""Bounded findings: repeated observations of one kind become one finding with a count (contract).

An analysis that sees the same thing many times (downloads from one untrusted mirror, thousands of sockets to one
peer, one suspicious command in many processes) describes each sighting as an :class:`Observation` whose ``key``
says what makes two sightings the same (rule, file, host, peer...). :func:`group_observations` folds them, in input
order, into :class:`Group` records that keep counts, extremes, a few examples and the first timed observations
only; :func:`group_finding` makes one :class:`Finding` per group and :func:`group_events` at most
:data:`MAX_EVENTS_PER_GROUP` timeline events per group, each with ``ref`` = the group finding's id.

Evidence fields of a group finding: ``count`` (int), ``line`` and ``last_line`` (lowest and highest line number, or
None), ``first_time`` and ``last_time`` (earliest and latest time, ISO 8601 UTC with ``Z``, or None), ``examples``
(at most :data:`MAX_EXAMPLES` distinct short strings in order of appearance), then the caller's identifying fields.
A key should name the evidence file: line numbers of different files are not comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.records import Event, Finding, Severity

__all__ = ["MAX_EVENTS_PER_GROUP", "MAX_EXAMPLES", "Group", "Observation", "group_events", "group_finding",
           "group_observations", "listing"]  # fmt: skip

#: Timeline events kept per group (the finding carries the full count).
MAX_EVENTS_PER_GROUP = 50
#: Examples kept per group, and the characters kept of each.
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 200
GROUP_FIELDS = ("count", "line", "last_line", "first_time", "last_time", "examples")


@dataclass(frozen=True, slots=True)
class Observation:
    """One sighting.

    Attributes:
        key: what makes sightings the same (hashable; include the evidence file).
        severity: this sighting's severity (the group takes the worst).
        line: 1-based line in the evidence file, or None.
        timestamp: when (UTC, aware), or None.
        example: a short text standing for this sighting (a URL, a pid and port), or None.
        name: a name the group counts distinctly (a package, a pid), or None.
        item: the caller's record, for the group's identifying fields and its events.
    """

    key: Hashable
    severity: Severity
    line: int | None = None
    timestamp: datetime | None = None
    example: str | None = None
    name: str | None = None
    item: Any = None


@dataclass(slots=True)
class Group:
    """Observations of one key: count, worst severity, extremes, examples, distinct names, first timed sightings.

    Attributes:
        key: the shared key.
        first: the first observation (its ``item`` gives the identifying fields).
        count: observations folded in.
        severity: the worst of their severities.
        first_line / last_line / first_time / last_time: lowest and highest line and time (None when none had one).
        examples: distinct ``example`` texts in order of appearance, at most :data:`MAX_EXAMPLES`.
        names: every distinct ``name`` in order of appearance (dict used as an ordered set).
        timed: the first observations with a timestamp, at most :data:`MAX_EVENTS_PER_GROUP`.
    """

    key: Hashable
    first: Observation
    count: int = 0
    severity: Severity = Severity.INFO
    first_line: int | None = None
    last_line: int | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None
    examples: list[str] = field(default_factory=list)
    names: dict[str, None] = field(default_factory=dict)
    timed: list[Observation] = field(default_factory=list)

    def add(self, obs: Observation) -> None:
        """Fold one observation in."""
        if not self.count or obs.severity.rank > self.severity.rank:
            self.severity = obs.severity
        self.count += 1
        if obs.line is not None:
            self.first_line = obs.line if self.first_line is None else min(self.first_line, obs.line)
            self.last_line = obs.line if self.last_line is None else max(self.last_line, obs.line)
        if obs.timestamp is not None:
            self.first_time = obs.timestamp if self.first_time is None else min(self.first_time, obs.timestamp)
            self.last_time = obs.timestamp if self.last_time is None else max(self.last_time, obs.timestamp)
            if len(self.timed) < MAX_EVENTS_PER_GROUP:
                self.timed.append(obs)
        if obs.example and len(self.examples) < MAX_EXAMPLES:
            text = obs.example[:MAX_EXAMPLE_CHARS]
            if text not in self.examples:
                self.examples.append(text)
        if obs.name is not None:
            self.names.setdefault(obs.name, None)

    def evidence(self) -> dict[str, Any]:
        """The group's evidence fields (see the module docstring)."""
        return {"count": self.count, "line": self.first_line, "last_line": self.last_line,
                "first_time": _iso(self.first_time), "last_time": _iso(self.last_time),
                "examples": list(self.examples)}  # fmt: skip

    def span(self) -> str:
        """``line 9 (2026-...Z)`` or ``lines 9 (...) to 120 (...)``: where the group was seen, for details."""
        when = f" ({_iso(self.first_time)})" if self.first_time else ""
        if self.first_line is None:
            return "no line number" + when
        if self.count == 1 or self.first_line == self.last_line:
            return f"line {self.first_line}{when}"
        until = f" ({_iso(self.last_time)})" if self.last_time else ""
        return f"lines {self.first_line}{when} to {self.last_line}{until}"


def group_observations(observations: Iterable[Observation]) -> list[Group]:
    """Fold observations into one :class:`Group` per key, in order of each key's first observation."""
    groups: dict[Hashable, Group] = {}
    for obs in observations:
        group = groups.get(obs.key)
        if group is None:
            group = groups[obs.key] = Group(obs.key, obs)
        group.add(obs)
    return list(groups.values())


def group_finding(group: Group, *, category: str, detector: str, title: str, detail: str = "",
                  evidence: Mapping[str, Any] | None = None, atlas: Iterable[str] = ()) -> Finding:  # fmt: skip
    """One finding for a group: its worst severity, its earliest time, the group's evidence fields after the
    caller's identifying ``evidence`` (None values dropped). Same group, same id.

    Raises:
        ValueError: ``evidence`` uses one of the group's own field names.
    """
    own = {k: v for k, v in (evidence or {}).items() if v is not None}
    if clash := sorted(set(own) & set(GROUP_FIELDS)):
        raise ValueError(f"identifying evidence may not set the group fields {', '.join(clash)}")
    return Finding.create(severity=group.severity, category=category, detector=detector, title=title, detail=detail,
                          evidence={**own, **group.evidence()}, atlas=atlas, timestamp=group.first_time)  # fmt: skip


def group_events(group: Group, ref: str, *, source: str, kind: str, message: Callable[[Observation], str],
                 timestamp_desc: str = "Event Time") -> list[Event]:  # fmt: skip
    """Timeline events for a group's first timed observations (at most :data:`MAX_EVENTS_PER_GROUP`), each at its own
    time and severity, with ``ref`` (the group finding's id) and its line in ``extra``."""
    return [Event(obs.timestamp, source, kind, message(obs), obs.severity, ref, timestamp_desc,  # type: ignore[arg-type]
                  extra={"line": obs.line}) for obs in group.timed]  # fmt: skip


def listing(names: Iterable[str], limit: int = 20) -> str:
    """``a, b, c and 12 more``: the first ``limit`` names and how many more there are."""
    names = list(names)
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more:,} more" if more > 0 else "")


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")
