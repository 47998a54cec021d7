"""Kubernetes manifests of the monitor (the playbook's ``deploy-model-monitor.sh``): a ConfigMap and a DaemonSet.

The DaemonSet runs ``workbench monitor --config /etc/monitor/config.json`` from the image built by the repository's
``Dockerfile`` (non-root user 10001), on every node with models:

* the models' host folder mounted **read-only** at the same path; the config from the ConfigMap (read-only);
* ``runAsNonRoot``, ``readOnlyRootFilesystem``, no privilege escalation, every capability dropped, the runtime's
  seccomp profile, no service-account token (the monitor never calls the API), resource requests and limits;
* state (baselines), alerts JSONL and webhook queue in a writable volume: by default a hostPath folder
  (``DirectoryOrCreate``) so that baselines survive the pod being replaced: an ``emptyDir`` would be lost with the
  pod and the next pod would take its baselines from files that may by then be tampered with. A hostPath folder is
  created root-owned, so an init container (root, only ``CHOWN`` kept) hands it to the monitor's user.
  ``state_volume="emptydir"`` avoids the init container at that cost;
* the webhook URL from a Secret (``WORKBENCH_ALERT_WEBHOOK``) when ``webhook_secret`` is given: it is then removed
  from the ConfigMap, where anyone who can read ConfigMaps would see it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench._version import __version__
from workbench.ops.config import ConfigError, MonitorConfig, load_config

__all__ = ["CONFIG_MOUNT", "DEFAULT_IMAGE", "STATE_MOUNT", "USER_ID", "manifests", "render"]

DEFAULT_IMAGE = f"ai-supplychain-workbench:{__version__}"
NAME = "model-integrity-monitor"
CONFIG_MOUNT = "/etc/monitor"
STATE_MOUNT = "/var/lib/model-integrity-monitor"
USER_ID = 10001  # the Dockerfile's user


def _check_paths(config: MonitorConfig, models_root: str) -> None:
    root = Path(models_root)
    for i, spec in enumerate(config.models):
        path = Path(spec.path)
        if not path.is_absolute() or (path != root and root not in path.parents):
            raise ConfigError(
                config.source,
                f"{spec.path} is not under the mounted models folder {models_root} "
                "(use absolute paths inside it, or pass another models host path)",
                f"models[{i}].path",
            )


def manifests(
    config_path: Path,
    *,
    namespace: str,
    image: str = DEFAULT_IMAGE,
    webhook_secret: str | None = None,
    state_volume: str = "hostpath",
    state_host_path: str = STATE_MOUNT,
    models_host_path: str = "/models",
) -> list[dict[str, Any]]:
    """The ConfigMap and the DaemonSet as dicts.

    Args:
        config_path: the monitor config (validated first; its model paths decide the read-only mounts).
        namespace: target namespace.
        image: container image built from the repository's Dockerfile.
        webhook_secret: ``NAME`` or ``NAME:KEY`` of a Secret holding the webhook URL (key default ``url``).
        state_volume: ``hostpath`` (baselines survive pod replacement) or ``emptydir``.
        state_host_path: host folder for the state with ``hostpath``.
        models_host_path: host folder holding every monitored model, mounted read-only at the same path.

    Raises:
        ConfigError: the config is invalid, or a model lies outside ``models_host_path`` (the message names the
            field).
        ValueError: ``state_volume`` is unknown.
    """
    config = load_config(config_path)
    doc = json.loads(config_path.read_text(encoding="utf-8"))
    env: list[dict[str, Any]] = [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": "/tmp"}]  # noqa: S108 (emptyDir)
    if webhook_secret:
        secret, _, key = webhook_secret.partition(":")
        doc.pop("alert_webhook", None)
        env.append(
            {"name": "WORKBENCH_ALERT_WEBHOOK", "valueFrom": {"secretKeyRef": {"name": secret, "key": key or "url"}}}
        )
    labels = {"app": NAME, "component": "security"}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{NAME}-config", "namespace": namespace, "labels": labels},
        "data": {"config.json": json.dumps(doc, indent=2, sort_keys=True) + "\n"},
    }
    _check_paths(config, models_host_path)
    volumes: list[dict[str, Any]] = [{"name": "models", "hostPath": {"path": models_host_path, "type": "Directory"}}]
    mounts: list[dict[str, Any]] = [{"name": "models", "mountPath": models_host_path, "readOnly": True}]
    volumes.append({"name": "config", "configMap": {"name": f"{NAME}-config"}})
    mounts.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
    if state_volume == "hostpath":
        volumes.append({"name": "state", "hostPath": {"path": state_host_path, "type": "DirectoryOrCreate"}})
    elif state_volume == "emptydir":
        volumes.append({"name": "state", "emptyDir": {"sizeLimit": "256Mi"}})
    else:
        raise ValueError(f"state_volume must be 'hostpath' or 'emptydir', not {state_volume!r}")
    mounts.append({"name": "state", "mountPath": STATE_MOUNT})
    volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
    mounts.append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 (a private emptyDir)
    security = {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "name": "monitor",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["workbench"],
        "args": [
            "monitor",
            "--config",
            f"{CONFIG_MOUNT}/config.json",
            "--state",
            f"{STATE_MOUNT}/state.json",
            "--alerts",
            f"{STATE_MOUNT}/alerts.jsonl",
            "--queue",
            f"{STATE_MOUNT}/webhook-queue.jsonl",
        ],
        "env": env,
        "volumeMounts": mounts,
        "resources": {"limits": {"memory": "256Mi", "cpu": "200m"}, "requests": {"memory": "128Mi", "cpu": "100m"}},
        "securityContext": security,
    }
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 10,
        "securityContext": {"fsGroup": USER_ID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if state_volume == "hostpath":
        pod["initContainers"] = [
            {
                "name": "state-owner",
                "image": image,
                "command": ["chown", f"{USER_ID}:{USER_ID}", STATE_MOUNT],
                "volumeMounts": [{"name": "state", "mountPath": STATE_MOUNT}],
                "resources": {"limits": {"memory": "32Mi", "cpu": "50m"}, "requests": {"memory": "16Mi", "cpu": "10m"}},
                "securityContext": {
                    "runAsUser": 0,
                    "runAsNonRoot": False,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
                },
            }
        ]
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": NAME}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    return [configmap, daemonset]


def render(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML, ready for ``kubectl apply -f -``."""
    import yaml

    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)
