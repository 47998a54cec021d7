"""Nothing changes: a full ``workbench investigate`` (the CLI, in a subprocess) leaves every evidence file as it was:
size, mtime, atime, ctime, mode, owner and SHA-256, on a read-only evidence tree.

Access times are set far in the past first, so that a read would show (relatime updates an atime older than the
mtime). The second run reads files owned by another uid in a process without ``CAP_FOWNER`` (``setpriv``), where
``O_NOATIME`` is refused with EPERM: the access times the workbench could not protect are then said, in the
ledger and in findings.json, and nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "evidence-samples" / "tampered-weights"
OLD = 1_500_000_000 * 10**9  # 2017-07-14: older than every mtime of the copy

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another uid, dropping CAP_FOWNER)")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(root)}


def _stats(root: Path) -> dict[str, tuple[int, ...]]:
    out = {}
    for p in _files(root):
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_atime_ns, st.st_ctime_ns,
                                              st.st_mode, st.st_uid, st.st_gid)  # fmt: skip
    return out


def _prepare(tmp_path: Path, owner: int | None) -> tuple[Path, dict[str, str], dict[str, tuple[int, ...]]]:
    """A read-only copy of the bundled case with old access times; its digests and stats (taken last)."""
    case = tmp_path / "case"
    shutil.copytree(CASE, case, symlinks=True)
    digests = _digests(case)
    for p in sorted(case.rglob("*"), reverse=True):
        if owner is not None:
            os.chown(p, owner, owner, follow_symlinks=False)
        if p.is_file():
            os.utime(p, ns=(OLD, p.lstat().st_mtime_ns), follow_symlinks=False)
        mode = p.lstat().st_mode
        p.chmod(stat.S_IMODE(mode) & ~0o222)  # chmod -R a-w
    case.chmod(stat.S_IMODE(case.stat().st_mode) & ~0o222)
    return case, digests, _stats(case)


def _investigate(case: Path, out: Path, *prefix: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "workbench", "investigate", str(case), "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _key_pair(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "k.pem", folder / "k.pub"
    pkcs8, spki = serialization.PrivateFormat.PKCS8, serialization.PublicFormat.SubjectPublicKeyInfo
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, spki))
    return private, public


@pytest.fixture
def writable_again():
    """Give the copies their write bit back so that tmp_path can be cleaned."""
    made: list[Path] = []
    yield made
    for root in made:
        for p in [root, *root.rglob("*")]:
            if not p.is_symlink():
                p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


def test_investigate_changes_nothing_on_a_read_only_tree(tmp_path: Path, writable_again):
    case, digests, before = _prepare(tmp_path, owner=None)
    writable_again.append(case)
    assert all(s[2] == OLD for s in before.values())
    private, public = _key_pair(tmp_path)
    out = tmp_path / "out"
    proc = _investigate(case, out, extra=("--sign-head", str(private)))
    assert proc.returncode == 0, proc.stderr
    after = _stats(case)
    changed = {p: (before[p], after.get(p)) for p in before if before[p] != after.get(p)}
    assert not changed, changed  # size, mtime, atime, ctime, mode, owner of every file
    assert _digests(case) == digests
    doc = json.loads((out / "findings.json").read_text())
    assert not [w for w in doc["warnings"] if "access time" in w["reason"]]
    verify = subprocess.run([sys.executable, "-m", "workbench", "custody", "verify", str(out), "--key", str(public)],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "anchor findings.json: holds" in verify.stdout and "anchor custody.head.sig: holds" in verify.stdout
    assert "anchor report.html: holds" in verify.stdout


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) drops CAP_FOWNER")
def test_files_of_another_owner_eperm_path_is_said_and_nothing_else_changes(tmp_path: Path, writable_again):
    case, digests, before = _prepare(tmp_path, owner=65534)
    writable_again.append(case)
    out = tmp_path / "out"
    proc = _investigate(case, out, "setpriv", "--bounding-set=-fowner")
    assert proc.returncode == 0, proc.stderr
    after = _stats(case)
    moved = sorted(p for p in before if after[p][2] != before[p][2])
    for p in before:  # everything but the access time is as it was
        assert after[p][:2] + after[p][3:] == before[p][:2] + before[p][3:], p
    assert _digests(case) == digests
    assert moved  # O_NOATIME was refused: the kernel updated them, and it is said
    ledger = [json.loads(line) for line in (out / "custody.jsonl").read_text().splitlines()]
    [entry] = [e for e in ledger if e["type"] == "atime_not_preserved"]
    assert f"{len(before)} evidence file(s)" in entry["reason"]
    assert f"updated the access time of {len(moved)}" in entry["reason"]
    doc = json.loads((out / "findings.json").read_text())
    said = [w for w in doc["warnings"] if "access time not preserved" in w["reason"]]
    assert len(said) == 1  # once, however many files
