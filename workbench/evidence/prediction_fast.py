"""Fast path of the predictions loader (JSON lines and CSV): the same table and warnings as the careful path.

The file is read in blocks of whole lines (:data:`BLOCK_BYTES`; a line longer than the cap is cut as
:func:`~workbench.evidence.base.iter_lines` cuts it, without holding it whole). The first JSON object of the file
gives the *shape* of its records: its keys in order, each with the only kinds of value the fast path takes for it
(the class a non-empty string without escapes, the timestamp in the common ISO 8601 form with ``Z`` or an offset,
the confidence a plain JSON number, the version and request id strings without escapes or null, other keys a string,
number, true, false or null); in a CSV the header does (cells without quotes, commas or control characters, which
the csv module splits as a plain split on commas). One regular expression of that shape (a DFA: linear time, no
backtracking) vouches for each line; polars parses the lines it vouches for (natively, several threads) and the
columns are converted at once. A vouched line whose time is not a real instant (30 February) or whose confidence is
outside [0, 1] is sent back. Every other line (blank, malformed, a different key order, escapes, duplicate keys,
quoted CSV cells, other timestamp forms, numbers as labels, invalid UTF-8, over-long, the first line) goes through
the careful path (:meth:`_Reader.add`), in file order, so that labels and versions get their codes in first-seen
order and the warnings come out as the careful path writes them. Nothing from the evidence is executed.

Measured with ``benchmarks/bench_drift.py`` (one million lines, 153 MiB): the loader's CPU time fell from about 13 s
to about 2.5 s; per million lines, roughly 0.4 s splitting into lines, 0.4 s the shape check, 0.65 s polars'
parse, 0.4 s the timestamps, 0.2 s request-id keys (the process's ``hash``, as the careful path keys them).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from itertools import compress
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from workbench.evidence.base import MAX_LINE_CHARS

if TYPE_CHECKING:
    from workbench.evidence.predictions import _Reader

__all__ = ["BLOCK_BYTES", "Shape", "available", "blocks", "read_fast"]

#: Bytes of whole lines parsed at once: 2 MiB measured best (4 MiB: 10 % less CPU, 20 MiB more peak RSS at 1M lines).
BLOCK_BYTES = 2 << 20

_W = r"[ \t\r]*"
_STR = r'"[^"\\\x00-\x1f\x7f]*"'
_TEXT = r'"[^"\\\x00-\x1f\x7f]+"'
_NUM = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?"  # what polars parses as Python does
#: what ``time_ns`` reads with ``datetime.fromisoformat`` and chrono reads alike (years 1900..2199: inside int64 ns)
_TIME = (r'"(?:19|20|21)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:'
         r'[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"')  # fmt: skip
_ANY = f"{_STR}|{_NUM}|null|true|false"
_CELL = r'[^",\x00-\x1f\x7f]'  # a CSV cell the csv module splits as a plain split on commas
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"


def available() -> bool:
    """Whether polars can be imported (the careful path is used without it)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


class Shape:
    """The record shape of one file, from its first JSON object: the pattern each fast line must match in full, the
    polars schema of the columns read and the key holding the class."""

    __slots__ = ("class_key", "csv", "keys", "pattern", "schema")

    def __init__(self, pattern: str, schema: dict[str, Any], class_key: str, keys: tuple[str, ...],
                 csv: bool = False) -> None:  # fmt: skip
        self.pattern, self.schema, self.class_key, self.keys, self.csv = pattern, schema, class_key, keys, csv

    @classmethod
    def of_header(cls, header: list[str]) -> Shape | None:
        """The shape of the rows under a CSV header (names stripped and lower-cased, as the careful path keys
        them): cells without quotes, commas or control characters, the class not empty, the timestamp in the common
        form, the confidence a plain number or empty."""
        import polars as pl

        keys = tuple(header)
        if not keys or len(set(keys)) != len(keys) or "timestamp" not in keys:
            return None
        class_key = "predicted_class" if "predicted_class" in keys else "label" if "label" in keys else None
        if class_key is None:
            return None
        values = {class_key: _CELL + "+", "timestamp": _TIME[1:-1], "confidence": f"(?:{_NUM})?"}
        pattern = "^" + ",".join(f"(?:{values.get(k, _CELL + '*')})" for k in keys) + "\r?$"
        wanted = (class_key, "timestamp", "confidence", "model_version", "request_id")
        schema = {k: pl.String for k in wanted if k in keys}
        return cls(pattern, schema, class_key, keys, csv=True)

    def parse(self, buf: bytes) -> Any:
        """The polars frame of vouched lines (``buf``: joined by newlines), with the schema's columns."""
        import polars as pl

        if not self.csv:
            return pl.read_ndjson(io.BytesIO(buf), schema=self.schema)
        names = [f"c{i}" for i in range(len(self.keys))]  # the header's own names may be anything
        frame = pl.read_csv(io.BytesIO(buf), has_header=False, schema=dict.fromkeys(names, pl.String),
                            quote_char=None, separator=",")  # fmt: skip
        frame = frame.select([pl.col(f"c{self.keys.index(k)}").alias(k) for k in self.schema])
        if "confidence" in frame.columns:
            frame = frame.with_columns(pl.col("confidence").cast(pl.Float64))
        return frame

    @classmethod
    def of(cls, record: dict) -> Shape | None:
        """The shape of ``record`` (a parsed line), or None when the fast path cannot vouch for records like it."""
        import polars as pl

        keys = tuple(record)
        if not keys or len(keys) > 64 or not all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys):
            return None
        class_key = "predicted_class" if "predicted_class" in keys else "label" if "label" in keys else None
        if class_key is None or "timestamp" not in keys:
            return None
        values = {class_key: _TEXT, "timestamp": _TIME, "confidence": f"{_NUM}|null",
                  "model_version": f"{_STR}|null", "request_id": f"{_STR}|null"}  # fmt: skip
        parts = [f'{_W}"{k}"{_W}:{_W}(?:{values.get(k, _ANY)}){_W}' for k in keys]
        pattern = "^" + _W + r"\{" + ",".join(parts) + r"\}" + _W + "$"
        schema = {k: (pl.Float64 if k == "confidence" else pl.String) for k in values if k in keys}
        return cls(pattern, schema, class_key, keys)


