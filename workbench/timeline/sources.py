"""Timeline events from the evidence itself: responders' actions, monitor alerts, markers, custody, analyst notes.

The analyses contribute their own Events (log matches ``ci:log:match``, drift ``ml:drift:onset``/``ml:drift:end``,
dependency and model findings); this module turns the rest of a case into Events:

* ``actions.log`` lines (loader ``actions_log``) → kind ``ir:action``; the playbook's steps are recognised from the
  line's tag and recorded in ``extra["step"]``: ``assess`` (ASSESS), ``isolate`` (ISOLATE, CONTAIN, QUARANTINE),
  ``rollback`` (ROLLBACK, RESTORE, RECOVER).
* monitor alerts (loader ``monitor_alerts``) → kind ``ml:monitor:alert`` with the alert's severity; a missing or
  unknown severity word becomes ``medium`` (an alert deserves a look) and keeps the word in ``extra["severity_raw"]``;
  the alert type's ATLAS techniques go to ``extra["atlas"]`` (comma-joined) for grouping by tactic.
* ``COMPROMISED.txt`` markers (loader ``compromised_marker``) → kind ``ir:marker``.
* the custody intake (first ledger entry) → kind ``ir:custody:intake``.
* analyst-added events: the ``timeline`` list of ``case.yaml`` (entries ``{time, message, source?, severity?,
  tags?}``) and the notes file :data:`NOTES_FILE` (``notes/timeline.csv`` in the case: a CSV with a header row and
  the same columns; ``tags`` separated by ``,`` or ``;``) → kind ``analyst:event``. ``Event.source`` is the file
  (``case.yaml`` or the notes file); the analyst's ``source`` goes to ``extra["reported_source"]``. Times without an
  offset follow the case's naive-time rule (:mod:`workbench.timeparse`).

Evidence is hostile: an item whose time is missing or unparseable is kept with the placeholder time
:data:`NOT_A_TIME` (the Unix epoch, as plaso does), ``timestamp_desc`` ``"Not a time"`` and
``extra["time_flag"] = "unparseable"``; the timeline flags it. A bad analyst entry (not a mapping, no message, bad
severity) becomes an :class:`~workbench.records.EvidenceWarning` naming the file and the entry, never a crash.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench import safeio
from workbench.records import Event, EvidenceWarning, Finding, Severity
from workbench.timeline.bulk import gc_paused
from workbench.timeparse import parse_timestamp

if TYPE_CHECKING:
    from workbench.case import Case
    from workbench.collect import EvidenceSet
    from workbench.custody import Ledger

__all__ = [
    "ALERT_ATLAS",
    "NOTES_FILE",
    "NOT_A_TIME",
    "PLAYBOOK_STEPS",
    "analyst_events",
    "event_order",
    "evidence_events",
    "finding_events",
    "merge_events",
]

#: Placeholder time of an item whose time could not be read (flagged ``unparseable`` by the timeline).
NOT_A_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: The analyst's notes file, relative to the case root.
NOTES_FILE = "notes/timeline.csv"
#: Largest notes file read (bytes); a larger one is a warning and is skipped.
MAX_NOTES_BYTES = 4 * 1024 * 1024
#: Longest message kept from an analyst entry (characters).
MAX_MESSAGE_CHARS = 4000
#: Action tag (upper case) → playbook step.
PLAYBOOK_STEPS: dict[str, str] = {
    "ASSESS": "assess",
    "ASSESSMENT": "assess",
    "ISOLATE": "isolate",
    "ISOLATION": "isolate",
    "CONTAIN": "isolate",
    "CONTAINMENT": "isolate",
    "QUARANTINE": "isolate",
    "ROLLBACK": "rollback",
    "ROLL BACK": "rollback",
    "RESTORE": "rollback",
    "RECOVER": "rollback",
    "RECOVERY": "rollback",
}
#: Monitor alert type → ATLAS technique ids (as the matching checks cite them).
ALERT_ATLAS: dict[str, tuple[str, ...]] = {
    "FILE_TAMPERED": ("AML.T0010.003", "AML.T0018.000"),
    "UNEXPECTED_FILE": ("AML.T0010.003", "AML.T0018.000"),
    "FILE_MISSING": ("AML.T0010.003", "AML.T0018.000"),
    "DEPENDENCY_CHANGED": ("AML.T0010.001", "AML.T0011.001"),
    "DEPENDENCY_MISSING": ("AML.T0010.001", "AML.T0011.001"),
    "BEHAVIOR_DRIFT": ("AML.T0031",),
}
_ENTRY_KEYS = ("time", "message", "source", "severity", "tags")
_UNPARSED = {"time_flag": "unparseable"}


def _ts(value: Any) -> datetime | None:
    """A loader cell as an aware UTC datetime, or None for NaT/None."""
    if value is None or value is pd.NaT or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value if isinstance(value, datetime) else None


def _text(value: Any) -> str:
    """A loader cell or YAML value as text; missing values (None, NaN, NA, NaT) as ``""``."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _timed(ts: datetime | None, desc: str, extra: dict[str, Any]) -> tuple[datetime, str, dict[str, Any]]:
    if ts is None:
        return NOT_A_TIME, "Not a time", extra | _UNPARSED
    return ts, desc, extra


