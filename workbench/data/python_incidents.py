"""Known-compromised package versions and incident indicators: YAML data, validated on load.

The workbench ships ``python_incidents.yaml`` beside this module; a team adds folders of its own (``investigate
--intel DIR``, the ``intel`` option) whose ``*.yaml`` files use the same format. An entry whose id is already loaded
is replaced by the later folder's; an id repeated within one folder is an error. Every indicator is built and
checked by the log-rule validator (:mod:`workbench.rulepack.rules`): its pattern compiles within the same size cap,
and every example matches and every counter-example does not. Every problem raises :class:`IntelError` naming the
file and the entry. An indicator's rule has the family :data:`INTEL_FAMILY` and the entry's source as its reference,
so that a log finding it makes names the entry and the source.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from workbench import safeio, safeyaml
from workbench.errors import RuleError
from workbench.evidence.deps import normalize_name
from workbench.rulepack.rules import Rule, build_rule

__all__ = ["BUILTIN_FILE", "INTEL_FAMILY", "Entry", "Indicator", "Intel", "IntelError", "PackageRef", "builtin_intel",
           "intel_for", "load_intel"]  # fmt: skip

#: The shipped incident file.
BUILTIN_FILE = Path(__file__).with_name("python_incidents.yaml")
MAX_FEED_BYTES = 1024 * 1024
ECOSYSTEMS = ("pypi", "github-actions", "npm")
KINDS = ("log", "host")
#: the rule family of every indicator's rule (the log scan names the entry and its source for these)
INTEL_FAMILY = "intel"

_ENTRY_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = {"id", "title", "date", "source", "note", "packages", "indicators"}
_PACKAGE_KEYS = {"name", "ecosystem", "versions", "range", "sha256"}
_INDICATOR_KEYS = {
    "name", "kind", "title", "severity", "pattern", "literals", "ignore_case", "unless", "description", "atlas",
    "attack", "example", "counter_example",
}  # fmt: skip


class IntelError(RuleError):
    """An incident feed or one of its entries is invalid.

    Attributes:
        source: the feed file.
        rule_id: the offending entry's id (``entry_id`` too), or None when the file itself is bad.
        reason: what is wrong.
    """

    def __init__(self, source: str | Path, reason: str, entry_id: str | None = None) -> None:
        super().__init__(source, reason, entry_id)
        where = f"{self.source} (entry {entry_id})" if entry_id else self.source
        self.args = (f"{where}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def entry_id(self) -> str | None:
        """The offending entry's id."""
        return self.rule_id


@dataclass(frozen=True, slots=True)
class PackageRef:
    """Affected versions of one package.

    Attributes:
        name: the name as written (``tj-actions/changed-files`` for an action).
        key: the PEP 503 normalised name (lower case for actions), the lookup key.
        ecosystem: ``pypi``, ``github-actions`` or ``npm``.
        versions: exact affected versions.
        range: a PEP 440 specifier of affected versions ("" when unused).
        sha256: published hashes of the affected files (lower-case hex).
    """

    name: str
    key: str
    ecosystem: str
    versions: tuple[str, ...]
    range: str
    sha256: tuple[str, ...]

    def affects(self, version: str) -> bool:
        """Whether ``version`` is affected (PEP 440 comparison when both sides parse, exact text otherwise)."""
        wanted = _parse_version(version)
        for v in self.versions:
            known = _parse_version(v)
            if v == version.strip() or (known is not None and known == wanted):
                return True
        return bool(self.range and wanted is not None and SpecifierSet(self.range).contains(wanted, prereleases=True))


@dataclass(frozen=True, slots=True)
class Indicator:
    """One log or host pattern of an incident.

    Attributes:
        name: short name within the entry.
        kind: ``log`` (pipeline and job logs) or ``host`` (file paths, file lines, process lists).
        rule: the validated rule (id ``<entry>.<name>``, pattern, severity, examples, source file).
    """

    name: str
    kind: str
    rule: Rule

    @property
    def id(self) -> str:
        """``<entry id>.<name>``."""
        return self.rule.id

    def matches(self, text: str) -> bool:
        """Whether one line of text matches."""
        return self.rule.matches(text)


@dataclass(frozen=True, slots=True)
class Entry:
    """One documented incident.

    Attributes:
        id: stable identifier, named by every finding.
        title: one line.
        source: the public reference (advisory, blog post) for the entry.
        note: what happened and how sure the versions are ("" when none).
        date: when (``YYYY-MM`` text, "" when unknown).
        packages: affected package versions.
        indicators: log and host patterns.
        file: the feed file it was loaded from.
    """

    id: str
    title: str
    source: str
    note: str
    date: str
    packages: tuple[PackageRef, ...]
    indicators: tuple[Indicator, ...]
    file: str


