"""The "logs" section on a real case folder: findings, timeline events, frames and the rendered report items."""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tests.logscan.conftest import MULTIFORMAT
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.logscan import analyse, render

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


def _context(case_dir: Path, **parameters) -> AnalysisContext:
    case = Case.open(case_dir)
    return AnalysisContext(case=case, evidence=collect_evidence(case), parameters=parameters)


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    root = tmp_path / "case"
    (root / "logs").mkdir(parents=True)
    shutil.copy(MULTIFORMAT, root / "logs" / "pipeline.log")
    (root / "case.yaml").write_text("incident_id: INC-T-1\ndetection_time: 2026-11-20T12:00:00Z\n", encoding="utf-8")
    return root


def test_findings_events_and_frames(case_dir: Path) -> None:
    result = analyse(_context(case_dir))
    assert result.section == "logs" and result.warnings == []
    assert (
        result.summary == "18 suspicious log line(s) in 1 pipeline log(s) (16 findings: 7 critical, 7 high, 2 medium)."
    )
    top = result.findings[0]
    assert (top.severity.value, top.category, top.title) == (
        "critical",
        "log_pattern",
        "Remote script piped to a shell or interpreter: 3 line(s) in logs/pipeline.log",
    )
    assert top.evidence["line"] == 14 and top.evidence["last_line"] == 33 and top.detector == "workbench.logscan"
    secrets = sorted(f.evidence["rule_id"] for f in result.findings if f.category == "secret_exposed")
    assert secrets == ["secret.aws-secret-access-key", "secret.credential-assignment", "secret.github-token",
                       "secret.huggingface-token", "secret.private-key-block", "secret.url-credentials",
                       "signing.cosign-password"]  # fmt: skip
    assert {e.kind for e in result.events} == {"ci:log:match"}
    syslog = next(e for e in result.events if e.extra["line"] == 29)
    assert syslog.timestamp.isoformat() == "2026-11-14T03:09:05+00:00" and syslog.source == "logs/pipeline.log"
    assert syslog.ref == next(f.id for f in result.findings if f.evidence["rule_id"] == "revshell.dev-tcp-redirect")
    matches = result.data["matches"]
    assert list(matches["line"]) == [9, 14, 15, 16, 20, 21, 25, 26, 29, 30, 31, 32, 33, 34, 38, 39, 40, 41]
    assert str(matches["timestamp"].dtype) == "datetime64[ns, UTC]" and matches["timestamp"].isna().sum() == 1
    assert list(result.data["by_rule"]["severity"].astype(str))[:7] == ["critical"] * 7


def test_render_escapes_evidence(case_dir: Path) -> None:
    items = render(analyse(_context(case_dir)))
    html = "".join(i for i in items if isinstance(i, str))
    (figure,) = [i for i in items if isinstance(i, go.Figure)]
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in figure.to_json() and figure.layout.xaxis.title.text == "time (UTC)"
    assert html.count('class="wb-logmatch"') == 18


def test_extra_rules_parameter(case_dir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "rules"
    mine.mkdir()
    (mine / "off.yaml").write_text(
        "rules:\n  - id: exec.remote-script-to-shell\n    enabled: false\n", encoding="utf-8"
    )
    result = analyse(_context(case_dir, log_rules=str(mine)))
    assert "exec.remote-script-to-shell" not in {f.evidence["rule_id"] for f in result.findings}


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="evidence-samples not generated")
def test_sample_cases() -> None:
    def found(name: str) -> dict[str, str]:
        result = analyse(_context(SAMPLES / name))
        return {f.evidence["rule_id"]: f.severity.value for f in result.findings}

    tampered = found("tampered-weights")
    for rule in ("exec.remote-script-to-shell", "obfuscation.base64-to-shell", "pkg.extra-index-url",
                 "pkg.trusted-host", "pkg.install-from-vcs-or-url", "model.torch-load-unsafe",
                 "revshell.dev-tcp-redirect", "ci.signing-skipped", "signing.cosign-password",
                 "secret.huggingface-token", "ci.orphan-process"):  # fmt: skip
        assert rule in tampered
    poisoned = found("poisoned-dependency")
    assert {"pkg.extra-index-url", "pkg.index-url-changed", "pkg.multiple-indexes"} <= set(poisoned)
    benign = found("false-alarm")
    assert benign and set(benign.values()) == {"low"}


def test_case_without_logs(tmp_path: Path) -> None:
    (tmp_path / "frozen_deps.txt").write_text("torch==2.2.0\n", encoding="utf-8")
    result = analyse(_context(tmp_path))
    assert (result.findings, result.events, result.summary) == ([], [], "The case holds no pipeline log.")
    assert render(result) == ["<p>The case holds no pipeline log.</p>"]
