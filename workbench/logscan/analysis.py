"""The "Pipeline logs" section: scan every pipeline log of a case, aggregate findings, timeline events, report.

``analyse(ctx)`` streams each ``pipeline_log`` file of the case from disk (not the loader's preview) with the
shipped rules, extended by the folders in the ``log_rules`` parameter (a path or a list of paths), within the log
budget (:data:`workbench.evidence.pipeline_log.LOG_BUDGET`): a file stopped by it is listed in ``unexamined``
(coverage partial, the verdict cannot be clean) with the matches found before the stop kept. Matches become
``ci:log:match`` Events at their own times; per rule and file they are aggregated into one ``log_pattern`` or
``secret_exposed`` Finding with the count, the first and last line and time and up to three example lines (the
evidence fields of :mod:`workbench.grouping`). ``render(result)`` draws the section: a
table of rules by severity, a chart of matches over time (UTC) and the redacted lines with their context. Every
string taken from a log was redacted by the scanner and is escaped here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.evidence import pipeline_log
from workbench.grouping import MAX_EVENTS_PER_GROUP, MAX_EXAMPLE_CHARS, MAX_EXAMPLES
from workbench.logscan.engine import FileScan, LogMatch, Scanner, ScanOptions
from workbench.records import Event, EvidenceWarning, Finding, Severity
from workbench.rulepack.redact import Redactor
from workbench.rulepack.rules import RuleSet, builtin_rules, load_rules
from workbench.timeparse import display_time

__all__ = ["DETECTOR", "SECTION", "analyse", "findings_from_scans", "matches_frame", "render", "result_from_scans"]

SECTION = "logs"
DETECTOR = "workbench.logscan"
#: Timeline events kept per rule and file (the finding carries the full count): the grouping module's bound.
MAX_EVENTS_PER_RULE = MAX_EVENTS_PER_GROUP
#: Matches shown with their context in the report.
MAX_SHOWN = 200
MATCH_COLUMNS = ["rule_id", "title", "severity", "category", "path", "line", "timestamp", "group", "text", "before",
                 "after"]  # fmt: skip
RULE_COLUMNS = ["severity", "rule_id", "title", "category", "path", "matches", "first_line", "last_line",
                "first_time", "last_time", "atlas", "attack"]  # fmt: skip


def _rules_from(parameters: dict[str, Any]) -> RuleSet:
    """The log rules, then the incident intel's log indicators (shipped, and the ``intel`` option's feeds)."""
    extra = parameters.get("log_rules")
    folders = [] if not extra else [extra] if isinstance(extra, str | Path) else list(extra)
    rules = load_rules(*folders) if folders else builtin_rules()
    return with_intel(rules, parameters.get("intel"))


def with_intel(rules: RuleSet, feeds: Any = None) -> RuleSet:
    """``rules`` followed by the log indicators of the incident intel (a rule id already there wins)."""
    from workbench.data.python_incidents import intel_for

    folders = [] if not feeds else [feeds] if isinstance(feeds, str | Path) else list(feeds)
    intel = intel_for(folders)
    have = {r.id for r in rules}
    added = tuple(i.rule for _, i in intel.indicators if i.kind == "log" and i.rule.id not in have)
    return RuleSet(rules.rules + added)


#: the background compilation started by :func:`prepare`, joined by :func:`analyse` before it builds its scanner
_PREPARING: list[threading.Thread] = []


def prepare(parameters: dict[str, Any]) -> None:
    """Compile the rule pack's matcher in a background thread while the analyses before this one run.

    Compiling the hyperscan databases takes about half a second and releases the GIL; the matcher is cached per
    pattern set (``rulepack.matchers.make_finder``), so :func:`analyse` then finds it built. Any error is left for
    :func:`analyse` to raise and report.
    """

    def warm() -> None:
        with contextlib.suppress(Exception):
            Scanner(_rules_from(parameters))

    thread = threading.Thread(target=warm, name="logscan-prepare", daemon=True)
    thread.start()
    _PREPARING.append(thread)


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Scan the case's pipeline logs (reads each ``pipeline_log`` file of ``ctx.evidence`` from disk).

    Returns:
        The ``logs`` section: findings per rule and file, ``ci:log:match`` events, scan warnings, and in ``data``
        the ``matches`` and ``by_rule`` DataFrames and the raw ``scans``.

    Raises:
        RuleError: the ``log_rules`` parameter names an invalid rule folder.
    """
    while _PREPARING:  # one compilation, not two racing for the cache; no thread left when workers are forked
        _PREPARING.pop().join()
    rules = _rules_from(ctx.parameters)
    options = ScanOptions(naive_tz=ctx.case.meta.tz, reference_time=ctx.case.meta.detection_time,
                          budget=pipeline_log.LOG_BUDGET)  # fmt: skip
    scanner = Scanner(rules, options)
    logs = ctx.evidence.all("pipeline_log")
    scans = [scanner.scan_path(ctx.case.path(loaded.path), display=loaded.path) for loaded in logs]
    result = result_from_scans(scans, rules)
    result.inputs = [loaded.path for loaded in logs]
    if not logs:
        result.not_applicable = "no pipeline log in the case"
    return result


