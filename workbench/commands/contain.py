"""``workbench contain assess|isolate|rollback INCIDENT_ID MODEL_ID``: the playbook's containment script.

Exit status: 0 every step done; 2 refused before changing anything (unsafe id, incident folder not creatable,
symlinked model folder, no verified rollback target, unverified target without ``--allow-unsigned``), one-line
reason on stderr; 3 a step failed (disk full, model not found, kubectl failure, marker not writable): each failure
on stderr and in actions.log, nothing left half-copied (the model is fully old or fully new).

Roots: ``--models-root`` / ``WORKBENCH_MODELS_ROOT`` (/models), ``--archive-root`` / ``WORKBENCH_ARCHIVE_ROOT``
(/models/archive), ``--incidents-root`` / ``WORKBENCH_INCIDENTS_ROOT`` (/var/incidents), ``--quarantine-root`` /
``WORKBENCH_QUARANTINE_ROOT`` (/var/quarantine); signing key ``--key`` / ``WORKBENCH_SIGNING_KEY``; kubectl from
``WORKBENCH_KUBECTL`` or ``PATH``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from workbench.commands.trust_options import build_trust, trust_options
from workbench.termsafe import echo

__all__ = ["command"]

DEFAULT_KEY = "/etc/model-signing/cosign.pub"


def _roots_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("incident_id"),
        click.argument("model_id"),
        click.option(
            "--models-root",
            envvar="WORKBENCH_MODELS_ROOT",
            type=click.Path(path_type=Path),
            help="Deployed models (default /models). [env WORKBENCH_MODELS_ROOT]",
        ),
        click.option(
            "--archive-root",
            envvar="WORKBENCH_ARCHIVE_ROOT",
            type=click.Path(path_type=Path),
            help="Archived versions (default /models/archive). [env WORKBENCH_ARCHIVE_ROOT]",
        ),
        click.option(
            "--incidents-root",
            envvar="WORKBENCH_INCIDENTS_ROOT",
            type=click.Path(path_type=Path),
            help="Incident folders (default /var/incidents). [env WORKBENCH_INCIDENTS_ROOT]",
        ),
        click.option(
            "--quarantine-root",
            envvar="WORKBENCH_QUARANTINE_ROOT",
            type=click.Path(path_type=Path),
            help="Quarantined copies (default /var/quarantine). [env WORKBENCH_QUARANTINE_ROOT]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _key_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--key",
        "public_key",
        envvar="WORKBENCH_SIGNING_KEY",
        type=click.Path(path_type=Path),
        default=DEFAULT_KEY,
        show_default=True,
        help="Signing public key (PEM) for verifying versions. [env WORKBENCH_SIGNING_KEY]",
    )(func)


def _kube_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--dry-run", is_flag=True, help="Print the kubectl commands and steps; change nothing.")(func)
    return click.option("-n", "--namespace", help="Kubernetes namespace of the serving deployments.")(func)


def _handled(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        from workbench.ops.containment import ContainmentError, Roots, open_incident

        roots = Roots.resolve(
            models=kwargs.pop("models_root"),
            archive=kwargs.pop("archive_root"),
            incidents=kwargs.pop("incidents_root"),
            quarantine=kwargs.pop("quarantine_root"),
        )
        try:
            inc = open_incident(
                kwargs.pop("incident_id"),
                kwargs.pop("model_id"),
                roots,
                dry_run=kwargs.get("dry_run", False),
                echo=echo,
            )
            func(inc, **kwargs)
        except ContainmentError as exc:
            echo(f"workbench: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        if inc.problems:
            for problem in inc.problems:
                echo(f"workbench: step failed: {problem}", err=True)
            sys.exit(3)

    return wrapper


def _kube(namespace: str | None, dry_run: bool) -> Any:
    from workbench.ops.kube import Kube

    return Kube(namespace, dry_run=dry_run, echo=echo)


@click.group("contain")
def command() -> None:
    """Containment of a compromised model: assess, then isolate, then rollback."""


@command.command("assess")
@_roots_options
@_key_option
@click.option(
    "--reference",
    default="auto",
    show_default=True,
    help="Known-good copy to capture: 'auto' (newest verified archived version), a folder, or 'none'.",
)
@click.option("--no-model-copy", is_flag=True, help="Do not copy the deployed model into models/suspect/.")
@click.option(
    "--no-python-env",
    is_flag=True,
    help="Do not capture the inventory of the interpreter's site-packages into python-env/.",
)
@click.option(
    "--monitor-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Monitor configuration to preserve as monitor/config.json.",
)
@click.option(
    "--alerts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Monitor alerts JSONL to preserve as monitor/alerts.jsonl.",
)
@click.option(
    "--python",
    default=sys.executable,
    show_default="this interpreter",
    help="Interpreter of the serving environment, for pip freeze and the python-env/ inventory.",
)
@_handled
def assess_cmd(
    inc: Any,
    public_key: Path,
    reference: str,
    no_model_copy: bool,
    no_python_env: bool,
    monitor_config: Path | None,
    alerts: Path | None,
    python: str,
) -> None:
    """Capture model hashes, signature manifest, packages (and their site-packages inventory), processes, network
    and monitor output; take custody."""
    from workbench.ops.assess import assess

    assess(
        inc,
        python=python,
        copy_model=not no_model_copy,
        reference=reference,
        public_key=public_key,
        monitor_config=monitor_config,
        alerts=alerts,
        python_env=not no_python_env,
    )


@command.command("isolate")
@_roots_options
@_kube_options
@_handled
def isolate_cmd(inc: Any, namespace: str | None, dry_run: bool) -> None:
    """Scale serving to 0, keep a verified quarantine copy, write COMPROMISED.txt, list secrets to rotate."""
    from workbench.ops.containment import isolate

    isolate(inc, _kube(namespace, dry_run))
    echo("")
    echo("Isolation complete. Model removed from serving." if not dry_run else "Dry run: nothing was changed.")
    echo(f"Quarantined copy: {inc.quarantine_dir}/")


@command.command("rollback")
@_roots_options
@click.argument("target", required=False)
@_key_option
@trust_options(key=False, signature=False)
@click.option("--allow-unsigned", is_flag=True, help="Accept a target whose signature is missing or does not verify.")
@_kube_options
@_handled
def rollback_cmd(
    inc: Any,
    target: str | None,
    public_key: Path,
    allow_unsigned: bool,
    namespace: str | None,
    dry_run: bool,
    **trust_args: Any,
) -> None:
    """Install TARGET (or the newest archived version whose signature verifies) atomically; restart serving.

    Versions are verified by the same verifier as verify-model: cosign manifests and bundles with --key,
    model_signing bundles by key, by certificate (--ca-bundle) or Sigstore (--trusted-root, --identity).
    """
    from workbench.ops.rollback import rollback

    key = public_key if public_key is not None and public_key.is_file() else None
    trust = build_trust(key=key, **trust_args)
    if public_key is not None and key is None:
        trust = trust.with_key(public_key)  # named but absent: every version says so
    result = rollback(inc, _kube(namespace, dry_run), target=target, public_key=trust, allow_unsigned=allow_unsigned)
    if result is not None:
        echo("")
        echo(
            "Rollback complete. Service restored with " + ("verified" if result.verified else "UNVERIFIED") + " model."
        )
        echo(f"Forensic copy preserved in: {inc.quarantine_dir}/")
