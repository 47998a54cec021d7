"""Host rules for :mod:`workbench.host`: the validated content of ``suspicious_processes.yaml``.

Command-line rules are regexes searched in a ``ps`` command line; each carries a severity, MITRE ATLAS ids (which
must be known to :mod:`workbench.atlas`), ATT&CK ids, and examples that must behave (``examples.match`` found,
``examples.no_match`` not). The vocabulary (model-server names, interpreters, shells, staging folders, internal
ranges, ports) feeds the contextual checks of :mod:`workbench.host`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from workbench.atlas import TECHNIQUES
from workbench.data import check_keys, check_str_list, compile_regex, data_file, read_yaml
from workbench.errors import RuleError
from workbench.records import Severity

__all__ = ["HostRules", "ProcessRule", "default_host_rules", "load_host_rules"]

_ATTACK_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_TOP_KEYS = {"version", "model_servers", "model_server_modules", "interpreters", "shells", "staging_dirs",
             "network", "rules"}  # fmt: skip
_NET_KEYS = {"internal", "common_ports", "backdoor_ports", "connected_states"}
_RULE_KEYS = {"id", "title", "severity", "pattern", "description", "atlas", "attack", "examples", "references"}


@dataclass(frozen=True, slots=True)
class ProcessRule:
    """One command-line rule (see ``data/suspicious_processes.yaml``)."""

    id: str
    title: str
    severity: Severity
    pattern: re.Pattern[str]
    description: str
    atlas: tuple[str, ...]
    attack: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HostRules:
    """Validated host rules and the vocabulary the contextual checks use."""

    rules: tuple[ProcessRule, ...]
    model_servers: frozenset[str]
    model_server_modules: tuple[str, ...]
    interpreters: re.Pattern[str]
    shells: re.Pattern[str]
    staging_dirs: tuple[str, ...]
    internal: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    common_ports: frozenset[int]
    backdoor_ports: frozenset[int]
    connected_states: frozenset[str]


def _ports(value: Any, what: str, source: Path) -> frozenset[int]:
    if not isinstance(value, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in value):
        raise RuleError(source, f"network.{what} must be a list of port numbers")
    return frozenset(value)


def _rule(raw: Any, source: Path, index: int) -> ProcessRule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise RuleError(source, f"rules[{index}] has no id")
    rid = raw["id"]
    check_keys(raw, _RULE_KEYS, source, rid)
    try:
        severity = Severity.parse(raw.get("severity", ""))
    except ValueError as exc:
        raise RuleError(source, str(exc), rid) from None
    pattern = compile_regex(raw.get("pattern"), "pattern", source, rid)
    atlas = tuple(check_str_list(raw.get("atlas"), "atlas", source, rid))
    if unknown := [a for a in atlas if a not in TECHNIQUES]:
        raise RuleError(source, f"ATLAS id(s) not in workbench.atlas: {', '.join(unknown)}", rid)
    attack = tuple(check_str_list(raw.get("attack"), "attack", source, rid))
    if bad := [a for a in attack if not _ATTACK_ID.match(a)]:
        raise RuleError(source, f"not ATT&CK technique ids: {', '.join(bad)}", rid)
    examples = raw.get("examples")
    if not isinstance(examples, dict):
        raise RuleError(source, "examples.match and examples.no_match are required", rid)
    matches = check_str_list(examples.get("match"), "examples.match", source, rid)
    no_matches = check_str_list(examples.get("no_match"), "examples.no_match", source, rid)
    if not matches or not no_matches:
        raise RuleError(source, "needs at least one examples.match and one examples.no_match", rid)
    if miss := [e for e in matches if not pattern.search(e)]:
        raise RuleError(source, f"pattern does not match its example {miss[0]!r}", rid)
    if hit := [e for e in no_matches if pattern.search(e)]:
        raise RuleError(source, f"pattern matches its no_match example {hit[0]!r}", rid)
    title = raw.get("title")
    if not isinstance(title, str) or not title:
        raise RuleError(source, "title is required", rid)
    return ProcessRule(rid, title, severity, pattern, str(raw.get("description") or ""), atlas, attack)


def load_host_rules(path: Path | None = None, *, extra: Path | None = None) -> HostRules:
    """Read and validate the host rules.

    Args:
        path: the rule file (default: the bundled ``data/suspicious_processes.yaml``).
        extra: an optional user file whose ``rules`` add to the bundled ones or replace them by id.

    Raises:
        RuleError: naming the file and the rule (unknown key, bad regex, duplicate id, example that misbehaves...).
    """
    source = path or data_file("suspicious_processes.yaml")
    doc = read_yaml(source)
    check_keys(doc, _TOP_KEYS, source)
    rules = _rules_of(doc, source)
    if extra is not None:
        extra_doc = read_yaml(extra)
        check_keys(extra_doc, {"version", "rules"}, extra)
        rules.update(_rules_of(extra_doc, extra))
    net = doc.get("network")
    if not isinstance(net, dict):
        raise RuleError(source, "network must be a mapping")
    check_keys(net, _NET_KEYS, source)
    try:
        internal = tuple(
            ipaddress.ip_network(n, strict=False) for n in check_str_list(net.get("internal"), "x", source)
        )
    except ValueError as exc:
        raise RuleError(source, f"network.internal: {exc}") from None
    servers = check_str_list(doc.get("model_servers"), "model_servers", source)
    return HostRules(
        rules=tuple(rules.values()),
        model_servers=frozenset(s.lower() for s in servers),
        model_server_modules=tuple(check_str_list(doc.get("model_server_modules"), "model_server_modules", source)),
        interpreters=compile_regex(doc.get("interpreters"), "interpreters", source),
        shells=compile_regex(doc.get("shells"), "shells", source),
        staging_dirs=tuple(check_str_list(doc.get("staging_dirs"), "staging_dirs", source)),
        internal=internal,
        common_ports=_ports(net.get("common_ports"), "common_ports", source),
        backdoor_ports=_ports(net.get("backdoor_ports"), "backdoor_ports", source),
        connected_states=frozenset(check_str_list(net.get("connected_states"), "connected_states", source)),
    )


def _rules_of(doc: dict, source: Path) -> dict[str, ProcessRule]:
    raw = doc.get("rules")
    if not isinstance(raw, list) or not raw:
        raise RuleError(source, "rules must be a non-empty list")
    out: dict[str, ProcessRule] = {}
    for i, item in enumerate(raw):
        rule = _rule(item, source, i)
        if rule.id in out:
            raise RuleError(source, "duplicate rule id", rule.id)
        out[rule.id] = rule
    return out


@cache
def default_host_rules() -> HostRules:
    """The bundled rules, loaded and validated once."""
    return load_host_rules()