def blocks(fh: IO[bytes], size: int) -> Iterator[bytes]:
    """Runs of whole lines (the last may lack its newline); a line of more than ``MAX_LINE_CHARS`` bytes that does
    not fit a block comes alone, as its first ``MAX_LINE_CHARS + 1`` bytes (the rest is read and dropped)."""
    carry = b""
    while True:
        data = fh.read(size)
        if not data:
            if carry:
                yield carry
            return
        buf = carry + data if carry else data
        end = buf.rfind(b"\n")
        if end >= 0:
            yield buf[: end + 1]
            carry = buf[end + 1 :]
            continue
        if len(buf) <= MAX_LINE_CHARS + 1:
            carry = buf
            continue
        head = buf[: MAX_LINE_CHARS + 1]  # one over-long line: kept as far as the careful path keeps it
        while True:
            data = fh.read(size)
            if not data:
                carry = b""
                break
            i = data.find(b"\n")
            if i >= 0:
                carry = data[i + 1 :]
                break
        yield head


def read_fast(fh: IO[bytes], reader: _Reader, *, csv: bool = False) -> None:
    """Read the whole stream into ``reader`` (fast lines in columns, the others through its careful path); ``csv``:
    a CSV with a header line, else JSON lines."""
    number = 1
    shape: Shape | None = None
    header: list[str] | None = None
    settled = False  # the shape is decided by the first JSON object or the header (None: every line careful)

    def careful(n: int, data: bytes) -> Any:
        return reader.csv_line(n, data, header) if csv else reader.careful_line(n, data)

    for raw in blocks(fh, BLOCK_BYTES):
        parts = raw.split(b"\n")
        if raw.endswith(b"\n"):
            parts.pop()
        whole = raw if raw.isascii() and b"\r" not in raw else None
        if not settled:
            whole = None
            while parts and not settled:
                got = careful(number, parts.pop(0))
                number += 1
                if csv and got is not None:
                    header = got
                    shape, settled = Shape.of_header(header), True
                elif not csv and isinstance(got, dict):
                    shape, settled = Shape.of(got), True
            if not parts:
                continue
        if shape is None:
            for part in parts:
                careful(number, part)
                number += 1
        else:
            _block(parts, number, shape, reader, whole, careful)
            number += len(parts)
        if reader.stopped or time.monotonic() > reader.deadline:
            reader.stopped = True
            return


