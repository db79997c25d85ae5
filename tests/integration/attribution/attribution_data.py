"""A small hand-checkable data set for the attribution pages, queries and API, with both runs computed.

Organisation: America/New_York, USD (tests/conftest.py). EUR is worth 1.08642 USD from 2026-01-01; GBP
has no rate, so the GBP deal is left out of every money figure (as on the dashboard).

| account | touches (campaign) | deal |
| --- | --- | --- |
| A1 | T1 02-01 (SDR), T2 02-10 (MK), T3 03-01 (NONE), T4 05-01 (AE), T5 06-15 (MK) | WON: 1,000,001 USD, created 04-01, won 07-01 (Q3); splits Rita 60 %, Sue 40 %, overlay Sam 10 % |
| A2 | T6 03-01 (NONE), T7 04-01 (AE) | LOST: 50,000 EUR (54,321 USD), created 04-15, lost 05-01; OPEN: 77,777 USD, created 06-01 |
| A3 | none | BARE: 12,345 USD, created 03-01, won 04-01 (Q2): unattributed |
| A4 | T8 05-01 (MK), T9 05-02 (SDR) | none |
| A5 | T10 03-02 (AE), T11 03-03 (MK) | SMALL: 3 USD, created 03-10, won 03-20 (Q1) |
| A6 | T12 05-10 (MK) | GBP: 20,000 GBP, created 05-20, open: no FX rate |

Campaigns (cost, dates): MK webinar by Mia (marketing) 900.00 USD, Apr 1 – Jun 30; SDR outbound by Sam
(sdr) 100.00 USD, Jun 1 – Jul 31 (Q2 gets 30/61: 49.18, Q3 50.82); AE event by Sue (sales) 50.00 EUR on
May 1 only (54.32 USD); NONE paid search without owner (marketing's), no cost, no dates; IDLE email by
Mia 200.00 USD, Apr 1 – May 31, never touched.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.attribution.services import recompute_all
from okr.db.models import Campaign, Opportunity, OpportunitySplit, Person
from okr.settings import Settings


@dataclass
class DataSet:
    """What the tests refer to by name."""

    campaigns: dict[str, Campaign]
    deals: dict[str, Opportunity]
    people: dict[str, Person]


async def journeys(d: PipelineData) -> DataSet:
    """The accounts A1 to A5 of the table above (touches, deals, the EUR rate), without costs or splits:
    the data the attribution service's own tests use as well."""
    await d.rate("EUR", "1.08642", "2026-01-01")
    mia = await d.person("mia@example.com", "marketing", "Mia Marketer")
    sam = await d.person("sam@example.com", "sdr", "Sam Sdr")
    sue = await d.person("sue@example.com", "sales", "Sue Seller")
    mk = await d.campaign("C-MK", mia, "webinar")
    sd = await d.campaign("C-SDR", sam, "outbound")
    ae = await d.campaign("C-AE", sue, "event")
    none = await d.campaign("C-NONE", None, "paid_search")

    l1 = await d.lead("L1", "A1", created_at="2026-01-05T12:00Z")
    l2 = await d.lead("L2", "A1", created_at="2026-02-20T12:00Z")
    await d.touch("T1", l1, sd, at("2026-02-01T10:00Z"))
    await d.touch("T2", l1, mk, at("2026-02-10T10:00Z"))
    await d.touch("T3", l2, none, at("2026-03-01T10:00Z"))
    await d.touch("T4", l2, ae, at("2026-05-01T10:00Z"))
    await d.touch("T5", l1, mk, at("2026-06-15T10:00Z"))
    won = await d.opportunity(
        "O-WON",
        amount=1_000_001,
        account="A1",
        created_at="2026-04-01T12:00Z",
        closed_at="2026-07-01T12:00Z",
        status="won",
    )
    l3 = await d.lead("L3", "A2", created_at="2026-02-01T12:00Z")
    await d.touch("T6", l3, none, at("2026-03-01T10:00Z"))
    await d.touch("T7", l3, ae, at("2026-04-01T10:00Z"))
    lost = await d.opportunity(
        "O-LOST",
        amount=50_000,
        currency="EUR",
        account="A2",
        created_at="2026-04-15T12:00Z",
        closed_at="2026-05-01T12:00Z",
        status="lost",
    )
    open_ = await d.opportunity("O-OPEN", amount=77_777, account="A2", created_at="2026-06-01T12:00Z")
    bare = await d.opportunity(
        "O-BARE",
        amount=12_345,
        account="A3",
        created_at="2026-03-01T12:00Z",
        closed_at="2026-04-01T12:00Z",
        status="won",
    )
    l4 = await d.lead("L4", "A4", created_at="2026-04-01T12:00Z")
    await d.touch("T8", l4, mk, at("2026-05-01T10:00Z"))
    await d.touch("T9", l4, sd, at("2026-05-02T10:00Z"))
    l5 = await d.lead("L5", "A5", created_at="2026-03-01T12:00Z")
    await d.touch("T10", l5, ae, at("2026-03-02T10:00Z"))
    await d.touch("T11", l5, mk, at("2026-03-03T10:00Z"))
    small = await d.opportunity(
        "O-SMALL",
        amount=3,
        account="A5",
        created_at="2026-03-10T12:00Z",
        closed_at="2026-03-20T12:00Z",
        status="won",
    )
    return DataSet(
        campaigns={"MK": mk, "SDR": sd, "AE": ae, "NONE": none},
        deals={"WON": won, "LOST": lost, "OPEN": open_, "BARE": bare, "SMALL": small},
        people={"mia": mia, "sam": sam, "sue": sue},
    )


