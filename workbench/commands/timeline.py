"""``workbench timeline CASE_DIR [--out FILE.jsonl|FILE.csv]``: the case's merged timeline in Timesketch form.

Opens the case as ``workbench investigate`` does (custody intake into a temporary folder, every analysis), merges
every Event, and writes Timesketch JSON lines on stdout, or JSONL/CSV to ``--out`` (chosen by the extension).
Text goes through the log scanner's secret redaction. Nothing is written into the evidence tree.

Exit status: 0 done; 2 bad path, unknown extension or unusable evidence, with one ``workbench: error:`` line.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from workbench.errors import WorkbenchError
from workbench.termsafe import echo


def _fail(message: str) -> None:
    echo(f"workbench: error: {message}", err=True)
    sys.exit(2)


def _redactor() -> Callable[[str], str]:
    """The log scanner's secret redaction; the identity (with a warning on stderr) when it cannot be loaded."""
    try:
        from workbench.rulepack.redact import redact

        redact("")
    except (ImportError, WorkbenchError) as exc:
        echo(f"workbench: warning: secret redaction unavailable ({exc}); text written as found", err=True)
        return lambda text: text
    return redact


def _check_out(out_file: Path, case_dir: Path) -> None:
    from workbench.timeline.export import FORMATS  # the timeline (pandas) is imported when the command runs

    if out_file.suffix.lower() not in FORMATS:
        _fail(f"{out_file}: unknown timeline format {out_file.suffix or '(none)'!r}; use .jsonl or .csv")
    if out_file.is_dir():
        _fail(f"{out_file}: is a folder; give a file name ending in .jsonl or .csv")
    target = out_file.resolve()
    if not target.parent.is_dir():
        _fail(f"{out_file}: folder {out_file.parent} does not exist")
    root = case_dir.resolve()
    if root.is_dir() and (target == root or root in target.parents):
        _fail(f"{out_file}: inside the evidence tree; write the timeline elsewhere")


@click.command("timeline")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    metavar="FILE.jsonl|FILE.csv",
    help="Write here (format from the extension) instead of JSON lines on stdout.",
)
def command(case_dir: Path, out_file: Path | None) -> None:
    """Merge every event of CASE_DIR into one UTC timeline that Timesketch imports as it is.

    Rows: message, datetime (ISO 8601), timestamp (µs), timestamp_desc, data_type, tag, and flat fields (source
    file, severity, kind, lane, tactic, count of collapsed events, time flag, milestone).
    """
    from workbench.investigation import Investigation
    from workbench.timeline import write_jsonl, write_timeline

    if out_file is not None:
        _check_out(out_file, case_dir)
    with tempfile.TemporaryDirectory(prefix="workbench-timeline-") as tmp:
        try:
            timeline = Investigation.open(case_dir, out_dir=tmp, write=False).timeline
        except WorkbenchError as exc:
            _fail(str(exc))
    redact = _redactor()
    if out_file is None:
        write_jsonl(timeline, sys.stdout, redact=redact)
        return
    try:
        rows = write_timeline(timeline, out_file, redact=redact)
    except OSError as exc:
        _fail(f"{out_file}: cannot write: {exc.strerror or exc}")
    flagged = len(timeline.flagged)
    echo(f"timeline: {rows} rows ({timeline.total} events, {flagged} with flagged times) -> {out_file}", err=True)
