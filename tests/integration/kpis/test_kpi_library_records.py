"""The records behind every KPI of the library (library_data.py): the right leads, opportunities or
campaigns for the period and filters, adding up to the value, sortable by an allow-list only."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.library_data import library_data

from okr.attribution import queries as attribution_queries
from okr.attribution.services import recompute_all
from okr.kpis import services as kpis
from okr.kpis.core import KPIS, KpiFilters
from okr.kpis.records import CampaignRow, LeadRow, OpportunityRow
from okr.lib.clock import set_clock
from okr.lib.errors import ValidationFailed
from okr.lib.periods import Quarter
from okr.settings import Settings

Q3 = Quarter(2026, 3)

RECORDS: dict[str, set[str]] = {
    "leads_created": {"L1", "L2", "L3", "L4", "L6", "L7"},
    "mqls": {"L1", "L2", "L3", "L4", "L6"},
    "accepted_leads": {"L1", "L3", "L5"},
    "rejected_leads": {"L2"},
    "sqls": {"L1", "L3", "L5"},
    "acceptance_rate": {"L1", "L2", "L3", "L5"},  # dispositioned in Q3
    "mql_to_sql_rate": {"L1", "L2", "L3", "L4", "L6"},  # the Q3 MQLs
    "speed_to_lead_hours": {"L1", "L2", "L3"},  # the Q3 MQLs with a disposition
    "sla_compliance": {"L1", "L2", "L3", "L4", "L6"},  # met or breached
    "mql_commitment_attainment": {"L1", "L2", "L3", "L4", "L6"},  # the MQLs delivered
    "opportunities_created": {"O1", "O2", "O4", "O5", "O7"},
    "pipeline_created": {"O1", "O2", "O4", "O5", "O7"},
    "pipeline_sourced_marketing": {"O1", "O2", "O5", "O7"},
    "pipeline_influenced_marketing": {"O1", "O2", "O4", "O5", "O7"},
    "revenue_won": {"O1", "O3", "O7"},
    "deals_won": {"O1", "O3", "O7"},
    "win_rate": {"O1", "O2", "O3", "O7"},
    "avg_deal_size": {"O1", "O3", "O7"},
    "sales_cycle_days": {"O1", "O3", "O7"},
    "pipeline_velocity": {"O4", "O5", "O6"},  # open at the end of Q3
    "campaign_cost": {"CW", "CO", "CE", "CX"},
    "cac": {"CW", "CO", "CE", "CX"},
    "campaign_roi": {"CW", "CO", "CE", "CX"},
}
SUMS = {"pipeline_created": 240_000, "pipeline_sourced_marketing": 190_000,
        "pipeline_influenced_marketing": 240_000, "revenue_won": 310_000, "campaign_cost": 272_000}  # fmt: skip


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    set_clock(lambda: dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC))
    kpis.clear_cache()
    attribution_queries.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    attribution_queries.clear_cache()


@pytest.fixture(params=[False, True], ids=["from touches", "from stored run"])
def stored(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def external_ids(rows: object) -> set[str]:
    return {r.external_id for r in rows}  # type: ignore[attr-defined]


async def test_every_kpi_has_its_records(db: AsyncSession, settings: Settings, stored: bool) -> None:
    await library_data(db)
    if stored:
        await recompute_all(db, settings=settings)
        await db.commit()
    assert set(RECORDS) == set(KPIS)
    for name, expected in RECORDS.items():
        page = await kpis.kpi_records(db, settings=settings, kpi=name, quarter=Q3)
        assert (page.total, external_ids(page.rows)) == (len(expected), expected), name
        assert (
            page.kpi.records.value
            == {"L": "leads", "O": "opportunities", "C": "campaigns"}[next(iter(expected))[0]]
        )
        if name in SUMS:
            money = [r.converted if isinstance(r, OpportunityRow) else r.cost for r in page.rows]  # type: ignore[union-attr]
            assert sum(m or 0 for m in money) == SUMS[name], name
        if name in ("pipeline_sourced_marketing", "pipeline_influenced_marketing", "campaign_roi"):
            assert page.from_run is stored


async def test_lead_records_say_how_fast_and_whether_within_the_sla(
    db: AsyncSession, settings: Settings
) -> None:
    await library_data(db)
    page = await kpis.kpi_records(
        db, settings=settings, kpi="sla_compliance", quarter=Q3, sort="date", descending=False
    )
    rows = [r for r in page.rows if isinstance(r, LeadRow)]
    assert [(r.external_id, r.sla, r.response_hours) for r in rows] == [
        ("L1", "met", Decimal(8)),
        ("L2", "met", Decimal(48)),  # calendar hours; 16 business hours, within the SLA
        ("L3", "met", Decimal(10)),
        ("L4", "breached", None),
        ("L6", "breached", None),
    ]
    assert page.date_label == "MQL" and page.sla_hours == 24
    assert [r.date for r in rows] == [r.mql_at for r in rows]
    accepted = await kpis.kpi_records(db, settings=settings, kpi="accepted_leads", quarter=Q3)
    assert accepted.date_label == "Accepted"
    assert [r.date for r in accepted.rows] == [r.accepted_at for r in accepted.rows]  # type: ignore[union-attr]


async def test_records_follow_the_filters(db: AsyncSession, settings: Settings, stored: bool) -> None:
    lib = await library_data(db)
    if stored:
        await recompute_all(db, settings=settings)
        await db.commit()
    cw = KpiFilters(campaign_id=lib.campaigns["CW"].id)

    async def ids(name: str, filters: KpiFilters) -> set[str]:
        page = await kpis.kpi_records(db, settings=settings, kpi=name, quarter=Q3, filters=filters)
        assert page.filters == filters
        return external_ids(page.rows)

    assert await ids("mqls", cw) == {"L1", "L3"}
    assert await ids("pipeline_created", cw) == {"O1", "O2", "O5", "O7"}
    assert await ids("revenue_won", cw) == {"O1", "O7"}
    assert await ids("campaign_cost", cw) == {"CW"}
    outbound = KpiFilters(channel="outbound")
    assert await ids("pipeline_sourced_marketing", outbound) == set()
    assert await ids("pipeline_influenced_marketing", outbound) == {"O1", "O4", "O7"}
    sam = KpiFilters(person_id=lib.people["sam"].id)
    assert await ids("win_rate", sam) == {"O2"}
    assert await ids("leads_created", sam) == {"L3", "L4"}
    assert await ids("campaign_cost", KpiFilters(team_id=lib.teams["marketing"].id)) == {"CW", "CX", "CE"}
    assert await ids("acceptance_rate", KpiFilters(segment="mid_market")) == {"L5"}
    with pytest.raises(ValidationFailed, match="cannot be narrowed by segment"):
        await ids("campaign_cost", KpiFilters(segment="smb"))


async def test_sourced_records_come_from_the_stored_run(db: AsyncSession, settings: Settings) -> None:
    await library_data(db)
    await recompute_all(db, settings=settings)
    await db.commit()
    page = await kpis.kpi_records(db, settings=settings, kpi="pipeline_sourced_marketing", quarter=Q3)
    rows = [r for r in page.rows if isinstance(r, OpportunityRow)]
    assert [r.external_id for r in rows] == ["O1", "O2", "O5", "O7"]  # biggest first
    assert {(r.first_campaign, r.source) for r in rows} == {("Campaign CW", "marketing")}
    created = await kpis.kpi_records(db, settings=settings, kpi="pipeline_created", quarter=Q3, sort="name")
    sources = {r.external_id: r.source for r in created.rows}  # type: ignore[union-attr]
    assert sources == {
        "O1": "marketing",
        "O2": "marketing",
        "O4": "sdr",
        "O5": "marketing",
        "O7": "marketing",
    }


async def test_campaign_records_sort_by_the_allow_list(db: AsyncSession, settings: Settings) -> None:
    await library_data(db)
    await recompute_all(db, settings=settings)
    await db.commit()
    cost = await kpis.kpi_records(db, settings=settings, kpi="campaign_cost", quarter=Q3)
    assert (cost.sort, cost.descending) == ("cost", True)
    assert [(r.external_id, r.cost) for r in cost.rows] == [  # type: ignore[union-attr]
        ("CW", 100_000), ("CX", 92_000), ("CO", 50_000), ("CE", 30_000),
    ]  # fmt: skip
    by_name = await kpis.kpi_records(
        db, settings=settings, kpi="campaign_cost", quarter=Q3, sort="name", descending=False
    )
    assert [r.external_id for r in by_name.rows] == ["CE", "CO", "CW", "CX"]  # type: ignore[union-attr]
    roi = await kpis.kpi_records(db, settings=settings, kpi="campaign_roi", quarter=Q3)
    rows = [r for r in roi.rows if isinstance(r, CampaignRow)]
    assert (roi.sort, roi.model) == ("roi", "linear")
    assert [(r.external_id, r.attributed, r.roi) for r in rows] == [
        ("CO", 155_000, Decimal("2.1")),
        ("CW", 155_000, Decimal("0.55")),
        ("CE", 0, Decimal(-1)),
        ("CX", 0, Decimal(-1)),
    ]
    first_touch = await kpis.kpi_records(
        db, settings=settings, kpi="campaign_roi", quarter=Q3, model="first_touch"
    )
    attributed = {r.external_id: r.attributed for r in first_touch.rows}  # type: ignore[union-attr]
    assert attributed == {"CW": 310_000, "CO": 0, "CE": 0, "CX": 0}
    assert first_touch.rows[0].external_id == "CW"  # ROI 2.1; the others -1, then by name
    sneaky = await kpis.kpi_records(
        db, settings=settings, kpi="campaign_cost", quarter=Q3, sort="password_hash"
    )
    assert sneaky.sort == "cost"
