"""Facts the communication drafts share, gathered once from an investigation; nothing is invented.

The containment steps of the responders' ``actions.log`` (:class:`Step`), the containment phase and status they
and the COMPROMISED markers show, the timeline milestones (given, or derived from case.yaml, actions.log, the
monitor alerts, the findings' times and the exposure), the timeline rows, the root-cause hypothesis, the intervals
between milestones and the remaining actions. What the evidence does not say is left as a
``[TO BE COMPLETED: ...]`` marker (:func:`~workbench.report.comms_markdown.todo`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from workbench.records import Severity
from workbench.report.comms_markdown import todo
from workbench.report.recommendations import (
    PROCESS_CATEGORIES,
    ExposureWindow,
    Recommendation,
    iso,
    parse_exposure,
)

if TYPE_CHECKING:
    from workbench.investigation import Investigation
    from workbench.report.comms import CommsContext

__all__ = ["MAX_TIMELINE_ROWS", "MILESTONES", "Step"]

MILESTONES = ("first_indicator", "estimated_compromise", "detection", "containment", "recovery", "report")
_ALIASES = {"compromise": "estimated_compromise", "contain": "containment", "isolate": "containment",
            "rollback": "recovery", "first": "first_indicator"}  # fmt: skip
MAX_TIMELINE_ROWS = 60
_STEP_NOISE = {"WARNING", "ERROR", "INFO", "NOTE"}


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("time", value.get("timestamp"))
    for attr in ("time", "timestamp", "at"):
        if not isinstance(value, str | datetime) and hasattr(value, attr):
            value = getattr(value, attr)
            break
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    window = parse_exposure({"onset": value})
    return window.onset if window else None


def _milestones(raw: Any) -> dict[str, datetime]:
    """Milestones as ``name -> UTC time``.

    Accepts a mapping ``name -> time`` (or ``name -> {"time": ...}``), ``workbench.timeline``'s ``Milestones``
    (its ``milestones`` mapping, or its ``to_dict()``), or a list of items with ``name`` and ``time``.
    """
    if raw is None:
        return {}
    inner = getattr(raw, "milestones", None)
    if isinstance(inner, Mapping):
        raw = inner
    elif hasattr(raw, "to_dict") and not isinstance(raw, Mapping):
        raw = raw.to_dict()
    if isinstance(raw, Mapping) and isinstance(raw.get("milestones"), Mapping):
        raw = raw["milestones"]
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        pairs = [(getattr(m, "name", None) or getattr(m, "kind", None), m) for m in raw]
    out: dict[str, datetime] = {}
    for name, value in pairs:
        key = _ALIASES.get(str(name), str(name))
        ts = _when(value.get("time") if isinstance(value, Mapping) else value)
        if key in MILESTONES and ts is not None:
            out[key] = ts
    return out


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours or days else []
    parts += [f"{minutes} min"] if not days else []
    parts += [f"{secs} s"] if not days and not hours else []
    return sign + " ".join(parts)


@dataclass(slots=True)
class Step:
    """One containment step of ``actions.log``: its tag (ASSESS, ISOLATE, ROLLBACK...), time and lines."""

    tag: str
    time: datetime | None
    headline: str
    details: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    source: str = "actions.log"


def _steps(inv: Investigation) -> list[Step]:
    steps: list[Step] = []
    for loaded in inv.evidence.all("actions_log"):
        current: Step | None = None
        for row in loaded.frame.itertuples(index=False):
            tag = str(row.action).upper() if isinstance(row.action, str) and row.action else ""
            ts = _when(row.timestamp) if str(row.timestamp) != "NaT" else None
            message = str(row.message)
            if tag and tag not in _STEP_NOISE:
                current = Step(tag, ts, message, source=loaded.path)
                steps.append(current)
            elif current is None:
                current = Step("NOTE", ts, message, source=loaded.path)
                steps.append(current)
            elif tag == "ERROR":
                current.errors.append(message)
            else:
                current.details.append(f"{tag}: {message}" if tag else message)
    return steps


def _containment(inv: Investigation, steps: list[Step]) -> tuple[str, Any, list[Any], dict[str, datetime]]:
    """``(phase, status text, detail lines, milestone times)`` from the steps and COMPROMISED markers."""
    times: dict[str, datetime] = {}
    dated: list[tuple[datetime, str]] = []
    never = datetime.max.replace(tzinfo=UTC)
    for s in steps:
        extra = "; ".join(s.details[:10]) + ("; …" if len(s.details) > 10 else "")
        failed = f" FAILED: {'; '.join(s.errors[:3])}" if s.errors else ""
        text = f"{iso(s.time) or 'time unknown'} {s.tag}: {s.headline}" + (f" ({extra})" if extra else "") + failed
        dated.append((s.time or never, text))
        if s.tag == "ISOLATE" and not s.errors and s.time:
            times.setdefault("containment", s.time)
        if s.tag == "ROLLBACK" and _rolled_back(s) and s.time:
            times["recovery"] = s.time
    markers = [(loaded.path, row) for loaded in inv.evidence.all("compromised_marker")
               for row in loaded.frame.itertuples(index=False)]  # fmt: skip
    for path, row in markers:
        when = _when(row.timestamp) if str(row.timestamp) != "NaT" else None
        dated.append((when or never, f"{iso(when) or 'time unknown'} marker {path}: model marked COMPROMISED"))
    details: list[Any] = [text for _, text in sorted(dated, key=lambda d: d[0])]
    tags = {s.tag: s for s in steps}
    rollback, isolate, assess = tags.get("ROLLBACK"), tags.get("ISOLATE"), tags.get("ASSESS")
    if rollback and rollback.errors:
        phase, status = (
            "contained" if isolate else "assessed",
            (f"Rollback attempted at {iso(rollback.time)} but failed: {rollback.errors[0]}"),
        )
    elif rollback and not _rolled_back(rollback):
        phase = "contained" if isolate else "assessed"
        status = f"Rollback started at {iso(rollback.time)}; its completion is not recorded in actions.log"
    elif rollback:
        phase = "recovered"
        status = f"Recovered: rolled back to a known-good model at {iso(rollback.time)}" + (
            f", after isolation at {iso(isolate.time)}" if isolate else ""
        )
    elif isolate:
        phase, status = "contained", f"Contained: model isolated (removed from serving) at {iso(isolate.time)}"
    elif markers:
        phase, status = "contained", "Model marked COMPROMISED (marker file); no isolation step in actions.log"
    elif assess:
        phase = "assessed"
        status = f"Not contained: assessment only (evidence captured at {iso(assess.time)}); no isolation recorded"
    else:
        return "unknown", todo("containment status"), [todo("containment details")], times
    return phase, status, details, times


def _rolled_back(step: Step) -> bool:
    """The playbook's rollback logs ``Model rolled back to: ...`` once the known-good copy is in place."""
    return not step.errors and any("rolled back to" in d.lower() for d in step.details)


