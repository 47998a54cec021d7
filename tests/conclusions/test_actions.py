"""Actions now and preventive measures: each derived from findings, citing them, with concrete targets."""

from __future__ import annotations

from tests.conclusions.conftest import action, coverage, finding, outputs, stream, t
from workbench.conclusions import derive_conclusions


def conclude(findings, events=(), outs=None, models=("m1",)):
    return derive_conclusions(findings, list(events), coverage(), outputs=outs, models=models, generated_at=t(900))


def by_key(actions):
    return {a.key: a for a in actions}


def test_compromised_model_without_isolation_must_be_contained_and_rolled_back():
    edit = finding("tensor_modified", "critical", "rank-1 edit")
    now = by_key(conclude([edit]).actions)
    assert now["contain_model"].targets == ("m1",) and now["contain_model"].because == (edit.id,)
    assert "roll_back_model" in now
    isolated = [action(t(10), "ISOLATE", "Isolating m1", 1, "isolate"), action(t(11), "ROLLBACK", "back", 2,
                "rollback"), action(t(11), "INFO", "Model rolled back to: /archive/m1", 3)]  # fmt: skip
    after = by_key(conclude([edit], isolated).actions)
    assert "contain_model" not in after and "roll_back_model" not in after


def test_block_hosts_lists_the_attackers_hosts_and_cites_the_findings():
    conn = finding("suspicious_connection", "critical", "beacon", peer="198.51.100.23:443")
    conf = finding("dependency_confusion", "critical", "acme 9.9.9", package="acme", version="9.9.9",
                   extra_index="https://pypi.attacker.example/simple")  # fmt: skip
    now = by_key(conclude([conn, conf]).actions)
    block = now["block_hosts"]
    assert set(block.targets) == {"198.51.100.23", "pypi.attacker.example"}
    assert set(block.because) == {conn.id, conf.id}
    assert now["remove_packages"].targets == ("acme==9.9.9",)
    assert "investigate_hosts" in now


def test_rotate_exactly_the_exposed_credentials():
    secret = finding("secret_exposed", "critical", "Cosign key password in clear: 6 line(s)", at=t(5),
                     path="logs/ci.log", fingerprints="sha256:00aa11bb22cc")  # fmt: skip
    rotate = by_key(conclude([secret]).actions)["rotate_credentials"]
    assert rotate.targets == ("Cosign key password in clear sha256:00aa11bb22cc",)
    assert "since 2026-11-10T05:00:00Z" in rotate.text and "logs/ci.log" in rotate.text


def test_rescore_names_the_exposure_window_count():
    log = finding("log_pattern", "critical", "curl | sh", at=t(100), path="logs/ci.log")
    edit = finding("tensor_modified", "critical", "edit")
    c = conclude([log, edit], outs=outputs(stream(flip_after=100)))
    rescore = by_key(c.actions)["rescore_predictions"]
    assert f"{c.exposure.predictions:,} predictions" in rescore.text
    assert rescore.because == (edit.id,)


def test_clean_case_gets_only_routine_checks_at_medium():
    c = conclude([finding("log_pattern", "low", "curl -o")])
    assert [(a.key, a.priority.value) for a in c.actions] == [("review_pipeline_models", "medium"),
                                                              ("rotate_pipeline_credentials", "medium")]  # fmt: skip
    assert c.recommendations == ()


def test_preventive_measures_follow_their_categories():
    c = conclude([finding("model_unsigned", "medium"), finding("pickle_dangerous_import", "critical"),
                  finding("dependency_typosquat", "high", package="transfomers", version="4.38.0")])  # fmt: skip
    assert [a.key for a in c.recommendations] == ["enforce_signing", "safetensors_only", "pin_dependencies"]
    assert all(a.kind == "preventive" and a.because for a in c.recommendations)


def test_a_plain_pickle_format_notice_asks_for_safetensors_without_making_the_case_suspicious():
    notice = conclude([finding("dangerous_file_type", "low")])
    assert [a.key for a in notice.recommendations] == ["safetensors_only"]
    assert notice.verdict != "suspicious" and notice.verdict != "compromised"
    code_file = conclude([finding("dangerous_file_type", "high")])
    assert code_file.verdict == "suspicious"
    assert [a.key for a in code_file.recommendations] == ["safetensors_only"]


def test_an_unsettled_signature_asks_for_the_trust_material_and_names_the_signer():
    offline = finding("signature_unverifiable_offline", "medium", "m1: signed by release@example.com, not verifiable "
                      "offline", signer="release@example.com")  # fmt: skip
    now = by_key(conclude([offline]).actions)
    verify = now["verify_signature"]
    assert verify.because == (offline.id,) and verify.targets == ("m1",) and verify.priority.value == "medium"
    assert "confirm that release@example.com is the signer you expect" in verify.text
    verified = finding("signature_verified", "info", "m1: signature verified, 3 files match")
    assert "verify_signature" not in by_key(conclude([verified]).actions)
    assert "verify_signature" not in by_key(conclude([finding("model_unsigned", "critical", "unsigned")]).actions)


def test_installed_package_findings_ask_to_remove_the_package_and_the_hook_and_rotate_what_it_could_read():
    modified = finding("package_file_modified", "critical", "acme 1.0: 1 file differs", package="acme", version="1.0",
                       path="acme/_rt.py", environment="python-env/1", sha256="ab" * 32)  # fmt: skip
    hook = finding("import_hook", "critical", "x.pth runs code", path="x.pth", environment="python-env/1")
    now = by_key(conclude([modified, hook]).actions)
    assert now["remove_packages"].targets == ("acme==1.0",) and now["remove_packages"].because == (modified.id,)
    assert "uninstall it from the captured environments" in now["remove_packages"].text
    assert now["remove_startup_hooks"].targets == ("x.pth (python-env/1)",)
    assert now["remove_startup_hooks"].because == (hook.id,)
    assert now["rotate_package_tokens"].targets == ("acme",)
    assert set(now["rotate_package_tokens"].because) == {modified.id, hook.id}
    assert "pin_dependencies" in by_key(conclude([modified, hook]).recommendations)


def test_a_shipped_hook_reviewed_at_low_asks_for_nothing_and_a_missing_file_removes_nothing():
    low = finding("import_hook", "low", "indented code in x.pth", path="x.pth", environment="python-env/1")
    missing = finding("package_file_missing", "low", "acme 1.0: 3 files missing", package="acme", version="1.0")
    now = by_key(conclude([low, missing]).actions)
    assert not {"remove_packages", "remove_startup_hooks", "rotate_package_tokens"} & set(now)
