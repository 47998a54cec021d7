"""The inventory cap never drops evidence silently, and file names are valid Unicode (issue 11, points 1-3).

Real trees in tmp_path through ``Case.open`` and ``Investigation.open``: a case one file over the cap (cap lowered
with monkeypatch; one real-size case of MAX_FILES + 1 files), names that are not valid UTF-8 (created from bytes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from workbench import evidence_tree
from workbench.case import Case
from workbench.evidence_tree import MAX_FILES, walk_tree
from workbench.investigation import Investigation

SAMPLES = Path(__file__).resolve().parents[1] / "evidence-samples"
#: protocol 2 pickle calling posix.system('echo pwned'), crafted byte by byte (never pickled)
EVIL = b"\x80\x02cposix\nsystem\nX\n\x00\x00\x00echo pwned\x85R."
#: deeper than any file of the sample: walked last, breadth first
DEEP = "zz/a/b/c/d/evil.pkl"


def _case_one_over(tmp_path: Path) -> tuple[Path, int]:
    """The false-alarm sample (a clean verdict) with a pickle deepest in the tree; returns (case, its file count)."""
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    (case / DEEP).parent.mkdir(parents=True)
    (case / DEEP).write_bytes(EVIL)
    return case, sum(1 for p in case.rglob("*") if p.is_file())


def test_past_the_cap_the_file_is_named_and_the_verdict_is_not_clean(tmp_path, monkeypatch):
    case, total = _case_one_over(tmp_path)
    monkeypatch.setattr(evidence_tree, "MAX_FILES", total - 1)
    opened = Case.open(case)
    assert len(opened.files) == total - 1 and DEEP not in {f.relpath for f in opened.files}
    assert opened.unexamined == [f"{DEEP}: past the inventory cap of {total - 1} files, not examined"]
    assert any("inventory stopped at" in w.reason for w in opened.warnings)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    coverage = inv.conclusions.coverage["evidence"]
    assert coverage.status == "partial" and coverage.unexamined == tuple(opened.unexamined)
    assert inv.conclusions.verdict == "inconclusive"


def test_under_the_cap_the_same_case_is_compromised(tmp_path, monkeypatch):
    case, total = _case_one_over(tmp_path)
    monkeypatch.setattr(evidence_tree, "MAX_FILES", total)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    assert inv.case.unexamined == [] and inv.conclusions.verdict == "compromised"


def test_breadth_first_keeps_the_root_and_counts_the_rest_by_folder(tmp_path, monkeypatch):
    root = tmp_path / "case"
    (root / "bulk" / "a").mkdir(parents=True)
    (root / "case.yaml").write_text("title: t\n")
    for i in range(300):
        (root / "bulk" / "a" / f"{i:04d}.log").write_text("x\n")
    monkeypatch.setattr(evidence_tree, "MAX_FILES", 50)
    monkeypatch.setattr(evidence_tree, "MAX_UNEXAMINED_LISTED", 10)
    warnings, unexamined = [], []
    files = walk_tree(root, warnings, unexamined)
    assert len(files) == 50 and files[-1].relpath == "case.yaml"  # the root file is inside the cap
    assert unexamined[:2] == [
        "bulk/a/0049.log: past the inventory cap of 50 files, not examined",
        "bulk/a/0050.log: past the inventory cap of 50 files, not examined",
    ]
    assert len(unexamined) == 11 and unexamined[-1] == "bulk/: 241 more file(s) past the inventory cap of 50 files, " \
        "not examined"  # fmt: skip
    assert warnings[-1].reason == "inventory stopped at 50 files: 251 file(s) past the cap not examined"


def test_a_folder_too_large_for_the_cap_is_counted_not_listed_whole(tmp_path, monkeypatch):
    root = tmp_path / "case"
    root.mkdir()
    for i in range(40):
        (root / f"{i:02d}.txt").write_text("x")
    monkeypatch.setattr(evidence_tree, "MAX_FILES", 5)
    monkeypatch.setattr(evidence_tree, "_FOLDER_SLACK", 3)
    monkeypatch.setattr(evidence_tree, "MAX_UNEXAMINED_LISTED", 3)
    unexamined: list[str] = []
    files = walk_tree(root, [], unexamined)
    assert [f.relpath for f in files] == ["00.txt", "01.txt", "02.txt", "03.txt", "04.txt"]
    assert unexamined[:3] == [f"{n:02d}.txt: past the inventory cap of 5 files, not examined" for n in (5, 6, 7)]
    assert unexamined[-1] == ".: 32 more file(s) past the inventory cap of 5 files, not examined"


@pytest.fixture
def fast_dir(tmp_path):
    """A folder on tmpfs (/dev/shm) when there is one: creating 200,000 files on a busy disk takes minutes."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="wb-tree-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_real_size_case_of_max_files_plus_one(fast_dir):
    root = fast_dir / "big"
    for d in range(200):
        (root / f"d{d:03d}").mkdir(parents=True)
    base = os.fspath(root)
    for i in range(MAX_FILES):  # 200,000 empty files: os.open is the fast way (about 5 s here)
        os.close(os.open(f"{base}/d{i % 200:03d}/{i}.log", os.O_WRONLY | os.O_CREAT, 0o644))
    (root / "zz").mkdir()
    (root / "zz" / "evil.pkl").write_bytes(EVIL)  # the last folder breadth first: the file past the cap
    case = Case.open(root)
    assert len(case.files) == MAX_FILES
    assert case.unexamined == [f"zz/evil.pkl: past the inventory cap of {MAX_FILES} files, not examined"]


