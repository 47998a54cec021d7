"""Static pickle analysis: every stream, every imported global with its opcode offset, every call a load would make.

Opcodes are decoded with :mod:`pickletools`' opcode table and argument readers (through
:class:`~workbench.model.pickle_reader.WalkReader`, which reads integers and strings as the unpickler does where
``pickletools`` is stricter) and followed by :class:`~workbench.model.pickle_vm.SymbolicMachine`; nothing is ever
unpickled. Handled: several streams in one file, garbage after the last ``STOP``, truncated streams,
``STACK_GLOBAL`` operands reached through ``PUT``/``MEMOIZE``/``GET``, ``INST``/``OBJ``/``NEWOBJ`` instead of
``REDUCE``, ``GLOBAL`` lines that are not valid UTF-8 (read here directly, as the unpickler does), FRAME as the C
unpickler reads it (linearly; a field running past its frame, which the pure-Python unpickler refuses, is a
divergence), pickles carried inside values as bytes, base64 or hex text (analysed in turn, to
:data:`MAX_NESTING` levels), and padding runs of neutral opcode pairs (passed at regex speed and not charged to
the opcode budget, so a payload behind 20 million of them is still reached). Memory stays bounded: no opcode
list, capped stack, marks, memo, imports, calls and problems.
"""

from __future__ import annotations

import io
import lzma
import pickletools
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from workbench.model.limits import ScanLimits
from workbench.model.pickle_nested import carried_pickle
from workbench.model.pickle_reader import NEUTRAL_STARTS, BigBytes, WalkReader, arg_reader
from workbench.model.pickle_report import PickleCall, PickleImport, PickleReport, PickleStream, worst_safety
from workbench.model.pickle_state import MAX_PROBLEMS, FileState, StreamState, import_without_stack, read_global_line
from workbench.model.pickle_vm import SimulationError, SymbolicMachine
from workbench.model.policy import ImportPolicy, default_policy
from workbench.model.streams import BudgetExceeded, LineTooLong, open_evidence

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

#: opcode by byte value (None where the byte is no opcode), from pickletools' table
_OPCODES = [pickletools.code2op.get(chr(b)) for b in range(256)]
_GLOBAL_CODES = frozenset(b"ci")
_FRAME, _STOP = 0x95, 0x2E
#: opcodes pushing bytes or text (checked for a pickle they carry)
_DATA_CODES = frozenset(b"BC\x8e\x96XV\x8c\x8dSTU")
_LENIENT_CODES = frozenset(b"IL")
_POPS = frozenset(b"01")  # POP, POP_MARK
#: neutral pairs (push then POP) seen in a row before the rest of the run is skipped by pattern
_PAIRS_BEFORE_SKIP = 8
#: argument reader by opcode byte (None for opcodes without an argument)
_READERS = [None if op is None else arg_reader(b, op) for b, op in enumerate(_OPCODES)]
#: pickles nested in pickles: how deep, and how many per file
MAX_NESTING = 3
MAX_NESTED = 256
#: shortest constant checked for a pickle it carries
_MIN_CARRIER = 16
#: what reading hostile or damaged bytes can raise (including decompressing streams)
_PARSE_ERRORS = (ValueError, OverflowError, struct.error, EOFError, OSError, zlib.error, lzma.LZMAError)


def analyse_pickle(
    raw: BinaryIO,
    *,
    member: str | None = None,
    size: int | None = None,
    policy: ImportPolicy | None = None,
    limits: ScanLimits | None = None,
    max_streams: int | None = None,
    context: str | None = None,
) -> PickleReport:
    """Analyse the pickle stream(s) read from ``raw`` (from its current position).

    Args:
        raw: binary stream (a file, an archive member); offsets are counted from its current position.
        member: archive member name, recorded in every import and call.
        size: bytes available, when known (lets huge arguments be skipped by seeking).
        policy: import policy (the shipped one by default).
        limits: caps (bytes, opcodes, streams, line length).
        max_streams: stop after this many streams (default ``limits.max_streams``).
        context: the reader that loads this pickle, when it is not Python's unpickler (``torchscript`` for the
            pickles of a TorchScript archive); enables the policy's rules for that reader.

    Returns:
        The :class:`PickleReport`; a report with no stream means the bytes are not a pickle.
    """
    limits = limits or ScanLimits()
    state = FileState(member, policy or default_policy(), limits, context, limits.max_opcodes)
    streams, trailing = _walk(raw, size, state, max_streams, depth=0, path="")
    return PickleReport(
        member, tuple(streams), tuple(state.imports), tuple(state.calls), trailing, tuple(state.problems),
        tuple(state.unexamined), tuple(state.divergences), tuple(state.lenient), state.nested,
    )  # fmt: skip


