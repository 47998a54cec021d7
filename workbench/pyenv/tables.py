"""The "Installed packages" section's tables, summary and HTML (escaped through :mod:`workbench.htmlkit`).

``data`` frames (the renderer's and the notebook's explorers' input):

* ``environments``: one row per captured environment (examined or previous capture): folder, kind, role, Python,
  distributions, files, files verified, what it was compared with, issues, start-up hooks;
* ``issues``: every issue of an examined environment (kind, path, line, distribution, detail with code shown,
  and whether it is shipped on purpose);
* ``distributions``: every distribution of an examined environment (name, version, install time from its RECORD's
  mtime as captured, files listed and verified).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench.analysis import AnalysisResult
from workbench.records import Finding
from workbench.timeparse import display_time

__all__ = ["render", "section_data", "summary_of"]

ENV_COLUMNS = ["folder", "kind", "role", "python", "distributions", "files", "verified", "compared with", "issues",
               "hooks"]  # fmt: skip
ISSUE_COLUMNS = ["environment", "kind", "path", "line", "distribution", "known", "detail"]
DIST_COLUMNS = ["environment", "name", "version", "installed (mtime)", "listed", "verified"]
_HOOK_KINDS = ("pth-executable", "customize-hook", "entry-points-changed")


def section_data(done: Iterable[Any], previous: Iterable[Any]) -> dict[str, Any]:
    """The frames above from the examined environments (``EnvResult``) and the previous captures (``SiteReport``)."""
    env_rows, issue_rows, dist_rows = [], [], []
    done = list(done)
    for er in done:
        rep = er.report
        known = {(i.path, i.line, i.kind): why for i, why in er.known}
        env_rows.append(_env_row(er.env.root, rep, "examined", "; ".join(er.compared) or "its RECORD files",
                                 len(er.issues) - len(known),
                                 sum(1 for i in er.issues if i.kind in _HOOK_KINDS)))  # fmt: skip
        for i in er.issues:
            issue_rows.append({"environment": er.env.root, "kind": i.kind, "path": i.path, "line": i.line,
                               "distribution": i.distribution, "known": known.get((i.path, i.line, i.kind), ""),
                               "detail": i.detail})  # fmt: skip
        for d in rep.distributions:
            dist_rows.append({"environment": er.env.root, "name": d.name, "version": d.version,
                              "installed (mtime)": display_time(d.installed) if d.installed else None,
                              "listed": d.listed,
                              "verified": d.verified})  # fmt: skip
    for rep in previous:
        env_rows.append(_env_row(rep.root, rep, "previous capture", "", None, None))
    issues = pd.DataFrame(issue_rows, columns=ISSUE_COLUMNS)
    issues["line"] = issues["line"].astype("Int64")
    return {
        "environments": pd.DataFrame(env_rows, columns=ENV_COLUMNS),
        "issues": issues,
        "distributions": pd.DataFrame(dist_rows, columns=DIST_COLUMNS),
    }


def _env_row(folder: str, rep: Any, role: str, compared: str, issues: int | None, hooks: int | None) -> dict:
    return {"folder": folder, "kind": rep.tree.kind, "role": role, "python": rep.tree.meta.get("python"),
            "distributions": len(rep.distributions), "files": rep.files_seen, "verified": rep.files_verified,
            "compared with": compared, "issues": issues, "hooks": hooks}  # fmt: skip


def summary_of(done: Iterable[Any], findings: list[Finding], intel: Any) -> str:
    """One or two sentences: what was verified and what was found."""
    done = list(done)
    feeds = f"{len(intel)} incident intel entries"
    if not done:
        what = "No captured Python environment in the case"
        return f"{what}; the pip freeze and process list were matched against {feeds}: {_counts(findings)}."
    dists = sum(len(er.report.distributions) for er in done)
    verified = sum(er.report.files_verified for er in done)
    return (f"{len(done)} environment(s), {dists} distributions, {verified:,} files verified against their RECORD "
            f"and matched against {feeds}: {_counts(findings)}.")  # fmt: skip


def _counts(findings: list[Finding]) -> str:
    by: dict[str, int] = {}
    for f in findings:
        by[f.category] = by.get(f.category, 0) + 1
    return ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in sorted(by.items())) or "no finding"


def render(result: AnalysisResult) -> list[Any]:
    """The section: environments examined, the issues that are not shipped on purpose (code shown as text), the
    known hooks and binaries, and the distributions with their install times."""
    from html import escape

    from workbench.htmlkit import html_table, note

    data = result.data
    out = [f"<p>{escape(result.summary)}</p>"]
    envs = data.get("environments")
    if not isinstance(envs, pd.DataFrame) or envs.empty:
        return [*out, note("Nothing to show: the case holds no captured Python environment.")]
    out.append("<h4>Environments</h4>" + html_table(envs, mono=("folder",)))
    issues = data["issues"]
    flagged = issues[issues["known"] == ""].drop(columns=["known"])
    out.append("<h4>Installed files that are not what was published, and start-up hooks</h4>"
               + html_table(flagged, mono=("path", "environment")))  # fmt: skip
    shipped = issues[issues["known"] != ""][["environment", "kind", "path", "known"]]
    if not shipped.empty:
        out.append("<h4>Hooks and binaries shipped on purpose (known, listed for review)</h4>"
                   + html_table(shipped, mono=("path",)))  # fmt: skip
    out.append("<h4>Distributions</h4>"
               + note("Install times are the RECORD files' mtimes as captured: as good as the capture kept them.")
               + html_table(data["distributions"], mono=("environment",)))  # fmt: skip
    return out
