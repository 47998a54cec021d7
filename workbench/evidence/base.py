"""The loader contract: one small loader per evidence kind, each with a cheap ``detect`` and a ``load``.

A loader never executes, imports or unpickles evidence. ``detect`` looks at the file name and at most the first
few KiB; ``load`` streams the file, caps line lengths, and turns each malformed item into an
:class:`~workbench.records.EvidenceWarning` (file, line, reason) while parsing goes on. A file that cannot be
used at all raises :class:`~workbench.errors.MalformedEvidence` naming the file.
"""

from __future__ import annotations

import functools
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence.sniffing import SNIFF_BYTES, is_regular_file, sniff, sniff_lines, sniff_text, sniffing
from workbench.records import EvidenceWarning
from workbench.textsafe import clean_data, replaced_reason
from workbench.timeparse import parse_timestamp

if TYPE_CHECKING:  # pandas is imported where a frame is built (CLI start-up and memory: issue 15)
    import pandas as pd

__all__ = [
    "INT64_MAX",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "SNIFF_BYTES",
    "LoadContext",
    "Loaded",
    "Loader",
    "OverCap",
    "check_size",
    "clean_parsed",
    "is_regular_file",
    "iter_lines",
    "iter_stream_lines",
    "parse_json",
    "parse_time",
    "read_json",
    "sniff",
    "sniff_json",
    "sniff_lines",
    "sniff_text",
    "sniffing",
]

#: Lines longer than this are cut and flagged.
MAX_LINE_CHARS = 64 * 1024
#: Structured (non-log) evidence files larger than this are refused with MalformedEvidence.
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(slots=True)
class LoadContext:
    """What a loader may know about the case: the display name of the file and the naive-time rule.

    Attributes:
        relpath: path shown in warnings and records (relative to the case root).
        naive_tz: zone for timestamps without an offset (see :mod:`workbench.timeparse`).
    """

    relpath: str
    naive_tz: tzinfo = UTC


@dataclass(slots=True, init=False)
class Loaded:
    """The result of loading one evidence file.

    Attributes:
        kind: the loader's ``name``.
        path: relative path of the file.
        frame: the typed table (columns documented on the loader). A loader may hand over a builder instead (see
            :meth:`Loader.frame_builder`): the table is then made on first use, so that a case of many small files
            does not hold a DataFrame per file that nothing reads.
        warnings: per-line or per-item problems.
        meta: small file-level facts (e.g. a monitor config's threshold).
        unexamined: parts of the file a cap left unread (``"path: reason"``); the evidence coverage is then partial.
    """

    kind: str
    path: str
    warnings: list[EvidenceWarning]
    meta: dict
    unexamined: list[str]
    _frame: pd.DataFrame | Callable[[], pd.DataFrame]

    def __init__(
        self,
        kind: str,
        path: str,
        frame: pd.DataFrame | Callable[[], pd.DataFrame],
        warnings: list[EvidenceWarning] | None = None,
        meta: dict | None = None,
        unexamined: list[str] | None = None,
    ) -> None:
        self.kind, self.path, self._frame = kind, path, frame
        self.warnings = warnings if warnings is not None else []
        self.meta = meta if meta is not None else {}
        self.unexamined = unexamined if unexamined is not None else []

    @property
    def frame(self) -> pd.DataFrame:
        if callable(self._frame):  # a builder (a DataFrame is not callable)
            self._frame = self._frame()
        return self._frame

    @frame.setter
    def frame(self, value: pd.DataFrame) -> None:
        self._frame = value


class OverCap(MalformedEvidence):
    """The file is larger than the cap for its kind: it is not read at all (recorded as unexamined, not malformed)."""


class Loader(ABC):
    """Base class of evidence loaders. Subclasses set ``name``, ``columns`` and a docstring.

    ``columns`` maps each output column to its dtype description; ``load`` must return exactly those columns
    (checked by the conformance test).
    """

    name: ClassVar[str]
    columns: ClassVar[dict[str, str]]

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """Cheap, side-effect-free check: is this file of my kind? Never raises for unreadable files."""

    @abstractmethod
    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """Parse the file. Raises MalformedEvidence when the file is unusable."""

    def empty_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({c: pd.Series(dtype=_pandas_dtype(t)) for c, t in self.columns.items()})

    def make_frame(self, rows: Iterable[Mapping[str, Any]] | Mapping[str, list]) -> pd.DataFrame:
        """A frame with exactly ``columns``, in order and with their dtypes, from row dicts or column lists.

        Missing keys become nulls; extra keys are dropped. Datetime values must already be UTC-aware (see
        :func:`parse_time`).
        """
        import pandas as pd

        if isinstance(rows, Mapping):
            data = {c: list(rows.get(c, ())) for c in self.columns}
        else:
            rows = list(rows)
            data = {c: [r.get(c) for r in rows] for c in self.columns}
        n = max((len(v) for v in data.values()), default=0)
        if n == 0:
            return self.empty_frame()
        return pd.DataFrame({c: _typed(data[c] or [None] * n, t) for c, t in self.columns.items()})

    def frame_builder(self, columns: Mapping[str, list]) -> Callable[[], pd.DataFrame]:
        """A zero-argument function making :meth:`make_frame` of ``columns`` when called (for :class:`Loaded`)."""
        return functools.partial(self.make_frame, columns)


def _pandas_dtype(desc: str) -> str:
    return {
        "str": "object",
        "int": "Int64",
        "float": "float64",
        "bool": "boolean",
        "datetime": "datetime64[ns, UTC]",
        "object": "object",
    }.get(desc, "object")


