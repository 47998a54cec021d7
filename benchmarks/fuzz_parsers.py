"""The long fuzz run: every property of ``tests/fuzz`` for as long as you give it, and the full-size bombs.

Usage::

    .venv/bin/python benchmarks/fuzz_parsers.py [--minutes 30] [--seed 0] [--out out/fuzz] [--only NAME ...]
    .venv/bin/python benchmarks/fuzz_parsers.py --big [--out out/fuzz]

Fuzz mode (default) runs the property tests of ``tests/fuzz`` (each loader of the registry, the safetensors header
parser, the pickle analysis, the content sniffer, the log scanner, timestamps, ``case.yaml``, prediction records)
round-robin in rounds of ``--examples`` random examples each, with a new seed per round (``--seed`` gives the
first, so that a run can be repeated), until ``--minutes`` have passed. Explicit ``@example`` inputs of the tests are
left to CI. Every failure is saved once per target and error kind in ``OUT/crashes/<target>-<n>.txt``: the error,
the minimal falsifying input hypothesis shrank it to, the ``@reproduce_failure`` blob and the traceback; shrunk
examples are kept in the example database ``OUT/hypothesis-db`` (``HYPOTHESIS_PROFILE=dev`` does not read it:
replay a crash with its blob). ``OUT/summary.json`` lists examples run and failures per target.

``--big`` runs the issue-11 bombs at full size, each in a child process, and prints its peak memory and wall time:
a 200,001-file case (inventory and intake), 10 million prediction records (``investigate`` without the notebook:
``Investigation.open``), a 2 GiB gzip bomb of matching lines (``scan-logs``), the YAML alias bomb in ``case.yaml``
(``Case.open``). Inputs are written under ``OUT/big`` (several GB for the predictions; reused when present).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _targets() -> dict[str, Callable[[], None]]:
    """Every property test of tests/fuzz as a no-argument callable (parametrized ones once per parameter)."""
    from tests.fuzz import test_loader_properties as loaders
    from tests.fuzz import test_model_properties as model
    from tests.fuzz import test_text_properties as text

    out: dict[str, Callable[[], None]] = {}
    for name in loaders.NAMES:
        out[f"loader:{name}"] = lambda name=name: loaders.test_a_loader_never_fails_outside_its_documented_errors(
            name=name
        )
    for module in (model, text):
        for attr in dir(module):
            fn = getattr(module, attr)
            if attr.startswith("test_") and hasattr(fn, "hypothesis"):
                area = module.__name__.split(".")[-1].removeprefix("test_").removesuffix("_properties")
                out[f"{area}:{attr[5:]}"] = fn
    return out


def _configure(fn: Callable, examples: int, seed: int, db: Path) -> None:
    """Give a @given test random examples under ``seed``, the long deadline and the run's database."""
    from datetime import timedelta

    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    fn._hypothesis_internal_use_settings = settings(
        max_examples=examples, deadline=timedelta(seconds=30), derandomize=False, print_blob=True,
        database=DirectoryBasedExampleDatabase(str(db)), suppress_health_check=list(HealthCheck),
        phases=(Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    )  # fmt: skip
    fn._hypothesis_internal_use_seed = seed


def fuzz(minutes: float, seed: int, out: Path, only: list[str], examples: int) -> int:
    from tests.fuzz import test_loader_properties as loaders

    targets = {k: v for k, v in _targets().items() if not only or any(o in k for o in only)}
    crashes = out / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    summary = {k: {"examples": 0, "rounds": 0, "failures": []} for k in targets}
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + minutes * 60
    round_no = 0
    while time.monotonic() < deadline:
        for name, fn in targets.items():
            if time.monotonic() >= deadline:
                break
            run_seed = seed + round_no
            holder = (
                loaders.test_a_loader_never_fails_outside_its_documented_errors if name.startswith("loader:") else fn
            )
            _configure(holder, examples, run_seed, out / "hypothesis-db")
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - every failure is a finding of the fuzz run
                kind = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                summary[name]["failures"].append({"seed": run_seed, "error": kind})
                if (name, kind) not in seen:
                    seen.add((name, kind))
                    path = crashes / f"{name.replace(':', '-')}-{len(seen)}.txt"
                    notes = "\n".join(getattr(exc, "__notes__", []))
                    path.write_text(f"target: {name}\nseed: {run_seed}\nerror: {kind}\n\n{notes}\n\n"
                                    + "".join(traceback.format_exception(exc)), encoding="utf-8")  # fmt: skip
                    print(f"CRASH {name} (seed {run_seed}): {kind} -> {path}", file=sys.stderr)
            summary[name]["examples"] += examples
            summary[name]["rounds"] += 1
        round_no += 1
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = {k: v for k, v in summary.items() if v["failures"]}
    print(f"{sum(v['examples'] for v in summary.values())} examples over {len(targets)} targets in {round_no} "
          f"round(s); {len(failed)} target(s) failed; summary: {out / 'summary.json'}")  # fmt: skip
    for name, info in failed.items():
        print(f"  {name}: {len(info['failures'])} failing round(s), first: {info['failures'][0]['error']}")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------------- --big
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
kind, arg = sys.argv[1], Path(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))  # a last guard for the machine: 12 GiB of address space
start = time.monotonic()
error = None
try:
    if kind == "files":
        from workbench import custody
        from workbench.case import Case
        case = Case.open(arg)
        custody.intake(case, Path(sys.argv[3]))
        detail = f"{len(case.files)} inventoried, {len(case.unexamined)} unexamined entries"
    elif kind == "predictions":
        from workbench.investigation import Investigation
        inv = Investigation.open(arg, Path(sys.argv[3]), write=False)
        detail = f"verdict {inv.verdict}, drift {inv.conclusions.coverage['drift'].status}"
    elif kind == "yaml":
        from workbench.case import Case
        case = Case.open(arg)
        detail = f"{len(case.warnings)} warnings"
    elif kind == "gzip":
        from workbench.logscan.engine import Scanner
        scan = Scanner().scan_path(arg)
        detail = f"{len(scan.matches)} matches kept, complete={scan.complete}, stopped={scan.stopped}"
