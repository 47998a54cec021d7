from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.monitor_config import MonitorConfigLoader, webhook_origin

CONFIG = {
    "check_interval_seconds": 300,
    "alert_webhook": "https://bot:pw@hooks.slack.example.com:8443/services/T000/B000/XXXXSECRETXXXX?token=abc#frag",
    "behavior_drift_threshold": 0.15,
    "models": [
        {"id": "sentiment-v2", "path": "/models/sentiment-v2", "critical": True},
        {"id": "toxicity-v1", "path": "/models/toxicity-v1"},
    ],
    "baseline_dependencies": {"torch": "2.3.1", "transformers": "4.44.2"},
}


def test_load_config(make_file, ctx):
    loaded = MonitorConfigLoader().load(make_file("monitor/config.json", json.dumps(CONFIG)), ctx)
    assert loaded.warnings == []
    df = loaded.frame
    assert list(df.columns) == ["model_id", "path", "critical"]
    assert df.loc[0].to_dict() == {"model_id": "sentiment-v2", "path": "/models/sentiment-v2", "critical": True}
    assert pd.isna(df.loc[1, "critical"])
    assert loaded.meta == {
        "models_key": "models",
        "baseline_dependencies": {"torch": "2.3.1", "transformers": "4.44.2"},
        "behavior_drift_threshold": 0.15,
        "check_interval_seconds": 300,
        "alert_webhook": "https://hooks.slack.example.com",
    }


def test_webhook_secret_never_kept(make_file, ctx):
    loaded = MonitorConfigLoader().load(make_file("config.json", json.dumps(CONFIG)), ctx)
    text = repr(loaded)
    for secret in ("XXXXSECRETXXXX", "token=abc", "services", "pw", "8443"):
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "origin"),
    [("http://10.0.0.8:9000/hook?k=1", "http://10.0.0.8"), ("not a url", None), ("https:///path-only", None)],
)
def test_webhook_origin(url, origin):
    assert webhook_origin(url) == origin


def test_monitored_models_object_form(make_file, ctx):
    doc = {"monitored_models": {"m1": {"path": "/m/1", "critical": "true"}, "m2": "/m/2"}}
    loaded = MonitorConfigLoader().load(make_file("config.json", json.dumps(doc)), ctx)
    assert loaded.frame.to_dict("records") == [
        {"model_id": "m1", "path": "/m/1", "critical": True},
        {"model_id": "m2", "path": "/m/2", "critical": None},
    ]
    assert loaded.meta["models_key"] == "monitored_models"


def test_bad_items_are_warnings(make_file, ctx):
    doc = {
        "models": [{"id": "ok", "path": "/m"}, {"path": "/no-id"}, 42],
        "behavior_drift_threshold": "high",
        "baseline_dependencies": {"torch": 2.3},
        "alert_webhook": "hooks",
    }
    loaded = MonitorConfigLoader().load(make_file("config.json", json.dumps(doc)), ctx)
    assert len(loaded.warnings) == 5
    assert all(w.line is None for w in loaded.warnings)
    assert list(loaded.frame["model_id"]) == ["ok"]
    assert loaded.meta["behavior_drift_threshold"] is None and loaded.meta["alert_webhook"] is None


@pytest.mark.parametrize("text", ["not json {", "[1, 2, 3]", '{"check_interval_seconds": 5}', '{"models": [7, 8]}'])
def test_unusable_config(make_file, ctx, text):
    with pytest.raises(MalformedEvidence):
        MonitorConfigLoader().load(make_file("config.json", text), ctx)


def test_detect_not_a_hf_config(make_file):
    loader = MonitorConfigLoader()
    hf = {"architectures": ["BertForSequenceClassification"], "hidden_size": 768, "model_type": "bert"}
    assert not loader.detect(make_file("monitor/config.json", json.dumps(hf)))
    assert loader.detect(make_file("a/config.json", json.dumps(CONFIG)))
    assert loader.detect(make_file("b/watch.json", json.dumps({"models": [{"id": "m", "path": "/m"}]})))
    assert not loader.detect(make_file("c/list.json", json.dumps({"models": ["gpt2", "bert-base"]})))
