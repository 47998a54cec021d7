"""workbench.safeio: the one way evidence is opened (no symlink, nothing but a regular file, no blocking, no atime)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench import safeio
from workbench.hashing import sha256_file

OLD = 1_500_000_000 * 10**9  # 2017: older than any mtime here, so relatime would update it on a read


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail (not hang) if the block blocks: SIGALRM interrupts a blocked open or read."""

    def expired(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "f.bin").write_bytes(b"hello world\n")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "f.bin")
    (tmp_path / "dir").mkdir()
    return tmp_path


def test_reads_a_regular_file_every_way(tree: Path):
    path = tree / "f.bin"
    assert safeio.read_bytes(path) == b"hello world\n"
    assert safeio.read_text(path) == "hello world\n"
    with safeio.open_evidence(path) as fh:
        assert fh.read(5) == b"hello"
        assert not fcntl.fcntl(fh.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK  # cleared after the checks
    with safeio.open_evidence(path, buffering=0) as raw:
        buf = bytearray(4)
        assert raw.readinto(buf) == 4 and bytes(buf) == b"hell"
    with safeio.open_evidence(path, binary=False) as text:
        assert text.readline() == "hello world\n"
    with safeio.open_evidence(path) as fh:  # the fd can be memory-mapped
        assert bytes(np.memmap(fh, dtype=np.uint8, mode="r", shape=(5,))) == b"hello"


def test_fifo_is_refused_at_once_naming_the_path(tree: Path):
    with no_hang(), pytest.raises(safeio.NotRegularFile, match="FIFO") as err:
        safeio.read_bytes(tree / "pipe")
    assert err.value.filename == str(tree / "pipe")
    assert isinstance(err.value, OSError)  # every per-file `except OSError` records it and goes on


def test_fifo_swapped_in_between_the_check_and_the_open_is_caught_by_fstat(tree: Path, monkeypatch):
    """The lstat is fooled (the swap happens after it): O_NONBLOCK makes the open return, fstat refuses it."""
    regular = os.lstat(tree / "f.bin")
    real_lstat = os.lstat
    monkeypatch.setattr(safeio.os, "lstat", lambda p: regular if str(p).endswith("pipe") else real_lstat(p))
    with no_hang(), pytest.raises(safeio.NotRegularFile, match="FIFO"):
        safeio.open_evidence(tree / "pipe")


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("link", safeio.SymlinkRefused, "symbolic link"),
        ("dir", safeio.NotRegularFile, "directory"),
        ("/dev/null", safeio.NotRegularFile, "character device"),
        ("missing", FileNotFoundError, "No such file"),
    ],
)
def test_anything_but_a_regular_file_is_refused(tree: Path, name: str, error: type, words: str):
    with pytest.raises(error, match=words):
        safeio.open_evidence(tree / name)


def test_symlink_swapped_in_after_the_check_is_not_followed(tree: Path, monkeypatch):
    regular = os.lstat(tree / "f.bin")
    real_lstat = os.lstat
    monkeypatch.setattr(safeio.os, "lstat", lambda p: regular if str(p).endswith("link") else real_lstat(p))
    with pytest.raises(safeio.SymlinkRefused):  # O_NOFOLLOW
        safeio.open_evidence(tree / "link")


def test_socket_is_refused(tmp_path: Path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        with pytest.raises(safeio.NotRegularFile, match="socket"):
            safeio.read_bytes(path)


def test_capped_read(tree: Path):
    assert safeio.read_bytes(tree / "f.bin", limit=12) == b"hello world\n"
    with pytest.raises(safeio.FileTooLarge, match="larger than 11 bytes"):
        safeio.read_bytes(tree / "f.bin", limit=11)


def test_not_regular_says_what_the_path_became(tree: Path):
    assert safeio.not_regular(tree / "f.bin") == ""
    assert "now a FIFO" in safeio.not_regular(tree / "pipe")
    assert "now a symbolic link" in safeio.not_regular(tree / "link")
    assert "no longer there" in safeio.not_regular(tree / "gone")


def test_reading_keeps_the_access_time(tree: Path):
    path = tree / "f.bin"
    os.utime(path, ns=(OLD, path.stat().st_mtime_ns))
    before = path.stat()
    safeio.read_bytes(path)
    with safeio.open_evidence(path) as fh:
        np.memmap(fh, dtype=np.uint8, mode="r", shape=(5,)).sum()
    sha256_file(path)
    after = path.stat()
    assert after.st_atime_ns == before.st_atime_ns == OLD
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)


