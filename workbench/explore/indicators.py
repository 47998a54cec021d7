"""The indicator explorer: pick an indicator of compromise and see every finding, timeline event and log line of
the case that mentions it.

Where an indicator is looked for (:func:`indicator_hits`):

* **findings**: those the indicator cites (its ``findings``), and any whose title, detail or evidence mentions it;
* **events**: every event of the run whose message or extra fields mention it, and the events of the findings it
  cites;
* **log lines**: the log scanner's matches (``inv.results["logs"].data["matches"]``: the matched line and its
  context), and a search of the case's pipeline logs themselves (:func:`workbench.evidence.pipeline_log.grep_log`,
  within :data:`SEARCH_BUDGET`, at most :data:`MAX_LOG_LINES` lines). The lines read from the files go through
  the credential redaction and have their terminal escapes stripped and control characters shown, as the
  scanner's do. Credentials are named by a fingerprint that is never in the evidence: only their findings count.

A value *mentions* the indicator when it holds the raw value (not the defanged form the report shows,
``203.0.113[.]7``), case-insensitive, with no letter or digit glued to either side (``203.0.113.7`` is not in
``203.0.113.70``). :func:`indicator_hits` is the logic, tested without a browser; :func:`indicator_explorer` wires
a picker to it and caches what it found per indicator.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.conclusions.indicators import defang
from workbench.errors import EvidenceError
from workbench.evidence.pipeline_log import LogAllowance, LogBudget, grep_log
from workbench.explore.common import Explorer, export_bar
from workbench.htmlkit import html_table, note, text
from workbench.logscan.lines import printable, strip_ansi
from workbench.records import Finding, to_frame
from workbench.rulepack.redact import redact
from workbench.timeline.build import lane_of
from workbench.timeline.markers import at_second

if TYPE_CHECKING:
    from workbench.conclusions.record import Indicator
    from workbench.investigation import Investigation

__all__ = [
    "EVENT_COLUMNS",
    "FINDING_COLUMNS",
    "HIT_COLUMNS",
    "LINE_COLUMNS",
    "MAX_LOG_LINES",
    "SEARCH_BUDGET",
    "combined_hits",
    "hits_html",
    "indicator_explorer",
    "indicator_hits",
    "mentions",
]

#: most log lines kept for one indicator (the search of the files stops there)
MAX_LOG_LINES = 500
#: what the search of the case's pipeline logs may read for one indicator
SEARCH_BUDGET = LogBudget(file_bytes=512 << 20, case_bytes=1024 << 20, file_seconds=20.0, case_seconds=30.0)
#: rows of each table shown in the pane (the export holds them all)
SHOWN_ROWS = 200
FINDING_COLUMNS = ["severity", "category", "title", "id", "why"]
EVENT_COLUMNS = ["time", "lane", "kind", "severity", "source", "message", "ref", "why"]
LINE_COLUMNS = ["path", "line", "rule_id", "text"]
#: columns of :func:`combined_hits`
HIT_COLUMNS = ["kind", "time", "severity", "what", "where", "line", "id", "text", "why"]
#: kinds of indicator whose value is not in the evidence (a fingerprint in words): no text is searched
_NOT_IN_TEXT = frozenset({"credential"})
_CITED = "cited by the indicator"
_MENTIONS = "mentions it"


def mentions(value: str) -> re.Pattern[str]:
    """The pattern of a text that mentions ``value`` (module docstring)."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", re.IGNORECASE)


