"""Detection data shipped with the workbench (YAML and text files), and small helpers to read and validate them.

Files: ``suspicious_processes.yaml`` (host rules, read by :mod:`workbench.host`), ``popular_packages.txt`` and
``dependency_sources.yaml`` (read by :mod:`workbench.deps`). Every file is validated when loaded; a problem raises
:class:`~workbench.errors.RuleError` naming the file and, where it applies, the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from workbench import safeyaml
from workbench.errors import RuleError

__all__ = ["DATA_DIR", "check_keys", "check_str_list", "compile_regex", "data_file", "read_yaml"]

#: Folder of the bundled data files.
DATA_DIR = Path(__file__).resolve().parent
#: Data files larger than this are refused (they are hand-written and small).
MAX_DATA_BYTES = 4 * 1024 * 1024


def data_file(name: str) -> Path:
    """Absolute path of a bundled data file."""
    return DATA_DIR / name


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping read with ``safe_load``.

    Raises:
        RuleError: the file is missing, too large, not YAML, or not a mapping.
    """
    try:
        if path.stat().st_size > MAX_DATA_BYTES:
            raise RuleError(path, f"larger than {MAX_DATA_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RuleError(path, "not UTF-8 text") from None
    try:
        doc = safeyaml.load(text, source=str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RuleError(path, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise RuleError(path, "top level must be a mapping")
    return doc


def check_keys(doc: dict[str, Any], allowed: Iterable[str], source: Path, rule_id: str | None = None) -> None:
    """RuleError when ``doc`` has a key outside ``allowed`` (catches typos such as ``patern``)."""
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise RuleError(source, f"unknown key(s) {', '.join(map(str, unknown))}", rule_id)


def check_str_list(value: Any, what: str, source: Path, rule_id: str | None = None) -> list[str]:
    """``value`` as a list of strings (None gives []); RuleError otherwise."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise RuleError(source, f"{what} must be a list of strings", rule_id)
    return [str(v) for v in value]


def compile_regex(pattern: Any, what: str, source: Path, rule_id: str | None = None) -> re.Pattern[str]:
    """Compile a regex from a data file; RuleError naming the file and rule when it is not one."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(source, f"{what} must be a non-empty string", rule_id)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RuleError(source, f"{what} does not compile: {exc}", rule_id) from None
