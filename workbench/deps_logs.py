"""Package downloads seen in pipeline logs, for :mod:`workbench.deps`: bounded findings and timeline events.

Downloads from an index host that is not trusted are grouped by (log file, host, whether the downloaded
``package version`` is installed in the captured pip freeze): a mirror serving 1,052 files is one finding with the
count, not 1,052. A host that served both installed and not-installed packages gives two findings: the installed
ones at high severity (what was downloaded is what runs), the others at medium, so the high finding lists exactly
the packages that make it high. Each finding carries the :mod:`workbench.grouping` fields (``count``, first and
last ``line`` and time, up to three example URLs) with ``path``, ``host``, ``installed``, ``packages`` (distinct
``package version`` count), ``package`` and ``version`` when the group is one package, ``url`` when it is one URL.
At most :data:`~workbench.grouping.MAX_EVENTS_PER_GROUP` ``ci:deps:download`` events per group point at it. Extra
indexes in use become ``ci:deps:extra_index`` events, once per file and URL.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.data.dependency_data import DependencyData
from workbench.deps_baseline import IndexUse
from workbench.grouping import Group, Observation, group_events, group_finding, group_observations, listing
from workbench.records import Event, Finding, Severity

__all__ = ["ATLAS_DEPS", "DETECTOR", "log_findings"]

#: Detector and ATLAS techniques of every dependency finding (shared with :mod:`workbench.deps`).
DETECTOR = "workbench.deps"
ATLAS_DEPS = ("AML.T0010.001", "AML.T0011.001")


def _version(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _what(use: IndexUse) -> str:
    return f"{use.package} {use.version}" if use.package else use.url


def _download_finding(group: Group) -> Finding:
    path, host, installed = group.key  # type: ignore[misc]
    names = list(group.names)
    count = f"{group.count:,} download{'s' if group.count != 1 else ''}"
    which = " of installed packages" if installed else ""
    title = f"{count}{which} from untrusted index {host} in {path}" + (f": {listing(names, 3)}" if names else "")
    detail = (f"The pipeline downloaded {group.count:,} file(s) from {host}, which is not a trusted package index: "
              f"{path}, {group.span()}.")  # fmt: skip
    if names:
        detail += f" Packages ({len(names):,}): {listing(names)}."
    if installed:
        detail += " These versions are installed in the captured environment: the downloaded files are what runs."
    evidence: dict[str, Any] = {"path": path, "host": host, "installed": installed, "packages": len(names)}
    if len(names) == 1:
        first: IndexUse = group.first.item
        evidence.update(package=first.package, version=first.version)
    if len(group.examples) == 1:  # examples keep up to three distinct URLs: one means one URL throughout
        evidence["url"] = group.examples[0]
    return group_finding(group, category="dependency_untrusted_source", detector=DETECTOR, title=title,
                         detail=detail, evidence=evidence, atlas=ATLAS_DEPS)  # fmt: skip


def log_findings(uses: list[IndexUse], installed: pd.DataFrame, data: DependencyData) -> tuple[list, list]:
    """Downloads from untrusted indexes (grouped findings and their events) and extra indexes in use (events).

    Args:
        uses: the index usage of the pipeline logs (:func:`workbench.deps_baseline.scan_index_usage`).
        installed: the captured pip freeze (``name``, ``version`` columns; empty without a freeze).
        data: the dependency knowledge (trusted index hosts).

    Returns:
        ``(findings, events)``: ``dependency_untrusted_source`` findings in order of their first download, and
        ``ci:deps:download`` (at most :data:`~workbench.grouping.MAX_EVENTS_PER_GROUP` per finding) and
        ``ci:deps:extra_index`` events.
    """
    present = {(str(r.name), _version(r.version)) for r in installed.itertuples(index=False)}
    seen: set[tuple[str, str]] = set()
    downloads: list[Observation] = []
    events: list[Event] = []
    for use in uses:
        host = use.host  # parsed from the URL on each access: once per use
        trusted = data.trusted_host(host)
        if use.kind == "download" and not trusted:
            inst = use.package is not None and (use.package, use.version) in present
            sev = Severity.HIGH if inst else Severity.MEDIUM
            name = f"{use.package} {use.version}" if use.package else None
            downloads.append(Observation((use.path, host, inst), sev, use.line, use.timestamp, use.url, name, use))
        elif use.kind == "extra" and use.timestamp and (use.path, use.url) not in seen:
            seen.add((use.path, use.url))
            msg = f"Extra package index in use: {use.url}"
            sev = Severity.INFO if trusted else Severity.MEDIUM
            events.append(Event(use.timestamp, use.path, "ci:deps:extra_index", msg, sev, extra={"line": use.line}))
    findings: list[Finding] = []
    for group in group_observations(downloads):
        finding = _download_finding(group)
        findings.append(finding)
        path, host = finding.evidence["path"], finding.evidence["host"]
        message = lambda o, h=host: f"{_what(o.item)} downloaded from untrusted index {h}"  # noqa: E731
        events += group_events(group, finding.id, source=path, kind="ci:deps:download", message=message)
    return findings, events
