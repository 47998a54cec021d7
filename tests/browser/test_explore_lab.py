"""The explorers in a real browser: JupyterLab runs ``notebooks/explore.ipynb`` on the bundled tampered-weights case
in the system Chromium (Playwright), and an analyst's three moves are made and checked there: selecting a finding
shows its evidence, narrowing the timeline's range changes the event count and the table, a drift control re-runs
the drift analysis and changes the onset.

The server is started once for the module (127.0.0.1, a free port, a random token, an empty ``JUPYTER_CONFIG_DIR``
and fresh data, runtime and IPython folders: no user settings, no restored workspace; the venv's lab extensions and
``python3`` kernelspec are still found under its prefix), on a temporary copy of ``notebooks/`` beside the case (the
notebook's ``CASE_DIR`` stays valid and its outputs stay out of the repo), and stopped by its process group in a
``finally``. The page runs every cell from the Run menu once its kernel has settled; requests leaving 127.0.0.1 are
refused. A failure saves a screenshot (its path printed); the findings detail, the narrowed timeline and the tuned
drift explorer are always saved, and copied to ``/tmp/browser-shots/``. Skipped only when Chromium, JupyterLab or
Playwright is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASE = "tampered-weights"
CHROMIUM = Path("/usr/bin/chromium")
#: where the screenshots are copied for a person to look at
SHOTS = Path("/tmp/browser-shots")
#: how long the server may take to answer, and all cells to run (the investigation itself is ~5 s here)
START_S, RUN_S = 60, 120
#: what a step in the page may take (a widget redraw is a kernel round trip)
STEP_MS = 20_000
#: Chromium without its background services (TOOLCHAIN.md), headless
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--no-default-browser-check", "--disable-domain-reliability",
                 "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"]  # fmt: skip
#: JupyterLab settings of the fresh config folder: every cell kept in the page (no virtual scrolling, so off-screen
#: outputs can be found), the notebook's kernel started without the kernel-select dialog, no news or update check
#: (no outside request, no toast over the notebook)
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
NEVER_CHECK = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
#: the notebook, relative to the server's root folder
NOTEBOOK = "notebooks/explore.ipynb"

_missing = [str(CHROMIUM)] if not CHROMIUM.is_file() else []
_missing += [name for name in ("jupyterlab", "playwright") if importlib.util.find_spec(name) is None]
_reason = f"the real-browser test needs {', '.join(_missing)} (make system-deps; pip install -e '.[dev]')"
pytestmark = [pytest.mark.notebook, pytest.mark.skipif(bool(_missing), reason=_reason)]


# -------------------------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, method: str = "GET", body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """A call to the test's own server (``url`` from :meth:`Lab.url`): its JSON answer, None if it has none."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http://127.0.0.1 only)
        raw = answer.read()
    return json.loads(raw) if raw else None


