"""The responders' containment steps, read once from the ``ir:action`` events of ``actions.log``.

A line whose tag is a playbook step (``ASSESS``, ``ISOLATE``, ``ROLLBACK``... see
:data:`workbench.timeline.sources.PLAYBOOK_STEPS`) starts a step; the following untagged or informational lines
of the same file are its details, ``ERROR`` lines its errors. A rollback is *completed* when it has no error and a
detail says the model was rolled back or restored (the playbook logs ``Model rolled back to: ...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from workbench.records import Event

__all__ = ["Step", "response_steps"]

_NOISE = {"WARNING", "INFO", "NOTE", "DEBUG"}
_DONE = ("rolled back to", "restored", "rollback complete")


@dataclass(slots=True)
class Step:
    """One containment step: its tag, playbook step (``assess``/``isolate``/``rollback`` or None), time, lines."""

    tag: str
    step: str | None
    time: datetime | None
    headline: str
    source: str
    line: int | None = None
    details: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def completed(self) -> bool:
        """No error, and for a rollback a detail saying it finished."""
        if self.errors:
            return False
        if self.step != "rollback":
            return True
        return any(any(w in d.lower() for w in _DONE) for d in (self.headline, *self.details))


def response_steps(events: Iterable[Event]) -> list[Step]:
    """The steps of every ``actions.log`` in the events (``ir:action``), in file and line order."""
    actions = sorted((e for e in events if e.kind == "ir:action"),
                     key=lambda e: (e.source, e.extra.get("line") or 0))  # fmt: skip
    steps: list[Step] = []
    current: Step | None = None
    for e in actions:
        tag = str(e.extra.get("action") or "")
        text = e.message.split(": ", 1)[1] if tag and e.message.startswith(f"{tag}: ") else e.message
        when = None if e.extra.get("time_flag") else e.timestamp
        if current is not None and current.source != e.source:
            current = None
        if tag and tag not in _NOISE and tag != "ERROR":
            current = Step(tag, e.extra.get("step"), when, text, e.source, e.extra.get("line"))
            steps.append(current)
        elif current is None:
            current = Step("NOTE", None, when, text, e.source, e.extra.get("line"))
            steps.append(current)
        elif tag == "ERROR":
            current.errors.append(text)
        else:
            current.details.append(f"{tag}: {text}" if tag else text)
    return steps
