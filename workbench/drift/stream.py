"""Prediction records made ready for the drift analysis: merged, timed, sorted, de-duplicated, coded by class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.drift.metrics import Baseline
from workbench.records import EvidenceWarning

if TYPE_CHECKING:
    from workbench.evidence.base import Loaded

__all__ = ["Stream", "iso", "prepare_stream"]

_MAX_DUP_WARNINGS = 20


def iso(ts: pd.Timestamp | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` (milliseconds), or None."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).tz_convert("UTC").isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Stream:
    """Prediction records ready for analysis: timed, trimmed, sorted by time and de-duplicated.

    Attributes:
        frame: columns ``timestamp`` (datetime64[UTC]), ``label`` str, ``confidence`` float, ``model_version``,
            ``request_id``, ``source`` (evidence file) and ``line`` (int).
        classes: baseline classes in baseline order, then classes new to the baseline (sorted).
        codes: index of each record's label in ``classes``.
        sources: the evidence files read.
    """

    frame: pd.DataFrame
    classes: tuple[str, ...]
    codes: np.ndarray
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frame)


def prepare_stream(loaded: Sequence[Loaded], baseline: Baseline | None = None) -> tuple[Stream, list[EvidenceWarning]]:
    """Merge prediction files into one stream, with a warning for every record left out or reordered.

    Records without a usable timestamp or label were already warned per line by the loader; here they are left
    out with one summary warning per file. Records out of time order are sorted (stable); exact duplicates (same
    time, label, confidence, model version and request id) are dropped, each warned with its line.
    """
    warnings: list[EvidenceWarning] = []
    frames = []
    columns = ["timestamp", "label", "confidence", "model_version", "request_id", "line"]
    for item in loaded:
        f = item.frame[columns].copy()
        f["source"] = item.path
        codes, uniques = pd.factorize(f["label"])  # strip each distinct label once, not each record
        stripped = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
        f["label"] = stripped[np.where(codes < 0, len(uniques), codes)]
        bad = f["timestamp"].isna() | (f["label"] == "")
        if bad.any():
            lines = ", ".join(str(v) for v in f.loc[bad, "line"].head(5))
            warnings.append(EvidenceWarning(item.path, None, f"{int(bad.sum())} prediction(s) without a usable time "
                                            f"or label left out of the drift analysis (lines {lines}...)"))  # fmt: skip
        f = f[~bad]
        back = np.flatnonzero(np.diff(pd.DatetimeIndex(f["timestamp"]).asi8) < 0)
        if len(back):
            line = int(f["line"].iloc[back[0] + 1])
            warnings.append(EvidenceWarning(item.path, line, f"{len(back)} prediction(s) out of time order (first "
                                            f"here); sorted by time"))  # fmt: skip
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*columns, "source"])
    if len(loaded) > 1:
        warnings.append(EvidenceWarning(loaded[0].path, None, f"{len(loaded)} prediction files merged into one stream"))
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    key = ["timestamp", "label", "confidence", "model_version", "request_id"]
    same_time = frame["timestamp"].duplicated(keep=False)  # cheap pre-filter: duplicates share their time
    dup = pd.Series(False, index=frame.index)
    if same_time.any():
        dup[same_time] = frame.loc[same_time, key].duplicated(keep="first")
    if dup.any():
        group = frame[key].groupby(key, dropna=False, sort=False).ngroup()
        first = pd.Series(group.index, index=group.to_numpy()).groupby(level=0).first()
        for index in np.flatnonzero(dup.to_numpy())[:_MAX_DUP_WARNINGS]:
            row, orig = frame.iloc[index], frame.loc[first[group.iloc[index]]]
            warnings.append(EvidenceWarning(str(row["source"]), int(row["line"]), f"duplicate of {orig['source']} "
                                            f"line {int(orig['line'])}; dropped"))  # fmt: skip
        if dup.sum() > _MAX_DUP_WARNINGS:
            warnings.append(
                EvidenceWarning(
                    str(frame.loc[dup, "source"].iloc[0]),
                    None,
                    f"{int(dup.sum()) - _MAX_DUP_WARNINGS} more duplicate predictions dropped",
                )
            )
        frame = frame[~dup].reset_index(drop=True)
    known = baseline.labels if baseline is not None else ()
    new = tuple(sorted(set(pd.unique(frame["label"])) - set(known)))
    classes = tuple(known) + new
    codes = pd.Categorical(frame["label"], categories=list(classes)).codes.astype(np.int64)
    return Stream(frame, classes, codes, tuple(item.path for item in loaded)), warnings
