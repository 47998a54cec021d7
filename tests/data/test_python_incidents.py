"""The incident feed: every shipped indicator against its examples, version lookups, team feeds, invalid feeds."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from workbench.data.python_incidents import BUILTIN_FILE, IntelError, builtin_intel, load_intel
from workbench.errors import RuleError

INTEL = builtin_intel()
CASES = [(e.id, i.name, line, True) for e, i in INTEL.indicators for line in i.rule.examples_match] + [
    (e.id, i.name, line, False) for e, i in INTEL.indicators for line in i.rule.examples_no_match
]


def _indicator(entry_id: str, name: str):
    entry = INTEL.get(entry_id)
    assert entry is not None
    return entry, next(i for i in entry.indicators if i.name == name)


def test_the_shipped_feed_names_the_incidents_of_issue_17() -> None:
    ids = {e.id for e in INTEL}
    assert {"pytorch-torchtriton-2022", "ultralytics-2024", "litellm-2026", "lightning-2026"} <= ids
    assert "tj-actions-changed-files-2025" in ids
    assert all(e.source.startswith("https://") and e.file == str(BUILTIN_FILE) for e in INTEL)
    assert len(INTEL.indicators) >= 10
    kinds = {i.kind for _, i in INTEL.indicators}
    assert kinds == {"log", "host"}


@pytest.mark.parametrize(("entry_id", "name", "line", "should_match"), CASES)
def test_every_indicator_example_and_counter_example(entry_id: str, name: str, line: str, should_match: bool) -> None:
    entry, indicator = _indicator(entry_id, name)
    assert indicator.matches(line) is should_match
    hits = INTEL.match_line(line)
    assert ((entry, indicator) in hits) is should_match
    assert indicator.id == f"{entry_id}.{name}"


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("ultralytics", "8.3.41", ["ultralytics-2024"]),
        ("Ultralytics", "8.3.46", ["ultralytics-2024"]),
        ("ULTRALYTICS", "8.3.42.0", ["ultralytics-2024"]),  # PEP 440: 8.3.42.0 == 8.3.42
        ("ultralytics", "8.3.40", []),
        ("ultralytics", "8.3.43", []),
        ("ultralytics_", "8.3.41", []),  # PEP 503 keeps a trailing separator: 'ultralytics-' is another name
        ("torchtriton", "3.0.0", ["pytorch-torchtriton-2022"]),
        ("LiteLLM", "1.82.7", ["litellm-2026"]),
        ("litellm", "1.82.6", []),
        ("Lightning", "2.6.3", ["lightning-2026"]),
        ("lightning", "2.6.1", []),
        ("not-a-package", "1.0", []),
    ],
)
def test_compromised_pypi_versions(name: str, version: str, expected: list[str]) -> None:
    assert [e.id for e in INTEL.compromised(name, version)] == expected


def test_compromised_action_by_range() -> None:
    hit = INTEL.compromised("tj-actions/Changed-Files", "v45.0.7", "github-actions")
    assert [e.id for e in hit] == ["tj-actions-changed-files-2025"]
    assert INTEL.compromised("tj-actions/changed-files", "46.0.1", "github-actions") == []
    assert INTEL.compromised("tj-actions/changed-files", "45.0.7") == []  # not a PyPI package


def test_match_line_filters_by_kind() -> None:
    line = "/opt/venv/lib/python3.10/site-packages/triton/runtime/triton"
    assert [i.id for _, i in INTEL.match_line(line)] == ["pytorch-torchtriton-2022.runtime-binary"]
    assert INTEL.match_line(line, kind="log") == []
    assert INTEL.match_line("Collecting numpy==1.26.4") == []


def _feed(folder: Path, body: str, name: str = "team.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


TEAM_ENTRY = textwrap.dedent("""\
    version: 1
    entries:
      - id: acme-internal-2026
        title: Our leaked wheel
        date: 2026-01-15
        source: https://security.example.org/advisories/2026-01
        packages:
          - name: Acme_Tools
            versions: ["1.2.3"]
            sha256: ["{sha}"]
        indicators:
          - name: beacon
            kind: log
            title: Beacon to the attacker host
            severity: high
            pattern: '\\bbeacon\\.evil\\.example\\b'
            description: The dropped loader calls home.
            example: ["GET https://beacon.evil.example/x"]
            counter_example: ["GET https://pypi.org/simple/acme-tools/"]
    """).replace("{sha}", "a" * 64)


def test_a_team_feed_adds_an_entry(tmp_path: Path) -> None:
    _feed(tmp_path / "intel", TEAM_ENTRY)
    intel = load_intel([tmp_path / "intel"])
    assert len(intel) == len(INTEL) + 1
    assert [e.id for e in intel.compromised("acme.tools", "1.2.3")] == ["acme-internal-2026"]
    assert intel.compromised("acme-tools", "1.2.4") == []
    (entry, indicator), *rest = intel.match_line("curl beacon.evil.example")
    assert (entry.id, indicator.name, rest) == ("acme-internal-2026", "beacon", [])
    assert entry.file == str(tmp_path / "intel" / "team.yaml")
    assert entry.packages[0].sha256 == ("a" * 64,)
    assert entry.date == "2026-01-15"  # YAML reads it as a date; kept as text
    assert [e.id for e in intel.compromised("ultralytics", "8.3.41")] == ["ultralytics-2024"]


def test_a_team_feed_replaces_an_entry_with_the_same_id(tmp_path: Path) -> None:
    body = TEAM_ENTRY.replace("acme-internal-2026", "ultralytics-2024")
    _feed(tmp_path / "intel", body)
    intel = load_intel([tmp_path / "intel"])
    assert len(intel) == len(INTEL)
    assert intel.compromised("ultralytics", "8.3.41") == []
    assert [e.id for e in intel.compromised("acme-tools", "1.2.3")] == ["ultralytics-2024"]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("\n    source: https://security.example.org/advisories/2026-01\n", "\n", "'source' is required"),
        ('example: ["GET https://beacon.evil.example/x"]', 'example: ["GET https://beacon.good.example/x"]',
         "example does not match"),
        ('counter_example: ["GET https://pypi.org/simple/acme-tools/"]', 'counter_example: ["beacon.evil.example"]',
         "counter-example matches"),
        ("'\\bbeacon\\.evil\\.example\\b'", "'beacon(['", "not a valid regular expression"),
        ('versions: ["1.2.3"]', 'versions: ["one.two"]', "not a PEP 440 version"),
        ("kind: log", "kind: disk", "'kind' must be one of"),
        ('sha256: ["' + "a" * 64 + '"]', 'sha256: ["abc"]', "64 hex digits"),
        ("        title: Beacon", "        colour: red\n        title: Beacon", "unknown key(s) 'colour'"),
    ],
)  # fmt: skip
def test_invalid_team_feeds_are_refused_naming_file_and_entry(tmp_path: Path, old: str, new: str, reason: str) -> None:
    assert old in TEAM_ENTRY
    path = _feed(tmp_path / "intel", TEAM_ENTRY.replace(old, new))
    with pytest.raises(IntelError) as info:
        load_intel([tmp_path / "intel"])
    message = str(info.value)
    assert message.startswith(f"{path} (entry acme-internal-2026): ")
    assert reason in message
    assert info.value.entry_id == "acme-internal-2026"
    assert isinstance(info.value, RuleError)  # handled wherever rule errors are


def test_an_oversized_pattern_is_refused(tmp_path: Path) -> None:
    body = TEAM_ENTRY.replace("'\\bbeacon\\.evil\\.example\\b'", "'beacon\\.evil\\.example" + "x?" * 2500 + "'")
    _feed(tmp_path / "intel", body)
    with pytest.raises(IntelError, match=r"\(entry acme-internal-2026\): indicator beacon: 'pattern' is longer"):
        load_intel([tmp_path / "intel"])


def test_duplicate_ids_in_one_folder_and_bad_folders(tmp_path: Path) -> None:
    _feed(tmp_path / "intel", TEAM_ENTRY, "a.yaml")
    second = _feed(tmp_path / "intel", TEAM_ENTRY, "b.yaml")
    with pytest.raises(
        IntelError, match=rf"^{re.escape(str(second))} \(entry acme-internal-2026\): duplicate entry id \(also in a"
    ):
        load_intel([tmp_path / "intel"])
    with pytest.raises(IntelError, match="does not exist"):
        load_intel([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntelError, match=r"holds no \.yaml"):
        load_intel([tmp_path / "empty"])


def test_hostile_yaml_is_refused_before_any_entry(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    path = _feed(tmp_path / "intel", bomb)
    with pytest.raises(IntelError, match=rf"^{re.escape(str(path))}: not valid YAML"):
        load_intel([tmp_path / "intel"])
    _feed(tmp_path / "intel", "- !!python/object/apply:os.system ['true']\n")
    with pytest.raises(IntelError, match="not valid YAML"):
        load_intel([tmp_path / "intel"])


def test_intel_for_loads_a_feed_folder_once_and_again_when_a_feed_changes(tmp_path):
    import os

    from workbench.data.python_incidents import builtin_intel, intel_for

    assert intel_for(()) is builtin_intel()
    feed = tmp_path / "team.yaml"
    entry = ("version: 1\nentries:\n  - id: team-pkg\n    title: {t}\n    source: https://intel.example/x\n"
             "    packages:\n      - name: acme-x\n        versions: ['1.0']\n")  # fmt: skip
    feed.write_text(entry.format(t="First"))
    first = intel_for([tmp_path])
    assert intel_for([tmp_path]) is first and first.get("team-pkg").title == "First"
    feed.write_text(entry.format(t="Second title"))
    os.utime(feed, ns=(feed.stat().st_atime_ns, feed.stat().st_mtime_ns + 1_000_000))
    assert intel_for([tmp_path]).get("team-pkg").title == "Second title"
