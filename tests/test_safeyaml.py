"""workbench.safeyaml: YAML from evidence with aliases, depth and size bounded; every YAML reader uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workbench import safeyaml
from workbench.case import Case
from workbench.errors import MalformedEvidence, RuleError
from workbench.rulepack.rules import load_rules


def alias_bomb(key: str = "affected_models", levels: int = 9) -> str:
    """The billion-laughs document of the issue (about 400 bytes): 9 anchors, each repeating the previous 9 times."""
    lines = ['a: &a ["lolololololololol"' + ',"lolololol"' * 8 + "]"]
    names = "abcdefghijklmnopqrstuvwxyz"
    for i in range(1, levels - 1):
        lines.append(f"{names[i]}: &{names[i]} [" + ",".join([f"*{names[i - 1]}"] * 9) + "]")
    lines.append(f"{key}: [" + ",".join([f"*{names[levels - 2]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_the_bomb_of_the_issue_is_refused_naming_the_file():
    text = alias_bomb()
    assert len(text) < 420
    with pytest.raises(safeyaml.YAMLLimitError, match="alias bomb") as err:
        safeyaml.load(text, source="case.yaml")
    assert str(err.value).startswith("case.yaml: ")
    assert isinstance(err.value, yaml.YAMLError)  # every `except yaml.YAMLError` handler reports it


def test_plain_yaml_and_modest_aliases_load():
    doc = safeyaml.load("base: &b {x: 1, y: [a, b]}\nuse: *b\nmerged:\n  <<: *b\n  z: 2\n")
    assert doc == {"base": {"x": 1, "y": ["a", "b"]}, "use": {"x": 1, "y": ["a", "b"]},
                   "merged": {"x": 1, "y": ["a", "b"], "z": 2}}  # fmt: skip
    assert safeyaml.load("") is None
    assert safeyaml.load(b"- 1\n- 2\n") == [1, 2]


@pytest.mark.parametrize(
    ("text", "limits", "words"),
    [
        ("a: &a [*a]\n", safeyaml.LIMITS, "recursive alias"),
        ("[" * 65 + "]" * 65, safeyaml.LIMITS, "nested deeper than 64"),
        ("a: &a 1\nb: [" + ",".join(["*a"] * 11) + "]\n", safeyaml.Limits(max_aliases=10), "more than 10 aliases"),
        ("[" + ",".join(f"&x{i} {i}" for i in range(11)) + "]", safeyaml.Limits(max_anchors=10), "anchors"),
        ("a: " + "x" * 100, safeyaml.Limits(max_bytes=50), "larger than 50 bytes"),
        ("[" + ",".join(["1"] * 20) + "]", safeyaml.Limits(max_nodes=10), "more than 10 nodes"),
    ],
)
def test_each_bound(text: str, limits: safeyaml.Limits, words: str):
    with pytest.raises(safeyaml.YAMLLimitError, match=words):
        safeyaml.load(text, limits=limits)


def test_python_tags_are_not_constructed():
    with pytest.raises(yaml.YAMLError):
        safeyaml.load("!!python/object/apply:os.system ['echo pwned']")


def test_load_file_reads_through_safeio(tmp_path: Path):
    (tmp_path / "ok.yaml").write_text("a: 1\n")
    assert safeyaml.load_file(tmp_path / "ok.yaml") == {"a": 1}
    (tmp_path / "link.yaml").symlink_to(tmp_path / "ok.yaml")
    with pytest.raises(OSError, match="symbolic link"):
        safeyaml.load_file(tmp_path / "link.yaml")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "actions.log").write_text("[2026-11-19T09:05:12Z] ASSESS: start\n")
    return tmp_path


def test_case_yaml_bomb_is_refused_and_the_run_goes_on_with_defaults(tree: Path):
    """A bomb is hostile input, not a typo: defaults, a warning naming case.yaml, and case.yaml unexamined."""
    (tree / "case.yaml").write_text(alias_bomb())
    case = Case.open(tree)
    assert case.meta.title == "" and case.meta.affected_models == []
    assert any(w.path == "case.yaml" and "alias bomb" in w.reason for w in case.warnings)
    assert len(case.unexamined) == 1 and case.unexamined[0].startswith("case.yaml: refused (")


def test_case_yaml_syntax_error_is_still_malformed_evidence(tree: Path):
    (tree / "case.yaml").write_text("title: [unclosed\n")
    with pytest.raises(MalformedEvidence) as err:
        Case.open(tree)
    assert err.value.path == "case.yaml"


def test_case_yaml_with_anchors_still_works(tree: Path):
    (tree / "case.yaml").write_text("title: &t Model tampering\naffected_models: [m1]\nnotes: *t\n")
    assert Case.open(tree).meta.title == "Model tampering"


def test_rule_pack_bomb_is_a_rule_error(tmp_path: Path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb(key="rules"))
    with pytest.raises(RuleError, match="alias bomb") as err:
        load_rules(tmp_path)
    assert "bomb.yaml" in str(err.value)


def test_an_oversized_case_yaml_is_refused_like_a_bomb(tree: Path):
    from workbench.case import MAX_CASE_YAML

    (tree / "case.yaml").write_text("title: x\nnotes: " + "a" * (MAX_CASE_YAML + 10) + "\n")
    case = Case.open(tree)
    assert case.meta.title == "" and case.unexamined[0].startswith("case.yaml: refused (larger than")