def _flat(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _in_extra(needle: re.Pattern[str], extra: dict[str, Any]) -> bool:
    """Whether a text of an event's ``extra`` (a key, a value, or a value inside a list or mapping) mentions it."""
    return any(needle.search(k) or (not isinstance(v, int | float | bool | None) and needle.search(_flat(v)))
               for k, v in extra.items())  # fmt: skip


# -------------------------------------------------------------------------------------------------- the hits
def _findings(inv: Investigation, indicator: Indicator, needle: re.Pattern[str] | None) -> pd.DataFrame:
    cited = set(indicator.findings)
    kept, why = [], []
    for f in inv.findings:
        if f.id in cited:
            kept.append(f)
            why.append(_CITED)
        elif needle is not None and needle.search(f"{f.title}\n{f.detail}\n{_flat(f.evidence)}"):
            kept.append(f)
            why.append(_MENTIONS)
    return to_frame(kept, Finding).assign(why=why)[FINDING_COLUMNS] if kept else pd.DataFrame(columns=FINDING_COLUMNS)


def _events(inv: Investigation, indicator: Indicator, needle: re.Pattern[str] | None) -> pd.DataFrame:
    cited = set(indicator.findings)
    rows = []
    for e in sorted(inv.events, key=lambda e: e.timestamp):
        if needle is not None and (needle.search(e.message) or _in_extra(needle, e.extra)):
            why = _MENTIONS
        elif e.ref in cited:
            why = f"event of {e.ref}"
        else:
            continue
        rows.append({"time": at_second(e.timestamp), "lane": lane_of(e.kind), "kind": e.kind,
                     "severity": e.severity.value, "source": e.source, "message": e.message, "ref": e.ref or "",
                     "why": why})  # fmt: skip
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def _scanned_lines(inv: Investigation, needle: re.Pattern[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """The log scanner's matched lines and context lines that mention the indicator, by (path, line)."""
    result = inv.results.get("logs")
    matches = result.data.get("matches") if result is not None else None
    found: dict[tuple[str, int], dict[str, Any]] = {}
    if not isinstance(matches, pd.DataFrame) or matches.empty:
        return found
    for row in matches.itertuples(index=False):
        number, before, after = int(row.line), list(row.before or ()), list(row.after or ())
        numbered = [(number - len(before) + i, t, "") for i, t in enumerate(before)]
        numbered += [(number, row.text, str(row.rule_id)), *((number + 1 + i, t, "") for i, t in enumerate(after))]
        for line, line_text, rule in numbered:
            if not needle.search(str(line_text)):
                continue
            hit = found.setdefault((str(row.path), line), {"path": str(row.path), "line": line, "rule_id": "",
                                                           "text": str(line_text)})  # fmt: skip
            if rule and rule not in hit["rule_id"].split(", "):
                hit["rule_id"] = ", ".join(r for r in (hit["rule_id"], rule) if r)
    return found


def _log_paths(inv: Investigation) -> list[str]:
    paths = {loaded.path for loaded in inv.evidence.all("pipeline_log")}
    result = inv.results.get("logs")
    matches = result.data.get("matches") if result is not None else None
    if isinstance(matches, pd.DataFrame) and not matches.empty:
        paths |= set(matches["path"].astype(str))
    return sorted(paths)


def _searched_lines(inv: Investigation, value: str, budget: LogBudget, cap: int, found: dict, notes: list) -> None:
    """Add the lines of the case's pipeline logs that mention ``value`` to ``found`` (read within ``budget``, at
    most ``cap`` lines in all); what stopped a search goes to ``notes``."""
    # the files are searched for the bare literal (several times faster than with the look-arounds); the lines
    # found are then held to :func:`mentions`
    literal, mention = re.compile(re.escape(value.encode("utf-8")), re.IGNORECASE), mentions(value)
    allowance = LogAllowance(budget)
    for relpath in _log_paths(inv):
        share = allowance.file()
        if len(found) >= cap:
            notes.append(f"{relpath}: not searched, {cap:,} lines already kept")
            continue
        try:
            for number, raw in grep_log(inv.case.path(relpath), literal, share):
                if (relpath, number) in found:
                    continue
                line_text = printable(strip_ansi(raw).decode("utf-8", "replace").removesuffix("\r"))
                if not mention.search(line_text):
                    continue
                if len(found) >= cap:
                    notes.append(f"{relpath}: search stopped at {cap:,} lines kept")
                    break
                found[(relpath, number)] = {"path": relpath, "line": number, "rule_id": "", "text": redact(line_text)}
        except (EvidenceError, OSError) as exc:
            notes.append(f"{relpath}: not searched ({exc})")
        if share.stopped:
            notes.append(f"{relpath}: search {share.stopped}")


def indicator_hits(
    inv: Investigation, indicator: Indicator, *, budget: LogBudget = SEARCH_BUDGET, max_lines: int = MAX_LOG_LINES
) -> dict[str, pd.DataFrame]:
    """Every finding, event and log line of the case that mentions an indicator (module docstring).

    Args:
        inv: the investigation (its findings, events, log matches; the case's pipeline logs are read).
        indicator: one of ``inv.conclusions.indicators``.
        budget: what the search of the pipeline logs may read.
        max_lines: most log lines kept.

    Returns:
        ``findings`` (:data:`FINDING_COLUMNS`, worst first; ``why``: cited by the indicator or mentions it),
        ``events`` (:data:`EVENT_COLUMNS`, in time order, times ISO 8601 UTC; ``why``: mentions it, or the event of
        a cited finding) and ``lines`` (:data:`LINE_COLUMNS`, by path and line; ``rule_id``: the log rules that
        matched the line, empty for a context line or a line only the search found). ``lines.attrs["notes"]``
        lists what limited the search (budgets, the cap, unreadable files).
    """
    in_text = indicator.kind not in _NOT_IN_TEXT
    needle = mentions(indicator.value) if in_text else None
    notes: list[str] = []
    found = _scanned_lines(inv, needle) if needle is not None else {}
    if in_text:
        _searched_lines(inv, indicator.value, budget, max_lines, found, notes)
    else:
        notes.append(f"a {indicator.kind} is named by a fingerprint that is not in the evidence: no text searched")
    lines = pd.DataFrame(sorted(found.values(), key=lambda h: (h["path"], h["line"]))[: max(max_lines, 0)],
                         columns=LINE_COLUMNS)  # fmt: skip
    lines["line"] = lines["line"].astype("int64")
    lines.attrs["notes"] = notes
    return {"findings": _findings(inv, indicator, needle), "events": _events(inv, indicator, needle), "lines": lines}


def combined_hits(hits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The three tables of :func:`indicator_hits` as one (:data:`HIT_COLUMNS`; ``kind``: finding, event or log
    line; ``what``: category, event kind or rule ids; ``where``: the event's source or the log's path)."""
    f, e, lines = hits["findings"], hits["events"], hits["lines"]
    parts = [
        pd.DataFrame({"kind": "finding", "time": "", "severity": f["severity"], "what": f["category"], "where": "",
                      "line": pd.NA, "id": f["id"], "text": f["title"], "why": f["why"]}),
        pd.DataFrame({"kind": "event", "time": e["time"], "severity": e["severity"], "what": e["kind"],
                      "where": e["source"], "line": pd.NA, "id": e["ref"], "text": e["message"], "why": e["why"]}),
        pd.DataFrame({"kind": "log line", "time": "", "severity": "", "what": lines["rule_id"],
                      "where": lines["path"], "line": lines["line"], "id": "", "text": lines["text"],
                      "why": _MENTIONS}),
    ]  # fmt: skip
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    out = out if out is not None else pd.DataFrame(columns=HIT_COLUMNS)
    out["line"] = out["line"].astype("Int64")
    return out[HIT_COLUMNS]


# -------------------------------------------------------------------------------------------------- the view
def _label(indicator: Indicator) -> str:
    return f"{indicator.kind}: {defang(indicator.kind, indicator.value)}"


def _table(frame: pd.DataFrame, title: str, mono: tuple[str, ...]) -> str:
    more = len(frame) - SHOWN_ROWS
    tail = note(f"{more:,} more in the export.") if more > 0 else ""
    return f"<h4>{text(title)} ({len(frame):,})</h4>" + html_table(frame, mono=mono, max_rows=SHOWN_ROWS) + tail


def hits_html(indicator: Indicator, hits: dict[str, pd.DataFrame]) -> str:
    """The pane of one indicator: what it is, then its findings, events and log lines (line numbers) as tables."""
    seen = f", first seen {at_second(indicator.first_seen)}" if indicator.first_seen is not None else ""
    notes = hits["lines"].attrs.get("notes", [])
    return "".join([
        f"<h3>{text(_label(indicator))}</h3>",
        f"<p>{text(indicator.context)}{text(seen)}</p>" if indicator.context or seen else "",
        _table(hits["findings"], "Findings", ("id",)),
        _table(hits["events"], "Timeline events", ("time", "source", "ref")),
        _table(hits["lines"], "Log lines", ("path", "text")),
        "".join(note(n) for n in notes),
    ])  # fmt: skip


def indicator_explorer(inv: Investigation) -> Explorer:
    """A picker of the conclusions' indicators (``wb-indicator-select``, labelled ``kind: value``, defanged) and
    the pane of the one picked (``wb-indicator-hits``: :func:`hits_html`); an export of its hits
    (:func:`combined_hits`). Each indicator's hits are found once, when first picked.

    Parts: ``select``, ``hits`` (the pane), ``export``, and ``found`` (the hits found, by indicator).
    """
    import ipywidgets as w

    indicators = tuple(inv.conclusions.indicators) if inv.conclusions is not None else ()
    options = [(_label(i), n) for n, i in enumerate(indicators)] or [("no indicator of compromise", -1)]
    select = w.Dropdown(options=options, value=options[0][1], description="indicator", disabled=not indicators,
                        layout={"width": "100%"})  # fmt: skip
    select.add_class("wb-indicator-select")
    pane = w.HTML()
    pane.add_class("wb-indicator-hits")
    found: dict[int, dict[str, pd.DataFrame]] = {}

    def current() -> dict[str, pd.DataFrame] | None:
        if select.value is None or select.value < 0:
            return None
        if select.value not in found:
            found[select.value] = indicator_hits(inv, indicators[select.value])
        return found[select.value]

    def refresh(*_: object) -> None:
        hits = current()
        pane.value = note("The conclusions name no indicator of compromise.") if hits is None else hits_html(
            indicators[select.value], hits)  # fmt: skip

    def selection() -> pd.DataFrame:
        hits = current()
        return combined_hits(hits) if hits is not None else pd.DataFrame(columns=HIT_COLUMNS)

    select.observe(refresh, names="value")
    refresh()
    exports = export_bar(selection, inv.out_dir, "indicator")
    box = w.VBox([select, exports, pane])
    return Explorer(box, lambda: pane.value, select=select, hits=pane, export=exports, found=found)
