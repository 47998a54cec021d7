"""Names of the tensors of a walked PyTorch pickle: the path of keys from the root to each tensor.

:func:`name_tensors` walks the result of :func:`workbench.model.torch_pickle.walk` (plain descriptions, nothing
constructed) from its root: dict keys, list indexes and object attributes, leaving out the ``_parameters``,
``_buffers`` and ``_modules`` levels of ``nn.Module`` objects, as ``state_dict()`` names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.model.torch_pickle import MAX_KEY, DictNode, Obj, PidRef, StorageRef, TensorRecord, Unsupported
from workbench.textsafe import clean_text

__all__ = ["MAX_DEPTH", "MAX_TENSORS", "MAX_VISITS", "Named", "name_tensors"]

#: tensors named per checkpoint
MAX_TENSORS = 1_000_000
#: nodes visited while naming (shared subtrees are visited once per path)
MAX_VISITS = 4_000_000
MAX_DEPTH = 64
_MODULE_LEVELS = {"_parameters", "_buffers", "_modules"}


@dataclass(slots=True)
class Named:
    """What :func:`name_tensors` found: tensors, unsupported tensors and other persistent ids, each by name."""

    tensors: list[tuple[str, TensorRecord]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    persistent: list[tuple[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def name_tensors(root: Any) -> Named:
    """Name every tensor reachable from the pickle's root by its path of keys (``encoder.layer.0.weight``).

    Dict keys that are not strings are written as their text (``state.0.exp_avg``); list items by index. A tensor
    reachable by two paths (tied weights) gets both names. Caps: :data:`MAX_TENSORS` named, :data:`MAX_VISITS`
    nodes, :data:`MAX_DEPTH` levels; what a cap cut is said in ``problems``.
    """
    out = Named()
    visits = 0
    repeated = 0
    stack: list[tuple[str, Any, int, frozenset[int]]] = [("", root, 0, frozenset())]
    while stack:
        prefix, node, depth, path = stack.pop()
        visits += 1
        if visits > MAX_VISITS or len(out.tensors) >= MAX_TENSORS:
            out.problems.append(f"naming stopped after {visits - 1} nodes and {len(out.tensors)} tensors (cap)")
            break
        if isinstance(node, TensorRecord):
            out.tensors.append((prefix, node))
            continue
        if isinstance(node, Unsupported):
            out.unsupported.append((prefix, node.func))
            continue
        if isinstance(node, PidRef | StorageRef):
            out.persistent.append((prefix, node))
            continue
        children = _children(node)
        if not children:
            continue
        if depth >= MAX_DEPTH or id(node) in path:
            out.problems.append(f"{prefix or '<root>'}: nested deeper than {MAX_DEPTH} levels or cyclic; not named")
            continue
        repeated += node.repeated if isinstance(node, DictNode) else 0
        inner = path | {id(node)}
        for key, child in reversed(children):
            stack.append((_join(prefix, key), child, depth + 1, inner))
    if repeated:
        out.problems.append(f"{repeated} dict key(s) appear more than once (the last value wins in a load)")
    return out


def _children(node: Any) -> list[tuple[str | None, Any]]:
    if isinstance(node, DictNode):
        return [(_key(k), v) for k, v in node.items.items()]
    if isinstance(node, list | tuple):
        return [(str(i), v) for i, v in enumerate(node)]
    if isinstance(node, Obj):
        out: list[tuple[str | None, Any]] = []
        state = node.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], DictNode):  # (dict, slotstate)
            state = state[0]
        if isinstance(state, DictNode):
            out += [(None if _key(k) in _MODULE_LEVELS else _key(k), v) for k, v in state.items.items()]
        out += [(str(i), v) for i, v in enumerate(node.items) if not isinstance(v, tuple)]
        out += [(_key(v[0]), v[1]) for v in node.items if isinstance(v, tuple) and len(v) == 2]
        if isinstance(node.args, tuple) and any(_holds_tensor(a) for a in node.args):
            out += [(f"<arg {i}>", a) for i, a in enumerate(node.args)]
        return out
    return []


def _holds_tensor(value: Any) -> bool:
    return isinstance(value, TensorRecord | DictNode | Obj | list | tuple)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return clean_text(key[:MAX_KEY])[0]
    if isinstance(key, int | float | bool) or key is None:
        return str(key)
    return f"<{type(key).__name__} key>"


def _join(prefix: str, key: str | None) -> str:
    if key is None:
        return prefix
    return f"{prefix}.{key}" if prefix else key
