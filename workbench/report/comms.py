"""The playbook's three communication drafts (initial alert, stakeholder update, post-incident report) as Markdown.

Every field the playbook's templates carry is filled from the case, the findings, the verdict, the responders'
``actions.log``, the timeline milestones and the drift exposure when they say it. A field only a person can supply
(service and customer impact, data exposure, ETA, what went well, owners and dates of action items...) comes from
``case.yaml``'s ``comms:`` mapping, keyed by the field name (e.g. ``comms: {service_impact: ..., eta: ...}``), or is
left as a visible ``[TO BE COMPLETED: ...]`` marker; nothing is invented. Each rendered draft lists its markers.

Escaping: the templates are Jinja2 with autoescape off (the output is Markdown, not HTML), but every value that
reaches a ``{{ }}`` goes through :func:`md_escape` after the ``redact`` callable, unless it is :class:`Md` (markers
and Markdown this module built from already-escaped parts). A ``None`` reaching a template fails loudly, as does
an undefined field (``StrictUndefined``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from workbench._version import __version__
from workbench.records import Severity, now_utc
from workbench.report.recommendations import (
    PROCESS_CATEGORIES,
    ExposureWindow,
    Recommendation,
    iso,
    parse_exposure,
    recommendations,
)

if TYPE_CHECKING:
    from workbench.investigation import Investigation

__all__ = [
    "COMMS_KEYS",
    "TEMPLATES",
    "CommsContext",
    "Md",
    "RenderedComm",
    "md_escape",
    "render_comms",
    "todo",
    "write_comms",
]

#: the three drafts, in the playbook's order (file ``templates/comms/<name>.md.j2``, output ``comms/<name>.md``)
TEMPLATES = ("initial_alert", "stakeholder_update", "post_incident_report")
MILESTONES = ("first_indicator", "estimated_compromise", "detection", "containment", "recovery", "report")
_ALIASES = {"compromise": "estimated_compromise", "contain": "containment", "isolate": "containment",
            "rollback": "recovery", "first": "first_indicator"}  # fmt: skip
#: findings about the model artefacts themselves (a model is "compromised" only with one of these, high or worse)
MODEL_CATEGORIES = frozenset({"model_file_tampered", "model_file_missing", "unexpected_model_file", "signature_invalid",
                              "dangerous_file_type", "pickle_dangerous_import", "pickle_suspicious_import",
                              "tensor_modified", "tensor_added", "tensor_removed", "tensor_shape_changed",
                              "tensor_dtype_changed", "config_changed", "safetensors_malformed",
                              "custom_code_reference", "archive_anomaly", "file_type_mismatch"})  # fmt: skip
#: case.yaml ``comms:`` keys taking a list (or one text, one item per line); the others take one text
LIST_KEYS = frozenset({"actions_taken", "next_steps", "progress_summary", "containment_details", "remaining_actions",
                       "what_went_well", "improvement_areas", "action_items", "preventive_measures"})  # fmt: skip
TEXT_KEYS = frozenset({"severity", "detection_time", "affected_models", "brief_description", "detection_method",
                       "containment_status", "service_impact", "update_frequency", "incident_commander",
                       "update_number", "status", "elapsed_time", "affected_model_count", "impacted_predictions",
                       "exposure_window", "eta", "start_time", "end_time", "total_duration", "impact_summary",
                       "root_cause_analysis", "compromised_models", "affected_predictions", "data_exposure",
                       "customer_impact"})  # fmt: skip
#: every key case.yaml's ``comms:`` may hold (a template field name each)
COMMS_KEYS = LIST_KEYS | TEXT_KEYS
MAX_TEXT = 600
MAX_TIMELINE_ROWS = 60
_STEP_NOISE = {"WARNING", "ERROR", "INFO", "NOTE"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")
_LEADING = re.compile(r"^(\s*)(?:([#*+=_~-])|(\d{1,9})([.)]))")
_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"(?<!\\)\[TO BE COMPLETED: ([^\]\n]+)\]")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


class Md(str):
    """Markdown that is already safe: written as is by the templates (markers, text built from escaped parts)."""

    __slots__ = ()


def todo(label: str) -> Md:
    """The visible marker of a field only a person can supply: ``[TO BE COMPLETED: label]``."""
    return Md(f"[TO BE COMPLETED: {label}]")


def md_escape(text: str) -> str:
    """One line of plain text made inert in Markdown.

    Control characters are dropped; whitespace runs (newlines included) become one space; ``\\``, backticks,
    ``[``, ``]`` and ``|`` are backslash-escaped; ``&``, ``<`` and ``>`` become entities; a leading ``#``, ``-``,
    ``*``, ``+``, ``=``, ``_``, ``~`` or list number is escaped; text longer than :data:`MAX_TEXT` is cut with ``…``.
    """
    text = _SPACE.sub(" ", _CONTROL.sub("", str(text)))
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "`[]|":
        text = text.replace(char, "\\" + char)
    return _LEADING.sub(_escape_leading, text)


def _escape_leading(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


@dataclass(frozen=True, slots=True)
class RenderedComm:
    """One rendered draft.

    Attributes:
        text: the Markdown, front-matter header (template, subject, audience, timing) first.
        subject: the subject line.
        todo_markers: labels of the ``[TO BE COMPLETED: ...]`` markers left, in order of first appearance.
        name / audience / timing: from the template's header.
    """

    text: str
    subject: str
    todo_markers: tuple[str, ...]
    name: str = ""
    audience: str = ""
    timing: str = ""

    def to_html(self) -> str:
        """The draft for the report: title, what remains to be completed, then the Markdown as escaped text."""
        left = "".join(f"<li>{html_escape(m)}</li>" for m in self.todo_markers)
        remains = f"<p>To be completed by a person:</p><ul>{left}</ul>" if left else "<p>Nothing left to complete.</p>"
        return (
            f'<div class="wb-comm"><h3>{html_escape(self.subject)}</h3>'
            f"<p>Audience: {html_escape(self.audience)}. Timing: {html_escape(self.timing)}.</p>{remains}"
            f'<pre class="wb-mono" style="white-space:pre-wrap">{html_escape(self.text)}</pre></div>'
        )


def _identity(text: str) -> str:
    return text


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


def _common(fx: _Facts) -> dict[str, Any]:
    meta = fx.meta
    worst = max((x.severity for x in fx.relevant), key=lambda s: s.rank, default=None)
    severity = meta.severity.value.upper() if meta.severity else worst.value.upper() if worst else todo("severity")
    return {
        "incident_id": meta.incident_id,
        "verdict": fx.verdict.upper(),
        "severity": severity,
        "severity_note": "" if meta.severity or not worst else " (from the findings; not declared in case.yaml)",
        "generated_at": iso(fx.now),
        "version": Md(__version__),
    }


def _alert_fields(fx: _Facts) -> dict[str, Any]:
    meta, detected = fx.meta, fx.marks.get("detection")
    lead = f"{meta.title.rstrip('.')}. " if meta.title else ""
    taken = [d for d in fx.details if not isinstance(d, Md)] or [todo("immediate actions taken")]
    headline = "AI Supply Chain Compromise Detected" if fx.compromised else "Possible AI Supply Chain Compromise"
    method = f"integrity monitor alert(s): {', '.join(fx.alert_types)}" if fx.alert_types else None
    return {
        "headline": headline + ("" if fx.compromised else " Under Investigation"),
        "detection_time": iso(detected) if detected else todo("detection time"),
        "affected_models": fx.names or todo("affected models"),
        "brief_description": f"{lead}Verdict from the evidence: {fx.verdict.upper()} ({fx.counts}).",
        "top_findings": [_finding_line(x) for x in sorted(fx.relevant, key=lambda x: -x.severity.rank)[:3]],
        "detection_method": meta.detection_method or method or todo("detection method"),
        "containment_status": fx.status,
        "service_impact": todo("service impact"),
        "actions_taken": taken + ([fx.intake] if fx.intake else []),
        "next_steps": ["Investigation in progress"],
        "update_frequency": "4 hours (the playbook's stakeholder-update cadence)",
        "incident_commander": meta.commander or todo("incident commander"),
    }


def _update_fields(fx: _Facts, ctx: CommsContext, update_number: int | None) -> dict[str, Any]:
    detected, window, verdict = fx.marks.get("detection"), fx.window, fx.verdict.upper()
    status = fx.status if isinstance(fx.status, Md) else Md(ctx.md(fx.status, "."))
    progress: list[Any] = [f"Verdict from the evidence: {verdict} ({fx.counts})"]
    progress += [f"Reason: {r}" for r in fx.reasons[:3] if fx.verdict != "clean"]
    if window is not None:
        progress.append(f"Exposure window established: {_window_text(window)}")
    progress += [fx.intake] if fx.intake else []
    progress.append(ctx.md("Containment: ", fx.status))
    if fx.compromised:
        count = f"{len(fx.models)} ({fx.names})" if fx.models else todo("models affected")
    else:
        count = f"0 confirmed ({fx.verdict}); under investigation: {fx.names or 'none named'}"
    excess = [
        {
            "cls": c,
            "excess": Md(f"{e:+.0f}"),  # numbers computed here, not evidence text
            "interval": Md(f"{lo:+.0f} to {hi:+.0f}") if lo is not None and hi is not None else "not given",
        }
        for c, e, lo, hi in (window.excess_by_class if window else ())
    ]
    elapsed = f"{_duration(fx.now - detected)} (detection {iso(detected)}, as of {iso(fx.now)})" if detected else None
    return {
        "update_number": str(update_number) if update_number is not None else todo("update number"),
        "status": ctx.md(status, f" Verdict from the evidence: {verdict}"),
        "elapsed_time": elapsed or todo("time since detection"),
        "progress_summary": progress,
        "affected_model_count": count,
        "impacted_predictions": fx.predictions or todo("predictions potentially impacted"),
        "exposure_window": _window_text(window) if window else todo("exposure window"),
        "excess_rows": excess,
        "containment_details": fx.details,
        "remaining_actions": _remaining(fx.phase, fx.verdict, ctx.recommendations),
        "eta": todo("ETA to resolution"),
    }


def _report_fields(fx: _Facts, ctx: CommsContext, inv: Investigation) -> dict[str, Any]:
    marks, compromised = fx.marks, fx.compromised
    compromise, detected, end = marks.get("estimated_compromise"), marks.get("detection"), marks.get("recovery")
    start = compromise or detected
    if compromise:
        start_text: Any = iso(compromise) + " (estimated compromise)"
    elif detected:
        start_text = iso(detected) + (
            " (detection; compromise time not established)" if compromised else " (detection)"
        )
    else:
        start_text = todo("start time")
    if compromised:
        served = f"; {fx.predictions} predictions in the exposure window" if fx.predictions else ""
        impact: Any = (
            f"Affected model(s): {fx.names or 'not named'}; verdict {fx.verdict.upper()} ({fx.counts}){served}."
        )
    else:
        impact = f"No compromise evidenced (verdict {fx.verdict.upper()}: {fx.reasons[0]})."
    tampered = any(x.category in MODEL_CATEGORIES and x.severity.rank >= Severity.HIGH.rank for x in fx.relevant)
    if not compromised:
        models: Any = f"none evidenced (verdict {fx.verdict.upper()})"
    elif not fx.models:
        models = todo("models compromised")
    else:
        models = fx.names if tampered else f"no finding on the model artefacts; affected through: {fx.names}"
    rows, note = _timeline(inv, marks, fx.given, fx.steps)
    cause, cause_evidence = _root_cause(ctx, fx.verdict, fx.relevant)
    recs = ctx.recommendations
    return {
        "start_time": start_text,
        "end_time": iso(end) + " (recovery)" if end else todo("end time (resolution)"),
        "total_duration": _duration(end - start) if start and end else todo("total duration"),
        "intervals": _intervals(marks, fx.window),
        "impact_summary": impact,
        "timeline_rows": rows,
        "timeline_note": note,
        "root_cause_analysis": cause,
        "root_cause_evidence": cause_evidence,
        "compromised_models": models,
        "affected_predictions": fx.predictions or todo("predictions affected"),
        "data_exposure": todo("data exposure"),
        "customer_impact": todo("customer impact"),
        "what_went_well": [todo("what went well")],
        "improvement_areas": [todo("what needs improvement")],
        "action_items": [
            {"text": r.label, "owner": todo("owner"), "due": todo("due date")} for r in recs if r.kind == "action"
        ],
        "preventive_measures": [r.label for r in recs if r.kind == "preventive"] or [todo("preventive measures")],
    }


@dataclass(slots=True)
class CommsContext:
    """Every field of the three drafts, derived from an investigation, before rendering.

    Values are plain text (redacted and escaped at rendering), :class:`Md` (markers, already safe Markdown),
    lists of those, or mappings of those (timeline rows, action items, exposure rows). Build it with
    :meth:`from_investigation`; ``warnings`` lists the ``comms:`` keys that were ignored and why.
    """

    fields: dict[str, Any]
    redact: Callable[[str], str] = _identity
    recommendations: list[Recommendation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def md(self, *parts: Any) -> Md:
        """Markdown from parts: :class:`Md` as is, anything else redacted and escaped; joined with nothing."""
        return Md("".join(p if isinstance(p, Md) else md_escape(self.redact(str(p))) for p in parts))

    @classmethod
    def from_investigation(
        cls,
        inv: Investigation,
        *,
        exposure: Any = None,
        milestones: Any = None,
        update_number: int | None = None,
        now: datetime | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> CommsContext:
        """Fill every field from the investigation; the case.yaml ``comms:`` mapping overrides by field name.

        Args:
            inv: the investigation (case metadata, findings, events, verdict, loaded actions.log, monitor alerts
                and COMPROMISED markers, custody ledger).
            exposure: the drift analysis's exposure object (``findings.json`` form); default ``inv.exposure``
                when the investigation has one. ``{}`` means none (the investigation is not consulted).
            milestones: ``workbench.timeline`` ``Milestones``, a mapping ``name -> time`` (first_indicator,
                compromise / estimated_compromise, detection, containment, recovery, report) or a list of items
                with ``name`` and ``time``; default ``inv.milestones``. Missing ones are derived from case.yaml,
                actions.log, the monitor alerts, the findings' times and the exposure when possible. ``{}`` means
                none given (the investigation is not consulted).
            update_number: the stakeholder update's number; default case.yaml ``comms.update_number``, else marked.
            now: the time of writing (UTC), for the elapsed time and the footer; default now.
            redact: applied to every evidence string (e.g. ``workbench.logscan.redact.redact``); default identity.

        Returns:
            The context; ``warnings`` lists ignored ``comms:`` keys.
        """
        now = _when(now) or now_utc()
        ctx = cls(fields={}, redact=redact or _identity)
        fx = _facts(inv, exposure, milestones, now)
        ctx.recommendations = recommendations(inv.findings, exposure=fx.window)
        ctx.fields.update(_common(fx))
        ctx.fields.update(_alert_fields(fx))
        ctx.fields.update(_update_fields(fx, ctx, update_number))
        ctx.fields.update(_report_fields(fx, ctx, inv))
        ctx._override(fx.meta.comms)
        if update_number is not None:
            ctx.fields["update_number"] = str(update_number)
        return ctx

    def _override(self, comms: Mapping[str, Any]) -> None:
        for key, value in (comms or {}).items():
            if key not in COMMS_KEYS:
                self.warnings.append(f"case.yaml comms: unknown key {key!r} ignored "
                                     f"(known keys: {', '.join(sorted(COMMS_KEYS))})")  # fmt: skip
                continue
            if key in TEXT_KEYS:
                text = _text(value)
                if text is None:
                    self.warnings.append(f"case.yaml comms: key {key!r} must be text; ignored")
                    continue
                self.fields[key] = text
                if key == "severity":
                    self.fields["severity_note"] = ""
                continue
            single = _text(value)
            items = (
                value if isinstance(value, list) else [x for x in single.splitlines() if x.strip()] if single else []
            )
            convert = _action if key == "action_items" else _text
            rows = [convert(item) for item in items]
            if not rows or any(r is None for r in rows):
                self.warnings.append(f"case.yaml comms: key {key!r} must be a list of text (or one text); ignored")
                continue
            self.fields[key] = rows


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value).strip() or None
    return None


def _action(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        text = _text(item)
        return {"text": text, "owner": todo("owner"), "due": todo("due date")} if text else None
    text = _text(item.get("text", item.get("item")))
    owner, due = _text(item.get("owner")), _text(item.get("due", item.get("date")))
    return {"text": text, "owner": owner or todo("owner"), "due": due or todo("due date")} if text else None


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


# ---------------------------------------------------------------------------------------------------- rendering
def _comms_dir(templates_dir: str | Path | None) -> Path:
    if templates_dir is None:
        from workbench.report.resources import templates_dir as packaged

        templates_dir = packaged()
    base = Path(templates_dir)
    return base / "comms" if (base / "comms").is_dir() else base


def _environment(directory: Path, redact: Callable[[str], str]) -> jinja2.Environment:
    def finalize(value: Any) -> str:
        if isinstance(value, Md):
            return value
        if value is None or isinstance(value, list | dict | tuple | set):
            raise TypeError(f"a template field holds {type(value).__name__}, not text")
        if isinstance(value, datetime):
            return iso(value)
        return md_escape(redact(str(value)))

    # Markdown output: HTML autoescaping does not apply; finalize escapes every value for Markdown instead.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_comms(ctx: CommsContext, templates_dir: str | Path | None = None) -> dict[str, RenderedComm]:
    """Render the three drafts.

    Args:
        ctx: the filled context.
        templates_dir: ``templates/`` or ``templates/comms/``; default the packaged templates.

    Returns:
        ``{name: RenderedComm}`` for ``initial_alert``, ``stakeholder_update`` and ``post_incident_report``.

    Raises:
        jinja2.UndefinedError: a template uses a field the context does not have.
    """
    env = _environment(_comms_dir(templates_dir), ctx.redact)
    out: dict[str, RenderedComm] = {}
    for name in TEMPLATES:
        text = env.get_template(f"{name}.md.j2").render(**ctx.fields)
        front = _FRONT.match(text)
        header = yaml.safe_load(front.group(1)) if front else {}
        markers = tuple(dict.fromkeys(m.group(1) for m in _MARKER.finditer(text)))
        out[name] = RenderedComm(text, str(header.get("subject", "")), markers, name,
                                 str(header.get("audience", "")), str(header.get("timing", "")))  # fmt: skip
    return out


def write_comms(ctx: CommsContext, out_dir: str | Path, templates_dir: str | Path | None = None) -> dict[str, Path]:
    """Render the drafts and write ``OUT/comms/<name>.md``.

    Returns:
        ``{name: path}`` of the files written.
    """
    folder = Path(out_dir) / "comms"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, rendered in render_comms(ctx, templates_dir).items():
        paths[name] = folder / f"{name}.md"
        paths[name].write_text(rendered.text, encoding="utf-8")
    return paths


def render_investigation(inv: Investigation, **kwargs: Any) -> dict[str, RenderedComm]:
    """Shortcut: :meth:`CommsContext.from_investigation` (same keyword arguments) then :func:`render_comms`."""
    return render_comms(CommsContext.from_investigation(inv, **kwargs))


def markers_of(rendered: Mapping[str, RenderedComm]) -> dict[str, list[str]]:
    """``{name: [marker labels]}``: what remains for a person, per draft (for the report)."""
    return {name: list(r.todo_markers) for name, r in rendered.items()}