def _walk(
    raw: BinaryIO, size: int | None, state: FileState, max_streams: int | None, depth: int, path: str
) -> tuple[list[PickleStream], int | None]:
    limits = state.limits
    reader = WalkReader(raw, limit=limits.max_pickle_bytes, max_line=limits.max_line_bytes,
                        skip_threshold=limits.skip_arg_bytes, size=size)  # fmt: skip
    streams: list[PickleStream] = []
    trailing: int | None = None
    limit_streams = max_streams or limits.max_streams
    where = f"{path} > " if path else ""
    while reader.peek_byte():
        start = reader.tell()
        if len(streams) >= limit_streams:
            trailing = start
            if max_streams is None:
                state.unexamined.append(f"{where}at offset {start}: more than {limit_streams} pickle streams; "
                                        "the rest is not analysed")  # fmt: skip
            break
        stream_state = StreamState(len(streams), state, depth, path)
        before = len(state.imports)
        stream, stopped = _run_stream(reader, stream_state)
        garbage = stream.opcodes == 0 or (
            stream.end is None and stream.protocol is None and len(state.imports) == before
        )
        if garbage:
            trailing = start
            if not streams and stream.error and not path:
                state.problem(f"no pickle stream at offset {start}: {stream.error}")
            break
        streams.append(stream)
        if stopped:
            state.unexamined.append(f"{where}stream {stream.index}: {stream.error}; the rest is not analysed")
        elif stream.error:
            state.problem(f"{where}stream {stream.index}: {stream.error}")
        if stopped or stream.end is None:
            break
    return streams, trailing


def _run_stream(reader: WalkReader, state: StreamState) -> tuple[PickleStream, bool]:
    """Follow one stream. Returns the stream record and whether a budget stopped the analysis."""
    start = reader.tell()
    f = state.file
    machine = SymbolicMachine(state.on_import, state.on_call)
    simulating = True
    count = 0
    error: str | None = None
    end: int | None = None
    frame_end: int | None = None
    where = f"{state.path} > " if state.path else ""

    def note(text: str) -> None:
        f.problem(where + text)
        state.note = "invalid UTF-8 in the GLOBAL/INST argument"

    imports, handlers, read, tell, ops, readers = (
        f.imports,
        machine.handlers,
        reader.read,
        reader.tell,
        _OPCODES,
        _READERS,
    )
    prev = pairs = 0
    try:
        while True:
            pos = tell()
            byte = read(1)
            if not byte:
                raise EOFError(f"at offset {pos}: pickle ends before STOP")
            code = byte[0]
            op = ops[code]
            if op is None:
                raise ValueError(f"at offset {pos}: opcode {byte!r} unknown")
            if f.opcodes_left <= 0:
                stream = PickleStream(state.index, start, None, machine.protocol, count, "opcode budget reached")
                return stream, True
            try:
                if code in _GLOBAL_CODES:
                    arg: Any = (read_global_line(reader, pos, note), read_global_line(reader, pos, note))
                else:
                    rd = readers[code]
                    arg = None if rd is None else rd(reader)
            except (BudgetExceeded, LineTooLong) as exc:
                text = str(exc)
                raise type(exc)(
                    text if text.startswith("at offset") else f"at offset {pos}: {op.name}: {text}"
                ) from None
            except _PARSE_ERRORS as exc:
                text = str(exc)
                raise ValueError(
                    text if text.startswith("at offset") else f"at offset {pos}: {op.name}: {text}"
                ) from None
            f.opcodes_left -= 1
            count += 1
            name = op.name
            if frame_end is not None or code == _FRAME:
                frame_end = _frame(reader, state, name, arg, pos, frame_end)
            if code in _DATA_CODES:
                if reader.last_big is not None:  # a skipped argument: its head is checked
                    arg, reader.last_big = (arg if isinstance(arg, BigBytes) else reader.last_big), None
                if len(arg) >= _MIN_CARRIER or hasattr(arg, "note"):
                    _data(reader, state, name, arg, pos)
            else:
                reader.last_big = None
                if code in _LENIENT_CODES and hasattr(arg, "note"):
                    _lenient(state, pos, arg.note)
            if code in _POPS:
                if prev in NEUTRAL_STARTS:
                    pairs += 1
                    if pairs >= _PAIRS_BEFORE_SKIP:  # padding: the rest of the run is passed at regex speed
                        count += reader.skip_run(prev, frame_end)
                        pairs = 0
                else:
                    pairs = 0
            prev = code
            if simulating:
                before = len(imports)
                try:
                    handlers[name](name, arg, pos)
                except (SimulationError, TypeError, ValueError) as exc:
                    simulating = False
                    f.problem(f"{where}at offset {pos}: {name} cannot be followed ({exc}); imports only from here")
                    if len(imports) == before:
                        import_without_stack(state, name, arg, pos)
            else:
                import_without_stack(state, name, arg, pos)
            if state.note:
                state.note = ""
            if code == _STOP:
                end = tell()
                break
    except (BudgetExceeded, LineTooLong) as exc:
        return PickleStream(state.index, start, None, machine.protocol, count, str(exc)), True
    except _PARSE_ERRORS as exc:
        error = str(exc)
    return PickleStream(state.index, start, end, machine.protocol, count, error), False


