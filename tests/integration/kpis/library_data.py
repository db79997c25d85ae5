"""A small data set on which every KPI of the library has a hand-computed value for 2026-Q3.

Organisation: America/New_York, USD (tests/conftest.py); 2026-Q3 runs from 2026-07-01T04:00Z to
2026-10-01T04:00Z. EUR is worth 1.25 USD.

People: Rita and Sam (sales), Dana (sdr), Mia (marketing). Accounts: ACC-E (enterprise), ACC-S (smb),
ACC-M (mid_market).

Campaigns (cost in Q3): CW webinar by Mia, 1,000.00 Jul 1-31 (all); CO outbound by Dana, 500.00 Aug 1-31
(all); CE event without owner (marketing's), 300.00 on Sep 15; CX email by Mia, 1,220.00 Jun 1 - Sep 30
(122 days: Q2 300.00, Q3 920.00). Q3 total 2,720.00.

| lead | account | owner | created | MQL | disposition | SQL | touches |
| --- | --- | --- | --- | --- | --- | --- | --- |
| L1 | E | Rita | 07-02 | 07-05 12:00 | accepted +8 h | 07-10 | CW 07-03 |
| L2 | E | Rita | 07-03 | 07-06 12:00 | rejected +48 h | | CO 07-04 |
| L3 | S | Sam | 07-10 | 07-11 00:00 | accepted +10 h | 08-01 | CW 07-09 |
| L4 | S | Sam | 08-01 12:00 | 08-02 12:00 | open | | CX 08-01 |
| L5 | M | Dana | 06-20 | 06-25 | accepted 07-01 12:00 | 07-15 | CO 06-21, CE 08-10 |
| L6 | M | - | 09-29 | 09-30 20:00 | open | | |
| L7 | E | Rita | 09-01 | | | | |
| L8 | E | - | 10-05 | 10-05 | | | |

| deal | account | owner | created | amount | status | closed | pipeline journey (first) |
| --- | --- | --- | --- | --- | --- | --- | --- |
| O1 | E | Rita | 07-10 | 1,000.00 | won | 08-09 (30 days) | CW, CO (marketing) |
| O2 | S | Sam | 07-20 | 500.00 | lost | 08-20 | CW (marketing) |
| O3 | E | Rita | 05-01 | 2,000.00 | won | 09-01 (123 days) | none (unattributed) |
| O4 | M | Sam | 08-15 | EUR 400.00 = 500.00 | open, commit 60 % | | CO, CE (sdr; influenced) |
| O5 | S | Rita | 09-10 | 300.00 | open, best case | | CW, CX (marketing) |
| O6 | M | Sam | 06-01 | 700.00 | open, pipeline 20 % | | none |
| O7 | E | Rita | 09-20 | 100.00 | won | 09-25 (5 days) | CW, CO (marketing) |
"""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.db.models import Campaign, Lead, Opportunity, Person, Team

Q3_START = dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
Q3_END = dt.datetime(2026, 10, 1, 4, tzinfo=dt.UTC)


@dataclass
class Library:
    """What the tests refer to by name."""

    teams: dict[str, Team]
    people: dict[str, Person]
    campaigns: dict[str, Campaign]
    leads: dict[str, Lead]
    deals: dict[str, Opportunity]


