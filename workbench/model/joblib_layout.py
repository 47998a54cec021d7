"""joblib's inline arrays: where the raw bytes of a numpy array sit inside a joblib pickle stream, so the analysis
can step over them and reach what follows (issue 12: a payload after an inline array was never seen).

``joblib.dump`` writes each numpy array as a ``NumpyArrayWrapper`` object (its state: ``shape``, ``order``, ``dtype``,
``allow_mmap`` and, since joblib 1.2, ``numpy_array_alignment_bytes``) and then, right after that object's ``BUILD``,
the array itself, outside the pickle grammar: for a numeric dtype one padding-length byte and that many padding bytes
(when the alignment key is present) and ``prod(shape) * itemsize`` raw bytes; for an object dtype a whole nested
pickle stream. joblib's unpickler reads those bytes at the ``BUILD`` and goes on with the next opcode.

:func:`inline_arrays` follows a stream with :class:`~workbench.model.pickle_vm.SymbolicMachine` (nothing is
unpickled), reads each wrapper's state at its ``BUILD`` and returns the byte ranges of the arrays. Whatever cannot be
worked out statically (a shape or dtype that is not a plain constant, more than ``MAX_ARRAYS`` arrays, an opcode the
walk cannot follow) ends the walk: the ranges found so far are returned and the caller still reports the stream as
not followed to its end (fail closed). The dtype's item size is computed by :class:`numpy.dtype` from its type
string (``'<f8'``), never from a pickle.
"""

from __future__ import annotations

import io
import pickletools
from contextlib import closing
from dataclasses import dataclass
from typing import Any, BinaryIO

from workbench.model.limits import ScanLimits
from workbench.model.pickle_vm import Call, Coll, Global, SymbolicMachine
from workbench.model.streams import BoundedReader

__all__ = ["InlineArray", "SplicedStream", "inline_arrays", "needs_reread", "reread"]

#: arrays followed per stream
MAX_ARRAYS = 100_000
_WRAPPERS = {"NumpyArrayWrapper"}
_ERRORS = (ValueError, EOFError, OSError, TypeError, KeyError, IndexError, OverflowError, MemoryError)


@dataclass(frozen=True, slots=True)
class InlineArray:
    """The bytes ``[start, end)`` of one inline array (offsets from the start of the stream); ``nested`` is True
    when they are a nested pickle stream (object dtype)."""

    start: int
    end: int
    nested: bool = False


def _const(value: Any) -> Any:
    if isinstance(value, Coll) and value.kind == "tuple" and value.count == len(value.items):
        return tuple(_const(v) for v in value.items)
    return value


def _wrapper_state(obj: Any, state: Any) -> dict[str, Any] | None:
    func = obj.func if isinstance(obj, Call) else None
    if not (isinstance(func, Global) and func.name in _WRAPPERS and (func.module or "").endswith("numpy_pickle")):
        return None
    if not (isinstance(state, Coll) and state.kind == "dict" and state.count == len(state.items)):
        return {}
    return {k: _const(v) for k, v in state.items if isinstance(k, str)}


def _itemsize(dtype: Any) -> tuple[int, bool] | None:
    """``(itemsize, holds objects)`` of a ``numpy.dtype('<f8', ...)`` call, or None when not a plain constant."""
    import numpy as np

    if not (isinstance(dtype, Call) and isinstance(dtype.func, Global) and dtype.func.name == "dtype"):
        return None
    args = _const(dtype.args)
    if not (isinstance(args, tuple) and args and isinstance(args[0], str)):
        return None
    try:
        dt = np.dtype(args[0])  # a type string such as 'f8' or 'O8': parsed, nothing unpickled
    except (TypeError, ValueError):
        return None
    return dt.itemsize, bool(dt.hasobject)


def _array_bytes(state: dict[str, Any]) -> tuple[int, bool, bool] | None:
    """``(bytes, nested pickle, padding byte first)`` of the array a wrapper state describes."""
    shape, item = state.get("shape"), _itemsize(state.get("dtype"))
    if item is None or not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return None
    count = 1
    for n in shape:
        count *= n
    return count * item[0], item[1], "numpy_array_alignment_bytes" in state


