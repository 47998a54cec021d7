"""What the scanner keeps while it reads one file: the result so far, matches waiting for their context, the long
line being read in windows, and the file's budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workbench.evidence.pipeline_log import FileAllowance
from workbench.logscan.results import FileScan
from workbench.records import EvidenceWarning
from workbench.rulepack.rules import Rule

__all__ = ["Long", "Pending", "State"]


@dataclass(slots=True)
class Pending:
    """A kept match whose context lines after it are still being read (``need`` more)."""

    rule: Rule
    line: int
    timestamp: datetime | None
    text: str
    before: list[str]
    after: list[str]
    group: str | None
    need: int


@dataclass(slots=True)
class Long:
    """The line longer than the window being scanned: its number, time, step, context before it, its head (the
    context it gives its neighbours), per rule index where the rule first matched and the excerpt shown; the rules
    found in the last window (``recent``) and those its ``unless`` exclusions ruled out (``unless``): an exclusion
    in a neighbouring window rules out a match too."""

    number: int
    timestamp: datetime | None
    before: list[str]
    head: bytes
    found: dict[int, tuple[int, str]] = field(default_factory=dict)
    recent: set[int] = field(default_factory=set)
    unless: set[int] = field(default_factory=set)


@dataclass(slots=True)
class State:
    """One file's scan in progress.

    Attributes:
        result: what has been found so far.
        reference: capture time giving syslog times their year.
        allowance: the file's share of the scanner's budget (None: no budget).
        kept_cap: matches kept in full in this file, over all rules (the per-rule cap applies too).
    """

    result: FileScan
    reference: datetime | None
    first: bool = True
    decode_reported: bool = False
    group: str | None = None
    allowance: FileAllowance | None = None
    kept_cap: int | None = None
    kept_total: int = 0
    long_warned: int = 0
    tail: list[bytes] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    built: list[Pending] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    long: Long | None = None

    def warn(self, line: int | None, reason: str) -> None:
        self.result.warnings.append(EvidenceWarning(self.result.path, line, reason))

    def stop(self, reason: str) -> None:
        """Stop reading (damage, read error): the lines read before are kept, with one warning."""
        if self.result.complete:
            self.result.complete = False
            self.warn(None, reason)

    def over_budget(self, reason: str) -> None:
        """Stop reading on a budget: like :meth:`stop`, and the file is recorded as not examined (``stopped``)."""
        if self.result.complete:
            self.result.stopped = reason
        self.stop(reason)

    def expired(self) -> bool:
        """Whether the file's time budget is spent (and if so, stop)."""
        if self.allowance is not None and self.allowance.expired():
            self.over_budget(self.allowance.stop_time())
            return True
        return False

    def keep(self, rule_id: str, per_rule: int) -> bool:
        """Whether one more match of ``rule_id`` is kept in full (else it is only counted); counts it if so."""
        if self.kept.get(rule_id, 0) >= per_rule or (self.kept_cap is not None and self.kept_total >= self.kept_cap):
            return False
        self.kept[rule_id] = self.kept.get(rule_id, 0) + 1
        self.kept_total += 1
        return True
