"""The notebook kernel's IPC sockets left in an output folder by an interrupted run are the workbench's own."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from workbench.case import Case
from workbench.errors import CustodyError
from workbench.report import kernel
from workbench.report.runner import _check_out_dir


def _socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    return s


def test_leftover_kernel_sockets_do_not_block_force_and_are_removed(tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    (case_dir / "logs").mkdir(parents=True)
    (case_dir / "logs" / "ci.log").write_text("hello\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.json").write_text("{}")
    sockets = [_socket(out / f"kernel-ipc-{n}") for n in (1, 2)]
    try:
        assert kernel.is_kernel_socket(out / "kernel-ipc-1")
        assert _check_out_dir(out, Case.open(case_dir), force=True) is True
        (out / "kernel-ipc-3").write_text("a user's file, not a socket")
        with pytest.raises(CustodyError, match=r"kernel-ipc-3"):
            _check_out_dir(out, Case.open(case_dir), force=True)
        kernel.remove_kernel_sockets(out)
        assert sorted(p.name for p in out.iterdir()) == ["findings.json", "kernel-ipc-3"]
    finally:
        for s in sockets:
            s.close()
