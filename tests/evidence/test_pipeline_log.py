from __future__ import annotations

import gzip

import pytest

from workbench.evidence import pipeline_log
from workbench.evidence.pipeline_log import PipelineLogLoader

LOG = (
    "2026-11-18T22:14:03.512Z ##[group]Run pip install -r requirements.txt\n"
    "\x1b[32mCollecting torch==2.3.1\x1b[0m\n"
    "\n"
    "2026-11-18T22:14:09.117Z Successfully installed torch-2.3.1\n"
)


def test_plain(make_file, ctx):
    loaded = PipelineLogLoader().load(make_file("logs/build.log", LOG), ctx)
    assert loaded.warnings == []
    assert loaded.frame["line"].tolist() == [1, 2, 3, 4]
    assert loaded.frame.loc[1, "text"] == "\x1b[32mCollecting torch==2.3.1\x1b[0m"
    assert loaded.meta == {"compressed": False}


def test_gzip_multi_member(make_file, ctx):
    data = gzip.compress(LOG.encode()) + gzip.compress(b"second member\n")
    loaded = PipelineLogLoader().load(make_file("logs/build.log.gz", data), ctx)
    assert loaded.warnings == []
    assert loaded.frame["text"].tolist()[-1] == "second member"
    assert len(loaded.frame) == 5 and loaded.meta == {"compressed": True}


def test_truncated_gzip_keeps_lines(make_file, ctx):
    body = "".join(f"step {i}: ok\n" for i in range(20000)).encode()
    data = gzip.compress(body)
    loaded = PipelineLogLoader().load(make_file("logs/big.log.gz", data[: len(data) // 2]), ctx)
    assert len(loaded.warnings) == 1 and "truncated" in loaded.warnings[0].reason
    n = len(loaded.frame)
    assert 1000 < n < 20000
    assert loaded.frame["text"].tolist()[:2] == ["step 0: ok", "step 1: ok"]
    assert loaded.warnings[0].line == n


def test_corrupt_gzip(make_file, ctx):
    data = bytearray(gzip.compress(LOG.encode() * 50))
    data[30:60] = b"\xff" * 30
    loaded = PipelineLogLoader().load(make_file("logs/bad.log.gz", bytes(data)), ctx)
    assert len(loaded.warnings) == 1
    assert "gzip" in loaded.warnings[0].reason


def test_size_cap(make_file, ctx, monkeypatch):
    monkeypatch.setattr(pipeline_log, "MAX_LOG_BYTES", 100)
    loaded = PipelineLogLoader().load(make_file("logs/long.log", "x" * 30 + "\n" + "y" * 200 + "\n"), ctx)
    assert len(loaded.warnings) == 1 and "longer than" in loaded.warnings[0].reason
    assert loaded.frame["text"].tolist() == ["x" * 30, "y" * 69]


def test_bad_utf8_one_warning(make_file, ctx):
    loaded = PipelineLogLoader().load(make_file("logs/x.log", b"ok\n\xff\xfe bad\nmore \xc3\n"), ctx)
    assert [(w.line, w.reason) for w in loaded.warnings] == [(2, "invalid UTF-8, bytes replaced")]
    assert len(loaded.frame) == 3


@pytest.mark.parametrize(
    ("rel", "content", "expected"),
    [
        ("case/logs/job.txt", b"hello\n", True),
        ("case/notes.txt", b"hello\n", False),
        ("case/run.log", b"hello\n", True),
        ("case/core.log", b"\x00\x01\x02", False),
        ("case/run.log.gz", b"not gzip", False),
        ("case/run.log.gz", gzip.compress(b"x\n"), True),
    ],
)
def test_detect(make_file, rel, content, expected):
    assert PipelineLogLoader().detect(make_file(rel, content)) is expected
