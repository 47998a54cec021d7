"""``workbench verify-model MODEL``: the model's signature checked offline, and every file against it.

Exit status: 0 done (whatever the outcome), 1 a finding reached ``--fail-on``, 2 usage error or unusable input.
``--fail-on medium`` fails on anything short of a verified signature.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from workbench.commands.diff_model import SEVERITIES, check_and_show, print_signature
from workbench.commands.trust_options import build_trust, trust_options
from workbench.records import Severity
from workbench.termsafe import echo, json_text


@click.command("verify-model")
@click.argument("model", type=click.Path(path_type=Path))
@trust_options()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Exit 1 when a finding reaches this severity.")
def command(model: Path, as_json: bool, fail_on: str | None, **trust_args: Any) -> None:
    """Verify MODEL's signature: OpenSSF model signing (key, certificate, Sigstore) or cosign (signature or bundle
    over .signatures/manifest.json), found in the folder or given with --signature; then every file against it.

    Outcomes: verified, invalid (naming each file that differs), unsupported, unverifiable_offline (Sigstore
    without --trusted-root: the signer's identity is shown), unverified (no key or CA bundle given), unsigned.
    Offline; nothing in MODEL is executed.
    """
    trust = build_trust(**trust_args)
    result = check_and_show(model, trust)
    if as_json:
        click.echo(json_text({"model": str(model), **result.to_dict(),
                              "findings": [f.to_dict() for f in result.findings]}))  # fmt: skip
    else:
        print_signature(result)
        for f in result.findings:
            echo(f"{f.severity.value:8} {f.category:22} {f.title}")
        for w in result.warnings:
            echo(f"warning: {w}", err=True)
    threshold = Severity.parse(fail_on) if fail_on else None
    if threshold and any(f.severity.rank >= threshold.rank for f in result.findings):
        sys.exit(1)
