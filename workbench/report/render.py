"""Render an executed notebook to the offline HTML report (code hidden, no outside loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from workbench.report.resources import templates_dir

__all__ = ["TEMPLATE", "redact_notebook", "render_html"]

TEMPLATE = "report"


#: the embedded plotly.js bundle is our own code, not evidence; it is left as it is
_PLOTLYJS_MARK = "* plotly.js v"


def redact_notebook(nb: nbformat.NotebookNode) -> int:
    """Redact secrets in every output of an executed notebook (the catch-all before anything is rendered).

    Returns:
        How many output fields changed.
    """
    from workbench.logscan.redact import redact, redact_data

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
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str):
                    if _PLOTLYJS_MARK in value[:4096] or (len(value) > 1_000_000 and _PLOTLYJS_MARK in value):
                        continue
                    new = redact(value)
                else:
                    new = redact_data(value)
                changed += new != value
                output["data"][mime] = new
    return changed


def render_html(
    notebook: Path, html_path: Path, *, title: str | None = None, metadata: dict[str, Any] | None = None
) -> Path:
    """Convert ``notebook`` to ``html_path`` with the workbench report template.

    Args:
        notebook: the executed notebook.
        html_path: where to write the report.
        title: the page title.
        metadata: values for the title block and appendix footer (incident_id, title, verdict, severity, models,
            generated_at, workbench_version, notebook_sha256, custody_head); escaped by the template.

    Returns:
        ``html_path``.
    """
    nb = nbformat.read(notebook, as_version=4)
    redact_notebook(nb)
    if title:
        nb.metadata["title"] = title
    if metadata:
        nb.metadata["workbench"] = metadata
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
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path
