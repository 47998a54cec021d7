"""Generic loader for CI/pipeline logs (``*.log``, ``*.log.gz``, ``logs/*.txt``), and the budgets of every reader
of pipeline logs.

This loader is the catch-all for logs and comes last in the registry. Gzip files are decompressed as a stream
(multi-member files supported); a truncated or corrupt stream keeps every line read before the damage and adds
one warning. Its frame is a *preview*: the first :data:`MAX_PREVIEW_LINES` lines (at most :data:`MAX_PREVIEW_BYTES`
of text), for the notebooks. The analyses read the file themselves, whole, within a :class:`LogBudget`: the log
scanner (:mod:`workbench.logscan`) and the package-index scan of the dependency analysis (:func:`grep_log`). A
reader past a budget stops that file, keeps what it found, and names the file as not examined (coverage partial).
"""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence.actions_log import ActionsLogLoader
from workbench.evidence.base import (
    MAX_LINE_CHARS,
    LoadContext,
    Loaded,
    Loader,
    is_regular_file,
    iter_stream_lines,
    sniff,
)
from workbench.evidence.line_search import block_hits, line_pieces
from workbench.records import EvidenceWarning

__all__ = [
    "LOG_BUDGET",
    "MAX_PREVIEW_BYTES",
    "MAX_PREVIEW_LINES",
    "FileAllowance",
    "LogAllowance",
    "LogBudget",
    "PipelineLogLoader",
    "amount",
    "grep_log",
]

MIB = 1 << 20
#: Lines of a log kept in the loader's frame (a preview; the analyses read the whole file).
MAX_PREVIEW_LINES = 100_000
#: Text read by the loader for its preview.
MAX_PREVIEW_BYTES = 16 * MIB
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
_READ = 1 << 20
_ACTIONS = ActionsLogLoader()


# --------------------------------------------------------------------------------------------------- budgets
@dataclass(frozen=True, slots=True)
class LogBudget:
    """What one reader of a case's pipeline logs may spend. The log scanner and the dependency analysis each get
    their own allowance of the same budget (see ``docs/limits.md``). None: no limit.

    Attributes:
        file_bytes: decompressed bytes read from one file.
        case_bytes: decompressed bytes read from all the case's logs together.
        file_seconds: time spent reading and scanning one file.
        case_seconds: time spent on all the case's logs together.
    """

    file_bytes: int | None = 1024 * MIB
    case_bytes: int | None = 4096 * MIB
    file_seconds: float | None = 60.0
    case_seconds: float | None = 300.0


#: The budget every reader of pipeline logs uses unless told otherwise.
LOG_BUDGET = LogBudget()


def amount(n: int) -> str:
    """A byte count as the budget messages say it: ``3 MiB``, ``1.5 MiB``, ``512 bytes``."""
    if n >= 10 * MIB:
        return f"{n // MIB} MiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB".replace(".0 MiB", " MiB")
    return f"{n} bytes"


