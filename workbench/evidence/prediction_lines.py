"""One line of a predictions file as the careful reader takes it (a JSON object or CSV cells), and the file's line
count (the bound its columns are allocated for)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, clean_parsed, parse_json
from workbench.records import EvidenceWarning

__all__ = ["count_lines", "csv_row", "json_record", "scalar_text"]

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def scalar_text(value: Any) -> str | None:
    """Text of a JSON scalar (``1`` -> ``"1"``); None for null, objects and arrays."""
    if value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def csv_row(text: str) -> list[str]:
    """The cells of one CSV line (none for an empty line)."""
    return next(csv.reader([text]), [])


def json_record(text: str, number: int, ctx: LoadContext, warnings: list[EvidenceWarning]) -> dict | str:
    """The JSON object of one line, or the reason it is none."""
    try:
        obj = parse_json(text)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):  # only escapes make lone surrogates here
            obj = clean_parsed(obj, ctx, number, warnings)
    except ValueError:
        obj = None
    return obj if isinstance(obj, dict) else "not a JSON object"


def count_lines(path: Path, ctx: LoadContext) -> int:
    """Lines of the file (a bound on its records, so that their columns are allocated once), counted at C speed.

    Raises:
        MalformedEvidence: the file cannot be read.
    """
    try:
        with safeio.open_evidence(path, buffering=0) as fh:
            count = 1
            while block := fh.read(1 << 20):
                count += block.count(b"\n")
            return count
    except OSError as exc:
        raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
