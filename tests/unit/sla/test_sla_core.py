"""Business-hours arithmetic of the lead SLA (okr.sla.core): weekends, time zones, daylight saving."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr.sla import core

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
WEEK = core.BusinessCalendar(tz=NY)  # Monday to Friday, 09:00 to 17:00
H = dt.timedelta(hours=1)


def local(tz: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    # Friday 2026-11-20 16:00: 1 h on Friday, 8 on Monday, 8 on Tuesday, 7 on Wednesday.
    due = core.deadline(local(NY, 2026, 11, 20, 16), 24, WEEK)
    assert due == local(NY, 2026, 11, 25, 16)


def test_an_mql_outside_business_hours_starts_at_the_next_opening() -> None:
    assert core.deadline(local(NY, 2026, 11, 21, 10), 8, WEEK) == local(NY, 2026, 11, 23, 17)  # Saturday
    assert core.deadline(local(NY, 2026, 11, 23, 7), 1, WEEK) == local(NY, 2026, 11, 23, 10)  # before 9
    assert core.deadline(local(NY, 2026, 11, 23, 17), 1, WEEK) == local(NY, 2026, 11, 24, 10)  # at close


def test_the_same_instant_has_different_deadlines_in_different_time_zones() -> None:
    mql = dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC)  # 17:00 in New York, 07:00 Tuesday in Tokyo
    assert core.deadline(mql, 4, WEEK) == local(NY, 2026, 11, 24, 13)
    assert core.deadline(mql, 4, core.BusinessCalendar(tz=TOKYO)) == local(TOKYO, 2026, 11, 24, 13)


def test_a_working_day_keeps_its_wall_clock_hours_across_daylight_saving() -> None:
    # New York springs forward on Sunday 2026-03-08 and falls back on Sunday 2026-11-01: the Friday
    # before and the Monday after are both 09:00-17:00 local, so 8 business hours carry over exactly.
    assert core.deadline(local(NY, 2026, 3, 6, 17), 8, WEEK) == local(NY, 2026, 3, 9, 17)
    assert core.deadline(local(NY, 2026, 10, 30, 17), 8, WEEK) == local(NY, 2026, 11, 2, 17)
    # Across the change the real time elapsed differs by the hour the clock moved.
    spring = core.deadline(local(NY, 2026, 3, 6, 16), 2, WEEK) - local(NY, 2026, 3, 6, 16)
    fall = core.deadline(local(NY, 2026, 10, 30, 16), 2, WEEK) - local(NY, 2026, 10, 30, 16)
    assert fall - spring == dt.timedelta(hours=2)


def test_round_the_clock_hours_are_real_hours_on_a_change_day() -> None:
    always = core.BusinessCalendar.always(BERLIN)
    # Berlin falls back on 2026-10-25: that day has 25 hours, so 24 h after Saturday noon is 11:00 Sunday.
    assert core.deadline(local(BERLIN, 2026, 10, 24, 12), 24, always) == local(BERLIN, 2026, 10, 25, 11)
    # And springs forward on 2026-03-29 (23 hours): 24 h after Saturday noon is 13:00 Sunday.
    assert core.deadline(local(BERLIN, 2026, 3, 28, 12), 24, always) == local(BERLIN, 2026, 3, 29, 13)
    assert (
        core.business_time_between(local(BERLIN, 2026, 10, 25), local(BERLIN, 2026, 10, 26), always) == H * 25
    )


def test_holidays_are_not_working_days() -> None:
    thanksgiving = core.BusinessCalendar(tz=NY, holidays=frozenset({dt.date(2026, 11, 26)}))
    assert core.deadline(local(NY, 2026, 11, 25, 16), 2, thanksgiving) == local(NY, 2026, 11, 27, 10)


def test_status_and_time_left() -> None:
    mql = local(NY, 2026, 11, 20, 16)
    due = core.deadline(mql, 24, WEEK)
    assert core.status(mql, due, due=due, now=due) == "met"
    assert core.status(mql, due + dt.timedelta(seconds=1), due=due, now=due) == "breached"
    assert core.status(mql, None, due=due, now=local(NY, 2026, 11, 23, 12)) == "pending"
    assert core.status(mql, None, due=due, now=due + dt.timedelta(minutes=1)) == "breached"
    # Monday noon: the rest of Monday (5 h), Tuesday (8 h) and Wednesday to 16:00 (7 h) are left.
    assert core.time_left(due, local(NY, 2026, 11, 23, 12), WEEK) == H * 20
    # Thursday 10:00: one hour of Wednesday and one of Thursday overdue.
    assert core.time_left(due, local(NY, 2026, 11, 26, 10), WEEK) == -H * 2


def test_a_calendar_without_working_hours_is_refused() -> None:
    with pytest.raises(core.CalendarError):
        core.BusinessCalendar(tz=NY, weekdays=())
    with pytest.raises(core.CalendarError):
        core.BusinessCalendar(tz=NY, start_minute=600, end_minute=600)
    with pytest.raises(ValueError, match="timezone-aware"):
        core.deadline(dt.datetime(2026, 1, 1), 1, WEEK)


instants = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31), timezones=st.just(dt.UTC)
)
calendars = st.builds(
    core.BusinessCalendar,
    tz=st.sampled_from([NY, BERLIN, TOKYO, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]),
    weekdays=st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True).map(lambda d: tuple(sorted(d))),
    start_minute=st.integers(0, 12 * 60),
    end_minute=st.integers(12 * 60 + 1, 1440),
)


@settings(max_examples=300, deadline=None)
@given(start=instants, duration=st.timedeltas(dt.timedelta(0), dt.timedelta(hours=400)), calendar=calendars)
def test_adding_business_time_then_counting_it_gives_it_back(
    start: dt.datetime, duration: dt.timedelta, calendar: core.BusinessCalendar
) -> None:
    end = core.add_business_time(start, duration, calendar)
    assert end >= start
    assert core.business_time_between(start, end, calendar) == duration
    assert core.business_time_between(end, start, calendar) == -duration


@settings(max_examples=200, deadline=None)
@given(a=instants, b=instants, c=instants, calendar=calendars)
def test_business_time_adds_up_over_consecutive_spans(
    a: dt.datetime, b: dt.datetime, c: dt.datetime, calendar: core.BusinessCalendar
) -> None:
    a, b, c = sorted((a, b, c))
    between = core.business_time_between
    assert between(a, b, calendar) + between(b, c, calendar) == between(a, c, calendar)
    assert dt.timedelta(0) <= between(a, c, calendar) <= c - a
