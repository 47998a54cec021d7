"""The dependency analysis reads the pipeline logs within the log budget the logs section obeys: each log streamed
from disk (not the loader's preview), long lines read whole, a log past its budget named as not examined."""

from __future__ import annotations

import gzip
from pathlib import Path

from workbench import deps_baseline
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.deps import analyse_dependencies
from workbench.evidence import pipeline_log
from workbench.evidence.pipeline_log import LogBudget

MIB = 1 << 20
WHEEL = "Downloading https://evil.example/simple/reqeusts/reqeusts-2.31.0-py3-none-any.whl"


def _run(root: Path):
    case = Case.open(root)
    return analyse_dependencies(AnalysisContext(case=case, evidence=collect_evidence(case)))


def _case(root: Path, files: dict[str, bytes]) -> Path:
    (root / "logs").mkdir(parents=True)
    for name, data in files.items():
        (root / "logs" / name).write_bytes(data)
    (root / "case.yaml").write_text("incident_id: INC-DEPS-1\n", encoding="utf-8")
    return root


def _downloads(result) -> list[tuple[str, int]]:
    return [(f.evidence["path"], f.evidence["count"]) for f in result.findings
            if f.category == "dependency_untrusted_source"]  # fmt: skip


def test_download_past_the_preview_and_deep_in_a_long_line_is_seen(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_log, "MAX_PREVIEW_LINES", 10)
    lines = [b"step %d ok" % i for i in range(50)]  # the download lies past the loader's preview
    lines.append(b"x" * MIB + b" " + WHEEL.encode() + b" " + b"y" * 100_000)  # 1 MiB into a 1.1 MB line
    result = _run(_case(tmp_path / "case", {"build.log": b"\n".join(lines) + b"\n"}))
    assert _downloads(result) == [("logs/build.log", 1)]
    (finding,) = [f for f in result.findings if f.category == "dependency_untrusted_source"]
    assert finding.evidence["line"] == 51 and finding.evidence["host"] == "evil.example"
    assert result.unexamined == []


def test_gzip_bomb_of_downloads_stops_at_the_budget(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_log, "LOG_BUDGET", LogBudget(file_bytes=MIB))
    line = (WHEEL + "\n").encode()
    bomb = gzip.compress(line * (8 * MIB // len(line)), compresslevel=9, mtime=0)
    result = _run(_case(tmp_path / "case", {"bomb.log.gz": bomb}))
    assert result.unexamined == ["logs/bomb.log.gz: stopped after 1 MiB decompressed (budget)"]
    assert _downloads(result) == [("logs/bomb.log.gz", MIB // len(line))]  # what was read before the stop


def test_index_uses_are_capped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(deps_baseline, "MAX_INDEX_USES", 10)
    many = "".join(f"{WHEEL.replace('2.31.0', f'2.{i}.0')}\n" for i in range(30)).encode()
    result = _run(_case(tmp_path / "case", {"a.log": many, "b.log": many}))
    assert result.unexamined == [
        "logs/a.log: stopped after 10 package-index lines (budget)",
        "logs/b.log: not read: 10 package-index lines already kept (budget)",
    ]
    assert _downloads(result) == [("logs/a.log", 10)]


def test_logs_within_the_budget_leave_nothing_unexamined(tmp_path: Path) -> None:
    text = f"Looking in indexes: https://pypi.org/simple\n{WHEEL}\n".encode()
    result = _run(_case(tmp_path / "case", {"a.log": text, "b.log.gz": gzip.compress(text)}))
    assert result.unexamined == []
    assert sorted(_downloads(result)) == [("logs/a.log", 1), ("logs/b.log.gz", 1)]
