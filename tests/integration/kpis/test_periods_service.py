"""Periods: the fiscal quarters a data set covers, their states, and which keys a page accepts."""

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData

from okr.db.people import PeriodState
from okr.lib.errors import NotFound
from okr.lib.periods import Quarter
from okr.periods import services as periods
from okr.settings import Settings


async def test_ensure_periods_creates_the_covering_quarters_with_their_states(
    db: AsyncSession, settings: Settings
) -> None:
    made = await periods.ensure_periods(
        db,
        settings=settings,
        first=dt.date(2026, 5, 10),
        last=dt.date(2026, 11, 1),
        today=dt.date(2026, 8, 10),
    )
    assert [(p.key, p.state) for p in made] == [
        ("2026-Q2", PeriodState.CLOSED),
        ("2026-Q3", PeriodState.ACTIVE),
        ("2026-Q4", PeriodState.PLANNING),
    ]
    q3 = await periods.get_period(db, key="2026-Q3")
    assert q3 is not None and (q3.start_date, q3.end_date) == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert await periods.get_period(db, key="2031-Q1") is None


async def test_ensure_periods_is_idempotent_and_keeps_existing_states(
    db: AsyncSession, settings: Settings
) -> None:
    first = dt.date(2026, 7, 1)
    await periods.ensure_periods(db, settings=settings, first=first, last=first, today=dt.date(2026, 8, 10))
    # Months later the same call creates nothing and does not close Q3 behind an admin's back.
    again = await periods.ensure_periods(
        db, settings=settings, first=first, last=dt.date(2027, 1, 2), today=dt.date(2027, 1, 2)
    )
    assert [(p.key, p.state) for p in again] == [
        ("2026-Q3", PeriodState.ACTIVE),
        ("2026-Q4", PeriodState.CLOSED),
        ("2027-Q1", PeriodState.ACTIVE),
    ]
    assert [p.key for p in await periods.list_periods(db)] == ["2026-Q3", "2026-Q4", "2027-Q1"]


async def test_fiscal_years_follow_the_start_month(db: AsyncSession, settings: Settings) -> None:
    february = settings.model_copy(update={"fiscal_year_start_month": 2})
    assert periods.current_period_key(february, dt.date(2026, 1, 15)) == "2026-Q4"
    assert periods.current_period_key(settings, dt.date(2026, 1, 15)) == "2026-Q1"
    made = await periods.ensure_periods(
        db, settings=february, first=dt.date(2026, 2, 1), last=dt.date(2026, 2, 1), today=dt.date(2026, 1, 1)
    )
    assert [(p.key, p.start_date, p.end_date) for p in made] == [
        ("2027-Q1", dt.date(2026, 2, 1), dt.date(2026, 4, 30))
    ]


async def test_resolve_quarter_accepts_today_stored_and_data_quarters(
    db: AsyncSession, settings: Settings
) -> None:
    today = dt.date(2026, 11, 22)
    data = PipelineData(db)
    await data.opportunity("O1", amount=100, created_at="2026-02-10T12:00Z")
    await periods.ensure_periods(
        db, settings=settings, first=dt.date(2027, 1, 5), last=dt.date(2027, 1, 5), today=today
    )
    quarter, choices = await periods.resolve_quarter(db, settings=settings, key=None, today=today)
    assert quarter == Quarter(2026, 4)
    assert [q.key for q in choices] == ["2027-Q1", "2026-Q4", "2026-Q3", "2026-Q2", "2026-Q1"]
    assert (await periods.resolve_quarter(db, settings=settings, key="2026-Q1", today=today))[0] == Quarter(
        2026, 1
    )
    with pytest.raises(NotFound, match="no period 2025-Q4"):
        await periods.resolve_quarter(db, settings=settings, key="2025-Q4", today=today)
    with pytest.raises(NotFound, match="not a period"):
        await periods.resolve_quarter(db, settings=settings, key="Q4-2026", today=today)
