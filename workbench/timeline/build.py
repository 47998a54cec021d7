"""Merge every Event of an investigation into one UTC timeline: sorted, collapsed and flagged.

Rules (reported with the timeline):

* Times: every Event time is UTC already (the naive-time rule of :mod:`workbench.timeparse` was applied when the
  evidence was read); the timeline sorts on it, then on source, line, kind and message.
* Collapsing: events equal in source, kind, message, severity, finding and ``timestamp_desc`` (extra fields such
  as the line number aside) are one row with a ``count`` when they share a time, and, when a group has at least
  :data:`COLLAPSE_MIN` members, whatever their times (first time kept, last time in ``last_timestamp``).
* Flags: an item without a usable time (``extra["time_flag"] == "unparseable"``) is flagged ``unparseable``; a
  time before :data:`EARLIEST_PLAUSIBLE` is flagged ``before_1990``; a time more than :data:`FUTURE_SLACK` after the
  case's latest evidence time is flagged ``future``. The latest evidence time is the custody intake (nothing in the
  evidence can be later than its capture), or, without an intake event, the generation time; a later
  ``case.yaml`` detection time moves it on. Flagged events stay in the timeline and the exports but take no part in
  the conclusions (:attr:`Timeline.usable`) and are left out of the figure.
* Milestones are the conclusions' (:mod:`workbench.conclusions`); :meth:`Timeline.anchor` marks the rows they come
  from, for the exports.
* Lanes and tactics: see :func:`lane_of` and :func:`tactic_of_event`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.atlas import tactic_of
from workbench.categories import LEADS, group_of
from workbench.records import Event, Finding, Severity, now_utc
from workbench.timeline.bulk import gc_paused
from workbench.timeline.sources import event_order, finding_events
from workbench.timeparse import NAIVE_RULE

if TYPE_CHECKING:
    from workbench.case import CaseMeta

__all__ = [
    "COLLAPSE_MIN",
    "EARLIEST_PLAUSIBLE",
    "FRAME_COLUMNS",
    "FUTURE_SLACK",
    "LANES",
    "Timeline",
    "TimelineEntry",
    "build_timeline",
    "lane_of",
    "tactic_of_event",
]

EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
COLLAPSE_MIN = 100
#: source lanes, top to bottom in the figure
LANES = ("Pipeline", "Dependencies", "Model", "Behaviour", "Host", "Monitor", "Response", "Analyst", "Custody", "Other")
#: the lane of a finding's category, by the section that sees its group (workbench.categories)
_SECTION_LANES = {"model": "Model", "host": "Host", "logs": "Pipeline", "dependencies": "Dependencies",
                  "packages": "Dependencies", "drift": "Behaviour"}  # fmt: skip
_KIND_LANES = (
    (("ci:deps", "deps:", "ml:deps"), "Dependencies"),
    (("ci:",), "Pipeline"),
    (("ml:drift",), "Behaviour"),
    (("ml:model",), "Model"),
    (("ml:monitor",), "Monitor"),
    (("host:",), "Host"),
    (("ir:custody",), "Custody"),
    (("ir:",), "Response"),
    (("analyst:",), "Analyst"),
)
_KIND_TACTICS = (
    (("ci:",), "Initial Access"),
    (("ml:drift",), "Impact"),
    (("ml:model",), "Persistence"),
    (("host:conn", "host:net"), "Command and Control"),
    (("host:",), "Execution"),
    (("ml:monitor",), "Detection"),
    (("ir:", "analyst:"), "Response"),
)
#: Columns of :meth:`Timeline.frame`, in order.
FRAME_COLUMNS = [
    "timestamp",
    "last_timestamp",
    "count",
    "lane",
    "tactic",
    "severity",
    "kind",
    "source",
    "message",
    "ref",
    "timestamp_desc",
    "flag",
    "milestone",
]


@lru_cache(maxsize=1024)
def lane_of(kind: str) -> str:
    """Source lane of an event kind (one of :data:`LANES`); ``finding:<category>`` by category."""
    if kind.startswith("finding:"):
        category = kind.split(":", 1)[1]
        if category in LEADS:
            return "Monitor"
        group = group_of(category)
        return _SECTION_LANES.get(group.section, "Model") if group is not None else "Model"
    return next((lane for prefixes, lane in _KIND_LANES if kind.startswith(prefixes)), "Other")


def tactic_of_event(event: Event, findings: Mapping[str, Finding]) -> str:
    """ATLAS tactic of an event.

    The tactic of the first ATLAS technique of the finding it refers to, else of ``extra["atlas"]`` (comma-joined
    ids), else by kind: ``ci:*`` Initial Access, ``ml:drift:*`` Impact, ``ml:model:*`` Persistence, ``host:*``
    Execution (connections Command and Control). Events that are not the attacker's get the non-ATLAS groups
    ``Detection`` (monitor alerts without a known type) and ``Response`` (responders, custody, analysts); anything
    else ``Other``.
    """
    finding = findings.get(event.ref) if event.ref else None
    if finding is not None and finding.atlas:
        return tactic_of(finding.atlas[0])
    atlas = event.extra.get("atlas")
    if isinstance(atlas, str) and atlas.strip():
        return tactic_of(atlas.split(",")[0].strip())
    return _kind_tactic(event.kind)


@lru_cache(maxsize=1024)
def _kind_tactic(kind: str) -> str:
    return next((t for prefixes, t in _KIND_TACTICS if kind.startswith(prefixes)), "Other")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One row of the timeline: an event (the first of its collapsed group) and what the timeline adds.

    Attributes:
        event: the representative event (earliest of its group).
        count: how many input events it stands for.
        last: time of the last event of the group (equal to ``event.timestamp`` when single).
        flag: None, or ``unparseable``, ``before_1990``, ``future``.
        lane: source lane (:func:`lane_of`).
        tactic: ATLAS tactic or group (:func:`tactic_of_event`).
        milestones: names of the milestones this row's event anchors.
    """

    event: Event
    count: int
    last: datetime
    flag: str | None
    lane: str
    tactic: str
    milestones: tuple[str, ...] = ()


