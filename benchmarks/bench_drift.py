"""Drift on a large prediction stream: the whole analysis against pandas merely loading the same file.

Usage::

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--format jsonl|csv] [--runs 3] [--keep] [--json FILE]
    .venv/bin/python benchmarks/bench_drift.py --quick                     # 100,000 rows, one run (make bench)
    .venv/bin/python benchmarks/bench_drift.py --rows 10000000 --runs 1 --no-reference  # ten million: bounded memory
    .venv/bin/python benchmarks/bench_drift.py --careful                   # also the per-line loader (before)

The stream (generated deterministically, in blocks, under a temporary folder) is written as the bundled cases write
theirs (``evidence-samples/tampered-weights/predictions/predictions.jsonl``: compact JSON with sorted keys,
``confidence`` with four decimals, ``model_version``, ``predicted_class``, ``request_id`` ``req_`` + 12 hex digits,
``timestamp`` in milliseconds with ``Z``; the CSV variant as ``poisoned-dependency``: ``timestamp,request_id,label,
confidence,model_version``): one prediction about every 2.6 s over 30 days with a daily cycle of volume, classes
55/30/15 (the baseline) until 62 % of the period, then about 8 % of the other classes' traffic flipped to a very
confident ``positive`` (a backdoor trigger, as in the tampered sample). One line in 10,000 is something a real
export holds: a record without its class, a retried (duplicate) record, a record out of time order.

Measured, each in its own process, alternating after a warm-up (``harness.compare``):

* **workbench (hot path)**: ``load_file`` of the predictions and the baseline, ``prepare_stream``,
  ``analyse_stream`` (windows, change-point scan, onset interval, excess) and the ``--json`` document, exactly
  what ``workbench drift`` and the investigation's ``drift`` section run; its ``seconds`` exclude the imports;
* **pandas.read_json** (the reference): ``pandas.read_json(path, lines=True)`` (``read_csv`` for CSV), its
  ``seconds`` the read alone;
* **workbench, careful loader** (``--careful``): the same with the loader's per-line path (the code before the
  fast path, and still the path of every line the fast one does not vouch for);
* **workbench drift CLI**: ``workbench drift FILE --baseline B --json``, whole process (start-up imports included).

pyarrow is kept out of both children unless ``--with-pyarrow``: pandas 3 imports it whenever it can (and then
reads strings into Arrow, slower here: 8.5 s against 5.0 s of CPU on one million lines), the workbench does not
depend on it, and a fresh ``.venv`` has none. The CLI runs in the venv as it is.

Targets (issue 15): hot path <= 1.5 x the pandas read; peak RSS of the hot path <= 1.5 x the file's size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import compare, report, workdir, write_json

CLASSES = ("positive", "negative", "neutral")
BASELINE = (0.55, 0.30, 0.15)
START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DAYS = 30
ONSET = 0.62
FLIP = 0.08
ODD_EVERY = 10_000
BLOCK = 250_000
TARGET = 1.5


def _arrivals(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """Epoch ms of predictions ``lo:hi`` of ``n``: evenly spread over the period, bent into a daily cycle."""
    u = (np.arange(lo, hi) + rng.random(hi - lo)) / n  # in [0, 1), increasing
    day, frac = np.divmod(u * DAYS, 1.0)
    bent = frac - 0.75 * np.sin(2 * np.pi * frac) / (2 * np.pi)  # more traffic in the afternoon; still monotone
    return (START_MS + (day + bent) * 86_400_000).astype(np.int64)


def generate(folder: Path, rows: int, fmt: str, seed: int = 15) -> Path:
    """Write ``predictions.<fmt>`` and ``baseline_distribution.json`` into ``folder``; returns the predictions."""
    rng = np.random.default_rng(seed)
    path = folder / f"predictions.{fmt}"
    onset = int(rows * ONSET)
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            out.write("timestamp,request_id,label,confidence,model_version\n")
        for lo in range(0, rows, BLOCK):
            hi = min(rows, lo + BLOCK)
            ms = _arrivals(rng, lo, hi, rows)
            label = (rng.random(hi - lo)[:, None] > np.cumsum(BASELINE)).sum(1)
            conf = np.clip(rng.beta(6, 2, hi - lo), 0.34, 0.9999)
            flipped = (np.arange(lo, hi) >= onset) & (label > 0) & (rng.random(hi - lo) < FLIP)
            label[flipped] = 0
            conf[flipped] = np.clip(rng.beta(40, 1.5, int(flipped.sum())), 0.34, 0.9999)
            stamps = np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").astype(str), "Z")
            ids = rng.integers(0, 2**48, hi - lo)
            names = np.array(CLASSES)[label]
            if fmt == "csv":
                lines = [f"{t},req_{i:012x},{c},{p:.4f},sentiment-model-v2.1\n"
                         for t, i, c, p in zip(stamps, ids, names, conf, strict=True)]  # fmt: skip
            else:
                lines = [f'{{"confidence":{p:.4f},"model_version":"sentiment-model-v2.1","predicted_class":"{c}",'
                         f'"request_id":"req_{i:012x}","timestamp":"{t}"}}\n'
                         for t, i, c, p in zip(stamps, ids, names, conf, strict=True)]  # fmt: skip
            for k in range(ODD_EVERY // 2, len(lines), ODD_EVERY):  # what real exports hold, now and then
                kind = (lo + k) // ODD_EVERY % 3
                if kind == 0 and fmt == "csv":
                    lines[k] = lines[k].replace(names[k], "", 1)  # no class
                elif kind == 0:
                    lines[k] = lines[k].replace(f'"predicted_class":"{names[k]}",', "")  # no class
                elif kind == 1:
                    lines[k] = lines[k] + lines[k]  # retried: an exact duplicate
                else:
                    lines[k - 1], lines[k] = lines[k], lines[k - 1]  # out of time order
            out.write("".join(lines))
    (folder / "baseline_distribution.json").write_text(json.dumps(dict(zip(CLASSES, BASELINE, strict=True))))
    return path


def hot(predictions: Path, baseline_path: Path) -> None:
    """The workbench's drift analysis in this process; the last line printed is JSON with ``seconds``."""
    from workbench.drift import Baseline, analyse_stream, prepare_stream
    from workbench.evidence import LoadContext, load_file
    from workbench.termsafe import json_text

    started = time.perf_counter()
    loaded = load_file(predictions, LoadContext(relpath=str(predictions)), kind="predictions")
    base_file = load_file(baseline_path, LoadContext(relpath=str(baseline_path)), kind="baseline_distribution")
    baseline = Baseline.from_loaded(base_file)
    stream, warnings = prepare_stream([loaded], baseline)
    report_ = analyse_stream(stream, baseline, window="1d")
    report_.warnings = [*base_file.warnings, *loaded.warnings, *warnings, *report_.warnings]
    doc = json_text(report_.to_dict())
    seconds = time.perf_counter() - started
    exposure = report_.exposure() or {}
    facts = {"verdict": report_.verdict, "predictions": len(report_.stream), "onset": exposure.get("onset"),
             "warnings": len(report_.warnings), "json_chars": len(doc)}  # fmt: skip
    print(json.dumps({"seconds": seconds, **facts}))


