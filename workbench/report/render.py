"""Render an executed notebook to the offline HTML report (code hidden, no outside loads)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from workbench.report.resources import templates_dir

__all__ = ["TEMPLATE", "render_html"]

TEMPLATE = "report"


def render_html(notebook: Path, html_path: Path, *, title: str | None = None) -> Path:
    """Convert ``notebook`` to ``html_path`` with the workbench report template.

    Returns:
        ``html_path``.
    """
    nb = nbformat.read(notebook, as_version=4)
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(
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