@dataclass(slots=True)
class _Facts:
    """What the three drafts share, computed once from the investigation."""

    meta: Any
    verdict: str
    reasons: list[str]
    relevant: list[Any]
    window: ExposureWindow | None
    steps: list[Step]
    phase: str
    status: Any
    details: list[Any]
    marks: dict[str, datetime]
    given: set[str]
    models: list[str]
    alert_types: list[str]
    intake: str | None
    now: datetime

    @property
    def compromised(self) -> bool:
        return self.verdict == "compromised"

    @property
    def names(self) -> str:
        return ", ".join(self.models)

    @property
    def counts(self) -> str:
        counts = {s: sum(1 for x in self.relevant if x.severity is s) for s in Severity}
        return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "no findings"

    @property
    def predictions(self) -> str | None:
        return str(self.window.predictions) if self.window and self.window.predictions is not None else None


def _facts(inv: Investigation, exposure: Any, milestones: Any, now: datetime) -> _Facts:
    meta = inv.case.meta
    window = parse_exposure(exposure if exposure is not None else getattr(inv, "exposure", None))
    verdict, reasons = inv.verdict
    relevant = [x for x in inv.findings if x.category not in PROCESS_CATEGORIES]
    steps = _steps(inv)
    phase, status, details, derived = _containment(inv, steps)
    alerts = [row for loaded in inv.evidence.all("monitor_alerts") for row in loaded.frame.itertuples(index=False)]
    alert_times = sorted(t for r in alerts if (t := _when(r.timestamp) if str(r.timestamp) != "NaT" else None))
    found_times = sorted(x.timestamp for x in relevant if x.timestamp and x.severity.rank >= Severity.MEDIUM.rank)
    marks = _milestones(milestones if milestones is not None else getattr(inv, "milestones", None))
    given = set(marks)
    fallbacks = {
        "detection": meta.detection_time or (alert_times[0] if alert_times else None),
        "estimated_compromise": window.onset if window else None,
        "first_indicator": found_times[0] if found_times else None,
        **derived,
    }
    for key, value in fallbacks.items():
        if value is not None:
            marks.setdefault(key, value)
    suspect = inv.case.model_dir("suspect")
    entry = inv.ledger.entries[0] if inv.ledger.entries else None
    intake = (
        f"Forensic intake: {entry.get('files_expected', 0)} evidence files hashed into the custody ledger at "
        f"{iso(_when(entry.get('time')))}"
        if entry
        else None
    )
    return _Facts(
        meta=meta,
        verdict=verdict,
        reasons=list(reasons),
        relevant=relevant,
        window=window,
        steps=steps,
        phase=phase,
        status=status,
        details=details,
        marks=marks,
        given=given,
        models=list(meta.affected_models) or ([suspect.name] if suspect is not None else []),
        alert_types=sorted({str(r.type) for r in alerts if isinstance(r.type, str)}),
        intake=intake,
        now=now,
    )


