"""pyenv.expected on a copy of this venv's installed idna and a wheel built from the same installed files."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.pyenv.installed import (
    INFO,
    VERSION,
    WHEEL_NAME,
    build_wheel,
    copy_idna,
    record_hash,
    rewrite_record,
    wheel_members,
)
from workbench.pyenv import expected, expected_sources
from workbench.pyenv.expected import (
    compare_with_lock,
    compare_with_previous,
    compare_with_wheels,
    read_locked_hashes,
    read_wheels,
    without_wheel,
)
from workbench.pyenv.record import verify_site_packages


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return copy_idna(tmp_path / "site-packages")


@pytest.fixture
def wheels(tmp_path: Path) -> list[expected.WheelInfo]:
    build_wheel(tmp_path / "wheelhouse")
    warnings: list = []
    found = read_wheels(tmp_path / "wheelhouse", warnings)
    assert warnings == []
    return found


def kinds(issues: list) -> list[tuple[str, str]]:
    return [(i.kind, i.path) for i in issues]


def test_clean_wheel_comparison(site: Path, wheels: list, tmp_path: Path) -> None:
    (wheel,) = wheels
    data = (tmp_path / "wheelhouse" / WHEEL_NAME).read_bytes()
    assert (wheel.file, wheel.name, wheel.version, wheel.dist_info) == (WHEEL_NAME, "idna", VERSION, INFO)
    assert (wheel.sha256, wheel.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert len([e for e in wheel.record.values() if e.sha256]) == len(wheel_members()) > 10
    assert "idna.cli:main" in (wheel.entry_points or "")
    report = verify_site_packages(site)
    assert report.issues == ()
    assert compare_with_wheels(report, wheels) == []
    assert without_wheel(report, wheels) == []


def test_modified_file_with_rewritten_record_found_only_by_wheel(site: Path, wheels: list) -> None:
    target = site / "idna" / "core.py"
    original = hashlib.sha256(target.read_bytes()).hexdigest()
    target.write_bytes(target.read_bytes() + b"\nimport os; os.system('id')\n")
    rewrite_record(site, "idna/core.py")
    report = verify_site_packages(site)
    assert report.issues == ()  # RECORD agrees with the file: record.py sees nothing
    issues = compare_with_wheels(report, wheels)
    assert kinds(issues) == [("differs-from-wheel", "idna/core.py")]
    now = hashlib.sha256(target.read_bytes()).hexdigest()
    assert now in issues[0].detail and original in issues[0].detail
    assert WHEEL_NAME in issues[0].detail and "RECORD line" in issues[0].detail
    assert issues[0].distribution == INFO


def test_dropped_module_and_pth(site: Path, wheels: list) -> None:
    (site / "idna" / "_hook.py").write_text("import socket\n")
    (site / "idna_init.pth").write_text("import idna._hook\n")
    rewrite_record(site, "idna/_hook.py")
    rewrite_record(site, "idna_init.pth")
    (site / "idna" / "extra.py").write_text("x = 1\n")  # not in any RECORD
    (site / "idna" / "__pycache__" / "extra.cpython-311.pyc").write_bytes(b"\0" * 16)  # generated: left out
    report = verify_site_packages(site)
    assert kinds(report.issues) == [("unrecorded", "idna/extra.py"), ("pth-executable", "idna_init.pth")]
    issues = compare_with_wheels(report, wheels)
    assert kinds(issues) == [
        ("absent-from-wheel", "idna/_hook.py"),
        ("absent-from-wheel", "idna/extra.py"),
        ("absent-from-wheel", "idna_init.pth"),
    ]
    assert "listed in the installed RECORD" in issues[0].detail and "in no RECORD" in issues[1].detail
    assert WHEEL_NAME in issues[2].detail


def test_missing_vs_wheel(site: Path, wheels: list) -> None:
    (site / "idna" / "compat.py").unlink()
    rewrite_record(site, "idna/compat.py", drop=True)
    report = verify_site_packages(site)
    assert report.issues == ()
    assert kinds(compare_with_wheels(report, wheels)) == [("missing-vs-wheel", "idna/compat.py")]


def test_entry_points_changed(site: Path, wheels: list) -> None:
    ep = site / INFO / "entry_points.txt"
    original = ep.read_text()
    assert "idna.cli:main" in original
    ep.write_text(original.replace("idna.cli:main", "idna._evil:main") + "pip = idna._evil:pip\n")
    rewrite_record(site, f"{INFO}/entry_points.txt")
    report = verify_site_packages(site)
    assert report.issues == ()
    issues = compare_with_wheels(report, wheels)
    rel = f"{INFO}/entry_points.txt"
    assert kinds(issues) == [("differs-from-wheel", rel), ("entry-points-changed", rel)]
    detail = issues[1].detail
    assert "changed [console_scripts] idna = idna._evil:main (wheel: idna = idna.cli:main)" in detail
    assert "added [console_scripts] pip = idna._evil:pip" in detail


def test_entry_points_removed_from_wheel_side(site: Path, tmp_path: Path) -> None:
    build_wheel(tmp_path / "other", entry_points="[console_scripts]\nidna = idna.cli:main\nidna2 = idna.cli:main\n")
    found = read_wheels(tmp_path / "other", [])
    issues = [i for i in compare_with_wheels(verify_site_packages(site), found) if i.kind == "entry-points-changed"]
    assert len(issues) == 1 and "removed [console_scripts] idna2 = idna.cli:main" in issues[0].detail


def test_no_wheel_for_the_version(site: Path, tmp_path: Path) -> None:
    build_wheel(tmp_path / "old", name="idna-0.1-py3-none-any.whl")
    warnings: list = []
    found = read_wheels(tmp_path / "old", warnings)
    assert [w.version for w in found] == ["0.1"]  # its one RECORD member (idna-<installed>.dist-info) is used
    report = verify_site_packages(site)
    assert compare_with_wheels(report, found) == []
    assert [d.dist_info for d in without_wheel(report, found)] == [INFO]
    assert warnings == []


def test_lock_with_and_without_the_wheel_hash(site: Path, wheels: list, tmp_path: Path) -> None:
    (wheel,) = wheels
    good = tmp_path / "requirements.txt"
    good.write_text(f"# pip-compile --generate-hashes\n--index-url https://pypi.org/simple\nidna=={VERSION} \\\n"
                    f"    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{wheel.sha256.upper()}\n"
                    "    # via requests\n")  # fmt: skip
    warnings: list = []
    locked = read_locked_hashes(good, warnings)
    assert warnings == []
    assert locked["idna"].version == VERSION and locked["idna"].line == 3
    assert locked["idna"].hashes == {"0" * 64, wheel.sha256}
    report = verify_site_packages(site)
    assert compare_with_lock(report, wheels, locked) == []
    bad = tmp_path / "requirements-bad.txt"
    bad.write_text(f"certifi==1.0 --hash=sha256:{'1' * 64}\n\nidna=={VERSION} \\\n    --hash=sha256:{'2' * 64}\n")
    issues = compare_with_lock(report, wheels, read_locked_hashes(bad, []))
    assert kinds(issues) == [("wheel-not-locked", WHEEL_NAME)]
    assert wheel.sha256 in issues[0].detail and f"{bad} line 3" in issues[0].detail
    assert issues[0].distribution == INFO
    unnamed = compare_with_lock(report, wheels, {})
    assert kinds(unnamed) == [("wheel-not-locked", WHEEL_NAME)] and "names no 'idna'" in unnamed[0].detail


def test_read_locked_hashes_lines(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    h = ["a" * 64, "b" * 64, "c" * 64, "d" * 64]
    lock.write_text(f"Foo_Bar[extra]==2.0 ; python_version >= '3.8' --hash=sha256:{h[0]}\n"
                    f"foo-bar==2.0 --hash=sha256:{h[1]}\nfoo.bar==3.0 --hash=sha256:{h[2]}\n"
                    f"unhashed==1.0\nbaz @ https://example.org/baz-1.0.tar.gz --hash=sha256:{h[3]} --hash=md5:abc\n"
                    "not a requirement line\n")  # fmt: skip
    warnings: list = []
    locked = read_locked_hashes(lock, warnings)
    assert sorted(locked) == ["baz", "foo-bar"]
    assert locked["foo-bar"].hashes == {h[0], h[1]} and locked["foo-bar"].line == 1
    assert locked["baz"].version is None and locked["baz"].hashes == {h[3]}
    reasons = [(w.line, w.reason) for w in warnings]
    assert any(line == 3 and "pinned again" in r for line, r in reasons)
    assert any(line == 6 and "not a pinned requirement" in r for line, r in reasons)
    assert any(line is None and "1 pin(s) without a sha256 --hash" in r for line, r in reasons)
    missing: list = []
    assert read_locked_hashes(tmp_path / "absent.txt", missing) == {} and "not read" in missing[0].reason


def test_archive_not_locked(site: Path, wheels: list, tmp_path: Path) -> None:
    (wheel,) = wheels
    lock = tmp_path / "req.txt"
    lock.write_text(f"idna=={VERSION} --hash=sha256:{wheel.sha256}\n")
    locked = read_locked_hashes(lock, [])
    direct = site / INFO / "direct_url.json"
    direct.write_text(json.dumps({"url": "file:///tmp/idna.whl", "archive_info": {"hashes": {"sha256": "e" * 64}}}))
    report = verify_site_packages(site)
    issues = compare_with_lock(report, wheels, locked)
    assert kinds(issues) == [("archive-not-locked", f"{INFO}/direct_url.json")]
    assert "e" * 64 in issues[0].detail and f"{lock} line 1" in issues[0].detail
    direct.write_text(json.dumps({"url": "file:///x", "archive_info": {"hash": f"sha256={wheel.sha256}"}}))
    assert compare_with_lock(verify_site_packages(site), wheels, locked) == []  # legacy form, locked hash
    assert compare_with_wheels(verify_site_packages(site), wheels) == []  # an installer file, not a wheel's
    other = tmp_path / "other.txt"
    other.write_text(f"idna==0.1 --hash=sha256:{'f' * 64}\n")
    direct.write_text(json.dumps({"archive_info": {"hashes": {"sha256": "e" * 64}}}))
    found = compare_with_lock(verify_site_packages(site), wheels, read_locked_hashes(other, []))
    assert kinds(found) == [("wheel-not-locked", WHEEL_NAME)]  # the installed version differs: left to deps
    assert "the lock pins 0.1" in found[0].detail


def test_damaged_and_oversized_wheels(site: Path, tmp_path: Path) -> None:
    folder = tmp_path / "wheelhouse"
    good = build_wheel(folder)
    (folder / "broken-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "truncated-1.0-py3-none-any.whl").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "notawheel.whl").write_bytes(good.read_bytes())
    with zipfile.ZipFile(folder / "huge-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge-1.0.dist-info/RECORD", b"a,,\n" * (expected_sources.MAX_RECORD_BYTES // 4 + 1))
    (folder / "link-1.0-py3-none-any.whl").symlink_to(good)
    warnings: list = []
    found = read_wheels(folder, warnings)
    assert [w.file for w in found] == [WHEEL_NAME]  # the run went on
    by_file = {w.path: w.reason for w in warnings}
    assert "damaged wheel" in by_file["broken-1.0-py3-none-any.whl"]
    assert "damaged wheel" in by_file["truncated-1.0-py3-none-any.whl"]
    assert "not a wheel file name" in by_file["notawheel.whl"]
    assert f"more than the {expected_sources.MAX_RECORD_BYTES} read" in by_file["huge-1.0-py3-none-any.whl"]
    assert "symlink" in by_file["link-1.0-py3-none-any.whl"]
    assert compare_with_wheels(verify_site_packages(site), found) == []


def test_wheel_record_lines_and_data_scheme(site: Path, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    data_rel = f"idna-{VERSION}.data/purelib/idna_extra.py"
    one = record_hash(b"x = 1\n")
    lines = [f"{data_rel},{one},6", f"idna-{VERSION}.data/scripts/idna,{record_hash(b'')},0",
             "../../etc/passwd,,", "idna/core.py,md5=abc,1", f"{INFO}/RECORD,,"]  # fmt: skip
    with zipfile.ZipFile(folder / WHEEL_NAME, "w") as zf:
        zf.writestr(f"{INFO}/RECORD", "\n".join(lines) + "\n")
    warnings: list = []
    (wheel,) = read_wheels(folder, warnings)
    assert [(w.line, "leaves the wheel" in w.reason, "md5" in w.reason) for w in warnings] == [
        (3, True, False),
        (4, False, True),
    ]
    assert warnings[0].path == f"{WHEEL_NAME}!{INFO}/RECORD"
    (site / "idna_extra.py").write_text("x = 2\n")
    issues = compare_with_wheels(verify_site_packages(site), [wheel])
    # purelib lands at the top of site-packages; scripts go elsewhere (not compared)
    assert ("differs-from-wheel", "idna_extra.py") in kinds(issues)
    assert not [i for i in issues if "scripts" in i.path]


def test_previous_capture_both_ways(site: Path, tmp_path: Path) -> None:
    before = tmp_path / "before"
    shutil.copytree(site, before)
    (site / "idna" / "core.py").write_bytes((site / "idna" / "core.py").read_bytes() + b"\n#x\n")
    rewrite_record(site, "idna/core.py")
    (site / "idna" / "_new.py").write_text("import os\n")
    (site / "idna" / "compat.py").unlink()
    (site / "evil.pth").write_text("import os\n")
    (site / "idna" / "__pycache__" / "_new.cpython-311.pyc").write_bytes(b"\0" * 16)  # generated: left out
    extra = site / "evil-1.0.dist-info"
    extra.mkdir()
    (extra / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n\n")
    (extra / "RECORD").write_text("evil-1.0.dist-info/METADATA,,\nevil-1.0.dist-info/RECORD,,\n")
    now, prev = verify_site_packages(site), verify_site_packages(before)
    issues = compare_with_previous(now, prev)
    assert kinds(issues) == [
        ("distribution-added-since-capture", "evil-1.0.dist-info"),
        ("added-since-capture", "evil.pth"),
        ("changed-since-capture", f"{INFO}/RECORD"),  # rewritten to cover core.py
        ("added-since-capture", "idna/_new.py"),
        ("removed-since-capture", "idna/compat.py"),
        ("changed-since-capture", "idna/core.py"),
    ]
    core = issues[-1].detail
    assert hashlib.sha256((site / "idna" / "core.py").read_bytes()).hexdigest() in core
    assert hashlib.sha256((before / "idna" / "core.py").read_bytes()).hexdigest() in core
    assert str(before) in core
    back = compare_with_previous(prev, now)
    assert kinds(back) == [
        ("distribution-removed-since-capture", "evil-1.0.dist-info"),
        ("removed-since-capture", "evil.pth"),
        ("changed-since-capture", f"{INFO}/RECORD"),
        ("removed-since-capture", "idna/_new.py"),
        ("added-since-capture", "idna/compat.py"),
        ("changed-since-capture", "idna/core.py"),
    ]
    assert compare_with_previous(prev, verify_site_packages(before)) == []


def test_previous_capture_version_changed(site: Path, tmp_path: Path) -> None:
    before = verify_site_packages(site)
    newer = tmp_path / "newer"
    newer.mkdir()
    shutil.copytree(site / "idna", newer / "idna")
    shutil.copytree(site / INFO, newer / "idna-99.0.dist-info")
    meta = newer / "idna-99.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace(f"Version: {VERSION}", "Version: 99.0"))
    issues = compare_with_previous(verify_site_packages(newer), before)
    assert kinds(issues) == [("version-changed-since-capture", "idna-99.0.dist-info")]
    assert "99.0" in issues[0].detail and VERSION in issues[0].detail