def test_names_that_are_not_utf8_are_shown_with_replacement_and_still_read(tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    base = os.fsencode(case)
    os.mkdir(base + b"/notes\xfe")  # noqa: PTH102 - a bytes path
    with open(base + b"/notes\xfe/evil.pkl", "wb") as fh:  # noqa: PTH123 - a bytes path
        fh.write(EVIL)
    with open(base + b"/logs/a\xff.log", "wb") as fh, open(base + b"/logs/a\xfe.log", "wb") as fh2:  # noqa: PTH123
        fh.write(b"ok\n")
        fh2.write(b"ok\n")
    opened = Case.open(case)
    shown = {f.relpath: f.fs_relpath for f in opened.files if f.fs is not None}
    assert shown == {"logs/a\ufffd.log": os.fsdecode(b"logs/a\xfe.log"),
                     "logs/a\ufffd.log~2": os.fsdecode(b"logs/a\xff.log"),
                     "notes\ufffd/evil.pkl": os.fsdecode(b"notes\xfe/evil.pkl")}  # fmt: skip
    assert all(p.encode("utf-8") for p in (f.relpath for f in opened.files))
    assert {w.path for w in opened.warnings if "not valid UTF-8" in w.reason} == {
        "notes\ufffd", "logs/a\ufffd.log", "logs/a\ufffd.log~2"}  # fmt: skip
    assert opened.path("notes\ufffd/evil.pkl").read_bytes() == EVIL
    out = tmp_path / "out"
    inv = Investigation.open(case, out)  # writes findings.json, timeline.jsonl, comms: no UnicodeEncodeError
    paths = {f.evidence.get("path") for f in inv.findings if f.category == "pickle_dangerous_import"}
    assert paths == {"notes\ufffd/evil.pkl"}
    assert json.loads((out / "findings.json").read_text(encoding="utf-8"))["verdict"] == "compromised"


@pytest.mark.parametrize("name", [b"\xed\xa0\x80.txt", b"\xc3.txt", b"ok\x80\x80.txt"])
def test_each_invalid_name_is_one_warning(tmp_path, name):
    root = tmp_path / "case"
    root.mkdir()
    with open(os.fsencode(root) + b"/" + name, "wb") as fh:  # noqa: PTH123 - a bytes path
        fh.write(b"x")
    warnings: list = []
    (f,) = walk_tree(root, warnings)
    assert "\ufffd" in f.relpath and f.relpath.encode("utf-8")
    assert os.fsencode(root / f.fs_relpath) == os.fsencode(root) + b"/" + name
    assert [w.path for w in warnings] == [f.relpath]


def test_a_special_file_at_inventory_is_named_and_unexamined(tmp_path):
    import os

    from workbench.case import Case

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "ok.log").write_text("2026-11-19T09:05:12Z fine\n")
    os.mkfifo(tmp_path / "logs" / "build.log")
    case = Case.open(tmp_path)
    assert [f.relpath for f in case.files] == ["logs/ok.log"]
    assert case.unexamined == ["logs/build.log: special file (device, FIFO or socket), never opened"]
