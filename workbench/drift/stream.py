"""Prediction records made ready for the drift analysis: merged, timed, sorted, de-duplicated, coded by class.

The stream is held as compact numpy columns (int64 nanoseconds, small class codes, float64 confidences), taken from
the loader's :class:`~workbench.evidence.prediction_table.PredictionTable` without copying when a single file is
already in time order: ten million predictions stay well under a gigabyte. At most :data:`MAX_CLASSES` classes are
analysed: past it the rarest are counted together as :data:`OTHER_CLASS` (the baseline's too), with a limit noted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.drift.columns import bincount, utc_index
from workbench.drift.metrics import Baseline
from workbench.evidence.prediction_table import NAT, PredictionTable
from workbench.records import EvidenceWarning

if TYPE_CHECKING:
    from workbench.evidence.base import Loaded

__all__ = ["MAX_CLASSES", "OTHER_CLASS", "Stream", "iso", "prepare_stream"]

_MAX_DUP_WARNINGS = 20
#: Classes analysed at most (the change-point scan's permutation tables grow with their number).
MAX_CLASSES = 50
OTHER_CLASS = "(other classes)"


def iso(ts: pd.Timestamp | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` (milliseconds), or None."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).tz_convert("UTC").isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Stream:
    """Prediction records ready for analysis: timed, sorted by time, de-duplicated, coded by class.

    Attributes:
        times: int64 nanoseconds since 1970 (UTC), ascending.
        codes: index of each record's class in ``classes`` (a small integer type).
        confidence: float64 confidence of each record, NaN where absent.
        line: line of each record in its file; ``source`` the index of the file in ``sources``.
        classes: baseline classes in baseline order, then classes new to the baseline (sorted).
        sources: the evidence files read.
        baseline: the baseline as coded against ``classes`` (its rarest classes merged when the stream had more
            than :data:`MAX_CLASSES`), or None.
        limits: what the stream could not keep apart (classes merged), one sentence each.
        unexamined: records the loader's caps left out (``"path: reason"``).
    """

    times: np.ndarray
    codes: np.ndarray
    confidence: np.ndarray
    line: np.ndarray
    source: np.ndarray
    classes: tuple[str, ...]
    sources: tuple[str, ...]
    baseline: Baseline | None = None
    limits: list[str] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        """The times as a UTC index (a copy: 80 MB per ten million records)."""
        return utc_index(self.times)

    @property
    def labels(self) -> pd.Categorical:
        """The class of each record (categorical over ``classes``: no text per record)."""
        return pd.Categorical.from_codes(self.codes.astype(np.int32), categories=pd.Index(self.classes, dtype=object))

    @property
    def frame(self) -> pd.DataFrame:
        """Columns ``timestamp`` (datetime64[ns, UTC]), ``label`` (categorical), ``confidence``, ``source``
        (categorical), ``line`` (int): built on each access, for notebooks and tests."""
        names = pd.Index(self.sources, dtype=object)
        sources = pd.Categorical.from_codes(self.source.astype(np.int32), categories=names)
        return pd.DataFrame({"timestamp": pd.Series(self.timestamps, dtype="datetime64[ns, UTC]"),
                             "label": self.labels, "confidence": self.confidence, "source": sources,
                             "line": self.line.astype(np.int64)})  # fmt: skip


def _table(item: Loaded) -> PredictionTable:
    table = item.meta.get("table") if isinstance(item.meta, dict) else None
    return table if isinstance(table, PredictionTable) else PredictionTable.from_frame(item.frame)


def prepare_stream(loaded: Sequence[Loaded], baseline: Baseline | None = None) -> tuple[Stream, list[EvidenceWarning]]:
    """Merge prediction files into one stream, with a warning for every record left out or reordered.

    Records without a usable timestamp or label were already warned per line by the loader; here they are left
    out with one summary warning per file. Records out of time order are sorted (stable); exact duplicates (same
    time, label, confidence, model version and request id) are dropped, each warned with its line (the first
    twenty, then a count).
    """
    warnings: list[EvidenceWarning] = []
    labels: dict[str, int] = {}  # stripped label text -> global code
    versions: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    unexamined: list[str] = []
    limits: list[str] = []
    for index, item in enumerate(loaded):
        table = _table(item)
        unexamined += table.unexamined
        limits += table.limits
        for note in (*table.unexamined, *table.limits):  # also said where the stream's warnings are shown
            warnings.append(EvidenceWarning(item.path, None, note.removeprefix(f"{item.path}: ")))
        text = [str(u).strip() for u in table.labels]  # each distinct label once, not each record
        label_map = np.array([labels.setdefault(t, len(labels)) if t else -1 for t in text] or [-1], dtype=np.int16)
        version_map = np.array([versions.setdefault(v, len(versions)) for v in table.versions] + [-1],
                               dtype=np.int16)  # fmt: skip
        label = _mapped(label_map, table.label)
        version = _mapped(version_map[:-1], table.version)
        bad = (table.time_ns == NAT) | (label < 0)
        keep = slice(None) if not bad.any() else ~bad
        if bad.any():
            lines = ", ".join(str(v) for v in table.line[bad][:5])
            warnings.append(EvidenceWarning(item.path, None, f"{int(bad.sum())} prediction(s) without a usable time "
                                            f"or label left out of the drift analysis (lines {lines}...)"))  # fmt: skip
        times = table.time_ns[keep]
        back = np.flatnonzero(times[1:] < times[:-1])
        if len(back):
            line = int(table.line[keep][back[0] + 1])
            warnings.append(EvidenceWarning(item.path, line, f"{len(back)} prediction(s) out of time order (first "
                                            f"here); sorted by time"))  # fmt: skip
        source = np.broadcast_to(np.int16(index), (len(times),))  # one value: no memory per record
        parts.append((times, label[keep], table.confidence[keep], version[keep], table.request_key[keep],
                      table.line[keep], source))  # fmt: skip
    if len(loaded) > 1:
        warnings.append(EvidenceWarning(loaded[0].path, None, f"{len(loaded)} prediction files merged into one stream"))
    cols = _merge(parts)
    parts.clear()  # filtered copies are not held past the merge
    paths = tuple(item.path for item in loaded)
    cols = _dedupe(cols, paths, warnings)
    times, label, conf, _version, _key, line, source = cols
    names = list(labels)
    stream = _coded(times, label, names, conf, line, source, paths, baseline)
    stream.unexamined, stream.limits = unexamined, limits + stream.limits
    return stream, warnings


def _merge(parts: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """One set of columns sorted by time (stable); no copy for a single file already in order."""
    if not parts:
        dtypes = (np.int64, np.int16, np.float64, np.int16, np.int64, np.int32, np.int16)
        return [np.zeros(0, dtype=dt) for dt in dtypes]
    cols = list(parts[0]) if len(parts) == 1 else [np.concatenate(c) for c in zip(*parts, strict=True)]
    if len(cols[0]) > 1 and (cols[0][1:] < cols[0][:-1]).any():
        order = np.argsort(cols[0], kind="stable")
        cols = [c[order] for c in cols]
    return cols


def _mapped(lut: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``lut[codes]`` (codes of -1 stay -1), or ``codes`` itself when ``lut`` changes nothing (no copy)."""
    if np.array_equal(lut, np.arange(len(lut))):
        return codes
    return np.append(lut, np.int16(-1))[codes] if len(codes) else codes


