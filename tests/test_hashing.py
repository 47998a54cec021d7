import hashlib
import os
import threading
import time
import tracemalloc
from contextlib import closing

import pytest

from workbench import hashing
from workbench.hashing import CHUNK, WINDOW, HashingStopped, hash_files, iter_hashes, sha256_file


def test_sha256_matches_hashlib(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


def test_memory_is_constant_whatever_the_file_size(tmp_path):
    p = tmp_path / "big.bin"
    with p.open("wb") as fh:  # 64 MiB of real (non-sparse) bytes
        block = os.urandom(1024 * 1024)
        for _ in range(64):
            fh.write(block)
    tracemalloc.start()
    sha256_file(p)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while hashing 64 MiB"


def test_symlink_refused_and_errors_returned(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(OSError):
        sha256_file(link)
    results = hash_files([real, link, tmp_path / "missing"])
    assert results[real][1] == 1
    assert isinstance(results[link], OSError) and isinstance(results[tmp_path / "missing"], OSError)


def test_iter_hashes_in_order_and_same_as_hash_files(tmp_path):
    paths = []
    for i in range(12):
        p = tmp_path / f"f{i:02}.bin"
        p.write_bytes(os.urandom(1000 + i * 70_000))
        paths.append(p)
    with closing(iter_hashes(reversed(paths))) as results:
        seen = list(results)
    assert [p for p, _ in seen] == list(reversed(paths))
    assert dict(seen) == hash_files(paths)
    assert all(res == (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p, res in seen)


def test_closing_stops_the_workers_within_a_chunk(tmp_path):
    small = tmp_path / "a.txt"
    small.write_bytes(b"small")
    big = tmp_path / "b.bin"
    with big.open("wb") as fh:  # sparse: 8 GiB to read, nothing on disk
        fh.truncate(8 * 1024**3)
    later = tmp_path / "c.txt"
    later.write_bytes(b"never opened")
    read = []
    lock = threading.Lock()

    def on_bytes(n):
        with lock:
            read.append(n)

    start = time.monotonic()
    gen = iter_hashes([small, big, later], workers=1, on_bytes=on_bytes)
    assert next(gen)[0] == small
    while sum(read) < 4 * CHUNK:  # the big file is being read
        time.sleep(0.001)
    gen.close()
    stopped_after = time.monotonic() - start
    at_close = sum(read)
    time.sleep(0.3)
    assert sum(read) == at_close, "a worker went on reading after close()"
    assert at_close < 8 * 1024**3 and stopped_after < 5
    assert at_close < 8 * 1024**3 - 1  # `later` was never read either: only the small file and part of the big one


def test_keyboard_interrupt_in_the_consumer_stops_hashing(tmp_path):
    first = tmp_path / "0.txt"
    first.write_bytes(b"first")
    files = [first] + [tmp_path / f"{i}.bin" for i in range(1, 4)]
    for f in files[1:]:
        with f.open("wb") as fh:  # sparse, 2 GiB each
            fh.truncate(2 * 1024**3)
    read = []
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), closing(iter_hashes(files, workers=2, on_bytes=read.append)) as results:
        for _ in results:
            raise KeyboardInterrupt
    assert time.monotonic() - start < 2
    assert sum(read) < 1024**3  # the workers stopped a few chunks into the big files


def test_stop_event_interrupts_one_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3 * CHUNK))
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashingStopped):
        sha256_file(p, stop=stop)


@pytest.mark.parametrize("size", [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW + 4097])
def test_mapped_windows_hash_every_byte(tmp_path, size):
    data = os.urandom(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    seen = []
    assert sha256_file(p, on_bytes=seen.append) == (hashlib.sha256(data).hexdigest(), size)
    assert sum(seen) == size and all(n <= WINDOW for n in seen)


def test_a_change_in_the_last_byte_of_a_window_changes_the_digest(tmp_path):
    data = bytearray(os.urandom(2 * WINDOW))
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    before = sha256_file(p)[0]
    data[WINDOW - 1] ^= 1
    p.write_bytes(data)
    assert sha256_file(p)[0] == hashlib.sha256(data).hexdigest() != before


def test_unmappable_file_is_read_instead(tmp_path, monkeypatch):
    data = os.urandom(WINDOW + 123)
    p = tmp_path / "f.bin"
    p.write_bytes(data)

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")  # ENODEV: a file system that cannot map files

    monkeypatch.setattr(hashing.mmap, "mmap", refuse)
    assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_file_of_size_zero_on_fstat_is_read(tmp_path):
    # /proc files say size 0 and still have content: read, not mapped
    path = "/proc/self/cmdline"
    digest, size = sha256_file(path)
    assert size > 0 and len(digest) == 64
