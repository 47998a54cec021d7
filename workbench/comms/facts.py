"""Facts the communication drafts share, read from the run's conclusions; nothing is derived again here.

Verdict, reasons, compromise start, exposure window, milestones, intervals and actions come from
:class:`workbench.conclusions.Conclusions`; the responders' containment steps from
:func:`workbench.conclusions.response_steps` (the same reading the milestones used). This module turns them into
the drafts' wording: the containment status, the timeline rows and the root-cause hypothesis. What the evidence
does not say is left as a ``[TO BE COMPLETED: ...]`` marker (:func:`~workbench.comms.markdown.todo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench.categories import group_of, is_incident
from workbench.comms.markdown import Md, todo
from workbench.conclusions import Conclusions, Exposure, Step, display, format_duration, response_steps
from workbench.records import Severity

if TYPE_CHECKING:
    from workbench.comms.drafts import CommsContext
    from workbench.investigation import Investigation

__all__ = ["MAX_TIMELINE_ROWS", "Facts", "facts_of", "window_text"]

MAX_TIMELINE_ROWS = 60
#: response steps listed in a draft ("actions taken", containment details); the rest are counted
MAX_STEP_LINES = 40
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Facts:
    """What the three drafts share, read once from the investigation's conclusions."""

    meta: Any
    c: Conclusions
    relevant: list[Any]
    steps: list[Step]
    phase: str
    status: Any
    details: list[Any]
    models: list[str]
    alert_types: list[str]
    intake: str | None
    now: datetime

    @property
    def verdict(self) -> str:
        return self.c.verdict

    @property
    def compromised(self) -> bool:
        return self.c.verdict == "compromised"

    @property
    def names(self) -> str:
        return ", ".join(self.models)

    @property
    def counts(self) -> str:
        counts = {s: sum(1 for x in self.relevant if x.severity is s) for s in Severity}
        return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "no findings"

    def time(self, name: str) -> datetime | None:
        """A milestone's time, or None."""
        m = self.c.milestones.get(name)
        return m.time if m is not None else None

    @property
    def predictions(self) -> str | None:
        e = self.c.exposure
        return f"{e.predictions:,}" if e is not None and e.predictions is not None else None


def _containment(inv: Investigation, c: Conclusions, steps: list[Step]) -> tuple[str, Any, list[Any]]:
    """``(phase, status text, detail lines)``: the phase follows the conclusions' milestones."""
    dated: list[tuple[datetime, str]] = []
    for s in steps:
        extra = "; ".join(s.details[:10]) + ("; …" if len(s.details) > 10 else "")
        failed = f" FAILED: {'; '.join(s.errors[:3])}" if s.errors else ""
        text = f"{display(s.time) or 'time unknown'} {s.tag}: {s.headline}" + (f" ({extra})" if extra else "") + failed
        dated.append((s.time or _NEVER, text))
    markers = [e for e in inv.events if e.kind == "ir:marker"]
    for e in markers:
        dated.append((e.timestamp, f"{display(e.timestamp)} marker {e.source}: model marked COMPROMISED"))
    details: list[Any] = [text for _, text in sorted(dated, key=lambda d: d[0])]
    if len(details) > MAX_STEP_LINES:  # a long incident's actions.log: tens of thousands of steps
        details = [*details[:MAX_STEP_LINES], f"first {MAX_STEP_LINES} of {len(details):,} response steps; the full "
                   "list is in timeline.jsonl"]  # fmt: skip
    contained, recovered = c.milestones["containment"], c.milestones["recovery"]
    rollback = next((s for s in steps if s.step == "rollback"), None)
    assess = next((s for s in steps if s.step == "assess"), None)
    if recovered.time is not None:
        after = f", after isolation at {display(contained.time)}" if contained.time else ""
        return "recovered", f"Recovered: rolled back to a known-good model at {display(recovered.time)}{after}", details
    if contained.time is not None:
        phase = "contained"
        status = f"Contained: model isolated (removed from serving) at {display(contained.time)}"
        if contained.rule.startswith("COMPROMISED marker"):
            status = f"Model marked COMPROMISED at {display(contained.time)} (marker file); no isolation step recorded"
        if rollback is not None:
            status += f"; {recovered.rule}"
        return phase, status, details
    if assess is not None:
        return "assessed", (f"Not contained: assessment only (evidence captured at {display(assess.time)}); no "
                            "isolation recorded"), details  # fmt: skip
    return "unknown", todo("containment status"), details or [todo("containment details")]


def facts_of(inv: Investigation, now: datetime) -> Facts:
    """The shared facts of the three drafts."""
    c = inv.conclusions or inv.conclude()
    steps = response_steps(inv.events)
    phase, status, details = _containment(inv, c, steps)
    alerts = [e for e in inv.events if e.kind == "ml:monitor:alert"]
    types = sorted({str(e.extra.get("alert_type")) for e in alerts if e.extra.get("alert_type")})
    entry = inv.ledger.entries[0] if inv.ledger.entries else None
    intake = (f"Forensic intake: {entry.get('files_expected', 0)} evidence files hashed into the custody ledger at "
              f"{entry.get('time')}") if entry else None  # fmt: skip
    relevant = [x for x in inv.findings if is_incident(x.category)]
    return Facts(inv.case.meta, c, relevant, steps, phase, status, details, inv.models, types, intake, now)


def window_text(window: Exposure) -> str:
    """``2026-11-14T03:08:01Z to 2026-11-19T09:40:33Z (isolation); 4,275 predictions served``."""
    start = display(window.start) or "an unknown start"
    end = display(window.end) or "an unknown end"
    basis = window.end_basis.replace("_", " ")
    count = f"; {window.predictions:,} predictions served" if window.predictions is not None else ""
    return f"{start} to {end} ({basis}){count}"


