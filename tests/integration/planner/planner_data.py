"""A small hand-built funnel for the planner tests, with every trailing figure worked out by hand.

The clock is pinned to 2026-08-15 16:00 UTC (goals_data.NOW): 2026-Q3 is under way, so the trailing
quarters are 2026-Q1 and 2026-Q2. Everything trailing happens in 2026-Q2 (New York time):

- 20 leads created; 10 became MQLs; 8 accepted, 2 rejected; 4 became SQLs;
- 4 opportunities created (10,000 + 30,000 won; 5,000 + 5,000 lost).

So lead->MQL 10/20 = 0.5, acceptance 8/10 = 0.8, accepted->SQL 4/8 = 0.5, SQL->opportunity 4/4 = 1,
win rate 2/4 = 0.5, average deal 20,000.00; per quarter: 10 leads, 5 MQLs, 4 accepted, 2 SQLs,
2 opportunities, 1 deal, revenue 20,000.00, pipeline 25,000.00.

In 2026-Q3 so far: 5 leads, 3 MQLs, 2 accepted, 1 SQL, 1 opportunity won for 25,000.00 (plus one open
opportunity of 40,000.00).
"""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.goals.goals_data import Cast, cast
from tests.integration.kpis.pipeline_data import PipelineData

from okr.db.people import Person

D = Decimal
TRAILING_RATES = {
    "lead_to_mql": D("0.5"),
    "acceptance_rate": D("0.8"),
    "accepted_to_sql": D("0.5"),
    "sql_to_opportunity": D(1),
    "win_rate": D("0.5"),
}


async def funnel(db: AsyncSession) -> Cast:
    """The cast of goals_data and the funnel above, committed."""
    c = await cast(db)
    rep = await db.get(Person, c.rep.id)
    assert rep is not None
    data = PipelineData(db)
    for i in range(20):
        mql = i < 10
        await data.lead(
            f"L{i}",
            f"A{i}",
            created_at="2026-04-10T12:00Z",
            mql_at="2026-04-12T12:00Z" if mql else None,
            accepted_at="2026-04-13T12:00Z" if i < 8 else None,
            rejected_at="2026-04-13T12:00Z" if 8 <= i < 10 else None,
            sql_at="2026-04-20T12:00Z" if i < 4 else None,
        )
    for n, (amount, status) in enumerate(
        [(1_000_000, "won"), (3_000_000, "won"), (500_000, "lost"), (500_000, "lost")]
    ):
        closed = "2026-06-01T12:00Z"
        await data.opportunity(
            f"O{n}", amount=amount, created_at="2026-05-01T12:00Z", closed_at=closed, status=status, owner=rep
        )
    for i in range(5):
        await data.lead(
            f"Q3L{i}",
            f"B{i}",
            created_at="2026-07-10T12:00Z",
            mql_at="2026-07-11T12:00Z" if i < 3 else None,
            accepted_at="2026-07-12T12:00Z" if i < 2 else None,
            sql_at="2026-07-20T12:00Z" if i < 1 else None,
        )
    await data.opportunity(
        "Q3O1",
        amount=2_500_000,
        created_at="2026-07-05T12:00Z",
        closed_at="2026-08-01T12:00Z",
        status="won",
        owner=rep,
    )
    await data.opportunity("Q3O2", amount=4_000_000, created_at="2026-07-06T12:00Z", status="open", owner=rep)
    await db.commit()
    return c
