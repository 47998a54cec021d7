"""Streaming log scanner: every rule in one pass per file, matches with line numbers, UTC times and context.

A file (plain or gzip, recognised by its magic bytes) is read in blocks of complete lines (1 MiB by default).
Per block: over-long lines are cut to ``max_line_bytes`` and reported with their number; ANSI/terminal escape
sequences are removed before matching; a candidate finder (:mod:`workbench.rulepack.matchers`) proposes lines for all
rules at once, and with hyperscan also finds the first invalid UTF-8 sequence in the same pass (the ``re`` finder
decodes the block instead); the first one per file is reported (bytes are replaced on output); each proposal is
confirmed with the rule's own regex. Matched lines are decoded, stripped of control characters, given the
timestamp they start with (:mod:`workbench.logscan.timestamps`), the CI step they belong to (GitHub Actions
``##[group]``, GitLab ``section_start``, Jenkins ``[Pipeline] { (stage)``), a few lines of context, and are
redacted (:mod:`workbench.rulepack.redact`) before they leave this module. A damaged gzip keeps every line read
before the damage and adds one warning. Nothing from the evidence is ever executed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from workbench import safeio
from workbench.logscan.lines import _after, _before, _clean, _head, printable, strip_ansi
from workbench.logscan.results import FileScan, LogMatch, RuleStats, ScanOptions
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


@dataclass(slots=True)
class _Pending:
    rule: Rule
    line: int
    timestamp: datetime | None
    text: str
    before: list[str]
    after: list[str]
    group: str | None
    need: int


@dataclass(slots=True)
class _State:
    result: FileScan
    reference: datetime | None
    first: bool = True
    decode_reported: bool = False
    group: str | None = None
    tail: list[bytes] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    built: list[_Pending] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)

    def warn(self, line: int | None, reason: str) -> None:
        self.result.warnings.append(EvidenceWarning(self.result.path, line, reason))

    def stop(self, reason: str) -> None:
        if self.result.complete:
            self.result.complete = False
            self.warn(None, reason)


class Scanner:
    """Scans log files with a rule set.

    Args:
        rules: the rules (default: the shipped pack).
        options: scan options.

    Raises:
        RuleError: a rule cannot join the combined scan.
    """

    def __init__(self, rules: RuleSet | None = None, options: ScanOptions | None = None) -> None:
        self.rules = rules if rules is not None else builtin_rules()
        self.options = options or ScanOptions()
        self._rules: list[Rule] = list(self.rules)
        backend = resolve_backend(self.options.backend)
        patterns = tuple(Pattern(r.pattern, r.ignore_case, r.source, r.id) for r in self._rules)
        patterns += tuple(Pattern(m, False, "<built-in group markers>", None) for m in _MARKERS)
        self._utf8_id = len(patterns) if backend == "hyperscan" else -1
        if backend == "hyperscan":
            patterns += (Pattern(_INVALID_UTF8, False, "<built-in UTF-8 check>", None, exact=True),)
        self._finder: Finder = make_finder(patterns, backend)
        self.redactor = Redactor(self._rules, backend=backend)

    @property
    def backend(self) -> str:
        """Name of the candidate finder in use (``hyperscan`` or ``re``)."""
        return self._finder.name

    def scan_path(self, path: str | Path, display: str | None = None) -> FileScan:
        """Scan one file from disk (plain or gzip); never raises for bad content or an unreadable file."""
        path = Path(path)
        result = FileScan(path=display or str(path), backend=self.backend)
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
            if fh.peek(2)[:2] == _GZIP_MAGIC:
                result.compressed = True
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    self._scan(gz, _State(result, reference))
            elif (workers := self._workers(fh)) > 1:
                from workbench.logscan.parallel import scan_parallel  # imports this module

                merged = scan_parallel(self, path, result.path, reference, workers)
                if merged is not None:
                    return merged
                self._scan(fh, _State(result, reference))
            else:
                self._scan(fh, _State(result, reference))
        return result

    def _workers(self, fh: IO[bytes]) -> int:
        """Processes to scan a plain file with: 1 unless it is a regular file of at least ``parallel_min_bytes``."""
        opt = self.options
        info = os.fstat(fh.fileno())
        if opt.workers == 1 or not stat.S_ISREG(info.st_mode) or info.st_size < opt.parallel_min_bytes:
            return 1
        if opt.max_bytes is not None and opt.max_bytes < info.st_size:
            return 1
        return max(1, opt.workers or os.cpu_count() or 1)

    def scan_stream(self, stream: IO[bytes], display: str) -> FileScan:
        """Scan an open binary stream (already decompressed), e.g. ``io.BytesIO`` in tests."""
        result = FileScan(path=display, backend=self.backend)
        self._scan(stream, _State(result, self.options.reference_time))
        return result

    # ------------------------------------------------------------------------------------------------ reading
    def _read(self, stream: IO[bytes], st: _State) -> bytes:
        """Up to ``block_bytes``; after damage or ``max_bytes`` nothing more (the data read before is kept)."""
        if not st.result.complete:
            return b""
        limit = self.options.max_bytes
        size = self.options.block_bytes
        if limit is not None:
            size = min(size, limit - st.result.bytes_scanned)
            if size <= 0:
                with contextlib.suppress(EOFError, OSError, zlib.error):
                    if stream.read(1):
                        st.stop(f"scan stopped after {limit} bytes (max_bytes); the rest of the file was not read")
                return b""
        parts: list[bytes] = []
        got = 0
        try:
            while got < size:  # gzip in small steps, so that a truncated stream loses no more than one step
                part = stream.read1(min(size - got, 1 << 16)) if st.result.compressed else stream.read(size - got)
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except EOFError:
            st.stop("gzip stream truncated; the lines before the cut were scanned")
        except (OSError, zlib.error) as exc:
            st.stop(f"read error ({exc}); the lines before it were scanned")
        st.result.bytes_scanned += got
        return b"".join(parts)

    def _blocks(self, stream: IO[bytes], st: _State):
        cap = self.options.max_line_bytes
        carry, skipping = b"", False
        while data := self._read(stream, st):
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data, skipping = data[nl + 1 :], False
            buf = carry + data if carry else data
            last = buf.rfind(b"\n")
            if last < 0:
                carry = buf
            else:
                carry = buf[last + 1 :]
                yield self._cap(buf[: last + 1])
            if len(carry) > cap:  # an over-long line still being read: keep its head, skip the rest
                yield _head(carry, 0, cap) + b"\n", [0]
                carry, skipping = b"", True
        if carry:
            yield carry + b"\n", []

    def _cap(self, block: bytes) -> tuple[bytes, list[int]]:
        """Cut lines longer than ``max_line_bytes``; returns the block and the offsets of the cut lines."""
        cap = self.options.max_line_bytes
        if len(block) <= cap:
            return block, []
        pos, copied, out_len = 0, 0, 0
        pieces: list[bytes] = []
        cuts: list[int] = []
        while len(block) - pos > cap:
            nl = block.rfind(b"\n", pos, pos + cap + 1)
            if nl >= 0:
                pos = nl + 1
                continue
            end = block.find(b"\n", pos + cap)
            head = _head(block, pos, cap)
            pieces += [block[copied:pos], head, b"\n"]
            out_len += pos - copied
            cuts.append(out_len)
            out_len += len(head) + 1
            copied = pos = end + 1
        if not pieces:
            return block, []
        pieces.append(block[copied:])
        return b"".join(pieces), cuts

    # ------------------------------------------------------------------------------------------------ scanning
    def _scan(self, stream: IO[bytes], st: _State) -> None:
        # One thread on purpose: hyperscan releases the GIL while scanning, but each match callback needs it back,
        # and a worker thread waiting for the GIL behind this one was measured slower than scanning inline (large
        # plain files are split between processes instead, see :mod:`workbench.logscan.parallel`).
        self._run(stream, st)
        st.result.matches = [self._finish(p, st.result.path) for p in st.built]
        st.result.warnings.sort(key=lambda w: (w.line is not None, w.line or 0))

    def _run(self, stream: IO[bytes], st: _State) -> None:
        for block, base, count, newline in self._prepared(stream, st):
            self._process(block, base, count, self._find(block, newline), st)

    def _prepared(self, stream: IO[bytes], st: _State):
        """Blocks ready for matching: long lines reported, BOM dropped, UTF-8 checked, escapes removed."""
        base = 0
        for block, cuts in self._blocks(stream, st):
            for off in cuts:
                cut = f"line longer than {self.options.max_line_bytes} bytes; only its start was scanned"
                st.warn(base + block.count(b"\n", 0, off) + 1, cut)
            if st.first:
                st.first = False
                block = block.removeprefix(b"\xef\xbb\xbf")
                if b"\x00" in block[:8192]:
                    st.warn(None, "binary data (NUL bytes) in a log; scanned as text")
            if self._utf8_id < 0 and not st.decode_reported and not block.isascii():
                try:
                    block.decode("utf-8")
                except UnicodeDecodeError as exc:
                    st.decode_reported = True
                    st.warn(base + block.count(b"\n", 0, exc.start) + 1, _BAD_UTF8)
            block = strip_ansi(block)
            newline = np.frombuffer(block, dtype=np.uint8) == 10
            count = int(np.count_nonzero(newline))
            yield block, base, count, newline
            base += count

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

    def _process(self, block: bytes, base: int, count: int, found: tuple[list, list[int]], st: _State) -> None:
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

    def _line(self, block: bytes, start: int, end: int, ids: frozenset[int] | None, number: int, st: _State) -> None:
        line = block[start:end]
        n = len(self._rules)
        if ids is None or max(ids) >= n:
            marker = _GROUP.search(_clean(line))
            if marker is not None:
                name = marker.group("gh") or marker.group("gltitle") or marker.group("gl") or marker.group("jk")
                st.group = (name or "").strip()[:200] or None
        if ids is None:
            proposed = self._rules
        else:
            proposed = [self._rules[i] for i in (sorted(ids) if len(ids) > 1 else ids) if i < n]
        matched = [r for r in proposed if r.search(line) is not None]
        if not matched:
            return
        text = _clean(line)
        ts = line_timestamp(text, naive_tz=self.options.naive_tz, reference=st.reference)
        k = self.options.context
        before: list[str] | None = None
        after: list[str] = []
        for rule in matched:
            stats = st.result.stats.setdefault(rule.id, RuleStats(first_line=number))
            stats.count += 1
            stats.last_line = number
            if ts is not None:
                stats.first_time = stats.first_time or ts
                stats.last_time = ts
            if st.kept.get(rule.id, 0) >= self.options.max_matches_per_rule:
                continue
            st.kept[rule.id] = st.kept.get(rule.id, 0) + 1
            if before is None:
                before = [_clean(x) for x in _before(block, start, k, st.tail)]
                after = [_clean(x) for x in _after(block, end, len(block), k)]
            p = _Pending(rule, number, ts, text, list(before), list(after), st.group, k - len(after))
            st.built.append(p)
            if p.need:
                st.pending.append(p)

    def _fill_pending(self, block: bytes, st: _State) -> None:
        for p in st.pending:
            got = [_clean(x) for x in _after(block, -1, len(block), p.need)]
            p.after += got
            p.need -= len(got)
        st.pending = [p for p in st.pending if p.need > 0]

    def _finish(self, p: _Pending, path: str) -> LogMatch:
        lines = self.redactor.redact_lines([*p.before, p.text, *p.after])
        cap = self.options.max_display_chars
        lines = [x if len(x) <= cap else x[:cap] + f"…[{len(x) - cap} more characters]" for x in lines]
        nb = len(p.before)
        r = p.rule
        group = self.redactor.redact(p.group) if p.group else None
        return LogMatch(r.id, r.title, r.severity, r.category, path, p.line, p.timestamp, lines[nb],
                        tuple(lines[:nb]), tuple(lines[nb + 1 :]), group, _fingerprint(r, p.text))  # fmt: skip


def _fingerprint(rule: Rule, text: str) -> str | None:
    """``sha256:<12 hex>`` of the secret a credential rule captures in ``text`` (before redaction), or None."""
    if not rule.is_secret:
        return None
    m = rule.text_regex.search(text)
    secret = m.group("secret") if m is not None and "secret" in m.re.groupindex else None
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12] if secret else None
