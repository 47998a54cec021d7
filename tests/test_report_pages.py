"""The printed report's length and its first page, on each bundled case and on a case with thousands of log matches.

The body (everything before "Appendix A") fits in 12 A4 pages for each bundled case and in 15 for a case whose
pipeline log holds thousands of matching lines; page 1 states the verdict, the compromise start and the exposure
window exactly as ``findings.json`` has them (in the human outputs' format, to the second).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import CASES
from workbench.report import pdf as pdf_mod
from workbench.timeparse import display_time

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    pdf_mod.find_chromium() is None or shutil.which("pdftotext") is None,
    reason="Chromium and poppler-utils are installed by .ci/run (make system-deps)",
)
BODY_PAGES = 12
BODY_PAGES_LARGE = 15
NOISY_LINES = 3000


def _investigate(case: Path, out: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "workbench", "investigate", str(case), "--out", str(out), "--pdf"],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _pages(pdf: Path) -> list[str]:
    count = int(next(line.split()[1] for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                     text=True, check=True).stdout.splitlines() if line.startswith("Pages:")))  # fmt: skip
    return [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout for n in range(1, count + 1)]  # fmt: skip


def _body_pages(pages: list[str]) -> int:
    """Pages before the one where the heading of Appendix A stands."""
    for i, page in enumerate(pages):
        if any(line.strip() == "Appendix A: Evidence and chain of custody" for line in page.splitlines()):
            return i
    raise AssertionError("no Appendix A heading in the PDF")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Path:
    """The tampered case with its malicious CI steps repeated 3,000 times over three days in the pipeline log."""
    base = tmp_path_factory.mktemp("noisy")
    case = base / "case"
    shutil.copytree(ROOT / "evidence-samples" / "tampered-weights", case)
    log = case / "logs" / "pipeline.log"
    lines = log.read_text(encoding="utf-8").splitlines()
    bad = [line.split(" ", 1)[1] for line in lines if any(k in line for k in ("| bash", "base64 -d", "extra-index"))]
    start = datetime(2026, 11, 15, 0, 0, 0)
    extra = [f"{(start + timedelta(seconds=86 * i)).strftime('%Y-%m-%dT%H:%M:%S.0000000Z')} {bad[i % len(bad)]}"
             for i in range(NOISY_LINES)]  # fmt: skip
    log.write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
    return _investigate(case, base / "out")


@pytest.mark.parametrize("name", CASES)
def test_body_fits_in_twelve_pages_and_page_one_decides(printed_runs, name: str) -> None:
    out = printed_runs[name]
    pages = _pages(out / "report.pdf")
    body = _body_pages(pages)
    assert 1 <= body <= BODY_PAGES, f"{name}: body is {body} pages"
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    c = doc["conclusions"]
    first = " ".join(pages[0].split())
    assert f"Verdict: {c['verdict']}" in first
    if c["compromise"] is not None:
        start = display_time(datetime.fromisoformat(c["compromise"]["start"].replace("Z", "+00:00")))
        assert f"Compromise start: {start}" in first
        exposure = c["exposure"]
        end = display_time(datetime.fromisoformat(exposure["end"].replace("Z", "+00:00")))
        assert f"Exposure window: {start} to {end}" in first
    else:
        assert "Compromise start:" not in first


def test_thousands_of_log_matches_keep_the_body_within_fifteen_pages(noisy: Path) -> None:
    doc = json.loads((noisy / "findings.json").read_text(encoding="utf-8"))
    matched = sum(int(f["evidence"].get("count") or 1) for f in doc["findings"] if f["category"] == "log_pattern")
    assert matched >= NOISY_LINES
    body = _body_pages(_pages(noisy / "report.pdf"))
    assert 1 <= body <= BODY_PAGES_LARGE, f"body is {body} pages"
