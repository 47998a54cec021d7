"""The structure of a PyTorch checkpoint's pickle, worked out from its opcodes: tensor names, storages, views.

PyTorch pickles a state dict as nested ``collections.OrderedDict``/``dict`` whose values are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls, the storage being a persistent id
``('storage', torch.FloatStorage, key, location, numel)`` that names a member ``data/<key>`` of the archive.
:func:`walk` follows the opcodes (decoded by :mod:`pickletools` through a capped reader) on a stack of plain
descriptions: no global is imported, nothing is constructed or called. Only the few rebuild functions and containers
PyTorch writes are interpreted; every other global becomes an opaque object whose state (``BUILD``) and items are
still walked, so tensors inside ``nn.Module`` objects or TorchScript modules are named by their attribute path
(``_parameters``, ``_buffers`` and ``_modules`` levels left out, as ``state_dict()`` names them).

:func:`workbench.model.torch_names.name_tensors` then names every tensor by its path of keys. The security
analysis of the same pickle (imports, calls) is :mod:`workbench.model.pickles`' job; this module only reads layout.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from workbench.model.streams import BoundedReader

__all__ = ["DictNode", "Obj", "PidRef", "StorageRef", "TensorRecord", "Unsupported", "Walk", "WalkError", "label",
           "read_stream", "walk"]  # fmt: skip

#: pickle bytes read per stream
MAX_PICKLE_BYTES = 256 * 1024 * 1024
#: opcodes followed per stream (a real state dict needs about 30 per tensor: 160,000 tensors fit)
MAX_OPCODES = 5_000_000
MAX_STACK = 100_000
MAX_MEMO = 4_000_000
#: longest string kept as a dict key (cut there)
MAX_KEY = 4096
#: longest argument read (a longer one is skipped unread and reads as empty; PyTorch writes none near this)
MAX_ARG = 1024 * 1024
_REBUILD_V2 = "torch._utils._rebuild_tensor_v2"
_REBUILD_V3 = "torch._utils._rebuild_tensor_v3"
_REBUILD_V1 = "torch._utils._rebuild_tensor"
_UNWRAP = {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
_FROM_TYPE = {"torch._tensor._rebuild_from_type_v2", "torch._utils._rebuild_from_type"}
_CONSTS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "BINFLOAT", "FLOAT", "STRING",
           "BINSTRING", "SHORT_BINSTRING", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINBYTES",
           "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}  # fmt: skip


class WalkError(ValueError):
    """The pickle cannot be followed (malformed, past a cap, or an opcode PyTorch never writes)."""


@dataclass(slots=True, eq=False)
class Ref:
    """A global named by the pickle (never imported)."""

    qualified: str


@dataclass(slots=True, eq=False)
class StorageRef:
    """A storage persistent id: its type global (``torch.FloatStorage``), archive key, location, declared size
    (elements of the typed storage, bytes of an untyped one) and, in the legacy format, a view's element offset."""

    storage_type: str
    key: str
    location: str
    numel: int | None
    view_offset: int = 0


