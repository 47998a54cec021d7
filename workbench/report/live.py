"""The notebook's live session: progress shown in the cell while setup runs, and the run kept for the kernel's life
so that re-running setup (or any explorer) with the same parameters never re-hashes or re-analyses the evidence."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.htmlkit import text
from workbench.progress import ConsoleSink

__all__ = ["NotebookSink", "cached", "forget", "remember", "run_key", "where_note"]

#: runs of this kernel by :func:`run_key`, with the time each finished
_RUNS: dict[tuple[str, ...], tuple[Any, datetime]] = {}


def run_key(case_dir: str | Path, out_dir: str | Path | None, reference: str | Path | None,
            options: dict[str, Any]) -> tuple[str, ...]:  # fmt: skip
    """What makes two setup calls the same run: the folders resolved, and the checked options."""
    resolved = [str(Path(p).resolve()) if p else "" for p in (case_dir, out_dir, reference)]
    return (*resolved, json.dumps(options, sort_keys=True, default=str))


def cached(key: tuple[str, ...]) -> tuple[Any, datetime] | None:
    """The view and finishing time of this kernel's run under ``key``, if any."""
    return _RUNS.get(key)


def remember(key: tuple[str, ...], view: Any) -> None:
    _RUNS[key] = (view, datetime.now(UTC))


def forget() -> None:
    """Drop every kept run (the next setup runs again)."""
    _RUNS.clear()


def where_note(out_dir: Path, *, temporary: bool, reused: datetime | None = None) -> str:
    """The line telling the analyst where the run's outputs are (and, for a kept run, that nothing was redone)."""
    where = f"Outputs of this run: <code>{text(str(out_dir))}</code>"
    if temporary:
        where += " (a new temporary folder: set <code>OUT_DIR</code> to keep them somewhere known)"
    if reused is not None:
        where = (f"Reusing this kernel's run finished at {reused:%H:%M:%S} UTC: nothing re-hashed or re-analysed. "
                 f"{where}. <code>wb.setup(..., rerun=True)</code> runs it again.")  # fmt: skip
    return f'<p class="wb-note wb-live-where">{where}</p>'


class NotebookSink:
    """Progress in the setup cell's output: the stages done so far, one line each, and the file being hashed.

    Updates one display (an IPython display handle) at most every ``interval`` seconds for byte counters; every
    stage line is shown as it ends.
    """

    def __init__(self, interval: float = 0.3) -> None:
        from IPython.display import HTML, display

        self._html, self._lines, self._task, self._last = HTML, [], "", 0.0
        self._title = "Investigation running…"
        self.interval = interval
        self.handle = display(HTML(self._render()), display_id=True)

    def _render(self) -> str:
        lines = "".join(f"<li>{text(line)}</li>" for line in self._lines)
        task = f'<div class="wb-note">{text(self._task)}</div>' if self._task else ""
        return f'<div class="wb-live-progress"><b>{self._title}</b><ul>{lines}</ul>{task}</div>'

    def __call__(self, record: dict[str, Any]) -> None:
        if "task" in record:
            done, total = int(record.get("done") or 0), max(1, int(record.get("total") or 1))
            now = time.monotonic()
            if done < total and now - self._last < self.interval:
                return
            self._last = now
            self._task = "" if done >= total else f"{record.get('task')}: {100 * done // total}%"
        elif "stage" in record:
            self._lines.append(ConsoleSink.format_stage(record))
        if self.handle is not None:
            self.handle.update(self._html(self._render()))

    def done(self, seconds: float) -> None:
        """Replace the running title by the total time."""
        self._task, self._title = "", f"Investigation done in {seconds:.1f} s"
        if self.handle is not None:
            self.handle.update(self._html(self._render()))
