"""Text for a terminal: nothing from evidence reaches the reader's terminal raw, and no secret reaches it in clear.

Every command's text output goes through :func:`shown` (secrets redacted, then made printable) and every JSON
document it prints through :func:`json_text`. Evidence chooses file names, log lines, tensor names, labels and
alert messages; written raw to a terminal, their control characters act on it: ANSI CSI sequences (``ESC [``)
move the cursor, recolour or erase what was printed before, OSC sequences (``ESC ]``) set the window title, write
the clipboard (OSC 52) or make hyperlinks, BEL rings, backspace and carriage return overwrite a line (a forged
"custody verified"), a newline forges a whole line, and bidirectional controls (U+202E ...) reorder what is read
(Trojan Source). :func:`printable` shows each such character as a visible escape instead:

* C0 controls, DEL and C1 controls (``\\x1b``, ``\\x07``, ``\\x08``, ``\\x9b``), with ``\\t``, ``\\n``, ``\\r`` by
  their usual names;
* format characters (Unicode category ``Cf``: bidi embeddings, overrides and isolates, zero-width characters,
  the BOM, soft hyphen), line and paragraph separators, and lone surrogates (``\\u202e``, ``\\u200b``, ``\\ud800``;
  a lone surrogate would also make the write itself fail).

Everything else, non-ASCII letters included, is left as it is. Backslashes are not doubled: the output is for a
person, and ``\\x1b`` written by :func:`printable` cannot act on the terminal whatever it stood for.

A base module: it imports only the redactor (:mod:`workbench.rulepack.redact`), on first use.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

__all__ = ["echo", "json_text", "printable", "shown", "unsafe_chars"]

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` (made a string) with every control, format, separator and surrogate character shown as an escape.

    Returns:
        A string that holds no character a terminal acts on (no ESC, BEL, backspace, carriage return, newline,
        C1 control or bidi control); printable text, non-ASCII letters included, unchanged.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable() or not any(_unsafe(c) for c in text):  # the common case, at C speed
        return text
    return "".join(_escape(c) if _unsafe(c) else c for c in text)


def shown(text: object) -> str:
    """Evidence-derived text for a terminal line: secrets redacted (shipped credential rules), then :func:`printable`.

    Use it for every value a command prints that came from evidence or was built from it (file names, titles,
    warnings, error messages).
    """
    from workbench.rulepack.redact import redact  # the credential rules are loaded on first use only

    return printable(redact(text if isinstance(text, str) else str(text)))


def echo(message: object = "", *, err: bool = False) -> None:
    """Print one line (``click.echo``) made safe with :func:`shown`: the one way commands print text lines.

    Apply it to whole lines: the workbench's own wording holds neither secrets nor control characters, so only
    what came from evidence changes.
    """
    import click

    click.echo(shown(message), err=err)


def json_text(doc: Any, *, indent: int | None = 2, allow_nan: bool = False, redactor: Any = None) -> str:
    """One JSON document for stdout: every string redacted, and nothing in it a terminal acts on.

    ``json.dumps`` escapes C0 controls in strings but leaves DEL, C1 controls, bidi and zero-width characters and
    lone surrogates raw when ``ensure_ascii`` is off; they are written here as ``\\uXXXX`` escapes, so the text
    stays valid JSON that decodes to the same (redacted) document and non-ASCII letters stay readable.

    Args:
        doc: a JSON-serialisable document.
        indent: as for ``json.dumps``.
        allow_nan: as for ``json.dumps`` (False: NaN and infinities raise ValueError).
        redactor: an object with ``redact_data`` (e.g. a :class:`~workbench.rulepack.redact.Redactor` built from
            extended rules); default the shipped credential rules.
    """
    if redactor is None:
        from workbench.rulepack.redact import redact_data
    else:
        redact_data = redactor.redact_data
    text = json.dumps(redact_data(doc), indent=indent, allow_nan=allow_nan, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:
        return text
    # inside strings json.dumps escaped every C0 control already; a newline left is indentation
    return "".join(_json_escape(c) if c != "\n" and _unsafe(c) else c for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def unsafe_chars(text: str) -> list[str]:
    """The characters of ``text`` that :func:`printable` would escape (for tests and checks), in order."""
    return [c for c in text if _unsafe(c)]
