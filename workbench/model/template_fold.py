"""Constant folding and display of Jinja expressions for :mod:`workbench.model.template_check` (never rendered).

:class:`Scope` records what a template itself defines (macros, assigned names and their constant values);
:func:`fold` gives the possible string values of an expression (constants, ``~``/``+``/``*``, ``%``-formatting with
``%s``/``%c``/``%d``, ``join``, ``replace``, ``reverse``, case filters, ``{% set %}`` and ``{% for %}`` over constant
lists), every step bounded; :func:`render` shows an expression as template text, cut to a budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_VALUES", "Scope", "fold", "render"]

#: folding bounds: values per expression, characters per value, nesting
MAX_VALUES, MAX_CHARS, MAX_DEPTH = 16, 512, 24


def _nodes(tree: nodes.Node, max_nodes: int = 200_000) -> Iterator[nodes.Node]:
    stack, count = [tree], 0
    while stack and count < max_nodes:
        node = stack.pop()
        count += 1
        yield node
        stack.extend(reversed(list(node.iter_child_nodes())))


class Scope:
    """What the template itself defines: macros, names it assigns (and their constant values)."""

    def __init__(self, tree: nodes.Template) -> None:
        self.macros: set[str] = set()
        self.assigned: set[str] = set()
        self.values: dict[str, list[nodes.Node]] = {}
        for node in _nodes(tree):
            if isinstance(node, nodes.Macro):
                self.macros.add(node.name)
            elif isinstance(node, nodes.Name) and node.ctx in ("store", "param"):
                self.assigned.add(node.name)
            if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
                self._bind(node.target.name, node.node)
            elif isinstance(node, nodes.AssignBlock) and isinstance(node.target, nodes.Name):
                text = _block_text(node.body)
                if text is not None:
                    self._bind(node.target.name, nodes.Const(text))
            elif isinstance(node, nodes.For) and isinstance(node.target, nodes.Name):
                if isinstance(node.iter, nodes.List | nodes.Tuple):
                    for item in node.iter.items[:MAX_VALUES]:
                        self._bind(node.target.name, item)
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    if isinstance(target, nodes.Name):
                        self._bind(target.name, value)

    def _bind(self, name: str, value: nodes.Node) -> None:
        bound = self.values.setdefault(name, [])
        if len(bound) < MAX_VALUES:
            bound.append(value)


def _block_text(body: list[nodes.Node]) -> str | None:
    parts: list[str] = []
    for stmt in body:
        if not isinstance(stmt, nodes.Output):
            return None
        for item in stmt.nodes:
            if isinstance(item, nodes.TemplateData):
                parts.append(item.data)
            elif isinstance(item, nodes.Const) and isinstance(item.value, str):
                parts.append(item.value)
            else:
                return None
    return "".join(parts)[:MAX_CHARS]


def fold(node: nodes.Node, scope: Scope, depth: int) -> set[str] | None:
    """The possible string values of an expression, or None when it cannot be known without rendering."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, nodes.Const):
        return {node.value[:MAX_CHARS]} if isinstance(node.value, str) else None
    if isinstance(node, nodes.Name):
        out: set[str] = set()
        for value in scope.values.get(node.name, [])[:MAX_VALUES]:
            out |= fold(value, scope, depth + 1) or set()
        return out or None
    if isinstance(node, nodes.Concat):
        return _product([fold(n, scope, depth + 1) for n in node.nodes[:32]])
    if isinstance(node, nodes.Add):
        return _product([fold(node.left, scope, depth + 1), fold(node.right, scope, depth + 1)])
    if isinstance(node, nodes.Mul):
        left, count = fold(node.left, scope, depth + 1), _int(node.right)
        if left is None or count is None or count < 0:
            return None
        return {(v * min(count, MAX_CHARS))[:MAX_CHARS] for v in left}
    if isinstance(node, nodes.CondExpr):
        parts = [fold(node.expr1, scope, depth + 1), fold(node.expr2, scope, depth + 1) if node.expr2 else None]
        merged = set().union(*(p for p in parts if p))
        return merged or None
    if isinstance(node, nodes.Mod):
        return _format(node.left, [node.right], scope, depth)
    if isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.List | nodes.Tuple):
        index = _int(node.arg)
        items = node.node.items
        if index is not None and -len(items) <= index < len(items):
            return fold(items[index], scope, depth + 1)
        return None
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _string_op(node.name, node.node, node.args, scope, depth)
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        return _string_op(node.node.attr, node.node.node, node.args, scope, depth, method=True)
    return None


