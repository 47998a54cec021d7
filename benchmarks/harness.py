"""Side-by-side timing of whole processes: the workbench's code path against a reference tool, in one run.

Every benchmark script in this folder measures through :func:`compare`: each command runs as its own process, the
commands alternate run by run (``A B A B …``, so that load from other processes on a shared machine affects both
alike), and for every run the harness records

* wall time (``time.perf_counter`` around the process),
* CPU time of the process and everything it waited for (user + system, from ``os.wait4``),
* peak RSS of the process itself (GNU ``time``'s ``%M``: the largest of the process and its waited-for children;
  the process is started by ``/usr/bin/time`` because Linux carries the forking parent's high-water mark over
  ``exec``, so a child of this harness, which may hold the benchmark's data, would report at least the harness's
  own size; without GNU time ``os.wait4`` is used and the figure is an upper bound), and
* peak RSS summed over the whole process tree, sampled from ``/proc`` every 20 ms, the tree's members found again
  every 0.5 s (what a cgroup limit would see; a helper that lives shorter than that may be missed, so it is a lower
  bound; a walk of all of ``/proc`` at every sample cost the machine a core's minute in a long run).

A command may print a JSON object as its last line of standard output with a ``"seconds"`` key: the time of the
hot path measured inside the process, without the interpreter's start and imports. The report shows it as
``inner`` beside the wall time, and ``ratio_on="inner"`` compares on it.

:func:`report` prints median, min and max per command and the ratio of medians to the reference, and returns the
same as a dict (``--json`` in the scripts writes it, ``benchmarks/run_all.py`` collects them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Sample", "compare", "loadavg_note", "report", "tree_rss_kib", "workdir", "write_json"]

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else shutil.which("time")


@dataclass
class Sample:
    wall: float
    cpu: float
    peak_mib: float
    tree_peak_mib: float
    inner: float | None = None
    extra: dict = field(default_factory=dict)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (one pass over ``/proc``)."""
    kids = _children()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(kids.get(p, ()))
    return found


