"""The lines of a ``RECORD`` file (``path,sha256=<urlsafe base64>,size``), read one at a time.

One parser for the installed RECORD (:mod:`workbench.pyenv.record`) and for the RECORD inside a wheel
(:mod:`workbench.pyenv.expected`): a line is split first (:func:`split_record_line`), so that the caller can judge
the path (absolute, escaping) before the fields; then :func:`parse_record_fields` reads the hash and size. Either
raises :class:`RecordLineError` with the reason, which the caller turns into a warning naming the file and line.
"""

from __future__ import annotations

import base64
import binascii
import csv

__all__ = ["MAX_LINE", "RecordLineError", "parse_record_fields", "split_record_line"]

#: characters of a line kept (RECORD lines longer than this are not read; shown lines are cut)
MAX_LINE = 4096


class RecordLineError(ValueError):
    """A RECORD line that cannot be read; ``str()`` is the reason."""


def split_record_line(line: str) -> list[str]:
    """The three fields ``path,hash,size`` of one RECORD line (CSV quoting honoured).

    Raises:
        RecordLineError: longer than :data:`MAX_LINE`, not CSV, not three fields or no path.
    """
    if len(line) > MAX_LINE:
        raise RecordLineError(f"longer than {MAX_LINE} characters")
    try:
        rows = list(csv.reader([line]))
    except csv.Error as exc:
        raise RecordLineError(str(exc)) from None
    row = rows[0] if rows else []
    if len(row) != 3 or not row[0]:
        raise RecordLineError(f"{len(row)} fields, expected path,hash,size")
    return row


def parse_record_fields(row: list[str]) -> tuple[str, bytes | None, int | None]:
    """``(algorithm, digest or None, size or None)`` of a row from :func:`split_record_line`.

    An empty hash (the RECORD itself, generated ``.pyc``) gives ``("", None, size)``.

    Raises:
        RecordLineError: the size is not a number, the hash is not ``sha256=<base64>`` of 32 bytes.
    """
    _, hashed, size_text = row
    size: int | None = None
    if size_text:
        if not size_text.isdigit():
            raise RecordLineError(f"size {size_text[:40]!r} is not a number")
        size = int(size_text)
    if not hashed:
        return "", None, size
    algo, sep, value = hashed.partition("=")
    if not sep or algo != "sha256":
        raise RecordLineError(f"hash {hashed[:40]!r} is not sha256=<base64>")
    try:
        digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise RecordLineError("hash is not URL-safe base64") from None
    if len(digest) != 32:
        raise RecordLineError(f"sha256 digest of {len(digest)} bytes")
    return algo, digest, size
