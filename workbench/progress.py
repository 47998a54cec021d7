"""Progress of long work: one line per stage with its duration, and byte counters for large files.

The run reports through a :class:`Progress`; where the reports go is the caller's choice: a function taking one
record (the CLI's :class:`ConsoleSink` prints to stderr), nothing (:data:`SILENT`, the default in the library and in
tests), or a JSON-lines file (:class:`FileSink`) that another process follows with a :class:`Follower`, as the CLI
does while the notebook kernel runs.

Records (one JSON object per line in a file sink):

* ``{"stage": name, "seconds": s}`` when a stage ends, with ``"interrupted": true`` (Ctrl-C) or ``"failed": "Error
  name"`` when it ended by an exception, and ``"detail": text`` when the stage gave one;
* ``{"stage": name, "started": true, "detail": text}`` when an announced stage starts (the notebook: its own stages
  follow);
* ``{"task": label, "done": n, "total": t}`` while a large file is hashed or compared (``done == total`` last).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["BAR_MIN_BYTES", "SILENT", "ConsoleSink", "FileSink", "Follower", "Progress", "tee"]

#: below this many bytes, no byte counter is reported
BAR_MIN_BYTES = 256 * 1024 * 1024
_MIN_INTERVAL = 0.2


def _shown(text: str) -> str:
    """Labels may name evidence files: secrets redacted, control and bidi characters shown as escapes."""
    from workbench.termsafe import shown

    return shown(text)


Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class Progress:
    """Where stages and byte counters are reported (thread-safe).

    Attributes:
        emit: called with one record (a dict) per report; None: silent.
    """

    emit: Emit | None = None
    _last: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def stage(self, name: str, *, announce: str | None = None) -> Iterator[dict[str, Any]]:
        """Time a stage; report it when it ends (also when it raises, saying how).

        Args:
            name: the stage's name (``custody intake``, ``notebook``, an analysis title...).
            announce: also report the start, with this text (for a long stage whose inner stages follow).

        Yields:
            A dict the caller may fill with ``detail`` (one short text shown with the duration).
        """
        if announce is not None:
            self._send({"stage": name, "started": True, "detail": announce})
        start = time.perf_counter()
        info: dict[str, Any] = {}
        outcome: dict[str, Any] = {}
        try:
            yield info
        except KeyboardInterrupt:
            outcome = {"interrupted": True}
            raise
        except Exception as exc:
            outcome = {"failed": type(exc).__name__}
            raise
        finally:
            detail = {"detail": str(info["detail"])} if info.get("detail") else {}
            self._send({"stage": name, "seconds": round(time.perf_counter() - start, 3), **outcome, **detail})

    def task(self, label: str, done: int, total: int) -> None:
        """Report bytes done of a large file (throttled; only for totals of :data:`BAR_MIN_BYTES` or more)."""
        if self.emit is None or total < BAR_MIN_BYTES:
            return
        with self._lock:
            now = time.monotonic()
            if done < total and now - self._last.get(label, 0.0) < _MIN_INTERVAL:
                return
            self._last[label] = now
            self.emit({"task": label, "done": int(done), "total": int(total)})

    def forward(self, record: dict[str, Any]) -> None:
        """Pass on a record another process reported (a :class:`Follower` of the kernel's file)."""
        self._send(record)

    def _send(self, record: dict[str, Any]) -> None:
        if self.emit is not None:
            with self._lock:
                self.emit(record)


SILENT = Progress()


def tee(*sinks: Emit) -> Emit:
    """One emit function that passes every record to each of ``sinks`` in turn."""

    def emit(record: dict[str, Any]) -> None:
        for sink in sinks:
            sink(record)

    return emit


class FileSink:
    """Appends progress records to a JSON-lines file (one ``write`` per record, flushed)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __call__(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


class Follower:
    """Reads the records another process appends to a :class:`FileSink` file, as they arrive.

    :meth:`poll` reads what is new (complete lines only; a line being written waits for the next poll) and passes
    each record to ``emit``; a line that is not a JSON object is skipped.
    """

    def __init__(self, path: Path, emit: Emit) -> None:
        self.path = Path(path)
        self.emit = emit
        self._offset = 0
        self._tail = b""

    def poll(self) -> int:
        """Emit the records appended since the last poll; returns how many."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return 0
        self._offset += len(data)
        *lines, self._tail = (self._tail + data).split(b"\n")
        count = 0
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.emit(record)
                count += 1
        return count


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class ConsoleSink:
    """Prints progress for a person: one line per stage on ``stream``, and a bar for byte counters on a terminal.

    Args:
        stream: where to print (default ``sys.stderr``).
        bar: draw byte counters as a bar updated in place (carriage return); default: when ``stream`` is a
            terminal. Without a bar, byte counters are not printed at all.
    """

    WIDTH = 28
    LABEL = 50

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self._drawn = 0
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            if "task" in record:
                if self.bar:
                    self._draw(record)
                return
            if "stage" in record:
                self._line(self.format_stage(record))

    @staticmethod
    def format_stage(record: dict[str, Any]) -> str:
        """The line printed for a stage record."""
        name = _shown(str(record.get("stage")))
        if record.get("started"):
            detail = _shown(str(record.get("detail") or ""))
            return f"{name}: started{f' ({detail})' if detail else ''}"
        seconds = float(record.get("seconds") or 0.0)
        detail = _shown(str(record.get("detail") or ""))
        if record.get("interrupted"):
            return f"{name}: interrupted after {seconds:.2f} s"
        if record.get("failed"):
            return f"{name}: failed after {seconds:.2f} s ({_shown(str(record['failed']))})"
        return f"{name}: {seconds:.2f} s{f' ({detail})' if detail else ''}"

    def _draw(self, record: dict[str, Any]) -> None:
        done, total = int(record.get("done") or 0), max(1, int(record.get("total") or 1))
        if done >= total:
            self._clear()
            return
        filled = self.WIDTH * done // total
        label = _shown(str(record.get("task")))
        if len(label) > self.LABEL:  # keep what is being done and the end of the file name
            label = label[:12] + "…" + label[-(self.LABEL - 13) :]
        bar = "#" * filled + "." * (self.WIDTH - filled)
        text = f"{label} [{bar}] {100 * done // total:3d}% {_size(done)} / {_size(total)}"
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()
