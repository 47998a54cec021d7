"""Markdown-safe primitives of the communication drafts: what may reach a template, and how it is escaped.

The templates are Jinja2 with autoescape off (the output is Markdown, not HTML), but every value that reaches a
``{{ }}`` goes through :func:`md_escape` after the ``redact`` callable, unless it is :class:`Md` (markers and
Markdown built from already-escaped parts); :func:`todo` writes the visible ``[TO BE COMPLETED: ...]`` marker of a
field only a person can supply. A ``None`` reaching a template fails loudly, as does an undefined field
(``StrictUndefined``). Also here: :class:`RenderedComm` (one rendered draft) and the patterns that find the
markers and the front-matter header in a rendered draft.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any

import jinja2

from workbench.conclusions.record import display

__all__ = ["MAX_TEXT", "Md", "RenderedComm", "md_escape", "todo"]

MAX_TEXT = 600
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")
_LEADING = re.compile(r"^(\s*)(?:([#*+=_~-])|(\d{1,9})([.)]))")
_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"(?<!\\)\[TO BE COMPLETED: ([^\]\n]+)\]")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


class Md(str):
    """Markdown that is already safe: written as is by the templates (markers, text built from escaped parts)."""

    __slots__ = ()


def todo(label: str) -> Md:
    """The visible marker of a field only a person can supply: ``[TO BE COMPLETED: label]``."""
    return Md(f"[TO BE COMPLETED: {label}]")


def md_escape(text: str) -> str:
    """One line of plain text made inert in Markdown.

    Control characters are dropped; whitespace runs (newlines included) become one space; ``\\``, backticks,
    ``[``, ``]`` and ``|`` are backslash-escaped; ``&``, ``<`` and ``>`` become entities; a leading ``#``, ``-``,
    ``*``, ``+``, ``=``, ``_``, ``~`` or list number is escaped; text longer than :data:`MAX_TEXT` is cut with ``…``.
    """
    text = _SPACE.sub(" ", _CONTROL.sub("", str(text)))
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "`[]|":
        text = text.replace(char, "\\" + char)
    return _LEADING.sub(_escape_leading, text)


def _escape_leading(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


@dataclass(frozen=True, slots=True)
class RenderedComm:
    """One rendered draft.

    Attributes:
        text: the Markdown, front-matter header (template, subject, audience, timing) first.
        subject: the subject line.
        todo_markers: labels of the ``[TO BE COMPLETED: ...]`` markers left, in order of first appearance.
        name / audience / timing: from the template's header.
    """

    text: str
    subject: str
    todo_markers: tuple[str, ...]
    name: str = ""
    audience: str = ""
    timing: str = ""

    def to_html(self) -> str:
        """The draft for the report as formatted text: title, what remains to be completed, then the Markdown
        rendered (front matter left out; headings demoted below the report's own; see :func:`markdown_html`)."""
        left = "".join(f"<li>{html_escape(m)}</li>" for m in self.todo_markers)
        remains = f"<p>To be completed by a person:</p><ul>{left}</ul>" if left else "<p>Nothing left to complete.</p>"
        body = markdown_html(_FRONT.sub("", self.text, count=1))
        return (
            f'<div class="wb-comm"><h3>{html_escape(self.subject)}</h3>'
            f"<p>Audience: {html_escape(self.audience)}. Timing: {html_escape(self.timing)}.</p>{remains}"
            f'<div class="wb-comm-body">{body}</div></div>'
        )


_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.DOTALL)


def markdown_html(markdown: str) -> str:
    """A draft's Markdown as HTML, safely.

    The drafts' Markdown holds evidence only through :func:`md_escape`, which writes ``&``, ``<`` and ``>`` as
    entities; those three are turned back into characters so that mistune, which escapes every character and any
    raw HTML itself (``escape=True``; unsafe link schemes dropped), escapes them exactly once. A draft's headings
    become bold paragraphs: they belong to the draft, not to the report's structure and its PDF outline.
    """
    import mistune

    text = markdown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    html = str(mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(text))
    return _HEADING.sub(lambda m: f'<p class="wb-comm-heading"><strong>{m.group(1)}</strong></p>', html)


def _environment(directory: Path, redact: Callable[[str], str]) -> jinja2.Environment:
    def finalize(value: Any) -> str:
        if isinstance(value, Md):
            return value
        if value is None or isinstance(value, list | dict | tuple | set):
            raise TypeError(f"a template field holds {type(value).__name__}, not text")
        if isinstance(value, datetime):
            return display(value)
        return md_escape(redact(str(value)))

    # Markdown output: HTML autoescaping does not apply; finalize escapes every value for Markdown instead.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
