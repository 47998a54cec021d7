"""Run every hot-path benchmark, one after the other, and print one table of ratios against their targets.

Usage::

    .venv/bin/python benchmarks/run_all.py [--full] [--only NAME ...] [--json FILE]

``make bench`` runs this at the quick size (``--quick`` is passed to every script: small data, one timed run, so
the figures only show that every path runs and roughly where it stands). ``--full`` runs each script at the size
the issue's targets are stated for, with its default number of runs; the README's performance section holds those
figures. The scripts run serially: two benchmarks at once on a 2-core machine would measure each other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: one script per hot path (issue 15), in the order of the README's table; the fleet sweep (issue 18) last
SCRIPTS = (
    "bench_hashing",
    "bench_tensor_diff",
    "bench_drift",
    "bench_logscan",
    "bench_timeline",
    "bench_investigate",
    "bench_sweep",
)


def _rows(name: str, payload: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, measurement, ratio, target and whether it is met) for each result in a script's JSON."""
    if "results" in payload:  # a list of report() dicts
        results = payload["results"]
    elif "tools" in payload:  # one report() dict
        results = [payload]
    else:  # report() dicts by name
        results = [v for v in payload.values() if isinstance(v, dict) and "tools" in v]
    rows = []
    for res in results:
        ratios = [f"{t['ratio']:.2f}" for t in res.get("tools", {}).values() if "ratio" in t]
        if "ratio_to_sum" in res:
            ratios = [f"{res['ratio_to_sum']:.2f}"]
        if "pdf_extra_seconds" in res:
            ratios = [f"+{res['pdf_extra_seconds']:.2f} s"]
        target = res.get("target")
        met = res.get("met")
        verdict = "" if met is None else ("met" if met else "NOT met")
        rows.append(
            (name, str(res.get("title", "")), ", ".join(ratios), f"{target if target is not None else ''} {verdict}")
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="full sizes and runs (minutes each)")
    ap.add_argument("--only", nargs="*", default=None, help="script names (default: all)")
    ap.add_argument("--json", default=None, help="write every script's results here")
    args = ap.parse_args(argv)
    chosen = args.only or list(SCRIPTS)
    # our own modules compiled once (with PYTHONDONTWRITEBYTECODE set, every measured process would compile them)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "workbench")], check=False)
    collected: dict[str, dict] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-all-") as tmp:
        for name in chosen:
            script = HERE / f"{name}.py"
            if not script.is_file():
                print(f"== {name}: missing ({script})", flush=True)
                failed.append(name)
                continue
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(script), "--json", str(out), *([] if args.full else ["--quick"])]
            print(f"\n== {name}: {' '.join(cmd[1:])}", flush=True)
            t = time.perf_counter()
            proc = subprocess.run(cmd, check=False)
            print(f"== {name}: exit {proc.returncode} after {time.perf_counter() - t:.0f} s", flush=True)
            if proc.returncode != 0 or not out.is_file():
                failed.append(name)
                continue
            collected[name] = json.loads(out.read_text())
    print("\nSummary (ratio of medians against the reference; see each script's table for min-max and memory)")
    if not args.full:
        print("  quick size: one run on small data, dominated by start-up; the targets are stated for --full")
    for row in (r for name, payload in collected.items() for r in _rows(name, payload)):
        print("  " + " | ".join(row))
    if args.json:
        Path(args.json).write_text(json.dumps(collected, indent=2) + "\n")
    if failed:
        print("failed to run: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
