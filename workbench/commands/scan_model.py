"""``workbench scan-model PATH``: classify a model folder's artefacts by content and analyse every pickle statically.

Exit status: 0 done (whatever was found), 1 a finding reached ``--fail-on``, 2 usage error or unusable input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.errors import WorkbenchError
from workbench.records import Severity
from workbench.termsafe import echo, json_text

SEVERITIES = [s.value for s in Severity]


def _fail(message: str) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(2)


@click.command("scan-model")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="Exit 1 when a finding reaches this severity.")
@click.option("--no-picklescan", is_flag=True, help="Skip picklescan's opinion (the genops analysis still runs).")
def command(path: Path, as_json: bool, fail_on: str | None, no_picklescan: bool) -> None:
    """Scan PATH (a model folder or one artefact) without loading anything.

    Classifies every file and archive member by its bytes (safetensors, pickle, PyTorch zip, GGUF, ONNX, Keras,
    numpy, code ...), flags dangerous types and pickles in disguise, lists every global each pickle imports with
    its opcode offset and safety class and the calls it would make, checks archives for bombs and tampering, and
    reports custom-code references (auto_map, Keras Lambda, chat templates). Nothing is executed or unpickled.
    """
    from workbench.model.scan import scan_model

    if path.is_symlink():
        _fail(f"{path}: is a symlink; give the model folder itself")
    if not path.exists():
        _fail(f"{path}: model path does not exist")
    try:
        scan = scan_model(path, use_picklescan=not no_picklescan)
    except WorkbenchError as exc:
        _fail(str(exc))
    findings = sorted(scan.findings, key=lambda f: -f.severity.rank)
    if as_json:
        doc = scan.to_json()
        doc["findings"] = [f.to_dict() for f in findings]
        click.echo(json_text(doc))
    else:
        artefacts = [a for a in scan.inventory.artefacts if a.member is None]
        dangerous = sum(a.dangerous for a in artefacts)
        gaps = [a for a in scan.inventory.artefacts if a.coverage != "analysed"]
        echo(f"files: {len(artefacts)} classified, {dangerous} of a dangerous type")
        for f in findings:
            echo(f"{f.severity.value:8} {f.category:24} {f.title}")
        if scan.unexamined:
            echo(f"coverage: partial ({len(gaps)} file(s) or member(s) not fully analysed, "
                 f"{len(scan.unexamined)} gap(s)); not clean")  # fmt: skip
        else:
            echo("coverage: complete (every file and member analysed)")
        for a in gaps:
            echo(f"  {a.path}" + (f" [{a.member}]" if a.member else "") + f": {a.coverage}")
        for w in scan.warnings:
            echo(f"warning: {w}", err=True)
    if fail_on and any(f.severity.rank >= Severity.parse(fail_on).rank for f in findings):
        sys.exit(1)