@dataclass(slots=True)
class Timeline:
    """A merged, sorted, collapsed and flagged timeline.

    Attributes:
        entries: rows in time order.
        horizon: the case's latest evidence time; beyond it plus :data:`FUTURE_SLACK` a time is ``future``.
        generated_at: when the timeline was built (the report milestone).
        naive_rule: the naive-time rule applied when the evidence was read.
        incident_id: the case's incident id.
    """

    entries: list[TimelineEntry]
    horizon: datetime
    generated_at: datetime
    naive_rule: str
    incident_id: str = ""

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def events(self) -> list[Event]:
        """The representative event of every row, in time order."""
        return [e.event for e in self.entries]

    @property
    def usable(self) -> list[Event]:
        """The representative events whose time is usable (no flag): what the conclusions read."""
        return [e.event for e in self.entries if not e.flag]

    def plausible(self, ts: datetime) -> bool:
        """Whether a time is usable by the timeline's rules (not before 1990, not after the horizon's slack)."""
        return EARLIEST_PLAUSIBLE <= ts <= self.horizon + FUTURE_SLACK

    @gc_paused()
    def anchor(self, milestones: Mapping[str, Any]) -> None:
        """Mark the rows the milestones come from (objects with ``name``, ``time``, ``source``, ``message``,
        ``ref``): the row of the same time that refers to the milestone's finding, else the row of the same time,
        source and message."""
        by_ref: dict[tuple, list[str]] = defaultdict(list)
        by_text: dict[tuple, list[str]] = defaultdict(list)
        for m in milestones.values():
            if m.time is None:
                continue
            if m.ref:
                by_ref[(m.time, m.ref)].append(m.name)
            elif m.source is not None:
                by_text[(m.time, m.source, m.message)].append(m.name)
        anchored = []
        for e in self.entries:
            names = (
                ()
                if e.flag
                else (
                    *by_ref.pop((e.event.timestamp, e.event.ref), ()),
                    *by_text.pop((e.event.timestamp, e.event.source, e.event.message), ()),
                )
            )
            anchored.append(replace(e, milestones=tuple(names)) if names or e.milestones else e)
        self.entries = anchored

    @property
    def flagged(self) -> list[TimelineEntry]:
        """Rows whose time is unusable or absurd."""
        return [e for e in self.entries if e.flag]

    @property
    def total(self) -> int:
        """Input events represented (sum of counts)."""
        return sum(e.count for e in self.entries)

    @gc_paused()
    def frame(self) -> pd.DataFrame:
        """The timeline as a DataFrame, one row per entry, in time order.

        Columns: ``timestamp`` / ``last_timestamp`` datetime64[us, UTC] (first and last time of the row's group);
        ``count`` int64 (input events it stands for); ``lane`` str (source lane); ``tactic`` str (ATLAS tactic or
        Detection/Response/Other); ``severity`` ordered categorical (critical first); ``kind``, ``source``,
        ``message`` str; ``ref`` str or None (finding id); ``timestamp_desc`` str; ``flag`` str (``""``, or
        ``unparseable``, ``before_1990``, ``future``); ``milestone`` str (comma-joined milestone names it anchors).
        """
        sev_type = pd.CategoricalDtype([s.value for s in Severity], ordered=True)
        e = self.entries
        df = pd.DataFrame(
            {
                "timestamp": pd.Series([x.event.timestamp for x in e], dtype="datetime64[us, UTC]"),
                "last_timestamp": pd.Series([x.last for x in e], dtype="datetime64[us, UTC]"),
                "count": pd.Series([x.count for x in e], dtype="int64"),
                "lane": pd.Series([x.lane for x in e], dtype=object),
                "tactic": pd.Series([x.tactic for x in e], dtype=object),
                "severity": pd.Series([x.event.severity.value for x in e], dtype=sev_type),
                "kind": pd.Series([x.event.kind for x in e], dtype=object),
                "source": pd.Series([x.event.source for x in e], dtype=object),
                "message": pd.Series([x.event.message for x in e], dtype=object),
                "ref": pd.Series([x.event.ref for x in e], dtype=object),
                "timestamp_desc": pd.Series([x.event.timestamp_desc for x in e], dtype=object),
                "flag": pd.Series([x.flag or "" for x in e], dtype=object),
                "milestone": pd.Series([",".join(x.milestones) for x in e], dtype=object),
            },
            columns=FRAME_COLUMNS,
        )
        return df

    def summary(self) -> dict[str, Any]:
        """Counts for reports: ``rows``, ``events``, ``collapsed`` (rows standing for more than one event),
        ``flagged`` by flag, ``by_lane`` and ``by_tactic`` (rows), and the rules in force."""
        return {
            "rows": len(self.entries),
            "events": self.total,
            "collapsed": sum(1 for e in self.entries if e.count > 1),
            "flagged": dict(Counter(e.flag for e in self.entries if e.flag)),
            "by_lane": dict(Counter(e.lane for e in self.entries)),
            "by_tactic": dict(Counter(e.tactic for e in self.entries)),
            "horizon": self.horizon.isoformat(),
            "naive_rule": self.naive_rule,
        }


