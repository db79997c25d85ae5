"""The fast business clock the KPI library and the SLA board judge MQLs with: the same deadlines and
business times as okr.sla.core's plain arithmetic, and the pro-rata share of a month's commitment."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from okr.kpis.core import BusinessClock, elapsed_share, micros
from okr.sla import core

NY = ZoneInfo("America/New_York")
START = dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC)  # New York midnight
CALENDARS = (
    core.BusinessCalendar(tz=NY),
    core.BusinessCalendar(tz=NY, weekdays=(0, 1, 2, 3, 4, 5), start_minute=8 * 60, end_minute=20 * 60),
    core.BusinessCalendar(tz=ZoneInfo("Europe/Berlin"), weekdays=(6,), start_minute=0, end_minute=1440),
)
# A year of instants, across both DST changes, to the second.
instants = st.integers(min_value=0, max_value=365 * 86_400).map(lambda s: START + dt.timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CALENDARS), instants, st.integers(min_value=1, max_value=80), instants)
def test_the_clock_gives_the_plain_arithmetic(
    calendar: core.BusinessCalendar, mql_at: dt.datetime, hours: int, other: dt.datetime
) -> None:
    clock = BusinessClock(calendar, START)
    assert clock.due(mql_at, hours) == core.deadline(mql_at, hours, calendar)
    a, b = sorted((mql_at, other))
    assert clock.between(a, b) == micros(core.business_time_between(a, b, calendar))


def test_a_friday_afternoon_mql_is_due_on_monday() -> None:
    clock = BusinessClock(CALENDARS[0], START)
    friday_4pm = dt.datetime(2026, 1, 9, 21, tzinfo=dt.UTC)  # 16:00 in New York
    # 1 h on Friday, 8 h on Monday, 8 h on Tuesday, 7 h on Wednesday: due Wednesday 16:00.
    assert clock.due(friday_4pm, 24) == dt.datetime(2026, 1, 14, 21, tzinfo=dt.UTC)
    saturday = dt.datetime(2026, 1, 10, 15, tzinfo=dt.UTC)
    assert clock.between(friday_4pm, saturday) == 3_600_000_000  # the weekend does not count


def test_the_share_of_a_month_elapsed() -> None:
    start, end = dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert elapsed_share(start, end, start - dt.timedelta(days=1)) == 0
    assert elapsed_share(start, end, dt.datetime(2026, 4, 16, tzinfo=dt.UTC)) == Decimal("0.5")
    assert elapsed_share(start, end, end + dt.timedelta(days=9)) == 1
