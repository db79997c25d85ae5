"""Period queries: create the fiscal quarters a data set covers, list them, find and resolve one by key."""

import datetime as dt
from contextlib import suppress

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.people import Period, PeriodState
from okr.db.pipeline import Lead, Opportunity, OpportunityStatus
from okr.lib.errors import NotFound
from okr.lib.periods import PeriodKeyError, Quarter, parse_key, quarter_of
from okr.settings import Settings


def state_for(quarter: Quarter, *, today: dt.date, start_month: int) -> PeriodState:
    """The state a new period starts in: closed when it ended before today, active when it holds today."""
    start, end = quarter.dates(start_month)
    if end < today:
        return PeriodState.CLOSED
    if start <= today:
        return PeriodState.ACTIVE
    return PeriodState.PLANNING


def quarters_between(first: dt.date, last: dt.date, *, start_month: int) -> list[Quarter]:
    """Every fiscal quarter holding a day of first..last, in order."""
    if last < first:
        return []
    q, end = quarter_of(first, start_month), quarter_of(last, start_month)
    quarters = []
    while q <= end:
        quarters.append(q)
        q = q.shift(1)
    return quarters


async def ensure_periods(
    session: AsyncSession, *, settings: Settings, first: dt.date, last: dt.date, today: dt.date
) -> list[Period]:
    """Create the missing fiscal quarters covering first..last; return all of them, oldest first."""
    start_month = settings.fiscal_year_start_month
    wanted = quarters_between(first, last, start_month=start_month)
    if not wanted:
        return []
    keys = [q.key for q in wanted]
    existing = {p.key: p for p in (await session.scalars(select(Period).where(Period.key.in_(keys)))).all()}
    periods: list[Period] = []
    for q in wanted:
        period = existing.get(q.key)
        if period is None:
            # An existing period keeps its state: closing and reopening are deliberate, audited acts.
            start, end = q.dates(start_month)
            period = Period(
                key=q.key,
                start_date=start,
                end_date=end,
                state=state_for(q, today=today, start_month=start_month),
            )
            session.add(period)
        periods.append(period)
    await session.flush()
    return periods


async def list_periods(session: AsyncSession) -> list[Period]:
    """Every stored period, oldest first."""
    return list((await session.scalars(select(Period).order_by(Period.start_date))).all())


async def get_period(session: AsyncSession, *, key: str) -> Period | None:
    """The stored period with this key, or None."""
    return (await session.scalars(select(Period).where(Period.key == key))).one_or_none()


def current_period_key(settings: Settings, today: dt.date) -> str:
    """The key of the fiscal quarter holding `today` (a date in the org's time zone)."""
    return quarter_of(today, settings.fiscal_year_start_month).key


async def data_quarters(session: AsyncSession, *, settings: Settings) -> list[Quarter]:
    """The quarters from the earliest to the latest lead or opportunity date (empty without data)."""
    won, lost = OpportunityStatus.WON.value, OpportunityStatus.LOST.value
    row = (
        await session.execute(
            select(
                select(func.min(Lead.created_at)).scalar_subquery(),
                select(func.max(Lead.created_at)).scalar_subquery(),
                select(func.min(Opportunity.created_at)).scalar_subquery(),
                select(func.max(Opportunity.created_at)).scalar_subquery(),
                # One per status, so each is a seek on ix_opportunity_status_closed_at.
                select(func.max(Opportunity.closed_at)).where(Opportunity.status == won).scalar_subquery(),
                select(func.max(Opportunity.closed_at)).where(Opportunity.status == lost).scalar_subquery(),
            )
        )
    ).one()
    stamps: list[dt.datetime] = [s for s in row if s is not None]
    if not stamps:
        return []
    tz = settings.tz
    return quarters_between(
        min(stamps).astimezone(tz).date(),
        max(stamps).astimezone(tz).date(),
        start_month=settings.fiscal_year_start_month,
    )


async def selectable_quarters(session: AsyncSession, *, settings: Settings, today: dt.date) -> list[Quarter]:
    """Quarters a page may show, newest first: every one from the earliest to the latest of the stored
    periods, the quarters with data, and today's."""
    start_month = settings.fiscal_year_start_month
    found = {quarter_of(today, start_month)}
    found.update(await data_quarters(session, settings=settings))
    for period in await list_periods(session):
        with suppress(PeriodKeyError):
            found.add(parse_key(period.key))
    first, last = min(found), max(found)
    quarters = []
    while first <= last:
        quarters.append(first)
        first = first.shift(1)
    return quarters[::-1]


async def resolve_quarter(
    session: AsyncSession, *, settings: Settings, key: str | None, today: dt.date
) -> tuple[Quarter, list[Quarter]]:
    """The quarter `key` names (today's when None) and the selectable ones; NotFound when unknown."""
    quarters = await selectable_quarters(session, settings=settings, today=today)
    if key is None or key == "":
        return quarter_of(today, settings.fiscal_year_start_month), quarters
    try:
        quarter = parse_key(key)
    except PeriodKeyError:
        raise NotFound(
            f"“{key}” is not a period. Periods look like 2026-Q3; pick one from the list."
        ) from None
    if quarter not in quarters:
        known = ", ".join(q.key for q in quarters[:4])
        raise NotFound(f"There is no period {quarter.key}: okr has no data or plan for it. Try {known}.")
    return quarter, quarters