#: Largest value an ``Int64`` column holds; loaders reject bigger numbers from evidence with a warning.
INT64_MAX = 2**63 - 1


def _typed(values: list, desc: str) -> pd.Series:
    import pandas as pd

    if desc == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[ns, UTC]")
    if desc == "int":  # last line of defence: never let a huge number from evidence break the frame
        values = [v if v is None or -INT64_MAX <= v <= INT64_MAX else None for v in values]
    return pd.Series(values, dtype=_pandas_dtype(desc))


#: Range a ``datetime64[ns]`` column can hold; timestamps outside it are treated as unparseable.
_TS_MIN = datetime(1678, 1, 1, tzinfo=UTC)
_TS_MAX = datetime(2262, 1, 1, tzinfo=UTC)


def parse_time(value: object, ctx: LoadContext) -> datetime | None:
    """``timeparse.parse_timestamp`` with the case's naive-time rule, limited to what pandas can hold.

    Returns:
        A UTC datetime, or None when ``value`` is empty, not a timestamp, or outside 1678..2262.
    """
    if value is None or value == "":
        return None
    try:
        ts = parse_timestamp(value, naive_tz=ctx.naive_tz)
    except (OverflowError, ValueError):  # e.g. an epoch integer too large for a float
        return None
    if ts is None or not (_TS_MIN <= ts < _TS_MAX):
        return None
    return ts


def sniff_json(path: Path) -> Any:
    """The parsed JSON document when the whole file fits in the sniff window, else None. Never raises."""
    text, complete = sniff_text(path)
    if not complete or not text.strip():
        return None
    try:
        return parse_json(text)
    except ValueError:
        return None


def _no_constant(name: str) -> None:
    return None


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_json(text: str) -> Any:
    """``json.loads`` for hostile text: NaN/Infinity become None; any failure (incl. deep nesting) is ValueError."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def clean_parsed(value: Any, ctx: LoadContext, line: int | None, warnings: list[EvidenceWarning]) -> Any:
    """A parsed JSON value with every string made valid Unicode (:func:`workbench.textsafe.clean_data`).

    JSON ``"\\ud800"`` escapes decode to lone surrogates, which no writer can encode: they become U+FFFD, with one
    warning naming the file and ``line``.
    """
    cleaned, changed = clean_data(value)
    if changed:
        warnings.append(EvidenceWarning(ctx.relpath, line, replaced_reason()))
    return cleaned


def read_json(path: Path, ctx: LoadContext, warnings: list[EvidenceWarning]) -> Any:
    """Read a whole JSON document after :func:`check_size`; bad UTF-8 is replaced with one warning; strings are made
    valid Unicode (:func:`clean_parsed`, the warning naming the line of the first surrogate escape).

    Raises:
        OverCap: larger than the cap for structured files.
        MalformedEvidence: unreadable file or text that is not JSON.
    """
    check_size(path, ctx)
    try:
        data = safeio.read_bytes(path)
    except OSError as exc:
        raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
        warnings.append(EvidenceWarning(ctx.relpath, None, "invalid UTF-8, bytes replaced"))
    try:
        doc = parse_json(text)
    except ValueError as exc:
        raise MalformedEvidence(ctx.relpath, f"not valid JSON: {exc}") from None
    escape = _SURROGATE_ESCAPE.search(text)
    return clean_parsed(doc, ctx, text.count("\n", 0, escape.start()) + 1 if escape else None, warnings)


def iter_lines(path: Path, ctx: LoadContext, warnings: list[EvidenceWarning]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for a text file, streaming, with decode errors replaced and long lines cut.

    A decode problem is reported once per file; each cut line is reported with its number.
    """
    try:
        fh = safeio.open_evidence(path)
    except OSError as exc:
        raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
    with fh:
        yield from iter_stream_lines(fh, ctx, warnings)


def iter_stream_lines(fh: IO[bytes], ctx: LoadContext, warnings: list[EvidenceWarning]) -> Iterator[tuple[int, str]]:
    """:func:`iter_lines` over an open binary stream (e.g. a decompressor); a leading BOM is dropped."""
    decode_reported = False
    for number, raw in enumerate(_capped_lines(fh), start=1):
        data, was_cut = raw
        if was_cut:
            warnings.append(EvidenceWarning(ctx.relpath, number, f"line longer than {MAX_LINE_CHARS} bytes, cut"))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            if not decode_reported:
                warnings.append(EvidenceWarning(ctx.relpath, number, "invalid UTF-8, bytes replaced"))
                decode_reported = True
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text.rstrip("\r\n")


def _capped_lines(fh: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Lines of at most MAX_LINE_CHARS bytes; the rest of an over-long line is skipped, not kept in memory."""
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS and not line.endswith(b"\n"):
            # drain the remainder of this physical line in bounded chunks
            while True:
                rest = fh.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith(b"\n"):
                    break
            yield line[:MAX_LINE_CHARS], True
        else:
            yield line, False


def check_size(path: Path, ctx: LoadContext, limit: int = MAX_FILE_BYTES) -> int:
    """Size of the file; :class:`OverCap` when above ``limit`` (structured files are read whole)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MalformedEvidence(ctx.relpath, f"cannot stat: {exc.strerror or exc}") from None
    if size > limit:
        raise OverCap(ctx.relpath, f"{size} bytes is over the {limit}-byte limit for this kind of file: not read")
    return size
