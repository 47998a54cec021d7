"""Timeline reconstruction: every Event merged in UTC, collapsed and flagged, exports (Timesketch JSONL/CSV) and
an interactive figure. Milestones and the exposure window are the conclusions' (:mod:`workbench.conclusions`).

Typical use::

    events = merge_events(inv.events, evidence_events(inv.case, inv.evidence, inv.ledger))
    tl = build_timeline(events, findings=inv.findings, meta=inv.case.meta)
    tl.anchor(conclusions.milestones)
    write_timeline(tl, "timeline.jsonl", redact=redact)
    timeline_figure(tl, conclusions)

:mod:`workbench.timeline.plots` (plotly) is imported on demand: ``from workbench.timeline.plots import
timeline_figure``.
"""

from __future__ import annotations

from workbench.timeline.build import FRAME_COLUMNS, LANES, Timeline, TimelineEntry, build_timeline, lane_of
from workbench.timeline.export import REQUIRED_FIELDS, timesketch_rows, write_csv, write_jsonl, write_timeline
from workbench.timeline.sources import NOTES_FILE, evidence_events, finding_events, merge_events

__all__ = [
    "FRAME_COLUMNS",
    "LANES",
    "NOTES_FILE",
    "REQUIRED_FIELDS",
    "Timeline",
    "TimelineEntry",
    "build_timeline",
    "evidence_events",
    "finding_events",
    "lane_of",
    "merge_events",
    "timesketch_rows",
    "write_csv",
    "write_jsonl",
    "write_timeline",
]
