"""Streaming log scanner: every rule in one pass per file, matches with line numbers, UTC times and context.

A file (plain or gzip, recognised by its magic bytes) is read in blocks of complete lines (1 MiB by default).
Per block: ANSI/terminal escape sequences are removed before matching; a candidate finder
(:mod:`workbench.rulepack.matchers`) proposes lines for all rules at once, and with hyperscan also finds the first
invalid UTF-8 sequence in the same pass (the ``re`` finder decodes the block instead); the first one per file is
reported (bytes are replaced on output); each proposal is confirmed with the rule's own regex. A line longer than
``max_line_bytes`` is scanned whole, in bounded overlapping windows (:mod:`workbench.logscan.longlines`), and counts
once per rule. Matched lines are decoded, stripped of control characters, given the timestamp they start with
(:mod:`workbench.logscan.timestamps`), the CI step they belong to (GitHub Actions ``##[group]``, GitLab
``section_start``, Jenkins ``[Pipeline] { (stage)``), a few lines of context, and are redacted
(:mod:`workbench.rulepack.redact`) before they leave this module. A damaged gzip keeps every line read before the
damage and adds one warning. Reading is budgeted (:class:`workbench.evidence.pipeline_log.LogBudget`: bytes and
time per file and per case); past the budget the file is stopped, the matches found so far are kept and
:attr:`FileScan.stopped` says why. Nothing from the evidence is ever executed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from workbench import safeio
from workbench.evidence.pipeline_log import LogAllowance
from workbench.logscan.lines import _after, _before, _clean, _head, printable, strip_ansi
from workbench.logscan.longlines import LongLine, Window, long_warning, utf8_core
from workbench.logscan.reading import items
from workbench.logscan.results import FileScan, LogMatch, RuleStats, ScanOptions, empty_scan
from workbench.logscan.state import Long, Pending, State
from workbench.logscan.timestamps import line_timestamp
from workbench.records import EvidenceWarning
from workbench.rulepack.matchers import Finder, Pattern, make_finder, resolve_backend
from workbench.rulepack.redact import Redactor
from workbench.rulepack.rules import Rule, RuleSet, builtin_rules

__all__ = ["FileScan", "LogMatch", "RuleStats", "ScanOptions", "Scanner", "printable"]

_GZIP_MAGIC = b"\x1f\x8b"
_BAD_UTF8 = "invalid UTF-8 (first occurrence; bytes replaced in the output)"
_MARKERS = (r"##\[group\]", r"section_start:\d+:", r"\[Pipeline\] \{ \(")
#: the start of an invalid UTF-8 sequence (bad lead byte, missing, stray or surplus continuation, overlong form,
#: surrogate, beyond U+10FFFF); found by hyperscan in the same pass as the rules (the ``re`` backend decodes)
_INVALID_UTF8 = (
    r"[\xC0\xC1\xF5-\xFF]|[\xC2-\xDF][\x00-\x7F\xC0-\xFF]|\xE0[\x00-\x9F\xC0-\xFF]"
    r"|[\xE1-\xEC\xEE\xEF][\x00-\x7F\xC0-\xFF]|\xED[\x00-\x7F\xA0-\xFF]|[\xE0-\xEF][\x80-\xBF][\x00-\x7F\xC0-\xFF]"
    r"|\xF0[\x00-\x8F\xC0-\xFF]|[\xF1-\xF3][\x00-\x7F\xC0-\xFF]|\xF4[\x00-\x7F\x90-\xFF]"
    r"|[\xF0-\xF4][\x80-\xBF]{1,2}[\x00-\x7F\xC0-\xFF]|[\x00-\x7F][\x80-\xBF]|[\xC2-\xDF][\x80-\xBF]{2}"
    r"|[\xE0-\xEF][\x80-\xBF]{3}|[\xF0-\xF4][\x80-\xBF]{4}|\A[\x80-\xBF]"
)
_GROUP = re.compile(
    r"##\[group\](?P<gh>.*)|section_start:\d+:(?P<gl>[^\s\[\\]+)(?:\[[^\]]*\])?(?:\\r)?(?P<gltitle>.*)"
    r"|\[Pipeline\] \{ \((?P<jk>.*)\)"
)


#: long lines warned about per file (the rest are scanned alike, without a warning each)
MAX_LONG_WARNINGS = 10
#: text kept per line before redaction: the display cap plus room for a secret running past it (redacted whole)
_SPARE = 4096


class Scanner:
    """Scans log files with a rule set.

    Args:
        rules: the rules (default: the shipped pack).
        options: scan options.

    Raises:
        RuleError: a rule cannot join the combined scan.
        ValueError: an unknown backend, or a window overlap that cannot work.
    """

    def __init__(self, rules: RuleSet | None = None, options: ScanOptions | None = None) -> None:
        self.rules = rules if rules is not None else builtin_rules()
        self.options = options or ScanOptions()
        self._rules: list[Rule] = list(self.rules)
        backend = resolve_backend(self.options.backend)
        patterns = tuple(Pattern(r.pattern, r.ignore_case, r.source, r.id) for r in self._rules)
        patterns += tuple(Pattern(m, False, "<built-in group markers>", None) for m in _MARKERS)
        # each rule's ``unless`` too: in a long line it must be looked for in every window (it applies to the line)
        self._unless = {len(patterns) + j: i for j, i in enumerate(i for i, r in enumerate(self._rules) if r.unless)}
        patterns += tuple(Pattern(self._rules[i].unless or "", self._rules[i].ignore_case, self._rules[i].source,
                                  self._rules[i].id) for i in self._unless.values())  # fmt: skip
        self._marker_ids = frozenset(range(len(self._rules), len(self._rules) + len(_MARKERS)))
        self._proposals: dict[frozenset[int] | None, list[int]] = {}
        self._groups: dict[str, str] = {}
        self._utf8_id = len(patterns) if backend == "hyperscan" else -1
        if backend == "hyperscan":
            patterns += (Pattern(_INVALID_UTF8, False, "<built-in UTF-8 check>", None, exact=True),)
        self._finder: Finder = make_finder(patterns, backend)
        self.redactor = Redactor(self._rules, backend=backend)
        LongLine(self.options.max_line_bytes, self.options.overlap)  # refuses window sizes that cannot work
        #: the budget left to this scanner (one scanner per case: the case budget)
        self.allowance = LogAllowance(self.options.budget)
        self._kept = 0

    @property
    def backend(self) -> str:
        """Name of the candidate finder in use (``hyperscan`` or ``re``)."""
        return self._finder.name

    def scan_path(self, path: str | Path, display: str | None = None) -> FileScan:
        """Scan one file from disk (plain or gzip) within the budget; never raises for bad content or an unreadable
        file."""
        path = Path(path)
        result = empty_scan(display or str(path), self.backend)
        try:
            fh = safeio.open_evidence(path)
        except OSError as exc:
            result.complete = False
            result.warnings.append(EvidenceWarning(result.path, None, f"cannot read: {exc.strerror or exc}"))
            return result
        with fh:
            reference = self.options.reference_time
            if reference is None:
                reference = datetime.fromtimestamp(os.fstat(fh.fileno()).st_mtime, UTC)
            st = self._state(result, reference)
            if fh.peek(2)[:2] == _GZIP_MAGIC:
                result.compressed = True
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    self._scan(gz, st)
            elif (workers := self._workers(fh, st)) > 1:
                from workbench.logscan.parallel import scan_parallel  # imports this module

                merged = scan_parallel(self, path, result.path, reference, st, workers)
                if merged is not None:
                    merged.warnings[:0] = result.warnings  # the file name's, if any
                    return self._done(merged, st)
                self._scan(fh, st)
            else:
                self._scan(fh, st)
        return self._done(result, st)

    def _state(self, result: FileScan, reference: datetime | None) -> State:
        """A file's scan state with its share of the case's budget and of the matches kept."""
        cap = max(0, min(self.options.max_kept_per_file, self.options.max_kept_per_case - self._kept))
        return State(result, reference, allowance=self.allowance.file(), kept_cap=cap)

    def _done(self, result: FileScan, st: State) -> FileScan:
        self._kept += len(result.matches)
        return result

    def _workers(self, fh: IO[bytes], st: State) -> int:
        """Processes to scan a plain file with: 1 unless it is a regular file of at least ``parallel_min_bytes`` that
        fits in the byte budget."""
        opt = self.options
        info = os.fstat(fh.fileno())
        if opt.workers == 1 or not stat.S_ISREG(info.st_mode) or info.st_size < opt.parallel_min_bytes:
            return 1
        room = st.allowance.room() if st.allowance is not None else None
        if room is not None and room < info.st_size:
            return 1
        return max(1, opt.workers or os.cpu_count() or 1)

    def scan_stream(self, stream: IO[bytes], display: str) -> FileScan:
        """Scan an open binary stream (already decompressed), e.g. ``io.BytesIO`` in tests."""
        result = empty_scan(display, self.backend)
        st = self._state(result, self.options.reference_time)
        self._scan(stream, st)
        return self._done(result, st)

    # ------------------------------------------------------------------------------------------------ scanning
    def _scan(self, stream: IO[bytes], st: State) -> None:
        # One thread on purpose: hyperscan releases the GIL while scanning, but each match callback needs it back,
        # and a worker thread waiting for the GIL behind this one was measured slower than scanning inline (large
        # plain files are split between processes instead, see :mod:`workbench.logscan.parallel`).
        self._run(stream, st)
        st.result.matches = [self._finish(p, st.result.path) for p in st.built]
        st.result.warnings.sort(key=lambda w: (w.line is not None, w.line or 0))

    def _run(self, stream: IO[bytes], st: State) -> None:
        for item in items(stream, st, self.options):
            if isinstance(item, Window):
                self._window(item, st)
            else:
                self._block(item, st)

    def _block(self, block: bytes, st: State) -> None:
        """Scan a block of complete lines: UTF-8 checked (``re`` backend), escapes removed, candidates confirmed."""
        base = st.result.lines
        if self._utf8_id < 0 and not st.decode_reported and not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                st.decode_reported = True
                st.warn(base + block.count(b"\n", 0, exc.start) + 1, _BAD_UTF8)
        block = strip_ansi(block)
        newline = np.frombuffer(block, dtype=np.uint8) == 10  # bytes.count(b"\n") was measured 6 times slower
        self._process(block, base, int(np.count_nonzero(newline)), self._find(block, newline), st)

    def _find(self, block: bytes, newline: np.ndarray) -> tuple[list, list[int]]:
        """Candidate lines of a block and how many lines precede each (``newline``: the block's ``\\n`` mask)."""
        candidates = self._finder.candidates(block)
        before: list[int] = []
        prev = count = 0
        for start, _end, _ids in candidates:  # counting the gaps is cheaper than listing every newline of the block
            count += int(np.count_nonzero(newline[prev:start]))
            before.append(count)
            prev = start
        return candidates, before

    def _process(self, block: bytes, base: int, count: int, found: tuple[list, list[int]], st: State) -> None:
        if st.pending:
            self._fill_pending(block, st)
        for (start, end, ids), before in zip(*found, strict=True):
            number = base + before + 1
            if ids is not None and self._utf8_id in ids:
                if not st.decode_reported:
                    st.decode_reported = True
                    st.warn(number, _BAD_UTF8)
                if len(ids) == 1:
                    continue
                ids = ids - {self._utf8_id}
            self._line(block, start, end, ids, number, st)
        st.result.lines = base + count
        st.tail = _before(block, len(block), self.options.context, st.tail)

    def _proposed(self, ids: frozenset[int] | None) -> list[int]:
        """The rule indexes among ``ids``, in rule order (remembered per set: the same few sets recur)."""
        found = self._proposals.get(ids)
        if found is None:
            n = len(self._rules)
            found = list(range(n)) if ids is None else sorted(i for i in ids if i < n)
            if len(self._proposals) < 4096:
                self._proposals[ids] = found
        return found

    def _marker(self, line: bytes, ids: frozenset[int] | None, st: State) -> None:
        """Follow the CI step a marker line opens."""
        if ids is None or not self._marker_ids.isdisjoint(ids):
            marker = _GROUP.search(_clean(line))
            if marker is not None:
                name = marker.group("gh") or marker.group("gltitle") or marker.group("gl") or marker.group("jk")
                st.group = (name or "").strip()[:200] or None

    def _line(self, block: bytes, start: int, end: int, ids: frozenset[int] | None, number: int, st: State) -> None:
        line = block[start:end]
        self._marker(line, ids, st)
        rules = self._rules
        matched = [rules[i] for i in self._proposed(ids) if rules[i].search(line) is not None]
        if not matched:
            return
        text = self._cut(_clean(line))
        ts = line_timestamp(text, naive_tz=self.options.naive_tz, reference=st.reference)
        k = self.options.context
        before: list[str] | None = None
        after: list[str] = []
        for rule in matched:
            if not self._count(rule, number, ts, st):
                continue
            if before is None:
                before = [self._cut(_clean(x)) for x in _before(block, start, k, st.tail)]
                after = [self._cut(_clean(x)) for x in _after(block, end, len(block), k)]
            p = Pending(rule, number, ts, text, list(before), list(after), st.group, k - len(after))
            st.built.append(p)
            if p.need:
                st.pending.append(p)

    def _count(self, rule: Rule, number: int, ts: datetime | None, st: State) -> bool:
        """Count one matching line of ``rule``; True when the match is also kept in full."""
        stats = st.result.stats.setdefault(rule.id, RuleStats(first_line=number))
        stats.count += 1
        stats.last_line = number
        if ts is not None:
            stats.first_time = stats.first_time or ts
            stats.last_time = ts
        return st.keep(rule.id, self.options.max_matches_per_rule)

    def _cut(self, text: str) -> str:
        """Text kept for display: the display cap and room for a secret crossing it (cut again after redaction)."""
        keep = self.options.max_display_chars + _SPARE
        return text if len(text) <= keep else text[:keep]

    def _window(self, w: Window, st: State) -> None:
        """One window of a long line: each rule not matched yet on this line is tried; the line ends on the last."""
        if w.first:
            head = strip_ansi(_head(w.core, 0, self.options.max_line_bytes))
            self._marker(head, None, st)
            k = self.options.context
            st.long = Long(st.result.lines + 1, line_timestamp(_clean(head[:512]), naive_tz=self.options.naive_tz,
                           reference=st.reference), [self._cut(_clean(x)) for x in st.tail[-k:]] if k else [],
                           head)  # fmt: skip
        lg = st.long
        if lg is None:
            return
        if st.expired():  # stopped: what the line showed so far is kept
            if w.last:
                self._end_long(w.end, st)
            return
        pre = strip_ansi(w.data[: w.pos])
        data, pos = pre + strip_ansi(w.data[w.pos :]), len(pre)
        if not st.decode_reported and not w.core.isascii():
            try:
                utf8_core(w.core).decode("utf-8")
            except UnicodeDecodeError:
                st.decode_reported = True
                st.warn(lg.number, _BAD_UTF8)
        found = self._finder.candidates(data + b"\n")
        ids = found[0][2] if found else frozenset()
        # a rule's ``unless`` excludes its match when it is in the match's window or a neighbouring one
        excluded = {i for i in (self._unless.values() if ids is None else (self._unless[j] for j in ids
                                                                              if j in self._unless))
                    if (u := self._rules[i].unless_regex) is not None and u.search(data)}  # fmt: skip
        for i in lg.recent & excluded:
            del lg.found[i]
        recent: set[int] = set()
        for i in self._proposed(ids):
            if i in lg.found or i in excluded or i in lg.unless:
                continue
            rule = self._rules[i]
            m = rule.regex.search(data, pos)
            if m is None:
                continue
            at = w.offset + m.start() - pos
            if not w.last and m.end() >= len(data) and at >= w.next_offset:
                continue  # it runs into the window's end: the next window holds it whole, with what follows
            lg.found[i] = (max(0, at), self._cut(_clean(_excerpt(data, pos, m.start()))))
            recent.add(i)
        lg.recent, lg.unless = recent, excluded
        if w.last:
            self._end_long(w.end, st)

    def _end_long(self, length: int, st: State) -> None:
        """The long line ended: its matches (one per rule), the context it gives, the line count."""
        lg, st.long = st.long, None
        if lg is None:
            return
        if st.long_warned < MAX_LONG_WARNINGS:
            st.long_warned += 1
            st.warn(lg.number, long_warning(self.options.max_line_bytes))
        if st.pending:  # the matches before this line get its head as context
            self._fill_pending(lg.head + b"\n", st)
        for i, (offset, excerpt) in sorted(lg.found.items()):
            rule = self._rules[i]
            if not self._count(rule, lg.number, lg.timestamp, st):
                continue
            text = f"[line of {length} bytes{f', from byte {offset}' if offset else ''}] {excerpt}"
            p = Pending(rule, lg.number, lg.timestamp, text, list(lg.before), [], st.group, self.options.context)
            st.built.append(p)
            if p.need:
                st.pending.append(p)
        k = self.options.context
        st.tail = [*st.tail, lg.head][-k:] if k else []
        st.result.lines = lg.number

    def _fill_pending(self, block: bytes, st: State) -> None:
        for p in st.pending:
            got = [self._cut(_clean(x)) for x in _after(block, -1, len(block), p.need)]
            p.after += got
            p.need -= len(got)
        st.pending = [p for p in st.pending if p.need > 0]

    def _finish(self, p: Pending, path: str) -> LogMatch:
        raw = [*p.before, p.text, *p.after]
        lines = self.redactor.redact_lines(raw)
        cap, keep = self.options.max_display_chars, self.options.max_display_chars + _SPARE
        lines = [x if len(x) <= cap else x[:cap] + f"…[{len(x) - cap}{'+' if len(r) >= keep else ''} more characters]"
                 for x, r in zip(lines, raw, strict=True)]  # fmt: skip
        nb = len(p.before)
        rule = p.rule
        group = self._group_text(p.group) if p.group else None
        return LogMatch(rule.id, rule.title, rule.severity, rule.category, path, p.line, p.timestamp, lines[nb],
                        tuple(lines[:nb]), tuple(lines[nb + 1 :]), group, _fingerprint(rule, p.text))  # fmt: skip

    def _group_text(self, group: str) -> str:
        """A CI step's name redacted (once per name: every match in a step has the same)."""
        shown = self._groups.get(group)
        if shown is None:
            shown = self.redactor.redact(group)
            if len(self._groups) < 4096:
                self._groups[group] = shown
        return shown


def _fingerprint(rule: Rule, text: str) -> str | None:
    """``sha256:<12 hex>`` of the secret a credential rule captures in ``text`` (before redaction), or None."""
    if not rule.is_secret:
        return None
    m = rule.text_regex.search(text)
    secret = m.group("secret") if m is not None and "secret" in m.re.groupindex else None
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12] if secret else None


def _excerpt(data: bytes, pos: int, at: int) -> bytes:
    """The text shown for a match at ``at`` in a window: from the word before it (at most 120 bytes before)."""
    space = data.rfind(b" ", max(pos, at - 120), at)
    start = space + 1 if space >= 0 else at
    return _head(data, start, len(data) - start)
