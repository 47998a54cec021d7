"""Issues of a captured environment made findings: one table says which category and severity each kind gets.

=========================  ============================  =====================================================
issue kind                 category                      severity
=========================  ============================  =====================================================
``modified``,              ``package_file_modified``     critical for code (``.py``, ``.pyc``, ``.pth``, native
``differs-from-wheel``,                                  files), high otherwise
``changed-since-capture``
``not-regular``,           ``package_file_modified``     high
``record-path-escape``
``unrecorded``,            ``package_file_unrecorded``   high for code, low otherwise
``absent-from-wheel``,
``added-since-capture``
``missing``,               ``package_file_missing``      low (slimmed images delete files; nothing runs)
``missing-vs-wheel``,
``removed-since-capture``,
``distribution-removed-``
``since-capture``
``version-changed-since-`` ``package_file_modified``     medium (an upgrade or a replacement: review)
``capture``
``distribution-added-``    ``package_file_unrecorded``   medium
``since-capture``
``pth-executable``,        ``import_hook``               critical when no RECORD lists the file, high when one
``customize-hook``                                       does, info when known (:mod:`workbench.pyenv.known`)
``pth-indented-import``    ``import_hook``               low (``site.py`` takes it as a path, never runs it)
``entry-points-changed``   ``import_hook``               critical
``binary-in-purelib``      ``package_binary``            high, info when known
``wheel-not-locked``,      ``package_hash_mismatch``     critical
``archive-not-locked``
=========================  ============================  =====================================================

File issues are grouped per environment, distribution and kind (:mod:`workbench.grouping`: count, examples, the
earliest file time); hooks are one finding per file and line, with the code shown. A finding's time is the file's
mtime as captured, used only when plausible (:func:`plausible`), and the evidence says so (``time_source``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workbench.deps_logs import ATLAS_DEPS
from workbench.grouping import Group, Observation, group_finding, group_observations
from workbench.pyenv.known import Known
from workbench.pyenv.record import Issue, SiteReport
from workbench.records import Finding, Severity

__all__ = ["CODE_SUFFIXES", "DETECTOR", "KIND_RULES", "TIME_SOURCE", "findings_of", "is_code", "plausible"]

DETECTOR = "workbench.pyenv"
#: what the evidence says a package finding's time is
TIME_SOURCE = "file mtime as captured (an install or drop time only as good as the capture kept it)"
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pth", ".so", ".pyd", ".dylib", ".dll", ".exe")


@dataclass(frozen=True, slots=True)
class KindRule:
    """How one issue kind is reported: category, severity for code files and for the rest, a plain label."""

    category: str
    code: Severity
    other: Severity
    label: str


_C, _H, _L = Severity.CRITICAL, Severity.HIGH, Severity.LOW
KIND_RULES: dict[str, KindRule] = {
    "modified": KindRule("package_file_modified", _C, _H, "installed file(s) differ from the package's RECORD"),
    "differs-from-wheel": KindRule("package_file_modified", _C, _H, "installed file(s) differ from the published "
                                   "wheel"),
    "changed-since-capture": KindRule("package_file_modified", _C, _H, "file(s) changed since the previous capture"),
    "not-regular": KindRule("package_file_modified", _H, _H, "listed file(s) replaced by a link or special file"),
    "record-path-escape": KindRule("package_file_modified", _H, _H, "RECORD path(s) leaving site-packages"),
    "unrecorded": KindRule("package_file_unrecorded", _H, _L, "file(s) listed in no RECORD"),
    "absent-from-wheel": KindRule("package_file_unrecorded", _H, _L, "installed file(s) the published wheel lacks"),
    "added-since-capture": KindRule("package_file_unrecorded", _H, _L, "file(s) added since the previous capture"),
    "missing": KindRule("package_file_missing", _L, _L, "listed file(s) missing"),
    "missing-vs-wheel": KindRule("package_file_missing", _L, _L, "file(s) of the published wheel not installed"),
    "removed-since-capture": KindRule("package_file_missing", _L, _L, "file(s) removed since the previous capture"),
    "pth-executable": KindRule("import_hook", _C, _C, ".pth line run at every interpreter start"),
    "customize-hook": KindRule("import_hook", _C, _C, "sitecustomize/usercustomize run at every interpreter start"),
    "pth-indented-import": KindRule("import_hook", _L, _L, "indented code in a .pth (taken as a path, not run)"),
    "entry-points-changed": KindRule("import_hook", _C, _C, "entry points differ from the published wheel"),
    "version-changed-since-capture": KindRule("package_file_modified", Severity.MEDIUM, Severity.MEDIUM,
                                              "version changed since the previous capture"),
    "distribution-added-since-capture": KindRule("package_file_unrecorded", Severity.MEDIUM, Severity.MEDIUM,
                                                 "distribution(s) added since the previous capture"),
    "distribution-removed-since-capture": KindRule("package_file_missing", _L, _L, "distribution(s) removed since "
                                                   "the previous capture"),
    "binary-in-purelib": KindRule("package_binary", _H, _H, "native binary inside a pure-Python package"),
    "wheel-not-locked": KindRule("package_hash_mismatch", _C, _C, "wheel not among the lock file's hashes"),
    "archive-not-locked": KindRule("package_hash_mismatch", _C, _C, "installed archive not among the lock file's "
                                   "hashes"),
}  # fmt: skip
#: a kind no rule names (a newer comparison): reported, never dropped
_FALLBACK = KindRule("package_file_modified", _H, _H, "package file issue")
_HOOKS = frozenset({"pth-executable", "customize-hook", "pth-indented-import", "entry-points-changed"})
_MODIFIED = frozenset({"modified", "differs-from-wheel", "changed-since-capture"})


def is_code(path: str) -> bool:
    """Whether a path is code Python loads or a native file (by suffix)."""
    return path.lower().endswith(CODE_SUFFIXES) or "/bin/" in f"/{path}"


def plausible(when: datetime | None, latest: datetime | None) -> datetime | None:
    """A captured mtime as a time, or None when it cannot be one: before 1990, or after ``latest`` (the detection or
    the capture: a copy that did not keep mtimes shows when it was made)."""
    if when is None or when.year < 1990 or (latest is not None and when > latest):
        return None
    return when


@dataclass(frozen=True, slots=True)
class _Ctx:
    env: str
    report: SiteReport
    owners: dict[str, str]
    names: dict[str, tuple[str, str]]
    known: Known
    latest: datetime | None


def findings_of(issues: Iterable[Issue], report: SiteReport, env: str, known: Known,
                latest: datetime | None) -> tuple[list[Finding], list[tuple[Issue, str]]]:  # fmt: skip
    """Findings for an environment's issues, and the known (shipped-on-purpose) hooks and binaries with why.

    Args:
        issues: every issue found (RECORD verification and comparisons).
        report: the environment's verification (distributions, the files' mtimes).
        env: the environment's folder in the case, named in every finding.
        known: the shipped-on-purpose list.
        latest: the latest plausible file time (detection, else capture time), or None.
    """
    owners = {rel: d.dist_info for d in report.distributions for rel in d.files}
    names = {d.dist_info: (d.name, d.version) for d in report.distributions}
    cx = _Ctx(env, report, owners, names, known, latest)
    issues = list(issues)
    modified = {i.path for i in issues if i.kind in _MODIFIED}
    hook_lines: dict[str, list[str]] = {}  # every executed line of each .pth: a hook is known only if all match
    for i in issues:
        if i.kind == "pth-executable":
            hook_lines.setdefault(i.path, []).append(i.detail.split(": ", 1)[-1])
    known_hits: list[tuple[Issue, str]] = []
    observations: list[Observation] = []
    findings: list[Finding] = []
    for issue in issues:
        why = _known(cx, issue, modified, hook_lines)
        if why:
            known_hits.append((issue, why))
            continue
        if issue.kind in _HOOKS:
            findings.append(_hook_finding(cx, issue))
            continue
        rule = KIND_RULES.get(issue.kind, _FALLBACK)
        dist = issue.distribution or owners.get(issue.path)
        sev = rule.code if is_code(issue.path) else rule.other
        observations.append(Observation((dist or issue.path, issue.kind, rule.category), sev,
                                        timestamp=_time(cx, issue.path), example=issue.path, item=issue))  # fmt: skip
    for group in group_observations(observations):
        findings.append(_group_finding(cx, group))
    return findings, known_hits


def _known(cx: _Ctx, issue: Issue, modified: set[str], hook_lines: dict[str, list[str]]) -> str | None:
    """Why a hook or binary is shipped on purpose, or None (never for a file found modified; a hook only when every
    executed line of its file matches)."""
    if issue.path in modified:
        return None
    owner = cx.owners.get(issue.path)
    name = cx.names[owner][0] if owner in cx.names else None
    if issue.kind == "binary-in-purelib":
        hit = cx.known.binary(name, issue.path)
    elif issue.kind == "pth-executable":
        hit = cx.known.hook(name, issue.path, hook_lines.get(issue.path, []))
    else:
        return None
    return f"{hit.why} ({hit.source})" if hit else None


def _time(cx: _Ctx, path: str) -> datetime | None:
    f = cx.report.tree.files.get(path)
    return plausible(f.mtime if f else None, cx.latest)


def _package(cx: _Ctx, dist: str | None) -> dict[str, str | None]:
    if dist in cx.names:
        name, version = cx.names[dist]
        return {"package": name, "version": version, "distribution": dist}
    return {"package": None, "version": None, "distribution": dist}


#: how a hook finding's title says what runs (the hook kinds of :data:`KIND_RULES`)
_HOOK_TITLES = {
    "pth-executable": "{where} runs code at every interpreter start ({why}), in {env}",
    "customize-hook": "{where} is imported at every interpreter start ({why}), in {env}",
    "pth-indented-import": "{where}: indented code in a .pth, taken as a path and not run, in {env}",
    "entry-points-changed": "{where}: entry points differ from the published wheel, in {env}",
}


def _hook_finding(cx: _Ctx, issue: Issue) -> Finding:
    rule = KIND_RULES[issue.kind]
    owner = cx.owners.get(issue.path)
    sev = rule.code
    if issue.kind in ("pth-executable", "customize-hook") and owner is not None:
        sev = Severity.HIGH  # shipped by a distribution: review it (a known one was left out before)
    when = _time(cx, issue.path)
    where = f"{issue.path}" + (f" line {issue.line}" if issue.line else "")
    shipped = f"listed in {owner}/RECORD" if owner else "listed in no RECORD (dropped after install)"
    listed = cx.report.tree.files.get(issue.path)
    title = _HOOK_TITLES.get(issue.kind, "{where}: " + rule.label).format(
        where=where, env=cx.env, why="in no RECORD" if owner is None else f"shipped by {owner}"
    )
    return Finding.create(
        severity=sev, category=rule.category, detector=DETECTOR, title=title,
        detail=f"{issue.detail} The file is {shipped}. Shown as text, never run.",
        evidence={"path": issue.path, "line": issue.line, "environment": cx.env, "kind": issue.kind,
                  "sha256": listed.sha256 if listed is not None and owner is None else None,
                  **_package(cx, owner), "time_source": TIME_SOURCE if when else None},
        atlas=ATLAS_DEPS, timestamp=when,
    )  # fmt: skip


def _group_finding(cx: _Ctx, group: Group) -> Finding:
    first: Issue = group.first.item
    dist, kind, category = group.key
    rule = KIND_RULES.get(kind, _FALLBACK)
    pkg = _package(cx, dist if dist in cx.names else first.distribution)
    who = f"{pkg['package']} {pkg['version']}" if pkg["package"] else first.path
    detail = f"{group.count} {rule.label} in {cx.env} ({who}). First: {first.path}: {first.detail}"
    digest = cx.report.tree.files.get(first.path)
    evidence = {"path": first.path, "environment": cx.env, "kind": kind, **pkg,
                "sha256": digest.sha256 if digest is not None and kind in _MODIFIED else None,
                "time_source": TIME_SOURCE if group.first_time else None}  # fmt: skip
    return group_finding(group, category=category, detector=DETECTOR, title=f"{who}: {group.count} {rule.label}",
                         detail=detail, evidence=evidence, atlas=ATLAS_DEPS)  # fmt: skip
