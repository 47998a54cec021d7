"""``workbench diff-model SUSPECT [REFERENCE]``: what changed in a model, down to files, tensors and config keys.

Exit status: 0 done (whatever was found), 1 a finding reached ``--fail-on``, 2 usage error or unusable input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.commands.trust_options import build_trust, trust_options
from workbench.errors import WorkbenchError
from workbench.records import Finding, Severity
from workbench.termsafe import echo, json_text

if TYPE_CHECKING:
    from workbench.model.dirdiff import ModelDiff
    from workbench.model.signatures import SignatureResult

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
@trust_options()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Exit 1 when a finding reaches this severity.")
def command(suspect: Path, reference: Path | None, manifest: Path | None, as_json: bool, fail_on: str | None,
            **trust_args: Any) -> None:  # fmt: skip
    """Diff SUSPECT against REFERENCE (folders or checkpoint files), or against its signed manifest.

    Reports files only in one side, modified and identical (SHA-256); every tensor of the checkpoints (safetensors,
    sharded or not; PyTorch zip, legacy stacked and tar; GGUF; a safetensors checkpoint against a PyTorch one):
    added, removed, shape/dtype changed, modified with changed fraction, max and relative change, changed rows and
    the share of the change in its top singular value; JSON configs key by key; what could not be compared. Nothing
    is executed or unpickled.

    With trust material (--key, --ca-bundle, --trusted-root, --signature) the suspect's signature is verified too
    (see verify-model). Without REFERENCE and without a manifest to compare with, only the signature is checked.
    """
    from workbench.checks.integrity import hash_model_dir
    from workbench.model.dirdiff import diff_model

    if reference is not None and manifest is not None:
        raise click.UsageError("give either REFERENCE or --manifest, not both")
    trust = build_trust(**trust_args)
    has_manifest = manifest is not None or (suspect / ".signatures" / "manifest.json").is_file()
    signature_only = reference is None and not has_manifest and suspect.is_dir()
    check_signature = signature_only or not trust.empty or trust.signature is not None
    if check_signature and suspect.exists() and not suspect.is_dir():
        _fail("a signature is checked on a model folder: SUSPECT is a file")
    # the diff and the signature check need the same digests: hash the suspect once and give them to both
    hashes = hash_model_dir(suspect) if check_signature and suspect.is_dir() else None
    result = None
    if not signature_only:
        try:
            result = diff_model(suspect, reference, manifest=manifest, suspect_hashes=hashes)
        except WorkbenchError as exc:
            _fail(str(exc))
    signature = check_and_show(suspect, trust, hashes) if check_signature else None
    findings = sorted((result.findings if result else []) + (signature.findings if signature else []),
                      key=lambda f: -f.severity.rank)  # fmt: skip
    if as_json:
        doc = result.to_dict() if result else {"suspect": str(suspect), "compared_with": "nothing"}
        doc["findings"] = [f.to_dict() for f in findings]
        if signature is not None:
            doc["signature"] = signature.to_dict()
        click.echo(json_text(doc))
    else:
        if result is not None:
            _print_text(result)
        else:
            echo("no reference and no manifest to compare with: only the signature was checked")
        if signature is not None:
            print_signature(signature)
        _print_findings(findings, result)
    if fail_on and _reached(findings, Severity.parse(fail_on)):
        sys.exit(1)


def check_and_show(model: Path, trust: Any, hashes: dict[str, str] | None = None) -> SignatureResult:
    """The one verifier on ``model`` (exit 2 when the folder does not exist)."""
    from workbench.model.signatures import verify_model_signature

    if not model.is_dir():
        _fail(f"{model}: not a model folder")
    return verify_model_signature(model, trust, hashes=hashes)


def print_signature(sig: SignatureResult) -> None:
    """The signature outcome in a few lines."""
    echo(f"signature: {sig.outcome}" + (f" ({sig.reason})" if sig.reason and not sig.verified else ""))
    signed = f"{sig.signed_at} ({sig.signed_at_source})" if sig.signed_at else None
    rows = (("file", sig.signature), ("method", sig.method), ("signer", sig.signer), ("issuer", sig.issuer),
            ("signed", signed), ("transparency log", sig.tlog))  # fmt: skip
    for label, value in rows:
        if value:
            echo(f"  {label}: {value}")
    if sig.files:
        ok = sum(1 for f in sig.files if f.status == "ok")
        echo(f"  files: {ok} of {len(sig.files)} match their signed digests")
    for note in sig.notes:
        echo(f"  note: {note}")


def _reached(findings: list[Finding], threshold: Severity) -> bool:
    return any(f.severity.rank >= threshold.rank for f in findings)


def _print_findings(findings: list[Finding], result: ModelDiff | None) -> None:
    for f in findings:
        echo(f"{f.severity.value:8} {f.category:22} {f.title}")
    if result is None:
        return
    for item in result.unexamined:
        echo(f"not examined: {item}")
    for note in result.limits:
        echo(f"limit: {note}")
    for w in result.warnings:
        echo(f"warning: {w}", err=True)


def _print_text(result: ModelDiff) -> None:
    files = result.files.to_dict()
    echo(f"files: {', '.join(f'{len(v)} {k}' for k, v in files.items())}")
    statuses: dict[str, int] = {}
    for t in result.tensors:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    echo(f"tensors: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items())) or 'none compared'}")
