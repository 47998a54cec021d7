"""Small HTML helpers every renderer may import: text, tables, badges, colours and the report's styles.

A leaf: it imports nothing of the workbench at module load, so analyses' renderers, the timeline figure, the
widgets and the report views can all use it without importing one another.

Every string that may come from evidence reaches HTML through :func:`text` (or :func:`html_table`, which uses it):
secrets are redacted from the *text* first (the log scanner's credential rules), then the text is escaped. Nothing
rewrites HTML after it is made.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = [
    "MAX_ROWS",
    "SEVERITY_COLOURS",
    "STYLE",
    "VERDICT_COLOURS",
    "badge",
    "html_table",
    "note",
    "sev",
    "text",
]

SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#d9480f", "medium": "#e8a200", "low": "#2f6fb0", "info": "#6c757d"}
VERDICT_COLOURS = {"compromised": "#8b0000", "suspicious": "#d9480f", "clean": "#2b8a3e", "inconclusive": "#5f3dc4"}
MAX_ROWS = 500

STYLE = """
<style>
.wb-table{border-collapse:collapse;font-size:13px;margin:6px 0 14px 0;width:100%}
.jp-RenderedHTMLCommon .wb-table th,.wb-table th{background:#f1f3f5;text-align:left;padding:4px 8px;
  border-bottom:2px solid #adb5bd;max-width:none}
.jp-RenderedHTMLCommon .wb-table td,.wb-table td{text-align:left;padding:4px 8px;border-bottom:1px solid #dee2e6;
  vertical-align:top;word-break:break-word;max-width:none}
.wb-sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;font-weight:600;white-space:nowrap}
.wb-verdict{font-size:20px;font-weight:700;color:#fff;padding:6px 14px;border-radius:4px;display:inline-block}
.wb-note{color:#495057;font-style:italic}
.wb-ok{color:#2b8a3e;font-weight:600}.wb-bad{color:#8b0000;font-weight:600}
.wb-mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
</style>
"""


def _redact(value: str) -> str:
    from workbench.rulepack.redact import redact  # the credential rules; imported on first use only

    return redact(value)


def text(value: Any) -> str:
    """``value`` as HTML text: secrets redacted, then escaped (``None`` gives ``""``)."""
    if value is None:
        return ""
    return escape(_redact(value if isinstance(value, str) else str(value)))


def note(message: str) -> str:
    """A muted italic paragraph."""
    return f'<p class="wb-note">{text(message)}</p>'


def sev(value: Any) -> str:
    """A severity (or priority) as a coloured badge."""
    word = str(getattr(value, "value", value))
    colour = SEVERITY_COLOURS.get(word, "#6c757d")
    return f'<span class="wb-sev" style="background:{colour}">{escape(word)}</span>'


def badge(verdict: str) -> str:
    """The verdict as a large coloured badge."""
    colour = VERDICT_COLOURS.get(verdict, "#495057")
    return f'<span class="wb-verdict" style="background:{colour}">Verdict: {escape(verdict)}</span>'


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | dict | tuple | set):
        return False
    try:
        return bool(value != value)  # NaN, NaT, pd.NA compare unequal to themselves (pd.NA raises)
    except (TypeError, ValueError):
        return True


def html_table(df: Any, *, mono: tuple[str, ...] = (), max_rows: int = MAX_ROWS) -> str:
    """A DataFrame as an escaped HTML table (cells through :func:`text`); a ``severity`` column as badges."""
    if df.empty:
        return '<p class="wb-note">None.</p>'
    shown = df.head(max_rows)
    head = "".join(f"<th>{text(c)}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for col, value in zip(shown.columns, rec, strict=True):
            if col == "severity":
                cells.append(f"<td>{sev(value)}</td>")
                continue
            cls = ' class="wb-mono"' if col in mono else ""
            cells.append(f"<td{cls}>{'' if _missing(value) else text(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="wb-note">{len(df) - max_rows} more rows not shown.</p>' if len(df) > max_rows else ""
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'
