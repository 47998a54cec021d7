"""Render an executed notebook to the offline HTML report (code hidden, no outside loads)."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.resources import templates_dir

if TYPE_CHECKING:  # nbconvert is imported where the HTML is rendered: the kernel imports this module for OWN_CODE
    import nbformat

__all__ = ["DEFAULT_CLASSIFICATION", "TEMPLATE", "css_string", "redact_notebook", "render_html", "utc_second"]

TEMPLATE = "report"
#: the classification line of the running header and title block, unless the notebook's metadata sets one
DEFAULT_CLASSIFICATION = "Confidential: incident response"
#: longest classification line kept (a running header is one line)
_CLASSIFICATION_MAX = 80


#: output metadata key marking what the workbench itself embeds (plotly.js, styles): no evidence text in it
OWN_CODE = "workbench_own_code"
#: outputs that are text, not markup: secrets in them are redacted like any other text
_TEXT_MIMES = ("text/plain",)
WITHHELD = ('<p class="wb-bad">Output withheld: it contained a secret that was not redacted before it was rendered. '
            "This is a workbench defect; the secret is not in this report.</p>")  # fmt: skip


def redact_notebook(nb: nbformat.NotebookNode) -> int:
    """Make an executed notebook safe to keep and render, without ever rewriting markup by pattern.

    Text (stream outputs, tracebacks, ``text/plain``) is redacted like any other text. Markup (HTML, figures) was
    made from redacted text (:func:`workbench.htmlkit.text`); it is only checked: an output in which the credential
    rules still find a secret is withheld whole (replaced by a notice), never edited.

    Returns:
        How many output fields changed.
    """
    from workbench.rulepack.redact import redact, redact_data

    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output and isinstance(output["text"], str):
                new = redact(output["text"])
                changed += new != output["text"]
                output["text"] = new
            if "traceback" in output:
                output["traceback"] = [redact(line) for line in output["traceback"]]
                output["evalue"] = redact(output.get("evalue", ""))
            if output.get("metadata", {}).get(OWN_CODE):
                continue  # the plotly.js bundle and styles the setup cell embeds: our code, not evidence
            data = output.get("data", {})
            for mime, value in list(data.items()):
                if mime in _TEXT_MIMES and isinstance(value, str):
                    new = redact(value)
                    changed += new != value
                    data[mime] = new
                elif _holds_secret(value, redact_data):
                    output["data"] = {"text/html": WITHHELD, "text/plain": "output withheld (unredacted secret)"}
                    changed += 1
                    break
    return changed


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])")


def _plain(text: str) -> str:
    """Text as a reader sees it: HTML entities, JSON ``\\uXXXX`` escapes and Markdown escapes undone (so that a
    secret written in any of these encodings is found, and redacted text is recognised as such). Table cells carry
    ``<wbr>`` break points (:func:`workbench.htmlkit.html_table`): they are no part of the text and go first."""
    text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html.unescape(text.replace("<wbr>", "")))
    return _MD_ESCAPE.sub(r"\1", text)


def _holds_secret(value: object, redact_data) -> bool:
    """Whether the credential rules find a secret in an output (a check only: the output is never edited)."""
    from workbench.rulepack.redact import redact

    if isinstance(value, str):
        plain = _plain(value)
        return redact(plain) != plain
    return redact_data(value) != value


_CSS_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:;/()+#@")


def css_string(value: object) -> str:
    """``value`` as a quoted CSS string literal (for ``content:`` in the template's ``@page`` rule).

    Control characters are dropped; every character but ASCII letters, digits, space and plain punctuation is a
    six-digit CSS escape, so no quote, backslash or ``<`` (``</style>``) of the value reaches the stylesheet raw.
    """
    chars = (c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    return '"' + "".join(c if c in _CSS_PLAIN else f"\\{ord(c):06x} " for c in chars) + '"'


def utc_second(value: object) -> object:
    """An ISO 8601 time as the report writes every time, ``2026-11-19T09:40:33Z`` (UTC, to the second).

    A naive time is taken as UTC; anything that is not an ISO 8601 time is returned unchanged.
    """
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return value
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _classification(nb: nbformat.NotebookNode, metadata: dict[str, Any]) -> str:
    """The classification line: the caller's, else the notebook's own metadata key ``classification``, else the
    default; one line of at most :data:`_CLASSIFICATION_MAX` characters."""
    for value in (metadata.get("classification"), nb.metadata.get("classification")):
        if isinstance(value, str) and (line := " ".join(value.split())):
            return line[:_CLASSIFICATION_MAX]
    return DEFAULT_CLASSIFICATION


def _title_metadata(nb: nbformat.NotebookNode, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """What the template reads from ``nb.metadata.workbench``: the caller's values, the generation time in the
    report's one time format, the verdict's colour and the classification line."""
    from workbench.htmlkit import VERDICT_COLOURS

    wb = dict(metadata or {})
    if "generated_at" in wb:
        wb["generated_at"] = utc_second(wb["generated_at"])
    wb["verdict_colour"] = VERDICT_COLOURS.get(str(wb.get("verdict")), "#6c757d")
    wb["classification"] = _classification(nb, wb)
    return wb


def render_html(
    notebook: Path, html_path: Path, *, title: str | None = None, metadata: dict[str, Any] | None = None
) -> Path:
    """Convert ``notebook`` to ``html_path`` with the workbench report template.

    Args:
        notebook: the executed notebook.
        html_path: where to write the report.
        title: the page title.
        metadata: values for the title block, running header and appendix footer (incident_id, title, verdict,
            severity, models, generated_at, workbench_version, notebook_sha256, custody_head, and optionally
            classification, which otherwise comes from the notebook's metadata key ``classification`` or is
            :data:`DEFAULT_CLASSIFICATION`); escaped by the template. ``generated_at`` is written as
            :func:`utc_second`.

    Returns:
        ``html_path``.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)
    redact_notebook(nb)
    if title:
        nb.metadata["title"] = title
    nb.metadata["workbench"] = _title_metadata(nb, metadata)
    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"report-hide"}
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config,
        template_name=TEMPLATE,
        extra_template_basedirs=[str(templates_dir())],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.register_filter("css_string", css_string)
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path
