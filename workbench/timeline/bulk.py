"""Bulk work on hundreds of thousands of records: the cyclic garbage collector paused while they are built.

Building a million :class:`~workbench.records.Event` objects (each with its ``extra`` dict) triggers the collector's
full passes again and again, each one walking every live object: measured on a 1,000,000-event case, a third of
the timeline's time (issue 15). The records built hold no reference cycles, so nothing is left for the collector
to find; it runs again as soon as the block ends (and any cycle made meanwhile is collected then).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nested blocks leave it to the outermost)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