@dataclass(frozen=True, slots=True)
class Intel:
    """Every loaded entry, with lookups by package and by line."""

    entries: tuple[Entry, ...]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str) -> Entry | None:
        """The entry with this id, or None."""
        return next((e for e in self.entries if e.id == entry_id), None)

    @property
    def indicators(self) -> tuple[tuple[Entry, Indicator], ...]:
        """Every indicator with its entry, in load order."""
        return tuple((e, i) for e in self.entries for i in e.indicators)

    def compromised(self, name: str, version: str, ecosystem: str = "pypi") -> list[Entry]:
        """The entries naming this package version as compromised (empty when none).

        Args:
            name: the package name as installed (normalised here, PEP 503; action names lower-cased).
            version: the installed version.
            ecosystem: ``pypi`` unless told.
        """
        key = _key(name, ecosystem)
        return [
            e for e in self.entries
            if any(p.ecosystem == ecosystem and p.key == key and p.affects(version) for p in e.packages)
        ]  # fmt: skip

    def match_line(self, text: str, kind: str | None = None) -> list[tuple[Entry, Indicator]]:
        """The indicators matching one line of text (of one ``kind`` when given), with their entries."""
        return [(e, i) for e, i in self.indicators if (kind is None or i.kind == kind) and i.matches(text)]


def _parse_version(text: str) -> Any:
    try:
        return Version(text.strip())
    except InvalidVersion:
        return None


def _key(name: str, ecosystem: str) -> str:
    return name.strip().lower() if ecosystem == "github-actions" else normalize_name(name.strip())


def _text(raw: dict, key: str, path: Path, entry_id: str | None, *, required: bool = True) -> str:
    value = raw.get(key, None if required else "")
    if key == "date" and isinstance(value, (int, datetime.date)):  # 2024 or 2024-12-11 as YAML reads them
        value = value.isoformat() if isinstance(value, datetime.date) else str(value)
    if not isinstance(value, str) or (required and not value.strip()):
        raise IntelError(path, f"'{key}' is required (non-empty text)" if required else f"'{key}' must be text",
                         entry_id)  # fmt: skip
    return " ".join(value.split())


