"""capture_environment on a site-packages holding a real installed distribution (idna, copied from this venv), read
back through verify_site_packages; and contain assess capturing the current interpreter's environment."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from workbench.ops import assess as assess_mod
from workbench.ops.assess import assess
from workbench.ops.containment import Roots, open_incident
from workbench.ops.pyenv_capture import capture_environment
from workbench.pyenv.record import KIND_MODIFIED, KIND_PTH_EXEC, verify_site_packages
from workbench.pyenv.tree import CAPTURE_FILE, CAPTURE_FORMAT, FILES_FILE, TREE_DIR

DIST = importlib.metadata.distribution("idna")
INFO = Path(str(DIST._path)).name  # type: ignore[attr-defined]  # the dist-info folder
HASHED = [f for f in DIST.files or [] if f.hash is not None and not str(f).startswith("..")]
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 57


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site-packages folder: idna and its dist-info, a .pth with an import line, a symlink, an ELF file."""
    root = tmp_path / "live" / "site-packages"
    root.mkdir(parents=True)
    shutil.copytree(Path(str(DIST.locate_file("idna"))), root / "idna")
    shutil.copytree(Path(str(DIST._path)), root / INFO)  # type: ignore[attr-defined]
    (root / "hook.pth").write_text("/opt/extra\nimport os; os.system('id')\n")
    (root / "native.bin").write_bytes(ELF)
    (root / "idna-link").symlink_to("/etc/passwd")
    os.utime(root / INFO / "RECORD", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    return root


def rows(dest: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, (dest / FILES_FILE).read_text().splitlines())}


def regular_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_inventory_lists_every_file_and_copies_only_what_the_checks_read(site: Path, tmp_path: Path) -> None:
    dest = tmp_path / "incident" / "python-env" / "1"
    summary = capture_environment(site, dest, python_version="3.11.7")
    files = regular_files(site)
    listed = rows(dest)
    header = json.loads((dest / CAPTURE_FILE).read_text())
    assert header["format"] == CAPTURE_FORMAT and header["version"] == 1
    assert header["site_packages"] == str(site) and header["python"] == "3.11.7"
    assert header["captured_at"].endswith("Z")
    assert (header["files"], header["symlinks"], header["copied"]) == (len(files), 1, summary.copied)
    assert header["bytes"] == sum(p.stat().st_size for p in files.values())
    assert list(listed) == sorted(listed)  # deterministic order
    assert listed["idna-link"] == {"path": "idna-link", "symlink": "/etc/passwd"}  # listed, never followed
    for rel, path in files.items():
        row = listed[rel]
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), rel
        assert (row["size"], row["mtime_ns"]) == (path.stat().st_size, path.stat().st_mtime_ns), rel
        assert row["binary"] is (rel == "native.bin"), rel
    copied = set(regular_files(dest / TREE_DIR))
    assert copied == {rel for rel in files if rel.startswith(f"{INFO}/")} | {"hook.pth"}
    assert {f"{INFO}/RECORD", f"{INFO}/METADATA", f"{INFO}/WHEEL"} <= copied
    assert not any(rel.startswith("idna/") for rel in copied)  # package modules are listed, not copied
    copy = dest / TREE_DIR / INFO / "RECORD"
    assert copy.read_bytes() == (site / INFO / "RECORD").read_bytes()
    assert copy.stat().st_mtime_ns == 1_600_000_000_123_456_789  # install time from the RECORD mtime survives
    assert summary.files == len(files) and not summary.truncated and summary.notes == []
    assert not any(p.name.startswith(".") for p in dest.parent.iterdir())  # no temporary folder left


