from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tests.timeline.test_build import conclude
from workbench.conclusions.record import format_duration
from workbench.records import Event, Finding, Severity
from workbench.timeline.build import build_timeline
from workbench.timeline.layout import MIN_BIN_PX
from workbench.timeline.markers import HOVER_EVENTS
from workbench.timeline.plots import timeline_figure
from workbench.timeline.sources import evidence_events

GENERATED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KINDS = ["ci:log:match", "ml:monitor:alert", "ir:action", "host:process", "ml:model:file_modified"]


@pytest.fixture(scope="module")
def big_timeline():
    """100,000 distinct events over 15 days in five lanes (nothing collapses)."""
    start = datetime(2026, 11, 10, tzinfo=UTC)
    severities = list(Severity)
    events = [
        Event(start + timedelta(seconds=13 * i), f"src{i % 7}", KINDS[i % 5], f"event {i}", severities[(i * 7) % 5])
        for i in range(100_000)
    ]
    return build_timeline(events, generated_at=GENERATED)


def test_100k_events_collapse_into_counted_markers_and_stay_small(big_timeline):
    assert len(big_timeline) == 100_000
    fig = timeline_figure(big_timeline)
    assert {trace.type for trace in fig.data} == {"scatter"}
    assert sum(int(sum(trace.customdata)) for trace in fig.data) == 100_000
    # one marker per lane and bucket: the bucket covers at least MIN_BIN_PX pixels of the axis
    plot = 620 - fig.layout.margin.l - fig.layout.margin.r
    assert sum(len(trace.x) for trace in fig.data) <= 5 * (plot // MIN_BIN_PX + 1)
    assert "one marker per burst of 12 h in a lane" in fig.layout.title.subtitle.text
    hover = fig.data[0].hovertext[0].split("<br>")
    assert len(hover) == 1 + HOVER_EVENTS + 1 and hover[-1].startswith("… and ")
    size = len(fig.to_html(include_plotlyjs=False, full_html=False))
    assert size < 300_000  # measured about 60 kB
    assert fig.layout.xaxis.title.text == "time (UTC)"


def test_sample_case_figure_has_lanes_milestones_and_exposure(opened):
    o = opened("tampered-weights")
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    planted = Event(
        datetime(2026, 11, 14, 3, 8, 1, tzinfo=UTC),
        "logs/pipeline.log",
        "ci:log:match",
        "<script>alert(1)</script> curl | bash",
        "critical",
    )
    flagged = Event(datetime(1975, 1, 1, tzinfo=UTC), "actions.log", "ir:action", "clock reset")
    attack = Finding.create(severity="critical", category="log_pattern", title="curl | bash",
                            timestamp=datetime(2026, 11, 14, 3, 8, 1, tzinfo=UTC))  # fmt: skip
    tl = build_timeline([*events, planted, flagged], meta=o.case.meta, generated_at=GENERATED)
    c = conclude(tl, [attack], o.case.meta)
    fig = timeline_figure(tl, c)
    # markers coloured by the worst severity of their burst, legend in severity order
    assert [t.name for t in fig.data] == ["critical", "info"]
    assert fig.data[0].marker.color == "#8b0000"
    # the custody intake is the workbench's own: no Custody lane
    assert list(fig.layout.yaxis.categoryarray) == ["Response", "Monitor", "Pipeline"]
    assert sum(int(sum(t.customdata)) for t in fig.data) == tl.total - 2  # all but the flagged row and the intake
    # evidence text is escaped in hover labels
    hover = " ".join(h for t in fig.data for h in t.hovertext)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hover and "<script>" not in hover
    # one dashed line per milestone with a time, labelled
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    labels = [a.text for a in fig.layout.annotations if a.xref == "x" and not a.text.startswith("exposure window")]
    # the report's own time is not drawn: it would stretch the axis to the day of the report
    assert labels == ["First indicator", "Compromise start", "Detection", "Containment", "Recovery"]
    assert [pd.Timestamp(s.x0) for s in lines] == [
        pd.Timestamp("2026-11-14T03:08:01"),
        pd.Timestamp("2026-11-14T03:08:01"),
        pd.Timestamp("2026-11-19T08:40:03"),
        pd.Timestamp("2026-11-19T09:40:33"),
        pd.Timestamp("2026-11-19T11:20:47"),
    ]
    (rect,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (pd.Timestamp(rect.x0), pd.Timestamp(rect.x1)) == (
        pd.Timestamp("2026-11-14T03:08:01"),
        pd.Timestamp("2026-11-19T09:40:33"),
    )  # the conclusions' exposure: compromise start to isolation
    assert "1 with unusable times not shown" in fig.layout.title.subtitle.text
    by_tactic = timeline_figure(tl, c, group_by="tactic")
    assert set(by_tactic.layout.yaxis.categoryarray) == {"Initial Access", "Response"}
    with pytest.raises(ValueError, match="group_by"):
        timeline_figure(tl, group_by="colour")


def test_milestones_table(opened):
    from workbench.timeline.plots import milestones_table

    o = opened("tampered-weights")
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    tl = build_timeline(events, meta=o.case.meta, generated_at=GENERATED)
    html = milestones_table(conclude(tl, meta=o.case.meta))
    assert html.count("<tr>") == 1 + 6 + 4
    took = format_duration(timedelta(hours=1, seconds=30))
    assert f'<td>Time to contain</td><td class="wb-mono">{took}</td><td>detection → containment</td>' in html
    assert '<td>Containment</td><td class="wb-mono">2026-11-19T09:40:33Z</td>' in html
