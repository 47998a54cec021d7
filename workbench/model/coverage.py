"""Coverage state of one file or archive member of a model scan: what the scan could and could not examine.

Three states, written as the text every output shows (``Artefact.coverage``, ``scan-model --json``):

* ``analysed``: every byte that a loader of its kind would read was examined;
* ``partially analysed: WHY``: part of it was examined, part was not (a cap, a damaged stream, an encrypted member,
  members of an archive not examined, a header too large to parse);
* ``not analysed: WHY``: its content could not be examined at all (unreadable, encrypted, unsupported compression,
  nested too deep).

Fail closed: a file not fully analysed is never called clean; each such gap is also an ``unexamined`` entry of the
scan (the model section's coverage becomes partial).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ANALYSED", "NOT_ANALYSED", "PARTIAL", "Gaps", "is_complete", "level_of"]

ANALYSED = "analysed"
PARTIAL = "partially analysed"
NOT_ANALYSED = "not analysed"
#: reasons kept in one coverage text (the rest are counted)
MAX_REASONS = 3
_LEVEL = {ANALYSED: 0, PARTIAL: 1, NOT_ANALYSED: 2}


def level_of(state: str) -> int:
    """0 analysed, 1 partially analysed, 2 not analysed (by the text's prefix)."""
    return _LEVEL[state.split(":", 1)[0]]


def is_complete(state: str) -> bool:
    """Whether the state is ``analysed``."""
    return state == ANALYSED


@dataclass(slots=True)
class Gaps:
    """What was left unexamined of one file or member, gathered while it is examined, then stated once."""

    partial: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    members: int = 0
    first_member: str = ""

    def member(self, name: str, state: str) -> None:
        """A member of this archive was not fully analysed (``state`` is its coverage text)."""
        self.members += 1
        if not self.first_member:
            self.first_member = f"{name}: {state}"

    def state(self) -> str:
        """The coverage text: ``not analysed`` when a gap left nothing examined, else ``partially analysed`` when
        anything was left out (its own gaps, or members not fully analysed), else ``analysed``."""
        if self.missing:
            return f"{NOT_ANALYSED}: {_join(self.missing + self.partial)}"
        reasons = list(self.partial)
        if self.members:
            reasons.append(f"{self.members} member(s) not fully analysed (first: {self.first_member})")
        return f"{PARTIAL}: {_join(reasons)}" if reasons else ANALYSED


def _join(reasons: list[str]) -> str:
    shown = "; ".join(reasons[:MAX_REASONS])
    return shown + (f"; and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS else "")
