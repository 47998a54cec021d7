"""The PDF report: printed by headless Chromium, A4, pages not blank, figures drawn."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ReportError
from workbench.report import pdf as pdf_mod

ROOT = Path(__file__).resolve().parents[1]
needs_tools = pytest.mark.skipif(
    pdf_mod.find_chromium() is None or shutil.which("pdftoppm") is None,
    reason="Chromium and poppler-utils are installed by .ci/run (make system-deps)",
)


def read_ppm(path: Path) -> np.ndarray:
    """Decode a binary PPM (P6) as written by pdftoppm: header, then raw RGB bytes."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6"
    width, height = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(data[pos + 1 : pos + 1 + width * height * 3], dtype=np.uint8)
    return pixels.reshape(height, width, 3)


@pytest.fixture(scope="module")
def printed(printed_runs):
    """The tampered case's PDF, from the session's printed runs."""
    return printed_runs["tampered-weights"] / "report.pdf"


@needs_tools
def test_pdf_is_a4_and_pages_are_not_blank(printed, tmp_path):
    info = subprocess.run(["pdfinfo", str(printed)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+59[45](\.\d+)? x 84[12](\.\d+)? pts \(A4\)", info), info
    subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "2", str(printed), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.ppm"))
    assert len(pages) == 2
    for page in pages:
        img = read_ppm(page)
        ink = (img < 200).any(axis=2).mean()
        assert ink > 0.01, f"{page.name} looks blank ({ink:.4f} of pixels inked)"


@needs_tools
def test_a_figure_is_drawn(printed, tmp_path):
    text = subprocess.run(["pdftotext", "-layout", str(printed), "-"], capture_output=True, text=True, check=True)
    pages = text.stdout.split("\f")
    figure_pages = [i + 1 for i, page in enumerate(pages) if "time (UTC)" in page]
    assert figure_pages, "no page carries a figure axis"
    plot_bg = np.array([229, 236, 246])  # plotly's default plot-area fill, #E5ECF6
    areas = {}
    for page in figure_pages:
        prefix = str(tmp_path / f"f{page}")
        subprocess.run(["pdftoppm", "-r", "40", "-f", str(page), "-l", str(page), str(printed), prefix], check=True)
        img = read_ppm(next(tmp_path.glob(f"f{page}-*.ppm"))).astype(int)
        mask = np.abs(img - plot_bg).max(axis=2) <= 6
        areas[page] = mask.mean()
        if mask.any():  # a drawn plot area stays inside the page's right margin
            assert np.where(mask.any(axis=0))[0].max() < img.shape[1] * 0.96, f"figure on page {page} hits the edge"
    assert max(areas.values()) > 0.02, f"no figure page shows a drawn plot area: {areas}"


def test_missing_chromium_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CHROMIUM", str(tmp_path / "no-browser"))
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with pytest.raises(ReportError, match="apt-get install chromium"):
        pdf_mod.html_to_pdf(html, tmp_path / "r.pdf")
