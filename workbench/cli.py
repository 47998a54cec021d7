"""Command-line interface: a thin adapter that parses arguments and calls one library function.

Exit status (contract): 0 the command did its job (whatever it found); 1 the evidence shows findings at or above
``--fail-on``; 2 usage error or unusable input, with a one-line reason on stderr. ``custody verify`` adds 1 for
changed, missing or added evidence, 3 for a broken ledger chain, 4 for an incomplete intake and 5 for a ledger that
does not match an anchor (findings.json, report.html, ``--expect-head``, the signed head); ``investigate``
(:mod:`workbench.commands.investigate`) exits 3 when an analysis or a notebook cell failed (the report is still
written and shows the error) and 130 when interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from workbench._version import __version__
from workbench.errors import WorkbenchError


def _printable(text: object) -> str:
    """Evidence-derived text (file names, ledger fields) redacted, control and bidi characters shown as escapes."""
    from workbench.termsafe import shown

    return shown(text)


def _json_text(doc: object) -> str:
    from workbench.termsafe import json_text

    return json_text(doc)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"workbench: error: {_printable(message)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """Forensic workbench for AI supply-chain incidents."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@cli.group()
def custody() -> None:
    """Chain-of-custody ledger commands."""


@custody.command("verify")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--case", "case_root", type=click.Path(path_type=Path), help="Evidence folder if it has moved.")
@click.option("--expect-head", metavar="HEX", help="A ledger head you kept elsewhere: the ledger must hold it.")
@click.option("--key", type=click.Path(path_type=Path), help="PEM public key: OUT_DIR/custody.head.sig must verify.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def custody_verify(
    out_dir: Path, case_root: Path | None, expect_head: str | None, key: Path | None, as_json: bool
) -> None:
    """Re-hash the evidence recorded in OUT_DIR/custody.jsonl, check the ledger's chain and its anchors.

    The anchors are the head quoted in findings.json and report.html, --expect-head and, with --key, the signed
    head written by `investigate --sign-head`: a ledger rewritten whole (evidence edited, every hash recomputed)
    matches none of them.

    Exit 0 intact, 1 evidence changed/missing/added, 4 intake incomplete (interrupted or failed part-way: the
    ledger cannot vouch for the evidence), 3 ledger chain broken, 5 the ledger does not match an anchor (rewritten
    or replaced), 2 no usable ledger (or a symlink), a bad --expect-head or an unusable --key.
    """
    from workbench.custody import verify

    try:
        result = verify(out_dir, case_root=case_root, expect_head=expect_head, key=key)
    except WorkbenchError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(_json_text(result.to_dict()))
    else:
        for label, items in (("changed", result.changed), ("missing", result.missing), ("added", result.added)):
            for item in items:
                click.echo(f"{label}: {_printable(item)}")
        for broken in result.broken_links:
            click.echo(f"ledger broken: {_printable(broken)}")
        for anchor in result.anchors:
            state = "holds" if anchor.ok else f"DOES NOT MATCH: {anchor.problem}"
            click.echo(f"anchor {_printable(anchor.source)}: {_printable(state)}")
        for note in result.notes:
            click.echo(f"note: {_printable(note)}")
        if not result.intake.complete:
            click.echo(f"{_printable(result.intake.describe())}; this ledger cannot vouch for the evidence")
        state = "verified" if result.verified else "NOT verified"
        click.echo(f"custody {state}: {result.files} files at intake, ledger head {_printable(result.head)}")
    sys.exit(result.exit_code)


def _add_plugin_commands() -> None:
    import importlib
    import pkgutil

    from workbench import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"workbench.commands.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            cli.add_command(command)


_add_plugin_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="workbench")
