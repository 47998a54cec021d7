"""Recommendations: the playbook's four and the ones the workbench's categories justify, exactly and in order."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from workbench.investigation import Investigation
from workbench.records import Finding, Severity
from workbench.report.recommendations import RULES, parse_exposure, recommendations

SAMPLES = "evidence-samples"
C, H, M, L, INFO = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO


def finding(category: str, severity: Severity, title: str = "", **evidence) -> Finding:
    return Finding.create(severity=severity, category=category, title=title or category, evidence=evidence)


def summary(recs) -> list[tuple[str, Severity, tuple[str, ...]]]:
    return [(r.key, r.priority, r.because) for r in recs]


def test_no_finding_gives_only_the_two_general_ones_at_medium():
    assert summary(recommendations([])) == [
        ("review_pipeline_models", M, ()),
        ("rotate_credentials", M, ()),
    ]


def test_playbook_four_unsigned_and_dangerous_file_types():
    unsigned = finding("model_unsigned", C, path="models/m")
    pickle = finding("dangerous_file_type", H, path="models/m/optimizer.pkl")
    recs = recommendations([pickle, unsigned])
    assert summary(recs) == [
        ("enforce_signing", C, (unsigned.id,)),
        ("safetensors_only", H, (pickle.id,)),
        ("review_pipeline_models", H, (unsigned.id,)),
        ("rotate_credentials", H, (unsigned.id,)),
    ]
    assert recs[0].label.startswith("CRITICAL: Enforce model signing")
    assert "safetensors-only" in recs[1].text
    assert recs[2].text == "Conduct a review of all models deployed from the same pipeline as the compromised model."
    assert recs[3].text.startswith("Rotate all credentials accessible to the compromised pipeline")
    assert [r.kind for r in recs] == ["preventive", "preventive", "action", "action"]


def test_invalid_signature_justifies_signing_and_pickle_import_raises_safetensors_to_critical():
    invalid = finding("signature_invalid", C, path="m/model.safetensors")
    dangerous = finding("pickle_dangerous_import", C, path="m/optimizer.pkl")
    suspicious = finding("pickle_suspicious_import", M, path="m/extra.pkl")
    recs = recommendations([suspicious, dangerous, invalid])
    assert summary(recs)[:2] == [
        ("enforce_signing", C, (invalid.id,)),
        ("safetensors_only", C, (dangerous.id, suspicious.id)),
    ]


def test_low_and_info_findings_justify_nothing():
    recs = recommendations(
        [finding("dangerous_file_type", L), finding("model_unsigned", INFO), finding("log_pattern", L)]
    )
    assert [r.key for r in recs] == ["review_pipeline_models", "rotate_credentials"]


@pytest.mark.parametrize(
    ("category", "severity", "key", "priority"),
    [
        ("dependency_changed", C, "pin_dependencies", C),
        ("dependency_missing", H, "pin_dependencies", H),
        ("dependency_added", M, "pin_dependencies", H),
        ("dependency_untrusted_source", H, "pin_dependencies", H),
        ("dependency_typosquat", H, "pin_dependencies", H),
        ("dependency_confusion", C, "pin_dependencies", C),
        ("secret_exposed", H, "purge_leaked_secrets", C),
        ("suspicious_connection", C, "block_egress_investigate_host", C),
        ("suspicious_process", H, "block_egress_investigate_host", H),
        ("behavior_drift", M, "rescore_exposed_predictions", H),
        ("custody_violation", H, "reverify_evidence", H),
        ("custom_code_reference", M, "disable_remote_code", H),
        ("log_pattern", M, "harden_pipeline", M),
    ],
)
def test_each_new_category_justifies_its_recommendation(category, severity, key, priority):
    f = finding(category, severity)
    recs = recommendations([f])
    specific = [r for r in recs if r.key not in ("review_pipeline_models", "rotate_credentials")]
    assert summary(specific) == [(key, priority, (f.id,))]


def test_process_categories_do_not_make_a_compromise():
    recs = recommendations([finding("custody_violation", C), finding("evidence_malformed", C)])
    general = {r.key: r for r in recs if r.key in ("review_pipeline_models", "rotate_credentials")}
    assert {r.priority for r in general.values()} == {M}
    assert all(r.because == () for r in general.values())


def test_texts_name_the_evidence():
    deps = [
        finding("dependency_changed", C, package="numpy"),
        finding("dependency_typosquat", H, package="transfomers"),
    ]
    secret = finding("secret_exposed", H, path="logs/pipeline.log", line=40)
    conn = finding("suspicious_connection", C, peer="203.0.113.7:4444")
    by_key = {r.key: r for r in recommendations([*deps, secret, conn])}
    assert by_key["pin_dependencies"].text.endswith("Packages concerned: numpy, transfomers.")
    assert "(logs/pipeline.log)" in by_key["purge_leaked_secrets"].text
    assert "to 203.0.113.7:4444" in by_key["block_egress_investigate_host"].text


def test_rescoring_is_scoped_by_the_exposure_object():
    drift = finding("behavior_drift", H)
    exposure = {"onset": "2026-11-14T03:12:00Z", "onset_interval": None, "end": "2026-11-19T09:40:33Z",
                "predictions": 4240, "excess_by_class": {"positive": 529}}  # fmt: skip
    (rec,) = [r for r in recommendations([drift], exposure=exposure) if r.key == "rescore_exposed_predictions"]
    assert "(4240 predictions from 2026-11-14T03:12:00Z to 2026-11-19T09:40:33Z)" in rec.text
    (plain,) = [r for r in recommendations([drift]) if r.key == "rescore_exposed_predictions"]
    assert "exposure window with the known-good model" in plain.text


def test_order_is_deterministic_whatever_the_input_order():
    found = [finding(cat, sev) for r in RULES for cat in sorted(r.categories) for sev in (C, M)]
    expected = [r.to_dict() for r in recommendations(found)]
    for seed in range(5):
        shuffled = found[:]
        random.Random(seed).shuffle(shuffled)  # noqa: S311 - test ordering, not security
        assert [r.to_dict() for r in recommendations(shuffled)] == expected
    priorities = [r.priority.rank for r in recommendations(found)]
    assert priorities == sorted(priorities, reverse=True)


def test_duck_typed_findings_are_accepted():
    item = SimpleNamespace(id="X-1", severity="critical", category="dependency_confusion", evidence={"package": "a"})
    assert summary(recommendations([item]))[0] == ("pin_dependencies", C, ("X-1",))


def test_parse_exposure_forms():
    assert parse_exposure(None) is None
    assert parse_exposure({"onset": None, "predictions": None}) is None
    window = parse_exposure({"onset": "2026-11-14T03:12:00Z", "onset_interval": ["2026-11-14T03:00:00Z",
                             "2026-11-14T03:30:00+00:00"], "end": None, "predictions": "4240",
                             "excess_by_class": [{"class": "positive", "excess": 529.4, "excess_low": 480,
                                                  "excess_high": 580}]})  # fmt: skip
    assert window.predictions == 4240 and window.end is None
    assert window.onset_low.isoformat() == "2026-11-14T03:00:00+00:00"
    assert window.excess_by_class == (("positive", 529.4, 480.0, 580.0),)


def test_ground_truth_of_the_tampered_case_when_every_analysis_reports():
    found = [
        finding("model_file_tampered", C), finding("signature_invalid", C), finding("dangerous_file_type", H),
        finding("pickle_dangerous_import", C), finding("dependency_changed", C, package="transformers"),
        finding("dependency_untrusted_source", H, package="safetensors"), finding("secret_exposed", H),
        finding("log_pattern", H), finding("suspicious_connection", C), finding("suspicious_process", H),
        finding("behavior_drift", H), finding("signature_verified", INFO),
    ]  # fmt: skip
    assert [(r.key, r.priority) for r in recommendations(found)] == [
        ("enforce_signing", C),
        ("purge_leaked_secrets", C),
        ("safetensors_only", C),
        ("pin_dependencies", C),
        ("block_egress_investigate_host", C),
        ("rescore_exposed_predictions", H),
        ("harden_pipeline", H),
        ("review_pipeline_models", H),
        ("rotate_credentials", H),
    ]


def test_ground_truth_of_the_poisoned_dependency_case_when_every_analysis_reports():
    found = [
        finding("dependency_changed", C, package="acme-feature-store"),
        finding("dependency_changed", C, package="numpy"),
        finding("dependency_confusion", C, package="acme-feature-store"),
        finding("dependency_typosquat", H, package="transfomers"), finding("suspicious_process", H),
        finding("suspicious_connection", H, peer="198.51.100.23:443"), finding("log_pattern", M),
        finding("signature_verified", INFO),
    ]  # fmt: skip
    recs = recommendations(found)
    assert [(r.key, r.priority) for r in recs] == [
        ("pin_dependencies", C),
        ("block_egress_investigate_host", H),
        ("review_pipeline_models", H),
        ("rotate_credentials", H),
        ("harden_pipeline", M),
    ]
    assert recs[0].text.endswith("Packages concerned: acme-feature-store, numpy, transfomers.")


# ------------------------------------------------------------------------------------------------ sample cases
GENERAL = {"review_pipeline_models", "rotate_credentials"}
#: (required now, allowed once every analysis is wired) per sample case, from evidence-samples/README.md
EXPECTED = {
    "tampered-weights": (
        {"pin_dependencies", "safetensors_only"} | GENERAL,
        {"enforce_signing", "purge_leaked_secrets", "block_egress_investigate_host", "rescore_exposed_predictions",
         "harden_pipeline"},
    ),
    "poisoned-dependency": (
        {"pin_dependencies"} | GENERAL,
        {"block_egress_investigate_host", "harden_pipeline"},
    ),
    "false-alarm": (GENERAL, set()),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def sample(request, tmp_path_factory):
    name = request.param
    return name, Investigation.open(f"{SAMPLES}/{name}", out_dir=tmp_path_factory.mktemp(name))


def test_sample_case_recommendations(sample):
    name, inv = sample
    required, later = EXPECTED[name]
    recs = recommendations(inv.findings)
    keys = {r.key for r in recs}
    assert required <= keys <= required | later, sorted(keys)
    general = {r.key: r.priority for r in recs if r.key in GENERAL}
    assert general == dict.fromkeys(GENERAL, M if name == "false-alarm" else H)
    ids = {f.id for f in inv.findings}
    assert all(set(r.because) <= ids for r in recs)
    assert recs == recommendations(list(reversed(inv.findings)))
    if name == "false-alarm":
        assert summary(recs) == [("review_pipeline_models", M, ()), ("rotate_credentials", M, ())]
