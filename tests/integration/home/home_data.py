"""Goals over the KPI library's data set, for the personal and team pages.

Pipeline data: tests/integration/kpis/library_data.py (Rita and Sam in sales, Dana in sdr, Mia in
marketing; Rita owns O1, O3, O5, O7 and the leads L1, L2, L7). People who log in: the goals cast
(tests/integration/goals/goals_data.py), plus Rita, who gets a password. The clock is pinned to
2026-08-15 16:00 UTC (2026-Q3 is 45.5 of its 92 days in: 49.5 % of the way).

2026-Q3 figures the pages must show (docs of library_data): pipeline created 2,400.00, of which Rita's
deals 1,400.00 (O1 1,000 + O5 300 + O7 100) = 58.3 %; revenue won 3,100.00, all Rita's; win rate 75 %
(3 of 4 closed), Rita's 100 %; MQLs 5 (Rita's leads: 2).

| objective | teams | owner | key results |
| --- | --- | --- | --- |
| Pipeline together | sales + marketing (joint) | sales lead | pipeline created -> 5,500 (Rita, the sales lead and the marketer: lagging, pace 88 %); Sam's MQLs -> 10 (person filter) |
| Sales wins | sales | sales lead | revenue won -> 10,000 (Rita: at risk, pace 63 %); win rate -> 80 %; customer calls (manual, Rita, never checked in); case studies (manual, Rita, last check-in Aug 1) |
| Brand | marketing | marketing lead | MQLs -> 20 (Mia) |
| Rita's own | sales | Rita | opportunities created -> 1 (sandbagged: the trailing two quarters had 1 a quarter) |
"""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import PASSWORD
from tests.integration.goals.goals_data import Cast, cast, check_in, key_result, objective
from tests.integration.kpis.library_data import Library, library_data

from okr.auth.schemas import CurrentUser
from okr.kpis.core import KpiFilters
from okr.lib.clock import set_clock
from okr.people.services import load_current_user, set_password
from okr.settings import Settings

NOW = dt.datetime(2026, 8, 15, 16, 0, tzinfo=dt.UTC)
AUG_1 = dt.datetime(2026, 8, 1, 15, 0, tzinfo=dt.UTC)
RITA = "rep@example.com"


@dataclass
class World:
    """The people and the ids the tests refer to."""

    cast: Cast
    lib: Library
    rita: CurrentUser
    ids: dict[str, int]


async def world(db: AsyncSession, settings: Settings) -> World:
    """Build the data of the module docstring and commit."""
    lib = await library_data(db)
    await set_password(db, email=RITA, password=PASSWORD)
    await db.commit()
    c = await cast(db)
    rita = await load_current_user(db, lib.people["rita"].id)
    assert rita is not None
    sales, marketing = c.sales, c.marketing
    ids: dict[str, int] = {}
    ids["joint"] = await objective(db, settings, c.sales_lead, "Pipeline together", (sales, marketing))
    ids["pipeline"] = await key_result(
        db, settings, c.sales_lead, ids["joint"], "Pipeline created", unit="currency", target="5500",
        owners=(rita.id, c.sales_lead.id, c.marketer.id), source="metric", metric="pipeline_created",
    )  # fmt: skip
    ids["sams_mqls"] = await key_result(
        db, settings, c.sales_lead, ids["joint"], "Sam's MQLs", target="10", source="metric", metric="mqls",
        filters=KpiFilters(person_id=lib.people["sam"].id),
    )  # fmt: skip
    ids["sales"] = await objective(db, settings, c.sales_lead, "Sales wins", (sales,))
    ids["revenue"] = await key_result(
        db, settings, c.sales_lead, ids["sales"], "Revenue won", unit="currency", target="10000",
        owners=(rita.id,), source="metric", metric="revenue_won",
    )  # fmt: skip
    ids["win_rate"] = await key_result(
        db, settings, c.sales_lead, ids["sales"], "Win rate", unit="percent", target="80",
        source="metric", metric="win_rate",
    )  # fmt: skip
    ids["calls"] = await key_result(
        db, settings, c.sales_lead, ids["sales"], "Customer calls", target="100", owners=(rita.id,)
    )
    ids["cases"] = await key_result(
        db, settings, c.sales_lead, ids["sales"], "Case studies", target="10", owners=(rita.id,)
    )
    ids["brand"] = await objective(db, settings, c.marketing_lead, "Brand", (marketing,))
    ids["brand_mqls"] = await key_result(
        db, settings, c.marketing_lead, ids["brand"], "Brand MQLs", target="20",
        owners=(lib.people["mia"].id,), source="metric", metric="mqls",
    )  # fmt: skip
    ids["own"] = await objective(db, settings, c.sales_lead, "Rita's own", (sales,), owner=rita)
    ids["floor"] = await key_result(
        db, settings, c.sales_lead, ids["own"], "New deals", start="0", target="1",
        source="metric", metric="opportunities_created",
    )  # fmt: skip
    set_clock(lambda: AUG_1)
    try:
        await check_in(db, settings, rita, ids["cases"], "5")
    finally:
        set_clock(lambda: NOW)
    return World(cast=c, lib=lib, rita=rita, ids=ids)