class Lab:
    """A JupyterLab server of the test's own: ``url(path)`` gives an address with the token, ``stop()`` ends it."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        shutil.copytree(ROOT / "notebooks", self.root / "notebooks", ignore=shutil.ignore_patterns(".ipynb*"))
        shutil.copytree(ROOT / "evidence-samples" / CASE, self.root / "evidence-samples" / CASE)
        folders = {name: base / name for name in ("config", "data", "runtime", "ipython", "tmp")}
        for folder in folders.values():
            folder.mkdir()
        for name, values in LAB_SETTINGS.items():
            path = folders["config"] / "lab" / "user-settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.runtime, self.tmp = folders["runtime"], folders["tmp"]
        self.port, self.token = _free_port(), secrets.token_hex(24)
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(folders["config"]), "JUPYTER_DATA_DIR": str(folders["data"]),
               "JUPYTER_RUNTIME_DIR": str(self.runtime), "IPYTHONDIR": str(folders["ipython"]),
               # the notebook's empty OUT_DIR is a new temporary folder: this one, so the test finds its outputs
               "TMPDIR": str(self.tmp), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
        self.log = base / "server.log"
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
                   f"--LabApp.check_for_updates_class={NEVER_CHECK}"]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(command, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def url(self, path: str, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in {**query, "token": self.token}.items())
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?{params}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if "started" in _call(self.url("api/status")):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"JupyterLab did not answer within {START_S} s:\n{self.log_tail()}")

    def settled_kernel(self, wait_ms: Callable[[float], None]) -> dict[str, Any]:
        """Wait until the server runs exactly one kernel, idle, with the page connected, and the same one a second
        later (right after the page loads, JupyterLab may still replace the kernel it started); check it runs this
        venv's Python. ``wait_ms`` pauses (the page's, so that Playwright keeps serving it). Returns its model."""
        deadline, last = time.monotonic() + START_S, None
        while time.monotonic() < deadline:
            try:
                kernels = self.kernels()
            except urllib.error.HTTPError as exc:
                # jupyter_server answers 500 (KeyError 'last_activity') while a kernel it lists is still starting,
                # which a loaded machine makes likely: ask again a second later
                if exc.code < 500:
                    raise
                last = None
                wait_ms(1000)
                continue
            ready = len(kernels) == 1 and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"] >= 1
            if ready and last is not None and last["id"] == kernels[0]["id"]:
                commands = [c.split() for c in _commands_mentioning(str(self.runtime)).values()]
                assert len(commands) == 1 and commands[0][0] == sys.executable, commands
                assert "ipykernel_launcher" in commands[0], commands
                return kernels[0]
            last = kernels[0] if ready else None
            wait_ms(1000)
        raise TimeoutError(f"no single idle kernel after {START_S} s: {self.kernels()}\n{self.log_tail()}")

    def kernels(self) -> list[dict[str, Any]]:
        return _call(self.url("api/kernels"))

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Shut the kernels down through the server, then end the server's process group (TERM, then KILL), then
        any kernel still running on one of this server's connection files (found by that path, ended by PID)."""
        with contextlib.suppress(OSError, ValueError):
            for kernel in self.kernels():
                _call(self.url(f"api/kernels/{kernel['id']}"), "DELETE")
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        for pid in _commands_mentioning(str(self.runtime)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _commands_mentioning(needle: str) -> dict[int, str]:
    """``{pid: command line}`` of the processes whose command line contains ``needle`` (a kernel of this server:
    ``-f <runtime folder>/kernel-….json``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if needle in command:
                    found[int(entry.name)] = command
    return found


# -------------------------------------------------------------------------------------------------- the page
def _shot(page: Any, folder: Path, name: str, element: Any = None) -> Path:
    """A screenshot of the page (``element`` scrolled to the top of the notebook first) in ``folder``, also copied
    to :data:`SHOTS`."""
    path = folder / f"{name}.png"
    if element is not None:
        element.evaluate("e => e.scrollIntoView({block: 'start'})", timeout=STEP_MS)
    page.screenshot(path=str(path))
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


@contextlib.contextmanager
def _shot_on_failure(page: Any, folder: Path, name: str, lab: Lab | None = None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            print(f"screenshot of the failure: {_shot(page, folder, f'failed-{name}')}")
        if lab is not None:
            print(f"JupyterLab log ({lab.log}):\n{lab.log_tail()}")
        raise


def _text(locator: Any) -> str:
    return " ".join(locator.inner_text(timeout=STEP_MS).split())


def _leading_number(text: str) -> int:
    match = re.match(r"\s*([\d,]+)", text)
    assert match, f"no number at the start of {text!r}"
    return int(match.group(1).replace(",", ""))


def _wait_text_change(page: Any, selector: str, before: str) -> str:
    """Wait until the (whitespace-normalised) text of ``selector`` is no longer ``before``; return it."""
    page.wait_for_function(
        "([sel, before]) => { const e = document.querySelector(sel);"
        " return e && e.innerText.split(/\\s+/).filter(Boolean).join(' ') !== before; }",
        arg=[selector, before], timeout=STEP_MS,
    )  # fmt: skip
    return _text(page.locator(selector))


def _drag(page: Any, handle: str, track: str, fraction: float) -> None:
    """Drag a slider's ``handle`` with the mouse to ``fraction`` of its ``track``'s width: one change on release
    (arrow keys would send one per press, each a kernel round trip)."""
    knob = page.locator(handle)
    knob.scroll_into_view_if_needed(timeout=STEP_MS)
    start, bar = knob.bounding_box(timeout=STEP_MS), page.locator(track).bounding_box(timeout=STEP_MS)
    assert start and bar, (handle, track)
    y = start["y"] + start["height"] / 2
    page.mouse.move(start["x"] + start["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(bar["x"] + fraction * bar["width"], y, steps=10)
    page.mouse.up()


_IDLE = ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']"
#: the code cells' prompts: "[ ]:" never run, "[*]:" queued or running, "[3]:" ran
_PROMPTS = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"


def _run_all(page: Any) -> None:
    """Run → Run All Cells from the menu bar once the notebook's kernel is idle, then wait until no cell is queued
    or running (a cell that raises leaves the ones after it unrun: the caller checks the counts). The menu is tried
    again if no cell started: right after the page loads, the command may not be wired yet."""
    page.locator(_IDLE).wait_for(timeout=RUN_S * 1000)
    for attempt in range(3):
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:visible", has_text=re.compile(r"^Run All Cells")).click()
        with contextlib.suppress(Exception):
            page.wait_for_function(f"() => {_PROMPTS}.some(t => t !== '[ ]:')", timeout=5000)
            break
        print(f"Run All Cells started no cell (attempt {attempt + 1})")
    page.wait_for_function(f"() => {_PROMPTS}.every(t => t !== '[*]:')", timeout=RUN_S * 1000)
    page.locator(_IDLE).wait_for(timeout=STEP_MS)


def _unrun(page: Any) -> list[str]:
    """The first line of each code cell whose prompt shows no execution count."""
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-CodeCell')]"
        ".filter(c => !/^\\[\\d+\\]:$/.test(c.querySelector('.jp-InputPrompt').textContent.trim()))"
        ".map(c => c.querySelector('.jp-InputArea-editor').innerText.split('\\n')[0])"
    )  # fmt: skip


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """``{"page", "lab", "shots", "findings", "unrun", "blocked"}``: explore.ipynb run in JupyterLab (to its end,
    unless a cell raised: ``unrun`` lists the cells left without an execution count)."""
    from playwright.sync_api import sync_playwright

    base = tmp_path_factory.mktemp("lab")
    shots = base / "shots"
    shots.mkdir()
    shutil.rmtree(SHOTS, ignore_errors=True)  # this run's screenshots only
    lab = Lab(base)
    blocked: list[str] = []
    try:
        lab.wait_ready()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})

                def refuse(route: Any) -> None:
                    blocked.append(route.request.url)
                    route.abort()

                context.route(re.compile(rf"^(?!http://127\.0\.0\.1:{lab.port}/)"), refuse)  # only our server
                page = context.new_page()
                with _shot_on_failure(page, shots, "run-all", lab):
                    page.goto(lab.url(f"lab/tree/{NOTEBOOK}"), timeout=START_S * 1000)
                    page.locator(_IDLE).wait_for(timeout=START_S * 1000)
                    lab.settled_kernel(page.wait_for_timeout)
                    _run_all(page)
                    found = sorted(lab.tmp.glob("*/findings.json"))
                    assert len(found) == 1, f"the run's findings.json under {lab.tmp}: {found}; unrun: {_unrun(page)}"
                yield {"page": page, "lab": lab, "shots": shots, "blocked": blocked, "unrun": _unrun(page),
                       "findings": json.loads(found[0].read_text())["findings"]}  # fmt: skip
            finally:
                browser.close()
    finally:
        lab.stop()


# -------------------------------------------------------------------------------------------------- the tests
def test_every_cell_ran_without_error(session):
    page, lab = session["page"], session["lab"]
    with _shot_on_failure(page, session["shots"], "errors"):
        page.keyboard.press("Control+s")  # File → Save: the outputs as the page has them, read back from the disk
        page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
                               timeout=STEP_MS)  # fmt: skip
        saved = json.loads((lab.root / NOTEBOOK).read_text())
        code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
        errors = [("".join(cell["source"]), out["ename"], out["evalue"]) for cell in code for out in cell["outputs"]
                  if out["output_type"] == "error"]  # fmt: skip
        assert errors == []
        assert session["unrun"] == [], "cells left without an execution count"
        assert all(cell["execution_count"] and cell["outputs"] for cell in code[2:]), "a call's cell shows nothing"
        assert session["blocked"] == [], "the page asked for something outside 127.0.0.1"


def test_selecting_a_finding_shows_its_evidence(session):
    page, findings = session["page"], session["findings"]
    listing, detail = page.locator(".wb-findings-select select"), page.locator(".wb-finding-detail")
    with _shot_on_failure(page, session["shots"], "findings"):
        listing.wait_for(timeout=STEP_MS)
        labels = [" ".join(t.split()) for t in listing.locator("option").all_inner_texts()]
        assert len(labels) >= 2, labels
        first = _text(detail)
        listing.select_option(index=1)
        shown = _wait_text_change(page, ".wb-finding-detail", first)
        severity, title = labels[1].split(" ", 1)
        title = title.rstrip("…")
        candidates = [f for f in findings if f["severity"].upper() == severity and f["title"].startswith(title)]
        chosen = [f for f in candidates if f["id"] in shown]
        assert len(chosen) == 1, (labels[1], [f["id"] for f in candidates], shown[:400])
        finding = chosen[0]
        assert " ".join(finding["title"].split()) in shown
        assert "Evidence" in shown
        scalars = {k: v for k, v in finding["evidence"].items() if not isinstance(v, list | tuple | dict)}
        assert scalars and all(" ".join(str(v).split()) in shown for v in scalars.values()), (scalars, shown[:800])
        page.locator(_IDLE).wait_for(timeout=STEP_MS)
        _shot(page, session["shots"], "findings-detail", listing)


def test_timeline_range_narrows_the_events(session):
    page = session["page"]
    count = ".wb-timeline-count"
    with _shot_on_failure(page, session["shots"], "timeline"):
        page.locator(count).wait_for(timeout=STEP_MS)
        before = _text(page.locator(count))
        total = _leading_number(before)
        _drag(page, ".wb-timeline-range .noUi-handle-lower", ".wb-timeline-range .noUi-target", 0.4)
        after = _wait_text_change(page, count, before)
        page.locator(_IDLE).wait_for(timeout=STEP_MS)  # the callback that wrote the count has ended
        kept = _leading_number(after)
        assert 0 < kept < total, (before, after)
        assert " to " in after, after  # the count line names the range once it is narrowed
        explorer = page.locator(".wb-explorer", has=page.locator(".wb-timeline-range"))
        assert f"({kept:,} rows)" in _text(explorer.locator(".wb-pager")), "the event table does not follow"
        _shot(page, session["shots"], "timeline", explorer)


def test_drift_controls_rerun_the_analysis(session):
    page = session["page"]
    onset, status = ".wb-drift-onset", ".wb-drift-status"
    with _shot_on_failure(page, session["shots"], "drift"):
        window, alpha = page.locator(".wb-drift-window select"), page.locator(".wb-drift-alpha select")
        window.wait_for(timeout=STEP_MS)
        first = _text(page.locator(onset))
        assert "Onset" in first and "windows show drift" in first, first  # the run's own analysis found the onset
        # a wider window: the per-window verdicts are recomputed on the loaded predictions, the onset line says so
        wider = next(label for label in ("7d", "12h") if label != window.input_value())
        window.select_option(label=wider)
        by_window = _wait_text_change(page, onset, first)
        page.locator(_IDLE).wait_for(timeout=STEP_MS)
        assert f" {wider} windows show drift" in by_window, by_window
        assert "re-run in" in _text(page.locator(status)), "the window change did not re-run the drift analysis"
        # a stricter significance than the permutation test can reach (p >= 0.005): the change point and its onset go
        alpha.select_option(label="0.001")
        strict = _wait_text_change(page, onset, by_window)
        page.locator(_IDLE).wait_for(timeout=STEP_MS)
        assert "No onset" in strict and "alpha 0.001" in strict and "Onset " not in strict, strict
        _shot(page, session["shots"], "drift", page.locator(".wb-explorer", has=page.locator(onset)))
