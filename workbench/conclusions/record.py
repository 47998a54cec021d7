"""The conclusions record (contract): what happened, computed once from the findings and events of a run.

Every output reads it: the report's summary, milestones table and timeline shading, the communication drafts, the
recommendations, the explorers and ``findings.json`` (its ``conclusions`` object, :meth:`Conclusions.to_dict`).
Nothing else derives a verdict, a time or a window. The rules that fill it are in :mod:`workbench.conclusions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workbench.estimates import ClassExcess, Flipped, OutputShift
from workbench.records import Severity
from workbench.timeparse import display_time

__all__ = [
    "COVERAGE_STATUSES",
    "END_BASES",
    "VERDICTS",
    "Action",
    "Compromise",
    "Conclusions",
    "Coverage",
    "Exposure",
    "Indicator",
    "Interval",
    "Milestone",
    "Reason",
    "format_duration",
    "iso",
]

VERDICTS = ("compromised", "suspicious", "clean", "inconclusive")
COVERAGE_STATUSES = ("analysed", "partial", "not_applicable", "failed")
END_BASES = ("isolation", "rollback", "end_of_records")


def iso(ts: datetime | None) -> str | None:
    """``2026-11-19T09:40:33.384Z`` (milliseconds only when present), or None: the time format of the machine
    outputs (``findings.json``). Human outputs use :func:`display` (to the second)."""
    if ts is None:
        return None
    spec = "milliseconds" if ts.microsecond else "seconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


def display(ts: datetime | None) -> str | None:
    """The one time format of every human output (``2026-11-19T09:40:33Z``), see
    :func:`workbench.timeparse.display_time`."""
    return display_time(ts)


def format_duration(delta: timedelta | None) -> str:
    """``5 d 8 h``, ``1 h 30 min``, ``4 min 2 s``, ``45 s``: the two largest units, rounded to the second of them
    (a zero second unit is left out: ``1 h``); ``—`` for None."""
    if delta is None:
        return "—"
    seconds = round(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "< 1 s" if delta else "0 s"
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    first = next(i for i, (size, _) in enumerate(units) if seconds >= size)
    if first == len(units) - 1:
        return f"{sign}{seconds} s"
    (big, big_name), (small, small_name) = units[first], units[first + 1]
    rounded = round(seconds / small) * small
    whole, part = divmod(rounded, big)
    tail = f" {part // small} {small_name}" if part else ""
    return f"{sign}{whole} {big_name}{tail}"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for the verdict: a plain sentence, and the finding it rests on (None for coverage gaps)."""

    sentence: str
    finding: str | None = None
    severity: Severity | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"finding": self.finding, "sentence": self.sentence,
                "severity": self.severity.value if self.severity else None, "group": self.group}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Coverage:
    """What one analysis could examine.

    Attributes:
        section: section key (``model``, ``logs``...).
        title: its human name.
        status: ``analysed``, ``partial`` (a cap or budget left evidence unexamined), ``not_applicable`` (no such
            evidence in the case) or ``failed``.
        detail: why not applicable, partial, or the error; empty when analysed.
        files: the evidence files it read (relative to the case).
        limits: what it could not examine in the evidence it had (an analysed section may still have limits).
        unexamined: for ``partial``, what was not examined (``"path: reason"``).
    """

    section: str
    title: str
    status: str
    detail: str = ""
    files: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    unexamined: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in COVERAGE_STATUSES:
            raise ValueError(f"unknown coverage status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "title": self.title, "detail": self.detail, "files": list(self.files),
                "limits": list(self.limits), "unexamined": list(self.unexamined)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Compromise:
    """When the compromise started and on what evidence.

    Attributes:
        start: the earliest evidenced attacker action (UTC), or None when no evidence dates it.
        basis: the finding (or event) id that sets it.
        rule: the rule used, in words.
        source / summary: the evidence file and the title of the finding that sets it.
        statistical_onset: the output shift the drift analysis found, reported as corroboration (None if none).
        onset_consistent: whether the shift's onset interval reaches the start (None without both).
        candidates: ``(rule, time, finding id)`` of every dated attacker action considered.
    """

    start: datetime | None
    basis: str | None
    rule: str
    source: str | None = None
    summary: str | None = None
    statistical_onset: OutputShift | None = None
    onset_consistent: bool | None = None
    candidates: tuple[tuple[str, datetime, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "basis": self.basis,
            "rule": self.rule,
            "source": self.source,
            "summary": self.summary,
            "statistical_onset": self.statistical_onset.to_dict() if self.statistical_onset else None,
            "onset_consistent": self.onset_consistent,
            "candidates": [{"rule": r, "time": iso(t), "finding": f} for r, t, f in self.candidates],
        }


@dataclass(frozen=True, slots=True)
class Exposure:
    """The window in which the compromised service served, and what the predictions in it show.

    Attributes:
        start / end: the window (UTC); ``start`` is the compromise start, ``end`` the first of isolation, rollback
            or the end of the records.
        end_basis: ``isolation``, ``rollback`` or ``end_of_records``.
        end_rule: the end's evidence in words.
        predictions: predictions served in the window (None without prediction records).
        excess: net excess per class against the predictions outside the window (or the baseline).
        compared_with: what ``excess`` compares with, or why nothing could be compared.
        shifted: whether some class's excess interval excludes 0.
        flipped: the flipped-prediction estimate, when confidences allow it.
    """

    start: datetime | None
    end: datetime | None
    end_basis: str
    end_rule: str
    predictions: int | None = None
    excess: tuple[ClassExcess, ...] = ()
    compared_with: str = ""
    shifted: bool = False
    flipped: Flipped | None = None

    @property
    def duration(self) -> timedelta | None:
        return None if self.start is None or self.end is None else self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "end_basis": self.end_basis,
            "end_rule": self.end_rule,
            "duration": format_duration(self.duration) if self.duration is not None else None,
            "predictions": self.predictions,
            "affected": {
                "net_excess_by_class": {e.label: e.to_dict() for e in self.excess},
                "net_excess_compared_with": self.compared_with,
                "shifted": self.shifted,
                "flipped": self.flipped.to_dict() if self.flipped else None,
            },
        }


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator of compromise (never a secret: a credential is named by its fingerprint).

    Attributes:
        kind: ``ip``, ``host``, ``url``, ``sha256``, ``package``, ``index_url`` or ``credential``.
        value: the indicator as found (display layers defang it).
        first_seen: earliest time a finding citing it has, or None.
        findings: ids of the findings that cite it.
        context: what it is, in a few words (``C2 peer of gunicorn pid 19``).
    """

    kind: str
    value: str
    first_seen: datetime | None
    findings: tuple[str, ...]
    context: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "first_seen": iso(self.first_seen),
                "findings": list(self.findings), "context": self.context}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Action:
    """Something to do, derived from findings.

    Attributes:
        key: the rule's stable id (``block_hosts``, ``rotate_credentials``...).
        priority: critical, high or medium.
        text: one or two sentences (plain text; may quote evidence, escape on output).
        because: ids of the findings that justify it.
        kind: ``now`` (remediation of this incident) or ``preventive`` (a policy against a recurrence).
        targets: what it applies to (hosts, credentials, packages, models).
    """

    key: str
    priority: Severity
    text: str
    because: tuple[str, ...] = ()
    kind: str = "now"
    targets: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``"CRITICAL: text"``, the playbook's form."""
        return f"{self.priority.value.upper()}: {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "priority": self.priority.value, "kind": self.kind, "text": self.text,
                "because": list(self.because), "targets": list(self.targets)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Milestone:
    """One point of the incident's story: ``time`` None when the evidence does not show it (``rule`` says why)."""

    name: str
    label: str
    time: datetime | None
    rule: str
    source: str | None = None
    message: str | None = None
    ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "time": iso(self.time), "rule": self.rule,
                "source": self.source, "message": self.message, "ref": self.ref}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Interval:
    """A span between two milestones; ``end`` None with a start means still open."""

    name: str
    label: str
    start: datetime | None
    end: datetime | None
    rule: str

    @property
    def duration(self) -> timedelta | None:
        return None if self.start is None or self.end is None else self.end - self.start

    @property
    def text(self) -> str:
        """The duration for people, ``open`` when only the start is known, ``—`` when there is no start."""
        if self.start is not None and self.end is None:
            return "open (no end in the evidence)"
        return format_duration(self.duration)

    def to_dict(self) -> dict[str, Any]:
        d = self.duration
        return {"name": self.name, "label": self.label, "start": iso(self.start), "end": iso(self.end),
                "seconds": None if d is None else d.total_seconds(), "text": self.text, "rule": self.rule}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Conclusions:
    """Everything a reviewer signs, computed once (see :func:`workbench.conclusions.derive_conclusions`).

    Attributes:
        verdict: one of :data:`VERDICTS`.
        reasons: the reasons, ranked by what the attack did (coverage gaps for ``inconclusive``).
        coverage: per section, what it could examine.
        compromise: when it started and on what evidence; None when nothing is compromised.
        exposure: the exposure window; None when there is no exposure.
        indicators: every indicator of compromise.
        actions: what to do now.
        recommendations: preventive measures the findings justify.
        milestones / intervals: the incident's story and the spans reviewers ask for.
    """

    verdict: str
    reasons: tuple[Reason, ...]
    coverage: dict[str, Coverage]
    compromise: Compromise | None
    exposure: Exposure | None
    indicators: tuple[Indicator, ...] = ()
    actions: tuple[Action, ...] = ()
    recommendations: tuple[Action, ...] = ()
    milestones: dict[str, Milestone] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    @property
    def gaps(self) -> list[Coverage]:
        """Sections that could not examine everything (partial, not applicable or failed)."""
        return [c for c in self.coverage.values() if c.status != "analysed"]

    def to_dict(self) -> dict[str, Any]:
        """The ``conclusions`` object of ``findings.json`` (contract)."""
        return {
            "verdict": self.verdict,
            "reasons": [r.to_dict() for r in self.reasons],
            "coverage": {k: c.to_dict() for k, c in self.coverage.items()},
            "compromise": self.compromise.to_dict() if self.compromise else None,
            "exposure": self.exposure.to_dict() if self.exposure else None,
            "indicators": [i.to_dict() for i in self.indicators],
            "actions": [a.to_dict() for a in self.actions],
            "recommendations": [a.to_dict() for a in self.recommendations],
            "milestones": {k: m.to_dict() for k, m in self.milestones.items()},
            "intervals": {k: i.to_dict() for k, i in self.intervals.items()},
        }
