"""Code that rides along with a model without being a code file: custom-code references in configs, Keras
``Lambda`` layers, and chat templates that do more than format messages.

* ``auto_map`` in ``config.json`` / ``tokenizer_config.json`` (and any other config) makes ``transformers`` import
  Python modules shipped with (or fetched for) the model when ``trust_remote_code=True``.
* A Keras ``Lambda`` layer stores marshalled Python bytecode that runs when the model is loaded (unless safe mode).
* A chat template is Jinja; formatting needs loops, conditions, filters and string methods. Attribute access to
  underscore names, imports, includes and unknown calls are how template injection escapes (CVE-2024-34359).
  Templates are parsed with Jinja's own parser (nothing is rendered) and every construct outside plain formatting
  is reported with its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import jinja2
import jinja2.ext
from jinja2 import nodes

__all__ = ["CodeReference", "auto_map_references", "h5_lambda_offsets", "keras_lambda_layers", "template_issues"]

HIGH, MEDIUM = "high", "medium"
_SAFE_FILTERS = {
    "abs",
    "batch",
    "capitalize",
    "center",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "forceescape",
    "format",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "striptags",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
}
_SAFE_FUNCTIONS = {"raise_exception", "strftime_now", "range", "namespace", "dict", "cycler", "joiner", "loop"}
_SAFE_METHODS = {
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "rsplit",
    "splitlines",
    "startswith",
    "endswith",
    "lower",
    "upper",
    "title",
    "capitalize",
    "replace",
    "items",
    "keys",
    "values",
    "get",
    "append",
    "count",
    "find",
    "rfind",
    "index",
    "join",
    "isdigit",
    "isalpha",
    "isspace",
    "cycle",
}
_PLAIN_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.For,
    nodes.If,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Call,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Concat,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Continue,
    nodes.Break,
    nodes.NSRef,
    nodes.ExprStmt,
    nodes.With,
    nodes.FilterBlock,
    nodes.Scope,
    nodes.ScopedEvalContextModifier,
)
_LOADERS = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)
_GADGET_NAME = re.compile(
    r"__(class|mro|subclasses|globals|builtins|init|import|dict|base|bases|code|func|self|module|reduce|getattribute)__"
)
_LAMBDA = re.compile(rb'"class_name"\s*:\s*"Lambda"')


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}…{% endgeneration %}``, the block ``transformers`` adds for assistant masks (plain output)."""

    tags = {"generation"}  # noqa: RUF012 - Jinja's extension API

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@dataclass(frozen=True, slots=True)
class CodeReference:
    """One place where a model artefact refers to or carries code.

    Attributes:
        kind: ``auto_map``, ``keras_lambda`` or ``chat_template``.
        severity: ``high`` or ``medium``.
        summary: one line (what and where).
        line: line in the template (chat templates) or None.
        offset: byte offset (HDF5 scan) or None.
    """

    kind: str
    severity: str
    summary: str
    line: int | None = None
    offset: int | None = None


def auto_map_references(config: Any) -> list[CodeReference]:
    """Custom-code references of a ``transformers`` config (``auto_map``, ``custom_pipelines``).

    Args:
        config: the parsed JSON document.

    Returns:
        One high-severity reference per mapped class (``AutoModel -> modeling_x.MyModel``); a reference of the
        form ``repo--module.Class`` pulls code from another repository and says so.
    """
    if not isinstance(config, dict):
        return []
    refs: list[CodeReference] = []
    for key in ("auto_map", "custom_pipelines"):
        mapping = config.get(key)
        if not isinstance(mapping, dict):
            continue
        for auto_class, target in list(mapping.items())[:100]:
            for item in _strings(target):
                where = f" (code from repository {item.split('--', 1)[0]!r})" if "--" in item else ""
                refs.append(CodeReference("auto_map", HIGH, f"{key}: {auto_class} -> {item}{where}"))
    return refs


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | dict):
        for item in list(value.values() if isinstance(value, dict) else value)[:20]:
            yield from _strings(item)


