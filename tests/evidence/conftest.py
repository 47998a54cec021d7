"""Shared fixtures for the evidence loader tests: one realistic sample file per loader, written into tmp_path.

The samples are hand-written in the formats of docs-formats.md (ps aux and ss -tunap captured on Debian 12,
pip freeze from pip 24), trimmed to a few lines each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.evidence.base import LoadContext

HEX_A = "a" * 64
HEX_B = "0123456789abcdef" * 4

#: loader name -> (path relative to the case, file content)
SAMPLES: dict[str, tuple[str, bytes]] = {
    "sweep_record": (
        "sweep/acme-m-r2.json",
        b'{"format": "workbench-sweep-model", "version": 1, "verdict": "suspicious", "model": "acme/m/r2", '
        b'"findings": [{"severity": "medium", "category": "model_unsigned", "title": "acme/m/r2 is unsigned"}]}\n',
    ),
    "compromised_marker": (
        "models/suspect/sentiment-v2/COMPROMISED.txt",
        b"COMPROMISED - Incident INC-2026-0042 - 2026-11-19T10:15:00Z\n",
    ),
    "signature_manifest": (
        "models/suspect/sentiment-v2/.signatures/manifest.json",
        json.dumps(
            {
                "version": 1,
                "model_id": "sentiment-v2",
                "created": "2026-11-01T10:00:00Z",
                "hash_algorithm": "sha256",
                "files": [
                    {"path": "model.safetensors", "sha256": HEX_A, "size": 1048576},
                    {"path": "config.json", "sha256": HEX_B, "size": 812},
                ],
            },
            indent=2,
        ).encode(),
    ),
    "monitor_config": (
        "monitor/config.json",
        json.dumps(
            {
                "check_interval_seconds": 300,
                "alert_webhook": "https://hooks.slack.example.com/services/T000/B000/XXXXSECRETXXXX?token=abc",
                "behavior_drift_threshold": 0.15,
                "monitored_models": [
                    {"id": "sentiment-v2", "path": "/models/sentiment-v2", "critical": True},
                    {"id": "toxicity-v1", "path": "/models/toxicity-v1", "critical": False},
                ],
                "baseline_dependencies": {"torch": "2.3.1", "transformers": "4.44.2"},
            },
            indent=2,
        ).encode(),
    ),
    "baseline_distribution": (
        "predictions/baseline_distribution.json",
        b'{"positive": 0.55, "negative": 0.35, "neutral": 0.10}\n',
    ),
    "monitor_alerts": (
        "monitor/alerts.jsonl",
        (
            '{"timestamp": "2026-11-19T09:00:03Z", "type": "FILE_TAMPERED", "model": "sentiment-v2", '
            '"file": "model.safetensors", "severity": "CRITICAL", "message": "hash mismatch", '
            f'"expected_hash": "{HEX_A}", "actual_hash": "{HEX_B}"}}\n'
            '{"timestamp": "2026-11-19T09:05:00Z", "type": "BEHAVIOR_DRIFT", "model": "sentiment-v2", '
            '"severity": "HIGH", "message": "positive share 0.81 vs baseline 0.55"}\n'
        ).encode(),
    ),
    "predictions": (
        "predictions/predictions.jsonl",
        (
            b'{"timestamp": "2026-11-19T08:00:00Z", "request_id": "r-0001", "predicted_class": "positive", '
            b'"confidence": 0.91, "model_version": "2.0.1"}\n'
            b'{"timestamp": "2026-11-19T08:00:02Z", "request_id": "r-0002", "predicted_class": "negative", '
            b'"confidence": 0.77, "model_version": "2.0.1"}\n'
        ),
    ),
    "current_hashes": (
        "current_hashes.txt",
        f"{HEX_A}  /models/sentiment-v2/model.safetensors\n{HEX_B}  /models/sentiment-v2/config.json\n".encode(),
    ),
    "frozen_deps": (
        "frozen_deps.txt",
        b"certifi==2024.8.30\nnumpy==1.26.4\nsafetensors==0.4.5\ntorch==2.3.1+cpu\n",
    ),
    "processes": (
        "processes.txt",
        b"USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n"
        b"root           1  0.0  0.1 167744 11800 ?        Ss   Nov19   0:07 /sbin/init\n"
        b"mlsvc       4242 37.5  6.2 4123456 1012345 ?     Sl   09:05  12:34 /opt/venv/bin/python3 -m uvicorn app\n",
    ),
    "network": (
        "network.txt",
        b"Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n"
        b'tcp   LISTEN 0      4096         0.0.0.0:8080       0.0.0.0:*     users:(("python3",pid=4242,fd=7))\n',
    ),
    "actions_log": (
        "actions.log",
        b"[2026-11-19T09:05:12Z] ASSESS: Starting incident assessment for model sentiment-v2\n"
        b"[2026-11-19T09:06:40Z] CONTAIN: Model sentiment-v2 taken out of rotation\n",
    ),
    "pipeline_log": (
        "logs/build-1234.log",
        b"2026-11-18T22:14:03.512Z ##[group]Run pip install -r requirements.txt\n"
        b"2026-11-18T22:14:09.117Z Successfully installed torch-2.3.1\n",
    ),
}


def write(root: Path, rel: str, content: bytes | str) -> Path:
    """Write ``content`` at ``root/rel`` (parents created) and return the path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    """``make_file("dir/name.txt", text)`` writes a file under tmp_path."""
    return lambda rel, content: write(tmp_path, rel, content)


@pytest.fixture
def sample_paths(tmp_path: Path) -> dict[str, Path]:
    """Every sample of :data:`SAMPLES` written under one case folder; loader name -> path."""
    return {name: write(tmp_path / "case", rel, content) for name, (rel, content) in SAMPLES.items()}


@pytest.fixture
def ctx() -> LoadContext:
    """A UTC LoadContext whose relpath is ``evidence.txt``."""
    return LoadContext(relpath="evidence.txt")
