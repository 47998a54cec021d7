from __future__ import annotations

import gzip
import random
import re

import pytest

from workbench.evidence import pipeline_log
from workbench.evidence.pipeline_log import LogAllowance, LogBudget, PipelineLogLoader, amount, grep_log

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
    assert loaded.meta == {"compressed": False, "preview": False}


def test_gzip_multi_member(make_file, ctx):
    data = gzip.compress(LOG.encode()) + gzip.compress(b"second member\n")
    loaded = PipelineLogLoader().load(make_file("logs/build.log.gz", data), ctx)
    assert loaded.warnings == []
    assert loaded.frame["text"].tolist()[-1] == "second member"
    assert len(loaded.frame) == 5 and loaded.meta == {"compressed": True, "preview": False}


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


def test_frame_is_a_preview_of_the_first_lines(make_file, ctx, monkeypatch):
    monkeypatch.setattr(pipeline_log, "MAX_PREVIEW_LINES", 3)
    loaded = PipelineLogLoader().load(make_file("logs/long.log", "".join(f"line {i}\n" for i in range(10))), ctx)
    assert loaded.frame["text"].tolist() == ["line 0", "line 1", "line 2"]
    assert loaded.warnings == [] and loaded.meta["preview"] is True


def test_preview_reads_at_most_its_bytes_from_a_bomb(make_file, ctx, monkeypatch):
    monkeypatch.setattr(pipeline_log, "MAX_PREVIEW_BYTES", 100)
    bomb = gzip.compress(b"x" * 30 + b"\n" + b"y" * (8 << 20) + b"\n")
    loaded = PipelineLogLoader().load(make_file("logs/bomb.log.gz", bomb), ctx)
    assert loaded.warnings == [] and loaded.meta == {"compressed": True, "preview": True}
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


# ------------------------------------------------------------------------------------------------- grep_log
NEEDLE = re.compile(rb"ndex|Downloading")
MIB = 1 << 20


def _grep(path, budget=None, **kw):
    allowance = LogAllowance(budget or LogBudget()).file()
    return list(grep_log(path, NEEDLE, allowance, **kw)), allowance


def test_grep_plain_and_gzip_give_the_same_lines(make_file):
    text = b"a\nLooking in indexes: https://pypi.org/simple\nb\n  Downloading https://h/x-1.0.whl\nc"
    plain, _ = _grep(make_file("logs/a.log", text))
    zipped, allowance = _grep(make_file("logs/a.log.gz", gzip.compress(text)))
    assert plain == zipped == [(2, b"Looking in indexes: https://pypi.org/simple"),
                               (4, b"  Downloading https://h/x-1.0.whl")]  # fmt: skip
    assert allowance.stopped is None and allowance.used == len(text)


def test_grep_long_lines_give_pieces_around_each_hit(make_file):
    hits = [70_000, 1 * MIB, 3 * MIB + 5]
    line = bytearray(b"A" * (4 * MIB))
    for at in hits:
        line[at : at + 11] = b"Downloading"
    data = b"short index line\n" + bytes(line) + b"\nlast Downloading\n"
    found, _ = _grep(make_file("logs/long.log", data), window=64 * 1024)
    assert found[0] == (1, b"short index line") and found[-1] == (3, b"last Downloading")
    pieces = found[1:-1]
    assert {n for n, _ in pieces} == {2} and all(len(p) <= 64 * 1024 for _, p in pieces)
    assert all(any(p.count(b"Downloading") for _, p in pieces) for _ in hits)
    assert sum(p.count(b"Downloading") for _, p in pieces) >= len(hits)


def test_grep_stops_at_the_byte_budget(make_file):
    data = gzip.compress(b"Downloading https://h/x-1.0.whl\n" * 200_000)
    found, allowance = _grep(make_file("logs/bomb.log.gz", data), LogBudget(file_bytes=MIB))
    assert allowance.used == MIB and allowance.stopped == "stopped after 1 MiB decompressed (budget)"
    assert len(found) == MIB // 32  # every whole line read before the stop


def test_grep_stops_at_the_deadline(make_file):
    found, allowance = _grep(make_file("logs/x.log", b"Downloading x\n" * 10), LogBudget(file_seconds=0))
    assert found == [] and allowance.stopped == "stopped after 0 bytes decompressed (time budget of 0 s)"


def test_grep_damaged_gzip_keeps_the_lines_before(make_file):
    data = gzip.compress(b"Downloading https://h/a-1.0.whl\n" + b"".join(b"line %d\n" % i for i in range(50_000)))
    found, allowance = _grep(make_file("logs/cut.log.gz", data[: len(data) // 2]))
    assert found == [(1, b"Downloading https://h/a-1.0.whl")] and allowance.stopped is None


def test_case_allowance_is_shared():
    allowance = LogAllowance(LogBudget(file_bytes=3 * MIB, case_bytes=4 * MIB))
    first = allowance.file()
    first.take(3 * MIB)
    second = allowance.file()
    assert second.room() == MIB and second.case_bytes
    second.take(MIB)
    assert second.stop_bytes() == "stopped after 1 MiB decompressed (the case's budget of 4 MiB of log text was spent)"
    assert allowance.file().stop_bytes() == "not read: the case's budget of 4 MiB of log text was spent"


def test_amount():
    assert [amount(n) for n in (512, MIB, 3 * MIB // 2, 1024 * MIB)] == ["512 bytes", "1 MiB", "1.5 MiB", "1024 MiB"]


def _wanted(found):
    return [(n, raw) for n, raw in found if b"://" in raw or b"\x1b" in raw]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("url_share", [0.001, 0.3])
def test_grep_with_anchors_keeps_exactly_the_lines_holding_needle_and_anchor(make_file, seed, url_share):
    """Anchors are a prefilter only: rare (searched first) or common (the needle's path), the wanted lines are the
    same as without them, long lines and gzip included."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    words = [b"Downloading x-1.0.whl", b"index", b"plain words", b"Looking in indexes:"]
    lines = []
    for _ in range(20_000):
        line = b" ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        if rng.random() < url_share:
            line += b" https://h.example/simple"
        if rng.random() < url_share:
            line = b"\x1b[32mok\x1b[0m " + line
        if rng.random() < 0.0005:
            line = b"A" * 90_000 + line + b" Downloading https://l.example/x.whl " + b"B" * 70_000
        lines.append(line)
    data = b"\n".join(lines) + b"\n"
    path = make_file(f"logs/r{seed}.log.gz", gzip.compress(data))
    plain, _ = _grep(path, window=64 * 1024)
    anchored, allowance = _grep(path, window=64 * 1024, anchors=(b"://", b"\x1b"))
    assert _wanted(anchored) == _wanted(plain) and allowance.used == len(data)
    assert len(anchored) <= len(plain)
    long = {i + 1 for i, ln in enumerate(lines) if len(ln) > 64 * 1024}
    short = [(i + 1, ln) for i, ln in enumerate(lines) if i + 1 not in long and NEEDLE.search(ln)]
    kept = [h for h in anchored if h[0] not in long]
    assert _wanted(kept) == _wanted(short)
    assert (kept == _wanted(short)) == (url_share < 0.1)  # rare anchors: nothing else is read; common: the needle's
    assert any(n in long for n, _ in _wanted(anchored))  # pieces of long lines too
