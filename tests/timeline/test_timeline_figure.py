"""The timeline figure's layout, checked on real figures from real records: the axis covers the incident (not the
custody intake nor the report), milestone labels never overlap (boxes computed from the figure's own layout at
its print and HTML widths), a lane's burst is one counted marker with a capped hover, the exposure window is the
conclusions', and every time written is ISO 8601 UTC to the second."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from tests.timeline.test_build import conclude
from workbench.conclusions.record import format_duration, iso
from workbench.investigation import Investigation
from workbench.records import Event, Finding
from workbench.timeline.build import build_timeline
from workbench.timeline.layout import stack_labels
from workbench.timeline.markers import HOVER_EVENTS
from workbench.timeline.plots import timeline_figure

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
GENERATED = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
#: average glyph width (em) this test assumes: a little under the figure's own estimate, measured in Chromium
EM = 0.58
#: widths the figure is drawn at: print (A4) and the HTML report
WIDTHS = (680, 620)
ISO_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """The bundled cases opened the way the run opens them (no outputs written), once per module."""
    cache: dict[str, Investigation] = {}

    def get(name: str) -> Investigation:
        if name not in cache:
            cache[name] = Investigation.open(SAMPLES / name, tmp_path_factory.mktemp(name), write=False)
        return cache[name]

    return get


def _ts(value) -> pd.Timestamp:
    return pd.Timestamp(value)


def _naive(ts: datetime) -> pd.Timestamp:
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None)


def _incident(inv: Investigation) -> pd.DataFrame:
    df = inv.timeline.frame()
    return df[(df["flag"] == "") & ~df["kind"].str.startswith("ir:custody")]


def label_boxes(fig, width: int) -> list[tuple[str, float, float, float, float]]:
    """Boxes (text, x0, x1, top, bottom; pixels from the figure's top left) of the labels above the plot, from the
    figure's layout drawn ``width`` wide: plot area from the margins, x through the axis range, width from the
    text length at the font size, height one line, raised by ``yshift`` from the plot's top edge."""
    lay = fig.layout
    lo, hi = _ts(lay.xaxis.range[0]), _ts(lay.xaxis.range[1])
    left, right, top = lay.margin.l, width - lay.margin.r, lay.margin.t
    boxes = []
    for a in lay.annotations:
        if a.xref != "x" or a.yref != "paper" or a.y != 1:
            continue
        size = a.font.size
        w = len(unescape(a.text)) * size * EM
        x = left + (_ts(a.x) - lo) / (hi - lo) * (right - left)
        x0 = {"left": x, "right": x - w}.get(a.xanchor, x - w / 2)
        bottom = top - (a.yshift or 0)
        boxes.append((a.text, x0, x0 + w, bottom - size * 1.25, bottom))
    return boxes


def overlaps(boxes) -> list[tuple[str, str]]:
    out = []
    for i, (ta, ax0, ax1, atop, abot) in enumerate(boxes):
        for tb, bx0, bx1, btop, bbot in boxes[i + 1 :]:
            if ax0 < bx1 and bx0 < ax1 and atop < bbot and btop < abot:
                out.append((ta, tb))
    return out


def _times_written(fig) -> list[str]:
    """Every time the figure writes itself: title, labels and notes whole; a milestone's or the window's hover up to
    its rule; a marker's hover header and each line's time (not the evidence message quoted after it)."""
    texts = [fig.layout.title.text, fig.layout.title.subtitle.text] + [a.text for a in fig.layout.annotations]
    texts += [re.split(r": | \(end: ", unescape(a.hovertext), maxsplit=1)[0] for a in fig.layout.annotations
              if a.hovertext]  # fmt: skip
    for trace in fig.data:
        for hover in trace.hovertext:
            texts += [" · ".join(line.split(" · ")[:2]) for line in hover.split("<br>")]
    return [m.group(0) for t in texts for m in TIME_LIKE.finditer(unescape(str(t)))]


def test_tampered_axis_covers_the_incident_not_the_intake(cases):
    inv = cases("tampered-weights")
    fig = timeline_figure(inv.timeline, inv.conclusions)
    incident = _incident(inv)
    first, last = incident["timestamp"].min(), incident["last_timestamp"].max()
    span = last - first
    lo, hi = _ts(fig.layout.xaxis.range[0]), _ts(fig.layout.xaxis.range[1])
    assert _naive(first) - span * 0.1 <= lo <= _naive(first)
    assert _naive(last) <= hi <= _naive(last) + span * 0.1
    # the custody intake and the report are the run's own: after the incident, off the axis
    df = inv.timeline.frame()
    (intake,) = df.loc[df["kind"] == "ir:custody:intake", "timestamp"]
    report = inv.conclusions.milestones["report"].time
    assert _naive(intake) > hi and _naive(report) > hi
    assert "Custody" not in fig.layout.yaxis.categoryarray
    drawn = [_ts(x) for trace in fig.data for x in trace.x]
    assert drawn and all(lo <= x <= hi for x in drawn)
    assert all(_ts(s.x0) <= hi for s in fig.layout.shapes)
    notes = [a.text for a in fig.layout.annotations if a.xref == "paper" and a.x == 1]
    gap = format_duration(intake.to_pydatetime() - last.to_pydatetime())
    assert f"custody intake {iso(intake.to_pydatetime().replace(microsecond=0))}, {gap} after the last incident " \
           "event →" in notes  # fmt: skip
    assert any(n.startswith(f"report generated {iso(report.replace(microsecond=0))}") for n in notes)
    # every milestone but the report is on the axis, with its line
    labels = [a.text for a in fig.layout.annotations if a.xref == "x"]
    assert labels[:5] == ["First indicator", "Compromise start", "Detection", "Containment", "Recovery"]


@pytest.mark.parametrize("name", ["tampered-weights", "poisoned-dependency", "false-alarm"])
def test_milestone_labels_never_overlap(cases, name):
    inv = cases(name)
    fig = timeline_figure(inv.timeline, inv.conclusions)
    boxes = label_boxes(fig, WIDTHS[0])
    assert len(boxes) == sum(1 for m in inv.conclusions.milestones.values() if m.time and m.name != "report") + (
        inv.conclusions.exposure is not None
    )
    for width in WIDTHS:
        boxes = label_boxes(fig, width)
        assert overlaps(boxes) == []
        assert all(x0 >= 0 and x1 <= width for _, x0, x1, _, _ in boxes)  # inside the figure
        # under the title and subtitle (their bottom measured in Chromium 156: 48 px)
        assert all(top >= 50 for *_, top, _ in boxes)
    # the check sees overlaps: the same labels all in one row collide on the tampered case
    if name == "tampered-weights":
        top = fig.layout.margin.t
        one_row = [(t, x0, x1, top - 20, top) for t, x0, x1, _, _ in label_boxes(fig, 680)]
        assert ("First indicator", "Compromise start") in overlaps(one_row)
        assert ("Detection", "Containment") in overlaps(one_row)


def test_stacking_many_labels_a_pixel_apart():
    xs = [300 + i for i in range(8)]
    boxes = stack_labels(xs, [90] * 8, 4, 616)
    assert sorted(b.row for b in boxes) == list(range(8))
    spread = stack_labels([10, 200, 400, 610], [80] * 4, 4, 616)
    assert [b.row for b in spread] == [0, 0, 0, 0]
    assert [b.anchor for b in spread] == ["left", "center", "center", "right"]  # kept inside the figure


def _burst_timeline():
    """50 distinct host events within 49 s (one with evidence markup, one critical late in the burst), a pipeline
    event five days earlier and a monitor alert after it, and the custody intake a week later."""
    t0 = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    burst = [
        Event(t0 + timedelta(seconds=i), "host/ps.txt", "host:process", f"process {i} <b>x</b>", "low")
        for i in range(50)
    ]
    burst[47] = Event(
        t0 + timedelta(seconds=47), "host/ps.txt", "host:process", "<script>alert(1)</script>", "critical"
    )
    others = [
        Event(datetime(2026, 11, 14, 3, 8, 1, tzinfo=UTC), "logs/pipeline.log", "ci:log:match", "curl | bash", "high"),
        Event(datetime(2026, 11, 19, 9, 0, tzinfo=UTC), "monitor/alerts.jsonl", "ml:monitor:alert", "alert", "high"),
        Event(datetime(2026, 11, 26, 10, 2, 11, tzinfo=UTC), "custody.jsonl", "ir:custody:intake", "Evidence intake"),
    ]
    attack = Finding.create(severity="critical", category="log_pattern", title="curl | bash",
                            timestamp=datetime(2026, 11, 14, 3, 8, 1, tzinfo=UTC))  # fmt: skip
    tl = build_timeline([*burst, *others], generated_at=GENERATED)
    return tl, conclude(tl, [attack])


def test_a_burst_of_50_events_is_one_marker_with_a_capped_hover():
    tl, c = _burst_timeline()
    fig = timeline_figure(tl, c)
    host = [
        (x, n, text, hover)
        for trace in fig.data
        for x, y, n, text, hover in zip(trace.x, trace.y, trace.customdata, trace.text, trace.hovertext, strict=True)
        if y == "Host"
    ]
    assert len(host) == 1
    x, n, text, hover = host[0]
    assert (n, text) == (50, "50")
    assert _ts(x) == pd.Timestamp("2026-11-19T08:00:00")
    lines = hover.split("<br>")
    assert lines[0] == "<b>Host</b>: 50 events, 2026-11-19T08:00:00Z to 2026-11-19T08:00:49Z"
    assert len(lines) == 1 + HOVER_EVENTS + 1 and lines[-1] == f"… and {50 - HOVER_EVENTS} more"
    # the critical event is listed though it comes late; evidence markup is escaped
    assert "2026-11-19T08:00:47Z · critical · &lt;script&gt;alert(1)&lt;/script&gt;" in lines
    assert "<script>" not in hover and "<b>x</b>" not in hover and "&lt;b&gt;x&lt;/b&gt;" in hover
    times = [ln.split(" · ")[0] for ln in lines[1:-1]]
    assert times == sorted(times)  # in time order
    # its colour is the worst severity of the burst
    (trace,) = [t for t in fig.data if "Host" in list(t.y)]
    assert trace.name == "critical"
    # the intake is a week after the incident: off the axis, named under it
    assert _ts(fig.layout.xaxis.range[1]) < pd.Timestamp("2026-11-20")
    assert "Custody" not in fig.layout.yaxis.categoryarray
    assert any("custody intake 2026-11-26T10:02:11Z, 7 d 1 h after" in a.text for a in fig.layout.annotations)


def test_exposure_window_is_the_conclusions(cases):
    inv = cases("tampered-weights")
    c = inv.conclusions
    fig = timeline_figure(inv.timeline, c)
    (rect,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (_ts(rect.x0), _ts(rect.x1)) == (_naive(c.exposure.start), _naive(c.exposure.end))
    (label,) = [a for a in fig.layout.annotations if a.text.startswith("exposure window")]
    assert label.text == f"exposure window {format_duration(c.exposure.duration)}"
    assert f"to {iso(c.exposure.end.replace(microsecond=0))} (end: {c.exposure.end_basis};" in unescape(label.hovertext)
    # an exposure still open runs to the axis' end and says so
    opened = replace(c, exposure=replace(c.exposure, end=None))
    fig = timeline_figure(inv.timeline, opened)
    (rect,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert _ts(rect.x1) == _ts(fig.layout.xaxis.range[1])
    assert any(a.text == "exposure window open, no end in the evidence" for a in fig.layout.annotations)
    # no exposure (the false alarm is clean): no window
    clean = cases("false-alarm")
    fig = timeline_figure(clean.timeline, clean.conclusions)
    assert clean.conclusions.exposure is None
    assert not [s for s in fig.layout.shapes if s.type == "rect"]
    assert not [a for a in fig.layout.annotations if a.text.startswith("exposure")]


@pytest.mark.parametrize("name", ["tampered-weights", "poisoned-dependency", "false-alarm"])
def test_every_time_written_is_iso_utc_to_the_second(cases, name):
    inv = cases(name)
    fig = timeline_figure(inv.timeline, inv.conclusions)
    written = _times_written(fig)
    assert len(written) > 5
    assert [t for t in written if not ISO_SECOND.match(t)] == []


@pytest.mark.parametrize("name", ["tampered-weights", "poisoned-dependency", "false-alarm"])
def test_legible_at_print_width(cases, name):
    inv = cases(name)
    fig = timeline_figure(inv.timeline, inv.conclusions)
    lay = fig.layout
    assert lay.width == 680 and lay.autosize is False
    assert lay.xaxis.automargin is False and lay.yaxis.automargin is False  # the margins are the ones laid out
    # lane names fit the left margin and are legible
    assert lay.yaxis.tickfont.size >= 10
    assert max(len(g) for g in lay.yaxis.categoryarray) * lay.yaxis.tickfont.size * EM < lay.margin.l
    # tick labels are spaced wider than they are, at both widths
    lo, hi = _ts(lay.xaxis.range[0]), _ts(lay.xaxis.range[1])
    step = pd.Timedelta(milliseconds=lay.xaxis.dtick)
    label = max(len(line) for line in pd.Timestamp("2026-11-19 08:40:03").strftime(lay.xaxis.tickformat).split("<br>"))
    for width in WIDTHS:
        per_tick = (width - lay.margin.l - lay.margin.r) * (step / (hi - lo))
        assert per_tick > label * lay.xaxis.tickfont.size * EM + 6
    assert (hi - lo) / step >= 2  # at least two ticks on the axis
    assert all(a.font.size >= 9 for a in lay.annotations)


def test_only_the_workbench_own_events_leave_an_empty_axis_with_a_note():
    intake = Event(datetime(2026, 11, 26, 10, 2, 11, tzinfo=UTC), "custody.jsonl", "ir:custody:intake", "intake")
    tl = build_timeline([intake], generated_at=GENERATED)
    fig = timeline_figure(tl)
    assert fig.data == ()
    texts = [a.text for a in fig.layout.annotations]
    assert "no dated incident event" in texts
    assert "custody intake 2026-11-26T10:02:11Z (no dated incident event) →" in texts
    assert timeline_figure(build_timeline([], generated_at=GENERATED)).data == ()


def test_grouped_by_tactic_the_intake_stays_off_the_axis():
    tl, c = _burst_timeline()
    fig = timeline_figure(tl, c, group_by="tactic")
    assert set(fig.layout.yaxis.categoryarray) == {"Execution", "Initial Access", "Detection"}
    assert sum(int(sum(t.customdata)) for t in fig.data) == 52
    assert _ts(fig.layout.xaxis.range[1]) < pd.Timestamp("2026-11-20")
    assert overlaps(label_boxes(fig, 620)) == []
