"""Prediction records as compact columns: what the predictions loader produces and the drift analysis reads.

Per record: an int32 line number, int64 nanoseconds since 1970 (UTC), an int16 code of the label into the file's
distinct labels, a float64 confidence (exact: the statistics on it are those of the text), an int16 code of the
model version, an int64 key of the request id. About 32 bytes a record: ten million records in about 320 MB,
where a frame of Python objects took gigabytes. Past :data:`MAX_ROWS` records only the first and the last
``MAX_ROWS // 2`` are kept (the records between are named in ``unexamined``).
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from workbench.evidence.base import LoadContext, parse_time

__all__ = ["MAX_LABELS", "MAX_ROWS", "MAX_TEXT_ROWS", "MAX_VERSIONS", "NAT", "OVERFLOW_LABEL", "OVERFLOW_VERSION",
           "PredictionTable", "request_key", "time_ns"]  # fmt: skip

#: Records kept per file; beyond, the first and the last half of this many are kept.
MAX_ROWS = 12_000_000
#: Distinct labels per file; records with a label first seen beyond it are counted under :data:`OVERFLOW_LABEL`.
MAX_LABELS = 10_000
#: Distinct model versions per file (later new ones: :data:`OVERFLOW_VERSION`).
MAX_VERSIONS = 1_000
#: Request ids kept as text (for the frame) per file; every id is kept as a key.
MAX_TEXT_ROWS = 100_000
OVERFLOW_LABEL = "(other labels: over the cap of distinct labels)"
OVERFLOW_VERSION = "(other versions: over the cap)"
#: int64 "no time" (numpy's NaT)
NAT = int(np.iinfo(np.int64).min)

#: the common timestamp form, read by ``datetime.fromisoformat`` exactly as ``parse_time`` reads it
_FAST_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_KEY = 0


def _ns(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


_NS_MIN = _ns(datetime(1678, 1, 1, tzinfo=UTC))
_NS_MAX = _ns(datetime(2262, 1, 1, tzinfo=UTC))


def time_ns(value: object, ctx: LoadContext) -> int:
    """``parse_time`` of ``value`` as int64 nanoseconds since the epoch (UTC), or :data:`NAT`."""
    if type(value) is str and _FAST_TIME.fullmatch(value):
        try:
            ns = _ns(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except (ValueError, OverflowError):  # 2026-13-40, year 0, an offset of a day or more: the slow path says
            pass
        else:
            return ns if _NS_MIN <= ns < _NS_MAX else NAT
    ts = parse_time(value, ctx)
    return NAT if ts is None else _ns(ts)


@dataclass(slots=True)
class PredictionTable:
    """Prediction records of one file as compact columns (row order as in the file).

    Attributes:
        line: int32 line numbers.
        time_ns: int64 nanoseconds since 1970 (UTC); :data:`NAT` where missing or unparseable.
        label: int16 code of each record's label into ``labels`` (texts as written, in first-seen order).
        confidence: float64, NaN where absent or unusable.
        version: int16 code into ``versions``, -1 for none.
        request_key: int64 key of the request id (equal ids give equal keys in one process), 0 for none.
        request_ids: the first :data:`MAX_TEXT_ROWS` request ids as text (for the frame).
        unexamined: records the caps left out (``"path: reason"``), for the coverage of the analysis reading them.
        limits: softer notes (labels or versions counted together over their cap).
    """

    line: np.ndarray
    time_ns: np.ndarray
    label: np.ndarray
    labels: tuple[str, ...]
    confidence: np.ndarray
    version: np.ndarray
    versions: tuple[str, ...]
    request_key: np.ndarray
    request_ids: list[str | None] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line)

    def frame(self) -> pd.DataFrame:
        """The loader's documented columns (labels and versions categorical; request ids beyond the first
        :data:`MAX_TEXT_ROWS` are None)."""
        n = len(self)
        ids = self.request_ids + [None] * (n - len(self.request_ids))
        versions = pd.Categorical.from_codes(
            self.version.astype(np.int32), categories=pd.Index(self.versions, dtype=object)
        )
        times = pd.DatetimeIndex(self.time_ns.view("datetime64[ns]")).tz_localize("UTC")
        return pd.DataFrame({
            "line": pd.array(self.line.astype(np.int64), dtype="Int64"),
            "timestamp": pd.Series(times, dtype="datetime64[ns, UTC]"),
            "label": pd.Categorical.from_codes(self.label.astype(np.int32), categories=pd.Index(self.labels,
                                                                                                dtype=object)),
            "confidence": self.confidence,
            "model_version": versions,
            "request_id": pd.Series(ids, dtype=object),
        })  # fmt: skip

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> PredictionTable:
        """A table from a frame with the loader's columns (e.g. one built in a test or a simulation)."""
        labels, label_codes = _codes(frame["label"])
        versions, version_codes = _codes(frame["model_version"]) if "model_version" in frame else ((), None)
        n = len(frame)
        ts = pd.to_datetime(frame["timestamp"], utc=True)
        ids = frame["request_id"].tolist() if "request_id" in frame else [None] * n
        conf = frame["confidence"] if "confidence" in frame else pd.Series(np.nan, index=frame.index)
        return cls(
            line=frame["line"].to_numpy(dtype=np.int64, na_value=0).astype(np.int32),
            time_ns=ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64),
            label=label_codes,
            labels=labels,
            confidence=pd.to_numeric(conf, errors="coerce").to_numpy(dtype=np.float64),
            version=version_codes if version_codes is not None else np.full(n, -1, dtype=np.int16),
            versions=versions,
            request_key=np.array([request_key(v if isinstance(v, str) else None) for v in ids], dtype=np.int64),
            request_ids=[v if isinstance(v, str) else None for v in ids[:MAX_TEXT_ROWS]],
        )


