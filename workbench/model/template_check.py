"""Chat templates judged statically: Jinja's own parser, an AST walk, constant folding of built names. Never rendered.

A chat template (GGUF ``tokenizer.chat_template``, ``chat_template`` of ``tokenizer_config.json``, a ``.jinja``
file) only needs loops, conditions, filters and string methods. A template-injection escape (CVE-2024-34359) reaches
Python internals instead: attribute chains through dunder names (``cycler.__init__.__globals__.os``), names built
from pieces so that no literal says them (``lipsum['__glo' ~ 'bals__']``, ``['_','_']|join``, ``'%c'|format(95)``,
``'__slabolg__'|reverse``), the ``attr`` filter or ``map('attr', …)``/``map(attribute=…)``, keyword names
(``dict(__x__=1)``), Jinja's globals used as objects (``cycler``, ``joiner``, ``namespace``, ``lipsum``), and a
global shadowed by an assignment (``{% set range = … %}``, after which a call of ``range`` is not what it seems).

Each string-valued expression in an attribute-name position (``x[…]``, ``attr(…)``, ``attribute=…``) is folded to its
possible values (constants, ``~``/``+``/``*``, ``%``-formatting with ``%s``/``%c``/``%d``, ``join``, ``replace``,
``reverse``, case filters, ``{% set %}`` and ``{% for %}`` over constant lists), every step bounded. Findings are
grouped per expression, with the expression shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes

from workbench.model.code_reference import HIGH, MEDIUM, CodeReference
from workbench.model.template_fold import Scope, fold, render

__all__ = ["template_issues"]

SAFE_FILTERS = frozenset({
    "abs", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string",
    "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
    "wordwrap",
})  # fmt: skip
#: filters taking an attribute name (``attribute=``, or the first argument of selectattr/rejectattr)
_ATTRIBUTE_FILTERS = frozenset({"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"})
#: Jinja's and transformers' globals: callable, never to be used as objects or redefined
GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "raise_exception", "strftime_now",
                     "self"})  # fmt: skip
_SAFE_FUNCTIONS = frozenset({"raise_exception", "strftime_now", "range", "namespace", "dict", "cycler", "joiner",
                             "loop"})  # fmt: skip
_SAFE_METHODS = frozenset({
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "lower", "upper", "title",
    "capitalize", "replace", "items", "keys", "values", "get", "append", "count", "find", "rfind", "index", "join",
    "isdigit", "isalpha", "isspace", "cycle",
})  # fmt: skip
#: attribute or item names that only an escape reaches for
DANGEROUS_NAMES = frozenset({
    "os", "sys", "system", "popen", "exec", "eval", "compile", "import_module", "builtins", "subprocess", "getattr",
    "setattr", "open", "globals", "locals", "vars", "mro", "func_globals", "f_globals", "f_locals", "f_back",
    "gi_frame", "gi_code", "cr_frame", "tb_frame", "co_code", "spawn", "spawnv", "execv", "execve", "check_output",
    "getoutput", "Popen",
})  # fmt: skip
_PLAIN_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.For, nodes.If, nodes.Assign,
    nodes.AssignBlock, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Call, nodes.Filter, nodes.Test,
    nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Add,
    nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Concat, nodes.List, nodes.Tuple,
    nodes.Dict, nodes.Pair, nodes.Keyword, nodes.Macro, nodes.CallBlock, nodes.Continue, nodes.Break, nodes.NSRef,
    nodes.ExprStmt, nodes.With, nodes.FilterBlock, nodes.Scope, nodes.ScopedEvalContextModifier,
)  # fmt: skip
_LOADERS = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)
_DUNDER_IN = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")
_RAW_GADGETS = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__|\|\s*attr\b|\bpopen\b|\bos\s*\.\s*system\b|\bsubprocess\b")
MAX_REFS = 50
#: template nodes walked
MAX_NODES = 200_000


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}…{% endgeneration %}``, the block ``transformers`` adds for assistant masks (plain output)."""

    tags = {"generation"}  # noqa: RUF012 - Jinja's extension API

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def template_issues(source: str, capped: list[str] | None = None) -> list[CodeReference]:
    """Constructs in a Jinja chat template beyond plain formatting (parsed, never rendered).

    Returns:
        One reference per statement or expression holding such constructs (at most 50), with its line and the
        expression shown: high for dunder attributes and names (also built from pieces), dangerous attribute
        names, the ``attr`` filter, imports and includes, globals used as objects or redefined; medium for calls,
        filters and statements outside the formatting allowlists and for a template that does not parse (whose
        raw text is then searched for gadget names).
    """
    env = jinja2.Environment(extensions=[jinja2.ext.loopcontrols, _GenerationTag], autoescape=False)  # noqa: S701 - parse only
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [CodeReference("chat_template", MEDIUM, f"template does not parse: {exc.message}", line=exc.lineno),
                *_raw_gadgets(source)]  # fmt: skip
    except (RecursionError, MemoryError):
        return [CodeReference("chat_template", MEDIUM, "template nested too deeply to parse"), *_raw_gadgets(source)]
    scope = Scope(tree)
    groups: dict[int, tuple[nodes.Node, list[tuple[str, str]]]] = {}
    order: list[int] = []
    for node, parent, root in _walk(tree, capped):
        found = _judge(node, parent, scope)
        if not found:
            continue
        key = id(root) if root is not None else id(node)
        if key not in groups:
            groups[key] = (root if root is not None else node, [])
            order.append(key)
        for item in found:
            if item not in groups[key][1]:
                groups[key][1].append(item)
    refs = []
    if len(order) > MAX_REFS and capped is not None:
        capped.append(f"{len(order) - MAX_REFS} more constructs past the first {MAX_REFS} not reported")
    for key in order[:MAX_REFS]:
        anchor, items = groups[key]
        severity = HIGH if any(s == HIGH for s, _ in items) else MEDIUM
        what = "; ".join(w for _, w in items[:8]) + (f"; and {len(items) - 8} more" if len(items) > 8 else "")
        if isinstance(anchor, nodes.Expr) and not isinstance(anchor, nodes.Const | nodes.Name):
            what += f" in `{render(anchor)}`"
        refs.append(CodeReference("chat_template", severity, what, line=getattr(anchor, "lineno", None)))
    return refs