def _dedupe(cols: list[np.ndarray], paths: tuple[str, ...], warnings: list[EvidenceWarning]) -> list[np.ndarray]:
    """Drop exact duplicates (time, label, confidence, version, request key), keeping the first of each."""
    times = cols[0]
    if len(times) < 2:
        return cols
    same = np.flatnonzero(times[1:] == times[:-1])  # duplicates share their time: only those rows are compared
    if not len(same):
        return cols
    rows = np.unique(np.concatenate([same, same + 1]))
    conf_bits = (cols[2][rows] + 0.0).view(np.int64)  # -0.0 is 0.0; every NaN of the loader has one bit pattern
    keys = [times[rows], cols[1][rows], conf_bits, cols[3][rows], cols[4][rows]]
    order = np.lexsort([rows, *keys[::-1]])  # by key, then by position: the first of a group is the original
    sorted_keys = [k[order] for k in keys]
    repeat = np.ones(len(rows), dtype=bool)
    for k in sorted_keys:
        repeat[1:] &= k[1:] == k[:-1]
    repeat[0] = False
    if not repeat.any():
        return cols
    dup_rows = rows[order][repeat]
    firsts = rows[order][np.maximum.accumulate(np.where(~repeat, np.arange(len(rows)), 0))][repeat]
    by_position = np.argsort(dup_rows, kind="stable")
    line, source = cols[5], cols[6]
    for i in by_position[:_MAX_DUP_WARNINGS]:
        row, orig = dup_rows[i], firsts[i]
        warnings.append(EvidenceWarning(paths[source[row]], int(line[row]), f"duplicate of {paths[source[orig]]} "
                                        f"line {int(line[orig])}; dropped"))  # fmt: skip
    if len(dup_rows) > _MAX_DUP_WARNINGS:
        first = dup_rows[by_position[0]]
        warnings.append(
            EvidenceWarning(
                paths[source[first]], None, f"{len(dup_rows) - _MAX_DUP_WARNINGS} more duplicate predictions dropped"
            )
        )
    keep = np.ones(len(times), dtype=bool)
    keep[dup_rows] = False
    for i, c in enumerate(cols):  # one column at a time: a sorted copy is freed as soon as its successor exists
        cols[i] = c[keep]
    return cols