def _lenient(state: StreamState, pos: int, text: str) -> None:
    lenient = state.file.lenient
    if len(lenient) < MAX_PROBLEMS:
        lenient.append((pos, f"{state.path} > {text}" if state.path else text))


def _frame(reader: WalkReader, state: StreamState, name: str, arg: Any, pos: int, frame_end: int | None) -> int | None:
    """Follow framing as both unpicklers do: the C one ignores frame boundaries once a frame is loaded, the
    pure-Python one fails on a read across a frame's end or a FRAME inside an unfinished frame. Where they part,
    a divergence is recorded. Returns the end of the current frame, or None."""
    here = reader.tell()
    divergences = state.file.divergences
    prefix = f"{state.path} > " if state.path else ""
    if name == "FRAME":
        if frame_end is not None and pos < frame_end and len(divergences) < MAX_PROBLEMS:
            text = (
                f"{prefix}a FRAME begins at offset {pos}, inside the frame ending at offset {frame_end}: the "
                "pure-Python unpickler fails here, the C unpickler reads on"
            )
            divergences.append((pos, text))
        new_end = here + int(arg)
        size = reader.size
        if size is not None and new_end > size and len(divergences) < MAX_PROBLEMS:
            text = (
                f"{prefix}the FRAME at offset {pos} announces {int(arg)} bytes, past the end of the data: the "
                "C unpickler fails here, the pure-Python one reads what there is"
            )
            divergences.append((pos, text))
        return new_end
    if frame_end is not None and here > frame_end:
        if pos < frame_end and len(divergences) < MAX_PROBLEMS:
            text = (
                f"{prefix}{name} at offset {pos} runs past the end of its FRAME (offset {frame_end}, the "
                f"opcode ends at {here}): the C unpickler (pickle.load) reads on, the pure-Python unpickler "
                "fails here; what follows is seen only by an unframed reading"
            )
            divergences.append((pos, text))
        return None
    return None if here == frame_end else frame_end


def _data(reader: WalkReader, state: StreamState, name: str, arg: Any, pos: int) -> None:
    """A bytes or text constant: a pickle it carries is analysed in turn (depth, count and size caps)."""
    if hasattr(arg, "note"):
        _lenient(state, pos, arg.note)
    big = isinstance(arg, BigBytes)
    value = arg.head if big else arg
    if len(value) < _MIN_CARRIER:
        return
    f = state.file
    carried = carried_pickle(value, max_bytes=f.limits.skip_arg_bytes, size=len(arg) if big else None)
    if carried is None:
        return
    label = f"{name} at offset {pos}"
    if carried.encoding != "bytes":
        label = f"{carried.encoding} text in {label}"
    path = f"{state.path} > {label}" if state.path else label
    if state.depth + 1 > MAX_NESTING:
        f.unexamined.append(f"{path}: a pickle nested more than {MAX_NESTING} deep is not analysed")
        return
    if f.nested >= MAX_NESTED:
        if f.nested == MAX_NESTED:
            f.unexamined.append(f"{path}: more than {MAX_NESTED} nested pickles; the rest are not analysed")
            f.nested += 1
        return
    f.nested += 1
    if carried.truncated:
        f.unexamined.append(f"{path}: a nested pickle of {carried.size} bytes; only its first {len(carried.data)} "
                            "bytes are analysed")  # fmt: skip
    _walk(io.BytesIO(carried.data), len(carried.data), f, None, state.depth + 1, path)


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
