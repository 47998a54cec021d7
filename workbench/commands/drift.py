"""``workbench drift PREDICTIONS --baseline FILE``: behaviour drift, onset and exposure window of a prediction stream.

A thin adapter: loads both files through the evidence loaders (same parsing and warnings as an investigation),
calls :func:`workbench.drift.analyse_stream` and prints a summary, or one JSON document with ``--json``
(``findings``, ``exposure``, ``windows``; contract in ARCHITECTURE.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.termsafe import echo, json_text

if TYPE_CHECKING:
    from workbench.drift.analysis import DriftReport

_SEVERITIES = ["critical", "high", "medium", "low", "info"]


def _fail(message: str) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(2)


@click.command("drift")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(path_type=Path),
              help="Baseline class distribution (JSON of class -> share or count).")  # fmt: skip
@click.option("--window", default="1d", show_default=True, help="Window for the per-window table: 1h, 1d, 30min or N.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--fail-on", type=click.Choice(_SEVERITIES[:3]), help="Exit 1 when a finding reaches this severity.")
def command(predictions: Path, baseline_path: Path, window: str, as_json: bool, fail_on: str | None) -> None:
    """Test PREDICTIONS (JSONL or CSV) for drift against a baseline; estimate onset, end and affected predictions.

    Timestamps without a UTC offset are read as UTC.
    """
    from workbench.drift import Baseline, analyse_stream, parse_window, prepare_stream
    from workbench.errors import WorkbenchError
    from workbench.evidence import LoadContext, load_file

    try:
        parse_window(window)
    except ValueError as exc:
        _fail(f"--window: {exc}")
    for path in (predictions, baseline_path):
        if not path.is_file():
            _fail(f"{path}: no such file")
    try:
        loaded = load_file(predictions, LoadContext(relpath=str(predictions)), kind="predictions")
        base_file = load_file(baseline_path, LoadContext(relpath=str(baseline_path)), kind="baseline_distribution")
    except WorkbenchError as exc:
        _fail(str(exc))
    baseline = Baseline.from_loaded(base_file)
    stream, warnings = prepare_stream([loaded], baseline)
    report = analyse_stream(stream, baseline, window=window)
    report.warnings = [*base_file.warnings, *loaded.warnings, *warnings, *report.warnings]
    if as_json:
        click.echo(json_text(report.to_dict()))
    else:
        _print_text(report)
    if fail_on:
        worst = _SEVERITIES.index(fail_on)
        if any(_SEVERITIES.index(f.severity.value) <= worst for f in report.findings):
            sys.exit(1)


def _print_text(report: DriftReport) -> None:
    exposure = report.exposure()
    echo(f"verdict: {report.verdict} ({report.reason})")
    echo(f"predictions: {len(report.stream)}")
    if exposure:
        echo(f"onset: {exposure['onset'] or 'before the first record'}")
        if exposure["onset_interval"]:
            echo(f"onset 95% interval: {exposure['onset_interval'][0]} .. {exposure['onset_interval'][1]}")
        echo(f"end: {exposure['end'] or 'ongoing at the last record'}")
        echo(f"predictions in the exposure window: {exposure['predictions']}")
        for cls, ex in exposure["excess_by_class"].items():
            echo(f"excess {cls}: {ex['estimate']:+.0f} (95% {ex['low']:+.0f} .. {ex['high']:+.0f})")
    if len(report.windows):
        flagged = int((report.windows["verdict"] == "drift").sum())
        echo(f"windows ({report.window}): {len(report.windows)}, {flagged} with drift")
    for f in report.findings:
        echo(f"[{f.severity.value}] {f.title}")
    if report.warnings:
        echo(f"warnings: {len(report.warnings)}")
        for w in report.warnings[:10]:
            echo(f"  {w}")
