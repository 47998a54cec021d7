"""The stream's large columns as the drift analysis handles them: times as int64 nanoseconds since 1970 (UTC),
class counts of small integer codes in steps.

Ten million tz-aware pandas timestamps cost a copy at every conversion (``tz_localize``, ``to_datetime``); the
analysis keeps plain int64 arrays and makes pandas timestamps only for the few instants it reports. ``np.bincount``
casts its input to the platform integer first (80 MB per ten million int16 codes): :func:`bincount` counts in steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Instants", "as_ns", "at", "bincount", "utc_index"]


def as_ns(timestamps: Any) -> np.ndarray:
    """Nanoseconds since 1970 (UTC) of ``timestamps``: an int64 or datetime64[ns] array (returned as a view, not
    copied), or anything :func:`pandas.to_datetime` reads (tz-aware values converted to UTC, naive read as UTC)."""
    if isinstance(timestamps, np.ndarray) and timestamps.dtype in (np.int64, np.dtype("datetime64[ns]")):
        return timestamps.view(np.int64)
    index = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return index.as_unit("ns").asi8


def at(ns: np.ndarray, i: int) -> pd.Timestamp:
    """The ``i``-th time as a UTC :class:`pandas.Timestamp`."""
    return pd.Timestamp(int(ns[i]), tz="UTC")


def utc_index(ns: np.ndarray) -> pd.DatetimeIndex:
    """A UTC :class:`pandas.DatetimeIndex` of int64 nanoseconds (a copy: for small selections)."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC")


class Instants:
    """``ts[i]`` (``ts[-1]`` too) of int64 UTC nanoseconds as :class:`pandas.Timestamp`: index-like access to a
    large array for the few instants a result reports."""

    __slots__ = ("ns",)

    def __init__(self, ns: np.ndarray) -> None:
        self.ns = ns

    def __getitem__(self, i: int) -> pd.Timestamp:
        return at(self.ns, int(i))


def bincount(codes: np.ndarray, minlength: int = 0, step: int = 1 << 20) -> np.ndarray:
    """``np.bincount(codes, minlength=minlength)`` (int64), counted in steps of ``step`` codes (no full-size cast)."""
    out = np.zeros(max(minlength, int(codes.max()) + 1 if len(codes) else 0), dtype=np.int64)
    for lo in range(0, len(codes), step):
        part = np.bincount(codes[lo : lo + step])
        out[: len(part)] += part
    return out
