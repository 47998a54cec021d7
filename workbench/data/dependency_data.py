"""Bundled dependency knowledge for :mod:`workbench.deps`: popular package names (typosquat check), trusted index
hosts and the hints that make a name look internal (dependency-confusion check).

Files: ``popular_packages.txt`` (one PEP 503 name a line; ``!name`` marks a legitimate look-alike that is never
reported) and ``dependency_sources.yaml``. Both are validated on load; problems raise
:class:`~workbench.errors.RuleError` naming the file (and the line or key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from workbench.data import check_keys, check_str_list, compile_regex, data_file, read_yaml
from workbench.errors import RuleError

__all__ = ["DependencyData", "default_dependency_data", "load_dependency_data", "one_edit"]

_NORMALISED = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SOURCE_KEYS = {"version", "trusted_index_hosts", "public_service_hosts", "internal_prefixes", "generic_prefixes",
                "internal_name_patterns", "inflated_version"}  # fmt: skip
#: Names this short only count as typosquats for swaps and separator confusions, at medium severity.
SHORT_NAME = 4


def one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are exactly one edit apart: an insertion, a deletion, a substitution, or a swap of
    two adjacent characters (Damerau-Levenshtein distance 1, optimal string alignment)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long_, strict=False)) if x != y), len(short))
    return short[i:] == long_[i + 1 :]


def _swap(a: str, b: str) -> bool:
    return len(a) == len(b) and one_edit(a, b) and sorted(a) == sorted(b)


@dataclass(frozen=True, slots=True)
class DependencyData:
    """Validated dependency knowledge.

    Attributes:
        popular: normalised names of popular Python / ML packages.
        lookalikes: legitimate projects one edit from a popular name (never reported as typosquats).
        trusted_index_hosts: index hosts whose downloads are not reported.
        public_service_hosts: public code, model and package hosting (never an indicator to block by itself).
        internal_prefixes: configured first name segments of the organisation's packages.
        generic_prefixes: first segments never taken for an organisation's prefix.
        internal_patterns: regexes marking a name as internal-looking.
        inflated_version: regex of versions inflated to win a dependency-confusion race.
    """

    popular: frozenset[str]
    lookalikes: frozenset[str]
    trusted_index_hosts: frozenset[str]
    public_service_hosts: frozenset[str]
    internal_prefixes: frozenset[str]
    generic_prefixes: frozenset[str]
    internal_patterns: tuple[re.Pattern[str], ...]
    inflated_version: re.Pattern[str]

    def typosquat_of(self, name: str) -> str | None:
        """The popular name that ``name`` (normalised) imitates, or None.

        One edit away, or the same once separators are removed (``scikitlearn``); names in the popular or look-alike
        lists are never typosquats. For popular names of :data:`SHORT_NAME` letters or less only swaps count.
        """
        if name in self.popular or name in self.lookalikes:
            return None
        bare = name.replace("-", "")
        for target in sorted(self.popular):
            if bare == target.replace("-", ""):
                return target
            if len(target) > SHORT_NAME and one_edit(name, target):
                return target
            if len(target) <= SHORT_NAME and _swap(name, target):
                return target
        return None

    def trusted_host(self, host: str | None) -> bool:
        """True for a trusted index host or one of its subdomains."""
        host = (host or "").lower().rstrip(".")
        return any(host == t or host.endswith("." + t) for t in self.trusted_index_hosts)

    def public_host(self, host: str | None) -> bool:
        """True for a trusted index host, a public hosting service, or a subdomain of one."""
        host = (host or "").lower().rstrip(".")
        return self.trusted_host(host) or any(host == t or host.endswith("." + t) for t in self.public_service_hosts)

    def popular_prefix(self, prefix: str) -> bool:
        """True when a popular package's name starts with this first segment (``torch`` for ``torch-xla``)."""
        return any(p.split("-", 1)[0] == prefix for p in self.popular)


def _read_names(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(path, f"cannot read: {exc}") from None
    popular: set[str] = set()
    lookalikes: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        target, name = (lookalikes, text[1:].strip()) if text.startswith("!") else (popular, text)
        if not _NORMALISED.match(name):
            raise RuleError(path, f"line {number}: {name!r} is not a PEP 503 normalised name", name)
        if name in popular or name in lookalikes:
            raise RuleError(path, f"line {number}: duplicate name", name)
        target.add(name)
    if not popular:
        raise RuleError(path, "no popular package names")
    return frozenset(popular), frozenset(lookalikes)


def load_dependency_data(popular_path: Path | None = None, sources_path: Path | None = None) -> DependencyData:
    """Read and validate ``popular_packages.txt`` and ``dependency_sources.yaml`` (bundled ones by default).

    Raises:
        RuleError: a file is unreadable or invalid (names the file, and the line or key).
    """
    popular, lookalikes = _read_names(popular_path or data_file("popular_packages.txt"))
    source = sources_path or data_file("dependency_sources.yaml")
    doc = read_yaml(source)
    check_keys(doc, _SOURCE_KEYS, source)
    patterns = check_str_list(doc.get("internal_name_patterns"), "internal_name_patterns", source)
    lower = lambda key: frozenset(v.lower() for v in check_str_list(doc.get(key), key, source))  # noqa: E731
    return DependencyData(
        popular=popular,
        lookalikes=lookalikes,
        trusted_index_hosts=lower("trusted_index_hosts"),
        public_service_hosts=lower("public_service_hosts"),
        internal_prefixes=lower("internal_prefixes"),
        generic_prefixes=lower("generic_prefixes"),
        internal_patterns=tuple(compile_regex(p, "internal_name_patterns", source) for p in patterns),
        inflated_version=compile_regex(doc.get("inflated_version"), "inflated_version", source),
    )


@cache
def default_dependency_data() -> DependencyData:
    """The bundled data, loaded and validated once."""
    return load_dependency_data()