def inline_arrays(raw: BinaryIO, limits: ScanLimits) -> list[InlineArray]:
    """The inline arrays of the pickle stream read from ``raw`` (from its current position), in order.

    Reads at most ``limits.max_pickle_bytes`` and ``limits.max_opcodes``; stops at the first opcode or array it
    cannot follow (see the module docstring).
    """
    reader = BoundedReader(raw, limit=limits.max_pickle_bytes, max_line=limits.max_line_bytes,
                           skip_threshold=limits.skip_arg_bytes)  # fmt: skip
    machine = SymbolicMachine(lambda *_: "unknown", lambda *_: None)
    found: list[InlineArray] = []
    opcodes = 0
    try:
        while True:
            stop = False
            for op, arg, pos in pickletools.genops(reader):
                opcodes += 1
                if opcodes > limits.max_opcodes:
                    return found
                state = _wrapper_state(machine.stack[-2], machine.stack[-1]) if (
                    op.name == "BUILD" and len(machine.stack) >= 2) else None  # fmt: skip
                if op.name in ("GLOBAL", "INST"):  # genops gives "module name"; the machine takes a pair
                    arg = tuple(arg.split(" ", 1))
                machine.step(op.name, arg, pos)
                if state is not None:
                    array = _skip_array(reader, state, limits)
                    if array is None or len(found) >= MAX_ARRAYS:
                        return found
                    found.append(array)
                    break  # genops resumes at the reader's position
                stop = op.name == "STOP"
            else:
                stop = True
            if stop:
                return found
    except _ERRORS:
        return found


def _skip_array(reader: BoundedReader, state: dict[str, Any], limits: ScanLimits) -> InlineArray | None:
    start = reader.tell()
    size = _array_bytes(state)
    if size is None:
        return None
    nbytes, nested, padded = size
    if nested:
        for op, _arg, _pos in pickletools.genops(reader):  # the nested stream, to its STOP
            if op.name == "STOP":
                break
        return InlineArray(start, reader.tell(), nested=True)
    if padded:
        pad = reader.read(1)
        if len(pad) != 1:
            return None
        reader.read(pad[0])
    got = len(reader.read(nbytes)) if nbytes else 0
    return InlineArray(start, reader.tell(), False) if got == nbytes else None


class SplicedStream(io.RawIOBase):
    """A stream with byte ranges left out (the inline arrays), read sequentially; :meth:`original` maps an offset of
    the spliced stream back to the original one."""

    def __init__(self, raw: BinaryIO, cut: list[InlineArray]) -> None:
        self._raw, self._cut, self._pos, self._i = raw, cut, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._i < len(self._cut) and self._pos >= self._cut[self._i].start:
            gap = self._cut[self._i]
            while self._pos < gap.end:
                chunk = self._raw.read(min(1 << 20, gap.end - self._pos))
                if not chunk:
                    return 0
                self._pos += len(chunk)
            self._i += 1
        want = len(buffer)
        if self._i < len(self._cut):
            want = min(want, self._cut[self._i].start - self._pos)
        data = self._raw.read(want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def original(self, offset: int) -> int:
        for gap in self._cut:
            if offset >= gap.start:
                offset += gap.end - gap.start
        return offset

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def needs_reread(report: Any) -> bool:
    """Whether a report stopped inside a joblib stream with inline arrays (a wrapper imported, a stream that did not
    reach its STOP)."""
    return any(i.name in _WRAPPERS for i in report.imports) and any(s.end is None for s in report.streams)


def reread(opener: Any, skip: int, report: Any, *, member: str | None, policy: Any, limits: ScanLimits) -> list[Any]:
    """The analysis of a joblib stream with its inline arrays stepped over.

    Args:
        opener: opens the file or member from its start (a fresh stream each call).
        skip: where the pickle starts in it.
        report: the first analysis (returned unchanged when no inline array is found).

    Returns:
        ``[report]`` (offsets of the original stream), followed by one report per object array's nested stream.
    """
    from workbench.model.pickles import analyse_pickle

    with closing(opener()) as fh:
        fh.read(skip)
        arrays = inline_arrays(fh, limits)
    if not arrays:
        return [report]
    with closing(opener()) as fh:
        fh.read(skip)
        spliced = SplicedStream(fh, arrays)
        again = analyse_pickle(io.BufferedReader(spliced), member=member, policy=policy, limits=limits)
        again = _shifted(again, spliced.original)
    nested = []
    for array in (a for a in arrays if a.nested):
        with closing(opener()) as fh:
            fh.read(skip + array.start)
            inner = analyse_pickle(fh, member=member, policy=policy, limits=limits, max_streams=1)
        nested.append(_shifted(inner, lambda off, base=array.start: off + base))
    return [again, *nested]


def _shifted(report: Any, where: Any) -> Any:
    """``report`` with every offset mapped by ``where``."""
    from dataclasses import replace

    def at(value: int | None) -> int | None:
        return None if value is None else where(value)

    return replace(
        report,
        streams=tuple(replace(s, start=where(s.start), end=at(s.end)) for s in report.streams),
        imports=tuple(replace(i, offset=where(i.offset)) for i in report.imports),
        calls=tuple(replace(c, offset=where(c.offset)) for c in report.calls),
        trailing=at(report.trailing),
    )
