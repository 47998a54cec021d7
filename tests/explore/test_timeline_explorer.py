"""The timeline explorer on real records: the filter (time range, lanes, severity floor, collapsed rows by their
span), and the widget: moving the range, the lanes or the severity changes the count, the table and the figure's
markers, milestones and exposure window (no browser here; tests/browser/ drives it in JupyterLab)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from workbench.explore.common import PAGE_SIZE, Explorer
from workbench.explore.timeline import (
    TABLE_COLUMNS,
    event_frame,
    filter_events,
    range_figure,
    table_rows,
    time_options,
    timeline_explorer,
)
from workbench.investigation import Investigation
from workbench.records import Event, Severity
from workbench.timeline.build import COLLAPSE_MIN, build_timeline

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"), write=False)


@pytest.fixture(scope="module")
def frame(inv):
    return event_frame(inv.timeline)


def _rows_in_table(html: str) -> int:
    return html.count("<tr>") - 1 if "<table" in html else 0


def _marker_total(fig) -> int:
    return sum(sum(t.customdata) for t in fig.data)


def _incident(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[~rows["kind"].str.startswith("ir:custody")]


# ------------------------------------------------------------------------------------------------- the filter
def test_filter_by_lane_and_severity(frame):
    assert len(filter_events(frame)) == len(frame) == 65
    pipeline = filter_events(frame, lanes=["Pipeline"])
    assert len(pipeline) == (frame["lane"] == "Pipeline").sum() > 0 and set(pipeline["lane"]) == {"Pipeline"}
    both = filter_events(frame, lanes=["Pipeline", "Monitor"])
    assert set(both["lane"]) == {"Pipeline", "Monitor"}
    high = filter_events(frame, min_severity="high")
    assert set(high["severity"].astype(str)) == {"critical", "high"}
    assert len(high) == sum(Severity.parse(s).rank >= Severity.HIGH.rank for s in frame["severity"].astype(str))
    assert list(high.index) == sorted(high.index)  # the timeline's order, its positions kept


def test_filter_by_time_range_includes_both_ends(frame):
    first = frame["timestamp"].iloc[1]
    last = frame["timestamp"].iloc[10]
    kept = filter_events(frame, first, last)
    assert kept["timestamp"].min() == first and kept["timestamp"].max() == last
    assert len(kept) == ((frame["timestamp"] >= first) & (frame["timestamp"] <= last)).sum()
    naive = filter_events(frame, first.tz_convert("UTC").tz_localize(None).to_pydatetime(), last)
    assert naive.index.equals(kept.index)  # a naive time is UTC
    assert filter_events(frame, last, first).empty
    assert len(filter_events(frame, end=first)) == (frame["timestamp"] <= first).sum()


def test_a_collapsed_row_is_kept_while_its_span_meets_the_range():
    events = [Event(T0 + timedelta(minutes=i), "logs/ci.log", "ci:log:match", "same line", Severity.HIGH)
              for i in range(COLLAPSE_MIN + 20)]  # fmt: skip
    events.append(Event(T0 + timedelta(hours=5), "monitor/alerts.jsonl", "ml:monitor:alert", "alert", Severity.LOW))
    rows = event_frame(build_timeline(events, generated_at=T0 + timedelta(days=1)))
    assert list(rows["count"]) == [COLLAPSE_MIN + 20, 1]
    inside = filter_events(rows, T0 + timedelta(minutes=60), T0 + timedelta(minutes=61))
    assert list(inside["count"]) == [COLLAPSE_MIN + 20]
    assert list(filter_events(rows, T0 + timedelta(hours=3))["lane"]) == ["Monitor"]
    assert filter_events(rows, min_severity="medium")["count"].tolist() == [COLLAPSE_MIN + 20]


def test_time_options_are_the_distinct_seconds_labelled(frame):
    options, step = time_options(frame)
    assert step == timedelta(seconds=1)
    labels = [label for label, _ in options]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", label) for label in labels)
    assert len(set(labels)) == len(labels) == len(set(frame["timestamp"].dt.floor("s")))
    assert labels == sorted(labels) and labels[0] == frame["timestamp"].min().strftime("%Y-%m-%d %H:%M:%S")
    assert all(value.tzinfo is not None and value.utcoffset() == timedelta(0) for _, value in options)


def test_table_rows_columns_and_times(frame):
    table = table_rows(frame.head(3))
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 3
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", t) for t in table["time"])


def test_range_figure_keeps_the_marks_inside_the_range(inv, frame):
    full = range_figure(inv, frame)
    c = inv.conclusions
    shown = [m for m in c.milestones.values() if m.time is not None and m.name != "report"]
    lines = [s for s in full.layout.shapes if s.type == "line"]
    assert len(lines) == len(shown)
    start, end = frame["timestamp"].iloc[1], frame["timestamp"].iloc[20]
    narrow = range_figure(inv, filter_events(frame, start, end), start, end)
    inside = [m for m in shown if start <= m.time <= end]
    assert 0 < len(inside) < len(shown)
    assert len([s for s in narrow.layout.shapes if s.type == "line"]) == len(inside)
    (window,) = [s for s in narrow.layout.shapes if s.type == "rect"]
    assert pd.Timestamp(window.x0) == pd.Timestamp(c.exposure.start).tz_localize(None)
    assert pd.Timestamp(window.x1) <= end.tz_localize(None) < pd.Timestamp(c.exposure.end).tz_localize(None)
    labels = [a.text for a in narrow.layout.annotations]
    assert any(t.startswith("exposure window 5 d") for t in labels)  # the whole window's length
    hover = next(a.hovertext for a in narrow.layout.annotations if a.text.startswith("exposure window"))
    assert "cut here to the range shown" in hover
    lo, hi = (pd.Timestamp(x) for x in narrow.layout.xaxis.range)
    assert hi - lo < pd.Timedelta(hours=1)  # the axis follows the range, not the whole incident


# ------------------------------------------------------------------------------------------------- the widget
def test_explorer_starts_on_the_full_range(inv, frame):
    ex = timeline_explorer(inv)
    assert isinstance(ex, Explorer)
    assert "wb-timeline-range" in ex["range"]._dom_classes and "wb-timeline-count" in ex["count"]._dom_classes
    assert ex["count"].value.startswith("<b>65</b> of 65 events")
    own = int(inv.timeline.frame()["kind"].str.startswith("ir:custody").sum())
    assert own and f"; {own} of them the run's own (custody), noted under the figure's axis" in ex["count"].value
    drawn = int(ex["figure"].layout.title.text.split(": ")[1].split(" events")[0].replace(",", ""))
    assert drawn == 65 - own  # the figure's title and the count line now add up
    assert ex["range"].index == (0, len(ex["range"].options) - 1)
    assert _rows_in_table(ex["table"].value) == PAGE_SIZE
    assert _marker_total(ex["figure"]) == len(_incident(frame))  # custody intake is noted under the axis
    report = range_figure(inv, frame)
    assert [a.text for a in ex["figure"].layout.annotations] == [a.text for a in report.layout.annotations]


def test_moving_the_range_changes_count_table_and_figure(inv, frame):
    ex = timeline_explorer(inv)
    options = ex["range"].options
    before_shapes = len(ex["figure"].layout.shapes)
    ex["range"].value = (options[1][1], options[5][1])
    end = options[5][1] + pd.Timedelta(seconds=1)
    expected = frame[(frame["timestamp"] >= options[1][1]) & (frame["timestamp"] < end)]
    assert 0 < len(expected) < PAGE_SIZE
    assert ex["count"].value.startswith(f"<b>{len(expected)}</b> of 65 events")
    assert _rows_in_table(ex["table"].value) == len(expected)
    assert _marker_total(ex["figure"]) == len(expected)
    assert len(ex["figure"].layout.shapes) < before_shapes
    assert "page 1 of 1" in ex["pager"].children[2].value
    ex["range"].index = (0, len(options) - 1)
    assert ex["count"].value.startswith("<b>65</b> of 65 events")
    own = int(inv.timeline.frame()["kind"].str.startswith("ir:custody").sum())
    assert own and f"; {own} of them the run's own (custody), noted under the figure's axis" in ex["count"].value
    drawn = int(ex["figure"].layout.title.text.split(": ")[1].split(" events")[0].replace(",", ""))
    assert drawn == 65 - own  # the figure's title and the count line now add up


def test_a_coarse_option_stands_for_its_whole_step(inv, frame, monkeypatch):
    monkeypatch.setattr("workbench.explore.timeline.MAX_TIME_OPTIONS", 5)
    options, step = time_options(frame, 5)
    assert step > timedelta(seconds=1) and len(options) <= 5
    ex = timeline_explorer(inv)
    assert ex["range"].options == tuple(options)
    ex["range"].index = (0, 1)
    kept = frame[frame["timestamp"] < options[1][1] + step]
    assert 0 < len(kept) < len(frame) and ex["count"].value.startswith(f"<b>{len(kept)}</b> of 65")


def test_lanes_and_severity_filter_the_figure_and_the_table(inv, frame):
    ex = timeline_explorer(inv)
    ex["lanes"].value = ("Monitor", "Response")
    kept = frame[frame["lane"].isin(["Monitor", "Response"])]
    assert ex["count"].value.startswith(f"<b>{len(kept)}</b> of 65")
    assert {y for t in ex["figure"].data for y in t.y} == {"Monitor", "Response"}
    assert "Pipeline" not in ex["table"].value and "Monitor" in ex["table"].value
    ex["severity"].value = "critical"
    crit = kept[kept["severity"] == "critical"]
    assert ex["count"].value.startswith(f"<b>{len(crit)}</b> of 65")
    assert {t.name for t in ex["figure"].data} == {"critical"} and _marker_total(ex["figure"]) == len(crit)
    ex["lanes"].value = ("Custody",)
    ex["severity"].value = "critical"
    assert ex["count"].value.startswith("<b>0</b> of 65") and "None." in ex["table"].value
    assert not ex["figure"].data


def test_a_marker_click_turns_the_table_to_its_page(inv, frame):
    ex = timeline_explorer(inv)
    monitor = frame.reset_index(drop=True).index[frame["lane"].to_numpy() == "Monitor"][0]
    assert monitor >= PAGE_SIZE  # on a later page
    ex["jump"]("Monitor", frame[frame["lane"] == "Monitor"]["timestamp"].iloc[0].tz_localize(None))
    assert ex["state"]["page"] == monitor // PAGE_SIZE and "ml:monitor:alert" in ex["table"].value
    assert all(t._click_callbacks for t in ex["figure"].data)


def test_export_writes_the_rows_kept(inv):
    ex = timeline_explorer(inv)
    ex["lanes"].value = ("Pipeline",)
    ex["export"].children[0].click()
    (written,) = sorted((inv.out_dir / "exports").glob("timeline-*.csv"))
    back = pd.read_csv(written)
    assert len(back) == len(ex["state"]["rows"]) and set(back["lane"]) == {"Pipeline"}
    assert {"timestamp", "kind", "severity", "source", "message", "count"} <= set(back.columns)


def test_static_view_is_the_current_state(inv):
    ex = timeline_explorer(inv)
    html = ex._repr_mimebundle_()["text/html"]
    assert html.startswith("<p><b>65</b> of 65 events") and 'class="wb-figure"' in html and "<table" in html
    assert "<script" in html and "Plotly.newPlot" in html and "cdn.plot.ly" not in html


def test_many_times_are_rounded_to_a_coarser_step():
    events = [Event(T0 + timedelta(seconds=7 * i), "logs/ci.log", "ci:log:match", f"line {i}", Severity.LOW)
              for i in range(30)]  # fmt: skip
    rows = event_frame(build_timeline(events, generated_at=T0 + timedelta(days=1)))
    assert len(time_options(rows, most=30)[0]) == 30
    options, step = time_options(rows, most=10)
    assert step == timedelta(minutes=1) and [label for label, _ in options] == [
        "2026-03-01 12:00:00", "2026-03-01 12:01:00", "2026-03-01 12:02:00", "2026-03-01 12:03:00"]  # fmt: skip
    options, step = time_options(rows, most=0)
    assert step == timedelta(days=7) and len(options) == 1  # the coarsest step when none leaves few enough
