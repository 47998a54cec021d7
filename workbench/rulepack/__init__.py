"""Detection rules as data: the YAML rule pack (validated on load), the one-pass multi-pattern matchers, and the
redaction of secrets that the pack's credential rules define.

A base package: it imports only :mod:`workbench.errors` and :mod:`workbench.records`. The pipeline-log scanner
(:mod:`workbench.logscan`) runs the pack over logs; every writer of text (findings, timeline, comms, the report's
HTML helpers) redacts through :mod:`workbench.rulepack.redact`.
"""
