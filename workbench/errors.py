"""Exception hierarchy of the workbench.

Unusable input raises one of these; per-item problems (one bad line, one unreadable file in a tree)
become :class:`workbench.records.EvidenceWarning` records instead and the run goes on.

    WorkbenchError
    ├── EvidenceError
    │   ├── UnsupportedEvidence   "not my format": no loader claims the file
    │   └── MalformedEvidence     "my format, but unusable": names the file (and line when known)
    ├── RuleError                 a detection rule or rule pack is invalid
    ├── CustodyError              the custody ledger is missing, unreadable or inconsistent
    └── ReportError               executing or rendering the report failed
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class EvidenceError(WorkbenchError):
    """A problem with a piece of evidence.

    Attributes:
        path: the evidence file concerned (relative to the case when known).
        line: 1-based line number, or None.
        reason: short human-readable reason.
    """

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class UnsupportedEvidence(EvidenceError):
    """No loader recognises the file (not an error in the file itself)."""


class MalformedEvidence(EvidenceError):
    """The file looks like a known kind of evidence but cannot be used."""


class RuleError(WorkbenchError):
    """A detection rule is invalid.

    Attributes:
        source: the rule file.
        rule_id: the offending rule's id, or None when the file itself is bad.
    """

    def __init__(self, source: str | Path, reason: str, rule_id: str | None = None) -> None:
        self.source = str(source)
        self.rule_id = rule_id
        self.reason = reason
        where = f"{self.source} (rule {rule_id})" if rule_id else self.source
        super().__init__(f"{where}: {reason}")


class CustodyError(WorkbenchError):
    """The custody ledger cannot be read or trusted."""


class ReportError(WorkbenchError):
    """Executing or rendering the investigation report failed.

    Attributes:
        cell_index: index of the failing notebook cell, or None.
        ename / evalue: the exception raised in the cell, when known.
    """

    def __init__(
        self, message: str, *, cell_index: int | None = None, ename: str | None = None, evalue: str | None = None
    ) -> None:
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        super().__init__(message)