except Exception as exc:  # noqa: BLE001
    detail, error = "", f"{type(exc).__name__}: {exc}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(time.monotonic() - start, 1), "peak_mib": round(peak), "detail": detail,
                  "error": error}))
"""


def _big_inputs(base: Path) -> dict[str, tuple[str, Path, list[str]]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_generate", ROOT / "tests" / "hostile" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    base.mkdir(parents=True, exist_ok=True)
    files = base / "files-200001"
    if not (files / "done").exists():
        for i in range(200_001):
            d = files / f"d{i // 1000:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:06d}.txt").write_bytes(b"x\n")
        (files / "done").write_bytes(b"")
    preds = base / "predictions-10m"
    if not (preds / "predictions" / "predictions.jsonl").exists():
        (preds / "predictions").mkdir(parents=True, exist_ok=True)
        labels = ["billing", "account", "technical", "refund"]
        with (preds / "predictions" / "predictions.jsonl").open("wb") as fh:
            for start in range(0, 10_000_000, 100_000):
                fh.write(gen.predictions([labels[(start + i) % 4] for i in range(100_000)]))
        (preds / "predictions" / "baseline_distribution.json").write_bytes(gen.baseline(dict.fromkeys(labels, 25)))
    bomb = base / "bomb.log.gz"
    if not bomb.exists():
        line = b"2026-11-03T10:00:00Z " + gen.INDICATOR.encode() + b"\n"
        bomb.write_bytes(gen.gzip_bomb(2 << 30, line, line, line=line))
    yaml_case = base / "yaml-bomb"
    yaml_case.mkdir(exist_ok=True)
    (yaml_case / "case.yaml").write_bytes(gen.yaml_alias_bomb())
    return {
        "200,001 files (Case.open + intake)": ("files", files, [str(base / "out-files")]),
        "10 million predictions (Investigation.open)": ("predictions", preds, [str(base / "out-predictions")]),
        "2 GiB gzip of matching lines (log scanner)": ("gzip", bomb, []),
        "YAML alias bomb (Case.open)": ("yaml", yaml_case, []),
    }


def big(out: Path, only: list[str]) -> int:
    import shutil

    status = 0
    for title, (kind, path, extra) in _big_inputs(out / "big").items():
        if only and not any(o in title for o in only):
            continue
        for leftover in extra:
            shutil.rmtree(leftover, ignore_errors=True)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", _CHILD, kind, str(path), *extra], capture_output=True,
                              text=True, env=env, check=False, timeout=3600)  # fmt: skip
        try:
            report = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            report = {"seconds": None, "peak_mib": None, "detail": "", "error": proc.stderr.strip()[-300:]}
        status |= bool(report["error"])
        print(f"{title:48} {report['seconds']!s:>7} s {report['peak_mib']!s:>6} MiB  "
              f"{report['error'] or report['detail']}")  # fmt: skip
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=200, help="examples per target and round")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "fuzz")
    parser.add_argument("--only", nargs="*", default=[], help="targets whose name contains one of these")
    parser.add_argument("--big", action="store_true", help="run the full-size bombs instead")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.big:
        return big(args.out, args.only)
    return fuzz(args.minutes, args.seed, args.out, args.only, args.examples)


if __name__ == "__main__":
    sys.exit(main())
