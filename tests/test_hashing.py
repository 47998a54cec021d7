import hashlib
import os
import tracemalloc

import pytest

from workbench.hashing import hash_files, sha256_file


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