def _raw_gadgets(source: str) -> list[CodeReference]:
    names = sorted({m.group(0) for m in _RAW_GADGETS.finditer(source[: 4 * 1024 * 1024])})[:10]
    if not names:
        return []
    return [CodeReference("chat_template", HIGH, f"unparsed template text names {', '.join(map(repr, names))}")]


def _walk(
    tree: nodes.Node, capped: list[str] | None = None, max_nodes: int = MAX_NODES
) -> Iterator[tuple[nodes.Node, nodes.Node | None, Any]]:
    """Every node with its parent and the root of the expression it belongs to (None for statements)."""
    stack: list[tuple[nodes.Node, nodes.Node | None, Any]] = [(tree, None, None)]
    count = 0
    while stack and count < max_nodes:
        node, parent, root = stack.pop()
        count += 1
        if root is None and isinstance(node, nodes.Expr | nodes.Helper):
            root = node
        yield node, parent, root
        stack.extend((child, node, root) for child in reversed(list(node.iter_child_nodes())))
    if stack and capped is not None:
        capped.append(f"template of more than {max_nodes} nodes: the rest not judged")


# ---------------------------------------------------------------------------------------------------- judging
def _judge(node: nodes.Node, parent: nodes.Node | None, scope: Scope) -> list[tuple[str, str]]:
    if isinstance(node, _LOADERS):
        return [(HIGH, f"{type(node).__name__.lower()} loads another template")]
    if isinstance(node, nodes.Macro) and node.name in GLOBALS:
        return [(HIGH, f"macro redefines the global {node.name!r}")]
    if isinstance(node, nodes.Name):
        return _name(node, parent)
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            return [(HIGH, f"attribute access to {node.attr!r} (template-injection gadget)")]
        if node.attr in DANGEROUS_NAMES:
            return [(HIGH, f"attribute access to {node.attr!r}")]
        return []
    if isinstance(node, nodes.Getitem):
        return _key(node.arg, scope, "item access to")
    if isinstance(node, nodes.Keyword) and node.key.startswith("_"):
        return [(HIGH, f"keyword argument {node.key!r} (a dunder name passed as a key)")]
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return _string(node.value)
    if isinstance(node, nodes.Filter):
        return _filter(node, scope)
    if isinstance(node, nodes.Call):
        return _call(node, scope)
    if not isinstance(node, _PLAIN_NODES):
        return [(MEDIUM, f"{type(node).__name__} statement")]
    return []


def _name(node: nodes.Name, parent: nodes.Node | None) -> list[tuple[str, str]]:
    if node.name not in GLOBALS:
        return []
    if node.ctx in ("store", "param"):
        return [(HIGH, f"redefines the global {node.name!r} (its calls then run what the template put there)")]
    used_as_object = (
        isinstance(parent, nodes.Getattr | nodes.Getitem | nodes.Filter | nodes.Test)
        and getattr(parent, "node", None) is node
    )
    if used_as_object:
        return [(HIGH, f"global {node.name!r} used as an object (the base of template-injection chains)")]
    return []


