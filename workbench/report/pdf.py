"""PDF from the offline HTML report, printed by headless Chromium (A4, vector, figures at page width).

nbconvert's webpdf needs a browser download and prints US Letter; LaTeX drops plotly figures. Chromium prints the
same HTML the reviewers open, with the page size from the template's ``@page`` rule and a ``beforeprint`` hook
that lays figures out at printable width. Chromium runs with a fresh profile, under a hard timeout (its whole
process group is killed when it expires), and off the network in two layers:

* **Flags** (:data:`OFFLINE_FLAGS`): every background service that phones home is switched off, and the ones that
  ignore ``--disable-background-networking`` are pointed where no socket can be opened: the sign-in cookie check
  (``ListAccounts``) at a port Chromium itself refuses (``127.0.0.1:9``), the on-demand component updater at a
  non-network URL, and no host name resolves at all (``--host-resolver-rules``), so no DNS query leaves either.
  Measured on Chromium 156 with ``strace -f`` (``tests/test_no_network.py``): no TCP connection and no datagram
  to any address; the one ``connect()`` left is the network stack's IPv6 route probe on a UDP socket, which sends
  nothing (it asks the kernel for a route).
* **A network namespace without interfaces** (``unshare -n`` as root, ``unshare -rn`` through a user namespace
  otherwise), detected once per process. Inside it there is no route anywhere, not even loopback. Where the
  platform refuses namespaces, Chromium runs with the flags alone and a warning says so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ReportError

__all__ = [
    "CHROMIUM_CANDIDATES",
    "OFFLINE_FLAGS",
    "Isolation",
    "chromium_command",
    "find_chromium",
    "html_to_pdf",
    "network_isolation",
]

log = logging.getLogger(__name__)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium (Debian/Ubuntu: `apt-get install chromium`) or set WORKBENCH_CHROMIUM=/path/to/chrome"

#: Chromium features that reach Google services on their own (translation, optimisation hints and on-device model
#: downloads, media router, autofill, network time, certificate-transparency and other component updates).
_OFF_FEATURES = (
    "Translate", "OptimizationHints", "OptimizationHintsFetching", "OptimizationTargetPrediction",
    "OptimizationGuideModelDownloading", "OptimizationGuideManifestBroker", "MediaRouter",
    "AutofillServerCommunication", "NetworkTimeServiceQuerying", "CertificateTransparencyComponentUpdater",
    "InterestFeedContentSuggestions",
)  # fmt: skip

#: Every switch that keeps Chromium off the network while it prints a local file.
OFFLINE_FLAGS: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-component-extensions-with-background-pages",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-field-trial-config",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--no-proxy-server",  # never a proxy from the environment
    "--password-store=basic",  # no keyring over D-Bus
    "--disable-features=" + ",".join(_OFF_FEATURES),
    # on-demand component updates ignore --disable-component-update: point the updater at a non-network URL
    "--component-updater=url-source=chrome://no-network/",
    # the sign-in cookie check (ListAccounts) runs even with sign-in off: port 9 is refused before any socket
    "--gaia-url=http://127.0.0.1:9/",
    # whatever is left resolves no host name: no DNS query, no connection by name
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

#: namespace launchers tried in order: root can make a network namespace; others need a user namespace too
_UNSHARE_VARIANTS = (("-n",), ("-rn",))


@dataclass(frozen=True, slots=True)
class Isolation:
    """How Chromium is kept off the network on this machine.

    Attributes:
        prefix: the command that runs Chromium in a network namespace without interfaces (empty: flags only).
        note: what was decided and why (shown in the warning when there is no namespace).
    """

    prefix: tuple[str, ...]
    note: str

    @property
    def namespaced(self) -> bool:
        return bool(self.prefix)


@functools.cache
def network_isolation() -> Isolation:
    """Detect, once per process, whether Chromium can run in a network namespace without interfaces.

    Tries ``unshare -n`` then ``unshare -rn`` on a no-op command. ``WORKBENCH_CHROMIUM_NETNS=0`` turns the
    namespace off (flags only).

    Returns:
        The :class:`Isolation` to use.
    """
    if os.environ.get("WORKBENCH_CHROMIUM_NETNS", "").strip() == "0":
        return Isolation((), "network namespace turned off by WORKBENCH_CHROMIUM_NETNS=0")
    unshare = shutil.which("unshare")
    if unshare is None:
        return Isolation((), "util-linux `unshare` is not installed")
    true = shutil.which("true") or "/bin/true"
    reasons = []
    for variant in _UNSHARE_VARIANTS:
        command = (unshare, *variant, "--")
        try:
            # fixed argument list, no shell: does this platform let us create a network namespace?
            proc = subprocess.run([*command, true], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"unshare {' '.join(variant)}: {exc}")
            continue
        if proc.returncode == 0:
            return Isolation(command, f"network namespace without interfaces (unshare {' '.join(variant)})")
        reasons.append(f"unshare {' '.join(variant)}: {(proc.stderr or '').strip() or f'exit {proc.returncode}'}")
    return Isolation((), "no network namespace allowed here (" + "; ".join(reasons) + ")")


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


def chromium_command(browser: str, html: Path, pdf: Path, profile: Path) -> list[str]:
    """The Chromium command line that prints ``html`` to ``pdf`` with a fresh ``profile``, off the network."""
    return [
        browser, "--headless", "--no-sandbox", "--disable-gpu", *OFFLINE_FLAGS, f"--user-data-dir={profile}",
        "--no-pdf-header-footer", "--generate-pdf-document-outline", "--virtual-time-budget=10000",
        "--window-size=700,1100",
        f"--print-to-pdf={pdf}", html.resolve().as_uri(),
    ]  # fmt: skip


def html_to_pdf(html: Path, pdf: Path, *, timeout: float = 120.0, isolate: bool = True) -> Path:
    """Print ``html`` to ``pdf``.

    Args:
        html: the offline report.
        pdf: where the PDF goes (replaced).
        timeout: seconds before Chromium and every process it started are killed.
        isolate: run Chromium in a network namespace when the platform allows (:func:`network_isolation`);
            without one a warning is logged and the flags alone keep it offline.

    Returns:
        ``pdf``.

    Raises:
        ReportError: no browser found (with the install hint), the browser failed or timed out, or wrote no PDF.
    """
    browser = find_chromium()
    if browser is None:
        raise ReportError(f"cannot render PDF: no Chromium found; {INSTALL_HINT}")
    isolation = network_isolation() if isolate else Isolation((), "network namespace not requested")
    if isolate and not isolation.namespaced:
        log.warning("Chromium prints the PDF without a network namespace (%s); its network is off by flags only",
                    isolation.note)  # fmt: skip
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="workbench-chromium-") as profile:
        args = [*isolation.prefix, *chromium_command(browser, html, pdf, Path(profile))]
        # fixed argument list, no shell; the only input is our own rendered report
        proc = subprocess.Popen(  # noqa: S603
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ReportError(f"Chromium did not finish printing {html.name} within {timeout:.0f} s") from None
        finally:
            _kill_group(proc)  # helpers Chromium left behind (zygote, crashpad) go with it
    if not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise ReportError(f"Chromium wrote no PDF (exit {proc.returncode}): {tail[0]}")
    return pdf


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group Chromium leads (its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