async def attribution_data(db: AsyncSession, settings: Settings, *, compute: bool = True) -> DataSet:
    """Build the data set, recompute both scopes (unless `compute` is False) and commit."""
    d = PipelineData(db)
    base = await journeys(d)
    mk, sd, ae, none = (base.campaigns[k] for k in ("MK", "SDR", "AE", "NONE"))
    mia, sam, sue = (base.people[k] for k in ("mia", "sam", "sue"))
    won = base.deals["WON"]
    rita = await d.owner()
    sue.target_bonus = 987_654_321  # never shown: credit is not payout
    idle = await d.campaign("C-IDLE", mia, "email")
    for campaign, cost, currency, start, end in (
        (mk, 90_000, "USD", "2026-04-01", "2026-06-30"),
        (sd, 10_000, "USD", "2026-06-01", "2026-07-31"),
        (ae, 5_000, "EUR", "2026-05-01", None),
        (idle, 20_000, "USD", "2026-04-01", "2026-05-31"),
    ):
        campaign.cost = cost
        campaign.currency = currency
        campaign.start_date = dt.date.fromisoformat(start)
        campaign.end_date = dt.date.fromisoformat(end) if end else None
    mk.name, sd.name, ae.name, none.name, idle.name = (
        "Webinar: pipeline",
        "Outbound: founders",
        "Field event Berlin",
        "Search: brand",
        "Newsletter April",
    )

    won.name = "Acme expansion"
    for person, kind, percent in ((rita, "revenue", "60"), (sue, "revenue", "40"), (sam, "overlay", "10")):
        db.add(
            OpportunitySplit(opportunity_id=won.id, person_id=person.id, kind=kind, percent=Decimal(percent))
        )

    l6 = await d.lead("L6", "A6", created_at="2026-05-01T12:00Z")
    await d.touch("T12", l6, mk, at("2026-05-10T10:00Z"))
    gbp = await d.opportunity(
        "O-GBP", amount=20_000, currency="GBP", account="A6", created_at="2026-05-20T12:00Z"
    )
    await db.flush()
    if compute:
        await recompute_all(db, settings=settings)
    await db.commit()
    return DataSet(
        campaigns={**base.campaigns, "IDLE": idle},
        deals={**base.deals, "GBP": gbp},
        people={**base.people, "rita": rita},
    )
