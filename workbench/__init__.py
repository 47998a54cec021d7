"""AI supply-chain forensic workbench: evidence, custody, analyses, timeline and reports for AI incidents.

The public API is re-exported here lazily, so that ``workbench --help`` does not import pandas or IPython.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench._version import __version__

_EXPORTS = {
    "Case": "workbench.case",
    "CustodyError": "workbench.errors",
    "EvidenceError": "workbench.errors",
    "MalformedEvidence": "workbench.errors",
    "ReportError": "workbench.errors",
    "RuleError": "workbench.errors",
    "UnsupportedEvidence": "workbench.errors",
    "WorkbenchError": "workbench.errors",
    "Event": "workbench.records",
    "EvidenceWarning": "workbench.records",
    "Finding": "workbench.records",
    "Severity": "workbench.records",
    "to_frame": "workbench.records",
    "Investigation": "workbench.investigation",
    "setup": "workbench.report.notebook",
}

__all__ = [
    "Case",
    "CustodyError",
    "Event",
    "EvidenceError",
    "EvidenceWarning",
    "Finding",
    "Investigation",
    "MalformedEvidence",
    "ReportError",
    "RuleError",
    "Severity",
    "UnsupportedEvidence",
    "WorkbenchError",
    "__version__",
    "setup",
    "to_frame",
]

if TYPE_CHECKING:  # pragma: no cover
    from workbench.case import Case
    from workbench.errors import (
        CustodyError,
        EvidenceError,
        MalformedEvidence,
        ReportError,
        RuleError,
        UnsupportedEvidence,
        WorkbenchError,
    )
    from workbench.investigation import Investigation
    from workbench.records import Event, EvidenceWarning, Finding, Severity, to_frame
    from workbench.report.notebook import setup


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
