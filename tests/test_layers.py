"""The package's layers, checked on its source: no import cycle between modules or between folders, no analysis
importing the report, the run or the conclusions, and conclusions that import no analysis."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "workbench"
ANALYSES = ("model", "logscan", "drift", "checks", "evidence", "deps", "deps_baseline", "deps_logs", "host",
            "host_network", "pyenv", "environments")  # fmt: skip
UPPER = ("report", "investigation", "conclusions", "comms")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path, *, top_level: bool) -> set[str]:
    """Workbench modules imported by a file (``if TYPE_CHECKING:`` blocks left out; ``top_level``: only imports
    executed when the module loads, not those inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workbench"):
                subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
                found.update(subs)
                if len(subs) < len(node.names):  # names defined by the module itself, not its submodules
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("workbench"))
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list) and (not top_level or isinstance(node, ast.If | ast.Try)):
                    visit([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)])
            if isinstance(node, ast.ExceptHandler):
                visit(node.body)

    visit(tree.body)
    return {m for m in found if m in MODULES}


def unit(module: str) -> str:
    """The layering unit of a module: its first-level folder (``workbench.model``), or the root module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return [*stack[stack.index(v) :], v]
            if v not in state and (found := dfs(v)):
                return found
        stack.pop()
        state[u] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_no_import_cycle_between_modules():
    graph = {m: _imports(p, top_level=True) - {m} for m, p in MODULES.items()}
    assert _cycle(graph) is None


def test_no_import_cycle_between_folders():
    """Deferred imports count too; the package's ``__init__`` (lazy public facade) is left out."""
    graph: dict[str, set[str]] = {}
    for m, p in MODULES.items():
        if m == "workbench":
            continue
        graph.setdefault(unit(m), set()).update(unit(d) for d in _imports(p, top_level=False) if d != "workbench")
    graph = {k: v - {k} for k, v in graph.items()}
    assert _cycle(graph) is None


@pytest.mark.parametrize("analysis", ANALYSES)
def test_analyses_import_neither_the_report_nor_the_run_nor_the_conclusions(analysis):
    bad = []
    for m, p in MODULES.items():
        if unit(m) == f"workbench.{analysis}":
            bad += [(m, d) for d in _imports(p, top_level=False) if unit(d) in {f"workbench.{u}" for u in UPPER}]
    assert bad == []


def test_conclusions_import_no_analysis_and_no_report():
    banned = {f"workbench.{u}" for u in (*ANALYSES, "report", "investigation", "comms", "timeline")}
    bad = [(m, d) for m, p in MODULES.items() if unit(m) == "workbench.conclusions"
           for d in _imports(p, top_level=False) if unit(d) in banned]  # fmt: skip
    assert bad == []


def test_htmlkit_is_a_leaf_at_load_time():
    assert _imports(MODULES["workbench.htmlkit"], top_level=True) == set()
