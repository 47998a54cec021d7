"""Records of the log scanner: options in, per-file results and matches out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from workbench.evidence.pipeline_log import LOG_BUDGET, LogBudget
from workbench.records import EvidenceWarning, Severity
from workbench.textsafe import clean_text, replaced_reason

__all__ = ["FileScan", "LogMatch", "RuleStats", "ScanOptions", "empty_scan"]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to scan.

    Attributes:
        context: lines of context kept before and after each match.
        max_matches_per_rule: matches kept in full per rule and file; further ones are only counted.
        max_kept_per_file / max_kept_per_case: matches kept in full per file and over every file the scanner reads
            (one scanner per case); further ones are only counted (counts, first and last lines and times stay exact).
        max_display_chars: matched and context lines are cut to this many characters (after redaction).
        naive_tz: zone of timestamps written without an offset.
        reference_time: capture time giving the year of syslog timestamps (default: the file's mtime).
        backend: candidate finder, ``auto``, ``hyperscan`` or ``re``.
        budget: decompressed bytes and time per file and over all the scanner's files (one scanner per case); past
            it a file is stopped, what was found is kept, and :attr:`FileScan.stopped` says why.
        block_bytes: bytes read per block (1 MiB keeps a block in the CPU cache across the passes over it).
        max_line_bytes: a longer line is scanned in windows of this many bytes (:mod:`workbench.logscan.longlines`).
        window_overlap: bytes shared by consecutive windows of a long line: any match up to this long is found (None:
            an eighth of ``max_line_bytes``, 8 KiB by default).
        workers: processes scanning one large plain (not gzip) file, each a slice of its lines; None for one per CPU
            core, 1 for a scan in this process only. The results are the same either way.
        parallel_min_bytes: files smaller than this are always scanned in this process.
    """

    context: int = 2
    max_matches_per_rule: int = 1000
    max_kept_per_file: int = 10_000
    max_kept_per_case: int = 50_000
    max_display_chars: int = 2000
    naive_tz: tzinfo = UTC
    reference_time: datetime | None = None
    backend: str = "auto"
    budget: LogBudget = LOG_BUDGET
    block_bytes: int = 1024 * 1024
    max_line_bytes: int = 64 * 1024
    window_overlap: int | None = None
    workers: int | None = None
    parallel_min_bytes: int = 64 * 1024 * 1024

    @property
    def overlap(self) -> int:
        """The window overlap in use (see ``window_overlap``)."""
        return self.window_overlap if self.window_overlap is not None else self.max_line_bytes // 8


@dataclass(frozen=True, slots=True)
class LogMatch:
    """One rule matching one line.

    Attributes:
        rule_id / title / severity / category: from the rule.
        path: the file as given or relative to the case.
        line: 1-based line number.
        timestamp: the line's own timestamp (UTC), or None.
        text: the line, escapes removed, control characters shown as escapes, secrets redacted, length-capped.
        before / after: up to ``context`` neighbouring lines, treated the same way.
        group: the CI step or section the line belongs to, when the log marks them.
        fingerprint: for a credential rule, ``sha256:`` and the first 12 hex digits of the SHA-256 of the secret
            (so that the same credential can be recognised across lines and cases without keeping it), else None.
    """

    rule_id: str
    title: str
    severity: Severity
    category: str
    path: str
    line: int
    timestamp: datetime | None
    text: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    group: str | None = None
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``scan-logs --json`` contract fields first)."""
        ts = self.timestamp.isoformat().replace("+00:00", "Z") if self.timestamp else None
        return {"rule_id": self.rule_id, "severity": self.severity.value, "path": self.path, "line": self.line,
                "timestamp": ts, "text": self.text, "title": self.title, "category": self.category,
                "group": self.group, "before": list(self.before), "after": list(self.after)}  # fmt: skip


@dataclass(slots=True)
class RuleStats:
    """Every match of one rule in one file (also those beyond ``max_matches_per_rule``)."""

    count: int = 0
    first_line: int = 0
    last_line: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None


@dataclass(slots=True)
class FileScan:
    """The result of scanning one file.

    Attributes:
        path: display path.
        matches: kept matches in line order.
        stats: rule id -> counts and first/last line and time of all its matches.
        warnings: problems met (unreadable, damaged gzip, invalid UTF-8, long lines, binary data), by line.
        lines / bytes_scanned: how much was read (decompressed).
        compressed: the file was gzip.
        complete: False when reading stopped early (damage, read error, a budget).
        stopped: why reading stopped on a budget (``stopped after 1024 MiB decompressed (budget)``), else None:
            the rest of the file was not examined.
        backend: candidate finder used.
    """

    path: str
    matches: list[LogMatch] = field(default_factory=list)
    stats: dict[str, RuleStats] = field(default_factory=dict)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    lines: int = 0
    bytes_scanned: int = 0
    compressed: bool = False
    complete: bool = True
    stopped: str | None = None
    backend: str = ""


def empty_scan(display: str, backend: str) -> FileScan:
    """An empty result for the file shown as ``display``: a name that is not valid Unicode (bytes decoded with
    ``surrogateescape``) is shown with U+FFFD instead, and said so."""
    shown, changed = clean_text(display)
    result = FileScan(path=shown, backend=backend)
    if changed:
        result.warnings.append(EvidenceWarning(shown, None, replaced_reason("file name")))
    return result
