"""Lines holding a pattern in a block of complete log lines, as bytes: the search inside
:func:`workbench.evidence.pipeline_log.grep_log`, which reads the file within its budget and hands each block here.

A line longer than the window is given as the window-sized pieces centred on its hits, so memory stays bounded
whatever the line lengths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["block_hits", "line_pieces"]


def block_hits(block: bytes, number: int, needle: re.Pattern[bytes], window: int, skip: int,
          anchors: tuple[bytes, ...] = ()) -> Iterator[tuple[int, bytes]]:  # fmt: skip
    """Lines of ``block`` (complete lines, the first one numbered ``number``) holding ``needle`` after ``skip``
    (and one of ``anchors`` when they are rare in the block: see :func:`workbench.evidence.pipeline_log.grep_log`)."""
    if anchors and sum(block.count(a, skip) for a in anchors) * 8 < block.count(b"\n", skip):
        yield from _anchored(block, number, needle, window, skip, anchors)
        return
    counted, line_end = 0, -1
    for m in needle.finditer(block, skip):
        if m.start() <= line_end:
            continue
        start = block.rfind(b"\n", 0, m.start()) + 1
        line_end = block.find(b"\n", m.start())
        number += block.count(b"\n", counted, start)
        counted = start
        if line_end - start <= window:
            yield number, block[start:line_end]
        else:
            yield from line_pieces(block, start, line_end, number, needle, window // 2, m.start(), line_end)


def _anchored(block: bytes, number: int, needle: re.Pattern[bytes], window: int, skip: int,
              anchors: tuple[bytes, ...]) -> Iterator[tuple[int, bytes]]:  # fmt: skip
    """:func:`block_hits` for a block where the anchors are rare: the lines holding an anchor, in order, searched for
    ``needle``; a line longer than ``window`` is given as its pieces around ``needle``."""
    starts: set[int] = set()
    for anchor in anchors:
        at = block.find(anchor, skip)
        while at >= 0:
            starts.add(block.rfind(b"\n", 0, at) + 1)
            end = block.find(b"\n", at)
            at = block.find(anchor, end) if end >= 0 else -1
    counted = 0
    for start in sorted(starts):
        end = block.find(b"\n", start)
        if not needle.search(block, max(start, skip), end):
            continue
        number += block.count(b"\n", counted, start)
        counted = start
        if end - start <= window:
            yield number, block[start:end]
        else:
            yield from line_pieces(block, start, end, number, needle, window // 2, max(start, skip), end)


def line_pieces(buf: bytes, start: int, end: int, number: int, needle: re.Pattern[bytes], half: int, frm: int,
            to: int) -> Iterator[tuple[int, bytes]]:  # fmt: skip
    """Pieces of the long line ``buf[start:end]`` centred on the hits of ``needle`` in ``[frm, to)``."""
    covered = -1
    for m in needle.finditer(buf, frm, to):
        if m.start() < covered:
            continue
        lo, hi = max(start, m.start() - half), min(end, m.start() + half)
        yield number, buf[lo:hi]
        covered = hi - min(half // 2, 4096)  # a later hit this close to the piece's end gets a piece of its own