def _string_op(
    name: str, base: nodes.Node, args: list[nodes.Node], scope: Scope, depth: int, *, method: bool = False
) -> set[str] | None:
    if name == "join":
        seq, sep = (args[0] if args else None, base) if method else (base, args[0] if args else None)
        seps = fold(sep, scope, depth + 1) if sep is not None else {""}
        items = _items(seq, scope, depth) if seq is not None else None
        if items is None or seps is None:
            return None
        return {s.join(items)[:MAX_CHARS] for s in seps}
    if name == "format":
        return _format(base, args, scope, depth)
    values = fold(base, scope, depth + 1)
    if values is None:
        items = _items(base, scope, depth)
        if name in ("first", "last") and items:
            return {items[0] if name == "first" else items[-1]}
        return None
    if name == "replace" and len(args) >= 2:
        olds, news = fold(args[0], scope, depth + 1), fold(args[1], scope, depth + 1)
        if not olds or not news:
            return None
        return {v.replace(o, n)[:MAX_CHARS] for v in values for o in olds for n in news if o} or values
    simple = {"reverse": lambda v: v[::-1], "lower": str.lower, "upper": str.upper, "title": str.title,
              "capitalize": str.capitalize, "string": str, "trim": str.strip, "strip": str.strip}  # fmt: skip
    if name in simple:
        return {simple[name](v)[:MAX_CHARS] for v in values}
    return None


def _items(seq: nodes.Node, scope: Scope, depth: int) -> list[str] | None:
    if isinstance(seq, nodes.Name):
        for value in scope.values.get(seq.name, [])[:1]:
            return _items(value, scope, depth + 1) if depth < MAX_DEPTH else None
        return None
    if not isinstance(seq, nodes.List | nodes.Tuple) or len(seq.items) > 256:
        return None
    out: list[str] = []
    for item in seq.items:
        values = fold(item, scope, depth + 1)
        if not values or len(values) != 1:
            return None
        out.append(next(iter(values)))
    return out


def _format(fmt: nodes.Node, args: list[nodes.Node], scope: Scope, depth: int) -> set[str] | None:
    """``%``-formatting with ``%s``, ``%c``, ``%d`` and ``%%`` only (anything else is not folded)."""
    formats = fold(fmt, scope, depth + 1)
    if not formats or (len(args) != 1 and not all(isinstance(a, nodes.Const) for a in args)):
        return None
    raw = args[0].items if len(args) == 1 and isinstance(args[0], nodes.Tuple | nodes.List) else args
    values: list[Any] = []
    for a in raw[:64]:
        if isinstance(a, nodes.Const) and isinstance(a.value, int | str) and not isinstance(a.value, bool):
            values.append(a.value)
        else:
            folded = fold(a, scope, depth + 1)
            if not folded or len(folded) != 1:
                return None
            values.append(next(iter(folded)))
    out = set()
    for f in formats:
        text = _percent(f, values)
        if text is None:
            return None
        out.add(text)
    return out


def _percent(fmt: str, values: list[Any]) -> str | None:
    parts, it = [], iter(values)
    pieces = re.split(r"(%.)", fmt)
    for piece in pieces:
        if piece == "%%":
            parts.append("%")
        elif piece in ("%s", "%c", "%d"):
            value = next(it, None)
            if value is None:
                return None
            if piece == "%c":
                if isinstance(value, int) and 0 <= value < 0x110000:
                    parts.append(chr(value))
                elif isinstance(value, str) and len(value) == 1:
                    parts.append(value)
                else:
                    return None
            elif piece == "%d" and not isinstance(value, int):
                return None
            else:
                parts.append(str(value)[:MAX_CHARS])
        elif piece.startswith("%") and len(piece) == 2:
            return None
        else:
            parts.append(piece)
    return "".join(parts)[:MAX_CHARS]


def _int(node: nodes.Node) -> int | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, nodes.Neg) and (inner := _int(node.node)) is not None:
        return -inner
    return None


def _product(parts: list[set[str] | None]) -> set[str] | None:
    if any(p is None for p in parts):
        return None
    out = {""}
    for part in parts:
        out = {(a + b)[:MAX_CHARS] for a in out for b in part}  # type: ignore[union-attr]
        if len(out) > MAX_VALUES:
            out = set(sorted(out)[:MAX_VALUES])
    return out


def render(node: nodes.Node, depth: int = 0, budget: int = 160) -> str:
    text = _text(node, depth)
    return text if len(text) <= budget else text[: budget - 1] + "…"


def _text(node: Any, depth: int) -> str:
    if depth > 12:
        return "…"
    r = lambda n: _text(n, depth + 1)  # noqa: E731
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value)[:60]
    if isinstance(node, nodes.Getattr):
        return f"{r(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{r(node.node)}[{r(node.arg)}]"
    if isinstance(node, nodes.Call):
        args = [r(a) for a in node.args[:4]] + [f"{k.key}={r(k.value)}" for k in node.kwargs[:4]]
        return f"{r(node.node)}({', '.join(args)})"
    if isinstance(node, nodes.Filter):
        args = [r(a) for a in node.args[:4]] + [f"{k.key}={r(k.value)}" for k in node.kwargs[:4]]
        base = r(node.node) if node.node is not None else ""
        return f"{base}|{node.name}" + (f"({', '.join(args)})" if args else "")
    if isinstance(node, nodes.Concat):
        return " ~ ".join(r(n) for n in node.nodes[:8])
    if isinstance(node, nodes.BinExpr):
        return f"{r(node.left)} {node.operator} {r(node.right)}"
    if isinstance(node, nodes.List | nodes.Tuple):
        return "[" + ", ".join(r(i) for i in node.items[:8]) + "]"
    if isinstance(node, nodes.Keyword):
        return f"{node.key}={r(node.value)}"
    return type(node).__name__