async def library_data(db: AsyncSession) -> Library:
    """Build the data set of the module docstring (no attribution run) and commit."""
    d = PipelineData(db)
    await d.rate("EUR", "1.25", "2026-01-01")
    rita = await d.owner()
    sam = await d.person("sam@example.com", "sales", "Sam Seller")
    dana = await d.person("dana@example.com", "sdr", "Dana Sdr")
    mia = await d.person("mia@example.com", "marketing", "Mia Marketer")
    for ext, segment in (("ACC-E", "enterprise"), ("ACC-S", "smb"), ("ACC-M", "mid_market")):
        await d.account(ext, segment)

    cw = await d.campaign("CW", mia, "webinar", cost=100_000, start="2026-07-01", end="2026-07-31")
    co = await d.campaign("CO", dana, "outbound", cost=50_000, start="2026-08-01", end="2026-08-31")
    ce = await d.campaign("CE", None, "event", cost=30_000, start="2026-09-15")
    cx = await d.campaign("CX", mia, "email", cost=122_000, start="2026-06-01", end="2026-09-30")

    leads = {
        "L1": await d.lead(
            "L1", "ACC-E", owner=rita, created_at="2026-07-02T12:00Z", mql_at="2026-07-05T12:00Z",
            accepted_at="2026-07-05T20:00Z", sql_at="2026-07-10T12:00Z",
        ),
        "L2": await d.lead(
            "L2", "ACC-E", owner=rita, created_at="2026-07-03T12:00Z", mql_at="2026-07-06T12:00Z",
            rejected_at="2026-07-08T12:00Z",
        ),
        "L3": await d.lead(
            "L3", "ACC-S", owner=sam, created_at="2026-07-10T12:00Z", mql_at="2026-07-11T00:00Z",
            accepted_at="2026-07-11T10:00Z", sql_at="2026-08-01T12:00Z",
        ),
        "L4": await d.lead(
            "L4", "ACC-S", owner=sam, created_at="2026-08-01T12:00Z", mql_at="2026-08-02T12:00Z"
        ),
        "L5": await d.lead(
            "L5", "ACC-M", owner=dana, created_at="2026-06-20T12:00Z", mql_at="2026-06-25T12:00Z",
            accepted_at="2026-07-01T12:00Z", sql_at="2026-07-15T12:00Z",
        ),
        "L6": await d.lead("L6", "ACC-M", created_at="2026-09-29T12:00Z", mql_at="2026-09-30T20:00Z"),
        "L7": await d.lead("L7", "ACC-E", owner=rita, created_at="2026-09-01T12:00Z"),
        "L8": await d.lead("L8", "ACC-E", created_at="2026-10-05T12:00Z", mql_at="2026-10-05T13:00Z"),
    }  # fmt: skip
    await d.touch("T1", leads["L1"], cw, at("2026-07-03T10:00Z"))
    await d.touch("T2", leads["L2"], co, at("2026-07-04T10:00Z"))
    await d.touch("T3", leads["L3"], cw, at("2026-07-09T10:00Z"))
    await d.touch("T4", leads["L4"], cx, at("2026-08-01T10:00Z"))
    await d.touch("T5", leads["L5"], co, at("2026-06-21T10:00Z"))
    await d.touch("T6", leads["L5"], ce, at("2026-08-10T10:00Z"))

    deals = {
        "O1": await d.opportunity(
            "O1", amount=100_000, account="ACC-E", owner=rita, created_at="2026-07-10T12:00Z",
            closed_at="2026-08-09T12:00Z", status="won",
        ),
        "O2": await d.opportunity(
            "O2", amount=50_000, account="ACC-S", owner=sam, created_at="2026-07-20T12:00Z",
            closed_at="2026-08-20T12:00Z", status="lost",
        ),
        "O3": await d.opportunity(
            "O3", amount=200_000, account="ACC-E", owner=rita, created_at="2026-05-01T12:00Z",
            closed_at="2026-09-01T12:00Z", status="won",
        ),
        "O4": await d.opportunity(
            "O4", amount=40_000, currency="EUR", account="ACC-M", owner=sam, created_at="2026-08-15T12:00Z",
            probability="60", forecast_category="commit",
        ),
        "O5": await d.opportunity(
            "O5", amount=30_000, account="ACC-S", owner=rita, created_at="2026-09-10T12:00Z",
            forecast_category="best_case",
        ),
        "O6": await d.opportunity(
            "O6", amount=70_000, account="ACC-M", owner=sam, created_at="2026-06-01T12:00Z",
            probability="20", forecast_category="pipeline",
        ),
        "O7": await d.opportunity(
            "O7", amount=10_000, account="ACC-E", owner=rita, created_at="2026-09-20T12:00Z",
            closed_at="2026-09-25T12:00Z", status="won",
        ),
    }  # fmt: skip
    await db.commit()
    return Library(
        teams=dict(d.teams),
        people={"rita": rita, "sam": sam, "dana": dana, "mia": mia},
        campaigns={"CW": cw, "CO": co, "CE": ce, "CX": cx},
        leads=leads,
        deals=deals,
    )
