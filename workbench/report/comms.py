"""The playbook's three communication drafts (initial alert, stakeholder update, post-incident report) as Markdown.

Every field the playbook's templates carry is filled from the case, the findings, the verdict, the responders'
``actions.log``, the timeline milestones and the drift exposure when they say it. A field only a person can supply
(service and customer impact, data exposure, ETA, what went well, owners and dates of action items...) comes from
``case.yaml``'s ``comms:`` mapping, keyed by the field name (e.g. ``comms: {service_impact: ..., eta: ...}``), or is
left as a visible ``[TO BE COMPLETED: ...]`` marker; nothing is invented. Each rendered draft lists its markers.

This module's concern: the per-template field builders, :class:`CommsContext` and rendering. The Markdown-safe
primitives and the escaping policy (:class:`Md`, :func:`todo`, :func:`md_escape`, :class:`RenderedComm`) live in
:mod:`workbench.report.comms_markdown`; the facts gathered from the investigation (actions.log steps, containment,
milestones, timeline rows, root cause, remaining actions) in :mod:`workbench.report.comms_facts`. Both are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from workbench._version import __version__
from workbench.records import Severity, now_utc
from workbench.report.comms_facts import MAX_TIMELINE_ROWS as MAX_TIMELINE_ROWS
from workbench.report.comms_facts import MILESTONES as MILESTONES
from workbench.report.comms_facts import Step as Step
from workbench.report.comms_facts import (
    _duration,
    _Facts,
    _facts,
    _finding_line,
    _intervals,
    _remaining,
    _root_cause,
    _timeline,
    _when,
    _window_text,
)
from workbench.report.comms_markdown import _FRONT, _MARKER, Md, RenderedComm, _environment, md_escape, todo
from workbench.report.comms_markdown import MAX_TEXT as MAX_TEXT
from workbench.report.recommendations import Recommendation, iso, recommendations

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


def _identity(text: str) -> str:
    return text


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


# ---------------------------------------------------------------------------------------------------- rendering
def _comms_dir(templates_dir: str | Path | None) -> Path:
    if templates_dir is None:
        from workbench.report.resources import templates_dir as packaged

        templates_dir = packaged()
    base = Path(templates_dir)
    return base / "comms" if (base / "comms").is_dir() else base


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
