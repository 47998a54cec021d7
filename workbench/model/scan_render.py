"""The artefact-scan part of the report's "Model forensics" section: HTML built from a :class:`ModelScan`.

Every string that comes from evidence (file and member names, imported names, rendered calls, template snippets)
goes through :func:`workbench.htmlkit.html_table` or :func:`html.escape`.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from workbench.htmlkit import html_table

if TYPE_CHECKING:
    from workbench.analysis import AnalysisResult
    from workbench.model.scan import ModelScan

__all__ = ["render_scan"]

MAX_IMPORT_ROWS = 200


def render_scan(result: ModelScan | AnalysisResult) -> list[Any]:
    """HTML fragments for the notebook and report: a summary, then tables of artefacts, pickle imports, calls,
    archive anomalies, code references and picklescan disagreements (tables that would be empty are left out).

    Args:
        result: a :class:`ModelScan`, or the ``AnalysisResult`` of :func:`workbench.model.scan.analyse` (its
            ``data["scan"]``).

    Returns:
        A list of HTML strings (display them with :class:`workbench.analysis.SectionView`).
    """
    data = getattr(result, "data", None)
    if isinstance(data, dict):
        if "scan" not in data:
            return [f'<p class="wb-note">{escape(getattr(result, "summary", "") or "No model artefact scan.")}</p>']
        result = data["scan"]
    scan: ModelScan = result  # type: ignore[assignment]
    files = scan.files_frame()
    top = files[files["member"].isna()]
    imports = scan.imports_frame()
    counts = imports["safety"].value_counts()
    out: list[Any] = [
        "<h4>Artefact inventory</h4>"
        f"<p>{len(top)} files classified by content ({len(files) - len(top)} archive members examined); "
        f"<b>{int(top['dangerous'].sum())}</b> of a type that can execute code when loaded. Pickle imports: "
        f"{int(counts.get('dangerous', 0))} dangerous, {int(counts.get('unknown', 0))} not on the safe list, "
        f"{int(counts.get('safe', 0))} known-safe. Nothing was loaded, imported or unpickled.</p>",
        html_table(files.assign(dangerous=files["dangerous"].map({True: "yes", False: ""})), mono=("path", "member")),
    ]
    if not imports.empty:
        shown = imports.sort_values(["safety", "path", "offset"], kind="stable").head(MAX_IMPORT_ROWS)
        out.append("<h4>Globals imported by pickles</h4><p>Offset: byte position of the importing opcode.</p>")
        out.append(html_table(shown, mono=("path", "member", "import")))
    calls = scan.calls_frame()
    if not calls.empty:
        out.append("<h4>What the pickles would call</h4><p>Rendered by symbolic stack simulation; never executed.</p>")
        out.append(html_table(calls[["path", "member", "offset", "opcode", "safety", "call"]], mono=("call", "path")))
    for title, frame, mono in (
        ("Archive anomalies", scan.anomalies_frame(), ("path", "member")),
        ("Code carried by the model (configs, Keras, chat templates)", scan.code_frame(), ("path", "member")),
        ("Where picklescan and the genops analysis disagree", scan.disagreements_frame(), ("path", "import")),
    ):
        if not frame.empty:
            out.append(f"<h4>{escape(title)}</h4>")
            out.append(html_table(frame, mono=mono))
    not_run = {p: o.error for p, o in scan.opinions.items() if o.error}
    if not_run:
        items = "".join(f"<li>{escape(p)}: {escape(str(e))}</li>" for p, e in sorted(not_run.items()))
        out.append(f'<p class="wb-note">picklescan gave no opinion on:</p><ul>{items}</ul>')
    return out
