"""Dependency forensics: the installed packages (``frozen_deps.txt``, pip freeze) against the case's baselines.

Baselines, all optional, in order of precedence (the first that pins a package decides):

1. lock files (``poetry.lock``, ``uv.lock``, ``pdm.lock``, ``pylock[.*].toml``, ``Pipfile.lock``), reference freezes
   (``reference_freeze*.txt``, ``baseline_freeze*.txt``, ``known_good_freeze*.txt``) and requirement files whose pins
   carry ``--hash=sha256:`` (pip-compile output): they list the whole environment, so extra packages are reported;
2. other requirement files (``requirements*.txt|.in|.lock``, ``constraints*.txt``): only their exact pins count;
3. the monitor's ``baseline_dependencies`` (``monitor/config.json``), the original monitor's watch list.

pip freeze records no hashes, so a baseline's hashes cannot be checked against the installed files: versions and
direct URLs are compared. Findings: ``dependency_changed`` (critical), ``dependency_missing`` (high),
``dependency_added`` (medium, complete baselines only), ``dependency_untrusted_source`` (URL, VCS or local installs;
downloads from an untrusted index seen in pipeline logs, one finding per log, host and installed or not: see
:mod:`workbench.deps_logs`), ``dependency_typosquat`` (one edit from a popular package)
and ``dependency_confusion`` (an internal-looking name installed from an index while an extra index is in use).
Pipeline logs are read line by line for ``--extra-index-url``, ``PIP_EXTRA_INDEX_URL``, ``--index-url``,
``PIP_INDEX_URL``, ``Looking in indexes:`` and ``Downloading URL``; nothing is fetched or executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.data.dependency_data import SHORT_NAME, DependencyData, default_dependency_data
from workbench.deps_baseline import (
    Baseline,
    IndexUse,
    Pin,
    baseline_kind,
    find_baselines,
    redact_url,
    same_url,
    same_version,
    scan_index_usage,
)
from workbench.deps_logs import ATLAS_DEPS, DETECTOR, log_findings
from workbench.evidence.deps import normalize_name
from workbench.records import Finding, Severity

__all__ = ["analyse_dependencies", "check_dependencies", "compare_pins", "render_dependencies"]


# --------------------------------------------------------------------------------------------- comparison
def _finding(sev: Severity, category: str, title: str, detail: str, evidence: dict, ts: datetime | None = None):
    evidence = {k: v for k, v in evidence.items() if v is not None}
    return Finding.create(
        severity=sev, category=category, title=title, detail=detail, detector=DETECTOR, evidence=evidence,
        atlas=ATLAS_DEPS, timestamp=ts,
    )  # fmt: skip


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _line(row: Any) -> int | None:
    value = getattr(row, "line", None)
    return None if value is None or pd.isna(value) else int(value)


def _installed_text(row: Any) -> str:
    url, version = _text(getattr(row, "url", None)), _text(row.version)
    return f"{url} ({version})" if url and version else url or version or "?"


def compare_pins(installed: pd.DataFrame, pins: Mapping[str, Pin], *, source: str, baseline_source: str) -> list:
    """Installed packages (the ``frozen_deps`` frame) against one set of pins.

    Returns:
        ``dependency_changed`` (critical: another version, or a URL/VCS install where a version was pinned, or
        another URL) and ``dependency_missing`` findings (high; low when the pin has environment markers).
    """
    rows = {normalize_name(str(r.name)): r for r in installed.itertuples(index=False)}
    found: list[Finding] = []
    for key, pin in sorted(pins.items()):
        row = rows.get(key)
        base = {"path": source, "package": pin.name, "baseline": baseline_source}
        expected = pin.version or pin.url or pin.spec
        if row is None:
            pinned = f"=={pin.version}" if pin.version else ""
            note = " (the pin has environment markers: it may not apply here)" if pin.markers else ""
            detail = f"{pin.name} is in {baseline_source} but not installed{note}."
            sev = Severity.LOW if pin.markers else Severity.HIGH
            title = f"Expected dependency {pin.name}{pinned} is missing"
            found.append(_finding(sev, "dependency_missing", title, detail, {**base, "expected": str(expected)}))
            continue
        url, version = _text(getattr(row, "url", None)), _text(row.version)
        if pin.url:
            same = same_url(pin.url, url) or (url is None and same_version(pin.version, version))
        elif pin.version:
            same = same_version(pin.version, version)
        else:
            continue  # a range only: not compared
        if not same:
            actual = _installed_text(row) if url else version or "?"
            title = f"Dependency {pin.name} changed: expected {expected}, found {actual}"
            detail = f"The installed {pin.name} ({actual}) does not match the pin {expected} in {baseline_source}."
            evidence = {**base, "line": _line(row), "expected": str(expected), "actual": actual}
            found.append(_finding(Severity.CRITICAL, "dependency_changed", title, detail, evidence))
    return found


def check_dependencies(installed: pd.DataFrame, baseline: Mapping[str, str], *, source: str) -> list[Finding]:
    """The original monitor's check: installed packages against ``baseline_dependencies`` ({name: version}).

    Returns:
        ``dependency_changed`` (critical) and ``dependency_missing`` (high) findings.
    """
    pins = {normalize_name(n): Pin(n, version=str(v)) for n, v in baseline.items()}
    return compare_pins(installed, pins, source=source, baseline_source="the monitor baseline")


# --------------------------------------------------------------------------------------------- sources and names
_VCS = ("git", "hg", "svn", "bzr")


def _installed(ctx: AnalysisContext) -> Any:
    """The captured pip freeze: a ``frozen_deps`` file that is not a baseline, ``frozen_deps*`` first."""
    items = [x for x in ctx.evidence.all("frozen_deps") if baseline_kind(x.path) is None]
    named = [x for x in items if PurePosixPath(x.path).name.lower().startswith(("frozen_deps", "pip", "freeze"))]
    return (named or items or [None])[0]


def _source_verdict(row: Any, data: DependencyData) -> tuple[Severity, str] | None:
    """(severity, reason) for a package installed from a URL, a VCS or a path; None for an index install."""
    url = _text(row.url) or ""
    if not url:
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme or scheme == "file":
        if bool(row.editable):
            return Severity.INFO, "editable install from a local folder"
        return Severity.LOW, "installed from a local file or folder (its provenance is not recorded in the freeze)"
    what = "a VCS checkout" if scheme.split("+", 1)[0] in _VCS else "a direct URL"
    if scheme.endswith(("http", "git")) or scheme == "svn":
        return Severity.HIGH, f"installed from {what} over an unencrypted connection ({scheme}://)"
    if row.name in data.popular:
        return Severity.HIGH, f"a well-known package installed from {what} instead of its package index"
    return Severity.MEDIUM, f"installed from {what}"


def _prefixes(installed: pd.DataFrame, data: DependencyData, extra: Iterable[str]) -> dict[str, str]:
    """Organisation prefixes (first name segments) -> why: configured ones, and those of packages installed from
    local files, folders or editables (``acme`` from ``acme-telemetry @ file:///wheels/...``)."""
    out = {p: "configured internal prefix" for p in (*data.internal_prefixes, *(e.lower() for e in extra))}
    for row in installed.itertuples(index=False):
        url = _text(row.url) or ""
        first, _, rest = str(row.name).partition("-")
        local = url and ("://" not in url or url.lower().startswith("file:"))
        if local and rest and len(first) >= 3 and first not in data.generic_prefixes and not data.popular_prefix(first):
            out.setdefault(first, f"shares its prefix with {row.name}, installed from {url[:120]}")
    return out


def _param_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _major(version: str | None) -> int:
    m = re.match(r"^v?(\d+)", (version or "").strip())
    return int(m.group(1)) if m else -1


def _confusion(frozen: Any, data: DependencyData, uses: list[IndexUse], effective: dict, params: dict) -> list:
    """``dependency_confusion``: internal-looking names installed from an index while an extra index is in use
    (high; critical with an inflated version, a major version above the baseline, or a download from an untrusted
    index)."""
    extras = [u for u in uses if u.kind == "extra"]
    extras += [IndexUse(frozen.path, None, "extra", redact_url(u)) for u in (frozen.meta.get("index_urls") or [])[1:]]
    if not extras:
        return []
    prefixes = _prefixes(frozen.frame, data, _param_list(params.get("internal_prefixes")))
    downloads = {(u.package, u.version): u for u in uses if u.kind == "download" and not data.trusted_host(u.host)}
    first = extras[0]
    where = f"{first.path}:{first.line}" if first.line else first.path
    found = []
    for row in frozen.frame.itertuples(index=False):
        name, version = str(row.name), _text(row.version)
        why = prefixes.get(name.partition("-")[0]) if "-" in name else None
        why = why or next((f"its name matches {p.pattern}" for p in data.internal_patterns if p.search(name)), None)
        if row.operator not in ("==", "===") or not why or name in data.popular:
            continue
        pin = effective.get(name, (None,))[0]
        reasons = []
        if version and data.inflated_version.match(version):
            reasons.append(f"version {version} looks inflated to outrank the internal release")
        if pin and pin.version and _major(version) > _major(pin.version):
            reasons.append(f"its major version is above the baseline's {pin.version}")
        if dl := downloads.get((name, version)):
            reasons.append(f"it was downloaded from {dl.host} ({dl.path}:{dl.line})")
        detail = (
            f"{name} looks internal ({why}) but {name}=={version} came from a package index while an extra index was "
            f"in use ({first.url}, {where}): pip takes the highest version from any index, so a public package with "
            f"the same name can replace the internal one." + ("".join(f" {r[0].upper()}{r[1:]}." for r in reasons))
        )
        evidence = {"path": frozen.path, "line": _line(row), "package": name, "version": version,
                    "extra_index": first.url, "extra_index_seen": where,
                    "download": dl.url if dl else None}  # fmt: skip
        if reasons:
            sev = Severity.CRITICAL
        elif pin is not None and same_version(pin.version, version):
            sev, detail = (
                Severity.MEDIUM,
                detail + " The version matches the baseline: the setup is exposed, not yet abused.",
            )
        else:
            sev = Severity.HIGH
        title = f"{name}=={version}: possible dependency confusion"
        found.append(
            _finding(sev, "dependency_confusion", title, detail, evidence, dl.timestamp if dl else first.timestamp)
        )
    return found


def _package_findings(frozen: Any, effective: dict, complete: set[str], data: DependencyData) -> list[Finding]:
    """``dependency_added``, ``dependency_untrusted_source`` (URL/VCS/path installs) and ``dependency_typosquat``."""
    found: list[Finding] = []
    for row in frozen.frame.itertuples(index=False):
        name = str(row.name)
        ev = {"path": frozen.path, "line": _line(row), "package": name}
        if complete and name not in complete:
            local_app = bool(row.editable) and "://" not in (_text(row.url) or "://")
            sev = Severity.LOW if local_app else Severity.MEDIUM
            note = " It is an editable local install, usually the application itself." if local_app else ""
            detail = f"{name} ({_installed_text(row)}) is installed but in no complete baseline (lock or freeze).{note}"
            found.append(_finding(sev, "dependency_added", f"Dependency {name} is not in the baseline", detail, ev))
        verdict = _source_verdict(row, data)
        if verdict and not same_url(effective.get(name, (Pin(""),))[0].url, _text(row.url)):
            detail = f"{name} is installed from {row.url}: {verdict[1]}."
            found.append(_finding(verdict[0], "dependency_untrusted_source", f"{name}: {verdict[1]}", detail,
                                  {**ev, "url": row.url}))  # fmt: skip
        if target := data.typosquat_of(name):
            sev = Severity.MEDIUM if len(target) <= SHORT_NAME else Severity.HIGH
            detail = (f"{name} is one edit away from the popular package {target} and is not a known legitimate "
                      "look-alike: check who publishes it and what its install hooks do.")  # fmt: skip
            found.append(_finding(sev, "dependency_typosquat", f"{name} looks like a typosquat of {target}", detail,
                                  {**ev, "imitates": target}))  # fmt: skip
    return found


# --------------------------------------------------------------------------------------------- analysis
def analyse_dependencies(ctx: AnalysisContext, data: DependencyData | None = None) -> AnalysisResult:
    """Compare the captured pip freeze with the case's baselines and look for suspicious sources and names.

    Reads the loaded ``frozen_deps``, ``monitor_config`` and ``pipeline_log`` evidence and the baseline files named in
    the module docstring. Parameters (lists or comma-separated text): ``internal_prefixes`` adds organisation name
    prefixes, ``trusted_index_hosts`` adds index hosts (e.g. the organisation's own index).

    Returns:
        Section ``dependencies`` with the findings, ``ci:deps:*`` events, and ``data``: ``packages`` (installed vs
        baseline, one row per package), ``baselines`` and ``index_usage`` frames.
    """
    data = data or default_dependency_data()
    if trusted := _param_list(ctx.parameters.get("trusted_index_hosts")):
        data = replace(data, trusted_index_hosts=data.trusted_index_hosts | {h.lower() for h in trusted})
    result = AnalysisResult(section="dependencies")
    baselines = find_baselines(ctx, result.warnings)
    uses = scan_index_usage(ctx.evidence.all("pipeline_log"), ctx.case.meta.tz, case=ctx.case,
                            unexamined=result.unexamined)  # fmt: skip
    frozen = _installed(ctx)
    effective: dict[str, tuple[Pin, Baseline]] = {}
    for base in baselines:
        for key, pin in base.pins.items():
            effective.setdefault(key, (pin, base))
    complete: set[str] = set().union(*(b.pins for b in baselines if b.complete))
    installed = frozen.frame if frozen is not None else pd.DataFrame(columns=["name", "url", "version", "line"])
    if frozen is not None:
        for base in baselines:
            pins = {k: p for k, (p, b) in effective.items() if b is base}
            result.findings += compare_pins(installed, pins, source=frozen.path, baseline_source=base.source)
        result.findings += _package_findings(frozen, effective, complete, data)
        result.findings += _confusion(frozen, data, uses, effective, ctx.parameters)
    findings, events = log_findings(uses, installed, data)
    result.findings += findings
    result.events += events
    result.data = _frames(installed, effective, bool(complete), baselines, uses, result.findings, data)
    result.summary = _summary(frozen, baselines, result.findings)
    sources = ([frozen.path] if frozen is not None else []) + [b.source for b in baselines]
    result.inputs = list(dict.fromkeys(sources + sorted({u.path for u in uses})))
    if frozen is None and not uses:
        result.not_applicable = "no installed-package list (pip freeze) and no package installs in the pipeline logs"
    return result


def _status(row: Any, pin: Pin | None, complete: bool) -> str:
    if pin is None:
        return "added" if complete else "not in baseline"
    if not (pin.version or pin.url):
        return "range only"
    same = same_url(pin.url, _text(row.url)) if pin.url else same_version(pin.version, _text(row.version))
    return "same" if same else "changed"


def _frames(installed: pd.DataFrame, effective: dict, complete: bool, baselines: list[Baseline],
            uses: list[IndexUse], findings: list[Finding], data: DependencyData) -> dict[str, Any]:  # fmt: skip
    """The section's tables: ``packages`` (installed vs baseline, with notes), ``baselines``, ``index_usage``."""
    notes: dict[str, list[str]] = {}
    for f in findings:
        if (
            f.category not in ("dependency_changed", "dependency_missing", "dependency_added")
            and "package" in f.evidence
        ):
            notes.setdefault(str(f.evidence["package"]), []).append(f.category.removeprefix("dependency_"))
    use_rows = [{"file": u.path, "line": u.line, "time": u.timestamp, "kind": u.kind, "url": u.url,
                 "package": u.package, "version": u.version, "trusted": data.trusted_host(u.host)}
                for u in uses]  # fmt: skip
    for u, use_row in zip(uses, use_rows, strict=True):  # a download finding names one package at most: note each
        if u.kind == "download" and u.package and not use_row["trusted"]:
            notes.setdefault(u.package, []).append("untrusted_source")
    rows = []
    for row in installed.itertuples(index=False):
        pin, base = effective.get(str(row.name), (None, None))
        rows.append({"package": str(row.name), "installed": _installed_text(row),
                     "baseline": (pin.version or pin.url or pin.spec) if pin else None,
                     "baseline source": base.source if base else None, "status": _status(row, pin, complete),
                     "notes": ", ".join(dict.fromkeys(notes.get(str(row.name), [])))})  # fmt: skip
    seen = {r["package"] for r in rows}
    for key, (pin, base) in sorted(effective.items()):
        if key not in seen:
            rows.append({"package": key, "installed": None, "baseline": pin.version or pin.url or pin.spec,
                         "baseline source": base.source, "status": "missing", "notes": ""})  # fmt: skip
    order = {"changed": 0, "missing": 1, "added": 2, "not in baseline": 3, "range only": 4, "same": 5}
    packages = pd.DataFrame(rows, columns=["package", "installed", "baseline", "baseline source", "status", "notes"])
    packages = packages.sort_values(["status", "package"], key=lambda c: c.map(order) if c.name == "status" else c)
    base_rows = [{"source": b.source, "kind": b.kind, "complete": b.complete, "packages": len(b.pins),
                  "hash-pinned": sum(1 for p in b.pins.values() if p.hashes)} for b in baselines]  # fmt: skip
    return {
        "packages": packages.reset_index(drop=True),
        "baselines": pd.DataFrame(base_rows, columns=["source", "kind", "complete", "packages", "hash-pinned"]),
        "index_usage": pd.DataFrame(
            use_rows, columns=["file", "line", "time", "kind", "url", "package", "version", "trusted"]
        ),
    }


def _summary(frozen: Any, baselines: list[Baseline], findings: list[Finding]) -> str:
    if frozen is None:
        return "No pip freeze (frozen_deps.txt) in the case: installed packages cannot be compared."
    against = ", ".join(b.source for b in baselines) or "no baseline (sources and names checked only)"
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.category] = counts.get(f.category, 0) + 1
    found = ", ".join(f"{n} {c.removeprefix('dependency_').replace('_', ' ')}" for c, n in sorted(counts.items()))
    return f"{frozen.path} compared with {against}: {found or 'no finding'}."


def render_dependencies(result: AnalysisResult) -> list[Any]:
    """HTML (escaped tables) for the "Dependencies" section: packages that differ or carry a note, the baselines
    used, and the package indexes seen in pipeline logs."""
    from html import escape

    from workbench.htmlkit import html_table

    data = result.data
    out = [f"<p>{escape(result.summary)}</p>"]
    packages = data.get("packages")
    if isinstance(packages, pd.DataFrame):
        notable = packages[packages["status"].isin(["changed", "missing", "added"]) | (packages["notes"] != "")]
        out.append("<h4>Packages that differ or need attention</h4>" + html_table(notable, mono=("installed",)))
    for title, key, mono in (("Baselines", "baselines", ("source",)),
                             ("Package indexes in pipeline logs", "index_usage", ("url", "file"))):  # fmt: skip
        if isinstance(data.get(key), pd.DataFrame):
            out.append(f"<h4>{escape(title)}</h4>" + html_table(data[key], mono=mono))
    return out
