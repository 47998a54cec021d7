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


def _files(root, *relpaths):
    for rel in relpaths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_every_model_folder_is_found_paired_and_marked_model(tree):
    from workbench.model_pairs import ModelPair

    _files(tree, "models/suspect/a/model.safetensors", "models/suspect/b/vocab.json", "models/reference/a/w.bin",
           "models/reference/c/config.json", "models/notes.txt")  # fmt: skip
    case = Case.open(tree)
    assert case.model_pairs == [
        ModelPair("a", "models/suspect/a", "models/reference/a", True),
        ModelPair("b", "models/suspect/b", None),
        ModelPair("c", None, "models/reference/c"),
    ]
    assert case.primary_pair == case.model_pairs[0]
    assert case.model_dirs == {"suspect": "models/suspect/a", "reference": "models/reference/a"}
    assert case.model_dir("reference") == tree.resolve() / "models/reference/a"
    roles = {f.relpath: f.role for f in case.files}
    assert {r for p, r in roles.items() if p.startswith("models/") and p != "models/notes.txt"} == {"model"}
    assert roles["models/notes.txt"] == "evidence" and roles["logs/ci.log"] == "evidence"


def test_symlinked_and_empty_folders_are_never_models(tree, tmp_path):
    outside = tmp_path / "outside-model"
    _files(outside, "model.safetensors")
    _files(tree, "models/suspect/real/model.safetensors")
    (tree / "models/suspect/link").symlink_to(outside, target_is_directory=True)
    (tree / "models/suspect/empty").mkdir()
    case = Case.open(tree)
    assert [p.suspect for p in case.model_pairs] == ["models/suspect/real"]
    assert any(w.path == "models/suspect/link" and "leaves the evidence tree" in w.reason for w in case.warnings)


def test_case_yaml_model_paths_name_the_primary_or_are_refused_with_a_warning(tree):
    _files(tree, "models/suspect/a/w.bin", "models/suspect/b/w.bin", "models/reference/b/w.bin")
    (tree / "case.yaml").write_text("suspect_model: models/suspect/b\n")
    case = Case.open(tree)
    assert [(p.name, p.primary, p.reference) for p in case.model_pairs] == [
        ("b", True, "models/reference/b"),
        ("a", False, None),
    ]
    (tree / "case.yaml").write_text("suspect_model: ../../etc\nreference_model: '.'\n")
    case = Case.open(tree)
    reasons = [w.reason for w in case.warnings if w.path == "case.yaml"]
    assert reasons == ["suspect_model leaves the evidence tree", "reference_model '.' is the case folder itself"]
    assert case.primary_pair.suspect == "models/suspect/a"  # back to the default rule
