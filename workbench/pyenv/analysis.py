"""The "Installed packages" section: every captured Python environment of a case checked against what was published.

For each environment the case holds (:mod:`workbench.environments`: a ``site-packages`` copy, or the inventory
``contain assess`` captures), :func:`workbench.pyenv.record.verify_site_packages` checks every file against its
distribution's RECORD and finds the start-up hooks and native binaries; when the case gives more, the installed
files are compared with it too (:mod:`workbench.pyenv.expected`): the wheels that should have been installed (a
folder of ``*.whl`` files), the lock file's ``--hash`` values (requirement files with hashes), and a previous capture
of the environment (an environment under a ``reference``/``previous``/``baseline`` folder). The installed versions,
the ``pip freeze`` and the host evidence are matched against the incident intel (:mod:`workbench.pyenv.intel_match`;
the ``intel`` option adds a team's feeds).

Findings (:mod:`workbench.pyenv.findings` says which category and severity each issue gets), timeline events (each
distribution's install time and each flagged file's time, from file mtimes as captured, flagged as such and kept
only when plausible), and the section's tables. Nothing from the environment is imported or run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.data.python_incidents import Intel, intel_for
from workbench.environments import Environment, inside
from workbench.parameters import value as option
from workbench.pyenv.expected import compare_with_lock, compare_with_previous, compare_with_wheels, without_wheel
from workbench.pyenv.expected_sources import read_locked_hashes, read_wheels
from workbench.pyenv.findings import TIME_SOURCE, findings_of, plausible
from workbench.pyenv.intel_match import HostLine, Installed, compromised_findings, hash_findings, host_findings
from workbench.pyenv.known import DATA_FILE, known_files
from workbench.pyenv.record import SiteReport, verify_site_packages
from workbench.records import Event, EvidenceWarning, Finding, Severity
from workbench.timeparse import parse_timestamp

__all__ = ["SECTION", "EnvResult", "analyse"]

SECTION = "packages"
#: install events per environment at most (the distributions table lists them all)
MAX_INSTALL_EVENTS = 300
#: lock files read for ``--hash`` values: requirement-style names holding the marker
_HASH_MARK = b"--hash=sha256:"


@dataclass(slots=True)
class EnvResult:
    """One examined environment: its verification, what it was compared with, and what was found."""

    env: Environment
    report: SiteReport
    compared: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    known: list[tuple[Any, str]] = field(default_factory=list)
    issues: list[Any] = field(default_factory=list)
    no_wheel: int = 0


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Verify the case's captured environments and match the intel (module docstring).

    Raises:
        IntelError: the ``intel`` option names a folder with an invalid feed (the run reports it, as a bad rule
            folder).
    """
    params = ctx.parameters
    intel = intel_for(option(params, "intel") or ())
    result = AnalysisResult(section=SECTION)
    case = ctx.case
    envs = [e for e in case.environments if e.role == "suspect"]
    refs = [e for e in case.environments if e.role == "reference"]
    previous = [_verify(ctx, e, result) for e in refs]
    wheels = [w for folder in case.wheel_folders for w in read_wheels(case.fs_path(folder), result.warnings)]
    locks = _lock_files(ctx)
    locked: dict[str, Any] = {}
    for rel in locks:
        locked.update(read_locked_hashes(case.fs_path(rel), result.warnings, shown=rel))
    done: list[EnvResult] = []
    for env in envs:
        report = _verify(ctx, env, result)
        er = EnvResult(env, report)
        er.issues = list(report.issues)
        if wheels:
            er.issues += compare_with_wheels(report, wheels, warnings=result.warnings)
            er.no_wheel = len(without_wheel(report, wheels))
            er.compared.append(f"{len(wheels)} wheel(s) in {', '.join(case.wheel_folders)}")
        if locked:
            er.issues += compare_with_lock(report, wheels, locked)
            er.compared.append(f"the hashes of {', '.join(locks)}")
        base = _previous_for(env, refs, previous)
        if base is not None:
            er.issues += compare_with_previous(report, base[1], warnings=result.warnings)
            er.compared.append(f"the previous capture {base[0].root}")
        latest = _latest(ctx, report)
        er.findings, er.known = findings_of(er.issues, report, env.root, known_files(), latest)
        installed = [Installed(d.name, d.version, env.root, path=_join(env.root, f"{d.dist_info}/RECORD"),
                               timestamp=plausible(d.installed, latest)) for d in report.distributions]  # fmt: skip
        er.findings += compromised_findings(intel, installed)
        er.findings += hash_findings(intel, ((f.sha256, rel, env.root) for rel, f in report.tree.files.items()
                                             if f.sha256))  # fmt: skip
        er.findings += host_findings(intel, _env_lines(er))
        result.events += _events(er, latest)
        done.append(er)
        result.findings += er.findings
    result.findings += _freeze_findings(ctx, intel)
    result.findings += _process_findings(ctx, intel)
    _finish(ctx, result, done, previous, intel, locks)
    return result


