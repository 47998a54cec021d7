"""Progress of long work: one line per stage with its duration, and byte counters for large files.

The run reports through a :class:`Progress`; where the reports go is the caller's choice: a function taking one
line (the CLI prints to stderr), nothing (:data:`SILENT`, the default in the library and in tests), or a JSON-lines
file (:class:`FileSink`) that another process follows, as the CLI does while the notebook kernel runs.

Records (one JSON object per line in a file sink): ``{"stage": name, "seconds": s}`` when a stage ends and
``{"task": label, "done": n, "total": t}`` while a large file is hashed or compared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SILENT", "FileSink", "Progress"]

#: below this many bytes, no byte counter is reported
BAR_MIN_BYTES = 256 * 1024 * 1024
_MIN_INTERVAL = 0.2


@dataclass(slots=True)
class Progress:
    """Where stages and byte counters are reported.

    Attributes:
        emit: called with one record (a dict) per report; None: silent.
    """

    emit: Callable[[dict[str, Any]], None] | None = None
    _last: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; report it when it ends (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.emit is not None:
                self.emit({"stage": name, "seconds": round(time.perf_counter() - start, 3)})

    def task(self, label: str, done: int, total: int) -> None:
        """Report bytes done of a large file (throttled; only for files of :data:`BAR_MIN_BYTES` or more)."""
        if self.emit is None or total < BAR_MIN_BYTES:
            return
        now = time.monotonic()
        if done < total and now - self._last.get(label, 0.0) < _MIN_INTERVAL:
            return
        self._last[label] = now
        self.emit({"task": label, "done": int(done), "total": int(total)})


SILENT = Progress()


class FileSink:
    """Appends progress records to a JSON-lines file (one ``write`` per record, flushed)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __call__(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