def test_plain_open_would_change_it(tree: Path):
    """The control of the test above: this filesystem does update atime on a read (relatime, atime < mtime)."""
    path = tree / "f.bin"
    os.utime(path, ns=(OLD, path.stat().st_mtime_ns))
    path.read_bytes()
    if path.stat().st_atime_ns == OLD:
        pytest.skip("this filesystem does not update access times (noatime mount)")


def test_eperm_on_noatime_opens_without_it_and_records_the_file(tree: Path, monkeypatch):
    """O_NOATIME refused (not the owner): the file is still read, and the record says atime was not protected."""
    real_open = os.open

    def refuse_noatime(path, flags, *args):
        if flags & os.O_NOATIME:
            raise PermissionError(1, "Operation not permitted", path)
        return real_open(path, flags, *args)

    safeio.reset_atime_record()
    monkeypatch.setattr(safeio.os, "open", refuse_noatime)
    path = tree / "f.bin"
    os.utime(path, ns=(OLD, path.stat().st_mtime_ns))
    assert safeio.read_bytes(path) == b"hello world\n"
    not_protected, changed = safeio.atime_record()
    assert not_protected == [str(path.resolve())]
    assert changed == [str(path.resolve())]  # the kernel did update it: the record says so
    [(where, reason)] = safeio.atime_warnings(tree)
    assert where == "f.bin"
    assert "1 evidence file(s)" in reason and "updated the access time of 1" in reason and "ctime" in reason
    assert safeio.atime_warnings(tree / "dir") == []  # only files of the case named
    safeio.reset_atime_record()


CHILD = """
import json, os, sys
from workbench import safeio
data = safeio.read_bytes(sys.argv[1])
print(json.dumps({"len": len(data), "record": safeio.atime_record()}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop CAP_FOWNER")
def test_real_eperm_when_the_file_is_someone_elses(tree: Path):
    """A file owned by another uid, read by a process without CAP_FOWNER: the kernel's own EPERM on O_NOATIME."""
    path = tree / "f.bin"
    os.chown(path, 65534, 65534)
    os.utime(path, ns=(OLD, path.stat().st_mtime_ns))
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-fowner", sys.executable, "-c", CHILD, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["len"] == 12
    assert out["record"] == [[str(path.resolve())], [str(path.resolve())]]
    assert path.stat().st_atime_ns != OLD  # not restored: restoring would change ctime (see safeio)


def test_scandir_lists_a_folder_without_touching_its_access_time(tree: Path):
    os.utime(tree, ns=(OLD, tree.stat().st_mtime_ns))
    with safeio.scandir(tree) as it:
        entries = {e.name: e for e in it}
    assert set(entries) == {"f.bin", "pipe", "link", "dir"}
    assert entries["f.bin"].path == str(tree / "f.bin") and entries["f.bin"].is_file(follow_symlinks=False)
    assert entries["link"].is_symlink() and entries["dir"].is_dir(follow_symlinks=False)
    assert entries["f.bin"].stat(follow_symlinks=False).st_size == 12
    assert tree.stat().st_atime_ns == OLD
    with os.scandir(tree) as it:  # the control: a plain listing does update it
        list(it)
    if tree.stat().st_atime_ns == OLD:
        pytest.skip("this filesystem does not update access times")


def test_scandir_refuses_a_symlinked_folder(tree: Path):
    (tree / "dirlink").symlink_to(tree / "dir")
    with pytest.raises(NotADirectoryError), safeio.scandir(tree / "dirlink"):
        pass