def _string(value: str) -> list[tuple[str, str]]:
    if m := _DUNDER_IN.search(value):
        return [(HIGH, f"string {value[:40]!r} names a dunder attribute" if m.group(0) == value
                 else f"string {value[:40]!r} holds the dunder name {m.group(0)!r}")]  # fmt: skip
    if _DUNDER_IN.search(value[::-1]):
        return [(HIGH, f"string {value[:40]!r} is a dunder name reversed")]
    if len(value) > 2 and (value.startswith("__") or value.endswith("__")):
        return [(HIGH, f"string {value[:40]!r} is a fragment of a dunder name")]
    return []


def _key(arg: nodes.Node, scope: Scope, label: str) -> list[tuple[str, str]]:
    """An expression naming an attribute or item: its folded values judged; a name built at render time flagged."""
    if isinstance(arg, nodes.Const):
        value = arg.value
        if isinstance(value, str) and (value.startswith("_") or value in DANGEROUS_NAMES):
            return [(HIGH, f"{label} {value[:60]!r} (template-injection gadget)")]
        return []
    values = fold(arg, scope, 0)
    bad = sorted(v for v in values or () if v.startswith("_") or v in DANGEROUS_NAMES)
    if bad:
        return [(HIGH, f"{label} {bad[0][:60]!r}, a name built from pieces")]
    if values is None and _stringy(arg):
        return [(HIGH, f"{label} a name built at render time")]
    return []


def _stringy(node: nodes.Node) -> bool:
    """Whether an expression builds a string (concatenation, formatting, string filters) rather than reads one."""
    if isinstance(node, nodes.Concat | nodes.Mod):
        return True
    if isinstance(node, nodes.Add):
        return any(isinstance(n, nodes.Const) and isinstance(n.value, str) for n in (node.left, node.right))
    return isinstance(node, nodes.Filter) and node.name in ("join", "replace", "format", "reverse", "string", "lower",
                                                            "upper", "first", "last")  # fmt: skip


def _filter(node: nodes.Filter, scope: Scope) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if node.name == "attr":
        out.append((HIGH, "filter 'attr' outside the formatting allowlist"))
        if node.args and not isinstance(node.args[0], nodes.Const):
            out += _key(node.args[0], scope, "attr filter reaches")
    elif node.name not in SAFE_FILTERS:
        out.append((MEDIUM, f"filter {node.name!r} outside the formatting allowlist"))
    if node.name in _ATTRIBUTE_FILTERS:
        for kw in node.kwargs:
            if kw.key == "attribute":
                out += _key(kw.value, scope, f"{node.name} filter reaches attribute")
        if node.name in ("selectattr", "rejectattr") and node.args:
            out += _key(node.args[0], scope, f"{node.name} filter reaches attribute")
        if node.name == "map" and node.args and not any(k.key == "attribute" for k in node.kwargs):
            applied = fold(node.args[0], scope, 0) or set()
            if "attr" in applied:
                out.append((HIGH, "map applies the attr filter"))
                out += [x for arg in node.args[1:2] for x in _key(arg, scope, "map(attr) reaches")]
            out += [(MEDIUM, f"map applies the filter {a!r}") for a in sorted(applied - SAFE_FILTERS - {"attr"})]
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        severity = HIGH if node.name in _ATTRIBUTE_FILTERS | {"attr"} else MEDIUM
        out.append((severity, f"filter {node.name!r} with arguments unpacked at render time"))
    return out


def _call(node: nodes.Call, scope: Scope) -> list[tuple[str, str]]:
    callee = node.node
    out: list[tuple[str, str]] = []
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        out.append((MEDIUM, "call with arguments unpacked at render time"))
    if isinstance(callee, nodes.Name):
        if callee.name in scope.macros or (callee.name in _SAFE_FUNCTIONS and callee.name not in scope.assigned):
            return out
        if callee.name == "caller":
            return out
        return [*out, (MEDIUM, f"call of {callee.name!r} outside the formatting allowlist")]
    if isinstance(callee, nodes.Getattr) and callee.attr in _SAFE_METHODS:
        return out
    label = getattr(callee, "attr", type(callee).__name__)
    return [*out, (MEDIUM, f"call of {label!r} outside the formatting allowlist")]


# ---------------------------------------------------------------------------------------------------- folding
