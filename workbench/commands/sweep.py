"""``workbench sweep REGISTRY...``: every model of one or more registries checked on Dask, results kept in a store.

Exit status: 0 done (whatever was found); 1 ``--fail-on`` reached (a model judged compromised, or suspicious);
2 usage error or unusable input (nothing swept); 130 interrupted (everything finished is kept: run the same command
again to resume).
"""

from __future__ import annotations

import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from workbench.commands.trust_options import build_trust, trust_options
from workbench.termsafe import echo, json_text


def _fail(message: str, code: int = 2) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(code)


@click.command("sweep")
@click.argument("registries", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Path(path_type=Path), metavar="DIR|MANIFEST",
              help="A reference registry of the same layout, a previous sweep's --out folder, or a JSON manifest of "
                   "file digests per model (a signature beside it, e.g. fleet.json.sig, is verified with "
                   "--key).")  # fmt: skip
@trust_options(signature=False)
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:8786); default: "
              "DASK_SCHEDULER_ADDRESS, Dask config, else a LocalCluster on this machine.")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 512), help="Workers of the LocalCluster (default: one per core).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("out/sweep"), show_default=True,
              help="Output folder: the verdict store (sweep.sqlite), fleet.json, fleet.html, models/.")  # fmt: skip
@click.option("--retro-hunt", is_flag=True, help="Rescan only the stored files whose verdicts older rules produced, "
              "and report the verdicts that changed.")  # fmt: skip
@click.option(
    "--policy",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Pickle import policy replacing the shipped one (its digest is part of the rules digest).",
)
@click.option("--shard-size", type=click.IntRange(1 << 20), default=1 << 30, show_default=True, metavar="BYTES",
              help="Files larger than this are hashed as ranges of this size, one task each.")  # fmt: skip
@click.option("--fail-on", type=click.Choice(["compromised", "suspicious"]),
              help="Exit 1 when a model is judged this (suspicious: compromised too).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the fleet document (fleet.json) on stdout.")
def command(registries: tuple[Path, ...], baseline: Path | None, scheduler: str | None, workers: int | None,
            out_dir: Path, retro_hunt: bool, policy: Path | None, shard_size: int, fail_on: str | None,
            as_json: bool, **trust_args: Any) -> None:  # fmt: skip
    """Sweep every model folder under REGISTRY (folders of model folders, versioned sub-folders such as
    name/revision/): inventory and static scan of every file, the signature checked with the trust material, the
    comparison with --baseline down to the tensor where a baseline copy exists. One task per file on Dask; results
    are written to OUT/sweep.sqlite as they finish, so an interrupted sweep resumes where it stopped and a re-sweep
    rescans only what changed."""
    for reg in registries:
        if not reg.is_dir() or reg.is_symlink():
            _fail(f"{reg}: not a registry folder")
    if baseline is not None and not baseline.exists():
        _fail(f"--baseline {baseline}: does not exist")
    if policy is not None:
        from workbench.model.policy import load_policy

        try:
            load_policy(policy)
        except Exception as exc:  # noqa: BLE001 - any reason the policy cannot be used, named
            _fail(f"--policy {policy}: {exc}")
    trust = build_trust(**trust_args)
    # workers open these themselves, maybe on another host or in another folder: absolute paths (same mount)
    trust = replace(trust, **{k: Path(v).absolute() for k in ("key", "ca_bundle", "trusted_root")
                               if (v := getattr(trust, k)) is not None})  # fmt: skip
    policy = policy.absolute() if policy is not None else None
    baseline = baseline.absolute() if baseline is not None else None
    registries = tuple(r.absolute() for r in registries)
    from workbench.sweep.baseline import BaselineError, baseline_of, check_manifest_signature
    from workbench.sweep.fleet import fleet_document, write_fleet
    from workbench.sweep.run import SweepOptions, run_sweep
    from workbench.sweep.store import STORE_NAME, Store

    try:
        if baseline is not None and baseline.is_file():
            check_manifest_signature(baseline, trust.key)
            baseline_of("", baseline)  # read and checked now, not in the middle of the sweep
    except BaselineError as exc:
        _fail(str(exc))
    opts = SweepOptions(roots=list(registries), out=out_dir, baseline=baseline, trust=trust, scheduler=scheduler,
                        workers=workers, retro_hunt=retro_hunt, policy=policy, shard_bytes=shard_size,
                        progress=True if sys.stderr.isatty() else "lines")  # fmt: skip
    try:
        result = run_sweep(opts)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        echo(f"workbench: interrupted; every finished result is kept in {out_dir / STORE_NAME}: run the same command "
             "again to resume", err=True)  # fmt: skip
        sys.exit(130)
    except OSError as exc:
        _fail(f"cannot sweep: {exc}", 2)
    store = Store(out_dir / STORE_NAME)
    try:
        doc = fleet_document(store, result, [str(r.absolute()) for r in registries])
    finally:
        store.close()
    paths = write_fleet(out_dir, doc)
    if as_json:
        click.echo(json_text(doc))
    else:
        by = ", ".join(f"{n} {v}" for v, n in doc["by_verdict"].items() if n)
        echo(f"{doc['sweep']['models']} models ({by or 'none'}); {result.scanned} files scanned, {result.reused} "
             f"unchanged; {len(doc['changed'])} verdict(s) changed; {result.seconds:.1f} s on {result.workers} "
             f"worker(s)")  # fmt: skip
        echo(f"report: {paths['html']}")
        echo(f"json: {paths['json']}")
    bad = {"compromised": ("compromised",), "suspicious": ("compromised", "suspicious")}.get(fail_on or "", ())
    if any(m["verdict"] in bad for m in doc["models"]):
        sys.exit(1)