def _finding_line(finding: Any) -> str:
    where = finding.evidence.get("path")
    line = finding.evidence.get("line")
    loc = f" ({where}{':' + str(line) if line not in (None, '') else ''})" if where else ""
    return f"{finding.severity.value.upper()}: {finding.title}{loc} [{finding.id}]"


def _window_text(window: ExposureWindow) -> str:
    onset = iso(window.onset) if window.onset else "onset not established"
    if window.onset_low and window.onset_high:
        onset += f" (onset 95 % interval {iso(window.onset_low)} to {iso(window.onset_high)})"
    end = iso(window.end) if window.end else "the end of the records (no end detected)"
    count = f"; {window.predictions} predictions served" if window.predictions is not None else ""
    return f"{onset} to {end}{count}"


def _intervals(marks: dict[str, datetime], window: ExposureWindow | None) -> list[str]:
    out = []
    for label, a, b in (
        ("Dwell time (estimated compromise to detection)", "estimated_compromise", "detection"),
        ("Time to contain (detection to containment)", "detection", "containment"),
        ("Time to recover (detection to recovery)", "detection", "recovery"),
    ):
        if a in marks and b in marks:
            out.append(f"{label}: {_duration(marks[b] - marks[a])}")  # fmt: skip
    if window is not None and window.onset:
        out.append(f"Exposure window: {_window_text(window)}")
    return out


def _remaining(phase: str, verdict: str, recs: list[Recommendation]) -> list[Any]:
    out: list[Any] = []
    if verdict == "compromised" and phase in ("assessed", "unknown"):
        out.append("Contain: take the affected model or service out of serving (no isolation is recorded)")
    if verdict == "compromised" and phase == "contained":
        out.append("Recover: roll back to the last signed known-good model and verify its signature first")
    if verdict == "clean":
        out.append("Confirm the verdict CLEAN with the incident commander, then close the incident or record why "
                   "it stays open")  # fmt: skip
    out += [r.label for r in recs if r.kind == "action"]
    out.append("Post-incident report within 5 business days of resolution")
    return out