def _block(parts: list[bytes], first: int, shape: Shape, reader: _Reader, whole: bytes | None,
           careful: Callable[[int, bytes], Any]) -> None:  # fmt: skip
    """One run of lines: the vouched ones parsed in columns, the others careful, all in file order. ``whole`` is
    the run's bytes when they are ASCII without a carriage return (else None)."""
    import polars as pl

    n = len(parts)
    raw = pl.Series(parts, dtype=pl.Binary)
    if whole is not None:
        text = raw.cast(pl.String)
    else:  # a line of invalid UTF-8 is careful (replaced bytes, one warning per file)
        text = pl.Series([p if _utf8(p) else b"" for p in parts], dtype=pl.Binary).cast(pl.String)
    good = (text.str.contains(shape.pattern) & (raw.bin.size() <= MAX_LINE_CHARS)).fill_null(False).to_numpy()
    good = good.copy()
    del raw, text
    fast = np.flatnonzero(good)
    cols = None
    if len(fast):
        if len(fast) == n and whole is not None:
            buf = whole
        else:
            kept = compress(parts, good) if len(fast) < n else parts
            buf = b"\n".join(p.removesuffix(b"\r") for p in kept) if whole is None else b"\n".join(kept)
        try:
            frame = shape.parse(buf)
        except (pl.exceptions.PolarsError, ValueError):  # not expected after the check: the whole run careful
            frame = None
        del buf
        if frame is not None and frame.height == len(fast):
            cols, back = _columns(frame, shape)
            if back is not None:
                good[fast[back]] = False
                fast = fast[~back]
        else:  # not expected: the careful path for the whole run
            good[:] = False
            fast = fast[:0]
    slow = np.flatnonzero(~good)
    start = 0
    for i in (*slow.tolist(), n):
        stop = int(np.searchsorted(fast, i))
        if stop > start and cols is not None:
            reader.add_rows(first + fast[start:stop], cols, start, stop)
            if reader.stopped:
                return
        start = stop
        if i < n:
            careful(first + i, parts[i])


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Columns:
    """The fast lines of one run as columns: int64 ns, label texts as local codes (first-seen order), float64
    confidence, version local codes (-1 for none), int64 request keys, and the request ids as text."""

    __slots__ = ("conf", "ids", "key", "label", "label_first", "label_lut", "label_next", "labels", "time", "version",
                 "version_first", "version_lut", "version_next", "versions")  # fmt: skip

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)
        self.label_lut = np.full(len(self.labels), -1, dtype=np.int16)
        self.version_lut = np.append(np.full(len(self.versions), -1, dtype=np.int16), np.int16(-1))
        self.label_next = self.version_next = 0


def _columns(frame: Any, shape: Shape) -> tuple[Columns, np.ndarray | None]:
    """The columns of the parsed fast lines that stay fast, and the mask of rows sent back to the careful path (a
    time that is no instant, a confidence outside [0, 1]), or None."""
    import polars as pl

    ts = frame["timestamp"].str.strptime(pl.Datetime("ns", "UTC"), _TIME_FORMAT, strict=False, cache=False)
    back = ts.is_null().to_numpy()
    if "confidence" in frame.columns:
        conf = frame["confidence"].fill_null(np.nan).to_numpy().astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            back |= ~np.isnan(conf) & ~((conf >= 0.0) & (conf <= 1.0))
    if back.any():
        keep = pl.Series(~back)
        frame, ts = frame.filter(keep), ts.filter(keep)
    n = frame.height
    times = ts.dt.epoch("ns").to_numpy().astype(np.int64, copy=False)
    if "confidence" in frame.columns:
        conf = frame["confidence"].fill_null(np.nan).to_numpy().astype(np.float64, copy=False)
    else:
        conf = np.full(n, np.nan)
    labels, label_codes, label_first = _local(frame[shape.class_key])
    if "model_version" in frame.columns:
        versions, version_codes, version_first = _local(_none_if_empty(frame["model_version"]))
    else:
        versions, version_codes, version_first = [], np.full(n, -1, dtype=np.int32), np.zeros(0, dtype=np.int64)
    if "request_id" in frame.columns:
        id_series = _none_if_empty(frame["request_id"])
        ids: list[str | None] = id_series.to_list()
        none = id_series.is_null().to_numpy()
    else:
        ids, none = [None] * n, np.ones(n, dtype=bool)
    key = np.fromiter(map(hash, ids), dtype=np.int64, count=n)  # as ``request_key``: the process's str hash
    key[key == 0] = 1
    key[none] = 0
    cols = Columns(time=times, conf=conf, labels=labels, label=label_codes, label_first=label_first,
                   versions=versions, version=version_codes, version_first=version_first, key=key, ids=ids)  # fmt: skip
    return cols, (back if back.any() else None)


def _none_if_empty(s: Any) -> Any:
    import polars as pl

    return s.set(s.str.len_bytes() == 0, None) if (s.str.len_bytes() == 0).any() else s.cast(pl.String)


def _local(s: Any) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Distinct values of ``s`` in first-seen order, each row's index into them (-1 for null), and the row of
    each one's first occurrence."""
    import polars as pl

    first = s.arg_unique().to_numpy().astype(np.int64)
    values = s.gather(first).to_list()
    keep = [i for i, v in enumerate(values) if v is not None]
    values = [values[i] for i in keep]
    first = first[keep]
    codes = s.replace_strict(values, list(range(len(values))), default=-1, return_dtype=pl.Int32).to_numpy()
    return values, codes.astype(np.int32, copy=False), first
