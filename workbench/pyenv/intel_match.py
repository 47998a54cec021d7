"""The incident intel (:mod:`workbench.data.python_incidents`) against what a case shows: installed versions and
host lines. Every finding names the entry, its title and its public source.

* ``package_compromised_version`` (critical): a distribution installed in a captured environment, or a ``pip
  freeze`` line, at a version an entry lists; a file whose SHA-256 an entry publishes.
* ``incident_indicator`` (the indicator's severity): a ``host`` indicator matching a file path of a captured
  environment (as installed: the capture's ``site_packages`` path joined to it), an executed start-up hook line, or
  a process command line; one finding per indicator and evidence file, with the count and examples.

Log indicators are matched by the log scan, with the log rules (:func:`workbench.logscan.analysis`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workbench.data.python_incidents import Entry, Intel
from workbench.deps_logs import ATLAS_DEPS
from workbench.grouping import Observation, group_finding, group_observations
from workbench.records import Finding, Severity

__all__ = ["HostLine", "Installed", "compromised_findings", "hash_findings", "host_findings"]

DETECTOR = "workbench.pyenv.intel"
#: host lines matched at most per evidence source (an environment's paths, a process list)
MAX_LINES = 500_000


@dataclass(frozen=True, slots=True)
class Installed:
    """One installed package version and where the case shows it (``where``: the environment or freeze file)."""

    name: str
    version: str
    where: str
    line: int | None = None
    timestamp: datetime | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class HostLine:
    """One line of host evidence: ``text`` matched, ``where`` (file or environment), ``line`` number, ``path``."""

    text: str
    where: str
    line: int | None = None
    path: str | None = None
    timestamp: datetime | None = None


def _cite(entry: Entry) -> str:
    return f"intel entry {entry.id} ({entry.title}; source {entry.source})"


def compromised_findings(intel: Intel, installed: Iterable[Installed]) -> list[Finding]:
    """One critical finding per installed version an entry names as compromised (and per entry)."""
    out: list[Finding] = []
    seen: set[tuple[str, str, str, str]] = set()
    for pkg in installed:
        for entry in intel.compromised(pkg.name, pkg.version):
            key = (entry.id, pkg.name.lower(), pkg.version, pkg.where)
            if key in seen:
                continue
            seen.add(key)
            note = f" {entry.note}" if entry.note else ""
            out.append(Finding.create(
                severity=Severity.CRITICAL, category="package_compromised_version", detector=DETECTOR,
                title=f"{pkg.name} {pkg.version} is a known-compromised release, installed in {pkg.where}",
                detail=f"{pkg.name} {pkg.version} ({pkg.where}{f' line {pkg.line}' if pkg.line else ''}) is named "
                       f"by {_cite(entry)}.{note}",
                evidence={"package": pkg.name, "version": pkg.version, "path": pkg.path or pkg.where,
                          "line": pkg.line, "intel": entry.id, "source": entry.source},
                atlas=ATLAS_DEPS, timestamp=pkg.timestamp,
            ))  # fmt: skip
    return out


def hash_findings(intel: Intel, digests: Iterable[tuple[str, str, str]]) -> list[Finding]:
    """``(sha256, path, where)`` of installed files against the hashes entries publish: one finding per match."""
    published = {h: (e, p) for e in intel for p in e.packages for h in p.sha256}
    out = []
    for digest, path, where in digests:
        if digest in published:
            entry, pkg = published[digest]
            out.append(Finding.create(
                severity=Severity.CRITICAL, category="package_compromised_version", detector=DETECTOR,
                title=f"{path} in {where} is a published file of compromised {pkg.name}",
                detail=f"SHA-256 {digest} of {path} ({where}) is listed by {_cite(entry)}.",
                evidence={"package": pkg.name, "path": path, "environment": where, "sha256": digest,
                          "intel": entry.id, "source": entry.source},
                atlas=ATLAS_DEPS,
            ))  # fmt: skip
    return out


def host_findings(intel: Intel, lines: Iterable[HostLine]) -> list[Finding]:
    """Host indicators over host lines: one finding per indicator and source, with count and examples."""
    host = [(e, i) for e, i in intel.indicators if i.kind == "host"]
    if not host:
        return []
    observations = []
    for n, hl in enumerate(lines):
        if n >= MAX_LINES:
            break
        for entry, ind in host:
            if ind.matches(hl.text):
                observations.append(Observation((ind.id, hl.where), ind.rule.severity, hl.line, hl.timestamp,
                                                example=hl.text, item=(entry, ind, hl)))  # fmt: skip
    out = []
    for group in group_observations(observations):
        entry, ind, first = group.first.item
        out.append(group_finding(
            group, category="incident_indicator", detector=DETECTOR,
            title=f"{ind.rule.title}: {group.count} in {first.where}",
            detail=f"{ind.rule.description} Indicator {ind.id} of {_cite(entry)}. First: {first.text[:300]}",
            evidence={"path": first.path or first.where, "rule_id": ind.id, "intel": entry.id,
                      "source": entry.source},
            atlas=ATLAS_DEPS,
        ))  # fmt: skip
    return out