def _times(frame: pd.DataFrame, column: str = "timestamp") -> list[datetime | None]:
    """A loader's time column as aware UTC datetimes (None for NaT), converted in one pass (microseconds, as
    ``Timestamp.to_pydatetime`` keeps them)."""
    col = frame[column]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        naive = col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        return [None if d is None else d.replace(tzinfo=UTC) for d in naive.astype(object).tolist()]
    return [_ts(v) for v in col.tolist()]


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    return [_text(v) for v in frame[column].tolist()]


def _action_events(evidence: EvidenceSet) -> list[Event]:
    out: list[Event] = []
    for loaded in evidence.all("actions_log"):
        frame, path = loaded.frame, loaded.path
        rows = zip(frame["line"].tolist(), _times(frame), _texts(frame, "action"), _texts(frame, "message"),
                   strict=True)  # fmt: skip
        for line, ts, action, text in rows:
            action = action.strip().upper()
            extra: dict[str, Any] = {"line": int(line)}
            if action:
                extra["action"] = action
                if action in PLAYBOOK_STEPS:
                    extra["step"] = PLAYBOOK_STEPS[action]
            message = f"{action}: {text}" if action else text
            if ts is None:
                out.append(Event(NOT_A_TIME, path, "ir:action", message, Severity.INFO, timestamp_desc="Not a time",
                                 extra=extra | _UNPARSED))  # fmt: skip
            else:
                out.append(Event(ts, path, "ir:action", message, Severity.INFO, timestamp_desc="Action Time",
                                 extra=extra))  # fmt: skip
    return out


def _alert_severity(raw: str) -> Severity | None:
    """An alert's severity word, None when unknown."""
    try:
        return Severity.parse(raw) if raw else Severity.MEDIUM
    except ValueError:
        return None


def _alert_events(evidence: EvidenceSet, warnings: list[EvidenceWarning]) -> list[Event]:
    out: list[Event] = []
    severities: dict[str, Severity | None] = {}
    for loaded in evidence.all("monitor_alerts"):
        frame, path = loaded.frame, loaded.path
        rows = zip(frame["line"].tolist(), _times(frame), _texts(frame, "severity"), _texts(frame, "type"),
                   _texts(frame, "model"), _texts(frame, "file"), _texts(frame, "message"), strict=True)  # fmt: skip
        for line, ts, raw, kind, model, file, text in rows:
            raw = raw.strip()
            line = int(line)
            extra: dict[str, Any] = {"line": line, "alert_type": kind}
            if raw not in severities:
                severities[raw] = _alert_severity(raw)
            severity = severities[raw]
            if severity is None:
                severity = Severity.MEDIUM
                warnings.append(EvidenceWarning(path, line, f"unknown alert severity {raw[:40]!r}, shown as medium"))
            if raw:
                extra["severity_raw"] = raw[:40]
            if model:
                extra["model"] = model
            if file:
                extra["file"] = file
            if kind in ALERT_ATLAS:
                extra["atlas"] = ",".join(ALERT_ATLAS[kind])
            detail = text or " ".join(x for x in (model, file) if x)
            message = f"Monitor alert {kind}: {detail}".rstrip(": ")
            ts, desc, extra = _timed(ts, "Alert Time", extra)
            out.append(Event(ts, path, "ml:monitor:alert", message, severity, timestamp_desc=desc, extra=extra))
    return out


def _marker_events(evidence: EvidenceSet) -> list[Event]:
    out: list[Event] = []
    for loaded in evidence.all("compromised_marker"):
        model = str(loaded.meta.get("model_dir", ""))
        for row in loaded.frame.itertuples(index=False):
            extra: dict[str, Any] = {"line": int(row.line), "model": model}
            if _text(row.incident_id):
                extra["incident_id"] = _text(row.incident_id)
            ts, desc, extra = _timed(_ts(row.timestamp), "Marker Time", extra)
            message = f"Model {model} marked COMPROMISED" if model else "Model marked COMPROMISED"
            out.append(Event(ts, loaded.path, "ir:marker", message, Severity.INFO, timestamp_desc=desc, extra=extra))
    return out


