"""Verdict, reasons and coverage: every rule on constructed findings, including when "clean" is not allowed."""

from __future__ import annotations

from dataclasses import replace

from tests.conclusions.conftest import coverage, finding, t
from workbench.conclusions import derive_conclusions
from workbench.conclusions.verdict import MAX_REASONS, decide


def alert(types: str):
    return finding("monitor_alert", "low", f"The integrity monitor raised 1 alert(s): {types}", path="monitor/a.jsonl",
                   types=types)  # fmt: skip


def test_critical_is_compromised_high_or_medium_suspicious():
    assert decide([finding("tensor_modified", "critical")], coverage())[0] == "compromised"
    assert decide([finding("log_pattern", "high")], coverage())[0] == "suspicious"
    assert decide([finding("log_pattern", "medium")], coverage())[0] == "suspicious"
    assert decide([finding("log_pattern", "low")], coverage())[0] == "clean"


def test_evidence_handling_and_leads_never_decide():
    handling = [finding("evidence_malformed", "critical"), finding("custody_violation", "critical"),
                finding("signature_verified", "info"), alert("FILE_TAMPERED")]  # fmt: skip
    verdict, _ = decide(handling, coverage())
    assert verdict == "clean"


def test_reasons_rank_what_the_attack_did_one_per_group_and_include_live_activity():
    findings = [
        finding("secret_exposed", "critical", "Hugging Face token in clear"),
        finding("log_pattern", "critical", "Remote script piped to a shell"),
        finding("suspicious_connection", "high", "gunicorn -> 203.0.113.7:4444"),
        finding("tensor_modified", "high", "embedding rows changed"),
        finding("tensor_modified", "critical", "rank-1 edit"),
        finding("pickle_dangerous_import", "critical", "optimizer.pkl imports posix.system"),
        finding("dependency_typosquat", "high", "transfomers typosquat"),
        finding("model_unsigned", "medium", "unsigned"),  # below the floor for a compromised verdict
    ]
    verdict, reasons = decide(findings, coverage())
    assert verdict == "compromised"
    groups = [r.group for r in reasons]
    assert groups == ["model_code", "weights", "live_activity", "dependencies", "pipeline", "credentials"][:MAX_REASONS]
    weights = reasons[1]
    assert "rank-1 edit" in weights.sentence and "(and 1 more finding of this kind)" in weights.sentence
    assert reasons[0].sentence.startswith("The model files carry code that runs when the model is loaded:")
    by_title = {f.title: f.id for f in findings}
    assert reasons[2].finding == by_title["gunicorn -> 203.0.113.7:4444"]


def test_suspicious_reasons_use_the_medium_floor():
    verdict, reasons = decide([finding("model_unsigned", "medium", "no signature"), finding("log_pattern", "low")],
                              coverage())  # fmt: skip
    assert verdict == "suspicious"
    assert [r.group for r in reasons] == ["provenance"]


def test_nothing_analysable_is_inconclusive_not_clean():
    cov = coverage(model="not_applicable", dependencies="not_applicable", host="not_applicable",
                   drift="not_applicable", monitor="not_applicable")  # fmt: skip
    verdict, reasons = decide([finding("log_pattern", "low", "pip install -r requirements.txt")], cov)
    assert verdict == "inconclusive"
    assert "Neither the model, the dependencies nor the installed packages could be examined" in reasons[0].sentence
    assert reasons[0].finding is None


def test_dependencies_alone_can_support_clean_without_an_alert():
    cov = coverage(model="not_applicable", drift="not_applicable")
    assert decide([], cov)[0] == "clean"


def test_a_failed_analysis_forbids_clean():
    verdict, reasons = decide([], coverage(host="failed"))
    assert verdict == "inconclusive"
    assert "host state analysis failed (RuntimeError: boom)" in reasons[0].sentence


def test_the_alerted_kind_must_have_been_examined():
    """A drift alert with no prediction records cannot be refuted: inconclusive, even with the model examined."""
    verdict, reasons = decide([alert("BEHAVIOR_DRIFT")], coverage(drift="not_applicable"))
    assert verdict == "inconclusive"
    assert "Suspected by the monitor's alerts" in reasons[0].sentence and "behaviour drift" in reasons[0].sentence
    verdict, reasons = decide([alert("BEHAVIOR_DRIFT")], coverage(model="not_applicable"))
    assert verdict == "clean"  # the drift analysis did examine the predictions
    assert reasons[1].sentence.startswith("Not corroborated by any analysis: The integrity monitor raised 1 alert")


def test_file_alert_with_no_model_is_inconclusive():
    verdict, _ = decide([alert("FILE_TAMPERED,DEPENDENCY_CHANGED")], coverage(model="not_applicable"))
    assert verdict == "inconclusive"


def test_conclusions_document_carries_coverage_and_reasons():
    c = derive_conclusions([finding("tensor_modified", "critical", "edit", at=t(1))], [], coverage(host="failed"))
    doc = c.to_dict()
    assert doc["verdict"] == "compromised"
    assert doc["coverage"]["host"] == {"status": "failed", "title": "Host state", "detail": "RuntimeError: boom",
                                       "files": [], "limits": [], "unexamined": []}  # fmt: skip
    assert doc["reasons"][0]["finding"] == c.reasons[0].finding
    assert [g.section for g in c.gaps] == ["host"]


def test_a_suspected_model_that_could_not_be_compared_is_inconclusive():
    cov = coverage()
    cov["model"] = replace(cov["model"], limits=("m1 was not compared",))
    verdict, reasons = decide([alert("FILE_TAMPERED")], cov)
    assert verdict == "inconclusive" and "only partly examined: m1 was not compared" in reasons[0].sentence
    assert decide([], cov)[0] == "clean"  # without a suspicion on the model, a limit alone does not forbid clean


def test_evidence_left_unexamined_forbids_clean_and_is_listed():
    from workbench.analysis import AnalysisResult
    from workbench.conclusions import coverage_of

    unexamined = [f"logs/l{i}.log: past the inventory cap" for i in range(7)]
    results = {"evidence": AnalysisResult("evidence", unexamined=unexamined), "logs": AnalysisResult("logs")}
    cov = coverage_of({"evidence": "Evidence inventory", "logs": "Pipeline logs"}, results, {})
    assert cov["evidence"].status == "partial" and cov["evidence"].unexamined == tuple(unexamined)
    assert cov["evidence"].detail.startswith("7 not examined: logs/l0.log: past the inventory cap;")
    assert cov["evidence"].detail.endswith("and 2 more")
    verdict, reasons = decide([], {**coverage(), **cov})
    assert verdict == "inconclusive" and "evidence inventory stopped short" in reasons[0].sentence
