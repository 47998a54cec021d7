"""A sweep: plan the work from the registries and the store, run it on Dask, store every result as it arrives.

The same code runs on a laptop and on a cluster: :func:`connect` takes the scheduler from ``--scheduler``, else
``DASK_SCHEDULER_ADDRESS`` or Dask's configuration (``scheduler-address``), else starts a ``LocalCluster`` on
127.0.0.1 (one single-threaded worker process per core unless told, each with a memory limit, its dashboard on a
random loopback port). Every path a worker opens is absolute (the registries, the trust files, the policy): on a
cluster each worker must see them at the same paths. Work
is submitted through ``dask.distributed`` futures: one :func:`~workbench.sweep.tasks.file_task` per file (a file
larger than a shard: a scan task plus one :func:`~workbench.sweep.tasks.shard_task` per range), then one
:func:`~workbench.sweep.tasks.model_task` per model once its files are in. Results are consumed with
``as_completed`` (a tqdm bar on stderr) and written to the store at once, so an interrupted sweep resumes where it
stopped: a file whose path, size, mtime and rules digest match its stored row is not read again. A retro-hunt
rescans exactly the stored files whose results older rules produced, then re-judges their models.

A model's verdict uses the investigation's vocabulary and rule (:func:`workbench.conclusions.verdict.decide`) on
its findings, with the model section ``partial`` when a file could not be examined.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench._version import __version__
from workbench.sweep.baseline import baseline_of
from workbench.sweep.registry import ModelRef, walk_registry
from workbench.sweep.store import STORE_NAME, Store
from workbench.sweep.tasks import SHARD_BYTES, combine_shards, file_task, model_not_checked, model_task, shard_task

__all__ = ["SweepOptions", "SweepResult", "connect", "rules_digest", "run_sweep"]

#: memory limit of each worker of the LocalCluster the sweep starts
WORKER_MEMORY = "2GiB"


@dataclass(slots=True)
class SweepOptions:
    """What to sweep and how (the CLI's options)."""

    roots: list[Path]
    out: Path
    baseline: Path | None = None
    trust: Any = None
    scheduler: str | None = None
    workers: int | None = None
    retro_hunt: bool = False
    policy: Path | None = None
    shard_bytes: int = SHARD_BYTES
    progress: bool | str = True


@dataclass(slots=True)
class SweepResult:
    """What one sweep did: counts, the models judged in it, the verdicts that changed, the store."""

    sweep: int
    store: Path
    rules: str
    models: int = 0
    files: int = 0
    scanned: int = 0
    reused: int = 0
    bytes_read: int = 0
    judged: list[str] = field(default_factory=list)
    changed: list[tuple[str, str | None, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0
    retro: bool = False


def rules_digest(policy: Path | None = None) -> str:
    """The digest of what produces a file's verdict: the pickle import policy (the shipped one, or the team's
    ``--policy``), the workbench and picklescan versions (a verdict stored under another digest is re-examined by a
    retro-hunt)."""
    from importlib.metadata import version

    from workbench.model.policy import DEFAULT_POLICY_PATH

    digest = hashlib.sha256((policy or DEFAULT_POLICY_PATH).read_bytes())
    digest.update(f"workbench {__version__}; picklescan {version('picklescan')}".encode())
    return digest.hexdigest()[:16]


def connect(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    """``(client, cluster or None)``: the given or configured scheduler, else a LocalCluster (module docstring)."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None)
    if address:
        return Client(address, timeout="30s"), None
    import logging

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                 "distributed.http.proxy", "distributed.worker"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.WARNING)
    n = workers or max(1, os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit=WORKER_MEMORY, silence_logs=40)  # fmt: skip
    return Client(cluster), cluster


@dataclass(slots=True)
class _Model:
    ref: ModelRef
    pending: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: dict[str, list[str | None]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def run_sweep(opts: SweepOptions, on_model: Callable[[str, str, str | None], None] | None = None) -> SweepResult:
    """Sweep the registries (module docstring); ``on_model(key, verdict, previous)`` hears each judged model."""
    import time

    from distributed import as_completed

    started = time.monotonic()
    opts.out.mkdir(parents=True, exist_ok=True)
    store = Store(opts.out / STORE_NAME)
    rules = rules_digest(opts.policy)
    context = context_digest(opts)
    roots = [str(Path(r).absolute()) for r in opts.roots]
    sweep = store.begin(roots, rules, __version__, retro=opts.retro_hunt)
    result = SweepResult(sweep, store.path, rules, retro=opts.retro_hunt)
    registries = [walk_registry(r) for r in opts.roots]
    result.skipped = [f"{reg.root}: {s}" for reg in registries for s in reg.skipped]
    models = {m.key: _Model(m) for reg in registries for m in reg.models}
    if opts.retro_hunt:
        stale = {(f.root, f.path) for f in store.stale_files(rules)}
        models = {k: m for k, m in models.items() if any((m.ref.root, _path(m.ref, f.rel)) in stale
                                                           for f in m.ref.files)}  # fmt: skip
    result.models = len(models)
    client, cluster = connect(opts.scheduler, opts.workers)
    futures: dict[Any, tuple[str, str, Any]] = {}
    try:
        result.workers = len(client.scheduler_info().get("workers", {}))
        pool = as_completed(with_results=True, raise_errors=False)  # results in the pool's batches, no round trips
        for key, m in models.items():
            _plan(client, store, m, key, rules, opts, result, futures, pool)
            if m.pending == 0 and not _unchanged(store, m, rules, context, opts.retro_hunt):
                _submit_model(client, m, key, opts, futures, pool)
        bar = _bar(len(futures), opts.progress)
        for future, value in pool:
            kind, key, extra = futures.pop(future)
            m = models[key]
            if future.status != "finished":  # a failed task or a lost worker: not examined, the sweep goes on
                exc = value[1] if isinstance(value, tuple) and len(value) == 3 else value
                value = _failed(kind, m, extra, f"{type(exc).__name__}: {exc}")
            if kind == "model":
                verdict, previous = _judge(store, m, value, rules, sweep, context)
                result.judged.append(key)
                if previous != verdict:
                    result.changed.append((key, previous, verdict))
                if on_model is not None:
                    on_model(key, verdict, previous)
            else:
                _take(store, m, kind, extra, value, rules, sweep, opts, result)
                if m.pending == 0:
                    _submit_model(client, m, key, opts, futures, pool)
                    bar.total += 1
            bar.update(1)
        bar.close()
        store.finish(sweep)
    finally:
        for future in list(futures):
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
        store.close()
    result.seconds = time.monotonic() - started
    return result


def _unchanged(store: Store, m: _Model, rules: str, context: str, retro: bool) -> bool:
    """Every file of the model was reused and its stored verdict came from these rules, this trust material and
    baseline, and these digests: nothing to judge again (a retro-hunt judges again every model it touches)."""
    row = store.model(m.ref.root, m.ref.rel)
    return (not retro and row is not None and row.rules == rules and row.digests == m.digests
            and row.detail.get("context") == context)  # fmt: skip


def context_digest(opts: SweepOptions) -> str:
    """What a model's verdict depends on besides its files and the rules: the trust material (the files' bytes and
    the expected signer) and the baseline (its path and kind)."""
    digest = hashlib.sha256()
    trust = opts.trust
    for name in ("key", "ca_bundle", "trusted_root"):
        path = getattr(trust, name, None)
        digest.update(f"{name}:".encode() + (Path(path).read_bytes() if path else b"-") + b";")
    for name in ("identity", "issuer"):
        digest.update(f"{name}:{getattr(trust, name, None)};".encode())
    base = opts.baseline
    digest.update(f"baseline:{base.absolute() if base else '-'}:{base.is_dir() if base else ''}".encode())
    return digest.hexdigest()[:16]


def _failed(kind: str, m: _Model, extra: Any, reason: str) -> Any:
    """The result standing for a task that failed: the file (or model) recorded as not examined, with the reason."""
    if kind == "shard":
        m.failed[extra[0].rel] = f"a byte range could not be hashed ({reason})"
        return None
    if kind == "file":
        return {"path": extra.rel, "sha256": None, "size": None, "findings": [], "unexamined": [], "warnings": [],
                "error": reason}  # fmt: skip
    return {"findings": [], "unexamined": [], "limits": [], "signature": None, "baseline": None, "error": reason}


def _path(ref: ModelRef, rel: str) -> str:
    return rel if ref.rel == "." else f"{ref.rel}/{rel}"


def _bar(total: int, show: bool | str) -> Any:
    """A tqdm bar on stderr (``True``), a line every tenth of the work for logs (``"lines"``), or nothing."""
    from tqdm import tqdm

    if show == "lines":
        return _Lines(total)
    return tqdm(total=total, unit="task", desc="sweep", disable=not show, leave=False, dynamic_ncols=True)


class _Lines:
    """Progress for a stderr that is not a terminal: ``sweep: 40% (812 of 2,030 tasks)`` at each tenth."""

    def __init__(self, total: int) -> None:
        self.total, self.n, self.shown = total, 0, 0

    def update(self, k: int) -> None:
        import sys

        self.n += k
        tenth = 10 * self.n // max(self.total, 1)
        if tenth > self.shown:
            self.shown = tenth
            print(f"sweep: {10 * tenth}% ({self.n:,} of {self.total:,} tasks)", file=sys.stderr, flush=True)

    def close(self) -> None:
        return None


def _plan(client: Any, store: Store, m: _Model, key: str, rules: str, opts: SweepOptions, result: SweepResult,
          futures: dict, pool: Any) -> None:  # fmt: skip
    """Reuse what the store holds for unchanged files; submit tasks for the rest."""
    policy = str(opts.policy) if opts.policy else None
    for f in m.ref.files:
        path = _path(m.ref, f.rel)
        result.files += 1
        row = store.file(m.ref.root, path)
        fresh = row is not None and row.size == f.size and row.mtime_ns == f.mtime_ns and row.rules == rules
        if fresh and row is not None:
            m.digests[f.rel], m.results[f.rel] = row.digest, row.result
            result.reused += 1
            continue
        m.pending += 1
        abs_path, display = str(m.ref.path / f.rel), f"{Path(m.ref.root).name}/{path}"
        if f.size <= opts.shard_bytes:
            fut = client.submit(file_task, abs_path, display, policy=policy, pure=False)
            futures[fut] = ("file", key, f)
            pool.add(fut)
            continue
        n = -(-f.size // opts.shard_bytes)
        m.shards[f.rel] = [None] * n
        m.pending += n
        fut = client.submit(file_task, abs_path, display, hash_it=False, policy=policy, pure=False)
        futures[fut] = ("file", key, f)
        pool.add(fut)
        for i in range(n):
            length = min(opts.shard_bytes, f.size - i * opts.shard_bytes)
            fut = client.submit(shard_task, abs_path, i * opts.shard_bytes, length, pure=False)
            futures[fut] = ("shard", key, (f, i))
            pool.add(fut)


def _take(store: Store, m: _Model, kind: str, extra: Any, value: Any, rules: str, sweep: int, opts: SweepOptions,
          result: SweepResult) -> None:  # fmt: skip
    """One finished file or shard task: kept, and stored once the file's digest is known."""
    m.pending -= 1
    f = extra if kind == "file" else extra[0]
    if kind == "shard":
        m.shards[f.rel][extra[1]] = value or ""
        result.bytes_read += min(opts.shard_bytes, f.size - extra[1] * opts.shard_bytes)
    else:
        m.results[f.rel] = value
        result.scanned += 1
        if value.get("sha256"):
            m.digests[f.rel] = value["sha256"]
            result.bytes_read += f.size
    shards = m.shards.get(f.rel)
    if shards is not None and all(shards) and f.rel in m.results and f.rel not in m.failed:
        m.digests[f.rel] = combine_shards([s for s in shards if s], opts.shard_bytes)
    done = f.rel in m.results and f.rel in m.digests
    if done:
        store.put_file(m.ref.root, _path(m.ref, f.rel), f.size, f.mtime_ns, m.digests[f.rel], m.results[f.rel],
                       rules, __version__, sweep)  # fmt: skip


def _submit_model(client: Any, m: _Model, key: str, opts: SweepOptions, futures: dict, pool: Any) -> None:
    for rel, reason in m.failed.items():  # a file some of whose ranges failed: not examined (never stored: retried)
        m.results[rel] = {**m.results.get(rel, {}), "error": reason}
    missing = sorted(f.rel for f in m.ref.files if f.rel not in m.digests)
    if missing:  # the signature and the baseline cannot be checked against digests some files lack
        fut = client.submit(model_not_checked, f"no digest for {', '.join(missing[:5])}", pure=False)
        futures[fut] = ("model", key, None)
        pool.add(fut)
        return
    baseline = baseline_of(m.ref.rel, opts.baseline)
    display = f"{Path(m.ref.root).name}/{m.ref.rel}"
    fut = client.submit(model_task, str(m.ref.path), m.ref.rel, dict(m.digests), opts.trust, baseline, display,
                        pure=False)  # fmt: skip
    futures[fut] = ("model", key, None)
    pool.add(fut)


def _judge(store: Store, m: _Model, value: dict[str, Any], rules: str, sweep: int,
           context: str) -> tuple[str, str | None]:  # fmt: skip
    from workbench.sweep.verdicts import model_verdict

    verdict, findings, detail = model_verdict(m.ref, m.results, value)
    detail["context"] = context
    previous = store.put_model(m.ref.root, m.ref.rel, verdict, findings, m.digests, detail, rules, __version__, sweep)
    return verdict, previous
