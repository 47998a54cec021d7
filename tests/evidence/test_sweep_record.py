"""A fleet sweep's record of one model, put in a case: loaded as a lead; what it suspects must be examined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext
from workbench.evidence.sweep_record import SweepRecordLoader
from workbench.investigation import Investigation

RECORD = {"format": "workbench-sweep-model", "version": 1, "verdict": "compromised", "model": "acme/m/r2",
          "registry": "/srv/models", "sweep": 7, "rules": "abcd",
          "findings": [{"id": "F-1", "severity": "critical", "category": "pickle_dangerous_import",
                        "title": "optimizer.pkl imports posix.system", "evidence": {"path": "models/acme/m/r2/x.pkl"}},
                       "not a finding"],
          "digests": {"model.safetensors": "ab" * 32}, "reasons": ["The model files carry code."]}  # fmt: skip


def write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_a_record_is_detected_by_its_format_and_loaded_with_a_warning_for_a_bad_finding(tmp_path):
    loader = SweepRecordLoader()
    rec = write(tmp_path / "sweep" / "rec.json", RECORD)
    assert loader.detect(rec)
    assert not loader.detect(write(tmp_path / "other.json", {"verdict": "compromised", "findings": []}))
    loaded = loader.load(rec, LoadContext(relpath="sweep/rec.json"))
    assert loaded.meta["verdict"] == "compromised" and loaded.meta["model"] == "acme/m/r2" and loaded.meta["sweep"] == 7
    assert loaded.frame["category"].tolist() == ["pickle_dangerous_import"]
    assert [w.reason for w in loaded.warnings] == ["findings[1]: not an object"]


def test_a_record_with_an_unknown_verdict_is_malformed(tmp_path):
    rec = write(tmp_path / "rec.json", {**RECORD, "verdict": "fine"})
    with pytest.raises(MalformedEvidence, match="'verdict' is not one of"):
        SweepRecordLoader().load(rec, LoadContext(relpath="rec.json"))


def test_a_compromised_record_is_a_lead_that_needs_the_model_examined(tmp_path):
    case = tmp_path / "case"
    write(case / "sweep" / "rec.json", RECORD)
    (case / "frozen_deps.txt").write_text("numpy==1.26.4\n")
    inv = Investigation.open(case, tmp_path / "out", write=False)
    leads = inv.results["monitor"].findings
    assert [f.evidence["types"] for f in leads] == ["SWEEP_COMPROMISED"]
    assert "judged acme/m/r2 compromised (1 finding(s))" in leads[0].title
    c = inv.conclusions
    assert c.verdict == "inconclusive"  # the sweep suspects the model; no model folder: nothing to confirm it with
    assert any("Suspected by the monitor's alerts" in r.sentence and "model" in r.sentence.lower() for r in c.reasons)


def test_a_clean_record_suspects_nothing(tmp_path):
    case = tmp_path / "case"
    write(case / "sweep" / "rec.json", {**RECORD, "verdict": "clean", "findings": []})
    (case / "frozen_deps.txt").write_text("numpy==1.26.4\n")
    inv = Investigation.open(case, tmp_path / "out", write=False)
    assert inv.results["monitor"].findings[0].evidence["types"] == "SWEEP_CLEAN"
    assert inv.conclusions.verdict == "clean"
