"""Pipeline-log scanning: YAML rule packs, a streaming one-pass scanner, redaction of secrets, the "logs" section."""

from __future__ import annotations

from workbench.logscan.analysis import analyse, render
from workbench.logscan.engine import Scanner, printable
from workbench.logscan.results import FileScan, LogMatch, RuleStats, ScanOptions
from workbench.rulepack.redact import Redactor, redact, redact_data, redact_lines
from workbench.rulepack.rules import Rule, RuleSet, builtin_rules, load_rule_file, load_rules

__all__ = [
    "FileScan",
    "LogMatch",
    "Redactor",
    "Rule",
    "RuleSet",
    "RuleStats",
    "ScanOptions",
    "Scanner",
    "analyse",
    "builtin_rules",
    "load_rule_file",
    "load_rules",
    "printable",
    "redact",
    "redact_data",
    "redact_lines",
    "render",
]
