"""Bounded findings: observations of one kind folded into one finding with a count (workbench.grouping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from workbench.grouping import (
    MAX_EVENTS_PER_GROUP,
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLES,
    Observation,
    group_events,
    group_finding,
    group_observations,
    listing,
)
from workbench.records import Severity

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def obs(key, sev=Severity.MEDIUM, line=None, minutes=None, example=None, name=None):
    ts = None if minutes is None else T0 + timedelta(minutes=minutes)
    return Observation(key, sev, line, ts, example, name, item={"key": key, "line": line})


def finding(group):
    return group_finding(group, category="log_pattern", detector="tests", title=f"{group.count} x {group.key}",
                         evidence={"path": "logs/a.log", "host": group.key, "absent": None})  # fmt: skip


def test_empty_input_gives_no_group():
    assert group_observations([]) == []
    assert group_observations(iter(())) == []


def test_groups_in_order_of_first_sighting_with_counts_extremes_and_examples():
    seen = [obs("b", line=5, minutes=3, example="u5", name="p1"), obs("a", line=7, minutes=1, example="u7"),
            obs("b", line=9, minutes=2, example="u5", name="p2"), obs("b", line=2, minutes=9, example="u2", name="p1"),
            obs("b", line=11, example="u11"), obs("b", line=12, example="u12")]  # fmt: skip
    b, a = group_observations(seen)
    assert (b.key, a.key) == ("b", "a")
    assert (b.count, b.first_line, b.last_line) == (5, 2, 12)  # lowest and highest line, whatever the order
    assert (b.first_time, b.last_time) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=9))
    assert b.examples == ["u5", "u2", "u11"] and len(b.examples) == MAX_EXAMPLES  # distinct, in order, capped
    assert list(b.names) == ["p1", "p2"] and b.first.item == {"key": "b", "line": 5}
    assert [o.line for o in b.timed] == [5, 9, 2]  # only timed observations become events
    assert (a.count, a.first_line, a.last_line, a.examples, a.names) == (1, 7, 7, ["u7"], {})
    assert b.span() == "lines 2 (2026-11-20T08:02:00Z) to 12 (2026-11-20T08:09:00Z)"
    assert a.span() == "line 7 (2026-11-20T08:01:00Z)"
    assert a.evidence() == {"count": 1, "line": 7, "last_line": 7, "first_time": "2026-11-20T08:01:00Z",
                            "last_time": "2026-11-20T08:01:00Z", "examples": ["u7"]}  # fmt: skip


def test_worst_severity_and_earliest_time_make_the_finding():
    seen = [obs("k", Severity.LOW, 1, 5), obs("k", Severity.HIGH, 2, 4), obs("k", Severity.MEDIUM, 3, 6),
            obs("k", Severity.INFO, 4)]  # fmt: skip
    (group,) = group_observations(seen)
    f = finding(group)
    assert f.severity is Severity.HIGH and f.timestamp == T0 + timedelta(minutes=4)
    assert f.evidence == {"path": "logs/a.log", "host": "k", "count": 4, "line": 1, "last_line": 4,
                          "first_time": "2026-11-20T08:04:00Z", "last_time": "2026-11-20T08:06:00Z",
                          "examples": []}  # fmt: skip
    json.dumps(f.to_dict())  # the list of examples stays JSON-ready
    assert group_observations([obs("k", Severity.INFO)])[0].severity is Severity.INFO


def test_untimed_and_unnumbered_groups():
    (group,) = group_observations([obs("k"), obs("k")])
    assert group.span() == "no line number"
    assert group.evidence() == {"count": 2, "line": None, "last_line": None, "first_time": None,
                                "last_time": None, "examples": []}  # fmt: skip
    assert finding(group).timestamp is None and group_events(group, "F-x", source="s", kind="k:x",
                                                             message=str) == []  # fmt: skip


def test_same_input_same_ids_and_different_counts_different_ids():
    def ids(n):
        return [finding(g).id for g in group_observations(obs(f"h{i % 3}", line=i, minutes=i) for i in range(n))]

    assert ids(30) == ids(30) and len(set(ids(30))) == 3
    longer = ids(31)  # one more sighting of h0 only: its id changes, the others do not
    assert longer[0] != ids(30)[0] and longer[1:] == ids(30)[1:]


def test_events_are_capped_per_group_and_point_at_the_finding():
    seen = [obs("k", Severity.HIGH if i == 70 else Severity.LOW, i + 1, i, f"line {i}") for i in range(200)]
    (group,) = group_observations(seen)
    f = finding(group)
    events = group_events(group, f.id, source="logs/a.log", kind="ci:test", message=lambda o: f"at {o.line}",
                          timestamp_desc="Log Time")  # fmt: skip
    assert len(events) == MAX_EVENTS_PER_GROUP == 50 and f.evidence["count"] == 200
    assert {e.ref for e in events} == {f.id} and f.severity is Severity.HIGH
    assert [e.extra["line"] for e in events] == list(range(1, 51)) and events[0].message == "at 1"
    assert events[0].timestamp_desc == "Log Time" and events[0].severity is Severity.LOW


def test_examples_are_short_and_identifying_fields_cannot_overwrite_the_counts():
    (group,) = group_observations([obs("k", example="x" * 5000)])
    assert group.examples == ["x" * MAX_EXAMPLE_CHARS]
    with pytest.raises(ValueError, match="group fields count"):
        group_finding(group, category="log_pattern", detector="t", title="t", evidence={"count": 1})


def test_listing():
    assert listing([]) == "" and listing(["a", "b"]) == "a, b"
    assert listing([f"p{i}" for i in range(1052)], 3) == "p0, p1, p2 and 1,049 more"