def result_from_scans(scans: list[FileScan], rules: RuleSet) -> AnalysisResult:
    """Findings, events, frames and summary from finished scans (shared by :func:`analyse` and the CLI)."""
    redactor = Redactor(rules)
    findings, refs = findings_from_scans(scans, rules, redactor)
    events: list[Event] = []
    for scan in scans:
        per_rule: dict[str, int] = {}
        for m in scan.matches:
            if m.timestamp is None or per_rule.get(m.rule_id, 0) >= MAX_EVENTS_PER_RULE:
                continue
            per_rule[m.rule_id] = per_rule.get(m.rule_id, 0) + 1
            events.append(Event(m.timestamp, m.path, "ci:log:match", f"{m.title}: {m.text[:300]}", m.severity,
                                ref=refs.get((m.path, m.rule_id)), timestamp_desc="Log Time",
                                extra={"line": m.line, "rule_id": m.rule_id}))  # fmt: skip
    warnings: list[EvidenceWarning] = [w for s in scans for w in s.warnings]
    by_rule = rules_frame(scans, rules)
    counts = {s.value: sum(1 for f in findings if f.severity is s) for s in Severity}
    total = sum(st.count for s in scans for st in s.stats.values())
    if total:
        worst = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
        summary = f"{total} suspicious log line(s) in {len(scans)} pipeline log(s) ({len(findings)} findings: {worst})."
    elif scans:
        summary = f"No rule matched in {len(scans)} pipeline log(s)."
    else:
        summary = "The case holds no pipeline log."
    unexamined = [f"{s.path}: {s.stopped}" for s in scans if s.stopped]
    limits = []
    for s in scans:
        counted = sum(st.count for st in s.stats.values())
        if counted > len(s.matches):
            limits.append(f"{s.path}: {counted:,} matching lines counted, {len(s.matches):,} kept in full with their "
                          "context (caps on kept matches per rule, file and case)")  # fmt: skip
    data = {
        "matches": matches_frame(m for s in scans for m in s.matches),
        "by_rule": by_rule,
        "scans": scans,
        "rule_pack": f"log rules: {rules.describe()}",
    }
    return AnalysisResult(SECTION, findings=findings, events=events, warnings=warnings, data=data, summary=summary,
                          limits=limits, unexamined=unexamined)  # fmt: skip


