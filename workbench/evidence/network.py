"""Loader for ``network.txt``: ``ss -tunap`` output (sockets with their owning processes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, iter_lines, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["NetworkLoader", "split_endpoint"]

_HEADER = re.compile(
    r"^\s*(?P<netid>Netid\s+)?State\s+Recv-Q\s+Send-Q\s+Local\s+Address:Port\s+Peer\s+Address:Port(?:\s*Process)?\s*$"
)
_NETIDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "sctp", "mptcp", "v_str", "v_dgr"}
#: One owner in ``users:(("python3",pid=1234,fd=5),("python3",pid=1240,fd=5))``.
_USER = re.compile(r'\("(?P<name>(?:[^"\\]|\\.)*)",pid=(?P<pid>\d+),fd=(?P<fd>\d+)\)')
_NAMES = re.compile(r"^(network|ss|ss[-_]tunap|sockets|connections)([._-][\w.-]*)?\.txt$", re.IGNORECASE)


def _is_uint(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def split_endpoint(text: str) -> tuple[str, int | None] | None:
    """``10.0.0.5:443`` / ``[::1]:631`` / ``*:*`` / ``:::22`` / ``fe80::1%eth0:546`` -> (address, port or None).

    ``*`` as a port gives None; returns None when the text has no ``:port`` or a non-numeric port.
    """
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            return None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            return None
    if port == "*":
        return host, None
    if not _is_uint(port) or int(port) > 65535:
        return None
    return host, int(port)


class NetworkLoader(Loader):
    """Sockets captured with ``ss -tunap`` (TCP and UDP, numeric, all states, with processes).

    Columns:
        line (int): 1-based line number.
        netid (str): ``tcp``/``udp``... (null when ss printed no Netid column).
        state (str): ``ESTAB``, ``LISTEN``, ``UNCONN``, ``TIME-WAIT``...
        recv_q (int): Recv-Q.
        send_q (int): Send-Q.
        local_addr (str): local address without brackets (``0.0.0.0``, ``::``, ``*``, ``fe80::1%eth0``).
        local_port (int): local port, null for ``*``.
        peer_addr (str): peer address without brackets.
        peer_port (int): peer port, null for ``*``.
        process_name (str): first owning process name, null when ss showed none.
        pid (int): its pid, or null.
        process (str): the raw Process column (all owners), or null.
    """

    name: ClassVar[str] = "network"
    columns: ClassVar[dict[str, str]] = {
        "line": "int",
        "netid": "str",
        "state": "str",
        "recv_q": "int",
        "send_q": "int",
        "local_addr": "str",
        "local_port": "int",
        "peer_addr": "str",
        "peer_port": "int",
        "process_name": "str",
        "pid": "int",
        "process": "str",
    }

    def detect(self, path: Path) -> bool:
        """An ``ss`` header on the first line, or an ss-like name whose first line is a socket row."""
        if not is_regular_file(path):
            return False
        lines = sniff_lines(path, limit=2)
        if lines and _HEADER.match(lines[0]):
            return True
        if not _NAMES.match(path.name):
            return False
        return not lines or isinstance(self._row(lines[0], 1, True), dict)

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per socket; header lines are skipped; a line that is not a socket row is a warning."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        rejected = 0
        has_netid = True
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            if header := _HEADER.match(text):
                has_netid = bool(header.group("netid"))
                continue
            row = self._row(text, number, has_netid)
            if isinstance(row, str):
                warnings.append(EvidenceWarning(ctx.relpath, number, row))
                rejected += 1
            else:
                rows.append(row)
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no 'ss' socket row in the file")
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)

    @staticmethod
    def _row(text: str, number: int, has_netid: bool) -> dict | str:
        """The row dict, or the reason the line is not an ``ss`` socket row."""
        width = 6 if has_netid else 5
        parts = text.split(None, width)
        if len(parts) < width:
            return f"fewer than {width} columns"
        netid = parts.pop(0) if has_netid else None
        state, recv_q, send_q, local, peer = parts[:5]
        process = parts[5].strip() if len(parts) > 5 else None
        if netid is not None and netid.lower() not in _NETIDS:
            return f"unknown Netid {netid!r}"
        if not (_is_uint(recv_q) and _is_uint(send_q)):
            return "Recv-Q or Send-Q is not a number"
        loc, rem = split_endpoint(local), split_endpoint(peer)
        if loc is None or rem is None:
            return f"bad address:port ({local!r} -> {peer!r})"
        owner = _USER.search(process) if process else None
        if process and owner is None:
            return f"unrecognised Process column {process[:80]!r}"
        return {
            "line": number,
            "netid": netid,
            "state": state,
            "recv_q": int(recv_q),
            "send_q": int(send_q),
            "local_addr": loc[0],
            "local_port": loc[1],
            "peer_addr": rem[0],
            "peer_port": rem[1],
            "process_name": owner.group("name").replace('\\"', '"') if owner else None,
            "pid": int(owner.group("pid")) if owner else None,
            "process": process,
        }
