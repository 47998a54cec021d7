"""``workbench diff-model SUSPECT [REFERENCE]``: what changed in a model, down to files, tensors and config keys.

Exit status: 0 done (whatever was found), 1 a finding reached ``--fail-on``, 2 usage error or unusable input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.errors import WorkbenchError
from workbench.records import Finding, Severity
from workbench.termsafe import echo, json_text

if TYPE_CHECKING:
    from workbench.model.dirdiff import ModelDiff

SEVERITIES = [s.value for s in Severity]


def _fail(message: str) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(2)


@click.command("diff-model")
@click.argument("suspect", type=click.Path(path_type=Path))
@click.argument("reference", type=click.Path(path_type=Path), required=False)
@click.option("--manifest", type=click.Path(path_type=Path),
              help="Signature manifest to compare with when there is no REFERENCE "
                   "(default: SUSPECT/.signatures/manifest.json).")  # fmt: skip
@click.option("--key", type=click.Path(path_type=Path), help="PEM public key: also verify the suspect's signature.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Exit 1 when a finding reaches this severity.")
def command(suspect: Path, reference: Path | None, manifest: Path | None, key: Path | None, as_json: bool,
            fail_on: str | None) -> None:  # fmt: skip
    """Diff SUSPECT against REFERENCE (folders or checkpoint files), or against its signed manifest.

    Reports files only in one side, modified and identical (SHA-256); every tensor of the checkpoints (safetensors,
    sharded or not; PyTorch zip, legacy stacked and tar; GGUF; a safetensors checkpoint against a PyTorch one):
    added, removed, shape/dtype changed, modified with changed fraction, max and relative change, changed rows and
    the share of the change in its top singular value; JSON configs key by key; what could not be compared. Nothing
    is executed or unpickled.
    """
    from workbench.checks.integrity import hash_model_dir
    from workbench.model.dirdiff import diff_model
    from workbench.model.signatures import verify_model_signature

    if reference is not None and manifest is not None:
        raise click.UsageError("give either REFERENCE or --manifest, not both")
    if key is not None and not key.is_file():
        _fail(f"{key}: public key file does not exist")
    if key is not None and suspect.exists() and not suspect.is_dir():
        _fail("--key needs SUSPECT to be a model folder")
    # the diff and the signature check need the same digests: hash the suspect once and give them to both
    hashes = hash_model_dir(suspect) if key is not None and suspect.is_dir() else None
    try:
        result = diff_model(suspect, reference, manifest=manifest, suspect_hashes=hashes)
    except WorkbenchError as exc:
        _fail(str(exc))
    signature = None
    if key is not None:
        signature = verify_model_signature(suspect, key, key_display=str(key), hashes=hashes)
        result.findings += signature.findings
        result.warnings += signature.warnings
    findings = sorted(result.findings, key=lambda f: -f.severity.rank)
    if as_json:
        doc = result.to_dict()
        doc["findings"] = [f.to_dict() for f in findings]
        if signature is not None:
            doc["signature"] = signature.to_dict()
        click.echo(json_text(doc))
    else:
        _print_text(result, findings)
    if fail_on and _reached(findings, Severity.parse(fail_on)):
        sys.exit(1)


def _reached(findings: list[Finding], threshold: Severity) -> bool:
    return any(f.severity.rank >= threshold.rank for f in findings)


def _print_text(result: ModelDiff, findings: list[Finding]) -> None:
    files = result.files.to_dict()
    echo(f"files: {', '.join(f'{len(v)} {k}' for k, v in files.items())}")
    statuses: dict[str, int] = {}
    for t in result.tensors:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    echo(f"tensors: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items())) or 'none compared'}")
    for f in findings:
        echo(f"{f.severity.value:8} {f.category:22} {f.title}")
    for item in result.unexamined:
        echo(f"not examined: {item}")
    for note in result.limits:
        echo(f"limit: {note}")
    for w in result.warnings:
        echo(f"warning: {w}", err=True)