def keras_lambda_layers(config: Any, max_nodes: int = 200_000) -> list[CodeReference]:
    """``Lambda`` layers in a Keras model config (``config.json`` of a ``.keras`` archive), walked iteratively.

    Returns:
        One high-severity reference per Lambda layer, naming it.
    """
    refs: list[CodeReference] = []
    stack, seen = [config], 0
    while stack and seen < max_nodes:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                inner = node.get("config") if isinstance(node.get("config"), dict) else {}
                name = str(inner.get("name") or node.get("name") or "?")[:100]
                refs.append(
                    CodeReference("keras_lambda", HIGH, f"Lambda layer {name!r} carries Python code run on load")
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return refs


def h5_lambda_offsets(fh: BinaryIO, limit: int, chunk: int = 1024 * 1024) -> list[int]:
    """Byte offsets of ``"class_name": "Lambda"`` in an HDF5 file (Keras stores its model config as a JSON attribute).

    Args:
        fh: the file, at offset 0; limit: bytes searched.

    Returns:
        Up to 20 offsets.
    """
    found: list[int] = []
    tail, base = b"", 0
    while base < limit and len(found) < 20:
        data = fh.read(min(chunk, limit - base))
        if not data:
            break
        window = tail + data
        for match in _LAMBDA.finditer(window):
            offset = base - len(tail) + match.start()
            if offset not in found:
                found.append(offset)
        tail = window[-64:]
        base += len(data)
    return found[:20]


def template_issues(source: str) -> list[CodeReference]:
    """Constructs in a Jinja chat template beyond plain formatting (the template is parsed, never rendered).

    Returns:
        One reference per construct (at most 50), with its line: high for underscore attributes, gadget names,
        imports and includes; medium for calls, filters and statements outside the formatting allowlists and
        for a template that does not parse.
    """
    env = jinja2.Environment(extensions=[jinja2.ext.loopcontrols, _GenerationTag], autoescape=False)  # noqa: S701 - parse only
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [CodeReference("chat_template", MEDIUM, f"template does not parse: {exc.message}", line=exc.lineno)]
    issues: list[CodeReference] = []
    for node in _walk(tree):
        issue = _judge(node)
        if issue and len(issues) < 50:
            severity, what = issue
            issues.append(CodeReference("chat_template", severity, what, line=getattr(node, "lineno", None)))
    return issues


def _walk(tree: nodes.Node, max_nodes: int = 100_000) -> Iterator[nodes.Node]:
    stack, count = [tree], 0
    while stack and count < max_nodes:
        node = stack.pop()
        count += 1
        yield node
        stack.extend(reversed(list(node.iter_child_nodes())))


def _judge(node: nodes.Node) -> tuple[str, str] | None:
    if isinstance(node, _LOADERS):
        return HIGH, f"{type(node).__name__.lower()} loads another template"
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return HIGH, f"attribute access to {node.attr!r} (template-injection gadget)"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_"):
        return HIGH, f"item access to {node.arg.value!r} (template-injection gadget)"
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and _GADGET_NAME.search(node.value):
        return HIGH, f"string {node.value[:40]!r} names a dunder attribute"
    if isinstance(node, nodes.Filter) and node.name not in _SAFE_FILTERS:
        severity = HIGH if node.name == "attr" else MEDIUM
        return severity, f"filter {node.name!r} outside the formatting allowlist"
    if isinstance(node, nodes.Call):
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name in _SAFE_FUNCTIONS:
            return None
        if isinstance(callee, nodes.Getattr) and callee.attr in _SAFE_METHODS:
            return None
        label = callee.name if isinstance(callee, nodes.Name) else getattr(callee, "attr", type(callee).__name__)
        return MEDIUM, f"call of {label!r} outside the formatting allowlist"
    if not isinstance(node, _PLAIN_NODES):
        return MEDIUM, f"{type(node).__name__} statement"
    return None
