from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from workbench.timeparse import parse_timestamp, resolve_timezone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-19T09:05:12Z", datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)),
        ("2026-11-19T11:05:12+02:00", datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)),
        ("2026-11-19 04:05:12-0500", datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)),
        ("2026-11-14T03:05:41.1234567Z", datetime(2026, 11, 14, 3, 5, 41, 123456, tzinfo=UTC)),
        ("2026-11-19T09:05", datetime(2026, 11, 19, 9, 5, tzinfo=UTC)),
        (1795077600, datetime(2026, 11, 19, 8, 40, tzinfo=UTC)),
        (1795077600000, datetime(2026, 11, 19, 8, 40, tzinfo=UTC)),
    ],
)
def test_formats(text, expected):
    assert parse_timestamp(text) == expected


def test_naive_rule_uses_given_zone():
    berlin = resolve_timezone("Europe/Berlin")
    assert berlin == ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2026-11-19T10:05:12", naive_tz=berlin) == datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad", ["yesterday", "2026-13-01T00:00:00Z", "", None, 10**30, 10**400, -(10**400), "9999-12-31T23:59:59-05:00"]
)
def test_unusable_values_give_none(bad):
    assert parse_timestamp(bad) is None


def test_unknown_zone_is_a_clear_error():
    with pytest.raises(ValueError, match="IANA"):
        resolve_timezone("Mars/Olympus")