@dataclass(slots=True, eq=False)
class TensorRecord:
    """A tensor the load would rebuild: its storage, element offset, size and stride, and for ``_rebuild_tensor_v3``
    its dtype (``float32``, ``uint16``...)."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str | None = None


@dataclass(slots=True, eq=False)
class Unsupported:
    """A tensor rebuilt by a function this reader does not follow (quantised, sparse, nested...)."""

    func: str


@dataclass(slots=True, eq=False)
class PidRef:
    """Another persistent id (the legacy tar format names its tensors by key)."""

    pid: Any


@dataclass(slots=True, eq=False)
class DictNode:
    """A dict or OrderedDict (the last value of a repeated key wins, as in a load; repeats are counted)."""

    items: dict[Any, Any] = field(default_factory=dict)
    repeated: int = 0

    def set(self, key: Any, value: Any) -> None:
        try:
            hash(key)
        except TypeError:
            key = ("<unhashable>", id(key))
        if key in self.items:
            self.repeated += 1
        self.items[key] = value


@dataclass(slots=True, eq=False)
class Obj:
    """Any other object: its class or callable, constructor arguments, ``BUILD`` state and appended items."""

    cls: str
    args: Any = None
    state: Any = None
    items: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class Walk:
    """One stream followed: its ``result``, the storages it references (by key) and how many tensors it built."""

    result: Any
    storages: dict[str, StorageRef]
    built: int


def read_stream(reader: BoundedReader) -> Walk:
    """Follow one pickle stream from the reader's position to its ``STOP``.

    Raises:
        WalkError: the stream is malformed, truncated, past a cap, or uses an opcode PyTorch never writes.
    """
    machine = _Machine()
    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(reader), 1):
            if count > MAX_OPCODES:
                raise WalkError(f"more than {MAX_OPCODES} opcodes")
            machine.step(op.name, arg, pos)
            if op.name == "STOP":
                break
    except WalkError:
        raise
    except (ValueError, OverflowError, EOFError, OSError, IndexError, KeyError, TypeError) as exc:
        raise WalkError(str(exc) or type(exc).__name__) from None
    if machine.result is _MISSING:
        raise WalkError("pickle ends before STOP")
    return Walk(machine.result, machine.storages, machine.built)


def walk(raw: BinaryIO, size: int | None = None, limit: int = MAX_PICKLE_BYTES) -> Walk:
    """:func:`read_stream` over a binary stream (a ``data.pkl`` member), reading at most ``limit`` bytes."""
    reader = BoundedReader(raw, limit=limit, max_line=MAX_ARG, skip_threshold=MAX_ARG, size=size)
    return read_stream(reader)


_MISSING = object()


class _Machine:
    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.storages: dict[str, StorageRef] = {}
        self.built = 0
        self.result: Any = _MISSING

    def pop(self) -> Any:
        if not self.stack:
            raise WalkError("stack underflow")
        return self.stack.pop()

    def push(self, value: Any) -> None:
        if len(self.stack) >= MAX_STACK:
            raise WalkError(f"stack deeper than {MAX_STACK}")
        self.stack.append(value)

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise WalkError("no MARK to pop to")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def step(self, name: str, arg: Any, pos: int) -> None:
        if name in _CONSTS:
            self.push(arg)
        elif name in ("PROTO", "FRAME"):
            return
        elif name == "STOP":
            self.result = self.pop()
        elif name == "MARK":
            self.marks.append(self.stack)
            self.stack = []
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            self.push({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in ("EMPTY_DICT", "DICT"):
            node = DictNode()
            items = self.pop_mark() if name == "DICT" else []
            for k, v in zip(items[::2], items[1::2], strict=False):
                node.set(k, v)
            self.push(node)
        elif name in ("EMPTY_LIST", "EMPTY_SET", "LIST", "FROZENSET"):
            self.push(self.pop_mark() if name in ("LIST", "FROZENSET") else [])
        elif name in ("EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
            self.push(self._tuple(name))
        elif name in ("APPEND", "APPENDS", "ADDITEMS"):
            items = [self.pop()] if name == "APPEND" else self.pop_mark()
            target = self._top()
            if isinstance(target, list):
                target.extend(items)
            elif isinstance(target, Obj):
                target.items.extend(items)
        elif name in ("SETITEM", "SETITEMS"):
            items = self.pop_mark() if name == "SETITEMS" else [*reversed([self.pop(), self.pop()])]
            target = self._top()
            for k, v in zip(items[::2], items[1::2], strict=False):
                if isinstance(target, DictNode):
                    target.set(k, v)
                elif isinstance(target, Obj):
                    target.items.append((k, v))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if len(self.memo) >= MAX_MEMO:
                raise WalkError(f"memo larger than {MAX_MEMO} entries")
            self.memo[len(self.memo) if name == "MEMOIZE" else int(arg)] = self._top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise WalkError(f"at offset {pos}: memo entry {arg} read before it is stored")
            self.push(self.memo[int(arg)])
        elif name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            self.push(Ref(f"{module}.{gname}"))
        elif name == "STACK_GLOBAL":
            gname, module = self.pop(), self.pop()
            if not isinstance(gname, str) or not isinstance(module, str):
                raise WalkError(f"at offset {pos}: STACK_GLOBAL operands are not strings")
            self.push(Ref(f"{module}.{gname}"))
        elif name in ("REDUCE", "NEWOBJ"):
            args, func = self.pop(), self.pop()
            self.push(self._apply(func, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, cls = self.pop(), self.pop(), self.pop()
            self.push(self._apply(cls, args))
        elif name == "BUILD":
            state = self.pop()
            target = self._top()
            if isinstance(target, Obj):
                target.state = state
        elif name in ("BINPERSID", "PERSID"):
            self.push(self._persistent(self.pop() if name == "BINPERSID" else arg))
        elif name in ("POP", "POP_MARK", "DUP"):
            self._stack_op(name)
        elif name in ("INST", "OBJ"):
            items = self.pop_mark()
            cls = str(arg).replace(" ", ".") if name == "INST" else label(items[0] if items else None)
            self.push(Obj(cls, tuple(items if name == "INST" else items[1:])))
        else:
            raise WalkError(f"at offset {pos}: opcode {name} is not written by PyTorch; not followed")

    def _top(self) -> Any:
        if not self.stack:
            raise WalkError("stack underflow")
        return self.stack[-1]

    def _tuple(self, name: str) -> tuple[Any, ...]:
        if name == "EMPTY_TUPLE":
            return ()
        if name == "TUPLE":
            return tuple(self.pop_mark())
        n = int(name[-1])
        if len(self.stack) < n:
            raise WalkError("stack underflow")
        items, self.stack[-n:] = self.stack[-n:], []
        return tuple(items)

    def _stack_op(self, name: str) -> None:
        if name == "DUP":
            self.push(self._top())
        elif name == "POP_MARK" or not self.stack:
            self.pop_mark()
        else:
            self.stack.pop()

    def _persistent(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            numel = pid[4] if isinstance(pid[4], int) and not isinstance(pid[4], bool) else None
            view = pid[5] if len(pid) > 5 else None
            offset = 0
            if view is not None:  # legacy storage view: (view key, element offset, view size) into the root storage
                if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int)):
                    return Unsupported("storage view of an unknown form")
                offset = view[1]
            ref = StorageRef(label(pid[1]), str(pid[2]), str(pid[3]), numel, offset)
            self.storages.setdefault(ref.key, ref)
            return ref
        return PidRef(pid)

    def _apply(self, func: Any, args: Any) -> Any:
        name = label(func)
        args = args if isinstance(args, tuple) else (args,)
        if name == "collections.OrderedDict":
            return DictNode()
        if name in (_REBUILD_V2, _REBUILD_V3, _REBUILD_V1):
            return self._tensor(name, args)
        if name in _UNWRAP and args:
            return args[0]
        if name in _FROM_TYPE and len(args) >= 3:
            inner = args[2] if isinstance(args[2], tuple) else (args[2],)
            return self._apply(args[0], inner)
        if name == "torch.Size" and args and isinstance(args[0], tuple):
            return args[0]
        if name.startswith("torch.") and name.rsplit(".", 1)[-1].startswith("_rebuild"):
            return Unsupported(name)
        return Obj(name, args)

    def _tensor(self, name: str, args: tuple[Any, ...]) -> Any:
        need = 7 if name == _REBUILD_V3 else 4
        if len(args) < need:
            return Unsupported(f"{name} with {len(args)} arguments")
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, StorageRef):
            return Unsupported(f"{name} on a storage that is not a persistent id")
        if not (_ints(size) and _ints(stride) and _ints((offset,)) and len(size) == len(stride)):
            return Unsupported(f"{name} with a size, stride or offset that is not integers")
        dtype = None
        if name == _REBUILD_V3:
            text = label(args[6])
            dtype = text.removeprefix("torch.") if text.startswith("torch.") else None
            if dtype is None:
                return Unsupported(f"{name} with dtype {text}")
        self.built += 1
        return TensorRecord(storage, int(offset) + storage.view_offset, tuple(size), tuple(stride), dtype)


def _ints(values: Any) -> bool:
    return isinstance(values, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def label(value: Any) -> str:
    """A walked value as text: a global's qualified name, ``<result of CLS>`` or ``<TYPE>``."""
    if isinstance(value, Ref):
        return value.qualified
    if isinstance(value, Obj):
        return f"<result of {value.cls}>"
    return f"<{type(value).__name__}>"
