"""The analysis options registry: the one list of names, checked before anything is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench import parameters
from workbench.parameters import REGISTRY, ParameterError, parse_assignments, validate, value

ROOT = Path(__file__).resolve().parents[1]
#: how analyses read an option: ctx.parameters.get("x"), params.get("x"), parameters.get("x"), option(params, "x")
READ = re.compile(r"""(?:parameters|params)\.get\(\s*["'](\w+)["']|\boption\(\s*\w+\s*,\s*["'](\w+)["']""")


def _reads() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "workbench").rglob("*.py"):
        for m in READ.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1) or m.group(2), set()).add(path.relative_to(ROOT).as_posix())
    return found


def _section_files(key: str) -> tuple[str, ...]:
    """Where a section's analysis lives: its module file, or its package folder."""
    from workbench.sections import SECTIONS

    module = SECTIONS[key].analyse.partition(":")[0].replace(".", "/")
    return (f"{module}.py", f"{module}/")


def test_every_option_an_analysis_reads_is_registered_and_every_registered_one_is_read():
    reads = _reads()
    assert set(reads) - set(REGISTRY) == set(), "an analysis reads an option the registry does not know"
    assert set(REGISTRY) - set(reads) == set(), "a registered option no analysis reads"
    for name, p in REGISTRY.items():
        where = _section_files(p.section)
        assert any(f == where[0] or f.startswith(where[1]) for f in reads[name]), f"{name} is not read by {p.section}"


def test_defaults_are_the_analyses_defaults():
    import inspect

    from workbench.drift.analysis import analyse_stream
    from workbench.drift.metrics import ALPHA, MIN_EFFECT

    assert value({}, "drift_alpha") == ALPHA and value({}, "drift_min_effect") == MIN_EFFECT
    assert value({}, "drift_window") == inspect.signature(analyse_stream).parameters["window"].default
    assert value({"drift_alpha": 0.01}, "drift_alpha") == 0.01
    with pytest.raises(KeyError):
        value({}, "not_registered")


@pytest.mark.parametrize(
    "text", ["1h", "30min", "1d", " 2 days ", "15s", "500", "1", "0", "-1", "0h", "1w", "fortnight", "1.5h", "", "h"]
)
def test_window_check_agrees_with_the_drift_analysis(text):
    from workbench.drift.windows import parse_window

    try:
        parse_window(text)
        accepted = True
    except ValueError:
        accepted = False
    try:
        validate({"drift_window": text})
        checked = True
    except ParameterError:
        checked = False
    assert checked == accepted


def test_cli_text_is_parsed_by_kind(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    got = parse_assignments([
        "network_allowlist=10.0.0.0/8, 192.0.2.1",
        "network_allowlist=198.51.100.0/24",  # a list option given twice is extended
        "drift_alpha=0.01",
        "drift_window=1h",
        f"log_rules={rules}",
        "model_servers=",
    ])  # fmt: skip
    assert got == {
        "network_allowlist": ["10.0.0.0/8", "192.0.2.1", "198.51.100.0/24"],
        "drift_alpha": 0.01,
        "drift_window": "1h",
        "log_rules": [str(rules.resolve())],
        "model_servers": [],
    }


def test_relative_folders_become_absolute(tmp_path, monkeypatch):
    (tmp_path / "rules").mkdir()
    monkeypatch.chdir(tmp_path)
    assert validate({"log_rules": "rules"}) == {"log_rules": [str(tmp_path / "rules")]}


def test_unknown_name_lists_every_valid_one():
    with pytest.raises(ParameterError) as err:
        parse_assignments(["drift_windw=1h"])
    message = str(err.value)
    assert "drift_windw" in message and "unknown" in message and "did you mean drift_window?" in message
    assert all(name in message for name in REGISTRY)


@pytest.mark.parametrize(
    ("pair", "needle"),
    [
        ("drift_alpha=abc", "expected a number"),
        ("drift_alpha=1.5", "strictly between 0 and 1"),
        ("drift_min_effect=-0.1", "between 0 and 1"),
        ("drift_window=fortnight", "duration"),
        ("drift_window=0", "at least 1"),
        ("log_rules=/no/such/folder", "not an existing folder"),
        ("drift_alpha", "NAME=VALUE"),
        ("=3", "NAME=VALUE"),
    ],
)
def test_values_of_the_wrong_kind_are_refused(pair, needle):
    with pytest.raises(ParameterError, match=re.escape(needle)):
        parse_assignments([pair])


def test_a_single_valued_option_given_twice_is_refused():
    with pytest.raises(ParameterError, match="given twice"):
        parse_assignments(["drift_alpha=0.01", "drift_alpha=0.02"])


def test_python_values_from_the_notebook_are_checked_too():
    assert validate({"drift_alpha": 0.1, "trusted_index_hosts": ["pypi.acme.internal"]}) == {
        "drift_alpha": 0.1,
        "trusted_index_hosts": ["pypi.acme.internal"],
    }
    with pytest.raises(ParameterError, match="boolean"):
        validate({"drift_alpha": True})
    with pytest.raises(ParameterError, match="list of strings"):
        validate({"model_servers": [1, 2]})
    with pytest.raises(ParameterError, match="unknown option"):
        validate({"WINDOW": 3600})


def test_readme_and_help_list_the_registry():
    from click.testing import CliRunner

    from workbench.cli import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert parameters.markdown_table() in readme, "README's option table is not the registry's (regenerate it)"
    helped = CliRunner().invoke(cli, ["investigate", "--help"])
    assert helped.exit_code == 0
    for line in parameters.help_lines():
        assert line.strip() in helped.stdout