def _custody_event(ledger: Ledger) -> list[Event]:
    intake = next((e for e in ledger.entries if e.get("type") == "intake"), None)
    if intake is None:
        return []
    end = next((e for e in ledger.entries if e.get("type") == "intake_end"), {})
    ts = parse_timestamp(intake.get("time"))
    files = end.get("files", intake.get("files_expected", 0))
    message = f"Evidence intake: {files} files hashed into the custody ledger"
    extra = {"files": files, "bytes": end.get("bytes", 0), "ledger": ledger.path.name}
    ts, desc, extra = _timed(ts, "Intake Time", extra)
    return [Event(ts, ledger.path.name, "ir:custody:intake", message, Severity.INFO, timestamp_desc=desc, extra=extra)]


def _entry_event(entry: Any, path: str, where: str, line: int | None, case: Case) -> tuple[Event | None, list[str]]:
    """One analyst entry → (event or None, problems). ``where`` names the entry in messages."""
    if not isinstance(entry, Mapping):
        return None, [f"{where}: not a mapping of time, message, source, severity, tags"]
    problems = [f"{where}: unknown key {k!r} ignored" for k in entry if k not in _ENTRY_KEYS]
    message = _text(entry.get("message")).strip()
    if not message:
        return None, [*problems, f"{where}: no message; entry skipped"]
    severity = Severity.INFO
    if _text(entry.get("severity")).strip():
        try:
            severity = Severity.parse(_text(entry["severity"]))
        except ValueError:
            problems.append(f"{where}: unknown severity {_text(entry['severity'])[:40]!r}, shown as info")
    extra: dict[str, Any] = {"entry": where} if line is None else {"line": line}
    if _text(entry.get("source")).strip():
        extra["reported_source"] = _text(entry["source"]).strip()[:200]
    tags = entry.get("tags")
    if isinstance(tags, list | tuple):
        tags = ",".join(_text(t).strip() for t in tags if _text(t).strip())
    elif tags is not None:
        tags = ",".join(t.strip() for t in _text(tags).replace(";", ",").split(",") if t.strip())
    if tags:
        extra["tags"] = tags[:500]
    raw_time = entry.get("time")
    ts = parse_timestamp(raw_time, naive_tz=case.meta.tz) if raw_time not in (None, "") else None
    if ts is None:
        problems.append(f"{where}: time {_text(raw_time)[:60]!r} is not an ISO 8601 time; kept, flagged unparseable")
    ts, desc, extra = _timed(ts, "Analyst Time", extra)
    event = Event(ts, path, "analyst:event", message[:MAX_MESSAGE_CHARS], severity, timestamp_desc=desc, extra=extra)
    return event, problems


