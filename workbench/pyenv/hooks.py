"""Import-time hooks of a captured ``site-packages`` folder: the ``.pth`` lines ``site.py`` executes, and the
``sitecustomize`` / ``usercustomize`` modules it imports at every interpreter start. Code is shown, never run."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["CUSTOMIZE_LINES", "KIND_CUSTOMIZE", "KIND_PTH_EXEC", "KIND_PTH_INDENTED", "hook_issues"]

KIND_PTH_EXEC = "pth-executable"
KIND_PTH_INDENTED = "pth-indented-import"
KIND_CUSTOMIZE = "customize-hook"
#: lines of code shown from a sitecustomize / usercustomize
CUSTOMIZE_LINES = 10

Hit = tuple[str, int | None, str, str]


def hook_issues(present: Iterable[str], read: Callable[[str], str | None], owner: Callable[[str], str], *,
                max_line: int) -> list[Hit]:  # fmt: skip
    """``(path, line, kind, detail)`` of every hook among the folder's files (top level only, as ``site.py`` reads
    them). ``read`` gives a file's text (None when unreadable), ``owner`` says whether a RECORD lists it."""
    files = sorted(present)
    hits: list[Hit] = []
    for rel in files:
        if "/" not in rel and rel.endswith(".pth"):
            hits += _pth(rel, read(rel), owner(rel), max_line)
    for name in ("sitecustomize", "usercustomize"):
        for rel in (f"{name}.py", f"{name}/__init__.py"):
            if rel in files:
                hits.append(_customize(rel, read(rel), owner(rel), max_line))
        for rel in files:
            if rel.startswith(f"{name}.") and rel != f"{name}.py" and "/" not in rel:
                hits.append((rel, None, KIND_CUSTOMIZE, f"{name} module present ({owner(rel)}); imported at every "
                             "interpreter start"))  # fmt: skip
    return hits


def _pth(rel: str, text: str | None, owner: str, max_line: int) -> list[Hit]:
    hits: list[Hit] = []
    for lineno, line in enumerate((text or "").splitlines(), 1):
        shown = line[:max_line] + (" [...]" if len(line) > max_line else "")
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(("import ", "import\t")):
            hits.append((rel, lineno, KIND_PTH_EXEC, f"executed by site.py at every interpreter start ({owner}): "
                         f"{shown}"))  # fmt: skip
        elif line.lstrip().startswith(("import ", "import\t")):
            hits.append((rel, lineno, KIND_PTH_INDENTED, f"looks like code but is indented, so site.py takes it as a "
                         f"path, not run ({owner}): {shown}"))  # fmt: skip
    return hits


def _customize(rel: str, text: str | None, owner: str, max_line: int) -> Hit:
    code = [(n, ln[:max_line]) for n, ln in enumerate((text or "").splitlines(), 1)
            if ln.strip() and not ln.lstrip().startswith("#")][:CUSTOMIZE_LINES]  # fmt: skip
    first = code[0][0] if code else None
    shown = "\n".join(f"{n}: {ln}" for n, ln in code) or "(no code)"
    return (rel, first, KIND_CUSTOMIZE, f"imported by site.py at every interpreter start ({owner}); first lines of "
            f"code:\n{shown}")  # fmt: skip
