"""Timestamps at the start of CI and system log lines, returned as timezone-aware UTC datetimes.

Recognised prefixes (after ANSI escapes were removed):

* ISO 8601 with ``T`` or a space, optional fraction (``.`` or ``,``, up to 9 digits) and optional ``Z``, ``UTC`` or
  offset (``+02``, ``+0200``, ``+02:00``): GitHub Actions (``2026-11-14T03:05:41.1234567Z …``), GitLab job logs
  (``2026-11-03T10:15:02.123456Z 00O …``), container runtime logs, Python logging (``2026-11-14 03:05:41,123 …``).
* The same in square brackets: Jenkins Timestamper (``[2026-11-21T14:02:11.123Z] …``).
* RFC 5424 syslog (``<34>1 2026-11-14T03:05:41.003Z host app …``).
* RFC 3164 syslog (``Nov 14 03:05:41 host app[12]: …``), which has no year: the year is taken from a reference
  time (the case's detection time or the file's modification time) so that the result is never more than a day
  after it, which also handles a December log read in January.

A time without an offset is read in ``naive_tz`` (the case's naive-time rule, see :mod:`workbench.timeparse`).
Fractions beyond microseconds are truncated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = ["line_timestamp"]

_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}
_PREFIX = re.compile(
    r"^\ufeff?\s{0,4}(?:\[|<\d{1,3}>1 )?"
    r"(?:(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?"
    r"(?:\s?(?P<z>Z|z|UTC)|\s?(?P<sign>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
    r"|(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>[ \d]\d) (?P<hms>\d{2}:\d{2}:\d{2})"
    r")(?![\d:]|[.,]\d)"
)
_EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_OFFSETS: dict[tuple[str, str, str], timezone] = {}


def line_timestamp(line: str, *, naive_tz: tzinfo = UTC, reference: datetime | None = None) -> datetime | None:
    """The time a log line starts with, in UTC.

    Args:
        line: one log line, ANSI escapes already removed.
        naive_tz: zone of times written without an offset.
        reference: when the log was captured (UTC); gives the year of RFC 3164 syslog times. Without it, syslog
            times are not parsed.

    Returns:
        A timezone-aware UTC datetime, or None when the line does not start with a recognised timestamp (or the
        date is impossible, or outside 1971..2200).
    """
    m = _PREFIX.match(line)
    if m is None:
        return None
    g = m.groupdict()
    if g["y"] is None:
        ts = _syslog_time(g["mon"], g["day"], g["hms"], naive_tz, reference)
    else:
        micro = int((g["f"] or "0")[:6].ljust(6, "0"))
        try:
            if g["z"]:
                zone: tzinfo = UTC
            elif g["sign"]:
                key = (g["sign"], g["oh"], g["om"] or "00")
                zone = _OFFSETS.get(key) or _OFFSETS.setdefault(key, _offset(*key))
            else:
                zone = naive_tz
            ts = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), int(g["mi"]), int(g["s"]), micro,
                          tzinfo=zone).astimezone(UTC)  # fmt: skip
        except (ValueError, OverflowError):  # 2026-13-40, offset +25:00, or an offset pushing past year 9999
            return None
    if ts is None or not (_EARLIEST <= ts < _LATEST):
        return None
    return ts


def _offset(sign: str, hours: str, minutes: str) -> timezone:
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _syslog_time(mon: str, day: str, hms: str, naive_tz: tzinfo, reference: datetime | None) -> datetime | None:
    if reference is None:
        return None
    hour, minute, second = (int(x) for x in hms.split(":"))
    ref_local = reference.astimezone(naive_tz)
    for year in (ref_local.year, ref_local.year - 1):
        try:
            local = datetime(year, _MONTHS[mon], int(day), hour, minute, second, tzinfo=naive_tz)
        except ValueError:  # 29 Feb in a common year, day 31 of a short month
            continue
        if local <= ref_local + timedelta(days=1):
            return local.astimezone(UTC)
    return None
