"""Throughput, speed-up and memory per worker of ``workbench sweep`` on a LocalCluster (issue 18, "scale honestly").

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--models 1000] [--large 3] [--large-mib 1024] [--tampered 5]
                                               [--unsigned 5] [--shard-mib 64] [--runs 3] [--tool openssl]
                                               [--quick] [--keep] [--dir /tmp] [--json FILE]

Generates once, under a fresh folder of ``--dir`` (removed afterwards unless ``--keep``), a registry with
:func:`workbench.samples.registry.generate_registry` (``--models`` small signed models, ``--large`` of them padded
to ``--large-mib`` MiB, ``--tampered`` and ``--unsigned`` planted) and its public key, then measures through
:mod:`benchmarks.harness` (whole processes, alternating, after one untimed warm-up round that leaves every file in
the page cache, medians of ``--runs``):

1. **the fixed cost**: ``workbench sweep`` of one small model with 1 and with 2 workers (interpreter, imports,
   LocalCluster start and stop, report), subtracted from the figures below for their ``net`` throughput;
2. **the registry**: ``workbench sweep REG --key PUB --workers N --shard-size S --json`` with N = 1 and 2, each run
   on its own LocalCluster into a fresh ``--out`` (nothing reused from an earlier run), beside the reference hashing
   tool (``--tool``: ``openssl dgst -sha256``, the OpenSSL SHA-256 that hashlib uses too, or GNU ``sha256sum``,
   about four times slower here) over the same files with 1 and 2 processes (the files split into two lists of
   equal bytes, largest first): the floor for the hashing part of a sweep;
3. **the large models alone** (each large model's folder given as its own registry root), where hashing dominates:
   its net MB/s per worker is the figure a registry of large checkpoints scales by.

Each sweep runs under a small driver (this script with ``--child``) that starts the ``workbench sweep`` process,
reads, every 50 ms (the process tree found again every 0.5 s), ``VmHWM`` (the kernel's high-water mark of resident
memory) and CPU time of each Dask worker process (the sweep's descendants started by ``multiprocessing.spawn``) and
of the client process (which also hosts the LocalCluster's scheduler), checks that the fleet document names exactly
the planted problems (else it fails), and prints the sweep process's wall time as the harness's ``inner`` figure
(without the driver's own start) with those figures. The per-worker peak is the largest ``VmHWM`` read from any
worker before it exited (a peak in its last 50 ms can be missed). Large files are hashed as shard tasks of
``--shard-mib`` (64 MiB by default, so that 1 GiB files make 16 tasks each as the multi-GiB files of a real registry
make many 1 GiB tasks; 1 GiB files rather than the 256 MiB of the issue's example so that hashing, not the fixed
cost, dominates the large-model figure).
``--quick`` (``make bench``): 60 models, 1 large of 32 MiB, 3 tampered, 2 unsigned, one timed run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import REFRESH, compare, report, tree_pids, workdir, write_json  # noqa: E402 - after the path is set

PY = str(ROOT / ".venv/bin/python")
WORKBENCH = str(ROOT / ".venv/bin/workbench")
SAMPLE = 0.05
#: a net time (after the fixed cost) below this share of the whole is noise, not reported
MIN_NET = 0.1
CLK = os.sysconf("SC_CLK_TCK")


def _status(pid: int) -> tuple[str, int, float] | None:
    """``(command line, VmHWM KiB, CPU seconds)`` of a live process, or None once it is gone."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        hwm = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmHWM"))  # fmt: skip
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return cmd, hwm, (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def child(args: argparse.Namespace) -> None:
    """One measured sweep (module docstring): prints one JSON line for the harness."""
    out = Path(tempfile.mkdtemp(prefix=f"out-w{args.workers}-", dir=args.out_base))
    cmd = [WORKBENCH, "sweep", *args.roots, "--key", args.key, "--workers", str(args.workers), "--shard-size",
           str(args.shard_bytes), "--out", str(out), "--json"]  # fmt: skip
    workers: dict[int, tuple[int, float]] = {}
    client: list[tuple[int, float]] = [(0, 0.0)]
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)

    def sample() -> None:
        members, found_at = [proc.pid], 0.0
        while not done.is_set():
            if time.monotonic() - found_at >= REFRESH:  # a walk over all of /proc: not at every sample
                members, found_at = tree_pids(proc.pid), time.monotonic()
            for pid in members:
                st = _status(pid)
                if st is None:
                    continue
                if pid == proc.pid:
                    client[0] = (st[1], st[2])
                elif "spawn_main" in st[0]:  # a Dask worker (the resource tracker is not one)
                    workers[pid] = (max(st[1], workers.get(pid, (0, 0.0))[0]), st[2])
            done.wait(SAMPLE)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"workbench sweep exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    doc = json.loads((out / "fleet.json").read_text())
    bad = sorted(m["path"] for m in doc["models"] if m["verdict"] != "clean")
    expected = json.loads(args.expect)
    if bad != expected:
        sys.exit(f"the sweep named {bad}, the registry's planted problems are {expected}")
    s = doc["sweep"]
    print(json.dumps({"seconds": wall, "sweep_seconds": s["seconds"], "workers": s["workers"],
                      "worker_processes": len(workers), "models": s["models"], "files": s["files"],
                      "bytes": s["bytes_read"], "worker_peak_mib": [round(h / 1024, 1) for h, _ in workers.values()],
                      "worker_cpu_s": [round(c, 2) for _, c in workers.values()],
                      "client_peak_mib": round(client[0][0] / 1024, 1), "client_cpu_s": round(client[0][1], 2),
                      "named": len(bad)}))  # fmt: skip


