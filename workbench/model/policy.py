"""The pickle import policy: which globals are known-safe, which are dangerous; everything else is unknown.

Rules are data (``pickle_policy.yaml`` beside this module), validated on load: unique ids, known classes, module
and attribute names that are identifiers, a reason, and an example and counterexample that the loaded policy must
classify as the rule says. Default-deny: a global no rule marks safe is ``unknown``; ``dangerous`` wins over
``safe``; a dotted attribute path reaching a dunder, or an import that cannot be resolved statically, is dangerous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from workbench import safeyaml
from workbench.errors import RuleError

__all__ = [
    "DEFAULT_POLICY_PATH",
    "ImportPolicy",
    "PolicyRule",
    "Verdict",
    "default_policy",
    "load_policy",
    "split_global",
]

DEFAULT_POLICY_PATH = Path(__file__).with_name("pickle_policy.yaml")
SAFE, DANGEROUS, UNKNOWN = "safe", "dangerous", "unknown"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_RULE_KEYS = {"id", "class", "modules", "names", "submodules", "reason", "example", "counterexample"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the policy classifies one imported global.

    Attributes:
        safety: ``safe``, ``dangerous`` or ``unknown``.
        rule: id of the rule that decided, or a built-in reason key (``dunder-attribute``, ``unresolved``), or None.
        reason: why, in words.
    """

    safety: str
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule of the policy file (see the file's header for the fields)."""

    id: str
    safety: str
    modules: tuple[str, ...]
    names: tuple[str, ...] | None  # None means every name
    submodules: bool
    reason: str
    example: str
    counterexample: str

    def matches(self, module: str, name: str) -> bool:
        """Whether the rule covers ``module.name`` (dangerous rules also cover attributes below a listed name)."""
        in_module = module in self.modules or (
            self.submodules and any(module.startswith(m + ".") for m in self.modules)
        )
        if not in_module:
            return False
        if self.names is None:
            return True
        if name in self.names:
            return True
        return self.safety == DANGEROUS and any(name.startswith(n + ".") for n in self.names)


class ImportPolicy:
    """An ordered set of rules; :meth:`classify` applies dangerous rules first, then safe ones, else unknown."""

    def __init__(self, rules: list[PolicyRule], source: str) -> None:
        self.rules = rules
        self.source = source
        self._dangerous = [r for r in rules if r.safety == DANGEROUS]
        self._safe = [r for r in rules if r.safety == SAFE]

    def classify(self, module: str | None, name: str | None) -> Verdict:
        """Classify ``module.name``; ``None`` for either part means it could not be resolved statically.

        Returns:
            The :class:`Verdict`.
        """
        if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
            return Verdict(DANGEROUS, "unresolved", "the imported name is computed at load time, hiding what it is")
        for rule in self._dangerous:
            if rule.matches(module, name):
                return Verdict(DANGEROUS, rule.id, rule.reason)
        if any(part.startswith("__") and part.endswith("__") and len(part) > 4 for part in name.split(".")):
            return Verdict(DANGEROUS, "dunder-attribute", "reaches a dunder attribute, a classic gadget step")
        for rule in self._safe:
            if rule.matches(module, name):
                return Verdict(SAFE, rule.id, rule.reason)
        return Verdict(UNKNOWN, None, "not on the known-safe list (default-deny)")


def load_policy(path: str | Path = DEFAULT_POLICY_PATH) -> ImportPolicy:
    """Read and validate a policy file.

    Returns:
        The :class:`ImportPolicy`.

    Raises:
        RuleError: the file is unreadable or a rule is invalid (names the rule).
    """
    path = Path(path)
    try:
        data = safeyaml.load_file(path)
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(path, f"cannot read the policy: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("rules"), list):
        raise RuleError(path, "expected a mapping with version: 1 and a list of rules")
    rules: list[PolicyRule] = []
    seen: set[str] = set()
    for raw in data["rules"]:
        rule = _parse_rule(path, raw)
        if rule.id in seen:
            raise RuleError(path, "duplicate rule id", rule.id)
        seen.add(rule.id)
        rules.append(rule)
    policy = ImportPolicy(rules, str(path))
    for rule in rules:
        _check_examples(path, policy, rule)
    return policy


@lru_cache(maxsize=1)
def default_policy() -> ImportPolicy:
    """The policy shipped with the workbench (loaded once)."""
    return load_policy(DEFAULT_POLICY_PATH)


def _parse_rule(path: Path, raw: Any) -> PolicyRule:
    if not isinstance(raw, dict):
        raise RuleError(path, "each rule must be a mapping")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RuleError(path, f"rule id {rid!r} must be lower-case letters, digits and dashes")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(path, f"unknown keys {sorted(unknown)}", rid)
    safety = raw.get("class")
    if safety not in (SAFE, DANGEROUS):
        raise RuleError(path, f"class must be safe or dangerous, not {safety!r}", rid)
    modules = raw.get("modules")
    if (
        not isinstance(modules, list)
        or not modules
        or not all(isinstance(m, str) and _DOTTED.match(m) for m in modules)
    ):
        raise RuleError(path, "modules must be a non-empty list of dotted module names", rid)
    names = raw.get("names")
    if names == "*":
        parsed_names = None
    elif isinstance(names, list) and names and all(isinstance(n, str) and _DOTTED.match(n) for n in names):
        parsed_names = tuple(names)
    else:
        raise RuleError(path, 'names must be "*" or a non-empty list of attribute names', rid)
    if parsed_names is None and safety == SAFE:
        raise RuleError(path, 'a safe rule must list its names ("*" is only for dangerous rules)', rid)
    submodules = raw.get("submodules", False)
    if not isinstance(submodules, bool) or (submodules and safety == SAFE):
        raise RuleError(path, "submodules must be true or false, and only dangerous rules may cover submodules", rid)
    texts = {k: raw.get(k) for k in ("reason", "example", "counterexample")}
    for key, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise RuleError(path, f"{key} is required", rid)
    for key in ("example", "counterexample"):
        if "." not in texts[key] or not _DOTTED.match(texts[key]):
            raise RuleError(path, f"{key} must be a dotted module.name", rid)
    return PolicyRule(
        rid,
        safety,
        tuple(modules),
        parsed_names,
        submodules,
        texts["reason"].strip(),
        texts["example"],
        texts["counterexample"],
    )


def split_global(policy: ImportPolicy, dotted: str) -> tuple[str, str]:
    """Split ``a.b.c`` into (module, name) by the longest module prefix any rule lists (else at the last dot)."""
    known = {m for r in policy.rules for m in r.modules}
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        if module in known or any(module.startswith(m + ".") for m in known):
            return module, ".".join(parts[cut:])
    return ".".join(parts[:-1]), parts[-1]


def _check_examples(path: Path, policy: ImportPolicy, rule: PolicyRule) -> None:
    module, name = split_global(policy, rule.example)
    if not rule.matches(module, name) or policy.classify(module, name).safety != rule.safety:
        raise RuleError(path, f"example {rule.example!r} is not classified {rule.safety} by this rule", rule.id)
    module, name = split_global(policy, rule.counterexample)
    if rule.matches(module, name):
        raise RuleError(path, f"counterexample {rule.counterexample!r} is matched by the rule", rule.id)