def affected_text(window: Exposure | None) -> str | None:
    """The affected predictions, each estimate labelled: flipped (when estimated) and net excess."""
    if window is None or window.predictions is None:
        return None
    parts = []
    if window.flipped is not None:
        f = window.flipped
        parts.append(f"about {f.estimate:.0f} predictions flipped to '{f.label}' (95 % interval {f.low:.0f} to "
                     f"{f.high:.0f}; estimated from unusually confident predictions)")  # fmt: skip
    gains = [e for e in window.excess if e.low > 0 or e.high < 0]
    if gains:
        parts.append("net excess by class against " + window.compared_with + ": " + ", ".join(
            f"{e.label} {e.estimate:+.0f} ({e.low:+.0f} to {e.high:+.0f})" for e in gains))  # fmt: skip
    elif window.excess:
        parts.append(f"no net change of the output distribution against {window.compared_with}")
    else:
        parts.append(f"net change not estimated ({window.compared_with})")
    return f"{window.predictions:,} predictions served in the exposure window; " + "; ".join(parts)


def intervals_text(c: Conclusions) -> list[str]:
    """Dwell time, time to contain and recover, exposure window: only those the conclusions establish."""
    out = []
    labels = {"dwell_time": "Dwell time (compromise start to detection)",
              "time_to_contain": "Time to contain (detection to containment)",
              "time_to_recover": "Time to recover (detection to recovery)"}  # fmt: skip
    for name, label in labels.items():
        i = c.intervals.get(name)
        if i is not None and i.duration is not None:
            out.append(f"{label}: {format_duration(i.duration)}")
    if c.exposure is not None:
        out.append(f"Exposure window: {window_text(c.exposure)}")
    return out


def finding_line(finding: Any) -> str:
    where = finding.evidence.get("path")
    line = finding.evidence.get("line")
    loc = f" ({where}{':' + str(line) if line not in (None, '') else ''})" if where else ""
    return f"{finding.severity.value.upper()}: {finding.title}{loc} [{finding.id}]"


def root_cause(ctx: CommsContext, fx: Facts) -> tuple[Any, list[str]]:
    """The working hypothesis: the verdict's reasons in the conclusions' order, and the findings they cite."""
    if fx.verdict == "clean":
        return ctx.md("The evidence shows no compromise (verdict CLEAN: ", fx.c.reasons[0].sentence.rstrip("."),
                      "). ", todo("root cause of the alert")), []  # fmt: skip
    if fx.verdict == "inconclusive":
        return ctx.md("The evidence cannot support a conclusion (verdict INCONCLUSIVE): ",
                      " ".join(r.sentence for r in fx.c.reasons), " ", todo("root cause")), []  # fmt: skip
    seen: list[str] = []
    for r in fx.c.reasons:
        group = group_of(next((f.category for f in fx.relevant if f.id == r.finding), "")) if r.finding else None
        text = (group.phrase if group else r.sentence).rstrip(".").lower()
        if text not in seen:
            seen.append(text)
    firm = "the evidence supports" if fx.compromised else "the evidence suggests, without a critical finding,"
    hypothesis = f"Working hypothesis ({firm} it; to be confirmed by the investigation team): {'; '.join(seen)}."
    by_id = {f.id: f for f in fx.relevant}
    return hypothesis, [finding_line(by_id[r.finding]) for r in fx.c.reasons if r.finding in by_id]


def remaining(fx: Facts) -> list[Any]:
    """What is left to do: the conclusions' actions, then the playbook's post-incident report deadline."""
    out: list[Any] = []
    if fx.verdict == "clean":
        out.append("Confirm the verdict CLEAN with the incident commander, then close the incident or record why "
                   "it stays open")  # fmt: skip
    if fx.verdict == "inconclusive":
        out.append("Collect the evidence the coverage lists as missing, then investigate again")
    out += [a.label for a in fx.c.actions]
    out.append("Post-incident report within 5 business days of resolution")
    return out


def timeline_rows(inv: Investigation, fx: Facts) -> tuple[list[dict[str, Any]], str]:
    """Rows of the post-incident timeline: the conclusions' milestones, the responders' steps, then events."""
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
    for m in fx.c.milestones.values():
        if m.time is not None:
            row = {"time": display(m.time), "source": "milestone", "event": m.label, "milestone": True}
            rows.append((m.time, 0, row))
    for s in fx.steps:
        if s.time:
            text = f"{s.tag}: {s.headline}" + (f" (failed: {s.errors[0]})" if s.errors else "")
            rows.append((s.time, 1, {"time": display(s.time), "source": s.source, "event": text, "milestone": False}))
    step_sources = {s.source for s in fx.steps}
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    usable = inv.timeline.usable if inv.timeline is not None else inv.events
    for e in usable:
        if (e.kind == "ir:action" and e.source in step_sources) or e.kind.startswith("ir:custody"):
            continue
        key = (display(e.timestamp) or "", e.source, e.message)
        if key in seen:
            seen[key]["count"] += 1
            continue
        row = {"time": display(e.timestamp), "source": e.source, "event": e.message, "milestone": False, "count": 1,
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


def duration_text(start: datetime | None, end: datetime | None) -> str | None:
    return format_duration(end - start) if start is not None and end is not None else None


__all__ += ["Md", "affected_text", "duration_text", "finding_line", "intervals_text", "remaining", "root_cause",
            "timeline_rows"]  # fmt: skip
