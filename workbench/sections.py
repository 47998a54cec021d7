"""The analysis sections of an investigation, in report order: one registry that the run and the report read.

Each section names its analysis (``analyse(ctx) -> AnalysisResult``), its renderer (``render(result) -> list``
of HTML and figures; None: the findings list) and optionally a ``prepare(parameters)`` that the run calls before
any analysis (to start slow set-up in the background: the log rules' compilation) as ``"module:function"``
strings, imported only when used, so that reading the registry imports no analysis. The run
(:mod:`workbench.investigation`) runs them; the report view (:mod:`workbench.report.view`) draws them; neither
imports the other for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["SECTIONS", "Section", "register", "resolve"]


class Section(NamedTuple):
    """One analysis section: its title, its analysis, its renderer and its preparation (``"module:function"``)."""

    title: str
    analyse: str
    render: str | None = None
    prepare: str | None = None


#: section key -> :class:`Section`, in report order
SECTIONS: dict[str, Section] = {}


def register(key: str, title: str, analyse: str, render: str | None = None, prepare: str | None = None) -> None:
    """Add a section (keys are unique; the order of registration is the report's order).

    Raises:
        ValueError: the key is taken or a spec is not ``"module:function"``.
    """
    if key in SECTIONS:
        raise ValueError(f"section {key!r} is already registered")
    for spec in (analyse, render, prepare):
        if spec is not None and spec.count(":") != 1:
            raise ValueError(f"{spec!r} is not 'module:function'")
    SECTIONS[key] = Section(title, analyse, render, prepare)


def resolve(spec: str) -> Callable[..., Any]:
    """``"module:function"`` → the function (the module is imported now)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


register("model", "Model forensics", "workbench.model.analysis:analyse", "workbench.model.analysis:render")
register("monitor", "Monitor alerts", "workbench.checks.analysis:analyse_monitor_alerts")
register(
    "logs",
    "Pipeline logs",
    "workbench.logscan:analyse",
    "workbench.logscan:render",
    prepare="workbench.logscan.analysis:prepare",
)
register("dependencies", "Dependencies", "workbench.deps:analyse_dependencies", "workbench.deps:render_dependencies")
register("packages", "Installed packages", "workbench.pyenv.analysis:analyse", "workbench.pyenv.tables:render")
register("host", "Host state", "workbench.host:analyse_host", "workbench.host:render_host")
register("drift", "Behaviour drift", "workbench.drift:analyse", "workbench.drift:render")
