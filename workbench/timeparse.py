"""Timestamp parsing with one explicit rule for naive times.

Rule (reported in every report's appendix): a timestamp without a UTC offset is interpreted in the case's
``naive_timezone`` (``case.yaml``; default ``UTC``) and converted to UTC. Every datetime leaving this module
is timezone-aware UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["NAIVE_RULE", "display_time", "parse_timestamp", "resolve_timezone"]

NAIVE_RULE = "timestamps without a UTC offset are read as {tz} and converted to UTC"

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)


def resolve_timezone(name: str | None) -> tzinfo:
    """``None``/``"UTC"`` → UTC, else an IANA zone name. Raises ValueError for unknown names."""
    if not name or name.upper() in {"UTC", "Z", "GMT"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None


def parse_timestamp(value: object, *, naive_tz: tzinfo = UTC) -> datetime | None:
    """Parse ISO 8601 text (``Z`` or offset, fractional seconds up to ns) or epoch seconds/ms into UTC.

    Returns:
        A timezone-aware UTC datetime, or None when the value is not a timestamp.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)  # an int of hundreds of digits does not fit a float: OverflowError
            if seconds > 1e11:  # milliseconds
                seconds /= 1000.0
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None  # beyond what a datetime can hold: not a usable time
    else:
        text = str(value).strip()
        m = _ISO.match(text)
        if not m:
            return None
        year, month, day, hour, minute, second, frac, off = m.groups()
        micro = int((frac or "0")[:6].ljust(6, "0"))
        try:
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
        except ValueError:
            return None
        if off and off.upper() not in {"Z", "UTC"}:
            sign = 1 if off[0] == "+" else -1
            digits = off[1:].replace(":", "")
            from datetime import timedelta, timezone

            dt = dt.replace(tzinfo=timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))))
        elif off:
            dt = dt.replace(tzinfo=UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=naive_tz)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None  # e.g. year 9999 with a negative offset


def display_time(ts: datetime | None) -> str | None:
    """``2026-11-19T09:40:33Z``: the one time format of every human output (report, drafts, finding titles, CLI
    text), ISO 8601 UTC to the second; None for None. Machine outputs (``findings.json``, ``timeline.jsonl``) keep
    milliseconds when present (:func:`workbench.conclusions.record.iso`)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
