"""Recognising a checkpoint by its zip member names never lists a central directory past the scan's cap."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from workbench.model import checkpoints
from workbench.model.limits import ScanLimits


def _torch_like_zip(path: Path, extra_members: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        for i in range(extra_members):
            zf.writestr(f"archive/data/{i}", b"\0" * 4)
    return path


@pytest.mark.parametrize("cap, listed", [(1 << 20, True), (512, False)])
def test_zip_names_respect_the_central_directory_cap(tmp_path, monkeypatch, cap, listed):
    path = _torch_like_zip(tmp_path / "m.pt", extra_members=50)
    monkeypatch.setattr(checkpoints, "ScanLimits", lambda: ScanLimits(max_central_bytes=cap))
    with path.open("rb") as fh:
        names = checkpoints._zip_names(fh)
        assert bool(names) is listed
        assert checkpoints._torch_zip(fh) is listed
    if listed:
        assert "archive/data.pkl" in names and len(names) == 51


def test_a_file_without_an_end_record_lists_nothing(tmp_path):
    path = tmp_path / "not.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with path.open("rb") as fh:
        assert checkpoints._zip_names(fh) == []
