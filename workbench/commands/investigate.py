"""``workbench investigate CASE_DIR``: custody intake, every analysis, the report; built for automation.

stdout holds the result only (with ``--json``: one JSON document and nothing else); progress, one line per stage
with its duration, and every error go to stderr. Exit status (contract, docs/contracts.md): 0 done, 1 findings at
or above ``--fail-on``, 2 usage error or unusable input (nothing written), 3 an analysis or a notebook cell failed
(the report is still written), 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from workbench import parameters as options_registry
from workbench.commands.trust_options import trust_options, trust_parameters
from workbench.errors import WorkbenchError
from workbench.records import Severity

#: --fail-on choices: the three worst severities
FAIL_ON = [s.value for s in Severity][:3]
#: findings listed on stderr when --fail-on trips
SHOWN = 10


def _printable(text: object) -> str:
    """Evidence-derived text redacted, control and bidi characters shown as escapes (:mod:`workbench.termsafe`)."""
    from workbench.termsafe import shown

    return shown(text)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"workbench: error: {_printable(message)}", err=True)
    sys.exit(code)


def _epilog() -> str:
    lines = "\n".join(f"  {line}" for line in options_registry.help_lines())
    return (
        "\b\nAnalysis options (-p NAME=VALUE, repeatable; list options may be repeated):\n"
        f"{lines}\n\n"
        "\b\nExit status: 0 done (whatever was found); 1 findings at or above --fail-on (evidence-handling findings\n"
        "and monitor leads never count); 2 usage error or unusable input, nothing written; 3 an analysis or a\n"
        "notebook cell failed (the report is still written); 130 interrupted (Ctrl-C)."
    )


def _interrupted(exc: KeyboardInterrupt) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we say so changes nothing
    stage = getattr(exc, "stage", "")
    out = getattr(exc, "out_dir", None)
    if not stage or out is None:
        message = "interrupted before the intake; nothing was written"
    elif stage == "custody intake":
        message = (f"interrupted during the custody intake; the ledger {out / 'custody.jsonl'} is marked incomplete "
                   "(run again with --force to replace it)")  # fmt: skip
    else:
        stopped = "the kernel was stopped and " if stage == "notebook" else ""
        message = (f"interrupted during the {stage} stage; {stopped}{out} holds an incomplete run (run again with "
                   "--force to replace it)")  # fmt: skip
    click.echo(f"workbench: {message}", err=True)
    sys.exit(130)


def _check_feeds(options: dict[str, Any]) -> None:
    """Validate the intel feeds and rule folders given before anything is written (a bad one: exit 2, named)."""
    if not options.get("intel") and not options.get("log_rules"):
        return
    from workbench.data.python_incidents import load_intel
    from workbench.rulepack.rules import load_rules

    if options.get("intel"):
        load_intel(options["intel"])
    if options.get("log_rules"):
        load_rules(*options["log_rules"])


def _report_fail_on(fail_on: str, hits: list[dict[str, Any]]) -> None:
    click.echo(f"workbench: --fail-on {fail_on}: {len(hits)} finding(s) at or above {fail_on}:", err=True)
    for f in hits[:SHOWN]:
        click.echo(f"  {f.get('id')}  {f.get('severity'):8}  {_printable(f.get('title', ''))}", err=True)
    if len(hits) > SHOWN:
        click.echo(f"  ... and {len(hits) - SHOWN} more (findings.json lists them all)", err=True)


@click.command("investigate", epilog=_epilog())
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (default: out/<incident id>).")
@click.option("--reference", type=click.Path(path_type=Path), help="Known-good model folder to compare against.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE", help="Analysis option (below).")
@click.option("--intel", "intel_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Folder of incident intel feeds (known-compromised versions, indicators) added to the shipped "
                   "ones (repeatable; same as -p intel=DIR).")  # fmt: skip
@click.option("--fail-on", type=click.Choice(FAIL_ON), help="Exit 1 when a finding about the incident reaches this.")
@click.option("--pdf", is_flag=True, help="Also print report.pdf (A4) with headless Chromium.")
@click.option("--force", is_flag=True, help="Replace an earlier run's output folder (workbench outputs only).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (verdict, conclusions...).")
@click.option("--sign-head", type=click.Path(path_type=Path), metavar="KEY.pem",
              help="ECDSA private key: sign the custody head (custody.head.sig, custody verify --key).")  # fmt: skip
@trust_options()
def command(
    case_dir: Path,
    out_dir: Path | None,
    reference: Path | None,
    params: tuple[str, ...],
    intel_dirs: tuple[Path, ...],
    fail_on: str | None,
    pdf: bool,
    force: bool,
    as_json: bool,
    sign_head: Path | None,
    **trust_args: Any,
) -> None:
    """Investigate CASE_DIR: custody intake, every analysis, report.html, findings.json, timeline and comms.

    Every input is checked before anything is written: the options (-p), --reference (an existing folder outside
    the output folder) and the output folder (new or empty; one holding an earlier run only with --force).
    The trust options (--key, --ca-bundle, --trusted-root, --identity, --issuer, --signature) verify the suspect
    model's signature; they override case.yaml and the case's keys/ folder.
    """
    try:
        try:
            options = options_registry.parse_assignments([*params, *(f"intel={d}" for d in intel_dirs)])
            options.update(trust_parameters(trust_args))
            _check_feeds(options)
        except WorkbenchError as exc:
            _fail(str(exc))
        from workbench.progress import ConsoleSink, Progress
        from workbench.report import runner

        try:
            result = runner.investigate(case_dir, out_dir, reference=reference, parameters=options, pdf=pdf,
                                        force=force, progress=Progress(ConsoleSink(sys.stderr)),
                                        sign_head=sign_head)  # fmt: skip
        except WorkbenchError as exc:
            _fail(str(exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    for failed in result.failed_analyses():
        click.echo(f"workbench: error: analysis {failed['title']!r} ({failed['section']}) failed: "
                   f"{_printable(failed['error'])} (the report shows it)", err=True)  # fmt: skip
    if result.error is not None:
        shown = " (report written with the error shown)" if result.error.cell_index is not None else ""
        click.echo(f"workbench: error: {_printable(result.error)}{shown}", err=True)
    if fail_on and (hits := result.at_or_above(fail_on)):
        _report_fail_on(fail_on, hits)
    if as_json:
        click.echo(json.dumps(result.summary(fail_on), indent=2, allow_nan=False))
    else:
        click.echo(f"verdict: {result.verdict}")
        click.echo(f"report: {result.html}")
        if result.pdf is not None:
            click.echo(f"pdf: {result.pdf}")
        click.echo(f"findings: {result.findings}")
    sys.exit(result.exit_code(fail_on))