def _coded(times: np.ndarray, label: np.ndarray, names: list[str], conf: np.ndarray, line: np.ndarray,
           source: np.ndarray, paths: tuple[str, ...], baseline: Baseline | None) -> Stream:  # fmt: skip
    """The stream with each record coded by class: baseline classes first, then new ones (sorted); at most
    :data:`MAX_CLASSES` of them."""
    counts = bincount(label, minlength=len(names)) if len(names) else np.zeros(0, dtype=np.int64)
    present = {n: int(c) for n, c in zip(names, counts, strict=True) if c}
    known = baseline.labels if baseline is not None else ()
    classes = tuple(known) + tuple(sorted(set(present) - set(known)))
    limits: list[str] = []
    if len(classes) > MAX_CLASSES:
        baseline, classes, merged = _merge_classes(classes, present, baseline)
        limits.append(f"{len(classes) + merged - 1} classes: the {merged} rarest are analysed together as "
                      f"{OTHER_CLASS!r} (at most {MAX_CLASSES} classes)")  # fmt: skip
    position = {c: i for i, c in enumerate(classes)}
    other = position.get(OTHER_CLASS, -1)
    lut = np.array([position.get(n, other) for n in names] or [0], dtype=np.int16)
    codes = lut[label] if len(label) else np.zeros(0, dtype=np.int16)
    return Stream(times, codes, conf, line, source, classes, paths, baseline, limits)


def _merge_classes(classes: tuple[str, ...], present: dict[str, int],
                   baseline: Baseline | None) -> tuple[Baseline | None, tuple[str, ...], int]:  # fmt: skip
    """Keep the ``MAX_CLASSES - 1`` most frequent classes (ties in class order), the rest as :data:`OTHER_CLASS`."""
    ranked = sorted(range(len(classes)), key=lambda i: (-present.get(classes[i], 0), i))
    kept = {classes[i] for i in ranked[: MAX_CLASSES - 1]}
    merged = len(classes) - len(kept)
    if baseline is None:
        return None, (*(c for c in classes if c in kept), OTHER_CLASS), merged
    labels = [c for c in baseline.labels if c in kept]
    keep = np.array([c in kept for c in baseline.labels])
    shares = np.append(baseline.shares[keep], baseline.shares[~keep].sum())
    counts = None if baseline.counts is None else np.append(baseline.counts[keep], baseline.counts[~keep].sum())
    merged_base = Baseline((*labels, OTHER_CLASS), shares, counts, baseline.source)
    new = tuple(sorted(c for c in kept if c not in baseline.labels))
    return merged_base, (*merged_base.labels, *new), merged
