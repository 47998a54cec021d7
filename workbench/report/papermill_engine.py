"""papermill's nbclient engine, saving the executed notebook at its start, its end and every few seconds.

papermill writes the whole output notebook twice per cell (when the cell starts and when it completes). The report
notebook carries the offline plotly bundle (about 5 MB) in its first output, so 46 cells meant some 90 full JSON
encodings and writes of a 5.6 MB file: most of the notebook stage's time (py-spy: 8.6 s of 15.6 s on the tampered
sample). Here the per-cell saves happen only when :data:`SAVE_EVERY` seconds have passed since the last one; the
save at the start, after a failing cell and at the end (papermill's ``finally``, also when the kernel dies or the
run is stopped) are kept, so a partial notebook is still on disk for the report of a failed run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

__all__ = ["ENGINE", "SAVE_EVERY", "register"]

#: engine name passed to ``papermill.execute_notebook(engine_name=...)``
ENGINE = "workbench"
#: seconds between two per-cell saves of the executed notebook (a long run is still visible on disk as it goes)
SAVE_EVERY = 10.0


class SparseSaveManager(NotebookExecutionManager):
    """papermill's execution manager with per-cell saves throttled to one every :data:`SAVE_EVERY` seconds."""

    _per_cell = False

    @contextlib.contextmanager
    def _per_cell_saves(self) -> Iterator[None]:
        """The saves papermill makes inside this block are per-cell ones (throttled by :meth:`save`)."""
        self._per_cell = True
        try:
            yield
        finally:
            self._per_cell = False

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._per_cell_saves():
            super().cell_start(cell, cell_index, **kwargs)

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._per_cell_saves():
            super().cell_complete(cell, cell_index, **kwargs)

    def save(self, **kwargs: Any) -> None:
        if self._per_cell and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY:
            return
        super().save(**kwargs)


class SparseSaveEngine(NBClientEngine):
    """nbclient engine whose notebook is managed by :class:`SparseSaveManager`."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        nb_man = SparseSaveManager(
            nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )  # fmt: skip
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


def register() -> str:
    """Register the engine with papermill (idempotent) and return its name."""
    papermill_engines.register(ENGINE, SparseSaveEngine)
    return ENGINE