def _strings(raw: Any, key: str, path: Path, entry_id: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise IntelError(path, f"'{key}' must be a list of strings", entry_id)
    return tuple(raw)


def _unknown(raw: dict, allowed: set[str], what: str, path: Path, entry_id: str | None) -> None:
    extra = sorted(map(str, set(raw) - allowed))
    if extra:
        raise IntelError(path, f"{what}: unknown key(s) {', '.join(map(repr, extra))}", entry_id)


def _package(raw: Any, path: Path, entry_id: str) -> PackageRef:
    if not isinstance(raw, dict):
        raise IntelError(path, "every package must be a mapping", entry_id)
    _unknown(raw, _PACKAGE_KEYS, "package", path, entry_id)
    name = _text(raw, "name", path, entry_id)
    ecosystem = raw.get("ecosystem", "pypi")
    if ecosystem not in ECOSYSTEMS:
        raise IntelError(path, f"package {name}: 'ecosystem' must be one of {', '.join(ECOSYSTEMS)}", entry_id)
    versions = _strings(raw.get("versions"), "versions", path, entry_id)
    spec = raw.get("range", "")
    if not isinstance(spec, str):
        raise IntelError(path, f"package {name}: 'range' must be a version specifier", entry_id)
    if not versions and not spec:
        raise IntelError(path, f"package {name}: give 'versions', 'range' or both", entry_id)
    bad = [v for v in versions if _parse_version(v) is None and ecosystem == "pypi"]
    if bad:
        raise IntelError(path, f"package {name}: not a PEP 440 version: {', '.join(bad)}", entry_id)
    if spec:
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise IntelError(path, f"package {name}: 'range' {spec!r} is not a PEP 440 specifier", entry_id) from None
    hashes = tuple(h.lower() for h in _strings(raw.get("sha256"), "sha256", path, entry_id))
    if any(not _SHA256.match(h) for h in hashes):
        raise IntelError(path, f"package {name}: 'sha256' values must be 64 hex digits", entry_id)
    return PackageRef(name=name, key=_key(name, ecosystem), ecosystem=ecosystem, versions=versions, range=spec,
                      sha256=hashes)  # fmt: skip


def _indicator(raw: Any, path: Path, entry_id: str, index: int, source: str) -> Indicator:
    if not isinstance(raw, dict):
        raise IntelError(path, f"indicator #{index + 1} is not a mapping", entry_id)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise IntelError(path, f"indicator #{index + 1}: 'name' must be lowercase letters, digits and dashes",
                         entry_id)  # fmt: skip
    _unknown(raw, _INDICATOR_KEYS, f"indicator {name}", path, entry_id)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise IntelError(path, f"indicator {name}: 'kind' must be one of {', '.join(KINDS)}", entry_id)
    rule_raw = {k: v for k, v in raw.items() if k not in {"name", "kind", "example", "counter_example"}}
    rule_raw["id"] = f"{entry_id}.{name}"
    rule_raw["category"] = "log_pattern"
    rule_raw["examples"] = {"match": raw.get("example"), "no_match": raw.get("counter_example")}
    rule_raw["references"] = [source]
    try:
        rule = build_rule(rule_raw, path, entry_id, index)
    except RuleError as exc:
        reason = exc.reason.replace("examples.no_match", "counter_example").replace("examples.match", "example")
        raise IntelError(path, f"indicator {name}: {reason}", entry_id) from None
    assert rule is not None  # noqa: S101 - 'enabled' is not an indicator key, so the rule is always built
    return Indicator(name=name, kind=kind, rule=replace(rule, family=INTEL_FAMILY))


def _entry(raw: Any, path: Path, index: int) -> Entry:
    if not isinstance(raw, dict):
        raise IntelError(path, f"entry #{index + 1} is not a mapping")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ENTRY_ID.match(entry_id):
        raise IntelError(path, f"entry #{index + 1}: 'id' must be lowercase words joined by dashes",
                         entry_id if isinstance(entry_id, str) else None)  # fmt: skip
    _unknown(raw, _ENTRY_KEYS, "entry", path, entry_id)
    source = _text(raw, "source", path, entry_id)
    if not source.startswith("https://"):
        raise IntelError(path, "'source' must be the https:// address of the public reference", entry_id)
    packages, indicators = raw.get("packages") or [], raw.get("indicators") or []
    if not isinstance(packages, list) or not isinstance(indicators, list):
        raise IntelError(path, "'packages' and 'indicators' must be lists", entry_id)
    if not packages and not indicators:
        raise IntelError(path, "an entry needs at least one package or indicator", entry_id)
    built = tuple(_indicator(r, path, entry_id, i, source) for i, r in enumerate(indicators))
    names = [i.name for i in built]
    if len(set(names)) != len(names):
        raise IntelError(path, "indicator names repeat within the entry", entry_id)
    return Entry(
        id=entry_id, title=_text(raw, "title", path, entry_id), source=source,
        note=_text(raw, "note", path, entry_id, required=False),
        date=_text(raw, "date", path, entry_id, required=False),
        packages=tuple(_package(p, path, entry_id) for p in packages), indicators=built, file=str(path),
    )  # fmt: skip


def load_feed(path: str | Path) -> list[Entry]:
    """The validated entries of one feed file.

    Raises:
        IntelError: unreadable file, invalid YAML, bad structure, a repeated id, or an invalid entry (named).
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FEED_BYTES:
            raise IntelError(path, f"feed larger than {MAX_FEED_BYTES} bytes")
        text = safeio.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntelError(path, f"cannot read feed: {exc}") from None
    try:
        doc = safeyaml.load(text, source=str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise IntelError(path, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise IntelError(path, "a feed must be a mapping with an 'entries' list")
    _unknown(doc, {"version", "entries"}, "feed", path, None)
    if doc.get("version", 1) != 1:
        raise IntelError(path, "unsupported feed 'version' (this workbench reads version 1)")
    entries = [_entry(raw, path, i) for i, raw in enumerate(doc["entries"])]
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise IntelError(path, "duplicate entry id in this file", e.id)
        seen.add(e.id)
    return entries


def _folder_entries(folder: Path) -> list[Entry]:
    if not folder.is_dir():
        raise IntelError(folder, "intel folder does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".yaml" and p.is_file())
    if not files:
        raise IntelError(folder, "intel folder holds no .yaml file")
    found: dict[str, Entry] = {}
    for path in files:
        for e in load_feed(path):
            if e.id in found:
                raise IntelError(path, f"duplicate entry id (also in {Path(found[e.id].file).name})", e.id)
            found[e.id] = e
    return list(found.values())


def load_intel(extra_dirs: Iterable[str | Path] = (), *, builtin: bool = True) -> Intel:
    """The shipped incident entries (unless ``builtin`` is False) extended by each folder's ``*.yaml`` in turn.

    Args:
        extra_dirs: team feed folders; an entry id already loaded is replaced in place, new ids are appended.
        builtin: include ``python_incidents.yaml``.

    Raises:
        IntelError: a folder is missing or empty, a feed or entry is invalid, or an id repeats within one folder.
    """
    merged: dict[str, Entry] = {}
    if builtin:
        merged.update((e.id, e) for e in load_feed(BUILTIN_FILE))
    for folder in extra_dirs:
        merged.update((e.id, e) for e in _folder_entries(Path(folder)))
    return Intel(tuple(merged.values()))


@cache
def builtin_intel() -> Intel:
    """The shipped entries (loaded and validated once per process)."""
    return load_intel()


def intel_for(extra_dirs: Iterable[str | Path] = ()) -> Intel:
    """:func:`load_intel` (raising as it does), kept per process for the same feed folders while their ``*.yaml`` keep
    their sizes and mtimes: the log scan, its preparation and the installed-package section read the same feeds."""
    folders = tuple(str(Path(f)) for f in extra_dirs)
    state = tuple(tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(f).glob("*.yaml")))
                  for f in folders)  # fmt: skip
    return _cached_intel(folders, state) if folders else builtin_intel()


@lru_cache(maxsize=8)
def _cached_intel(folders: tuple[str, ...], state: tuple) -> Intel:
    """The feeds of ``folders`` (``state``, their files' sizes and mtimes, is only the cache key)."""
    return load_intel(folders)
