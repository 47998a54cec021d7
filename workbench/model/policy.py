"""The pickle import policy: which globals are known-safe, which are dangerous; everything else is unknown.

Rules are data (``pickle_policy.yaml`` beside this module), validated on load: unique ids, known classes, module
and attribute names that are identifiers, a reason, and an example and counterexample that the loaded policy must
classify as the rule says. Default-deny: a global no rule marks safe is ``unknown``; ``dangerous`` wins over
``safe``; a dotted attribute path reaching a dunder, or an import that cannot be resolved statically, is dangerous.

Names are resolved before they are classified, as the unpickler resolves them: Python 2 names through
``_compat_pickle`` (``__builtin__.xrange`` is ``builtins.range``, ``commands.getoutput`` is
``subprocess.getoutput``), and a dotted name (``STACK_GLOBAL`` reaches attributes of attributes) under every module
it may pass through: ``pathlib`` + ``os.system`` is also read as ``os.system``, ``tempfile`` + ``_os.system`` as
``os.system``. A safe rule may be limited to a ``context`` (``torchscript``: the archive is read by TorchScript's
C++ unpickler, which imports no Python module and resolves ``__torch__`` names against the archive's own code).
"""

from __future__ import annotations

import _compat_pickle
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
_RULE_KEYS = {"id", "class", "modules", "names", "submodules", "context", "reason", "example", "counterexample"}
CONTEXTS = frozenset({"torchscript"})
#: dotted names longer than this many parts are not split into every reading (the whole name is dangerous)
MAX_NAME_PARTS = 16
_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the policy classifies one imported global.

    Attributes:
        safety: ``safe``, ``dangerous`` or ``unknown``.
        rule: id of the rule that decided, or a built-in reason key (``dunder-attribute``, ``unresolved``), or None.
        reason: why, in words.
        resolved: the name the verdict is about when it is not the imported one (``os.system`` for
            ``pathlib.os.system``, ``builtins.range`` for ``__builtin__.xrange``), else None.
    """

    safety: str
    rule: str | None
    reason: str
    resolved: str | None = None


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
    context: str | None = None

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
        self._cache: dict[tuple[Any, Any, Any], Verdict] = {}

    def classify(self, module: str | None, name: str | None, context: str | None = None) -> Verdict:
        """Classify ``module.name``; ``None`` for either part means it could not be resolved statically.

        Args:
            context: the reader of the pickle (``torchscript``), enabling the safe rules limited to it.

        Returns:
            The :class:`Verdict`: dangerous when any reading of the name (see the module docstring) is; safe when
            the name itself or its Python 3 translation is on the safe list; else unknown.
        """
        key = (module, name, context)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._classify(module, name, context)
            if len(self._cache) < _CACHE_SIZE:
                self._cache[key] = verdict
        return verdict

    def _classify(self, module: str | None, name: str | None, context: str | None) -> Verdict:
        if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
            return Verdict(DANGEROUS, "unresolved", "the imported name is computed at load time, hiding what it is")
        parts = name.split(".")
        if len(parts) > MAX_NAME_PARTS:
            return Verdict(DANGEROUS, "deep-attribute", f"an attribute path of more than {MAX_NAME_PARTS} parts")
        direct = [(module, name), *_translated(module, name)]
        for mod, nam in direct + _through(module, parts):
            for rule in self._dangerous:
                if rule.matches(mod, nam):
                    resolved = None if (mod, nam) == (module, name) else f"{mod}.{nam}"
                    return Verdict(DANGEROUS, rule.id, rule.reason, resolved)
        if any(part.startswith("__") and part.endswith("__") and len(part) > 4 for part in parts):
            return Verdict(DANGEROUS, "dunder-attribute", "reaches a dunder attribute, a classic gadget step")
        for mod, nam in direct:
            for rule in self._safe:
                if (rule.context is None or rule.context == context) and rule.matches(mod, nam):
                    resolved = None if (mod, nam) == (module, name) else f"{mod}.{nam}"
                    return Verdict(SAFE, rule.id, rule.reason, resolved)
        return Verdict(UNKNOWN, None, "not on the known-safe list (default-deny)")


def _translated(module: str, name: str) -> list[tuple[str, str]]:
    """The Python 3 name the unpickler imports for a Python 2 one (``fix_imports``, protocols 0 to 2)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return [_compat_pickle.NAME_MAPPING[(module, name)]]
    if module in _compat_pickle.IMPORT_MAPPING:
        return [(_compat_pickle.IMPORT_MAPPING[module], name)]
    return []


def _through(module: str, parts: list[str]) -> list[tuple[str, str]]:
    """Every module a dotted attribute path may pass through: ``m`` + ``a.b.c`` is also ``m.a`` + ``b.c`` (a
    submodule), ``a`` + ``b.c``, ``a.b`` + ``c``, ``b`` + ``c`` (a module bound to an attribute), with leading
    underscores dropped (``_os`` is how ``tempfile`` names ``os``) and Python 2 names translated."""
    out: list[tuple[str, str]] = []
    n = len(parts)
    for j in range(1, n):
        out.append((module + "." + ".".join(parts[:j]), ".".join(parts[j:])))
        for i in range(j):
            rest = ".".join(parts[j:])
            for mod in {".".join(parts[i:j]), ".".join(parts[i:j]).lstrip("_")}:
                if mod and not mod.startswith("."):
                    out.append((mod, rest))
                    out.extend(_translated(mod, rest))
    return out


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
    context = raw.get("context")
    if context is not None and (context not in CONTEXTS or safety != SAFE):
        raise RuleError(path, f"context must be one of {sorted(CONTEXTS)}, on a safe rule", rid)
    if parsed_names is None and safety == SAFE and context is None:
        raise RuleError(path, 'a safe rule must list its names ("*" is only for dangerous and context rules)', rid)
    submodules = raw.get("submodules", False)
    if not isinstance(submodules, bool) or (submodules and safety == SAFE and context is None):
        raise RuleError(path, "submodules must be true or false, and only dangerous and context rules may cover "
                        "submodules", rid)  # fmt: skip
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
        context,
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
    if not rule.matches(module, name) or policy.classify(module, name, rule.context).safety != rule.safety:
        raise RuleError(path, f"example {rule.example!r} is not classified {rule.safety} by this rule", rule.id)
    module, name = split_global(policy, rule.counterexample)
    if rule.matches(module, name):
        raise RuleError(path, f"counterexample {rule.counterexample!r} is matched by the rule", rule.id)
