"""Findings, Events and evidence warnings: the common currency of every analysis (contract).

Every analysis returns :class:`Finding` and :class:`Event` records; the timeline, the report, the JSON
outputs and the communication templates consume them. Records are frozen and carry their provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from workbench.categories import CATEGORIES
from workbench.textsafe import clean_data, clean_text

if TYPE_CHECKING:  # pandas is imported by to_frame: every CLI command imports this module, few need a DataFrame
    import pandas as pd

__all__ = [
    "CATEGORIES",
    "Event",
    "EvidenceWarning",
    "Finding",
    "Severity",
    "to_frame",
]


class Severity(StrEnum):
    """Severity of a finding or event, ordered from most to least severe."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """4 for critical down to 0 for info; higher is worse."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Accept any case ("CRITICAL", "Critical") and a few synonyms ("warning", "error")."""
        if isinstance(value, Severity):
            return value
        text = str(value).strip().lower()
        text = {"warning": "medium", "warn": "medium", "error": "high", "fatal": "critical"}.get(text, text)
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown severity {value!r}; expected one of {', '.join(s.value for s in cls)}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()} given to a record; normalise to UTC first")
    return ts.astimezone(UTC)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an analysis concluded from the evidence.

    Attributes:
        id: stable identifier, derived from category, detector, title and evidence location.
        severity: how bad it is.
        category: one of :data:`CATEGORIES`.
        title: one line for tables.
        detail: a paragraph for the report (plain text; escaped on output).
        detector: module that produced it, e.g. ``workbench.checks.integrity``.
        evidence: where it was seen: ``path`` (relative), and where relevant ``line``, ``tensor``,
            ``member``, ``sha256`` and other flat scalar fields; the one list allowed is ``examples`` (at most
            three short strings) of a grouped finding, with ``count``, ``last_line``, ``first_time`` and
            ``last_time`` (:mod:`workbench.grouping`).
        atlas: MITRE ATLAS technique ids.
        timestamp: when it happened (UTC), if the evidence says.
    """

    id: str
    severity: Severity
    category: str
    title: str
    detail: str = ""
    detector: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    atlas: tuple[str, ...] = ()
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown finding category {self.category!r}")
        # the last net: whatever a parser let through, a record's text is valid Unicode (ASCII costs nothing)
        object.__setattr__(self, "title", clean_text(self.title)[0])
        object.__setattr__(self, "detail", clean_text(self.detail)[0])
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "atlas", tuple(self.atlas))
        object.__setattr__(self, "evidence", clean_data(dict(self.evidence))[0])
        object.__setattr__(self, "timestamp", _utc(self.timestamp))

    @classmethod
    def create(
        cls,
        *,
        severity: Severity | str,
        category: str,
        title: str,
        detail: str = "",
        detector: str = "",
        evidence: Mapping[str, Any] | None = None,
        atlas: Iterable[str] = (),
        timestamp: datetime | None = None,
    ) -> Finding:
        """Build a finding with a deterministic id (same evidence, same id, run after run)."""
        evidence = dict(evidence or {})
        key = json.dumps([category, detector, title, evidence], sort_keys=True, default=str)
        fid = "F-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        return cls(
            id=fid,
            severity=Severity.parse(severity),
            category=category,
            title=title,
            detail=detail,
            detector=detector,
            evidence=evidence,
            atlas=tuple(atlas),
            timestamp=timestamp,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """A finding read back from :meth:`to_dict`'s form (a stored result); validated as any other."""
        ts = data.get("timestamp")
        return cls(id=str(data["id"]), severity=Severity.parse(data["severity"]), category=str(data["category"]),
                   title=str(data["title"]), detail=str(data.get("detail") or ""),
                   detector=str(data.get("detector") or ""), evidence=dict(data.get("evidence") or {}),
                   atlas=tuple(data.get("atlas") or ()),
                   timestamp=datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the contract's field names."""
        return {
            "id": self.id,
            "severity": self.severity.value,
            "category": self.category,
            "title": self.title,
            "detail": self.detail,
            "detector": self.detector,
            "evidence": dict(self.evidence),
            "atlas": list(self.atlas),
            "timestamp": _iso(self.timestamp),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at a point in time, for the timeline.

    Attributes:
        timestamp: when (UTC, timezone-aware).
        source: evidence file it came from (relative to the case).
        kind: namespaced kind, e.g. ``ml:model:file_modified``, ``ci:log:match``, ``ir:action``.
        message: one line (plain text; escaped on output).
        severity: importance for colouring.
        ref: id of the finding it supports, or None.
        timestamp_desc: what the time means (Timesketch ``timestamp_desc``).
        extra: flat scalar fields exported alongside.
    """

    timestamp: datetime
    source: str
    kind: str
    message: str
    severity: Severity = Severity.INFO
    ref: str | None = None
    timestamp_desc: str = "Event Time"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ts = _utc(self.timestamp)
        if ts is None:
            raise ValueError("an Event needs a timestamp")
        object.__setattr__(self, "timestamp", ts)
        object.__setattr__(self, "message", clean_text(self.message)[0])
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "extra", clean_data(dict(self.extra))[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the contract's field names."""
        return {
            "timestamp": _iso(self.timestamp),
            "source": self.source,
            "kind": self.kind,
            "message": self.message,
            "severity": self.severity.value,
            "ref": self.ref,
            "timestamp_desc": self.timestamp_desc,
            **{f"x_{k}": v for k, v in self.extra.items()},
        }

    def to_timesketch(self) -> dict[str, Any]:
        """One Timesketch JSONL row: message, datetime, timestamp (µs), timestamp_desc, data_type, tag."""
        micros = (self.timestamp - _EPOCH) // timedelta(microseconds=1)
        row: dict[str, Any] = {
            "message": self.message,
            "datetime": self.timestamp.isoformat(),
            "timestamp": micros,
            "timestamp_desc": self.timestamp_desc,
            "data_type": self.kind.replace(":", "_"),
            "tag": [self.severity.value, self.kind.split(":", 1)[0]],
            "source_file": self.source,
            "severity": self.severity.value,
            "kind": self.kind,
        }
        if self.ref:
            row["finding_id"] = self.ref
        for key, value in self.extra.items():
            row.setdefault(key, value)
        return row


@dataclass(frozen=True, slots=True)
class EvidenceWarning:
    """A per-item problem met while reading evidence; the run went on.

    Attributes:
        path: the evidence file (relative to the case when known).
        line: 1-based line number, or None for file-level problems.
        reason: what was wrong.
    """

    path: str
    line: int | None
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", clean_text(str(self.path))[0])
        object.__setattr__(self, "reason", clean_text(str(self.reason))[0])

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Columns of ``to_frame`` per record type, in order (documented contract for notebooks and plots).
FINDING_COLUMNS = [
    "id",
    "severity",
    "category",
    "title",
    "detail",
    "detector",
    "path",
    "line",
    "atlas",
    "timestamp",
    "evidence",
]
EVENT_COLUMNS = ["timestamp", "source", "kind", "message", "severity", "ref", "timestamp_desc"]
WARNING_COLUMNS = ["path", "line", "reason"]


def to_frame(records: Iterable[Finding | Event | EvidenceWarning], kind: type | None = None) -> pd.DataFrame:
    """Records as a DataFrame with documented columns.

    Findings: ``id`` str, ``severity`` ordered categorical (critical first), ``category``, ``title``, ``detail``,
    ``detector`` str, ``path`` str (evidence path), ``line`` nullable Int64, ``atlas`` str (comma-joined),
    ``timestamp`` datetime64[UTC], ``evidence`` dict. Sorted by severity then category.

    Events: ``timestamp`` datetime64[UTC], ``source``, ``kind``, ``message`` str, ``severity`` ordered
    categorical, ``ref`` str or None, ``timestamp_desc`` str. Sorted by time.

    Warnings: ``path`` str, ``line`` nullable Int64, ``reason`` str.

    An empty input gives an empty frame with the columns of ``kind`` (Finding when not given).
    """
    import pandas as pd

    records = list(records)
    kind = kind or (type(records[0]) if records else Finding)
    sev_type = pd.CategoricalDtype([s.value for s in Severity], ordered=True)
    if kind is Finding:
        rows = [
            {
                "id": f.id,
                "severity": f.severity.value,
                "category": f.category,
                "title": f.title,
                "detail": f.detail,
                "detector": f.detector,
                "path": f.evidence.get("path"),
                "line": f.evidence.get("line"),
                "atlas": ", ".join(f.atlas),
                "timestamp": f.timestamp,
                "evidence": dict(f.evidence),
            }
            for f in records
        ]
        df = pd.DataFrame(rows, columns=FINDING_COLUMNS)
        df["severity"] = df["severity"].astype(sev_type)
        df["line"] = df["line"].astype("Int64")
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        return df.sort_values(["severity", "category", "title"], kind="stable").reset_index(drop=True)
    if kind is Event:
        rows = [{c: getattr(e, c) for c in EVENT_COLUMNS} for e in records]
        df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
        df["severity"] = df["severity"].map(lambda s: s.value if isinstance(s, Severity) else s).astype(sev_type)
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        return df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if kind is EvidenceWarning:
        df = pd.DataFrame([{f.name: getattr(w, f.name) for f in fields(w)} for w in records], columns=WARNING_COLUMNS)
        df["line"] = df["line"].astype("Int64")
        return df
    raise TypeError(f"to_frame does not know {kind!r}")


def now_utc() -> datetime:
    """The current time, UTC, timezone-aware (one place to patch in tests)."""
    return datetime.now(UTC)
