"""Small HTML helpers every renderer may import: text, tables, badges, colours and the report's styles.

A leaf: it imports nothing of the workbench at module load, so analyses' renderers, the timeline figure, the
widgets and the report views can all use it without importing one another.

Every string that may come from evidence reaches HTML through :func:`text` (or :func:`html_table`, which uses it):
secrets are redacted from the *text* first (the log scanner's credential rules), then the text is escaped. Nothing
rewrites HTML after it is made.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

__all__ = [
    "KINDS",
    "MAX_ROWS",
    "SEVERITY_COLOURS",
    "STYLE",
    "VERDICT_COLOURS",
    "badge",
    "column_kind",
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
.jp-RenderedHTMLCommon table.wb-table,table.wb-table{border-collapse:collapse;font-size:13px;margin:6px 0 14px 0;
  width:100%;table-layout:auto}
.jp-RenderedHTMLCommon .wb-table th,.wb-table th{background:#f1f3f5;text-align:left;padding:4px 8px;
  border-bottom:2px solid #adb5bd;max-width:none;vertical-align:bottom;white-space:normal;word-break:normal;
  overflow-wrap:normal;hyphens:manual}
.jp-RenderedHTMLCommon .wb-table td,.wb-table td{text-align:left;padding:4px 8px;border-bottom:1px solid #dee2e6;
  vertical-align:top;white-space:normal;word-break:normal;overflow-wrap:normal;hyphens:manual;max-width:none}
.jp-RenderedHTMLCommon .wb-table td.wb-hash,.wb-table td.wb-hash{word-break:break-all;min-width:12ch}
.jp-RenderedHTMLCommon .wb-table td.wb-enum,.wb-table td.wb-enum{white-space:nowrap}
.jp-RenderedHTMLCommon .wb-table .wb-num,.wb-table .wb-num{text-align:right;white-space:nowrap;
  font-variant-numeric:tabular-nums}
.jp-RenderedHTMLCommon .wb-table th.wb-text,.wb-table th.wb-text{min-width:14em}
.jp-RenderedHTMLCommon .wb-table th.wb-time,.wb-table th.wb-time{min-width:11em}
.jp-RenderedHTMLCommon .wb-wide th.wb-time,.wb-wide th.wb-time{min-width:0}
.jp-RenderedHTMLCommon table.wb-wide,table.wb-wide{font-size:12px}
.wb-wide .wb-mono{font-size:11px}
.jp-RenderedHTMLCommon .wb-wide th,.wb-wide th,.jp-RenderedHTMLCommon .wb-wide td,.wb-wide td{padding:4px 5px}
.wb-sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;font-weight:600;white-space:nowrap}
.wb-verdict{font-size:20px;font-weight:700;color:#fff;padding:6px 14px;border-radius:4px;display:inline-block}
.wb-note{color:#495057;font-style:italic}
.wb-ok{color:#2b8a3e;font-weight:600}.wb-bad{color:#8b0000;font-weight:600}
.wb-mono{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
.wb-explorer{width:100%}.wb-explorer .widget-html-content{overflow-x:auto;max-width:100%}
.wb-log-context{white-space:pre;overflow-x:auto;font-size:12px;background:#f8f9fa;padding:4px 6px;margin:2px 0}
@media print{
  .jp-RenderedHTMLCommon table.wb-table,table.wb-table{font-size:11px}
  .jp-RenderedHTMLCommon .wb-table th,.wb-table th,.jp-RenderedHTMLCommon .wb-table td,.wb-table td{padding:3px 5px}
  .wb-table .wb-mono{font-size:10px}
  .wb-table .wb-sev{font-size:10px;padding:1px 4px}
  .jp-RenderedHTMLCommon table.wb-wide,table.wb-wide{font-size:9px}
  .wb-wide .wb-mono,.wb-wide .wb-sev{font-size:8px}
  .jp-RenderedHTMLCommon .wb-wide th,.wb-wide th,.jp-RenderedHTMLCommon .wb-wide td,.wb-wide td{padding:2px 3px}
  .jp-RenderedHTMLCommon .wb-table th.wb-text,.wb-table th.wb-text{min-width:11em}
  .jp-RenderedHTMLCommon .wb-wide th.wb-text,.wb-wide th.wb-text{min-width:8em}
  .jp-RenderedHTMLCommon table.wb-wider,table.wb-wider{font-size:8.5px}
  .wb-wider .wb-mono,.wb-wider .wb-sev{font-size:7.5px}
  .jp-RenderedHTMLCommon .wb-wider th,.wb-wider th,.jp-RenderedHTMLCommon .wb-wider td,.wb-wider td{padding:2px}
  .wb-table thead{display:table-header-group}
}
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


#: Column kinds :func:`html_table` knows, each with the classes its cells get (header, data) and how it wraps.
KINDS = ("hash", "id", "path", "time", "num", "enum", "text")

_HASH_NAME = re.compile(r"(?<![a-z])sha(?:\d+)?(?![a-z])|md5|hash|digest|checksum|fingerprint")
_ID_NAMES = {"id", "rule_id", "rule", "finding", "finding_id", "event_id", "technique", "cve"}
_PATH_NAMES = {"path", "file", "member", "url", "import", "call", "key", "name", "location", "local", "peer",
               "from", "source", "target", "module", "filename", "installed", "package"}  # fmt: skip
_TIME_NAME = re.compile(r"\btime\b|_time$|^time|timestamp|\bdate\b|_at$|\(utc\)|first seen|last seen|onset")
_ENUM_NAMES = {"severity", "priority", "status", "kind", "role", "safety", "dtype", "verdict", "coverage",
               "dangerous", "trusted", "complete", "state", "opcode", "primary", "tty", "user", "outcome",
               "category", "confidence", "result", "method"}  # fmt: skip
_OFFSET_NAMES = {"offset", "byte_offset", "start_offset", "end_offset"}  # numbers shown monospaced
_HEX = re.compile(r"(?:sha\d+:)?[0-9a-fA-F]{16,}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z| ?UTC|[+-]\d{2}:?\d{2})?")
_TIME_PARTS = re.compile(r"(?<=\d{4}-\d{2}-\d{2}T)|(?=\.\d+)|(?<=\d)(?=[+-]\d{2}:?\d{2}$)")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?")
_ENUM_MAX = 16  # longest single-token value an enum column holds
_ONE_LINE = 16  # enum values up to this long never wrap; longer ones (``suspicious_connection``) only after ``_``
_ONE_LINE_WIDE = 12  # the same in a table of many columns
_LONG_TOKEN = 40  # a token in running text longer than this is no ordinary word: it gets break points
_SHORT = 16  # a path or id this short stays whole (``network.txt``, ``F-c211ccc25e7b``) ...
_TIME_WHOLE = 24  # a timestamp this short (``2026-11-19T09:40:33Z``) stays whole outside wide tables
_TAIL = 4  # a last piece this short (``log``, ``pkl``) is not put on a line of its own
_SHORT_WIDE = 12  # ... or this short in a table of many columns
_SEPARATORS = "/._-:@=+,?#\\"
_RUN = 12  # a run of letters and digits this long gets a break point after every _RUN characters (hex, base64)
WIDE_COLUMNS = 9  # tables with this many columns print in a smaller font (``wb-wide``)
WIDER_COLUMNS = 13  # and with this many in a smaller one still (``wb-wider``): A4 portrait holds no more


def _values(series: Any) -> list[str]:
    return [str(v) for v in series if not _missing(v)]


def _is_numeric(series: Any) -> bool:
    kind = getattr(getattr(series, "dtype", None), "kind", "O")
    return kind in "iuf"


def column_kind(name: Any, series: Any, *, mono: bool = False) -> str:
    """The kind of a column (one of :data:`KINDS`), from its name first, then from its content.

    ``hash``: hex digests (break anywhere); ``id``: finding and rule ids; ``path``: paths, URLs, tensor and module
    names (monospaced, break after ``/ . _ -``); ``time``: timestamps and durations (monospaced); ``num``: numbers
    (right-aligned, one line); ``enum``: short single-word values such as severities and statuses (one line);
    ``text``: everything else (titles, details, messages: they get the room, words never break).
    """
    n = str(name).strip().lower()
    values = _values(series)
    tokens = all(not any(ch.isspace() for ch in v) for v in values)
    longest = max((len(v) for v in values), default=0)
    if _is_numeric(series):  # before the name: a count of hash-pinned packages is a number
        return "num"
    if _HASH_NAME.search(n) or (values and tokens and all(_HEX.fullmatch(v) for v in values)):
        return "hash"
    if values and all(_NUMBER.fullmatch(v) for v in values):
        return "num"
    if _TIME_NAME.search(n) or (values and all(_TIMESTAMP.fullmatch(v) for v in values)):
        return "time"
    if tokens and (n in _ID_NAMES or n.endswith(("_id", " id"))):
        return "id"
    if n in _PATH_NAMES or "path" in n or (tokens and values and all("/" in v for v in values)):
        return "path" if tokens or mono or n in _PATH_NAMES or "path" in n else "text"
    if mono:
        return "path"
    if tokens and values and (n in _ENUM_NAMES or longest <= _ENUM_MAX):
        return "enum"
    return "text"


_CLASSES = {"hash": "wb-mono wb-hash", "id": "wb-mono wb-id", "path": "wb-mono wb-path", "time": "wb-mono",
            "num": "wb-num", "offset": "wb-mono wb-num", "enum": "wb-enum", "text": ""}  # fmt: skip
_HEAD_CLASSES = {"num": "wb-num", "prose": "wb-text", "time": "wb-time"}
_PROSE = 32  # a text column whose values run longer than this, in words, is prose: it gets a minimum width
_WORDS = re.compile(r"[A-Za-z]{3,}")


def _layout(df: Any, kinds: list[str], *, wide: bool) -> list[tuple[str, str]]:
    """Per column: the header class (``prose`` columns carry a minimum width, never a sliver) and the cell kind
    (``enum`` columns with values too long for one line wrap as ids do, after ``_``, in the body font; offsets
    are numbers in the monospaced font)."""
    out = []
    for col, kind in zip(df.columns, kinds, strict=True):
        values = _values(df[col])
        longest = max(values, key=len, default="")
        if kind == "text" and len(longest) > _PROSE and len(_WORDS.findall(longest)) >= 3:
            out.append(("prose", kind))
        elif kind == "enum" and len(longest) > (_ONE_LINE_WIDE if wide else _ONE_LINE):
            out.append((kind, "word"))
        elif kind == "num" and str(col).strip().lower() in _OFFSET_NAMES:
            out.append((kind, "offset"))
        else:
            out.append((kind, kind))
    return out


def _breakable(raw: str) -> str:
    """``raw`` escaped, with a ``<wbr>`` after each separator (``/ . _ -`` ...) and inside long runs (hex, base64):
    the only places a path, id or long token may break. Pieces are escaped one by one (no break inside an entity)."""
    pieces: list[str] = []
    current, run = "", 0  # run: characters since the last separator or space
    for ch in raw:
        current += ch
        if ch.isspace():  # a space is a break opportunity already
            run = 0
            continue
        run += 1
        if ch in _SEPARATORS or (run >= _RUN and _cut(current[-run:])):
            pieces.append(current)
            current, run = "", 0
    if current:
        pieces.append(current)
    if len(pieces) > 1 and len(pieces[-1]) <= _TAIL:  # a file extension stays with its name: pipeline.log
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    return "<wbr>".join(escape(p) for p in pieces)


def _cut(run: str) -> bool:
    """Whether a run without separators is long enough to cut: letters and digits (hex, base64) at :data:`_RUN`,
    letters only at twice that (an ordinary word is never cut), anything holding other characters never."""
    return run.isalnum() and (not run.isalpha() or len(run) >= 2 * _RUN)


def _text_cell(raw: str) -> str:
    """Running text escaped: ordinary words whole, tokens longer than :data:`_LONG_TOKEN` given break points."""
    parts = re.split(r"(\S+)", raw)
    return "".join(_breakable(p) if len(p) > _LONG_TOKEN and not p.isspace() else escape(p) for p in parts)


def _cell(raw: str, kind: str, *, wide: bool) -> str:
    limit = (_ONE_LINE_WIDE if wide else _ONE_LINE) if kind == "word" else _SHORT_WIDE if wide else _SHORT
    if kind in ("path", "id", "word") and len(raw) > limit:
        return _breakable(raw)
    if kind == "text" and len(raw) > _LONG_TOKEN:
        return _text_cell(raw)
    if kind == "time" and (wide or len(raw) > _TIME_WHOLE):  # a timestamp may wrap after its date, before its fraction
        return "<wbr>".join(escape(p) for p in _TIME_PARTS.split(raw) if p)  # and its offset
    return escape(raw)


def _number(value: Any) -> Any:
    """A float whose full form is long, shown short (the data keeps every digit): whole numbers without ``.0``
    (an integer column with a gap is float), else four significant digits, one decimal from 1,000 up."""
    if not (isinstance(value, float) or type(value).__name__.startswith("float")) or len(str(value)) <= 8:
        return value
    v = float(value)
    if v != v or abs(v) == float("inf"):
        return value
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.1f}" if 1e3 <= abs(v) < 1e15 else f"{v:.4g}"


def _header(name: Any) -> str:
    """A column name escaped, breakable after ``_`` (``changed_elements`` wraps as two words, never overlaps)."""
    return "_<wbr>".join(text(part) for part in str(name).split("_"))


def html_table(
    df: Any, *, mono: tuple[str, ...] = (), max_rows: int = MAX_ROWS, kinds: dict[str, str] | None = None
) -> str:
    """A DataFrame as an escaped HTML table (cells through :func:`text`); a ``severity`` column as badges.

    Each column's kind (:func:`column_kind`, overridden by ``kinds``: column name to one of :data:`KINDS`) decides
    its font and where it may wrap: hashes anywhere, paths and ids only after separators, enums and numbers
    never, text only between words. ``mono`` names columns to show monospaced (paths, unless the content says
    hash or time). Long floats are shown to four significant digits.
    """
    if df.empty:
        return '<p class="wb-note">None.</p>'
    shown = df.head(max_rows)
    given = kinds or {}
    col_kinds = [given.get(c) or column_kind(c, shown[c], mono=c in mono) for c in shown.columns]
    for c, k in zip(shown.columns, col_kinds, strict=True):
        if k not in KINDS:
            raise ValueError(f"column {c!r}: unknown kind {k!r} (one of {', '.join(KINDS)})")
    wide = len(shown.columns) >= WIDE_COLUMNS
    layout = _layout(shown, col_kinds, wide=wide)
    head = "".join(
        f'<th class="{_HEAD_CLASSES[h]}">{_header(c)}</th>' if h in _HEAD_CLASSES else f"<th>{_header(c)}</th>"
        for c, (h, _) in zip(shown.columns, layout, strict=True)
    )
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for col, (_, kind), value in zip(shown.columns, layout, rec, strict=True):
            if col == "severity":
                cells.append(f'<td class="wb-enum">{sev(value)}</td>')
                continue
            cls = _CLASSES.get(kind, "")
            body = "" if _missing(value) else _cell(_redact(str(_number(value))), kind, wide=wide)
            cells.append(f'<td class="{cls}">{body}</td>' if cls else f"<td>{body}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="wb-note">{len(df) - max_rows} more rows not shown.</p>' if len(df) > max_rows else ""
    cls = "wb-table" + (" wb-wide" if wide else "") + (" wb-wider" if len(shown.columns) >= WIDER_COLUMNS else "")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'