def _balanced(files: list[Path], n: int) -> list[list[Path]]:
    """``n`` lists of about equal bytes, largest files first (each to the lightest list)."""
    lists: list[list[Path]] = [[] for _ in range(n)]
    loads = [0] * n
    for f in sorted(files, key=lambda p: -p.stat().st_size):
        i = loads.index(min(loads))
        lists[i].append(f)
        loads[i] += f.stat().st_size
    return lists


#: the reference hashing tools (``openssl dgst`` uses the same OpenSSL SHA-256 as hashlib; coreutils' is slower)
TOOLS = {"openssl": "openssl dgst -sha256", "sha256sum": "sha256sum"}


def _hasher(files: list[Path], n: int, work: Path, tag: str, tool: str) -> list[str]:
    """A shell running ``n`` hashing processes (via xargs) side by side over ``files``."""
    parts = []
    for i, chunk in enumerate(_balanced(files, n)):
        lst = work / f"files-{tag}-{n}-{i}.lst"
        lst.write_bytes(b"".join(bytes(p) + b"\0" for p in chunk))
        parts.append(f"xargs -0 -a {lst} {TOOLS[tool]} > /dev/null &")
    return ["sh", "-c", " ".join(parts) + " wait"]


def _sweep_cmd(roots: list[str], expected: list[str], args: argparse.Namespace, work: Path, tag: str) -> list[str]:
    base = work / f"outs-{tag}"
    base.mkdir()
    return [PY, "-P", __file__, "--child", "--key", str(work / "cosign.pub"), "--out-base", str(base),
            "--shard-bytes", str(args.shard_mib << 20), "--expect", json.dumps(sorted(expected)),
            "--roots", *roots]  # fmt: skip


def _name(n: int, what: str = "sweep") -> str:
    if what == "sweep":
        return f"sweep, {n} worker{'s' * (n > 1)}"
    return f"{what}, {n} process{'es' * (n > 1)}"


def _startup(root: str, args: argparse.Namespace, work: Path) -> dict:
    """The fixed cost of a sweep (interpreter, imports, LocalCluster start and stop, report) on one small model."""
    sweep = _sweep_cmd([root], [], args, work, "startup")
    results = compare({_name(n): [*sweep, "--workers", str(n)] for n in (1, 2)}, runs=args.runs, cwd=str(ROOT))
    return report("workbench sweep of one small model (the fixed cost)", results, reference=_name(1), ratio_on="inner")


