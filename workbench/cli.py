"""Command-line interface: a thin adapter that parses arguments and calls one library function.

Exit status (contract): 0 the command did its job (whatever it found); 1 the evidence shows findings at or above
``--fail-on``; 2 usage error or unusable input, with a one-line reason on stderr. ``custody verify`` adds 1 for
changed, missing or added evidence and 3 for a broken ledger chain; ``investigate`` exits 3 when a notebook cell
failed (the report is still written and shows the error).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
import yaml

from workbench._version import __version__
from workbench.errors import ReportError, WorkbenchError

SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"workbench: error: {message}", err=True)
    sys.exit(code)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE with NAME a Python identifier", param_hint="-p")
        try:
            params[name] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            params[name] = value
    return params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """Forensic workbench for AI supply-chain incidents."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@cli.command()
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (default: out/<incident id>).")
@click.option("--reference", type=click.Path(path_type=Path), help="Known-good model folder to compare against.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE", help="Extra notebook parameter.")
@click.option("--fail-on", type=click.Choice(SEVERITY_ORDER[:3]), help="Exit 1 when a finding reaches this severity.")
@click.option("--pdf", is_flag=True, help="Also print report.pdf (A4) with headless Chromium.")
def investigate(
    case_dir: Path,
    out_dir: Path | None,
    reference: Path | None,
    params: tuple[str, ...],
    fail_on: str | None,
    pdf: bool,
) -> None:
    """Investigate CASE_DIR: custody intake, analyses, report.html and findings.json."""
    from workbench.report.runner import investigate as run

    parameters = _parse_params(params)
    try:
        result = run(
            case_dir,
            out_dir,
            reference=reference,
            parameters=parameters,
            pdf=pdf,
            progress=lambda msg: click.echo(msg, err=True),
        )
    except ReportError as exc:
        _fail(f"{exc} (report written with the error shown)", 3)
    except WorkbenchError as exc:
        _fail(str(exc))
    click.echo(f"verdict: {result.verdict}")
    click.echo(f"report: {result.html}")
    click.echo(f"findings: {result.findings}")
    if fail_on:
        doc = json.loads(result.findings.read_text(encoding="utf-8"))
        worst = SEVERITY_ORDER.index(fail_on)
        if any(SEVERITY_ORDER.index(f["severity"]) <= worst for f in doc["findings"]):
            sys.exit(1)


@cli.group()
def custody() -> None:
    """Chain-of-custody ledger commands."""


@custody.command("verify")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--case", "case_root", type=click.Path(path_type=Path), help="Evidence folder if it has moved.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def custody_verify(out_dir: Path, case_root: Path | None, as_json: bool) -> None:
    """Re-hash the evidence recorded in OUT_DIR/custody.jsonl and check the ledger's chain.

    Exit 0 intact, 1 evidence changed/missing/added, 3 ledger chain broken, 2 no usable ledger.
    """
    from workbench.custody import verify

    try:
        result = verify(out_dir, case_root=case_root)
    except WorkbenchError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for label, items in (("changed", result.changed), ("missing", result.missing), ("added", result.added)):
            for item in items:
                click.echo(f"{label}: {item}")
        for broken in result.broken_links:
            click.echo(f"ledger broken: {broken}")
        state = "verified" if result.verified else "NOT verified"
        click.echo(f"custody {state}: {result.files} files at intake, ledger head {result.head}")
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
