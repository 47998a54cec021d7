"""Scanning one large plain log file with several processes, with exactly the results of a scan in one process.

The file is cut at line starts into one slice per worker. Each worker process opens the file itself and reads only
its slice (nothing read from the evidence is ever sent to a worker; the rules and options are inherited through
``fork`` or, where ``fork`` is missing, sent as the already validated rule set). A worker also reads the few lines
just before its slice (context before its first lines) and just after it (context after its last matches), prepared
like the scan prepares lines: cut to ``max_line_bytes``, escapes removed, the byte-order mark dropped on line 1.

Merging keeps the serial scan's results: line numbers are shifted by the lines of the slices before; per-rule counts,
first and last lines and times are combined; ``max_matches_per_rule`` is applied to the merged matches (a worker
keeps at most that many per rule of its own slice); the invalid UTF-8 warning is kept for the first slice that has
one; a match before the first CI step marker of its slice belongs to the step open at the end of the slices before.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO

from workbench import safeio
from workbench.evidence.pipeline_log import LogAllowance
from workbench.logscan.engine import _BAD_UTF8, MAX_LONG_WARNINGS, Scanner, _head, strip_ansi
from workbench.logscan.longlines import long_warning
from workbench.logscan.results import FileScan, RuleStats, ScanOptions
from workbench.logscan.state import State
from workbench.records import EvidenceWarning
from workbench.rulepack.rules import RuleSet

__all__ = ["ChunkScan", "scan_parallel", "split_points"]

#: the step of lines before a slice's first step marker: not known to the worker (never a real step name, since
#: names are made printable and so hold no NUL)
_INHERIT = "\x00inherit"
_STEP = 1 << 16
_BOM = b"\xef\xbb\xbf"
_scanner: Scanner | None = None


@dataclass(slots=True)
class ChunkScan:
    """What a worker found in its slice: line numbers relative to the slice, at most ``max_matches_per_rule`` per rule.

    Attributes:
        scan: the slice's results.
        inherits: per match, whether it lies before the slice's first step marker (its group is filled in on merge).
        group: the step open at the end of the slice (unredacted), or the "inherit" marker when it has no marker.
    """

    scan: FileScan
    inherits: list[bool]
    group: str | None


def split_points(fh: IO[bytes], size: int, parts: int) -> list[int]:
    """Start offsets of up to ``parts`` non-empty slices of a file, each at the start of a line (the first is 0)."""
    starts = [0]
    for i in range(1, parts):
        pos = max(size * i // parts, starts[-1] + 1)
        fh.seek(pos - 1)
        while pos <= size:
            piece = fh.read(_STEP)
            nl = piece.find(b"\n")
            if nl >= 0:
                pos += nl
                break
            if not piece:
                pos = size + 1
                break
            pos += len(piece)
        if pos >= size:
            break
        starts.append(pos)
    return starts


def scan_parallel(
    scanner: Scanner, path: Path, display: str, reference: datetime | None, st: State, workers: int
) -> FileScan | None:
    """``path`` (a plain file that fits in the byte budget) scanned by ``workers`` processes within the time budget
    and the cap on kept matches of ``st`` (the file's state in the calling scanner); None when no process could be
    started."""
    with safeio.open_evidence(path) as fh:
        size = fh.seek(0, 2)
        # no slice shorter than a block: the first block of the file is the same in both scans (binary data check)
        starts = split_points(fh, size, min(workers, size // max(1, scanner.options.block_bytes)))
    if len(starts) < 2:
        return None
    bounds = [*zip(starts, [*starts[1:], None], strict=True)]
    methods = multiprocessing.get_all_start_methods()
    # fork shares the compiled rules; without it (or beside other threads) the rule set is sent and compiled again
    method = "fork" if "fork" in methods and threading.active_count() == 1 else methods[0]
    try:
        with ProcessPoolExecutor(len(bounds), mp_context=multiprocessing.get_context(method),
                                 initializer=_init, initargs=(scanner.rules, scanner.options)) as pool:  # fmt: skip
            deadline = st.allowance.deadline if st.allowance is not None else None
            futures = [pool.submit(_scan_chunk, str(path), display, a, b, reference, deadline, st.kept_cap)
                       for a, b in bounds]  # fmt: skip
            chunks = [f.result() for f in futures]
    except (OSError, BrokenProcessPool):
        return None
    return merge(scanner, display, chunks, st)


def _init(rules: RuleSet, options: ScanOptions) -> None:
    global _scanner  # one scanner per worker process
    _scanner = Scanner(rules, replace(options, workers=1))


def _scan_chunk(path: str, display: str, start: int, end: int | None, reference: datetime | None,
                deadline: float | None, kept_cap: int | None) -> ChunkScan:  # fmt: skip
    """Worker: scan the lines in ``[start, end)`` of ``path`` (to the end of the file when ``end`` is None), until
    ``deadline`` (``time.monotonic``, shared by the processes of one machine), keeping at most ``kept_cap`` matches."""
    sc = _scanner
    assert sc is not None  # noqa: S101 - set by the pool initializer
    k = sc.options.context
    result = FileScan(path=display, backend=sc.backend)
    allowance = LogAllowance(sc.options.budget).file()
    allowance.limit, allowance.deadline = None, deadline  # the caller checked the bytes; its deadline holds
    st = State(result, reference, first=start == 0, group=_INHERIT, allowance=allowance, kept_cap=kept_cap)
    try:
        with safeio.open_evidence(path) as fh:
            st.tail = _lines_before(sc, fh, start, k)
            fh.seek(start)
            sc._run(_Slice(fh, None if end is None else end - start), st)
            if st.pending and end is not None and result.complete:
                after = _lines_after(sc, fh, end, k)
                if after:
                    sc._fill_pending(b"".join(x + b"\n" for x in after), st)
    except OSError as exc:  # reading the slice itself reports its own errors (see Scanner._read)
        st.stop(f"read error ({exc}); the lines before it were scanned")
    inherits = [p.group == _INHERIT for p in st.built]
    for p in st.built:
        if p.group == _INHERIT:
            p.group = None
    result.matches = [sc._finish(p, display) for p in st.built]
    return ChunkScan(result, inherits, st.group)


class _Slice:
    """A file read from its current position for at most ``limit`` bytes (no limit when None)."""

    def __init__(self, fh: IO[bytes], limit: int | None) -> None:
        self._fh, self._left = fh, limit

    def read(self, size: int = -1) -> bytes:
        if self._left is None:
            return self._fh.read(size)
        size = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(size) if size > 0 else b""
        self._left -= len(data)
        return data


def _prepare(sc: Scanner, line: bytes, first: bool) -> bytes:
    """A context line as the scan shows it: byte-order mark dropped on line 1, the head of a long line (its first
    ``max_line_bytes``), escapes removed."""
    if first:
        line = line.removeprefix(_BOM)
    cap = sc.options.max_line_bytes
    if len(line) > cap:
        line = _head(line, 0, cap)
    return strip_ansi(line)


def _lines_before(sc: Scanner, fh: IO[bytes], start: int, k: int) -> list[bytes]:
    """The ``k`` lines before offset ``start`` (a line start), prepared; memory bounded whatever their length (their
    starts are found reading backwards in steps, then only the head of each is read)."""
    if k <= 0 or start <= 0:
        return []
    bounds = [start]  # line starts, from ``start`` backwards
    pos = start - 1  # the newline ending the line before ``start``
    while len(bounds) <= k and pos > 0:
        low = max(0, pos - _STEP)
        fh.seek(low)
        piece = fh.read(pos - low)
        cut = len(piece)
        while len(bounds) <= k and (cut := piece.rfind(b"\n", 0, cut)) >= 0:
            bounds.append(low + cut + 1)
        pos = low
    if len(bounds) <= k and pos <= 0:
        bounds.append(0)  # line 1 of the file
    lines = [(bounds[i + 1], bounds[i] - 1) for i in range(len(bounds) - 1)][::-1]
    return [_head_at(sc, fh, a, b, a == 0) for a, b in lines]


def _head_at(sc: Scanner, fh: IO[bytes], start: int, end: int, first: bool) -> bytes:
    """The line ``[start, end)`` of the file as a context line: at most its first ``max_line_bytes`` (and a BOM)."""
    fh.seek(start)
    return _prepare(sc, fh.read(min(end - start, sc.options.max_line_bytes + len(_BOM))), first)


def _lines_after(sc: Scanner, fh: IO[bytes], end: int, k: int) -> list[bytes]:
    """The (up to) ``k`` lines from offset ``end`` on, prepared; the file's last line may lack its newline. Memory
    bounded whatever their length."""
    out: list[bytes] = []
    pos = end
    while len(out) < k:
        fh.seek(pos)
        head = fh.read(sc.options.max_line_bytes + 1)
        if not head:
            break
        nl = head.find(b"\n")
        if nl >= 0:
            out.append(_prepare(sc, head[:nl], False))
            pos += nl + 1
            continue
        out.append(_prepare(sc, head, False))  # a long line (or the last one): its head; find where it ends
        pos += len(head)
        while piece := fh.read(_STEP):
            nl = piece.find(b"\n")
            if nl >= 0:
                pos += nl + 1
                break
            pos += len(piece)
        else:
            break
    return out


def merge(scanner: Scanner, display: str, chunks: list[ChunkScan], st: State | None = None) -> FileScan:
    """One file's result from its slices' results, in file order (as if scanned in one pass); ``st``: the file's
    state in the calling scanner (its cap on kept matches and its budget, charged with the bytes read)."""
    out = FileScan(path=display, backend=scanner.backend)
    cap = scanner.options.max_matches_per_rule
    total_cap = st.kept_cap if st is not None else None
    kept: dict[str, int] = {}
    offset, group, decode_seen, long_seen = 0, None, False, 0
    long = long_warning(scanner.options.max_line_bytes)
    for chunk in chunks:
        scan = chunk.scan
        inherited = scanner.redactor.redact(group) if group else None
        for m, inherits in zip(scan.matches, chunk.inherits, strict=True):
            if kept.get(m.rule_id, 0) >= cap or (total_cap is not None and len(out.matches) >= total_cap):
                continue
            kept[m.rule_id] = kept.get(m.rule_id, 0) + 1
            out.matches.append(replace(m, line=m.line + offset, group=inherited if inherits else m.group))
        for rule_id, s in scan.stats.items():
            total = out.stats.get(rule_id)
            if total is None:
                out.stats[rule_id] = RuleStats(s.count, s.first_line + offset, s.last_line + offset, s.first_time,
                                               s.last_time)  # fmt: skip
                continue
            total.count += s.count
            total.last_line = s.last_line + offset
            total.first_time = total.first_time or s.first_time
            total.last_time = s.last_time if s.last_time is not None else total.last_time
        for w in scan.warnings:
            if w.reason == _BAD_UTF8:
                if decode_seen:
                    continue
                decode_seen = True
            if w.reason == long:
                long_seen += 1
                if long_seen > MAX_LONG_WARNINGS:
                    continue
            if scan.stopped is not None and w.reason == scan.stopped:
                continue  # said again below, for the whole file
            out.warnings.append(w if w.line is None else replace(w, line=w.line + offset))
        if chunk.group != _INHERIT:
            group = chunk.group
        offset += scan.lines
        out.bytes_scanned += scan.bytes_scanned
        if not scan.complete:  # a scan in one process stops reading there too
            out.complete = False
            out.stopped = scan.stopped
            break
    if st is not None and st.allowance is not None:
        st.allowance.take(out.bytes_scanned)
        if out.stopped is not None:  # the time budget: said once, with the bytes read from the whole file
            out.stopped = st.allowance.stop_time()
    if out.stopped is not None:
        out.warnings.append(EvidenceWarning(display, None, out.stopped))
    out.lines = offset
    out.warnings.sort(key=lambda w: (w.line is not None, w.line or 0))
    return out
