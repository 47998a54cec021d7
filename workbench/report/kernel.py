"""The notebook kernel of a run: papermill in a worker thread on an IPC-only kernel, stopped at once on Ctrl-C.

:func:`execute` runs papermill in a worker thread while the calling (main) thread follows the kernel's progress
file, so that Ctrl-C reaches the main thread at any moment; the kernel is then stopped by :func:`stop_kernels`
(its whole process group: the kernel and any worker processes of the analyses) before the interruption goes on.
The kernel listens on local IPC sockets only (:class:`IPCKernelManager`, started through
:mod:`workbench.report.kernel_launcher`, which keeps ipykernel's subprocess-output pipe off TCP too): nothing
listens on TCP while evidence is analysed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ReportError
from workbench.progress import Follower

__all__ = ["execute", "first_failure", "is_kernel_socket", "remove_kernel_sockets", "stop_kernels"]

#: the module the kernel is started from (ipykernel without its TCP pipe, see workbench.report.kernel_launcher)
LAUNCHER = "workbench.report.kernel_launcher"
#: kernel managers started by this process and not yet stopped (so that Ctrl-C can stop them)
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_MANAGER: type | None = None
#: loggers that report the kernel's death at length once it has been stopped on purpose
_NOISY = ("papermill", "nbclient", "traitlets", "jupyter_client", "asyncio")


def _ipc_kernel_manager() -> type:
    global _MANAGER
    if _MANAGER is None:
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import default

        class IPCKernelManager(AsyncKernelManager):
            """Kernel on local IPC sockets; registered so that Ctrl-C can stop it."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                _LIVE.add(self)

            @default("transport")
            def _default_transport(self) -> str:
                return "ipc"

            async def _async_interrupt_kernel(self) -> None:
                """No SIGINT when a clean shutdown follows: jupyter_client interrupts before every shutdown, and on a
                loaded machine the signal can land while the kernel is still finishing, which then prints
                "KeyboardInterrupt caught in kernel" on the run's stderr. A shutdown request follows anyway."""
                if self.shutting_down:
                    return
                await super()._async_interrupt_kernel()

            def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
                """ipykernel's command, started through the launcher that keeps its IOPub pipe off TCP."""
                cmd = super().format_kernel_cmd(extra_arguments)
                return [LAUNCHER if part == "ipykernel_launcher" else part for part in cmd]

        _MANAGER = IPCKernelManager
    return _MANAGER


def __getattr__(name: str) -> Any:  # lazy: jupyter_client is imported only when a report runs
    if name == "IPCKernelManager":
        return _ipc_kernel_manager()
    raise AttributeError(name)


def stop_kernels(grace: float = 2.0) -> int:
    """Stop every kernel this process started: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

    Returns:
        How many kernels were running.
    """
    stopped = 0
    for km in list(_LIVE):
        provisioner = getattr(km, "provisioner", None)
        proc = getattr(provisioner, "process", None)
        if proc is not None and proc.poll() is None:
            stopped += 1
            group = getattr(provisioner, "pgid", None) or proc.pid
            _signal_group(group, proc, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(group, proc, signal.SIGKILL)  # whatever is left of the group (workers included)
            with contextlib.suppress(Exception):
                proc.wait(timeout=grace)
        for cleanup in ("cleanup_connection_file", "cleanup_ipc_files"):
            with contextlib.suppress(Exception):  # best effort: files in the Jupyter runtime folder
                getattr(km, cleanup)()
        _LIVE.discard(km)
    return stopped


def _signal_group(group: int, proc: Any, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)


#: the IPC sockets of the notebook kernel, named by jupyter_client after its ``ip`` (``kernel-ipc``) and port
_KERNEL_SOCKET = re.compile(r"kernel-ipc-\d+")


def is_kernel_socket(path: Path) -> bool:
    """A socket the run's notebook kernel made in the output folder (``kernel-ipc-N``), left by an interrupted run."""
    import stat

    try:
        return bool(_KERNEL_SOCKET.fullmatch(path.name)) and stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False


def remove_kernel_sockets(out: Path) -> None:
    """Remove what is left of the kernel's IPC sockets in ``out`` (jupyter_client's cleanup is best effort)."""
    for entry in out.glob("kernel-ipc-*"):
        if is_kernel_socket(entry):
            with contextlib.suppress(OSError):
                entry.unlink()


def first_failure(executed: Path) -> ReportError | None:
    """The FIRST failing cell (papermill reports the last one; later failures usually follow from the first)."""
    import nbformat

    if not executed.exists():
        return None
    nb = nbformat.read(executed, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines = cell.source.strip().splitlines()
                first_line = lines[0] if lines else ""
                return ReportError(
                    f"notebook cell {cell.get('execution_count')} ({first_line!r}) raised "
                    f"{output.get('ename')}: {output.get('evalue')}",
                    cell_index=index,
                    ename=output.get("ename"),
                    evalue=output.get("evalue"),
                )
    return None


def execute(
    source: Path, executed: Path, parameters: Mapping[str, Any], cwd: Path, follower: Follower
) -> ReportError | None:
    """Execute ``source`` into ``executed`` with papermill; follow the kernel's progress until it ends.

    Returns:
        None when every cell ran; the first failing cell otherwise (also when the kernel died or could not start:
        whatever papermill saved is still rendered by the caller).

    Raises:
        KeyboardInterrupt: Ctrl-C; the kernel has been stopped.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from workbench.report.papermill_engine import register

    engine = register()

    box: dict[str, BaseException] = {}

    def work() -> None:
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=dict(parameters),
                cwd=str(cwd),
                progress_bar=False,
                kernel_name="python3",
                engine_name=engine,
                kernel_manager_class=f"{__name__}.IPCKernelManager",
                allow_errors=True,
                log_output=False,
            )
        except BaseException as exc:  # noqa: BLE001 - handed over to the calling thread, which decides
            box["error"] = exc

    thread = threading.Thread(target=work, name="papermill", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
            follower.poll()
    except KeyboardInterrupt:
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        stop_kernels()
        thread.join(timeout=5)
        raise
    follower.poll()
    exc = box.get("error")
    if exc is None:
        return None
    if isinstance(exc, PapermillExecutionError):
        return first_failure(executed) or ReportError(
            f"notebook cell {exc.exec_count} raised {exc.ename}: {exc.evalue}",
            cell_index=exc.cell_index,
            ename=exc.ename,
            evalue=exc.evalue,
        )
    return first_failure(executed) or ReportError(
        f"the notebook could not be executed: {type(exc).__name__}: {exc}", ename=type(exc).__name__, evalue=str(exc)
    )
