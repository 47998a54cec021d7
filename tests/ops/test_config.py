"""The monitor configuration: the original's format accepted, every bad field named in the error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.ops.config import ConfigError, load_config, parse_config, webhook_origin

#: the original playbook's EXAMPLE_CONFIG, verbatim
ORIGINAL = {
    "check_interval_seconds": 300,
    "alert_webhook": "https://hooks.slack.com/services/xxx/yyy/zzz",
    "models": [
        {"id": "sentiment-model-v2.1", "path": "/models/sentiment-model-v2.1", "critical": True},
        {"id": "summarization-model-v1.0", "path": "/models/summarization-model-v1.0", "critical": True},
    ],
    "baseline_dependencies": {"torch": "2.2.0", "transformers": "4.38.0", "safetensors": "0.4.2"},
    "behavior_drift_threshold": 0.15,
}


def test_original_example_config_is_accepted():
    cfg = parse_config(ORIGINAL)
    assert [m.id for m in cfg.models] == ["sentiment-model-v2.1", "summarization-model-v1.0"]
    assert cfg.models[0].path == Path("/models/sentiment-model-v2.1") and cfg.models[0].critical is True
    assert cfg.check_interval_seconds == 300.0
    assert cfg.baseline_dependencies == {"torch": "2.2.0", "transformers": "4.38.0", "safetensors": "0.4.2"}
    assert cfg.behavior_drift_threshold == 0.15
    assert cfg.trust_mtime is False
    assert cfg.webhook_display == "https://hooks.slack.com"


def test_phase1_monitored_models_and_defaults():
    cfg = parse_config(
        {"monitored_models": [{"id": "m", "path": "/models/m"}], "baseline_dependencies": ["torch==2.2.0"]}
    )
    assert cfg.models[0].critical is True
    assert cfg.check_interval_seconds == 300.0
    assert cfg.alert_webhook is None
    assert cfg.baseline_dependencies == {"torch": "2.2.0"}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"check_interval_seconds": "300"}, "check_interval_seconds", "must be a number, got text"),
        ({"check_interval_seconds": 0}, "check_interval_seconds", "greater than 0"),
        ({"check_interval_seconds": True}, "check_interval_seconds", "got boolean"),
        ({"chek_interval_seconds": 5}, "chek_interval_seconds", "did you mean 'check_interval_seconds'"),
        ({"alert_webhook": "hooks.slack.com/x"}, "alert_webhook", "http:// or https:// URL"),
        ({"alert_webhook": 5}, "alert_webhook", "got int"),
        ({"models": {"m": "/models/m"}}, "models", "must be a list"),
        ({"models": []}, "models", "is empty"),
        ({"models": [{"path": "/models/m"}]}, "models[0].id", "missing or not text"),
        ({"models": [{"id": "../etc", "path": "/x"}]}, "models[0].id", "not a safe model id"),
        ({"models": [{"id": "m", "path": 3}]}, "models[0].path", "got int"),
        ({"models": [{"id": "m", "path": "/m", "critical": "yes"}]}, "models[0].critical", "true or false"),
        ({"models": [{"id": "m", "path": "/m", "crtical": True}]}, "models[0].crtical", "did you mean 'critical'"),
        ({"models": [{"id": "m", "path": "/a"}, {"id": "m", "path": "/b"}]}, "models[1].id", "duplicate"),
        ({"baseline_dependencies": {"torch": 2.2}}, "baseline_dependencies.torch", "version must be text"),
        ({"baseline_dependencies": ["torch>=2"]}, "baseline_dependencies[0]", "name==version"),
        ({"behavior_drift_threshold": -1}, "behavior_drift_threshold", "must not be negative"),
        ({"trust_mtime": 1}, "trust_mtime", "true or false"),
        ({"webhook_backoff_seconds": 5, "webhook_max_backoff_seconds": 1}, "webhook_max_backoff_seconds", "smaller"),
    ],
)
def test_bad_fields_are_named(change, field, words):
    doc = {**ORIGINAL, **change}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source="cfg.json")
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith(f"cfg.json: field '{field}'")


def test_missing_models_and_both_keys():
    with pytest.raises(ConfigError, match="field 'models': missing"):
        parse_config({"check_interval_seconds": 5})
    with pytest.raises(ConfigError, match="either 'models' or 'monitored_models'"):
        parse_config({"models": [{"id": "a", "path": "/a"}], "monitored_models": [{"id": "b", "path": "/b"}]})


def test_bad_webhook_value_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        parse_config({**ORIGINAL, "alert_webhook": "ftp://user:hunter2@host/secret"})
    assert "hunter2" not in str(info.value) and "secret" not in str(info.value)


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "models": [\n    {"id": "m",}\n  ]\n}')
    with pytest.raises(ConfigError, match=r"not valid JSON at line 3, column"):
        load_config(bad)
    top = tmp_path / "list.json"
    top.write_text("[]")
    with pytest.raises(ConfigError, match="top level must be a JSON object, got array"):
        load_config(top)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    cfg_path = tmp_path / "etc" / "config.json"
    cfg_path.parent.mkdir()
    cfg_path.write_text(json.dumps({"models": [{"id": "m", "path": "../models/m"}], "state_file": "state.json"}))
    cfg = load_config(cfg_path)
    assert cfg.models[0].path == tmp_path / "etc" / ".." / "models" / "m"
    assert cfg.state_file == tmp_path / "etc" / "state.json"


def test_webhook_override_and_origin():
    cfg = parse_config(ORIGINAL).with_webhook("http://127.0.0.1:8080/hook/SECRET")
    assert cfg.alert_webhook == "http://127.0.0.1:8080/hook/SECRET"
    assert cfg.webhook_display == "http://127.0.0.1:8080"
    assert webhook_origin("https://user:pw@hooks.example.com/services/T/B/X?x=1") == "https://hooks.example.com"
    assert webhook_origin("file:///etc/passwd") is None
    with pytest.raises(ConfigError):
        parse_config(ORIGINAL).with_webhook("not a url")