def findings_from_scans(
    scans: list[FileScan], rules: RuleSet, redactor: Redactor | None = None
) -> tuple[list[Finding], dict[tuple[str, str], str]]:
    """One finding per rule and file, most severe first, and a map (path, rule id) -> finding id."""
    redactor = redactor or Redactor(rules)
    findings: list[Finding] = []
    refs: dict[tuple[str, str], str] = {}
    for scan in scans:
        first: dict[str, LogMatch] = {}
        examples: dict[str, list[str]] = {}
        prints: dict[str, list[str]] = {}
        for m in scan.matches:
            first.setdefault(m.rule_id, m)
            if m.fingerprint and m.fingerprint not in (seen := prints.setdefault(m.rule_id, [])):
                seen.append(m.fingerprint)
            shown = examples.setdefault(m.rule_id, [])
            if len(shown) < MAX_EXAMPLES and (text := redactor.redact(m.text)[:MAX_EXAMPLE_CHARS]) not in shown:
                shown.append(text)
        for rule_id, st in scan.stats.items():
            rule = rules.get(rule_id)
            if rule is None:
                continue
            when = f" ({_iso(st.first_time)})" if st.first_time else ""
            until = f" ({_iso(st.last_time)})" if st.last_time else ""
            span = f"line {st.first_line}{when}"
            if st.count > 1:
                span = f"lines {st.first_line}{when} to {st.last_line}{until}"
            example = first.get(rule_id)
            detail = f"{rule.description} {st.count} matching line(s) in {scan.path}, {span}."
            if rule.attack:
                detail += f" ATT&CK: {', '.join(rule.attack)}."
            if intel := _intel_fields(rule):
                detail += f" Indicator of incident intel entry {intel['intel']} (source {intel['source']})."
            if example is not None:
                detail += f" First line: {example.text}"
            finding = Finding.create(
                severity=rule.severity, category=rule.category, detector=DETECTOR,
                title=f"{rule.title}: {st.count} line(s) in {scan.path}", detail=redactor.redact(detail),
                evidence={"path": scan.path, "line": st.first_line, "last_line": st.last_line, "count": st.count,
                          "rule_id": rule.id, "first_time": _iso(st.first_time), "last_time": _iso(st.last_time),
                          "examples": examples.get(rule_id, []),
                          **_intel_fields(rule),
                          # credential rules: the distinct credentials seen, by fingerprint (never by value)
                          **({"fingerprints": ",".join(prints[rule_id])} if prints.get(rule_id) else {})},
                atlas=rule.atlas, timestamp=st.first_time,
            )  # fmt: skip
            findings.append(finding)
            refs[(scan.path, rule_id)] = finding.id
    findings.sort(key=lambda f: (-f.severity.rank, f.evidence["path"], f.evidence["line"]))
    return findings, refs


def _intel_fields(rule: Any) -> dict[str, str]:
    """An incident indicator's entry and source (its rule id is ``<entry>.<name>``), for its findings."""
    from workbench.data.python_incidents import INTEL_FAMILY

    if rule.family != INTEL_FAMILY or not rule.references:
        return {}
    return {"intel": rule.id.rsplit(".", 1)[0], "source": rule.references[0]}


def _iso(ts: Any) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts is not None else None


def matches_frame(matches: Iterable[LogMatch]) -> pd.DataFrame:
    """Matches as a DataFrame: ``rule_id``, ``title`` str, ``severity`` ordered categorical, ``category``, ``path``
    str, ``line`` Int64, ``timestamp`` datetime64[ns, UTC], ``group`` object (str, or None outside any CI step),
    ``text`` str, ``before``/``after`` tuples."""
    rows = [{c: getattr(m, c) for c in MATCH_COLUMNS} for m in matches]
    df = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    df["severity"] = df["severity"].map(lambda s: getattr(s, "value", s)).astype(_SEVERITY)
    df["line"] = df["line"].astype("Int64")
    # a file with steps and one without: None must stay None (pandas would make a text column's None a float NaN)
    df["group"] = pd.Series([g if isinstance(g, str) else None for g in df["group"]], index=df.index, dtype=object)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    return df


_SEVERITY = pd.CategoricalDtype([s.value for s in Severity], ordered=True)