def _flag(event: Event, horizon: datetime) -> str | None:
    if event.extra.get("time_flag") == "unparseable":
        return "unparseable"
    if event.timestamp < EARLIEST_PLAUSIBLE:
        return "before_1990"
    if event.timestamp > horizon + FUTURE_SLACK:
        return "future"
    return None


def _horizon(events: list[Event], meta: CaseMeta | None, generated_at: datetime) -> datetime:
    intakes = [e.timestamp for e in events if e.kind == "ir:custody:intake" and "time_flag" not in e.extra]
    horizon = max(intakes) if intakes else generated_at
    if meta is not None and meta.detection_time is not None:
        horizon = max(horizon, meta.detection_time)
    return horizon


def _collapse(events: list[Event], horizon: datetime) -> list[tuple[Event, int, datetime, str | None]]:
    """Sorted events → ``(first event, count, last time, flag)`` groups, in order of their first event.

    The flag is part of the group key: a flood of identical lines with some absurd times keeps its usable part.
    """
    keys = [(e.source, e.kind, e.message, e.severity, e.ref, e.timestamp_desc, _flag(e, horizon)) for e in events]
    sizes = Counter(keys)
    groups: dict[tuple, list] = {}
    for e, key in zip(events, keys, strict=True):
        if sizes[key] < COLLAPSE_MIN:
            key = (*key, e.timestamp)
        group = groups.get(key)
        if group is None:
            groups[key] = [e, 1, e.timestamp, key[6]]
        else:
            group[1] += 1
            group[2] = e.timestamp
    return [(e, n, last, flag) for e, n, last, flag in groups.values()]


@gc_paused()
def build_timeline(
    events: Iterable[Event],
    *,
    findings: Iterable[Finding] = (),
    meta: CaseMeta | None = None,
    generated_at: datetime | None = None,
) -> Timeline:
    """Merge, sort, collapse and flag events.

    Args:
        events: every Event of the investigation (analyses' and :func:`~workbench.timeline.sources.evidence_events`'s;
            merge duplicates first with :func:`~workbench.timeline.sources.merge_events`).
        findings: every finding; timed findings without an event become ``finding:<category>`` events, and
            referenced findings give events their ATLAS tactic.
        meta: case metadata (detection time, naive-time rule, incident id).
        generated_at: the report's generation time (default: now, UTC).

    Returns:
        The :class:`Timeline` (milestones are anchored later, from the conclusions: :meth:`Timeline.anchor`).
    """
    generated_at = generated_at or now_utc()
    findings = list(findings)
    by_id = {f.id: f for f in findings}
    events = list(events)
    events += finding_events(findings, events)
    events.sort(key=event_order)
    horizon = _horizon(events, meta, generated_at)
    entries = [TimelineEntry(e, n, last, flag, lane_of(e.kind), tactic_of_event(e, by_id))
               for e, n, last, flag in _collapse(events, horizon)]  # fmt: skip
    return Timeline(
        entries=entries,
        horizon=horizon,
        generated_at=generated_at,
        naive_rule=NAIVE_RULE.format(tz=meta.naive_timezone if meta else "UTC"),
        incident_id=meta.incident_id if meta else "",
    )
