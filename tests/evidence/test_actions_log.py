from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.actions_log import ActionsLogLoader
from workbench.evidence.base import LoadContext

LOG = """\
[2026-11-19T09:05:12Z] ASSESS: Starting incident assessment for model sentiment-v2
[2026-11-19T09:05:13Z] ASSESS: Captured current_hashes.txt, frozen_deps.txt, processes.txt, network.txt

[2026-11-19T09:06:40Z] CONTAIN: Model sentiment-v2 taken out of rotation: traffic to v1
[2026-11-19T09:07:02Z] Webhook notified
"""


def test_load_actions(make_file, ctx):
    loaded = ActionsLogLoader().load(make_file("actions.log", LOG), ctx)
    df = loaded.frame
    assert loaded.warnings == []
    assert list(df["line"]) == [1, 2, 4, 5]
    assert list(df["action"].fillna("-")) == ["ASSESS", "ASSESS", "CONTAIN", "-"]
    assert df.loc[2, "message"] == "Model sentiment-v2 taken out of rotation: traffic to v1"
    assert df.loc[0, "timestamp"] == pd.Timestamp("2026-11-19T09:05:12Z")
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_naive_time_uses_case_zone(make_file):
    path = make_file("actions.log", "[2026-11-19 10:05:12] ASSESS: start\n")
    loaded = ActionsLogLoader().load(path, LoadContext("actions.log", naive_tz=ZoneInfo("Europe/Berlin")))
    assert loaded.frame.loc[0, "timestamp"] == datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)


def test_malformed_line_is_one_warning(make_file, ctx):
    text = LOG + "garbage without a timestamp\n[not-a-time] ASSESS: x\n"
    loaded = ActionsLogLoader().load(make_file("actions.log", text), ctx)
    assert [(w.line, w.reason.split()[0]) for w in loaded.warnings] == [(6, "not"), (7, "unparseable")]
    assert len(loaded.frame) == 5  # the bad-time line is kept with NaT
    assert pd.isna(loaded.frame.iloc[-1]["timestamp"])


def test_only_garbage_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        ActionsLogLoader().load(make_file("actions.log", "hello\nworld\n"), ctx)


def test_detect(make_file):
    loader = ActionsLogLoader()
    assert loader.detect(make_file("actions.log", LOG))
    assert loader.detect(make_file("case/ir_actions.txt", LOG))  # content decides
    assert loader.detect(make_file("case/notes.log", LOG))  # content decides outside logs/
    assert not loader.detect(make_file("logs/ci.log", LOG))  # logs/ belongs to pipeline_log
    assert not loader.detect(make_file("case/build.log", "Step 1/9 : FROM python:3.11\n"))
