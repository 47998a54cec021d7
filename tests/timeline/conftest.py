"""Shared fixtures for the timeline tests.

``opened(name)`` opens a sample case of ``evidence-samples/`` through the real loaders and takes custody into a
temporary folder (cached per test session). ``hostile_case`` writes a small case into ``tmp_path`` whose sources
use different time formats and offsets, with planted bad entries; its expected values are computed by hand in the
tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench import custody
from workbench.case import Case
from workbench.collect import EvidenceSet, collect_evidence

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


@dataclass
class Opened:
    case: Case
    evidence: EvidenceSet
    ledger: custody.Ledger


def open_case(root: Path, out: Path) -> Opened:
    case = Case.open(root)
    return Opened(case, collect_evidence(case), custody.intake(case, out))


@pytest.fixture(scope="session")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Opened]:
    cache: dict[str, Opened] = {}

    def get(name: str) -> Opened:
        if name not in cache:
            cache[name] = open_case(SAMPLES / name, tmp_path_factory.mktemp(f"out-{name}"))
        return cache[name]

    return get


ACTIONS = """\
[2026-11-19T09:05:12Z] ASSESS: Starting incident assessment for model demo-model
[2026-11-19T10:40:33+01:00] ISOLATE: Isolating compromised model demo-model
[2026-11-19T10:40:33+01:00] Scaled down: deployment.apps/demo-api
[2026-11-19T10:40:33+01:00] Scaled down: deployment.apps/demo-api
[not-a-time] CONTAIN: line with a broken time
[1985-03-01T00:00:00Z] ISOLATE: clock reset on the bastion host
[2099-01-01T00:00:00Z] ROLLBACK: clock far in the future
[2026-11-19T06:20:47-05:00] ROLLBACK: Rolling back to last known-good model
"""

CASE_YAML = """\
incident_id: "INC-TEST-0001"
title: "Hostile timeline"
severity: "high"
naive_timezone: "Europe/Berlin"
timeline:
  - time: "2026-11-19 04:10:00-05:00"
    message: "Vendor called the hotline"
    source: "phone log"
    severity: "low"
    tags: ["external", "vendor"]
  - time: "2026-11-19T10:20:00"
    message: "Naive Berlin time from the on-call notebook"
  - "just a string"
  - time: "2026-11-19T09:00:00Z"
  - time: "2026-11-19T09:25:00Z"
    message: "Severity word nobody knows"
    severity: "apocalyptic"
    colour: "red"
  - time: "yesterday afternoon"
    message: "Time nobody can parse"
"""

NOTES = '''time,message,source,severity,tags,comment
2026-11-19T09:30:00.5Z,"Note with a comma, and ""quotes""",chat,info,a;b,x
bad time,Unparseable note time,,,,
2026-11-19T09:35:00Z,,,,,
2026-11-19T09:36:00Z,Too many cells,,,,,extra
'''


def alerts_jsonl() -> str:
    rows = [
        {
            "timestamp": 1795077603000,
            "type": "FILE_TAMPERED",
            "model": "demo-model",
            "file": "model.safetensors",
            "severity": "critical",
            "message": "hash mismatch",
        },
        {
            "timestamp": "2026-11-19T08:45:00Z",
            "type": "UNEXPECTED_FILE",
            "model": "demo-model",
            "file": "x.pkl",
            "severity": "catastrophic",
            "message": "unknown severity word",
        },
        {
            "timestamp": "2026-11-19T08:46:00Z",
            "type": "BEHAVIOR_DRIFT",
            "model": "demo-model",
            "message": "no severity at all",
        },
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def hostile_case(tmp_path: Path) -> Path:
    root = tmp_path / "case"
    (root / "monitor").mkdir(parents=True)
    (root / "notes").mkdir()
    (root / "models" / "suspect" / "demo-model").mkdir(parents=True)
    (root / "actions.log").write_text(ACTIONS, encoding="utf-8")
    (root / "case.yaml").write_text(CASE_YAML, encoding="utf-8")
    (root / "notes" / "timeline.csv").write_text(NOTES, encoding="utf-8")
    (root / "monitor" / "alerts.jsonl").write_text(alerts_jsonl(), encoding="utf-8")
    (root / "models" / "suspect" / "demo-model" / "COMPROMISED.txt").write_text(
        "COMPROMISED - Incident INC-TEST-0001 - 2026-11-19T09:40:33Z\n", encoding="utf-8"
    )
    return root