def _codes(values: pd.Series) -> tuple[tuple[str, ...], np.ndarray]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return tuple(str(u) for u in uniques), codes.astype(np.int16)


def request_key(request_id: str | None) -> int:
    """A 64-bit key of a request id: SipHash keyed per process (``hash``), never :data:`_NO_KEY` for an id."""
    if request_id is None:
        return _NO_KEY
    key = hash(request_id)
    return key if key != _NO_KEY else 1


class _Columns:
    """Rows written in chunks into columns allocated once (``capacity`` rows at most: the file's line count), so
    that the peak is the table itself; past ``cap`` rows, the first ``cap // 2`` stay and the last ``cap // 2`` are
    kept in a ring."""

    DTYPES = (np.int32, np.int64, np.int16, np.float64, np.int16, np.int64)

    def __init__(self, capacity: int, cap: int, chunk: int) -> None:
        self.cap, self.half = cap, cap // 2
        self.chunk = max(1, min(chunk, self.half))  # a chunk never wraps the ring onto itself
        self.size = max(0, min(capacity, cap))
        self.cols = [np.empty(self.size, dtype=dt) for dt in self.DTYPES]
        self.total = 0
        self._new()

    def _new(self) -> None:
        self.cur = (array("i"), array("q"), array("h"), array("d"), array("h"), array("q"))
        self.line, self.ts, self.label, self.conf, self.version, self.key = (a.append for a in self.cur)

    def flush(self) -> None:
        chunk, n = self.cur, len(self.cur[0])
        if not n:
            return
        self._new()
        rows = np.arange(self.total, self.total + n)
        if self.total + n > self.size and self.size < self.cap:  # more rows than lines counted: the file grew
            self._grow(self.total + n)
        if self.total + n <= self.size:
            where: np.ndarray | slice = slice(self.total, self.total + n)
        else:  # the last ``half`` rows in a ring after the first ``half``
            where = np.where(rows < self.half, rows, self.half + (rows - self.half) % max(self.half, 1))
        for col, data, dt in zip(self.cols, chunk, self.DTYPES, strict=True):
            col[where] = np.frombuffer(data, dtype=dt)
        self.total += n

    def _grow(self, rows: int) -> None:
        self.size = min(self.cap, max(rows, self.size * 2))
        self.cols = [np.concatenate([c[: self.total], np.empty(self.size - self.total, dtype=c.dtype)])
                     for c in self.cols]  # fmt: skip

    def arrays(self) -> tuple[list[np.ndarray], tuple[int, int, int] | None]:
        """The kept rows as numpy columns (line, time, label, confidence, version, key), and, when rows were left
        out, ``(records left out, first line, last line)``."""
        self.flush()
        if self.total <= self.cap:
            keep = self.total
            return [c[:keep] if keep * 4 >= len(c) * 3 else c[:keep].copy() for c in self.cols], None
        start = (self.total - 2 * self.half) % max(self.half, 1)  # ring slot of the oldest kept row
        for c in self.cols:  # into file order: the ring rotated so that its oldest row comes first
            c[self.half :] = np.concatenate([c[self.half + start :], c[self.half : self.half + start]])
        line = self.cols[0]
        return self.cols, (self.total - 2 * self.half, int(line[self.half - 1]) + 1, int(line[self.half]) - 1)