def _verify(ctx: AnalysisContext, env: Environment, result: AnalysisResult) -> SiteReport:
    report = verify_site_packages(ctx.case.fs_path(env.root), known_digests=_intake(ctx, env))
    shown = [EvidenceWarning(_join(env.root, w.path), w.line, w.reason) for w in report.warnings]
    result.warnings += shown
    if report.unverified:
        result.unexamined.append(f"{env.root}: {report.unverified} listed file(s) not verified (hashing budget)")
    if report.truncated:
        result.unexamined.append(f"{env.root}: more files than the walk's cap; the rest not examined")
    return report


def _intake(ctx: AnalysisContext, env: Environment) -> dict[str, str]:
    """The intake's digests of the environment's files, by path inside it (a folder copy is not hashed twice)."""
    if env.kind != "folder" or not ctx.intake_hashes:
        return {}
    prefix = "" if env.root == "." else env.root + "/"
    return {rel[len(prefix) :]: digest for rel, digest in ctx.intake_hashes.items() if inside(rel, env.root)}


def _join(root: str, rel: str) -> str:
    return rel if root == "." else f"{root}/{rel}"


def _previous_for(env: Environment, refs: list[Environment],
                  previous: list[SiteReport]) -> tuple[Environment, SiteReport] | None:  # fmt: skip
    """The previous capture of an environment: the reference environment of the same last folder name, else the
    only one."""
    name = env.root.rsplit("/", 1)[-1]
    for ref, report in zip(refs, previous, strict=True):
        if ref.root.rsplit("/", 1)[-1] == name:
            return ref, report
    return (refs[0], previous[0]) if len(refs) == 1 else None


def _latest(ctx: AnalysisContext, report: SiteReport) -> datetime | None:
    """The latest plausible file time. An inventory records its files' mtimes as data: up to the capture's time
    (plus a second: it is written to the second, the files' times to the nanosecond). A folder copy's mtimes are the
    copy's unless it kept them: only up to the detection time (a copy made after it shows the copy's time)."""
    if report.tree.kind == "inventory":
        captured = parse_timestamp(str(report.tree.meta.get("captured_at") or ""))
        if captured is not None:
            return captured + timedelta(seconds=1)
    return ctx.case.meta.detection_time


def _lock_files(ctx: AnalysisContext) -> list[str]:
    """The case's requirement files (named as the dependency section finds them) that carry ``--hash`` values."""
    from workbench import safeio
    from workbench.deps_baseline import baseline_kind

    out = []
    for f in ctx.case.files:
        if f.role != "evidence" or baseline_kind(f.relpath) != "requirements":
            continue
        try:
            head = safeio.read_bytes(ctx.case.fs_path(f.relpath), limit=4 * 1024 * 1024)
        except (OSError, ValueError):
            continue
        if _HASH_MARK in head:
            out.append(f.relpath)
    return out