def _root_cause(ctx: CommsContext, verdict: str, relevant: list[Any]) -> tuple[Any, list[str]]:
    phrases = {
        "model_file_tampered": "the model files were modified after their known-good release",
        "model_file_missing": "model files were removed",
        "signature_invalid": "the model no longer matches its signature",
        "model_unsigned": "the model's provenance cannot be verified (unsigned)",
        "dangerous_file_type": "a code-executing file type was planted in the model artefacts",
        "pickle_dangerous_import": "a pickle in the model artefacts imports code-executing functions",
        "secret_exposed": "credentials were exposed in the pipeline's logs",
        "suspicious_connection": "a host holds connections to suspicious destinations",
        "suspicious_process": "a host runs suspicious processes",
        "log_pattern": "the ML pipeline ran malicious steps",
        "behavior_drift": "the model's outputs shifted",
    }
    for cat in (
        "dependency_changed",
        "dependency_missing",
        "dependency_untrusted_source",
        "dependency_typosquat",
        "dependency_confusion",
        "dependency_added",
    ):
        phrases[cat] = "the serving environment's dependencies were replaced (package supply chain)"
    for cat in ("tensor_modified", "tensor_added", "tensor_removed", "tensor_shape_changed", "tensor_dtype_changed"):
        phrases[cat] = "the model's weights were edited"
    if verdict == "clean":
        return ctx.md(
            "The evidence shows no compromise (verdict CLEAN: no finding above low severity). ",
            todo("root cause of the alert"),
        ), []
    level = Severity.CRITICAL if verdict == "compromised" else Severity.HIGH
    basis = [x for x in relevant if x.severity.rank >= level.rank]
    seen: list[str] = []
    for x in basis:
        text = phrases.get(x.category, x.category.replace("_", " "))
        if text not in seen:
            seen.append(text)
    firm = "the evidence supports" if verdict == "compromised" else "the evidence suggests, without a critical finding,"
    hypothesis = (f"Working hypothesis ({firm} it; to be confirmed by the investigation team): "
                  f"{'; '.join(seen)}.")  # fmt: skip
    return hypothesis, [_finding_line(x) for x in basis[:8]]


def _timeline(inv: Investigation, marks: dict[str, datetime], given: set[str], steps: list[Step]
              ) -> tuple[list[dict[str, Any]], str]:  # fmt: skip
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
    for name in MILESTONES:
        if name in marks:
            how = "milestone" if name in given else "milestone (derived)"
            rows.append(
                (
                    marks[name],
                    0,
                    {
                        "time": iso(marks[name]),
                        "source": how,
                        "event": name.replace("_", " ").capitalize(),
                        "milestone": True,
                    },
                )
            )
    for s in steps:
        if s.time:
            text = f"{s.tag}: {s.headline}" + (f" (failed: {s.errors[0]})" if s.errors else "")
            rows.append((s.time, 1, {"time": iso(s.time), "source": s.source, "event": text, "milestone": False}))
    step_sources = {s.source for s in steps}
    alert_rows = {(loaded.path, int(r.line)): r for loaded in inv.evidence.all("monitor_alerts")
                  for r in loaded.frame.itertuples(index=False)}  # fmt: skip
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in inv.events:
        if e.kind == "ir:action" and e.source in step_sources:
            continue
        message = e.message
        alert = alert_rows.get((e.source, int(e.extra.get("line", -1) or -1)))
        if e.kind == "ml:monitor:alert" and alert is not None:
            message = f"Monitor alert {alert.type}: {alert.message if isinstance(alert.message, str) else ''}".strip()
        key = (iso(e.timestamp), e.source, message)
        if key in seen:
            seen[key]["count"] += 1
            continue
        row = {"time": iso(e.timestamp), "source": e.source, "event": message, "milestone": False, "count": 1,
               "rank": e.severity.rank}  # fmt: skip
        seen[key] = row
        rows.append((e.timestamp, 2, row))
    for _, _, row in rows:
        if row.get("count", 1) > 1:
            row["event"] = f"{row['event']} (x{row['count']})"
    note = ""
    if len(rows) > MAX_TIMELINE_ROWS:
        keep = sorted(rows, key=lambda r: (r[1] == 2, -r[2].get("rank", 5), r[0]))[:MAX_TIMELINE_ROWS]
        note = f"{len(rows) - len(keep)} further events are in timeline.jsonl."
        rows = keep
    rows.sort(key=lambda r: (r[0], r[1]))
    return [{k: r[2][k] for k in ("time", "source", "event", "milestone")} for r in rows], note
