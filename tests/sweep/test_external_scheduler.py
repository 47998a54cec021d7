"""``workbench sweep`` against a separately started Dask scheduler and worker: the same code path as a real cluster.

A ``dask scheduler`` (port 0: the system picks a free one, read back from its ``--scheduler-file``) and one
``dask worker`` (one process, one thread, 1 GiB) are started from this venv's bin as subprocesses on 127.0.0.1 for
the module, and stopped by PID at teardown (terminate, wait, kill; the nanny's worker child too), whatever the tests'
outcome. Each test sweeps a generated registry (20 models, 2 tampered, 1 unsigned) through the CLI as its own
process, once with ``--scheduler`` and once with ``DASK_SCHEDULER_ADDRESS``, and checks that the planted problems
are named exactly, that the fleet document's sweep block reports the one external worker, and that the scheduler
itself ran the sweep's tasks (its per-prefix counts of finished ``file_task`` and ``model_task`` grew by the
sweep's files and models), so no LocalCluster did the work in its place.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.samples.registry import generate_registry, registry_key

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: how long the scheduler and the worker may take to come up, and each sweep to finish
START_TIMEOUT, SWEEP_TIMEOUT = 60, 120


def _dask_argv(role: str) -> list[str]:
    """``dask scheduler`` / ``dask worker``, or the older ``dask-scheduler`` / ``dask-worker`` entry points."""
    if (BIN / "dask").is_file():
        return [str(BIN / "dask"), role]
    legacy = BIN / f"dask-{role}"
    assert legacy.is_file(), f"neither {BIN / 'dask'} nor {legacy} is installed (distributed is a dependency)"
    return [str(legacy)]


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from ``/proc/<pid>/task/*/children``), found before it is stopped."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                kids = [int(k) for k in children.read_text().split()]
                found += kids
                todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has exited


def _stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` and the processes it started, by PID: SIGTERM, wait, SIGKILL what is left."""
    kids = _descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for k in kids:
        if _alive(k):
            with contextlib.suppress(ProcessLookupError):
                os.kill(k, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(address, [scheduler, worker] processes)`` of an external scheduler with one registered worker."""
    from distributed import Client

    base = tmp_path_factory.mktemp("dask")
    info = base / "scheduler.json"
    logs = {name: (base / f"{name}.log").open("wb") for name in ("scheduler", "worker")}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([*_dask_argv("scheduler"), "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(info)],
                                      stdout=logs["scheduler"], stderr=subprocess.STDOUT, cwd=base))  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not (info.is_file() and info.stat().st_size) and time.monotonic() < deadline:
            assert procs[0].poll() is None, (base / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:"), address
        procs.append(subprocess.Popen([*_dask_argv("worker"), address, "--nworkers", "1", "--nthreads", "1",
                                       "--memory-limit", "1GiB", "--no-dashboard", "--host", "127.0.0.1",
                                       "--name", "external-0", "--local-directory", str(base / "worker")],
                                      stdout=logs["worker"], stderr=subprocess.STDOUT, cwd=ROOT))  # fmt: skip
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=START_TIMEOUT)
        yield address, procs
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for fh in logs.values():
            fh.close()
    assert all(p.poll() is not None for p in procs)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """``(root, public key, truth)`` of a small generated registry."""
    base = tmp_path_factory.mktemp("registry")
    truth = generate_registry(base / "reg", models=20, tampered=2, unsigned=1)
    return base / "reg", registry_key(base / "cosign.pub"), truth


def _finished(address: str) -> dict[str, int]:
    """Tasks the scheduler has seen finish, by prefix (``file_task``, ``model_task``, ...)."""
    from distributed import Client

    def counts(dask_scheduler) -> dict[str, int]:
        return {name: int(tp.state_counts.get("memory", 0)) for name, tp in dask_scheduler.task_prefixes.items()}

    with Client(address, timeout="30s") as client:
        return client.run_on_scheduler(counts)


def _sweep(registry, out: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    root, key, _ = registry
    proc = subprocess.run([sys.executable, "-m", "workbench", "sweep", str(root), "--key", str(key), "--out",
                           str(out), "--json", *args], capture_output=True, text=True, timeout=SWEEP_TIMEOUT,
                          cwd=ROOT, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _check(doc: dict, truth, before: dict[str, int], after: dict[str, int]) -> None:
    verdicts = {m["path"]: m for m in doc["models"]}
    assert sorted(verdicts) == truth.models
    bad = sorted(p for p, m in verdicts.items() if m["verdict"] != "clean")
    assert bad == sorted(truth.tampered + truth.unsigned)
    for rel in truth.tampered:
        assert verdicts[rel]["verdict"] == "compromised"
        assert verdicts[rel]["signature"] == "invalid"
        assert "signature_invalid" in {f["category"] for f in verdicts[rel]["findings"]}
    for rel in truth.unsigned:
        assert verdicts[rel]["signature"] == "unsigned"
        assert "model_unsigned" in {f["category"] for f in verdicts[rel]["findings"]}
    assert all(m["signature"] == "verified" for p, m in verdicts.items() if p not in bad)
    sweep = doc["sweep"]
    assert sweep["workers"] == 1
    assert (sweep["models"], sweep["files"], sweep["files_scanned"]) == (20, truth.files, truth.files)
    assert after.get("file_task", 0) - before.get("file_task", 0) == truth.files
    assert after.get("model_task", 0) - before.get("model_task", 0) == len(truth.models)


def test_sweep_with_scheduler_option(cluster, registry, tmp_path):
    address, _ = cluster
    before = _finished(address)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    doc = _sweep(registry, tmp_path / "out", "--scheduler", address, env=env)
    _check(doc, registry[2], before, _finished(address))
    assert (tmp_path / "out" / "fleet.json").is_file() and (tmp_path / "out" / "sweep.sqlite").is_file()


def test_sweep_with_environment_address(cluster, registry, tmp_path):
    address, _ = cluster
    before = _finished(address)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DASK_")}, "DASK_SCHEDULER_ADDRESS": address}
    doc = _sweep(registry, tmp_path / "out", env=env)
    _check(doc, registry[2], before, _finished(address))


def test_cluster_processes_are_ours(cluster):
    """Both processes run until teardown (which the fixture checks stopped them)."""
    _, procs = cluster
    assert [p.poll() for p in procs] == [None, None]
    assert len(_descendants(procs[1].pid)) >= 1  # the nanny's worker process, stopped by PID too
