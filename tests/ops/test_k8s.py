"""The monitor's Kubernetes manifests: structure checked with JSON schemas (no cluster), security settings, the
Dockerfile they rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from workbench.commands.k8s_manifest import command
from workbench.ops.config import parse_config
from workbench.ops.k8s import CONFIG_MOUNT, STATE_MOUNT, USER_ID, manifests

ROOT = Path(__file__).resolve().parents[2]

_META = {
    "type": "object",
    "required": ["name", "namespace", "labels"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object"},
    },
}
_RESOURCES = {
    "type": "object",
    "required": ["limits", "requests"],
    "properties": {k: {"type": "object", "required": ["memory", "cpu"]} for k in ("limits", "requests")},
}
_MOUNT = {
    "type": "object",
    "required": ["name", "mountPath"],
    "properties": {
        "name": {"type": "string"},
        "mountPath": {"type": "string", "pattern": "^/"},
        "readOnly": {"type": "boolean"},
    },
}
_CONTAINER = {
    "type": "object",
    "required": ["name", "image", "command", "args", "volumeMounts", "resources", "securityContext"],
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "volumeMounts": {"type": "array", "items": _MOUNT},
        "resources": _RESOURCES,
        "securityContext": {
            "type": "object",
            "required": ["runAsNonRoot", "runAsUser", "readOnlyRootFilesystem", "allowPrivilegeEscalation"],
            "properties": {
                "runAsNonRoot": {"const": True},
                "readOnlyRootFilesystem": {"const": True},
                "allowPrivilegeEscalation": {"const": False},
                "runAsUser": {"type": "integer", "minimum": 1},
                "capabilities": {"type": "object", "properties": {"drop": {"const": ["ALL"]}}},
            },
        },
    },
}
_VOLUME = {
    "type": "object",
    "required": ["name"],
    "minProperties": 2,
    "properties": {
        "name": {"type": "string"},
        "hostPath": {"type": "object", "required": ["path", "type"]},
        "configMap": {"type": "object", "required": ["name"]},
        "emptyDir": {"type": "object"},
    },
}
DAEMONSET = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "apps/v1"},
        "kind": {"const": "DaemonSet"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["selector", "template"],
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "template": {
                    "type": "object",
                    "required": ["metadata", "spec"],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["containers", "volumes"],
                            "properties": {
                                "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
                                "volumes": {"type": "array", "items": _VOLUME},
                                "automountServiceAccountToken": {"const": False},
                            },
                        }
                    },
                },
            },
        },
    },
}
CONFIGMAP = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "data"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "ConfigMap"},
        "metadata": _META,
        "data": {"type": "object", "required": ["config.json"], "additionalProperties": {"type": "string"}},
    },
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "model-monitor-config.json"
    path.write_text(
        json.dumps(
            {
                "check_interval_seconds": 300,
                "alert_webhook": "https://hooks.slack.com/services/T000/B000/SECRET",
                "models": [
                    {"id": "sentiment-model-v2.1", "path": "/models/sentiment-model-v2.1", "critical": True},
                    {"id": "summarization-model-v1.0", "path": "/models/summarization-model-v1.0", "critical": True},
                ],
                "baseline_dependencies": {"torch": "2.2.0"},
                "behavior_drift_threshold": 0.15,
            }
        )
    )
    return path


def _print(config: Path, *extra: str) -> tuple[list[dict], str]:
    res = CliRunner().invoke(command, ["--namespace", "ml-inference", "--config", str(config), *extra])
    assert res.exit_code == 0, res.output
    return list(yaml.safe_load_all(res.stdout)), res.stderr


def test_manifests_validate_and_are_locked_down(config):
    (cm, ds), warning = _print(config, "--image", "registry.example/workbench:1.2")
    jsonschema.validate(cm, CONFIGMAP)
    jsonschema.validate(ds, DAEMONSET)
    assert "webhook URL is stored in the ConfigMap" in warning
    pod = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert cm["metadata"]["namespace"] == ds["metadata"]["namespace"] == "ml-inference"
    (monitor,) = pod["containers"]
    assert monitor["image"] == "registry.example/workbench:1.2"
    assert monitor["command"] == ["workbench"] and monitor["args"][:3] == [
        "monitor",
        "--config",
        f"{CONFIG_MOUNT}/config.json",
    ]
    assert monitor["securityContext"]["runAsUser"] == USER_ID
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in monitor["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True and volumes[mounts["/models"]["name"]]["hostPath"]["path"] == "/models"
    assert mounts[CONFIG_MOUNT]["readOnly"] is True
    assert volumes[mounts[CONFIG_MOUNT]["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    writable = [m for m in monitor["volumeMounts"] if not m.get("readOnly")]
    assert {m["mountPath"] for m in writable} == {STATE_MOUNT, "/tmp"}
    for flag in ("--state", "--alerts", "--queue"):
        assert monitor["args"][monitor["args"].index(flag) + 1].startswith(STATE_MOUNT + "/")
    # baselines survive pod replacement: a host folder, handed to the monitor's user by a CHOWN-only init container
    assert volumes["state"]["hostPath"]["type"] == "DirectoryOrCreate"
    (init,) = pod["initContainers"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    # the ConfigMap's config is the monitor's config and validates
    parsed = parse_config(json.loads(cm["data"]["config.json"]))
    assert [m.id for m in parsed.models] == ["sentiment-model-v2.1", "summarization-model-v1.0"]


def test_webhook_from_secret_and_emptydir_state(config):
    (cm, ds), warning = _print(config, "--webhook-secret", "monitor-webhook:slack", "--state-volume", "emptydir")
    jsonschema.validate(ds, DAEMONSET)
    assert warning == "" and "SECRET" not in cm["data"]["config.json"]
    env = {e["name"]: e for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WORKBENCH_ALERT_WEBHOOK"]["valueFrom"]["secretKeyRef"] == {"name": "monitor-webhook", "key": "slack"}
    pod = ds["spec"]["template"]["spec"]
    assert "initContainers" not in pod and {v["name"]: v for v in pod["volumes"]}["state"]["emptyDir"]


def test_bad_config_or_model_outside_the_mount_exits_2(tmp_path, config):
    res = CliRunner().invoke(command, ["-n", "ns", "--config", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "no such file" in res.stderr
    doc = json.loads(config.read_text())
    doc["models"][1]["path"] = "/srv/other/model"
    config.write_text(json.dumps(doc))
    res = CliRunner().invoke(command, ["-n", "ns", "--config", str(config)])
    assert res.exit_code == 2 and "field 'models[1].path'" in res.stderr and "/models" in res.stderr
    with pytest.raises(ValueError, match="state_volume"):
        manifests(config, namespace="ns", state_volume="nfs", models_host_path="/")


def test_dockerfile_builds_the_image_the_daemonset_runs():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(rf"^USER {USER_ID}(:{USER_ID})?$", text, re.M)  # the DaemonSet's runAsUser
    assert re.search(r'^ENTRYPOINT \["workbench"\]$', text, re.M)
    assert re.search(r"^RUN pip install .*\.", text, re.M)
    for needed in ("pyproject.toml", "workbench", "notebooks", "templates"):  # what the wheel build includes
        assert re.search(rf"^COPY .*\b{needed}\b", text, re.M), needed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and "workbench" not in ignored
