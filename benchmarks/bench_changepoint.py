"""Accuracy and runtime of the drift change-point scan (run by hand; prints the figures for the closing note).

    .venv/bin/python benchmarks/bench_changepoint.py                 # runtime on 1M predictions + 200-seed sweep
    .venv/bin/python benchmarks/bench_changepoint.py --seeds 50 --skip-runtime
    .venv/bin/python benchmarks/bench_changepoint.py --permutations 99 --max-bins 300 --coarse-bins 60  # test settings

Scenarios (simulated with :func:`workbench.drift.simulate.simulate_stream`: 20,000 predictions over 14 days, daily
cycle of volume, class mix 55/30/15 as in the tampered sample, onset uniform between 25 % and 75 % of the period):

- ``3pp->10% bin``: a binary 90/10 model, 3 points moved to the 10 % class (the tests assert the targets here);
- ``3pp->15%``: 3 points of output mass moved to the 15 % class (``neutral``);
- ``3pp->30%``: the same toward the 30 % class (``negative``);
- ``3pp->55%``: the same toward the 55 % majority class (``positive``), the hardest case: the boundary can only be
  located to about ±1.5/δ² predictions (median), δ² = 0.0036 here, i.e. ~410 predictions or ~7 h;
- ``6pp rollback``: 6 points toward ``positive`` from 30 % to 60 % of the period, then back (two boundaries);
- ``unchanged``: no shift (false-change rate).

Figures: detection rate, median |onset error| in hours, 95 % interval coverage of the true onset (among detections),
false-change rate; runtime (wall and CPU) of ``scan_changes`` on 1,000,000 predictions (scan + interval).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.drift.changepoint import scan_changes
from workbench.drift.simulate import simulate_stream

SCENARIOS = {
    "3pp->10% bin": {"shift_pp": 3.0, "target": "minority", "shares": {"majority": 0.9, "minority": 0.1}},
    "3pp->15%": {"shift_pp": 3.0, "target": "neutral"},
    "3pp->30%": {"shift_pp": 3.0, "target": "negative"},
    "3pp->55%": {"shift_pp": 3.0, "target": "positive"},
    "6pp rollback": {"shift_pp": 6.0, "target": "positive", "onset": 0.3, "end": 0.6},
    "unchanged": {"shift_pp": 0.0},
}


def run_scenario(name: str, seeds: int, settings: dict, first_seed: int = 100_000) -> dict[str, float]:
    """Accuracy figures of one scenario over ``seeds`` seeds."""
    detected, errors, covered, end_errors, excess_cover = 0, [], [], [], []
    for i in range(seeds):
        rng = np.random.default_rng(first_seed + i)
        kwargs = dict(SCENARIOS[name])
        kwargs.setdefault("onset", float(rng.uniform(0.25, 0.75)))
        stream = simulate_stream(seed=rng, **kwargs)
        scan = scan_changes(stream.timestamps, stream.codes, stream.classes, seed=i, **settings)
        if not scan.changed:
            continue
        detected += 1
        if stream.onset is None or scan.onset_censored:
            continue
        errors.append(abs((scan.onset - stream.onset).total_seconds()) / 3600)
        lo, hi = scan.onset_interval
        covered.append(lo <= stream.onset <= hi)
        if stream.end is not None and scan.end is not None:
            end_errors.append(abs((scan.end - stream.end).total_seconds()) / 3600)
        row = scan.excess.set_index("class").loc[kwargs["target"]]
        excess_cover.append(row["excess_low"] <= stream.flipped <= row["excess_high"])
    nan = float("nan")
    return {
        "seeds": seeds,
        "detection": detected / seeds,
        "median_error_h": float(np.median(errors)) if errors else nan,
        "coverage": float(np.mean(covered)) if covered else nan,
        "median_end_error_h": float(np.median(end_errors)) if end_errors else nan,
        "excess_coverage": float(np.mean(excess_cover)) if excess_cover else nan,
    }


def runtime(n: int, settings: dict, repeats: int = 3) -> tuple[float, float]:
    """Best wall and CPU seconds of ``scan_changes`` on ``n`` predictions (simulation excluded)."""
    stream = simulate_stream(seed=7, n=n, shift_pp=3.0, target="neutral")
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        scan = scan_changes(stream.timestamps, stream.codes, stream.classes, **settings)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    assert scan.changed and scan.onset_interval is not None
    return best_wall, best_cpu


def end_to_end(n: int) -> float:
    """Wall seconds of the whole analysis (stream preparation, baseline tests, daily windows, scan) on ``n``."""
    from workbench.drift.analysis import analyse_stream, prepare_stream
    from workbench.drift.metrics import Baseline
    from workbench.evidence import Loaded

    sim = simulate_stream(seed=8, n=n, shift_pp=3.0, target="neutral")
    baseline = Baseline.from_mapping({"positive": 0.55, "negative": 0.30, "neutral": 0.15})
    start = time.perf_counter()
    stream, _ = prepare_stream([Loaded("predictions", "predictions.jsonl", sim.frame())], baseline)
    report = analyse_stream(stream, baseline, window="1d")
    assert report.verdict == "drift"
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--max-bins", type=int, default=500)
    parser.add_argument("--coarse-bins", type=int, default=100)
    parser.add_argument("--skip-runtime", action="store_true")
    args = parser.parse_args()
    settings = {"permutations": args.permutations, "max_bins": args.max_bins, "coarse_bins": args.coarse_bins}
    print(f"settings: {settings}")
    if not args.skip_runtime:
        wall, cpu = runtime(1_000_000, settings)
        print(f"runtime, 1,000,000 predictions (scan + interval): {wall:.2f} s wall, {cpu:.2f} s CPU (best of 3)")
        print(f"runtime, 1,000,000 predictions, whole analysis after loading: {end_to_end(1_000_000):.2f} s wall")
    head = ("scenario", "seeds", "detect", "med err h", "coverage", "end err h", "excess cov")
    print(f"{head[0]:14} " + " ".join(f"{h:>{w}}" for h, w in zip(head[1:], (5, 7, 9, 8, 9, 10), strict=True)))
    for name in args.scenarios:
        t0 = time.perf_counter()
        r = run_scenario(name, args.seeds, settings)
        print(f"{name:14} {r['seeds']:5d} {r['detection']:7.3f} {r['median_error_h']:9.2f} {r['coverage']:8.3f} "
              f"{r['median_end_error_h']:9.2f} {r['excess_coverage']:10.3f}   ({time.perf_counter() - t0:.0f} s)",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
