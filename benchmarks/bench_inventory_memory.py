"""Peak memory and time of the inventory on many small files (run by hand under ``/usr/bin/time -v``; not a test).

    .venv/bin/python benchmarks/bench_inventory_memory.py make /dev/shm/c200k 200000   # the case, on tmpfs
    /usr/bin/time -v .venv/bin/python benchmarks/bench_inventory_memory.py run /dev/shm/c200k
    /usr/bin/time -v .venv/bin/python benchmarks/bench_inventory_memory.py run /dev/shm/c200k --full  # investigate

The case: N files in 400 folders, half ``logs/*/N.log`` (two lines each, claimed by the pipeline-log loader), half
``notes/*/N.txt`` (claimed by no loader). ``run`` times ``Case.open``, ``collect_evidence`` and the artefact scan of
the files outside the model folders (every file sniffed) and prints the peak RSS; ``--full`` runs the whole
``Investigation.open`` (custody intake, every section; no output written).

Measured on the project's 2-core machine (other engineers' test runs sharing it; times vary by 2x), 200,000 files:

=================================  =============  ==============================================
                                   before (0b5ff10)  after
=================================  =============  ==============================================
``Case.open``                      8.7 s          3.5-3.9 s (breadth-first walk, mtime as int)
``collect_evidence``               123 s          52-62 s (one stat and one read per file for every
                                                  loader's detect; log frames made on first use)
outside-models scan                (none)         12-20 s (every file's head sniffed)
peak RSS (open + collect + scan)   730 MB         241 MB
=================================  =============  ==============================================

What held the memory: one pandas DataFrame per loaded log (about 5.7 KB and 1 ms each, 100,000 of them); the
records themselves (path, size, mtime, role) are about 200 bytes per file.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path


def make(root: str, n: int) -> None:
    for d in range(200):
        Path(f"{root}/case/logs/l{d:03d}").mkdir(parents=True, exist_ok=True)
        Path(f"{root}/case/notes/n{d:03d}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if i % 2:
            path, data = f"{root}/case/logs/l{i % 200:03d}/{i}.log", b"2026-11-19T09:00:00Z step ok\nsecond line\n"
        else:
            path, data = f"{root}/case/notes/n{i % 200:03d}/{i}.txt", b"analyst note\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data)
        os.close(fd)


def run(root: str, full: bool) -> None:
    if full:
        from workbench.investigation import Investigation

        t = time.perf_counter()
        inv = Investigation.open(f"{root}/case", f"{root}/out-{os.getpid()}", write=False)
        print(f"Investigation.open {time.perf_counter() - t:.1f}s verdict={inv.conclusions.verdict}")
    else:
        from workbench.case import Case
        from workbench.collect import collect_evidence
        from workbench.model.loose import scan_outside_models

        t0 = time.perf_counter()
        case = Case.open(f"{root}/case")
        t1 = time.perf_counter()
        evidence = collect_evidence(case)
        t2 = time.perf_counter()
        scan_outside_models(case)
        t3 = time.perf_counter()
        loaded = sum(len(v) for v in evidence.by_kind.values())
        print(f"files={len(case.files)} loaded={loaded} Case.open={t1 - t0:.1f}s collect={t2 - t1:.1f}s "
              f"outside-models scan={t3 - t2:.1f}s")  # fmt: skip
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("root")
    m.add_argument("n", type=int)
    r = sub.add_parser("run")
    r.add_argument("root")
    r.add_argument("--full", action="store_true")
    args = parser.parse_args()
    if args.cmd == "make":
        make(args.root, args.n)
    else:
        run(args.root, args.full)


if __name__ == "__main__":
    main()
