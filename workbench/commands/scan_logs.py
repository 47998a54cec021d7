"""``workbench scan-logs PATH... [--rules DIR] [--json]``: scan CI/pipeline logs for suspicious lines.

A PATH is a log file (plain or gzip) or a folder, searched recursively (symlinks not followed) for ``*.log``,
``*.log.N``, ``*.txt``, ``*.out`` and their ``.gz`` forms. Exit status: 0 done (whatever was found), 1 a finding
reached ``--fail-on``, 2 usage error, missing path or invalid rule folder (one line ``workbench: error: ...`` on
stderr). ``--json`` prints one document ``{"findings", "matches", "warnings", "files"}``; every text is redacted.
Terminal output shows control characters and escape sequences from the logs as visible escapes.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.errors import RuleError
from workbench.records import Severity
from workbench.rulepack.matchers import BACKENDS
from workbench.termsafe import echo, json_text

if TYPE_CHECKING:
    from workbench.rulepack.redact import Redactor

__all__ = ["command", "find_logs"]

SEVERITIES = [s.value for s in Severity]
_LOG_NAME = re.compile(r"\.(?:log(?:\.\d+)?|txt|out)(?:\.gz)?$", re.IGNORECASE)


def _fail(message: str) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(2)


def find_logs(path: Path) -> list[Path]:
    """``path`` itself when it is a file, else the log-named regular files under it (sorted, no symlinks)."""
    if path.is_file():
        return [path]
    found = []
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            candidate = Path(root) / name
            if _LOG_NAME.search(name) and candidate.is_file() and not candidate.is_symlink():
                found.append(candidate)
    return found


@click.command("scan-logs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules", "rule_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Folder of YAML rules that extend or override the shipped ones by id (repeatable).")  # fmt: skip
@click.option("--intel", "intel_dirs", multiple=True, type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Folder of incident intel feeds whose log indicators are added (repeatable; the shipped intel "
                   "is always used).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (findings, matches, warnings).")
@click.option("--fail-on", type=click.Choice(SEVERITIES[:3]), help="Exit 1 when a finding reaches this severity.")
@click.option("--context", type=click.IntRange(0, 10), default=2, show_default=True, help="Lines of context.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Multi-pattern engine (hyperscan when installed, else Python re).")  # fmt: skip
def command(paths: tuple[Path, ...], rule_dirs: tuple[Path, ...], intel_dirs: tuple[Path, ...], as_json: bool,
            fail_on: str | None, context: int, backend: str) -> None:  # fmt: skip
    """Scan CI/pipeline logs (PATH: files or folders) with the rule pack; secrets are redacted in all output."""
    # the scanner (and pandas, through the analysis) is imported when the command runs, not at every CLI start
    from workbench.logscan.analysis import findings_from_scans, with_intel
    from workbench.logscan.engine import Scanner, ScanOptions
    from workbench.rulepack.redact import Redactor
    from workbench.rulepack.rules import builtin_rules, load_rules

    try:
        rules = with_intel(load_rules(*rule_dirs) if rule_dirs else builtin_rules(), list(intel_dirs))
        scanner = Scanner(rules, ScanOptions(context=context, backend=backend))
    except RuleError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            _fail(f"{path}: no such file or folder")
        found = find_logs(path)
        if not found and path.is_dir():
            _fail(f"{path}: no log files (*.log, *.txt, *.out, .gz) in this folder")
        if not found:
            _fail(f"{path}: not a regular file or folder")
        files += found
    scans = [scanner.scan_path(f, display=str(f)) for f in files]
    redactor = Redactor(rules)
    findings, _refs = findings_from_scans(scans, rules, redactor)
    if as_json:
        doc = {
            "findings": [f.to_dict() for f in findings],
            "matches": [m.to_dict() for s in scans for m in s.matches],
            "warnings": [w.to_dict() for s in scans for w in s.warnings],
            "files": [{"path": s.path, "lines": s.lines, "bytes": s.bytes_scanned, "compressed": s.compressed,
                       "complete": s.complete, "backend": s.backend,
                       "matches": sum(st.count for st in s.stats.values())} for s in scans],
        }  # fmt: skip
        click.echo(json_text(doc, allow_nan=True, redactor=redactor))
    else:
        _print_text(scans, findings, redactor)
    if fail_on and any(f.severity.rank >= Severity(fail_on).rank for f in findings):
        sys.exit(1)


def _print_text(scans: list, findings: list, redactor: Redactor) -> None:
    for scan in scans:
        for w in scan.warnings:
            echo(f"warning: {redactor.redact(str(w))}", err=True)
        for m in scan.matches:
            when = m.timestamp.isoformat().replace("+00:00", "Z") if m.timestamp else "-"
            echo(f"{redactor.redact(m.path)}:{m.line}: {m.severity.value} {m.rule_id} {when}")
            echo(f"    {m.text}")
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        counts[f.severity.value] += int(f.evidence.get("count", 0))
    by = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    echo(f"{sum(counts.values())} matching line(s) in {len(scans)} file(s) ({by}); {len(findings)} finding(s).")
