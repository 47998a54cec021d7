"""Analyst explorers: the filtering is real and the widgets react to their controls (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.investigation import Investigation
from workbench.report.view import ReportView
from workbench.widgets import filter_findings, filter_frame

SAMPLES = Path(__file__).resolve().parents[1] / "evidence-samples"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    return Investigation.open(SAMPLES / "tampered-weights", tmp_path_factory.mktemp("out"))


def test_filter_findings_by_severity_category_and_text(inv):
    crit = filter_findings(inv.findings, min_severity="critical")
    assert len(crit) == sum(f.severity.value == "critical" for f in inv.findings) and set(crit["severity"]) == {
        "critical"
    }
    pickles = filter_findings(inv.findings, categories=["pickle_dangerous_import"])
    assert len(pickles) == 1 and "posix.system" in pickles.iloc[0]["title"]
    assert len(filter_findings(inv.findings, text="OPTIMIZER.PKL")) >= 3
    assert filter_findings(inv.findings, text="no such words anywhere").empty


def test_filter_frame(inv):
    tensors = inv.results["model"].data["tensors"]
    modified = filter_frame(tensors, column="status", value="modified")
    assert set(modified["name"]) == {"embeddings.weight", "encoder.layer.0.mlp.fc2.weight"}
    assert list(filter_frame(tensors, text="fc2")["name"]) == ["encoder.layer.0.mlp.fc2.weight"]


def test_findings_explorer_reacts(inv):
    box = ReportView(inv).explore_findings()
    controls, chosen, count, table = box.children
    severity, search = controls.children
    everything = count.value
    severity.value = "critical"
    assert count.value != everything and "critical" in table.value and ">info<" not in table.value
    search.value = "rank-1"
    assert "<b>1</b>" in count.value and "encoder.layer.0.mlp.fc2.weight" in table.value
    chosen.value = ("dependency_changed",)
    assert "<b>0</b>" in count.value


def test_explore_names_the_tables_it_has(inv):
    box = ReportView(inv).explore("logs", "matches", "rule_id")
    picker, _search = box.children[0].children
    table = box.children[1]
    assert {"revshell.dev-tcp-redirect", "secret.huggingface-token"} <= set(picker.options)
    picker.value = "revshell.dev-tcp-redirect"
    assert "/dev/tcp/" in table.value and table.value.startswith("<p>1 of ")
    assert "hf_" not in table.value or "[redacted]" in table.value
    with pytest.raises(KeyError, match="has: "):
        ReportView(inv).explore("model", "no_such_table")