def _env_lines(er: EnvResult) -> Iterable[HostLine]:
    """Host lines of an environment: every file path as installed (a folder copy, which does not say where it was
    installed: its path in the case, which ends in ``site-packages/...`` as the indicators expect), and every
    executed hook line."""
    base = str(er.report.tree.meta.get("site_packages") or "").rstrip("/")
    for rel in er.report.tree.files:
        yield HostLine(f"{base}/{rel}" if base else _join(er.env.root, rel), er.env.root, path=_join(er.env.root, rel))
    for issue in er.issues:
        if issue.kind in ("pth-executable", "customize-hook"):
            yield HostLine(issue.detail, er.env.root, issue.line, _join(er.env.root, issue.path))


def _events(er: EnvResult, latest: datetime | None) -> list[Event]:
    """Install times (RECORD mtimes) and flagged files' times (their mtimes), each flagged as an mtime."""
    out: list[Event] = []
    desc = "File mtime (as captured)"
    for d in er.report.distributions[:MAX_INSTALL_EVENTS]:
        when = plausible(d.installed, latest)
        if when is not None:
            out.append(Event(when, _join(er.env.root, f"{d.dist_info}/RECORD"), "deps:install",
                             f"{d.name} {d.version} installed (RECORD written)", Severity.INFO, timestamp_desc=desc,
                             extra={"time_source": TIME_SOURCE}))  # fmt: skip
    for f in er.findings:
        if f.timestamp is not None and f.severity.rank >= Severity.MEDIUM.rank:
            out.append(Event(f.timestamp, _join(er.env.root, str(f.evidence.get("path") or "")), "deps:file",
                             f.title, f.severity, ref=f.id, timestamp_desc=desc,
                             extra={"time_source": TIME_SOURCE}))  # fmt: skip
    return out


def _freeze_findings(ctx: AnalysisContext, intel: Intel) -> list[Finding]:
    frozen = ctx.evidence.first("frozen_deps")
    if frozen is None:
        return []
    rows = frozen.frame
    installed = [Installed(str(r.raw_name or r.name), str(r.version), frozen.path, int(r.line), path=frozen.path)
                 for r in rows.itertuples(index=False) if isinstance(r.version, str) and r.version]  # fmt: skip
    return compromised_findings(intel, installed)


def _process_findings(ctx: AnalysisContext, intel: Intel) -> list[Finding]:
    procs = ctx.evidence.first("processes")
    if procs is None:
        return []
    lines = (HostLine(str(r.command), procs.path, int(r.line), procs.path) for r in procs.frame.itertuples(index=False))
    return host_findings(intel, lines)


def _finish(ctx: AnalysisContext, result: AnalysisResult, done: list[EnvResult], previous: list[SiteReport],
            intel: Intel, locks: list[str]) -> None:  # fmt: skip
    """Inputs, coverage notes, tables and the summary."""
    from workbench.analysis import describe_data_files
    from workbench.pyenv.tables import section_data, summary_of

    case = ctx.case
    result.inputs = [e.root for e in case.environments] + case.wheel_folders + locks
    for name in ("frozen_deps", "processes"):
        if (loaded := ctx.evidence.first(name)) is not None:
            result.inputs.append(loaded.path)
    if not done:
        result.limits.append("no captured Python environment (a site-packages copy or a contain assess inventory): "
                             "installed files could not be verified against what was published")  # fmt: skip
    if not done and len(result.inputs) == 0:
        result.not_applicable = "no captured Python environment, pip freeze or process list in the case"
    feeds = sorted({Path(e.file) for e in intel})
    result.data = section_data(done, previous)
    result.data["rule_pack"] = "; ".join([describe_data_files("incident intel", *feeds),
                                          describe_data_files("known package files", DATA_FILE)])  # fmt: skip
    result.summary = summary_of(done, result.findings, intel)
