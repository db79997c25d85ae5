"""The demo organisation comes with this quarter's goals, planned from the last two quarters' actuals."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.audit import AuditEvent
from okr.db.goals import CheckIn, KeyResult, Objective
from okr.demo.services import load_demo, today_in_org
from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.kpis.core import KpiFilters, get_kpi
from okr.lib.periods import quarter_of
from okr.settings import Settings


async def test_the_demo_plants_the_quarters_goals(db: AsyncSession, settings: Settings) -> None:
    assert await load_demo(settings=settings, seed=7, scale="small", echo=lambda *_: None)
    kpis.clear_cache()
    goals.clear_cache()
    today = today_in_org(settings)
    quarter = quarter_of(today, settings.fiscal_year_start_month)
    overview = await goals.goals_overview(db, settings=settings, quarter=quarter)
    titles = [o.title for o in overview.objectives]
    assert titles == ["Grow new revenue together", "Hand over leads fast and well", "Close faster"]
    joint = overview.objectives[0]
    assert joint.joint and {t.name for t in joint.teams} == {"sales", "marketing", "sdr"}
    assert overview.score is not None and all(kr.value is not None for kr in overview.key_results)

    # A metric target is the trailing two quarters' actual, grown, rounded to two significant digits.
    revenue = next(kr for kr in joint.key_results if kr.metric == "revenue_won")
    trailing = await kpis.trailing_actual(
        db, settings=settings, quarter=quarter, name="revenue_won", filters=KpiFilters()
    )
    actual = goals.kr_value_of(trailing, get_kpi("revenue_won"), settings.org_currency)
    assert actual is not None and revenue.start_value == 0 and revenue.counts_toward_bonus
    grown = actual * Decimal("1.15")
    assert abs(revenue.target - grown) <= grown / 20  # two significant digits round by 5 % at most
    assert len(revenue.target.normalize().as_tuple().digits) <= 2

    # Manual KRs carry check-ins dated through the quarter so far, never in the future; all audited.
    stamps = (await db.scalars(select(CheckIn.created_at))).all()
    assert stamps and all(s.date() <= today + dt.timedelta(days=1) for s in stamps)
    created = await db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "key_result.create")
    )
    assert created == await db.scalar(select(func.count()).select_from(KeyResult))
    assert await db.scalar(select(func.count()).select_from(Objective)) == 3