class LogAllowance:
    """A :class:`LogBudget` being spent by one reader over the logs of one case (one per analysis run)."""

    def __init__(self, budget: LogBudget = LOG_BUDGET, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.clock = clock
        self.used = 0
        self._started: float | None = None

    def file(self) -> FileAllowance:
        """The allowance of the next file: the file budget, or what is left of the case budget when less."""
        now = self.clock()
        if self._started is None:
            self._started = now
        b = self.budget
        limit, case_bytes = b.file_bytes, False
        if b.case_bytes is not None and (limit is None or b.case_bytes - self.used < limit):
            limit, case_bytes = max(0, b.case_bytes - self.used), True
        deadline, case_time = (now + b.file_seconds if b.file_seconds is not None else None), False
        if b.case_seconds is not None and (deadline is None or self._started + b.case_seconds < deadline):
            deadline, case_time = self._started + b.case_seconds, True
        return FileAllowance(self, limit, deadline, case_bytes, case_time, now)


@dataclass(slots=True)
class FileAllowance:
    """What may still be read from one file, and why reading stopped (``stopped``, for ``unexamined``).

    Attributes:
        limit: decompressed bytes allowed (None: no limit).
        deadline: ``clock()`` time after which reading stops (None: none).
        case_bytes / case_time: whether the limit / deadline is what is left of the case's budget.
        used: bytes read so far.
        stopped: the reason reading stopped on a budget, e.g. ``stopped after 1024 MiB decompressed (budget)``.
    """

    owner: LogAllowance
    limit: int | None
    deadline: float | None
    case_bytes: bool
    case_time: bool
    started: float
    used: int = 0
    stopped: str | None = None

    def take(self, n: int) -> None:
        """Count ``n`` bytes read."""
        self.used += n
        self.owner.used += n

    def room(self) -> int | None:
        """Bytes that may still be read (None: no limit)."""
        return None if self.limit is None else max(0, self.limit - self.used)

    def expired(self) -> bool:
        """Whether the time allowed is spent."""
        return self.deadline is not None and self.owner.clock() >= self.deadline

    def stop_bytes(self) -> str:
        """Record (and return) that reading stopped at the byte limit."""
        if self.case_bytes and self.used == 0:
            reason = f"not read: the case's budget of {amount(self.owner.budget.case_bytes or 0)} of log text was spent"
        elif self.case_bytes:
            reason = (f"stopped after {amount(self.used)} decompressed (the case's budget of "
                      f"{amount(self.owner.budget.case_bytes or 0)} of log text was spent)")  # fmt: skip
        else:
            reason = f"stopped after {amount(self.used)} decompressed (budget)"
        self.stopped = self.stopped or reason
        return self.stopped

    def stop_time(self) -> str:
        """Record (and return) that reading stopped at the deadline."""
        seconds = self.owner.budget.case_seconds if self.case_time else self.owner.budget.file_seconds
        which = "the case's time budget" if self.case_time else "time budget"
        reason = f"stopped after {amount(self.used)} decompressed ({which} of {seconds:g} s)"
        self.stopped = self.stopped or reason
        return self.stopped

    def stop(self, reason: str) -> str:
        """Record another budget's reason (e.g. a cap on what is kept)."""
        self.stopped = self.stopped or reason
        return self.stopped


class _Limited(io.RawIOBase):
    """Readable stream over a file, gunzipped when ``gzip`` is set, that stops at ``limit`` bytes of output (None:
    no limit); ``limited`` tells that there was more.

    Errors never escape ``readinto``: a damaged stream just ends, and ``problem`` says why.
    """

    def __init__(self, fh: io.BufferedReader, *, gzip: bool, limit: int | None) -> None:
        self._fh = fh
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._pending = b""
        self._in = b""
        self._left = limit
        self._eof = False
        self.problem: str | None = None
        self.limited = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            self._pending = self._next_chunk()
        if self._left is not None and self._left <= 0 and self._pending:
            self.limited = True
            self._pending, self._eof = b"", True
        n = min(len(buffer), len(self._pending), self._left if self._left is not None else len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        if self._left is not None:
            self._left -= n
        return n

    def _next_chunk(self) -> bytes:
        """Next piece of output (possibly empty while input is consumed); sets ``_eof`` at the end."""
        if self._dec is None:
            data = self._read()
            self._eof = self._eof or not data
            return data
        if self._dec.eof:  # a gzip member ended: another member, zero padding, or the end
            self._in = self._dec.unused_data + self._in
            if not self._in:
                self._in = self._read()
            if not self._in.strip(b"\x00"):
                self._in = self._read()
                if not self._in.strip(b"\x00"):
                    self._eof = True
                    return b""
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not self._in:
            self._in = self._read()
            if not self._in:
                return b"" if self._eof else self._stop("gzip stream truncated; kept the lines read before the cut")
        try:
            out = self._dec.decompress(self._in, _CHUNK * 4)
        except zlib.error as exc:
            return self._stop(f"corrupt gzip data ({exc}); kept the lines read before it")
        self._in = self._dec.unconsumed_tail
        return out

    def _read(self) -> bytes:
        if self._eof:
            return b""
        try:
            return self._fh.read(_CHUNK)
        except OSError as exc:
            return self._stop(f"read error: {exc.strerror or exc}")

    def _stop(self, reason: str) -> bytes:
        self.problem = self.problem or reason
        self._eof = True
        return b""


class PipelineLogLoader(Loader):
    """Any CI/pipeline log, line by line, for the log scanner (no parsing of its own).

    Columns:
        line (int): 1-based line number.
        text (str): the line without its line ending (invalid UTF-8 replaced, over-long lines cut).
    """

    name: ClassVar[str] = "pipeline_log"
    columns: ClassVar[dict[str, str]] = {"line": "int", "text": "str"}
    #: Generic loaders go last in the registry; new loaders are registered before them.
    generic: ClassVar[bool] = True

    def detect(self, path: Path) -> bool:
        """``*.log`` (not binary), ``*.log.gz`` (gzip magic) or ``*.txt`` in a folder named ``logs``.

        The responders' own ``actions.log`` is left to its specific loader.
        """
        if not is_regular_file(path) or _ACTIONS.detect(path):
            return False
        name = path.name.lower()
        head = sniff(path, 512)
        if name.endswith((".log.gz", ".txt.gz")):
            return head.startswith(_GZIP_MAGIC) and (name.endswith(".log.gz") or path.parent.name.lower() == "logs")
        is_log = name.endswith(".log") or (name.endswith(".txt") and path.parent.name.lower() == "logs")
        return is_log and b"\x00" not in head

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """The first :data:`MAX_PREVIEW_LINES` lines (blank ones included, numbered from 1).

        ``meta``: ``compressed`` (gzip) and ``preview`` (True when the frame stops before the end of the file: the
        analyses read the rest from the file, within their budgets; not a problem of the evidence, so no warning).
        """
        warnings: list[EvidenceWarning] = []
        lines: list[int] = []
        texts: list[str] = []
        try:
            fh = safeio.open_evidence(path)
        except OSError as exc:
            raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
        preview = False
        with fh:
            gz = fh.peek(2)[:2] == _GZIP_MAGIC
            raw = _Limited(fh, gzip=gz, limit=MAX_PREVIEW_BYTES)
            stream = io.BufferedReader(raw, buffer_size=_CHUNK)
            for number, text in iter_stream_lines(stream, ctx, warnings):
                if number > MAX_PREVIEW_LINES:
                    preview = True
                    break
                lines.append(number)
                texts.append(text)
        if raw.problem and not preview:
            warnings.append(EvidenceWarning(ctx.relpath, len(lines) or None, raw.problem))
        frame = self.frame_builder({"line": lines, "text": texts})  # made on first use: many logs, few previews read
        return Loaded(self.name, ctx.relpath, frame, warnings, {"compressed": gz, "preview": preview or raw.limited})


# --------------------------------------------------------------------------------------------------- reading
def grep_log(
    path: Path,
    needle: re.Pattern[bytes],
    allowance: FileAllowance,
    *,
    window: int = MAX_LINE_CHARS,
    anchors: tuple[bytes, ...] = (),
) -> Iterator[tuple[int, bytes]]:
    """The lines of a pipeline log (plain or gzip) that hold ``needle``, read in blocks within ``allowance``.

    Memory stays bounded whatever the line lengths: a line longer than ``window`` bytes is given as the
    ``window``-sized pieces centred on its hits (the same line number, pieces may overlap: the caller de-duplicates
    what it finds per line). Reading stops at the allowance's byte limit (the line it cuts is left out) or deadline
    (``allowance.stopped`` says so) and at damage (a damaged gzip keeps what was read before it; the logs section
    reports the damage).

    ``anchors`` are literals of which a wanted line holds at least one besides ``needle`` (say ``b"://"``): in a
    block where they are rarer than lines, the block is searched for them (``bytes.find``, several times faster
    than a regular expression with alternatives) and only their lines for ``needle``. The lines given are then
    those holding both. Pieces of a long line are given whether they hold an anchor or not (the caller filters
    them); a long line holding no anchor at all may be left out.

    Yields:
        ``(line number, line bytes without the newline)``; bytes as in the file (not decoded).

    Raises:
        OSError: the file cannot be opened (see :func:`workbench.safeio.open_evidence`).
    """
    with safeio.open_evidence(path) as fh:
        raw = _Limited(fh, gzip=fh.peek(2)[:2] == _GZIP_MAGIC, limit=allowance.room())
        number, buf, searched = 1, b"", 0  # line number of buf[0]; buf[:searched] of a long line already searched
        half = window // 2
        while True:
            if allowance.expired():
                allowance.stop_time()
                return
            data = raw.read(_READ)
            if not data:
                break
            allowance.take(len(data))
            buf = buf + data if buf else data
            last = buf.rfind(b"\n")
            if last < 0:  # one line still being read: search it, keep only its end
                if len(buf) > 3 * window:
                    end = len(buf) - window
                    yield from line_pieces(buf, 0, len(buf), number, needle, half, searched, end)
                    buf, searched = buf[end - half :], half
                continue
            complete, buf = buf[: last + 1], buf[last + 1 :]
            yield from block_hits(complete, number, needle, window, searched, anchors)
            number += complete.count(b"\n")
            searched = 0
        if buf and not raw.limited:  # the last line, unless the budget cut it (a cut URL is not a URL)
            yield from block_hits(buf + b"\n", number, needle, window, searched, anchors)
    if raw.limited:
        allowance.stop_bytes()