def test_clean_capture_verifies(site: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cap"
    capture_environment(site, dest, python_version=None)
    report = verify_site_packages(dest)
    assert report.tree.kind == "inventory"
    assert report.files_verified == len(HASHED)
    assert [(i.kind, i.path, i.line) for i in report.issues] == [(KIND_PTH_EXEC, "hook.pth", 2)]
    assert report.warnings == ()
    (dist,) = report.distributions
    assert (dist.name, dist.version) == (DIST.metadata["Name"], DIST.version)


def test_tampered_module_is_modified_in_the_capture(site: Path, tmp_path: Path) -> None:
    with (site / "idna" / "core.py").open("a") as fh:
        fh.write("\nimport socket\n")
    dest = tmp_path / "cap"
    capture_environment(site, dest, python_version=None)
    report = verify_site_packages(dest)
    assert [(i.kind, i.path) for i in report.issues] == [(KIND_PTH_EXEC, "hook.pth"), (KIND_MODIFIED, "idna/core.py")]
    assert not (dest / TREE_DIR / "idna").exists()  # judged from the listed digest alone


def test_cap_and_copy_limit(site: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cap"
    summary = capture_environment(site, dest, python_version=None, max_files=5)
    header = json.loads((dest / CAPTURE_FILE).read_text())
    assert summary.truncated and header["truncated"] is True and header["files"] == 5
    assert any("more than 5 files" in n for n in summary.notes)
    top = sorted(p.name for p in site.iterdir() if p.is_file() and not p.is_symlink())
    assert set(top) <= set(rows(dest))  # breadth first: the top level is listed before the package's files
    with pytest.raises(FileExistsError):
        capture_environment(site, dest, python_version=None)
    small = capture_environment(site, tmp_path / "small", python_version=None, max_copy_bytes=100)
    record = site / INFO / "RECORD"
    assert record.stat().st_size > 100
    assert f"{INFO}/RECORD: {record.stat().st_size} bytes, over the copy limit; listed, not copied" in small.notes
    assert not (tmp_path / "small" / TREE_DIR / INFO / "RECORD").exists()
    assert rows(tmp_path / "small")[f"{INFO}/RECORD"]["sha256"] == hashlib.sha256(record.read_bytes()).hexdigest()
    assert (tmp_path / "small" / TREE_DIR / "hook.pth").is_file()  # under 100 bytes: copied


def test_assess_captures_the_current_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = Roots(*(tmp_path / name for name in ("models", "archive", "incidents", "quarantine")))
    (roots.models / "m1").mkdir(parents=True)
    (roots.models / "m1" / "weights.bin").write_bytes(b"\x00" * 64)
    monkeypatch.setattr(assess_mod, "_freeze", lambda python: (b"idna==1\n", None))
    lines: list[str] = []
    inc = open_incident("INC-9", "m1", roots, echo=lines.append)
    assess(inc, python=sys.executable, reference="none")
    dest = inc.dir / "python-env" / "1"
    header = json.loads((dest / CAPTURE_FILE).read_text())
    assert Path(header["site_packages"]).samefile(Path(str(DIST._path)).parent)  # type: ignore[attr-defined]
    assert header["python"] == sys.version.split()[0]
    assert not (inc.dir / "python-env" / "2").exists()  # purelib == platlib here: captured once
    assert any(f"Python environment inventory captured: python-env/1 ({header['site_packages']}: "
               f"{header['files']} files, {header['copied']} copied" in line for line in lines)  # fmt: skip
    assert (dest / TREE_DIR / INFO / "RECORD").is_file()
    report = verify_site_packages(dest)
    assert any(d.dist_info == INFO for d in report.distributions)
    assert report.of_kind(KIND_MODIFIED) == []

    monkeypatch.setattr(assess_mod, "_SITE_PROBE", "print('no paths here')")
    lines.clear()
    assess(open_incident("INC-10", "m1", roots, echo=lines.append), reference="none")
    assert any("WARNING: Python environment inventory not captured: unexpected answer" in line for line in lines)
    assert not (roots.incidents / "INC-10" / "python-env").exists()
    assert any("Custody intake" in line for line in lines)  # assess went on


def test_fifo_skipped_and_undecodable_name_listed_as_shown(site: Path, tmp_path: Path) -> None:
    os.mkfifo(site / "pipe")  # opening it would block: counted, never opened
    Path(os.fsdecode(os.fsencode(site / INFO) + b"/NOTE\xff.txt")).write_bytes(b"note\n")
    dest = tmp_path / "cap"
    summary = capture_environment(site, dest, python_version=None)
    listed = rows(dest)
    assert summary.special == 1 and "pipe" not in listed
    assert "pipe: special file (device, FIFO or socket) skipped" in summary.notes
    shown = f"{INFO}/NOTE\ufffd.txt"
    assert listed[shown]["sha256"] == hashlib.sha256(b"note\n").hexdigest()
    assert (dest / TREE_DIR / shown).read_bytes() == b"note\n"
    report = verify_site_packages(dest)
    assert report.tree.files[shown].copied
