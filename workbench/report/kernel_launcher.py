"""The kernel a run executes its notebook in: ipykernel with no TCP socket at all.

:class:`workbench.report.kernel.IPCKernelManager` puts the kernel's channels on IPC sockets, but ipykernel also binds
a PULL socket on ``tcp://127.0.0.1`` for the output of forked subprocesses (its IOPub "pipe"). Nothing in a run
forks and prints into the notebook, so this launcher starts ipykernel with that pipe off: while evidence is
analysed, nothing listens on TCP. Started as ``python -m workbench.report.kernel_launcher -f CONNECTION_FILE``.
"""

from __future__ import annotations

from typing import Any


def _without_tcp_pipe() -> None:
    from ipykernel import iostream

    original = iostream.IOPubThread.__init__

    def init(self: Any, socket: Any, pipe: bool = False, session: Any = False) -> None:
        original(self, socket, pipe=False, session=session)

    iostream.IOPubThread.__init__ = init


def main() -> None:
    """Start the kernel (ipykernel's own entry point) without its TCP pipe."""
    _without_tcp_pipe()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