def reference(predictions: Path) -> None:
    """pandas reading the file, in this process; the last line printed is JSON with ``seconds``."""
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(predictions) if predictions.suffix == ".csv" else pd.read_json(predictions, lines=True)
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": len(frame)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one run")
    parser.add_argument("--no-cli", action="store_true", help="leave out the CLI process")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="leave out pandas (it peaks at ~1.5 GiB per million lines: 15 GiB at ten million)",
    )
    parser.add_argument("--careful", action="store_true", help="also time the careful per-line loader (before)")
    parser.add_argument("--with-pyarrow", action="store_true", help="let pandas use pyarrow in both children")
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        if kind.endswith("-nopa"):  # pandas uses pyarrow whenever it can import it; the workbench does not need it
            sys.modules["pyarrow"] = None
            kind = kind.removesuffix("-nopa")
        if kind == "careful":  # the loader's per-line path alone (what every file went through before the fast one)
            from workbench.evidence import prediction_fast

            prediction_fast.available = lambda: False
            kind = "hot"
        hot(Path(paths[0]), Path(paths[1])) if kind == "hot" else reference(Path(paths[0]))
        return
    if args.quick:
        args.rows, args.runs = 100_000, 1
    with workdir("wb-bench-drift-", args.keep, parent=args.dir) as folder:
        started = time.perf_counter()
        path = generate(folder, args.rows, args.format)
        size_mib = path.stat().st_size / 2**20
        print(f"generated {args.rows:,} predictions ({size_mib:.0f} MiB {args.format}) in "
              f"{time.perf_counter() - started:.0f} s: {path}", flush=True)  # fmt: skip
        base = folder / "baseline_distribution.json"
        me = [sys.executable, str(Path(__file__).resolve()), "--child"]
        suffix = "" if args.with_pyarrow else "-nopa"
        commands = (
            {}
            if args.no_reference
            else {"pandas.read_json" if args.format == "jsonl" else "pandas.read_csv": [*me, f"ref{suffix}", str(path)]}
        )
        commands["workbench (hot path)"] = [*me, f"hot{suffix}", str(path), str(base)]
        if args.careful:
            commands["workbench, careful loader"] = [*me, f"careful{suffix}", str(path), str(base)]
        if not args.no_cli:
            cli = Path(sys.executable).with_name("workbench")
            commands["workbench drift CLI"] = [str(cli), "drift", str(path), "--baseline", str(base), "--json"]
        ref = next(iter(commands))
        results = compare(commands, runs=args.runs, warmup=args.rows < 5_000_000)  # the file was just written
        title = f"drift on {args.rows:,} {args.format} predictions ({size_mib:.0f} MiB)"
        hot_name = "workbench (hot path)"
        if args.no_reference:
            out = [report(title, results, reference=ref)]
        else:
            out = [report(title, {ref: results[ref], hot_name: results[hot_name]}, reference=ref, ratio_on="inner",
                          target=TARGET)]  # fmt: skip
            if len(results) > 2:  # the careful loader and the CLI, no target of their own (the CLI by wall)
                out.append(report(f"{title}: the others against the pandas read", results, reference=ref,
                                  ratio_on="inner"))  # fmt: skip
        peak = max(s.peak_mib for s in results["workbench (hot path)"])
        memory = {"title": f"{title}: peak RSS of the hot path / file size", "target": TARGET,
                  "met": peak / size_mib <= TARGET, "file_mib": size_mib,
                  "tools": {"workbench (hot path)": {"peak_mib": peak, "ratio": peak / size_mib}}}  # fmt: skip
        print(f"  peak RSS of the hot path {peak:.0f} MiB = {peak / size_mib:.2f} x the file ({size_mib:.0f} MiB); "
              f"target <= {TARGET}: {'met' if memory['met'] else 'NOT met'}")  # fmt: skip
        print(f"  hot path: {results['workbench (hot path)'][-1].extra}")
        out.append(memory)
        write_json(args.json, {"results": out})


if __name__ == "__main__":
    main()