def _scenario(title: str, roots: list[str], files: list[Path], expected: list[str], args: argparse.Namespace,
              work: Path, tag: str, startup: dict) -> dict:  # fmt: skip
    """Sweeps with 1 and 2 workers and the hashing tool with 1 and 2 processes over the same files; throughput
    gross (the whole process) and net of the fixed cost measured by :func:`_startup`."""
    sweep = _sweep_cmd(roots, expected, args, work, tag)
    commands = {_name(n): [*sweep, "--workers", str(n)] for n in (1, 2)}
    commands |= {_name(n, args.tool): _hasher(files, n, work, tag, args.tool) for n in (1, 2)}
    results = compare(commands, runs=args.runs, cwd=str(ROOT))
    rep = report(title, results, reference=_name(1), ratio_on="inner")
    total = sum(f.stat().st_size for f in files)
    print(f"  {len(files)} files, {total / 1e6:.1f} MB; net: after the fixed cost of the same sweep on one model")
    for name, tool in rep["tools"].items():
        seconds = (tool["inner"] or tool["wall"])["median"]
        tool["throughput"] = {"files_s": len(files) / seconds, "mb_s": total / 1e6 / seconds}
        extra = tool["extra"]
        line = f"  {name:24} {len(files) / seconds:8.1f} files/s {total / 1e6 / seconds:8.1f} MB/s"
        if "models" in extra:
            fixed = startup["tools"][name]["inner"]["median"]
            net = seconds - fixed if seconds - fixed > MIN_NET * seconds else None  # else within the noise
            tool["throughput"] |= {"models_s": extra["models"] / seconds, "net_seconds": net}
            line += f" {extra['models'] / seconds:7.1f} models/s; net "
            if net is None:
                line += "n/a (within the fixed cost)"
            else:
                tool["throughput"] |= {"net_files_s": len(files) / net, "net_mb_s": total / 1e6 / net,
                                       "net_models_s": extra["models"] / net}  # fmt: skip
                line += (
                    f"{len(files) / net:.1f} files/s {total / 1e6 / net:.1f} MB/s {extra['models'] / net:.1f} models/s"
                )
            print(line)
            peaks = [max(s.extra.get("worker_peak_mib", [0]) or [0]) for s in results[name]]
            tool["worker_peak_mib"] = max(peaks)
            line = (f"  {'':24} worker peak {max(peaks):.0f} MiB (VmHWM), client peak "
                    f"{extra['client_peak_mib']:.0f} MiB, worker CPU {extra['worker_cpu_s']} s, client CPU "
                    f"{extra['client_cpu_s']} s (last run)")  # fmt: skip
        print(line)
    one, two = (rep["tools"][_name(n)]["inner"]["median"] for n in (1, 2))
    net1, net2 = (rep["tools"][_name(n)]["throughput"]["net_seconds"] for n in (1, 2))
    h1, h2 = (rep["tools"][_name(n, args.tool)]["wall"]["median"] for n in (1, 2))
    net_speedup = net1 / net2 if net1 and net2 else None
    rep |= {"speedup_2_over_1": one / two, "net_speedup_2_over_1": net_speedup, "hash_tool_speedup": h1 / h2,
            "files": len(files), "bytes": total, "models": rep["tools"][_name(1)]["extra"]["models"]}  # fmt: skip
    net_txt = f"{net_speedup:.2f}" if net_speedup else "n/a"
    print(f"  speed-up of 2 workers over 1: {one / two:.2f} gross, {net_txt} net "
          f"({args.tool} 2 processes over 1: {h1 / h2:.2f})")  # fmt: skip
    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--tampered", type=int, default=5)
    parser.add_argument("--unsigned", type=int, default=5)
    parser.add_argument("--shard-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tool", choices=sorted(TOOLS), default="openssl", help="the reference hashing tool")
    parser.add_argument("--quick", action="store_true", help="60 models, 1 large of 32 MiB, one run")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="write the reports here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--roots", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--out-base", help=argparse.SUPPRESS)
    parser.add_argument("--shard-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.models, args.large, args.large_mib, args.tampered, args.unsigned, args.runs = 60, 1, 32, 3, 2, 1
    from workbench.samples.registry import generate_registry, registry_key

    with workdir("wb-bench-sweep-", args.keep, parent=args.dir) as work:
        t = time.perf_counter()
        reg = work / "registry"
        truth = generate_registry(reg, models=args.models, large=args.large, large_bytes=args.large_mib << 20,
                                  tampered=args.tampered, unsigned=args.unsigned)  # fmt: skip
        registry_key(work / "cosign.pub")
        files = sorted(p for p in reg.rglob("*") if p.is_file())
        print(f"wrote {len(truth.models)} models, {truth.files} files, {truth.bytes / 1e6:.1f} MB under {work} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)  # fmt: skip
        out = {"config": {k: getattr(args, k) for k in ("models", "large", "large_mib", "tampered", "unsigned",
                                                        "shard_mib", "runs")}}  # fmt: skip
        plain = next(m for m in truth.models if m not in set(truth.tampered + truth.unsigned + truth.large))
        out["startup"] = _startup(str(reg / plain), args, work)
        out["registry"] = _scenario(f"workbench sweep of {len(truth.models)} models ({len(truth.large)} of "
                                    f"{args.large_mib} MiB), LocalCluster", [str(reg)], files,
                                    truth.tampered + truth.unsigned, args, work, "all", out["startup"])  # fmt: skip
        if truth.large:
            big = [str(reg / rel) for rel in truth.large]
            big_files = [p for p in files if any(str(p).startswith(b + "/") for b in big)]
            # generate_registry plants problems in small models only: every large one is clean
            out["large"] = _scenario(f"workbench sweep of the {len(big)} large models alone (hashing-dominated)",
                                     big, big_files, [], args, work, "large", out["startup"])  # fmt: skip
        write_json(args.json, out)


if __name__ == "__main__":
    main()
