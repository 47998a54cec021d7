"""``workbench k8s-manifest --namespace NS --config FILE``: print the monitor's ConfigMap and DaemonSet (YAML).

Apply with ``workbench k8s-manifest -n ml-inference --config config.json | kubectl apply -f -``.
Exit status: 0 printed; 2 unusable configuration (one-line reason on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from workbench.termsafe import echo

__all__ = ["command"]


@click.command("k8s-manifest")
@click.option("-n", "--namespace", required=True, help="Namespace of the monitor.")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Monitor config (JSON).")
@click.option("--image", default=None, help="Image built from the repository's Dockerfile.")
@click.option(
    "--webhook-secret",
    metavar="NAME[:KEY]",
    help="Secret holding the webhook URL (key 'url' by default); the URL is then left out of the ConfigMap.",
)
@click.option(
    "--state-volume",
    type=click.Choice(["hostpath", "emptydir"]),
    default="hostpath",
    show_default=True,
    help="Where baselines live: a host folder (survives pod replacement) or an emptyDir (lost with the pod).",
)
@click.option(
    "--models-host-path",
    default="/models",
    show_default=True,
    help="Host folder holding every monitored model (mounted read-only).",
)
def command(
    config_path: Path,
    namespace: str,
    image: str | None,
    webhook_secret: str | None,
    state_volume: str,
    models_host_path: str,
) -> None:
    """Print the ConfigMap and DaemonSet that run `workbench monitor` on every node (read-only model mount)."""
    from workbench.ops.config import ConfigError
    from workbench.ops.k8s import DEFAULT_IMAGE, manifests, render

    try:
        docs = manifests(
            config_path,
            namespace=namespace,
            image=image or DEFAULT_IMAGE,
            webhook_secret=webhook_secret,
            state_volume=state_volume,
            models_host_path=models_host_path,
        )
    except ConfigError as exc:
        echo(f"workbench: error: {exc}", err=True)
        sys.exit(2)
    if json.loads(docs[0]["data"]["config.json"]).get("alert_webhook"):
        echo("workbench: warning: the webhook URL is stored in the ConfigMap; prefer --webhook-secret", err=True)
    click.echo(render(docs), nl=False)