def analyst_events(case: Case, warnings: list[EvidenceWarning]) -> list[Event]:
    """Events the analysts added: ``case.yaml`` ``timeline`` entries and the rows of :data:`NOTES_FILE`.

    Args:
        case: the opened case (its ``meta.timeline`` and, if inventoried, the notes file are read).
        warnings: receives one warning per bad entry (file, line for CSV rows, reason naming the entry).

    Returns:
        The analyst events, in file order.
    """
    out: list[Event] = []
    for index, entry in enumerate(case.meta.timeline or [], start=1):
        event, problems = _entry_event(entry, "case.yaml", f"timeline entry {index}", None, case)
        warnings.extend(EvidenceWarning("case.yaml", None, p) for p in problems)
        if event is not None:
            out.append(event)
    notes = next((f for f in case.files if f.relpath == NOTES_FILE), None)
    if notes is None:
        return out
    if notes.size > MAX_NOTES_BYTES:
        warnings.append(EvidenceWarning(NOTES_FILE, None, f"larger than {MAX_NOTES_BYTES} bytes; not read"))
        return out
    try:
        text = safeio.read_bytes(case.path(NOTES_FILE)).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        warnings.append(EvidenceWarning(NOTES_FILE, None, f"not readable: {exc.strerror or exc}"))
        return out
    reader = csv.DictReader(io.StringIO(text.replace("\0", "")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "time" not in header or "message" not in header:
        warnings.append(EvidenceWarning(NOTES_FILE, 1, "header must name at least the columns 'time' and 'message'"))
        return out
    reader.fieldnames = header
    unknown = [h for h in header if h not in _ENTRY_KEYS]
    if unknown:
        warnings.append(EvidenceWarning(NOTES_FILE, 1, f"unknown columns ignored: {', '.join(map(repr, unknown))}"))
    try:
        for row in reader:
            line = reader.line_num
            entry = {k: v for k, v in row.items() if k in _ENTRY_KEYS}
            if None in row:
                warnings.append(
                    EvidenceWarning(NOTES_FILE, line, "more cells than header columns; extra cells ignored")
                )
            event, problems = _entry_event(entry, NOTES_FILE, f"row at line {line}", line, case)
            warnings.extend(EvidenceWarning(NOTES_FILE, line, p) for p in problems)
            if event is not None:
                out.append(event)
    except csv.Error as exc:
        warnings.append(EvidenceWarning(NOTES_FILE, reader.line_num, f"CSV error, rest of the file skipped: {exc}"))
    return out


@gc_paused()
def evidence_events(
    case: Case, evidence: EvidenceSet, ledger: Ledger, *, warnings: list[EvidenceWarning] | None = None
) -> list[Event]:
    """Every Event the case's own evidence gives (not the analyses'), sorted by time.

    Reads the loaded ``actions_log``, ``monitor_alerts`` and ``compromised_marker`` evidence, the custody ledger's
    intake entry, ``case.yaml``'s ``timeline`` list and :data:`NOTES_FILE`.

    Args:
        case: the opened case.
        evidence: what the loaders made of it.
        ledger: this run's custody ledger.
        warnings: where per-entry problems go; default ``evidence.warnings`` (a warning already there is not added
            twice, so calling this again is harmless).

    Returns:
        Events with UTC times; items without a usable time carry :data:`NOT_A_TIME` and ``time_flag``.
    """
    found: list[EvidenceWarning] = []
    events = _action_events(evidence) + _alert_events(evidence, found) + _marker_events(evidence)
    events += _custody_event(ledger) + analyst_events(case, found)
    target = evidence.warnings if warnings is None else warnings
    seen = set(target)  # one warning per alert line can meet tens of thousands of the loaders': no list scan
    for w in found:
        if w not in seen:
            seen.add(w)
            target.append(w)
    return sorted(events, key=event_order)


def finding_events(findings: Iterable[Finding], events: Iterable[Event] = ()) -> list[Event]:
    """One ``finding:<category>`` Event per finding that has a time and no Event referring to it yet.

    Returns:
        Events at the findings' times, severity and title of the finding, ``ref`` its id.
    """
    referenced = {e.ref for e in events if e.ref}
    out = []
    for f in findings:
        if f.timestamp is None or f.id in referenced:
            continue
        out.append(
            Event(
                f.timestamp,
                str(f.evidence.get("path") or f.detector or "findings"),
                f"finding:{f.category}",
                f.title,
                f.severity,
                f.id,
                timestamp_desc="Finding Time",
                extra={"atlas": ",".join(f.atlas)} if f.atlas else {},
            )
        )
    return out


#: kinds this module reads from evidence files, deduplicated by provenance (file, line, time) in merge_events
_PROVENANCE_KINDS = frozenset({"ir:action", "ml:monitor:alert", "ir:marker", "ir:custody:intake"})


def _identity(e: Event) -> tuple:
    if e.kind in _PROVENANCE_KINDS:
        line = e.extra.get("line") if e.kind in {"ir:action", "ml:monitor:alert"} else None
        return (e.kind, e.source, e.timestamp, line)
    extra = tuple(sorted((str(k), repr(v)) for k, v in e.extra.items()))
    return (e.timestamp, e.source, e.kind, e.message, e.severity, e.ref, e.timestamp_desc, extra)


@gc_paused()
def merge_events(*groups: Iterable[Event]) -> list[Event]:
    """The events of all groups, each record once; the first group's version of a record wins.

    A record is the same when the events are equal in every field, or, for the kinds this module reads from
    evidence files (``ir:action``, ``ml:monitor:alert``, ``ir:marker``, ``ir:custody:intake``), when they come
    from the same file, line and time (so an older collector's version of an action line is not shown twice).

    Returns:
        Events in first-seen order.
    """
    seen: set[tuple] = set()
    out: list[Event] = []
    for group in groups:
        for event in group:
            key = _identity(event)
            if key not in seen:
                seen.add(key)
                out.append(event)
    return out


def event_order(e: Event) -> tuple:
    """Sort key of the timeline: time, then source, line (``extra["line"]``), kind and message."""
    line = e.extra.get("line")
    return (e.timestamp, e.source, line if isinstance(line, int) else -1, e.kind, e.message)
