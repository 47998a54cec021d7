"""YAML from anything an attacker may write, parsed safely and within bounds.

``yaml.safe_load`` constructs no Python object beyond plain data, but it expands aliases without limit: a 408-byte
``case.yaml`` of nine anchors each repeating the previous one nine times is a billion-node document, and whatever
walks it (rendering, redaction, JSON) runs out of time and memory. :func:`load` parses with ``yaml.CSafeLoader``
(``yaml.SafeLoader`` when libyaml is missing) in two bounded steps:

1. the event stream (libyaml, no recursion): at most ``max_bytes`` of input, ``max_depth`` nested collections,
   ``max_aliases`` alias uses, ``max_anchors`` anchors; the first limit passed stops the parse;
2. the composed node graph: the size it would have once every alias is expanded is counted on the graph (each
   distinct node once), and a document past ``max_nodes`` is refused, as is a recursive alias, before any Python
   object is built.

A refusal raises :class:`YAMLLimitError`, a ``yaml.YAMLError`` (so existing ``except yaml.YAMLError`` handlers
report it as bad YAML), whose ``problem`` says which limit and whose message names the file.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

__all__ = ["LIMITS", "Limits", "YAMLLimitError", "load", "load_file"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Limits:
    """Bounds of one parse (defaults fit every YAML file the workbench reads, with room to spare)."""

    __slots__ = ("max_aliases", "max_anchors", "max_bytes", "max_depth", "max_nodes")

    def __init__(
        self,
        *,
        max_bytes: int = 4 * 1024 * 1024,
        max_depth: int = 64,
        max_aliases: int = 1_000,
        max_anchors: int = 1_000,
        max_nodes: int = 100_000,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_anchors = max_anchors
        self.max_nodes = max_nodes


LIMITS = Limits()


class YAMLLimitError(yaml.YAMLError):
    """A YAML document refused because it passes a bound (alias bomb, nesting, size).

    Attributes:
        source: the file (or label) the document came from.
        problem: which bound, in words (read by handlers of ``yaml.YAMLError``).
        problem_mark: None (the position is not tracked).
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        self.problem_mark = None
        super().__init__(f"{source}: {problem}")


def load(data: str | bytes, *, source: str = "<yaml>", limits: Limits = LIMITS) -> Any:
    """Parse one YAML document safely (plain data only) within ``limits``.

    Args:
        data: the document's text or bytes.
        source: the file name, for messages.
        limits: the bounds (:data:`LIMITS` by default).

    Returns:
        The document (None when empty).

    Raises:
        YAMLLimitError: a bound was passed (the message names ``source`` and the bound).
        yaml.YAMLError: not valid YAML.
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > limits.max_bytes:
        raise YAMLLimitError(source, f"document of {size} bytes is larger than {limits.max_bytes} bytes")
    _check_events(data, source, limits)
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, source, limits)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_file(path: str | os.PathLike[str], *, limits: Limits = LIMITS) -> Any:
    """:func:`load` of a file read with :func:`workbench.safeio.read_bytes` (capped at ``limits.max_bytes``).

    Raises:
        OSError: the file cannot be read, is not a regular file or is larger than the cap.
        YAMLLimitError, yaml.YAMLError: as :func:`load`.
    """
    from workbench.safeio import read_bytes

    return load(read_bytes(path, limit=limits.max_bytes), source=os.fspath(path), limits=limits)


def _check_events(data: str | bytes, source: str, limits: Limits) -> None:
    depth = aliases = anchors = 0
    loader = _Loader(data)
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > limits.max_aliases:
                    raise YAMLLimitError(source, f"more than {limits.max_aliases} aliases (an alias bomb?); refused")
                continue
            if getattr(event, "anchor", None) is not None:
                anchors += 1
                if anchors > limits.max_anchors:
                    raise YAMLLimitError(source, f"more than {limits.max_anchors} anchors; refused")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limits.max_depth:
                    raise YAMLLimitError(source, f"nested deeper than {limits.max_depth} levels; refused")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _check_graph(root: yaml.Node, source: str, limits: Limits) -> None:
    """Expanded size of the node graph, each distinct node visited once (iterative: no recursion limit)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            active.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > limits.max_nodes:
                raise YAMLLimitError(
                    source, f"aliases expand to more than {limits.max_nodes} nodes (an alias bomb); refused"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            raise YAMLLimitError(source, "recursive alias (a node contains itself); refused")
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise YAMLLimitError(source, "recursive alias (a node contains itself); refused")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