def rss_kib(pids: list[int]) -> int:
    """Resident memory of these processes, in KiB (a process that is gone counts 0)."""
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_KIB
    return total


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB (0 once it is gone)."""
    return rss_kib(tree_pids(pid))


#: the tree's members are found again every REFRESH seconds (a walk over /proc), its memory read every SAMPLE
SAMPLE, REFRESH = 0.02, 0.5


def _run(cmd: Sequence[str], env: dict[str, str] | None, cwd: str | None) -> Sample:
    peak_tree = 0
    done = threading.Event()
    fd, timing = tempfile.mkstemp(prefix="wb-bench-time-")
    os.close(fd)
    argv = [GNU_TIME, "-f", "%M %U %S", "-o", timing, *cmd] if GNU_TIME else list(cmd)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)

    def sample() -> None:
        nonlocal peak_tree
        members, found_at = [proc.pid], 0.0
        while not done.is_set():
            now = time.monotonic()
            if now - found_at >= REFRESH:
                members, found_at = tree_pids(proc.pid), now
            peak_tree = max(peak_tree, rss_kib(members))
            done.wait(SAMPLE)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),
        threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True),
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu, peak_kib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    try:
        fields = Path(timing).read_text().split()
        peak_kib, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
    except (OSError, ValueError, IndexError):
        pass
    finally:
        Path(timing).unlink()
    out = b"".join(out_chunks).decode(errors="replace")
    if proc.returncode != 0:
        err = b"".join(err_chunks).decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: " + " | ".join(err))
    inner, extra = None, {}
    lines = out.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        try:
            extra = json.loads(lines[-1])
            inner = extra.pop("seconds", None)
        except ValueError:
            extra = {}
    return Sample(wall, cpu, peak_kib / 1024, peak_tree / 1024, inner, extra)


def compare(
    commands: dict[str, Sequence[str]],
    *,
    runs: int = 3,
    warmup: bool = True,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    progress: bool = True,
) -> dict[str, list[Sample]]:
    """Run each command ``runs`` times, alternating, after one untimed warm-up round (page cache, imports)."""
    results: dict[str, list[Sample]] = {name: [] for name in commands}
    if warmup:
        for cmd in commands.values():
            _run(cmd, env, cwd)
    for i in range(runs):
        order = list(commands.items())
        if i % 2:
            order.reverse()  # A B, B A, A B: neither always runs first after the other
        for name, cmd in order:
            s = _run(cmd, env, cwd)
            results[name].append(s)
            if progress:
                inner = f", inner {s.inner:.2f} s" if s.inner is not None else ""
                print(f"  run {i + 1}/{runs} {name}: {s.wall:.2f} s wall, {s.cpu:.2f} s CPU{inner}, "
                      f"{s.peak_mib:.0f} MiB peak, {s.tree_peak_mib:.0f} MiB tree", flush=True)  # fmt: skip
    return results


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def report(
    title: str,
    results: dict[str, list[Sample]],
    *,
    reference: str,
    ratio_on: str = "wall",
    target: float | None = None,
    higher_is_better: bool = False,
) -> dict:
    """Print a table of medians (min to max) and the ratio of each command's median to the reference's.

    ``ratio_on`` is ``"wall"``, ``"cpu"`` or ``"inner"`` (the command's own hot-path time, falling back to wall for
    a command that reports none). ``target`` is the ratio the issue asks for; the verdict line says whether it is met.
    """
    out: dict = {"title": title, "reference": reference, "ratio_on": ratio_on, "target": target, "tools": {}}
    print(f"\n{title}  ({loadavg_note()})")
    print(f"  {'':24} {'wall s (min-max)':>20} {'CPU s':>8} {'inner s':>8} {'peak MiB':>9} {'tree MiB':>9}")
    for name, samples in results.items():
        wall = _stats([s.wall for s in samples])
        cpu = _stats([s.cpu for s in samples])
        inners = [s.inner for s in samples if s.inner is not None]
        inner = _stats(inners) if inners else None
        peak = max(s.peak_mib for s in samples)
        tree = max(s.tree_peak_mib for s in samples)
        out["tools"][name] = {"wall": wall, "cpu": cpu, "inner": inner, "peak_mib": peak, "tree_peak_mib": tree,
                              "extra": samples[-1].extra}  # fmt: skip
        inner_txt = f"{inner['median']:8.2f}" if inner else f"{'-':>8}"
        span = f"{wall['median']:.2f} ({wall['min']:.2f}-{wall['max']:.2f})"
        print(f"  {name:24} {span:>20} {cpu['median']:8.2f} {inner_txt} {peak:9.0f} {tree:9.0f}")

    def key(name: str) -> float:
        t = out["tools"][name]
        if ratio_on == "inner" and t["inner"]:
            return t["inner"]["median"]
        return t["cpu" if ratio_on == "cpu" else "wall"]["median"]

    ref = key(reference)
    for name in results:
        if name == reference:
            continue
        ratio = key(name) / ref if ref else float("inf")
        out["tools"][name]["ratio"] = ratio
        verdict = ""
        if target is not None:
            met = ratio >= target if higher_is_better else ratio <= target
            verdict = f"  target {'>=' if higher_is_better else '<='} {target}: {'met' if met else 'NOT met'}"
            out["met"] = met
        print(f"  ratio {name} / {reference} ({ratio_on}): {ratio:.2f}{verdict}")
    return out


def loadavg_note() -> str:
    """The 1-minute load average and core count, printed with every result (a loaded machine skews both sides)."""
    try:
        load = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        load = "?"
    return f"load {load} on {os.cpu_count()} cores"


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False, parent: str | None = None) -> Iterator[Path]:
    """A temporary folder for a benchmark's generated data, removed afterwards unless ``keep`` (then printed)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