def rules_frame(scans: list[FileScan], rules: RuleSet) -> pd.DataFrame:
    """One row per rule and file with counts, first/last line and time, ATLAS and ATT&CK ids (most severe first)."""
    rows = []
    for scan in scans:
        for rule_id, st in scan.stats.items():
            rule = rules.get(rule_id)
            if rule is None:
                continue
            rows.append({"severity": rule.severity.value, "rule_id": rule_id, "title": rule.title,
                         "category": rule.category, "path": scan.path, "matches": st.count,
                         "first_line": st.first_line, "last_line": st.last_line, "first_time": st.first_time,
                         "last_time": st.last_time, "atlas": ", ".join(rule.atlas),
                         "attack": ", ".join(rule.attack)})  # fmt: skip
    df = pd.DataFrame(rows, columns=RULE_COLUMNS)
    df["severity"] = df["severity"].astype(_SEVERITY)
    for col in ("first_time", "last_time"):
        df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[ns, UTC]")
    return df.sort_values(["severity", "path", "first_line"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------- rendering
def render(result: AnalysisResult) -> list[Any]:
    """The section's report items: summary, table by rule and severity, chart over time, lines with context."""
    from workbench.htmlkit import SEVERITY_COLOURS, html_table

    items: list[Any] = [f"<p>{escape(result.summary)}</p>"]
    by_rule: pd.DataFrame = result.data.get("by_rule", pd.DataFrame())
    matches: pd.DataFrame = result.data.get("matches", pd.DataFrame())
    if not by_rule.empty:
        shown = by_rule.assign(first_time=by_rule["first_time"].map(_utc_text),
                               last_time=by_rule["last_time"].map(_utc_text))  # fmt: skip
        items.append(html_table(shown, mono=("rule_id", "path")))
        figure = _timeline(matches, SEVERITY_COLOURS)
        if figure is not None:
            items.append(figure)
        items.append(_context_html(matches, SEVERITY_COLOURS))
    if result.warnings:
        rows = pd.DataFrame([w.to_dict() for w in result.warnings], columns=["path", "line", "reason"])
        items.append("<p><b>Scan warnings</b></p>" + html_table(rows, mono=("path",)))
    return items


def _utc_text(ts: Any) -> str:
    return "" if ts is None or pd.isna(ts) else display_time(pd.Timestamp(ts).floor("s").to_pydatetime()) or ""


def _timeline(matches: pd.DataFrame, colours: dict[str, str]) -> Any:
    import plotly.graph_objects as go

    timed = matches.dropna(subset=["timestamp"])
    if timed.empty:
        return None
    fig = go.Figure()
    for severity, group in timed.groupby("severity", observed=True, sort=True):
        fig.add_trace(go.Scatter(
            x=group["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None), y=group["rule_id"], mode="markers",
            name=str(severity), marker={"size": 9, "color": colours.get(str(severity), "#6c757d")},
            text=[escape(f"{p}:{n}: {t[:160]}") for p, n, t in zip(group["path"], group["line"], group["text"],
                                                                    strict=True)],
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S} UTC<br>%{text}<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(
        title="Suspicious log lines over time", xaxis_title="time (UTC)", yaxis_title="rule",
        height=200 + 24 * timed["rule_id"].nunique(), margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )  # fmt: skip
    return fig


def _context_html(matches: pd.DataFrame, colours: dict[str, str]) -> str:
    blocks = []
    ordered = matches.sort_values(["severity", "path", "line"], kind="stable").head(MAX_SHOWN)
    for m in ordered.itertuples(index=False):
        colour = colours.get(str(m.severity), "#6c757d")
        when = _utc_text(m.timestamp)
        head = (f'<span class="wb-sev" style="background:{colour}">{escape(str(m.severity))}</span> '
                f'<b>{escape(m.title)}</b> <span class="wb-mono">{escape(m.rule_id)}</span> '
                f'<span class="wb-mono">{escape(m.path)}:{int(m.line)}</span> {escape(when)}'
                + (f" <i>step: {escape(m.group)}</i>" if isinstance(m.group, str) and m.group else ""))  # fmt: skip
        lines = [escape(x) for x in m.before] + [f"<b>{escape(m.text)}</b>"] + [escape(x) for x in m.after]
        blocks.append(f'<div class="wb-logmatch">{head}<pre class="wb-mono" style="white-space:pre-wrap;'
                      f'margin:4px 0 12px 0">{chr(10).join(lines)}</pre></div>')  # fmt: skip
    more = len(matches) - len(ordered)
    note = f'<p class="wb-note">{more} more matching lines not shown.</p>' if more > 0 else ""
    return "".join(blocks) + note
