"""The playbook's three communication drafts (initial alert, stakeholder update, post-incident report) as Markdown.

Every field the playbook's templates carry is filled from the case, the findings, the verdict, the responders'
``actions.log``, the timeline milestones and the drift exposure when they say it. A field only a person can supply
(service and customer impact, data exposure, ETA, what went well, owners and dates of action items...) comes from
``case.yaml``'s ``comms:`` mapping, keyed by the field name (e.g. ``comms: {service_impact: ..., eta: ...}``), or is
left as a visible ``[TO BE COMPLETED: ...]`` marker; nothing is invented. Each rendered draft lists its markers.

This module's concern: the per-template field builders, :class:`CommsContext` and rendering. The Markdown-safe
primitives and the escaping policy (:class:`Md`, :func:`todo`, :func:`md_escape`, :class:`RenderedComm`) live in
:mod:`workbench.comms.markdown`; the facts gathered from the investigation (actions.log steps, containment,
milestones, timeline rows, root cause, remaining actions) in :mod:`workbench.comms.facts`. Both are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import safeyaml
from workbench._version import __version__
from workbench.comms.facts import MAX_TIMELINE_ROWS as MAX_TIMELINE_ROWS
from workbench.comms.facts import (
    Facts,
    affected_text,
    duration_text,
    facts_of,
    intervals_text,
    remaining,
    root_cause,
    timeline_rows,
    window_text,
)
from workbench.comms.markdown import _FRONT, _MARKER, Md, RenderedComm, _environment, md_escape, todo
from workbench.comms.markdown import MAX_TEXT as MAX_TEXT
from workbench.conclusions import display
from workbench.conclusions.indicators import defang
from workbench.records import now_utc

if TYPE_CHECKING:
    from workbench.investigation import Investigation

__all__ = [
    "COMMS_KEYS",
    "TEMPLATES",
    "CommsContext",
    "Md",
    "RenderedComm",
    "build_comms",
    "md_escape",
    "render_comms",
    "todo",
    "write_comms",
]

#: the three drafts, in the playbook's order (file ``templates/comms/<name>.md.j2``, output ``comms/<name>.md``)
TEMPLATES = ("initial_alert", "stakeholder_update", "post_incident_report")
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
#: the alert's headline per verdict
HEADLINES = {
    "compromised": "AI Supply Chain Compromise Detected",
    "suspicious": "Possible AI Supply Chain Compromise Under Investigation",
    "clean": "AI Supply Chain Alert Investigated: No Compromise Evidenced",
    "inconclusive": "AI Supply Chain Alert: Investigation Inconclusive",
}
_MAX_INDICATORS = 12


def _identity(text: str) -> str:
    return text


def _common(fx: Facts) -> dict[str, Any]:
    meta = fx.meta
    worst = max((x.severity for x in fx.relevant), key=lambda s: s.rank, default=None)
    severity = meta.severity.value.upper() if meta.severity else worst.value.upper() if worst else todo("severity")
    return {
        "incident_id": meta.incident_id,
        "verdict": fx.verdict.upper(),
        "severity": severity,
        "severity_note": "" if meta.severity or not worst else " (from the findings; not declared in case.yaml)",
        "generated_at": display(fx.now),
        "version": Md(__version__),
    }


def _alert_fields(fx: Facts) -> dict[str, Any]:
    meta, detected = fx.meta, fx.time("detection")
    lead = f"{meta.title.rstrip('.')}. " if meta.title else ""
    taken = [d for d in fx.details if not isinstance(d, Md)] or [todo("immediate actions taken")]
    method = f"integrity monitor alert(s): {', '.join(fx.alert_types)}" if fx.alert_types else None
    indicators = [f"{i.kind}: {defang(i.kind, i.value)}" + (f" ({i.context})" if i.context else "")
                  for i in fx.c.indicators[:_MAX_INDICATORS]]  # fmt: skip
    if len(fx.c.indicators) > _MAX_INDICATORS:
        indicators.append(f"{len(fx.c.indicators) - _MAX_INDICATORS} more in findings.json")
    return {
        "headline": HEADLINES[fx.verdict],
        "detection_time": display(detected) if detected else todo("detection time"),
        "affected_models": fx.names or todo("affected models"),
        "brief_description": f"{lead}Verdict from the evidence: {fx.verdict.upper()} ({fx.counts}).",
        "top_findings": [r.sentence for r in fx.c.reasons],
        "indicators": indicators,
        "detection_method": meta.detection_method or method or todo("detection method"),
        "containment_status": fx.status,
        "service_impact": todo("service impact"),
        "actions_taken": taken + ([fx.intake] if fx.intake else []),
        "next_steps": [a.label for a in fx.c.actions[:5]] or ["Investigation in progress"],
        "update_frequency": "4 hours (the playbook's stakeholder-update cadence)",
        "incident_commander": meta.commander or todo("incident commander"),
    }


def _update_fields(fx: Facts, ctx: CommsContext, update_number: int | None) -> dict[str, Any]:
    detected, window, verdict = fx.time("detection"), fx.c.exposure, fx.verdict.upper()
    status = fx.status if isinstance(fx.status, Md) else Md(ctx.md(fx.status, "."))
    progress: list[Any] = [f"Verdict from the evidence: {verdict} ({fx.counts})"]
    progress += [f"Reason: {r.sentence}" for r in fx.c.reasons[:3]]
    if fx.c.compromise is not None and fx.c.compromise.start is not None:
        progress.append(f"Compromise start: {display(fx.c.compromise.start)} ({fx.c.compromise.rule})")
    if window is not None:
        progress.append(f"Exposure window established: {window_text(window)}")
    progress += [fx.intake] if fx.intake else []
    progress.append(ctx.md("Containment: ", fx.status))
    if fx.compromised:
        count = f"{len(fx.models)} ({fx.names})" if fx.models else todo("models affected")
    else:
        count = f"0 confirmed ({fx.verdict}); under investigation: {fx.names or 'none named'}"
    excess = [
        {"cls": e.label, "excess": Md(f"{e.estimate:+.0f}"),  # numbers computed here, not evidence text
         "interval": Md(f"{e.low:+.0f} to {e.high:+.0f}")}
        for e in (window.excess if window else ())
    ]  # fmt: skip
    elapsed = None
    if detected:
        elapsed = f"{duration_text(detected, fx.now)} (detection {display(detected)}, as of {display(fx.now)})"
    none = f"none: no exposure (verdict {verdict})"
    return {
        "update_number": str(update_number) if update_number is not None else todo("update number"),
        "status": ctx.md(status, f" Verdict from the evidence: {verdict}"),
        "elapsed_time": elapsed or todo("time since detection"),
        "progress_summary": progress,
        "affected_model_count": count,
        "impacted_predictions": affected_text(window) or (none if window is None else todo("predictions impacted")),
        "exposure_window": window_text(window) if window else none,
        "excess_rows": excess,
        "containment_details": fx.details,
        "remaining_actions": remaining(fx),
        "eta": todo("ETA to resolution"),
    }


def _report_fields(fx: Facts, ctx: CommsContext, inv: Investigation) -> dict[str, Any]:
    c, verdict = fx.c, fx.verdict.upper()
    start = c.compromise.start if c.compromise is not None else None
    end = c.exposure.end if c.exposure is not None else None
    if start is not None:
        start_text: Any = f"{display(start)} (compromise start)"
    elif c.compromise is not None:
        start_text = todo(f"start time ({c.compromise.rule})")
    else:
        start_text = f"no compromise evidenced (verdict {verdict})"
    if c.exposure is not None and end is not None:
        end_text: Any = f"{display(end)} ({c.exposure.end_basis.replace('_', ' ')})"
    elif c.compromise is None:
        end_text = "none"
    else:
        end_text = todo("end time (resolution)")
    duration = duration_text(start, end)
    if fx.compromised:
        served = f"; {affected_text(c.exposure)}" if affected_text(c.exposure) else ""
        impact: Any = f"Affected model(s): {fx.names or 'not named'}; verdict {verdict} ({fx.counts}){served}."
    else:
        impact = f"No compromise evidenced (verdict {verdict}: {c.reasons[0].sentence.rstrip('.')})."
    model_groups = {"model_code", "weights", "artefacts"}
    tampered = any(r.group in model_groups for r in c.reasons)
    if not fx.compromised:
        models: Any = f"none evidenced (verdict {verdict})"
    elif not fx.models:
        models = todo("models compromised")
    else:
        models = fx.names if tampered else f"no finding on the model artefacts; affected through: {fx.names}"
    rows, note = timeline_rows(inv, fx)
    cause, cause_evidence = root_cause(ctx, fx)
    return {
        "compromised": c.compromise is not None,
        "start_time": start_text,
        "end_time": end_text,
        "total_duration": duration or ("none" if c.compromise is None else todo("total duration")),
        "intervals": intervals_text(c),
        "impact_summary": impact,
        "timeline_rows": rows,
        "timeline_note": note,
        "root_cause_analysis": cause,
        "root_cause_evidence": cause_evidence,
        "compromised_models": models,
        "affected_predictions": affected_text(c.exposure)
        or (f"none (verdict {verdict})" if c.exposure is None else todo("predictions affected")),
        "data_exposure": todo("data exposure"),
        "customer_impact": todo("customer impact"),
        "what_went_well": [todo("what went well")],
        "improvement_areas": [todo("what needs improvement")],
        "action_items": [{"text": a.label, "owner": todo("owner"), "due": todo("due date")} for a in c.actions],
        "preventive_measures": [a.label for a in c.recommendations] or [todo("preventive measures")],
    }


@dataclass(slots=True)
class CommsContext:
    """Every field of the three drafts, derived from an investigation's conclusions, before rendering.

    Values are plain text (redacted and escaped at rendering), :class:`Md` (markers, already safe Markdown),
    lists of those, or mappings of those (timeline rows, action items, exposure rows). Build it with
    :meth:`from_investigation`; ``warnings`` lists the ``comms:`` keys that were ignored and why.
    """

    fields: dict[str, Any]
    redact: Callable[[str], str] = _identity
    warnings: list[str] = field(default_factory=list)

    def md(self, *parts: Any) -> Md:
        """Markdown from parts: :class:`Md` as is, anything else redacted and escaped; joined with nothing."""
        return Md("".join(p if isinstance(p, Md) else md_escape(self.redact(str(p))) for p in parts))

    @classmethod
    def from_investigation(
        cls,
        inv: Investigation,
        *,
        update_number: int | None = None,
        now: datetime | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> CommsContext:
        """Fill every field from the investigation's conclusions; case.yaml ``comms:`` overrides by field name.

        Args:
            inv: the investigation (its conclusions, case metadata, findings, events, custody ledger).
            update_number: the stakeholder update's number; default case.yaml ``comms.update_number``, else marked.
            now: the time of writing (UTC), for the elapsed time and the footer; default the conclusions' time.
            redact: applied to every evidence string (e.g. ``workbench.rulepack.redact.redact``); default identity.
        """
        now = now or inv.generated_at or now_utc()
        ctx = cls(fields={}, redact=redact or _identity)
        fx = facts_of(inv, now)
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
        from workbench.resources import templates_dir as packaged

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
        header = safeyaml.load(front.group(1), source=f"{name} front matter") if front else {}
        markers = tuple(dict.fromkeys(m.group(1) for m in _MARKER.finditer(text)))
        out[name] = RenderedComm(text, str(header.get("subject", "")), markers, name,
                                 str(header.get("audience", "")), str(header.get("timing", "")))  # fmt: skip
    return out


def build_comms(
    inv: Investigation, templates_dir: str | Path | None = None
) -> tuple[dict[str, RenderedComm], list[str]]:
    """The three drafts of an investigation, evidence text redacted.

    Returns:
        ``({name: RenderedComm}, warnings)``: the warnings name the case.yaml ``comms:`` keys that were ignored.
    """
    from workbench.rulepack.redact import redact

    ctx = CommsContext.from_investigation(inv, redact=redact)
    return render_comms(ctx, templates_dir), list(ctx.warnings)


def write_comms(rendered: Mapping[str, RenderedComm], out_dir: str | Path) -> Path:
    """Write ``OUT/comms/<name>.md`` for each rendered draft.

    Returns:
        The ``comms`` folder.
    """
    folder = Path(out_dir) / "comms"
    folder.mkdir(parents=True, exist_ok=True)
    for name, r in rendered.items():
        (folder / f"{name}.md").write_text(r.text, encoding="utf-8")
    return folder


def markers_of(rendered: Mapping[str, RenderedComm]) -> dict[str, list[str]]:
    """``{name: [marker labels]}``: what remains for a person, per draft (for the report)."""
    return {name: list(r.todo_markers) for name, r in rendered.items()}
