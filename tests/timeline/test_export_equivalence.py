"""The fast Timesketch writer (memoised redaction, one encoder, chunked writes) against the writer it replaced
(tests/timeline/legacy_export.py): the same bytes, on a generated case with ties, naive and aware times, secrets,
floods that collapse, unparseable and absurd times, and extra fields named like the export's own."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.timeline import legacy_export
from tests.timeline.conftest import open_case
from tests.timeline.test_build import conclude
from workbench.investigation import Investigation, redact_text
from workbench.records import Event
from workbench.timeline.build import build_timeline
from workbench.timeline.export import entry_row, timesketch_rows, write_csv, write_jsonl
from workbench.timeline.sources import evidence_events

GENERATED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
START = datetime(2026, 11, 19, 6, 0, tzinfo=UTC)
SECRETS = ["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", "ghp_R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234"]


def _generated_case(root: Path, seed: int = 7) -> Path:
    rng = random.Random(seed)  # noqa: S311 - deterministic test data
    (root / "monitor").mkdir(parents=True)
    (root / "notes").mkdir()
    (root / "case.yaml").write_text(
        'incident_id: "INC-TEST-0015"\ntitle: "Generated"\nseverity: "high"\n'
        'naive_timezone: "Europe/Berlin"\ndetection_time: "2026-11-19T09:00:00Z"\n',
        encoding="utf-8",
    )
    lines, t = [], START
    for i in range(600):
        if rng.random() < 0.4:  # the rest share the previous line's second: ties
            t += timedelta(seconds=rng.randint(1, 30))
        step = rng.choice(["ASSESS: ", "ISOLATE: ", "ROLLBACK: ", ""])
        message = rng.choice(
            [
                f"host-{i % 7} done \u00e9t\u00e9 {i}",
                "Heartbeat",
                f"token {rng.choice(SECRETS)} used",
                f"DEL\x7fin line {i}",
            ]
        )
        stamp = (
            (t + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S") if i % 5 == 0 else t.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        if i % 97 == 0:
            stamp = "not-a-time"
        elif i % 131 == 0:
            stamp = "2099-01-01T00:00:00Z"
        lines.append(f"[{stamp}] {step}{message}")
    (root / "actions.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    alerts = []
    for i in range(300):
        sev = rng.choice(["critical", "high", "low", "", "sev2"])
        alerts.append(
            {
                "timestamp": (START + timedelta(seconds=i // 3)).isoformat(),
                "type": rng.choice(["FILE_TAMPERED", "BEHAVIOR_DRIFT", "OTHER"]),
                "severity": sev,
                "model": "m",
                "file": "f.bin",
                "message": rng.choice(["same alert", f"alert {i} {rng.choice(SECRETS)}"]),
            }
        )
    (root / "monitor" / "alerts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in alerts), encoding="utf-8")
    notes = ["time,message,source,severity,tags"]
    notes += [
        f"2026-11-19 0{7 + i % 3}:1{i % 10}:00,Note {i} {SECRETS[i % 2] if i % 4 == 0 else ''},chat,low,a;b"
        for i in range(60)
    ]
    (root / "notes" / "timeline.csv").write_text("\n".join(notes) + "\n", encoding="utf-8")
    return root


def _analysis_events() -> list[Event]:
    """Events as analyses give them: extra fields named like the export's own, NaN, floats, a finding ref."""
    at = START + timedelta(minutes=5)
    return (
        [
            Event(
                at,
                "logs/pipeline.log",
                "ci:log:match",
                f"HF_TOKEN={SECRETS[0]}",
                "critical",
                ref="F-1",
                extra={
                    "line": 3,
                    "count": 99,
                    "message": "shadow",
                    "tags": "x, y",
                    "ratio": float("nan"),
                    "score": 0.25,
                    "finding_id": "shadow",
                    "lane": "shadow",
                    "flag": True,
                },
            )
        ]
        + [
            Event(
                at,
                "logs/pipeline.log",
                "ci:log:match",
                f"ghp {SECRETS[1]}",
                "high",
                ref="F-2",
                extra={
                    "line": 9,
                    "ratio": float("inf"),
                    "score": 0.5,
                    "flag": False,
                    "note": None,
                    "tags": "a,,b",
                    "path": f"/tmp/{SECRETS[0]}",
                    "at": START,
                },
            )
        ]
        + [Event(at, "logs/pipeline.log", "ci:log:match", "flood", "low", extra={"line": i}) for i in range(150)]
    )


@pytest.fixture
def timeline(tmp_path: Path):
    o = open_case(_generated_case(tmp_path / "case"), tmp_path / "out")
    events = evidence_events(o.case, o.evidence, o.ledger, warnings=[])
    tl = build_timeline([*events, *_analysis_events()], meta=o.case.meta, generated_at=GENERATED)
    conclude(tl, meta=o.case.meta)
    return tl


@pytest.mark.parametrize("redact", [redact_text, None], ids=["redacted", "as-found"])
def test_jsonl_bytes_equal_the_old_writer(timeline, redact):
    assert len(timeline.entries) > 400 and any(e.count > 1 for e in timeline.entries)
    assert any(e.flag for e in timeline.entries) and any(e.milestones for e in timeline.entries)
    kwargs = {"redact": redact} if redact else {}
    old, new = io.StringIO(), io.StringIO()
    assert legacy_export.write_jsonl(timeline, old, **kwargs) == write_jsonl(timeline, new, **kwargs)
    assert new.getvalue() == old.getvalue()
    assert (SECRETS[0] in new.getvalue()) is (redact is None)
    assert "\x7f" not in new.getvalue() and new.getvalue().isascii()


def test_rows_equal_the_old_rows_in_key_order(timeline):
    for entry, row in zip(timeline.entries, timesketch_rows(timeline, redact=redact_text), strict=True):
        old = legacy_export.entry_row(entry, redact=redact_text)
        assert list(row.items()) == list(old.items())
        assert list(entry_row(entry, redact=redact_text).items()) == list(old.items())


def test_csv_carries_the_same_rows(timeline):
    buf = io.StringIO()
    assert write_csv(timeline, buf, redact=redact_text) == len(timeline.entries)
    assert SECRETS[0] not in buf.getvalue() and SECRETS[1] not in buf.getvalue()


def test_investigation_output_equals_the_old_writer(tmp_path: Path):
    inv = Investigation.open(_generated_case(tmp_path / "case"), out_dir=tmp_path / "out")
    old = io.StringIO()
    legacy_export.write_jsonl(inv.timeline, old, redact=redact_text)
    assert inv.outputs["timeline"].read_text(encoding="utf-8") == old.getvalue()
