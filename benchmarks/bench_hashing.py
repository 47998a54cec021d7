"""SHA-256 of evidence files: the workbench's custody hashing against ``openssl dgst -sha256`` (issue 15, target 1).

Usage::

    .venv/bin/python benchmarks/bench_hashing.py [--file-mib 512] [--files 16] [--each-mib 128] [--runs 3]
                                                 [--quick] [--keep] [--dir /tmp] [--json FILE]

Writes (deterministic pseudo-random bytes, ``numpy.random.default_rng(0)``) one file of ``--file-mib`` MiB and a
folder of ``--files`` files of ``--each-mib`` MiB under a fresh folder of ``--dir`` (removed afterwards unless
``--keep``), then compares, through :mod:`benchmarks.harness` (whole processes, alternating, after a warm-up round
that leaves the files in the page cache):

* **one file**: :func:`workbench.hashing.sha256_file` in a child process (its last line gives the hot-path seconds)
  against ``openssl dgst -sha256 FILE``. Target: ratio of wall times <= 1.0.
* **folder**: :func:`workbench.hashing.iter_hashes` over the folder's files, consumed inside ``contextlib.closing``
  with a locked byte counter exactly as :func:`workbench.custody.intake` does, against ONE
  ``openssl dgst -sha256 f1 ... fN`` process (serial over the files, and cheaper than a shell loop of N processes).
  Target: ratio of wall times <= 0.6.

The workbench's child runs as ``python -P`` (no current folder on ``sys.path``): with ``PYTHONPATH`` naming another
checkout (``git archive OLD workbench | tar -x -C /tmp/old``) the same script measures that version (the "before"
figures).

Both targets also ask for <= 64 MiB peak RSS of the hashing process whatever the sizes: the child prints its own
``VmHWM`` (the table's ``peak MiB``, ``ru_maxrss``, also counts the forked harness before ``exec``).
``--quick`` (``make bench``): 64 MiB and 16 x 8 MiB. Exits 0 even when a target is missed (the table says NOT met).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import compare, report, workdir, write_json  # noqa: E402 - after the path is set

PY = str(ROOT / ".venv/bin/python")
MEMORY_TARGET_MIB = 64

ONE_FILE = r"""
import json, sys, time
from workbench.hashing import sha256_file
t = time.perf_counter()
digest, size = sha256_file(sys.argv[1])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": time.perf_counter() - t, "sha256": digest, "bytes": size, "vmhwm_mib": hwm / 1024}))
"""

FOLDER = r"""
import contextlib, json, sys, threading, time
from pathlib import Path
from workbench.hashing import iter_hashes
paths = sorted(Path(sys.argv[1]).iterdir())
lock, done = threading.Lock(), [0]
def on_bytes(n):  # as custody.intake counts progress
    with lock:
        done[0] += n
t = time.perf_counter()
digests = {}
with contextlib.closing(iter_hashes(paths, on_bytes=on_bytes)) as results:
    for path, res in results:
        digests[path.name] = res[0]
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
out = {"seconds": time.perf_counter() - t, "files": len(digests), "bytes": done[0], "vmhwm_mib": hwm / 1024}
print(json.dumps(out))
"""


def write_random(path: Path, mib: int, rng: np.random.Generator) -> None:
    with path.open("wb") as fh:
        for _ in range(mib):
            fh.write(rng.bytes(1 << 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--each-mib", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 MiB and 16 x 8 MiB")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="write both reports here")
    args = parser.parse_args()
    if args.quick:
        args.file_mib, args.each_mib = 64, 8
    with workdir("wb-bench-hash-", args.keep, parent=args.dir) as work:
        rng = np.random.default_rng(0)
        one = work / "one.bin"
        write_random(one, args.file_mib, rng)
        folder = work / "folder"
        folder.mkdir()
        for i in range(args.files):
            write_random(folder / f"shard-{i:02d}.bin", args.each_mib, rng)
        print(f"wrote {args.file_mib} MiB and {args.files} x {args.each_mib} MiB under {work}", flush=True)
        single = compare({"workbench sha256_file": [PY, "-P", "-c", ONE_FILE, str(one)],
                          "openssl dgst": ["openssl", "dgst", "-sha256", str(one)]},
                         runs=args.runs, cwd=str(ROOT))  # fmt: skip
        one_rep = report(f"SHA-256 of one {args.file_mib} MiB file", single, reference="openssl dgst", target=1.0)
        files = [str(p) for p in sorted(folder.iterdir())]
        many = compare({"workbench iter_hashes": [PY, "-P", "-c", FOLDER, str(folder)],
                        "openssl dgst f1..fN": ["openssl", "dgst", "-sha256", *files]},
                       runs=args.runs, cwd=str(ROOT))  # fmt: skip
        many_rep = report(f"SHA-256 of {args.files} x {args.each_mib} MiB (custody intake's iter_hashes)", many,
                          reference="openssl dgst f1..fN", target=0.6)  # fmt: skip
        for rep in (one_rep, many_rep):
            name = next(n for n in rep["tools"] if n.startswith("workbench"))
            # the process's own high-water mark (VmHWM, reset at exec): the harness's ru_maxrss also counts the
            # forked harness before exec (about 38 MiB for every command, openssl's too)
            peak = rep["tools"][name]["extra"].get("vmhwm_mib", rep["tools"][name]["peak_mib"])
            verdict = "met" if peak <= MEMORY_TARGET_MIB else "NOT met"
            print(f"  {rep['title']}: hashing process peak {peak:.0f} MiB, target <= {MEMORY_TARGET_MIB}: {verdict}")
            rep["memory_met"] = peak <= MEMORY_TARGET_MIB
        write_json(args.json, {"one_file": one_rep, "folder": many_rep})


if __name__ == "__main__":
    main()
