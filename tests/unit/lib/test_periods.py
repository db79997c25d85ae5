"""Fiscal quarters and their bounds in the organisation's time zone."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from okr.lib.periods import PeriodKeyError, Quarter, parse_key, quarter_of, quarter_of_instant

NY = ZoneInfo("America/New_York")


def test_calendar_quarters() -> None:
    assert parse_key("2026-Q4").dates() == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert quarter_of(dt.date(2026, 11, 22)) == Quarter(2026, 4)
    assert Quarter(2026, 1).shift(-1) == Quarter(2025, 4)
    assert Quarter(2026, 4).shift(1).key == "2027-Q1"


def test_fiscal_year_starting_in_february_is_named_by_its_end_year() -> None:
    assert quarter_of(dt.date(2026, 2, 1), 2) == Quarter(2027, 1)
    assert quarter_of(dt.date(2026, 1, 31), 2) == Quarter(2026, 4)
    assert Quarter(2027, 4).dates(2) == (dt.date(2026, 11, 1), dt.date(2027, 1, 31))


def test_bounds_follow_the_org_time_zone_across_dst() -> None:
    start, end = Quarter(2026, 4).utc_bounds(NY)
    assert start == dt.datetime(2026, 10, 1, 4, tzinfo=dt.UTC)  # EDT, UTC-4
    assert end == dt.datetime(2027, 1, 1, 5, tzinfo=dt.UTC)  # EST, UTC-5
    assert quarter_of_instant(dt.datetime(2026, 10, 1, 2, tzinfo=dt.UTC), NY) == Quarter(2026, 3)


@pytest.mark.parametrize("bad", ["2026Q4", "2026-Q5", "26-Q1", ""])
def test_bad_keys(bad: str) -> None:
    with pytest.raises(PeriodKeyError):
        parse_key(bad)
