"""The findings explorer and the table explorer: real filters over a real run, and the widgets react to their
controls (no browser here; tests/browser/ drives them in JupyterLab)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from workbench.explore.common import Explorer, export_frame, page_of
from workbench.explore.findings import filter_findings, finding_detail, finding_sections
from workbench.explore.tables import filter_frame
from workbench.investigation import Investigation
from workbench.report.view import ReportView

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"))


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html.replace("<wbr>", ""))


def _finding(inv, category):
    return next(f for f in inv.findings if f.category == category)


def test_filter_findings_by_severity_category_and_text(inv):
    crit = filter_findings(inv.findings, min_severity="critical")
    assert len(crit) == sum(f.severity.value == "critical" for f in inv.findings) and set(crit["severity"]) == {
        "critical"
    }
    pickles = filter_findings(inv.findings, categories=["pickle_dangerous_import"])
    assert len(pickles) == 1 and "posix.system" in pickles.iloc[0]["title"]
    assert len(filter_findings(inv.findings, text="OPTIMIZER.PKL")) >= 3
    assert filter_findings(inv.findings, text="no such words anywhere").empty


def test_filter_findings_by_technique_takes_sub_techniques(inv):
    exact = filter_findings(inv.findings, technique="AML.T0010.003")
    parent = filter_findings(inv.findings, technique="AML.T0010")
    assert len(exact) == sum("AML.T0010.003" in f.atlas for f in inv.findings) > 0
    assert len(parent) == sum(any(t.startswith("AML.T0010.") or t == "AML.T0010" for t in f.atlas)
                              for f in inv.findings) > len(exact)  # fmt: skip
    assert filter_findings(inv.findings, technique="AML.T0010.00").empty  # a prefix of a number is no parent


def test_filter_findings_by_section(inv):
    where = finding_sections(inv)
    logs = filter_findings(inv.findings, section="logs", sections=where)
    assert len(logs) == len(inv.results["logs"].findings) > 0
    assert set(logs["id"]) == {f.id for f in inv.results["logs"].findings}


def test_detail_of_a_log_finding_shows_its_lines_with_context_as_text(inv):
    f = _finding(inv, "secret_exposed")
    html = finding_detail(inv, f.id)
    assert f.id in html and "wb-log-context" in html
    first = inv.results["logs"].data["matches"].query("line == @f.evidence['line']").iloc[0]
    plain = _plain(html)
    assert f"▶ {f.evidence['line']:>7}" in plain  # the hit, numbered
    assert f"{f.evidence['line'] - 1:>7}  " in plain and str(first["before"][-1]) in plain  # its context as text
    assert "('" not in plain  # not a Python tuple
    assert "Timeline events (" in html and "Cited by the conclusions" in html


def test_detail_of_a_pickle_finding_shows_the_decompiled_call(inv):
    f = _finding(inv, "pickle_dangerous_import")
    plain = _plain(finding_detail(inv, f.id))
    assert "Decompiled pickle calls" in plain and "posix.system(" in plain and "REDUCE" in plain


def test_detail_of_a_tensor_finding_shows_its_change(inv):
    f = _finding(inv, "tensor_modified")
    plain = _plain(finding_detail(inv, f.id))
    assert "Tensor change" in plain and f.evidence["tensor"] in plain and "changed_fraction" in plain.replace(" ", "_")


def test_detail_of_a_host_finding_shows_the_process_or_connection(inv):
    proc, conn = _finding(inv, "suspicious_process"), _finding(inv, "suspicious_connection")
    shown_proc, shown_conn = _plain(finding_detail(inv, proc.id)), _plain(finding_detail(inv, conn.id))
    assert "Process" in shown_proc and str(proc.evidence["pid"]) in shown_proc
    assert "Connection" in shown_conn and "203.0.113.7" in shown_conn


def test_detail_lists_the_conclusions_citing_the_finding(inv):
    reason = inv.conclusions.reasons[0]
    assert reason.sentence[:60] in _plain(finding_detail(inv, reason.finding))
    c = inv.conclusions
    cited = {r.finding for r in c.reasons} | {i for ind in c.indicators for i in ind.findings}
    cited |= {getattr(m, "ref", None) for m in c.milestones.values()}
    uncited = next(f for f in inv.findings if f.id not in cited)
    assert "Not cited." in finding_detail(inv, uncited.id)
    assert "No finding selected" in finding_detail(inv, "F-000000000000")


def test_findings_explorer_reacts(inv):
    ex = ReportView(inv).explore_findings()
    assert isinstance(ex, Explorer)
    everything = ex["count"].value
    ex["severity"].value = "critical"
    assert ex["count"].value != everything
    labels = [label for label, _ in ex["listing"].options]
    assert labels and all(label.startswith("CRITICAL") for label in labels)
    ex["search"].value = "rank-1"
    assert "<b>1</b>" in ex["count"].value
    assert "encoder.layer.0.mlp.fc2.weight" in ex["detail"].value  # the only row is selected: its detail shows
    ex["categories"].value = ("dependency_changed",)
    assert "<b>0</b>" in ex["count"].value and ex["listing"].options == () and "None." in ex["detail"].value


def test_selecting_a_finding_shows_its_detail(inv):
    ex = ReportView(inv).explore_findings()
    second = ex["listing"].options[1][1]
    ex["listing"].value = second
    assert second in ex["detail"].value
    assert next(f for f in inv.findings if f.id == second).title[:40] in _plain(ex["detail"].value)


def test_findings_are_paged(inv):
    ex = ReportView(inv).explore_findings()
    assert len(inv.findings) > 25  # the case has more findings than one page
    assert len(ex["listing"].options) == 25 and "page 1 of 2" in ex["pager"].children[2].value
    first_page = ex["listing"].options
    ex["pager"].children[1].click()  # next
    assert "page 2 of 2" in ex["pager"].children[2].value
    assert len(ex["listing"].options) == len(inv.findings) - 25 and ex["listing"].options != first_page
    assert ex["pager"].children[1].disabled and not ex["pager"].children[0].disabled


def test_page_of_clamps():
    frame = pd.DataFrame({"a": range(60)})
    assert [len(page_of(frame, p, 25)[0]) for p in (0, 1, 2)] == [25, 25, 10]
    assert page_of(frame, 9, 25)[1:] == (2, 3) and page_of(frame, -1, 25)[1] == 0
    assert page_of(frame.iloc[:0], 0, 25)[1:] == (0, 1)


def test_export_writes_the_selection(inv, tmp_path):
    ex = ReportView(inv).explore_findings()
    ex["severity"].value = "critical"
    export = ex.widget.children[5]
    export.children[0].click()  # CSV
    export.children[1].click()  # JSON
    files = sorted((inv.out_dir / "exports").glob("findings-*"))
    csv_file = next(p for p in files if p.suffix == ".csv")
    json_file = next(p for p in files if p.suffix == ".json")
    rows = len(filter_findings(inv.findings, min_severity="critical"))
    assert len(pd.read_csv(csv_file)) == rows and len(json.loads(json_file.read_text())) == rows
    assert str(csv_file.parent) in _plain(export.children[2].value) or "rows written" in export.children[2].value
    again = export_frame(pd.DataFrame({"a": [1]}), tmp_path, "../../Evil Name", "csv")
    assert again.parent == tmp_path / "exports" and again.name.startswith("evil-name-")
    with pytest.raises(ValueError, match="csv or json"):
        export_frame(pd.DataFrame(), tmp_path, "x", "xml")


def test_explorer_output_has_a_static_view(inv):
    bundle = ReportView(inv).explore_findings()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table" in bundle["text/html"] and inv.conclusions.reasons[0].finding in bundle["text/html"]


def test_filter_frame(inv):
    tensors = inv.results["model"].data["tensors"]
    modified = filter_frame(tensors, column="status", value="modified")
    assert set(modified["name"]) == {"embeddings.weight", "encoder.layer.0.mlp.fc2.weight"}
    assert list(filter_frame(tensors, text="fc2")["name"]) == ["encoder.layer.0.mlp.fc2.weight"]


def test_explore_names_the_tables_it_has(inv):
    ex = ReportView(inv).explore("logs", "matches", "rule_id")
    assert {"revshell.dev-tcp-redirect", "secret.huggingface-token"} <= set(ex["picker"].options)
    ex["picker"].value = "revshell.dev-tcp-redirect"
    assert "/dev/tcp/" in ex["table"].value and ex["table"].value.startswith("<p>1 of ")
    assert "hf_" not in ex["table"].value or "[redacted]" in ex["table"].value
    with pytest.raises(KeyError, match="has: "):
        ReportView(inv).explore("model", "no_such_table")
