"""Lines longer than the scan window, cut into bounded overlapping windows instead of being cut off.

A line of ``L`` bytes is read as windows of ``size`` bytes starting every ``size - overlap`` bytes: window ``k``
covers ``[k·(size − overlap), k·(size − overlap) + size)`` (the last one runs to the end of the line). Every stretch
of the line at most ``overlap`` bytes long lies wholly inside one window, so a match shorter than the overlap is
always seen, whatever its offset (at 64 KiB, at 1 MiB, across a window boundary). The scanner counts a rule once per
line however many windows match it, so overlapping windows never give a match twice.

Each window also carries :data:`CONTEXT` bytes of the line on each side (where the line has them), which the rules'
lookbehinds, lookaheads, word boundaries and anchors see as they would in the whole line: ``^`` never matches at a
window's start and ``$`` never at its end, unless the line starts or ends there. The line is fed in pieces of any
size; the splitter keeps at most one window plus one piece in memory, so a 100 MB single-line file is never loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CONTEXT", "LongLine", "Window", "long_warning", "utf8_core"]

#: Bytes of the line given on each side of a window, for lookarounds, ``\b`` and anchors.
CONTEXT = 64


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a long line.

    Attributes:
        data: the window with up to :data:`CONTEXT` bytes of the line before it and (unless it is the last) after it.
        pos: where the window itself starts in ``data``.
        offset / end: the window's first byte and the byte after its last one, as offsets in the line.
        first / last: the line's first / last window.
        next_offset: where the next window starts in the line (``end`` for the last window).
    """

    data: bytes
    pos: int
    offset: int
    end: int
    first: bool
    last: bool
    next_offset: int

    @property
    def core(self) -> bytes:
        """The window without its context bytes."""
        return self.data[self.pos : self.pos + self.end - self.offset]


class LongLine:
    """Cuts one line, fed in pieces, into overlapping windows (module docstring).

    Args:
        size: bytes per window.
        overlap: bytes shared by consecutive windows; less than half of ``size`` and at least :data:`CONTEXT`.

    Raises:
        ValueError: sizes that cannot work.
    """

    def __init__(self, size: int, overlap: int) -> None:
        if not CONTEXT <= overlap < size // 2:
            raise ValueError(f"window overlap {overlap} must be at least {CONTEXT} and less than half of {size}")
        self.size, self.step = size, size - overlap
        self._buf = b""
        self._base = 0  # offset in the line of _buf[0]
        self._next = 0  # offset of the next window
        self.length = 0
        self.windows = 0

    def feed(self, data: bytes) -> Iterator[Window]:
        """Add the next piece of the line; yields every window that is now complete (with its context after)."""
        self._buf = self._buf + data if self._buf else data
        self.length += len(data)
        while self.length >= self._next + self.size + CONTEXT:
            yield self._window(last=False)
        drop = self._next - CONTEXT - self._base
        if drop > 0:
            self._buf = self._buf[drop:]
            self._base += drop

    def finish(self) -> Iterator[Window]:
        """The line ended: its last window (from the next window's start to the end of the line)."""
        yield self._window(last=True)

    def _window(self, *, last: bool) -> Window:
        start = self._next
        end = self.length if last else start + self.size
        lo = max(0, start - CONTEXT)
        hi = end if last else end + CONTEXT
        data = self._buf[lo - self._base : hi - self._base]
        self._next = end if last else start + self.step
        self.windows += 1
        return Window(data, start - lo, start, end, self.windows == 1, last, self._next)


def utf8_core(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut at either end (up to 3 continuation bytes at the start, an incomplete
    sequence at the end): what is left is invalid only if the line itself is."""
    start = 0
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
        start += 1
    end = len(data)
    for back in range(1, min(4, end - start) + 1):
        byte = data[end - back]
        if byte & 0xC0 == 0x80:
            continue
        if byte >= 0xC0 and back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
            end -= back  # a lead byte whose sequence runs past the end
        break
    return data[start:end]


def long_warning(cap: int) -> str:
    """The warning on a line longer than ``cap`` bytes (the same text for every such line: merged by count)."""
    return f"line longer than {cap} bytes; scanned whole in overlapping windows (excerpts shown)"
