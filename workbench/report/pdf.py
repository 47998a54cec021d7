"""PDF from the offline HTML report, printed by headless Chromium (A4, vector, figures at page width).

nbconvert's webpdf needs a browser download and prints US Letter; LaTeX drops plotly figures. Chromium prints the
same HTML the reviewers open, with the page size from the template's ``@page`` rule and a ``beforeprint`` hook
that lays figures out at printable width. Chromium runs with a fresh profile, no background networking, and
under a hard timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from workbench.errors import ReportError

__all__ = ["CHROMIUM_CANDIDATES", "find_chromium", "html_to_pdf"]

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium (Debian/Ubuntu: `apt-get install chromium`) or set WORKBENCH_CHROMIUM=/path/to/chrome"


def find_chromium() -> str | None:
    """Path of a Chromium-family browser: ``$WORKBENCH_CHROMIUM``, else the first candidate on PATH."""
    configured = os.environ.get("WORKBENCH_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: Path, pdf: Path, *, timeout: float = 120.0) -> Path:
    """Print ``html`` to ``pdf``.

    Returns:
        ``pdf``.

    Raises:
        ReportError: no browser found (with the install hint), the browser failed or timed out, or wrote no PDF.
    """
    browser = find_chromium()
    if browser is None:
        raise ReportError(f"cannot render PDF: no Chromium found; {INSTALL_HINT}")
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="workbench-chromium-") as profile:
        args = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
            "--disable-extensions", "--disable-default-apps", f"--user-data-dir={profile}",
            "--no-pdf-header-footer", "--virtual-time-budget=10000", "--window-size=700,1100",
            f"--print-to-pdf={pdf}", html.resolve().as_uri(),
        ]  # fmt: skip
        try:
            # fixed argument list, no shell; the only input is our own rendered report
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not finish printing {html.name} within {timeout:.0f} s") from None
    if not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise ReportError(f"Chromium wrote no PDF (exit {proc.returncode}): {tail[0]}")
    return pdf
