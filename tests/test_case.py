import os
from datetime import UTC, datetime

import pytest

from workbench.case import Case, safe_incident_id
from workbench.errors import EvidenceError, MalformedEvidence


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "case"
    (root / "logs").mkdir(parents=True)
    (root / "actions.log").write_text("[2026-11-19T09:05:12Z] ASSESS: start\n")
    (root / "logs" / "ci.log").write_text("ok\n")
    return root


def test_inventory_lists_regular_files_sorted(tree):
    case = Case.open(tree)
    assert [f.relpath for f in case.files] == ["actions.log", "logs/ci.log"]
    assert case.files[0].size == len("[2026-11-19T09:05:12Z] ASSESS: start\n")
    assert case.meta.incident_id == "case" and case.warnings == []


def test_symlinks_out_and_in_are_recorded_not_followed(tree, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("not evidence")
    (tree / "escape").symlink_to(secret)
    (tree / "loop").symlink_to(tree)
    (tree / "inner").symlink_to("actions.log")
    case = Case.open(tree)
    assert "escape" not in {f.relpath for f in case.files}
    reasons = {w.path: w.reason for w in case.warnings}
    assert "leaves the evidence tree" in reasons["escape"]
    assert "leaves the evidence tree" not in reasons["inner"] and "not followed" in reasons["inner"]
    assert "loop" in reasons


def test_fifo_is_skipped_without_blocking(tree):
    os.mkfifo(tree / "pipe")
    case = Case.open(tree)
    assert any(w.path == "pipe" and "special file" in w.reason for w in case.warnings)


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_bad_case_paths(tmp_path, kind):
    target = tmp_path / "x"
    if kind == "file":
        target.write_text("x")
    elif kind == "empty":
        (target / "sub").mkdir(parents=True)
    with pytest.raises(EvidenceError) as info:
        Case.open(target)
    assert {"missing": "does not exist", "file": "not a directory", "empty": "no regular file"}[kind] in str(info.value)


def test_case_yaml_metadata(tree):
    (tree / "case.yaml").write_text(
        "incident_id: INC-2026-0142\ntitle: Tampered\nseverity: Critical\ncommander: Dana\n"
        "affected_models: m1\ndetection_time: '2026-11-19T10:40:00+02:00'\nmystery: 1\n"
    )
    case = Case.open(tree)
    assert case.incident_id == "INC-2026-0142"
    assert case.meta.severity.value == "critical" and case.meta.affected_models == ["m1"]
    assert case.meta.detection_time == datetime(2026, 11, 19, 8, 40, tzinfo=UTC)
    assert any("mystery" in w.reason for w in case.warnings)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("severity: [1]\n", "'severity'"),
        ("detection_time: yesterday\n", "'detection_time'"),
        ("- a\n", "mapping"),
        ("a: [\n", "YAML"),
        ("naive_timezone: Mars/Olympus\n", "naive_timezone"),
    ],
)
def test_case_yaml_errors_name_the_key(tree, text, needle):
    (tree / "case.yaml").write_text(text)
    with pytest.raises(MalformedEvidence) as info:
        Case.open(tree)
    assert needle in str(info.value) and "case.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        ("INC-1", "INC-1", False),
        ("../../etc/passwd", "etc-passwd", True),
        ("a b;rm -rf /", "a-b-rm-rf", True),
        ("$(reboot)", "reboot", True),
        ("..", "incident", True),
        (".hidden", "hidden", True),
    ],
)
def test_safe_incident_id(raw, expected, changed):
    assert safe_incident_id(raw) == (expected, changed)


def test_incident_id_with_separators_is_normalised(tree):
    (tree / "case.yaml").write_text("incident_id: ../../tmp/evil\n")
    case = Case.open(tree)
    assert case.incident_id == "tmp-evil" and "/" not in case.incident_id
    assert any("normalised" in w.reason for w in case.warnings)


def test_model_dirs_found_by_convention(tree):
    (tree / "models" / "suspect" / "m1").mkdir(parents=True)
    (tree / "models" / "suspect" / "m1" / "w.bin").write_bytes(b"x")
    case = Case.open(tree)
    assert case.model_dirs == {"suspect": "models/suspect/m1"}
    assert {f.relpath: f.role for f in case.files}["models/suspect/m1/w.bin"] == "model"


def test_path_refuses_escape(tree):
    case = Case.open(tree)
    with pytest.raises(EvidenceError):
        case.path("../outside")
