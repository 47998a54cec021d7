"""Symbolic execution of pickle opcodes: what a pickle would import and call, worked out without running it.

:class:`SymbolicMachine` mirrors the stack, mark stack and memo of ``pickle._Unpickler`` but holds symbols
(constants, :class:`Global`, :class:`Call`, truncated containers) instead of objects, so ``STACK_GLOBAL`` operands
are resolved through ``PUT``/``MEMOIZE``/``GET`` exactly as the unpickler would resolve them, and every call a
load would make (``REDUCE``, ``INST``, ``OBJ``, ``NEWOBJ``) can be rendered as text such as
``posix.system('curl … | sh')``. Nothing is imported, constructed or called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "Global", "Opaque", "SimulationError", "SymbolicMachine", "render"]

#: containers keep this many items for rendering (the count is kept exactly)
KEEP_ITEMS = 8
#: strings longer than this are replaced by an opaque placeholder
MAX_STR = 4096
MAX_STACK = 200_000
MAX_MEMO = 2_000_000
#: open MARKs (each holds the stack below it)
MAX_MARKS = 100_000
#: integers wider than this many bits are kept as an opaque placeholder (their decimal text is not computed)
MAX_INT_BITS = 4096
_PUSH_CONST = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "BYTEARRAY8",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "FLOAT",
    "BINFLOAT",
}


class SimulationError(ValueError):
    """The opcode stream cannot be followed symbolically (it would also fail to unpickle there)."""


@dataclass(slots=True, eq=False)
class Global:
    """An imported global (``module``/``name`` None when not resolvable); ``safety`` from the policy."""

    module: str | None
    name: str | None
    safety: str = "unknown"


@dataclass(slots=True, eq=False)
class Call:
    """What a load would call: ``func(*args)`` (``how`` is the opcode that calls)."""

    func: Any
    args: Any
    how: str = "REDUCE"


@dataclass(slots=True, eq=False)
class Opaque:
    """A value the analysis does not track (huge constant, missing memo entry, buffer)."""

    label: str


@dataclass(slots=True, eq=False)
class Coll:
    """A container, with its first items kept (``items`` are pairs for dicts) and its exact length."""

    kind: str
    items: list[Any] = field(default_factory=list)
    count: int = 0

    def add(self, *values: Any) -> None:
        for value in values:
            if len(self.items) < KEEP_ITEMS:
                self.items.append(value)
            self.count += 1


@dataclass(slots=True, eq=False)
class Persistent:
    """A persistent id (torch storages are loaded this way, from other archive members)."""

    pid: Any


class SymbolicMachine:
    """One pickle stream's stack machine.

    Args:
        on_import: called as ``on_import(module, name, opcode, offset) -> safety`` for every import.
        on_call: called as ``on_call(call, offset)`` for every call whose callee is not a known-safe global.
    """

    def __init__(self, on_import: Any, on_call: Any) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.protocol: int | None = None
        self.result: Any = None
        self._on_import = on_import
        self._on_call = on_call
        self.handlers = self._build_handlers()

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _pop(self) -> Any:
        if not self.stack:
            raise SimulationError("stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise SimulationError("no MARK to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _push(self, value: Any) -> None:
        if len(self.stack) >= MAX_STACK:
            raise SimulationError(f"stack deeper than {MAX_STACK}")
        self.stack.append(value)

    def _top(self) -> Any:
        if not self.stack:
            raise SimulationError("stack underflow")
        return self.stack[-1]

    def _global(self, module: Any, name: Any, opcode: str, offset: int) -> Global:
        mod = module if isinstance(module, str) else None
        nam = name if isinstance(name, str) else None
        return Global(mod, nam, self._on_import(mod, nam, opcode, offset))

    def _call(self, func: Any, args: Any, how: str, offset: int) -> Call:
        call = Call(func, args, how)
        if not (isinstance(func, Global) and func.safety == "safe"):
            self._on_call(call, offset)
        return call

    # -- the opcodes -----------------------------------------------------------------------------------------------
    def step(self, name: str, arg: Any, offset: int) -> None:
        """Apply one opcode (``name`` and decoded ``arg`` as from pickletools) at ``offset``."""
        handler = self.handlers.get(name)
        if handler is None:
            raise SimulationError(f"opcode {name} not handled")
        handler(name, arg, offset)

    def _build_handlers(self) -> dict[str, Any]:
        table: dict[str, Any] = dict.fromkeys(_PUSH_CONST, self._op_const)
        table.update(dict.fromkeys(("EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET"), self._op_empty))
        table.update(dict.fromkeys(("LIST", "TUPLE", "FROZENSET"), self._op_from_mark))
        table.update(dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), self._op_tuple_n))
        table.update(dict.fromkeys(("APPENDS", "ADDITEMS"), self._op_extend))
        table.update(dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), self._op_get))
        table.update(dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"), self._op_put))
        table.update(dict.fromkeys(("EXT1", "EXT2", "EXT4"), self._op_ext))
        table.update(dict.fromkeys(("FRAME", "READONLY_BUFFER"), self._op_noop))
        table.update(dict.fromkeys(("NEWTRUE", "NEWFALSE"), self._op_bool))
        table.update(
            PROTO=self._op_proto, STOP=self._op_stop, NONE=self._op_none, NEXT_BUFFER=self._op_buffer,
            DICT=self._op_dict, APPEND=self._op_append, SETITEM=self._op_setitem, SETITEMS=self._op_setitems,
            POP=self._op_pop, POP_MARK=self._op_pop_mark, DUP=self._op_dup, MARK=self._op_mark,
            GLOBAL=self._op_global, STACK_GLOBAL=self._op_stack_global, REDUCE=self._op_reduce, INST=self._op_inst,
            OBJ=self._op_obj, NEWOBJ=self._op_newobj, NEWOBJ_EX=self._op_newobj_ex, BUILD=self._op_build,
            PERSID=self._op_persid, BINPERSID=self._op_binpersid,
        )  # fmt: skip
        return table

    def _op_const(self, _name: str, arg: Any, _offset: int) -> None:
        stack = self.stack
        if len(stack) >= MAX_STACK:
            raise SimulationError(f"stack deeper than {MAX_STACK}")
        if type(arg) is float or (type(arg) is int and arg.bit_length() <= MAX_INT_BITS):
            stack.append(arg)
        else:
            stack.append(_const(arg))

    def _op_noop(self, _name: str, _arg: Any, _offset: int) -> None:
        return

    def _op_proto(self, _name: str, arg: Any, _offset: int) -> None:
        self.protocol = arg

    def _op_stop(self, _name: str, _arg: Any, _offset: int) -> None:
        self.result = self._pop()

    def _op_none(self, _name: str, _arg: Any, _offset: int) -> None:
        self._push(None)

    def _op_bool(self, name: str, _arg: Any, _offset: int) -> None:
        self._push(name == "NEWTRUE")

    def _op_buffer(self, _name: str, _arg: Any, _offset: int) -> None:
        self._push(Opaque("out-of-band buffer"))

    def _op_empty(self, name: str, _arg: Any, _offset: int) -> None:
        self._push(Coll(name[6:].lower()))

    def _op_from_mark(self, name: str, _arg: Any, _offset: int) -> None:
        coll = Coll(name.lower())
        coll.add(*self._pop_mark())
        self._push(coll)

    def _op_tuple_n(self, name: str, _arg: Any, _offset: int) -> None:
        n = int(name[-1])
        if len(self.stack) < n:
            raise SimulationError("stack underflow")
        items, self.stack[-n:] = self.stack[-n:], []
        coll = Coll("tuple")
        coll.add(*items)
        self._push(coll)

    def _op_dict(self, _name: str, _arg: Any, _offset: int) -> None:
        items = self._pop_mark()
        coll = Coll("dict")
        coll.add(*zip(items[::2], items[1::2], strict=False))
        self._push(coll)

    def _op_append(self, _name: str, _arg: Any, _offset: int) -> None:
        value = self._pop()
        _add(self._top(), value)

    def _op_extend(self, _name: str, _arg: Any, _offset: int) -> None:
        items = self._pop_mark()
        _add(self._top(), *items)

    def _op_setitem(self, _name: str, _arg: Any, _offset: int) -> None:
        value, key = self._pop(), self._pop()
        _add(self._top(), (key, value))

    def _op_setitems(self, _name: str, _arg: Any, _offset: int) -> None:
        items = self._pop_mark()
        _add(self._top(), *zip(items[::2], items[1::2], strict=False))

    def _op_pop(self, _name: str, _arg: Any, _offset: int) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def _op_pop_mark(self, _name: str, _arg: Any, _offset: int) -> None:
        self._pop_mark()

    def _op_dup(self, _name: str, _arg: Any, _offset: int) -> None:
        self._push(self._top())

    def _op_mark(self, _name: str, _arg: Any, _offset: int) -> None:
        if len(self.metastack) >= MAX_MARKS:
            raise SimulationError(f"more than {MAX_MARKS} open MARKs")
        self.metastack.append(self.stack)
        self.stack = []

    def _op_get(self, _name: str, arg: Any, _offset: int) -> None:
        key = int(arg)
        self._push(self.memo[key] if key in self.memo else Opaque(f"memo[{key}] (never stored)"))

    def _op_put(self, name: str, arg: Any, _offset: int) -> None:
        if len(self.memo) >= MAX_MEMO:
            raise SimulationError(f"memo larger than {MAX_MEMO} entries")
        self.memo[len(self.memo) if name == "MEMOIZE" else int(arg)] = self._top()

    def _op_global(self, name: str, arg: Any, offset: int) -> None:
        self._push(self._global(arg[0], arg[1], name, offset))

    def _op_stack_global(self, name: str, _arg: Any, offset: int) -> None:
        gname, module = self._pop(), self._pop()
        self._push(self._global(module, gname, name, offset))

    def _op_ext(self, name: str, arg: Any, offset: int) -> None:
        self._push(self._global("copyreg.extension_registry", f"code_{arg}", name, offset))

    def _op_reduce(self, name: str, _arg: Any, offset: int) -> None:
        args, func = self._pop(), self._pop()
        self._push(self._call(func, args, name, offset))

    def _op_inst(self, name: str, arg: Any, offset: int) -> None:
        items = self._pop_mark()
        cls = self._global(arg[0], arg[1], name, offset)
        self._push(self._call(cls, _tuple(items), name, offset))

    def _op_obj(self, name: str, _arg: Any, offset: int) -> None:
        items = self._pop_mark()
        if not items:
            raise SimulationError("OBJ without a class")
        self._push(self._call(items[0], _tuple(items[1:]), name, offset))

    def _op_newobj(self, name: str, _arg: Any, offset: int) -> None:
        args, cls = self._pop(), self._pop()
        self._push(self._call(cls, args, name, offset))

    def _op_newobj_ex(self, name: str, _arg: Any, offset: int) -> None:
        kwargs, args, cls = self._pop(), self._pop(), self._pop()
        self._push(self._call(cls, _tuple([args, kwargs]), name, offset))

    def _op_build(self, _name: str, _arg: Any, _offset: int) -> None:
        self._pop()
        self._top()

    def _op_persid(self, _name: str, arg: Any, _offset: int) -> None:
        self._push(Persistent(_const(arg)))

    def _op_binpersid(self, _name: str, _arg: Any, _offset: int) -> None:
        self._push(Persistent(self._pop()))


def _const(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        return Opaque(f"<int of {value.bit_length()} bits>")
    if isinstance(value, int | float):
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, str) and len(value) > MAX_STR:
        return Opaque(f"<str of {len(value)} chars>")
    if isinstance(value, bytes | bytearray) and len(value) > 256:
        return Opaque(f"<{len(value)} bytes>")
    return value


def _tuple(items: list[Any]) -> Coll:
    coll = Coll("tuple")
    coll.add(*items)
    return coll


def _add(target: Any, *values: Any) -> None:
    if isinstance(target, Coll):
        target.add(*values)
    # appending to a call result or global is legal (it calls .append/.extend/__setitem__); the values are not kept


def render(value: Any, budget: int = 240, depth: int = 0) -> str:
    """Short Python-like text of a symbolic value (what the load would build or call), at most ``budget`` chars."""
    text = _render(value, depth)
    return text if len(text) <= budget else text[: budget - 1] + "…"


def _render(value: Any, depth: int) -> str:
    if depth > 4:
        return "…"
    if isinstance(value, Global):
        return f"{value.module or '?'}.{value.name or '?'}"
    if isinstance(value, Call):
        args = value.args
        inner = (
            _render_items(args, depth)
            if isinstance(args, Coll) and args.kind == "tuple"
            else "*" + _render(args, depth + 1)
        )
        suffix = ".__new__" if value.how in ("NEWOBJ", "NEWOBJ_EX") else ""
        return f"{_render(value.func, depth + 1)}{suffix}({inner})"
    if isinstance(value, Coll):
        body = _render_items(value, depth)
        if value.kind == "list":
            return f"[{body}]"
        if value.kind == "dict":
            return "{" + body + "}"
        if value.kind in ("set", "frozenset"):
            return f"{value.kind}({{{body}}})"
        return f"({body},)" if value.count == 1 else f"({body})"
    if isinstance(value, Persistent):
        return f"persistent_load({_render(value.pid, depth + 1)})"
    if isinstance(value, Opaque):
        return f"<{value.label}>"
    text = repr(value)
    return text if len(text) <= 160 else text[:159] + "…"


def _render_items(coll: Coll, depth: int) -> str:
    if coll.kind == "dict":
        parts = [f"{_render(k, depth + 1)}: {_render(v, depth + 1)}" for k, v in map(_pair, coll.items)]
    else:
        parts = [_render(item, depth + 1) for item in coll.items]
    if coll.count > len(coll.items):
        parts.append(f"… {coll.count - len(coll.items)} more")
    return ", ".join(parts)


def _pair(item: Any) -> tuple[Any, Any]:
    return item if isinstance(item, tuple) and len(item) == 2 else (item, None)
