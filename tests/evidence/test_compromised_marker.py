from __future__ import annotations

import pandas as pd

from workbench.evidence.compromised_marker import CompromisedMarkerLoader


def test_marker(make_file, ctx):
    path = make_file(
        "models/sentiment-v2/COMPROMISED.txt", "COMPROMISED - Incident INC-2026-0042 - 2026-11-19T10:15:00Z\n"
    )
    loaded = CompromisedMarkerLoader().load(path, ctx)
    assert loaded.warnings == []
    assert loaded.frame.loc[0].to_dict() == {
        "line": 1,
        "incident_id": "INC-2026-0042",
        "timestamp": pd.Timestamp("2026-11-19T10:15:00Z"),
        "text": "COMPROMISED - Incident INC-2026-0042 - 2026-11-19T10:15:00Z",
    }
    assert loaded.meta == {"model_dir": "sentiment-v2"}


def test_free_text_kept_with_warning(make_file, ctx):
    text = "COMPROMISED - Incident INC-7 - 2026-11-19T10:15:00Z\ndo not deploy, ask Dana\n"
    loaded = CompromisedMarkerLoader().load(make_file("m/COMPROMISED.txt", text), ctx)
    assert [w.line for w in loaded.warnings] == [2]
    assert loaded.frame["text"].tolist()[1] == "do not deploy, ask Dana"
    assert pd.isna(loaded.frame.loc[1, "incident_id"])


def test_empty_marker(make_file, ctx):
    loaded = CompromisedMarkerLoader().load(make_file("m/COMPROMISED.txt", ""), ctx)
    assert loaded.frame.empty and loaded.warnings == []


def test_detect(make_file):
    loader = CompromisedMarkerLoader()
    assert loader.detect(make_file("m/compromised.TXT", ""))
    assert loader.detect(make_file("m/marker.txt", "COMPROMISED - Incident X - 2026-11-19T10:15:00Z\n"))
    assert not loader.detect(make_file("m/notes.txt", "the model may be COMPROMISED\n"))
