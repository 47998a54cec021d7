"""Python-like text judged without running it: dangerous calls, imports and dunder chains, shell commands, URLs.

Used for strings that ride along with a model (safetensors metadata) and for TorchScript ``code/`` sources. The
text is parsed with :func:`ast.parse` (which never executes anything) and walked iteratively; text that is not
Python is searched with the regular expressions below instead. Nothing is imported, compiled to bytecode or run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.model.code_reference import HIGH, MEDIUM

__all__ = [
    "DANGEROUS_CALLS",
    "DANGEROUS_MODULES",
    "TORCHSCRIPT_ROOTS",
    "CodeIssue",
    "dotted_name",
    "python_issues",
    "shell_issues",
    "torchscript_issues",
    "urls",
]

#: modules whose use from model-borne code means processes, files, the network or the interpreter itself
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "pty", "sys", "builtins", "__builtin__", "importlib", "imp", "runpy",
    "socket", "shutil", "ctypes", "pickle", "_pickle", "marshal", "urllib", "urllib2", "requests", "http", "httpx",
    "ftplib", "telnetlib", "smtplib", "webbrowser", "multiprocessing", "code", "codeop", "pathlib", "tempfile",
    "glob", "io", "platform", "signal", "asyncio", "threading", "zipimport", "pkgutil", "dill", "cloudpickle",
})  # fmt: skip
#: builtins that evaluate code, import modules or reach any attribute or file
DANGEROUS_CALLS = frozenset({
    "eval", "exec", "execfile", "compile", "__import__", "open", "globals", "locals", "vars", "breakpoint",
    "input", "setattr", "delattr", "reload", "memoryview",
})  # fmt: skip
#: names TorchScript's serialized code resolves against (their attributes are TorchScript builtins)
TORCHSCRIPT_ROOTS = frozenset({"torch", "ops", "__torch__", "CONSTANTS", "self"})
#: operator namespaces PyTorch itself registers
TORCH_OP_NAMESPACES = frozenset({
    "aten", "prim", "quantized", "_quantized", "prepacked", "_caffe2", "profiler", "cuda", "mkldnn", "mkldnn_prepacked",
    "quantized_decomposed", "_c10d_functional", "c10d", "c10d_functional", "_dtensor", "higher_order", "sparse",
    "xnnpack", "vulkan_prepack", "_nested", "metal_prepack", "onednn", "fbgemm", "inductor",
})  # fmt: skip
#: dunder attributes that reach interpreter internals whatever object they are read from
GADGET_ATTRIBUTES = frozenset({"__class__", "__globals__", "__builtins__", "__subclasses__", "__mro__", "__dict__",
                               "__code__", "__import__", "__reduce__", "__reduce_ex__", "__getattribute__", "__base__",
                               "__bases__", "__module__", "__loader__", "__spec__", "__closure__", "__func__",
                               "__self__", "__init_subclass__", "__getattr__", "__setattr__"})  # fmt: skip
_DUNDER = re.compile(r"^__[A-Za-z][A-Za-z0-9_]*__$")
_SHELL = re.compile(
    r"(?i)(\b(curl|wget|nc|ncat|netcat|bash|sh|zsh|powershell|pwsh|cmd\.exe|certutil|bitsadmin|chmod|crontab)\b"
    r"[^\n]{0,200}(\||;|&&|>|\bhttps?://|\s-[a-z]*c\b|\s/c\b)|/bin/(ba|z|da)?sh\b|\brm\s+-rf\b|\bbase64\s+-d\b)"
)
_URL = re.compile(r"(?i)\b(?:https?|ftp|s3|gs|hdfs|file)://[^\s'\"<>()]{1,500}")
#: longest text parsed as Python (a longer text is searched with the regular expressions only)
MAX_PARSED = 4 * 1024 * 1024
MAX_ISSUES = 50
#: syntax nodes walked per text
MAX_NODES = 500_000


@dataclass(frozen=True, slots=True)
class CodeIssue:
    """One construct found: ``severity`` (high or medium), ``what`` (one phrase), ``line`` (1-based, or None)."""

    severity: str
    what: str
    line: int | None = None


def dotted_name(node: ast.AST, depth: int = 0) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and depth < 64:
        base = dotted_name(node.value, depth + 1)
        return f"{base}.{node.attr}" if base else None
    return None


def python_issues(
    source: str, *, allowed_roots: frozenset[str] = frozenset(), capped: list[str] | None = None
) -> list[CodeIssue] | None:
    """Dangerous constructs of Python source, or None when the text is not Python.

    Args:
        source: the text.
        allowed_roots: names whose attribute chains are judged by the caller (``torch`` in TorchScript): their
            dunder attributes other than the interpreter gadgets (``torch.__is__``) are not reported.
        capped: receives a note when the walk stopped at its node or issue cap (the rest was not judged).

    Returns:
        Imports, calls of evaluating builtins, uses of process, file, network and interpreter modules
        (``os.system``), dunder attributes (``__class__``, ``__globals__``) and ``getattr`` with a dunder name
        (high); at most 50, one per construct (a call is not reported again as the name it calls).
    """
    tree = _parse(source)
    if tree is None:
        return None
    issues: list[CodeIssue] = []
    reported: set[int] = set()
    for node in _walk(tree, capped):
        if id(node) in reported:
            continue
        issue = _judge(node, allowed_roots)
        if issue is None:
            continue
        if isinstance(node, ast.Call):
            reported.update(id(n) for n in ast.walk(node.func))
        if issue not in issues:
            issues.append(issue)
            if len(issues) >= MAX_ISSUES:
                if capped is not None:
                    capped.append(f"more than {MAX_ISSUES} constructs: the rest not judged")
                break
    return issues


def torchscript_issues(source: str, capped: list[str] | None = None) -> list[CodeIssue] | None:
    """Constructs of a TorchScript ``code/`` source that reach outside the model, or None when it is not Python.

    TorchScript's serialized code is a Python subset that resolves names only against ``torch``, ``ops``,
    ``__torch__`` and a few builtins; what :func:`python_issues` reports (an import, ``os.system``, ``eval``, an
    interpreter gadget) has no place there (high). Besides: ``from_file`` and ``load_library`` (high: they map a file
    or load native code), operators of a namespace PyTorch does not ship (``ops.myns.run``: native code the loading
    program registered, medium) and custom classes (``torch.classes.ns.C``, medium).
    """
    issues = python_issues(source, allowed_roots=TORCHSCRIPT_ROOTS, capped=capped)
    if issues is None:
        return None
    tree = _parse(source)
    for node in _walk(tree) if tree is not None else ():
        if len(issues) >= MAX_ISSUES:
            break
        if not isinstance(node, ast.Attribute):
            continue
        name = dotted_name(node) or ""
        parts = name.split(".")
        line = getattr(node, "lineno", None)
        issue = None
        if parts[-1] in ("from_file", "load_library") and parts[0] in ("torch", "ops"):
            issue = CodeIssue(HIGH, f"use of {name} (maps a file or loads native code)", line)
        elif parts[0] in ("ops", "torch") and len(parts) >= 3 and parts[-3:-2] != ["classes"]:
            ns = parts[2] if parts[:2] == ["torch", "ops"] else parts[1] if parts[0] == "ops" else None
            if ns is not None and len(parts) == (4 if parts[0] == "torch" else 3) and ns not in TORCH_OP_NAMESPACES:
                issue = CodeIssue(MEDIUM, f"operator {name} of the namespace {ns!r}, not shipped with PyTorch", line)
        if issue is None and parts[:2] == ["torch", "classes"] and len(parts) == 4:
            issue = CodeIssue(MEDIUM, f"custom class {name} (native code the loading program registered)", line)
        if issue is not None and issue not in issues:
            issues.append(issue)
    return issues


def _parse(source: str) -> ast.AST | None:
    if len(source) > MAX_PARSED:
        return None
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def _walk(tree: ast.AST, capped: list[str] | None = None, max_nodes: int = MAX_NODES) -> Iterator[ast.AST]:
    stack, count = [tree], 0
    while stack and count < max_nodes:
        node = stack.pop()
        count += 1
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    if stack and capped is not None:
        capped.append(f"more than {max_nodes} syntax nodes: the rest not judged")


def _judge(node: ast.AST, allowed_roots: frozenset[str]) -> CodeIssue | None:
    line = getattr(node, "lineno", None)
    if isinstance(node, ast.Import | ast.ImportFrom):
        names = [a.name for a in node.names][:5]
        module = getattr(node, "module", None)
        what = f"from {module} import {', '.join(names)}" if module else f"import {', '.join(names)}"
        return CodeIssue(HIGH, what[:200], line)
    if isinstance(node, ast.Call):
        callee = dotted_name(node.func)
        if isinstance(node.func, ast.Name) and node.func.id in DANGEROUS_CALLS:
            return CodeIssue(HIGH, f"call of {node.func.id}()", line)
        if callee and callee.split(".", 1)[0] in DANGEROUS_MODULES and callee.split(".", 1)[0] not in allowed_roots:
            return CodeIssue(HIGH, f"call of {callee}()"[:200], line)
        if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2:
            arg = node.args[1]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _DUNDER.match(arg.value):
                return CodeIssue(HIGH, f"getattr(…, {arg.value!r})", line)
            if not isinstance(arg, ast.Constant):
                return CodeIssue(MEDIUM, "getattr with a computed attribute name", line)
    if isinstance(node, ast.Attribute):
        root = dotted_name(node)
        base = root.split(".", 1)[0] if root else None
        dunder = _DUNDER.match(node.attr) and node.attr not in ("__init__", "__name__")
        if dunder and (base not in allowed_roots or node.attr in GADGET_ATTRIBUTES):
            return CodeIssue(HIGH, f"attribute {node.attr!r} (reaches interpreter internals)", line)
        if base and base in DANGEROUS_MODULES and base not in allowed_roots:
            return CodeIssue(HIGH, f"use of {root}"[:200], line)
    if isinstance(node, ast.Name) and node.id in ("__builtins__", "__import__", "__loader__", "__spec__"):
        return CodeIssue(HIGH, f"name {node.id}", line)
    return None


def shell_issues(text: str) -> list[CodeIssue]:
    """Shell command lines in text (``curl … | sh``, ``bash -c``, ``/bin/sh``, ``rm -rf``): high, at most 5."""
    out: list[CodeIssue] = []
    for match in _SHELL.finditer(text[:MAX_PARSED]):
        line = text.count("\n", 0, match.start()) + 1
        out.append(CodeIssue(HIGH, f"shell command {match.group(0)[:120]!r}", line))
        if len(out) >= 5:
            break
    return out


def urls(text: str, limit: int = 10) -> list[str]:
    """URLs in text (http, https, ftp, s3, gs, hdfs, file schemes), at most ``limit``, each cut to 200 characters."""
    found: list[str] = []
    for match in _URL.finditer(text[:MAX_PARSED]):
        url = match.group(0)[:200]
        if url not in found:
            found.append(url)
            if len(found) >= limit:
                break
    return found
