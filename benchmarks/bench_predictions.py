"""Peak memory and time of ``workbench drift`` on a large generated prediction stream (JSON lines or CSV).

Usage::

    .venv/bin/python benchmarks/bench_predictions.py [--rows 10000000] [--format jsonl|csv] [--dir /tmp]
        [--keep] [--shift-at 0.6] [--runs 1]

Writes ``predictions.<format>`` (``--rows`` records, one every 50 ms from 2026-11-01T00:00:00Z, three sentiment
classes 55/30/15 shifting to 62/25/13 after ``--shift-at`` of the stream, a confidence with four decimals, a model
version, a request id) and ``baseline_distribution.json`` in a fresh folder under ``--dir``, runs
``workbench drift PREDICTIONS --baseline BASELINE --json`` under ``/usr/bin/time -v`` and prints the wall-clock time,
the peak resident set size and the verdict, then removes the folder (``--keep`` leaves it, and prints its path).
The generator is deterministic (seeded) and writes in blocks, so it needs little memory itself.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ("positive", "negative", "neutral")
BEFORE = (0.55, 0.30, 0.15)
AFTER = (0.62, 0.25, 0.13)
START_NS = 1_793_491_200_000_000_000  # 2026-11-01T00:00:00Z
STEP_NS = 50_000_000
BLOCK = 200_000


def _iso(ns: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(ns.astype("datetime64[ns]").astype("datetime64[ms]"), unit="ms")
    return np.char.add(text.astype(str), "Z")


def generate(folder: Path, rows: int, fmt: str, shift_at: float, seed: int = 7) -> Path:
    """Write the stream and its baseline into ``folder``; returns the prediction file."""
    rng = np.random.default_rng(seed)
    path = folder / f"predictions.{fmt}"
    shift = int(rows * shift_at)
    with path.open("w", encoding="utf-8") as out:
        if fmt == "csv":
            out.write("timestamp,request_id,predicted_class,confidence,model_version\n")
        for lo in range(0, rows, BLOCK):
            idx = np.arange(lo, min(rows, lo + BLOCK))
            shares = np.where((idx >= shift)[:, None], AFTER, BEFORE)
            labels = np.array(CLASSES)[(rng.random(len(idx))[:, None] > shares.cumsum(1)).sum(1)]
            stamps = _iso(START_NS + idx * STEP_NS)
            conf = np.round(rng.beta(8, 2, len(idx)), 4)
            if fmt == "csv":
                lines = [f"{t},req-{i:010d},{c},{p},2.0.1\n" for t, i, c, p in zip(stamps, idx, labels, conf,
                                                                                      strict=True)]  # fmt: skip
            else:
                lines = [f'{{"timestamp": "{t}", "request_id": "req-{i:010d}", "predicted_class": "{c}", '
                         f'"confidence": {p}, "model_version": "2.0.1"}}\n'
                         for t, i, c, p in zip(stamps, idx, labels, conf, strict=True)]  # fmt: skip
            out.write("".join(lines))
    (folder / "baseline_distribution.json").write_text(json.dumps(dict(zip(CLASSES, BEFORE, strict=True))))
    return path


def measure(predictions: Path) -> dict[str, object]:
    """``workbench drift --json`` under ``/usr/bin/time -v``: wall seconds, peak RSS (MiB), verdict, exit status."""
    workbench = Path(sys.executable).with_name("workbench")
    cmd = ["/usr/bin/time", "-v", str(workbench), "drift", str(predictions), "--baseline",
           str(predictions.with_name("baseline_distribution.json")), "--json"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {}
    return {"wall_s": round(wall, 1), "peak_rss_mib": int(rss.group(1)) // 1024 if rss else None,
            "verdict": doc.get("verdict"), "predictions": doc.get("predictions"), "exit": proc.returncode,
            "onset": (doc.get("exposure") or {}).get("onset")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--shift-at", type=float, default=0.6)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-predictions-", dir=args.dir))
    try:
        started = time.perf_counter()
        path = generate(folder, args.rows, args.format, args.shift_at)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - started:.0f} s: {path}", flush=True)  # fmt: skip
        for _ in range(args.runs):
            print(json.dumps(measure(path)), flush=True)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
