"""Loader for ``processes.txt``: ``ps aux`` output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import INT64_MAX, LoadContext, Loaded, Loader, is_regular_file, iter_lines, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["ProcessesLoader"]

_HEADER = re.compile(r"^\s*USER\s+PID\s+%CPU\s+%MEM\s+VSZ\s+RSS\s+TTY?\s+STAT\s+START(?:ED)?\s+TIME\s+COMMAND\s*$")
#: Cumulative CPU time: ``0:05``, ``12:34``, ``1-02:03:04``, ``10:11:12``.
_CPU_TIME = re.compile(r"^(?:\d+-)?\d+:\d{2}(?::\d{2})?$")
_NAMES = re.compile(r"^(processes|ps|ps[-_]aux)([._-][\w.-]*)?\.txt$", re.IGNORECASE)


def _fields(text: str) -> list[str] | None:
    """The 11 ``ps aux`` fields of a line; a START with a space (``Nov 19``) is joined back. None if too short."""
    parts = text.split(None, 10)
    if len(parts) < 10:
        return None
    if not _CPU_TIME.match(parts[9]) and len(parts) == 11:
        rest = parts[10].split(None, 1)
        if _CPU_TIME.match(rest[0]):
            parts = [*parts[:8], f"{parts[8]} {parts[9]}", rest[0], rest[1] if len(rest) > 1 else ""]
    if len(parts) == 10:
        parts.append("")
    return parts


class ProcessesLoader(Loader):
    """The process list captured with ``ps aux`` (Linux procps; BSD ``TT``/``STARTED`` headers accepted).

    START is kept as printed (``09:05``, ``Nov19``, ``2025``): it has no date or year to anchor it.

    Columns:
        line (int): 1-based line number.
        user (str): owner (may be a number or cut with ``+`` by ps).
        pid (int): process id.
        cpu_pct (float): %CPU.
        mem_pct (float): %MEM.
        vsz_kb (int): virtual size in KiB.
        rss_kb (int): resident set size in KiB.
        tty (str): controlling terminal, ``?`` for none.
        stat (str): process state codes.
        start (str): start time or date as printed.
        time (str): cumulative CPU time.
        command (str): full command line (may contain spaces).
    """

    name: ClassVar[str] = "processes"
    columns: ClassVar[dict[str, str]] = {
        "line": "int",
        "user": "str",
        "pid": "int",
        "cpu_pct": "float",
        "mem_pct": "float",
        "vsz_kb": "int",
        "rss_kb": "int",
        "tty": "str",
        "stat": "str",
        "start": "str",
        "time": "str",
        "command": "str",
    }

    def detect(self, path: Path) -> bool:
        """A ``ps aux`` header on the first line, or a ps-like name whose first line is a ps row."""
        if not is_regular_file(path):
            return False
        lines = sniff_lines(path, limit=2)
        if lines and _HEADER.match(lines[0]):
            return True
        if not _NAMES.match(path.name):
            return False
        return not lines or isinstance(self._row(lines[0], 1), dict)

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per process; header lines are skipped; a line that is not a ps row is a warning."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        rejected = 0
        header_seen = False
        for number, text in iter_lines(path, ctx, warnings):
            if not text.strip():
                continue
            if _HEADER.match(text):
                header_seen = True
                continue
            row = self._row(text, number)
            if isinstance(row, str):
                warnings.append(EvidenceWarning(ctx.relpath, number, row))
                rejected += 1
            else:
                rows.append(row)
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no 'ps aux' row in the file")
        if rows and not header_seen:
            warnings.append(EvidenceWarning(ctx.relpath, None, "no 'ps aux' header; ps aux column order assumed"))
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings)

    @staticmethod
    def _row(text: str, number: int) -> dict | str:
        """The row dict, or the reason the line is not a ps aux row."""
        parts = _fields(text)
        if parts is None:
            return "fewer than 10 columns"
        user, pid, cpu, mem, vsz, rss, tty, stat, start, cputime, command = parts
        try:
            row = {
                "line": number,
                "user": user,
                "pid": int(pid),
                "cpu_pct": float(cpu),
                "mem_pct": float(mem),
                "vsz_kb": int(vsz),
                "rss_kb": int(rss),
            }
        except ValueError:
            return "PID, %CPU, %MEM, VSZ or RSS is not a number"
        if not all(0 <= row[k] <= INT64_MAX for k in ("pid", "vsz_kb", "rss_kb")):
            return "PID, VSZ or RSS out of range"
        if not _CPU_TIME.match(cputime):
            return f"bad TIME column {cputime!r:.40}"
        return {**row, "tty": tty, "stat": stat, "start": start, "time": cputime, "command": command}
