"""Every KPI of the library on hand-built data (library_data.py), with hand-computed values: unfiltered,
for each kind of filter, up to a cutoff, over trailing quarters; read from the touches before the first
attribution run and from the stored run after it (SQLite and PostgreSQL)."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.library_data import Library, library_data
from tests.integration.kpis.pipeline_data import at

from okr.attribution import queries as attribution_queries
from okr.attribution.services import recompute_all
from okr.audit.services import record
from okr.db.models import Touchpoint
from okr.db.sla import SlaPolicy
from okr.kpis import services as kpis
from okr.kpis.core import KPIS, KpiFilters
from okr.lib.clock import set_clock
from okr.lib.errors import NotFound, ValidationFailed
from okr.lib.periods import Quarter
from okr.periods.services import ensure_periods
from okr.settings import Settings

Q3, Q4 = Quarter(2026, 3), Quarter(2026, 4)
D = Decimal


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-12-01: Q3 is over, every open MQL of Q3 is past its SLA."""
    set_clock(lambda: dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC))
    kpis.clear_cache()
    attribution_queries.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    attribution_queries.clear_cache()


@pytest.fixture(params=[False, True], ids=["from touches", "from stored run"])
def stored(request: pytest.FixtureRequest) -> bool:
    """Whether attribution has been computed (sourced, influenced, ROI, campaign filters read a run)."""
    value: bool = request.param
    return value


async def data(db: AsyncSession, settings: Settings, stored: bool) -> Library:
    lib = await library_data(db)
    if stored:
        await recompute_all(db, settings=settings)
        await db.commit()
    return lib


def same(actual: Any, expected: Any) -> bool:
    """Equal, with Decimals compared to 12 places (velocity divides twice)."""
    if isinstance(expected, Decimal) and isinstance(actual, Decimal):
        return actual.quantize(D("1E-12")) == expected.quantize(D("1E-12"))
    return bool(actual == expected) and type(actual) is type(expected)


def check(values: dict[str, Any], expected: dict[str, Any]) -> None:
    wrong = {k: (values[k], v) for k, v in expected.items() if not same(values[k], v)}
    assert not wrong, wrong


# 3 open deals at the end of Q3 x win rate 3/4 x average deal 310,000/3 / cycle 158/3 days.
VELOCITY = D(3) * D("0.75") * (D(310_000) / 3) / (D(158) / 3)

Q3_VALUES: dict[str, Any] = {
    "leads_created": 6,  # L1, L2, L3, L4, L6, L7 (L5 in Q2, L8 in Q4)
    "mqls": 5,  # L1, L2, L3, L4, L6
    "accepted_leads": 3,  # L1, L3, and L5 (MQL in Q2, accepted in Q3)
    "rejected_leads": 1,  # L2
    "sqls": 3,  # L1, L3, L5
    "acceptance_rate": D("0.75"),
    "mql_to_sql_rate": D("0.4"),  # L1 and L3 of the five Q3 MQLs
    "speed_to_lead_hours": D(10),  # median of 8, 48, 10 hours
    # 24 business hours, Mon-Fri 09:00-17:00 New York (no policy stored: the defaults). L2 came on a
    # Monday 08:00 and was rejected on Wednesday 08:00: 48 calendar hours but 16 business hours, in time.
    "sla_compliance": D("0.6"),  # met L1, L2, L3; breached L4 and L6 (open, overdue)
    "mql_commitment_attainment": None,  # no commitment without a policy
    "opportunities_created": 5,  # O1, O2, O4, O5, O7
    "pipeline_created": 240_000,  # 100,000 + 50,000 + EUR 40,000 x 1.25 + 30,000 + 10,000
    "pipeline_sourced_marketing": 190_000,  # O1, O2, O5, O7 (O4's first touch is SDR's)
    "pipeline_influenced_marketing": 240_000,  # all five: O4 has the unowned event
    "revenue_won": 310_000,  # O1, O3, O7
    "deals_won": 3,
    "win_rate": D("0.75"),  # 3 won, O2 lost
    "avg_deal_size": 103_333,  # 310,000 / 3 rounded half up
    "sales_cycle_days": D(158) / D(3),  # (30 + 123 + 5) / 3
    "pipeline_velocity": VELOCITY,
    "campaign_cost": 272_000,  # CW 100,000 + CO 50,000 + CE 30,000 + CX 92 of its 122 days
    "cac": 90_667,  # 272,000 / 3 rounded half up
    "campaign_roi": D(310_000 - 272_000) / D(272_000),  # every won deal is attributed
}


async def test_every_kpi_of_the_quarter_by_hand(db: AsyncSession, settings: Settings, stored: bool) -> None:
    await data(db, settings, stored)
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=list(KPIS))
    assert list(values) == list(KPIS)
    check(values, Q3_VALUES)
    money = [k for k, v in Q3_VALUES.items() if isinstance(v, int)]
    assert all(isinstance(values[k], int) for k in money)


# The stored run credits revenue linearly (the default model): O1, O3, O7 split evenly between CW
# and CO (155,000 each). Before the first run ROI reads the first touch: all 310,000 to CW.
ROI_LINEAR = {"CW": 155_000, "CO": 155_000}
ROI_FIRST = {"CW": 310_000, "CO": 0}


def roi(attributed: int, cost: int) -> Decimal:
    return D(attributed - cost) / D(cost)


def expectations(kind: str, lib: Library, stored: bool) -> tuple[KpiFilters, dict[str, Any]]:
    """The filter of each kind and the values it gives, by hand."""
    credit = ROI_LINEAR if stored else ROI_FIRST
    if kind == "person":
        # Rita owns leads L1, L2, L7 and deals O1, O3, O5, O7; she owns no campaign.
        return KpiFilters(person_id=lib.people["rita"].id), {
            "leads_created": 3, "mqls": 2, "accepted_leads": 1, "rejected_leads": 1, "sqls": 1,
            "acceptance_rate": D("0.5"), "mql_to_sql_rate": D("0.5"), "speed_to_lead_hours": D(28),
            "sla_compliance": D(1), "opportunities_created": 3, "pipeline_created": 140_000,
            "mql_commitment_attainment": None,
            "pipeline_sourced_marketing": 140_000, "pipeline_influenced_marketing": 140_000,
            "revenue_won": 310_000, "deals_won": 3, "win_rate": D(1), "avg_deal_size": 103_333,
            "sales_cycle_days": D(158) / 3, "pipeline_velocity": D(310_000) / D(158),  # O5 open
            "campaign_cost": 0, "campaign_roi": None, "cac": None,  # CAC: not by person
        }  # fmt: skip
    if kind == "team":
        # The sdr team: Dana owns lead L5 (MQL in Q2) and campaign CO; no deal.
        return KpiFilters(team_id=lib.teams["sdr"].id), {
            "leads_created": 0, "mqls": 0, "accepted_leads": 1, "rejected_leads": 0, "sqls": 1,
            "acceptance_rate": D(1), "mql_to_sql_rate": None, "speed_to_lead_hours": None,
            "sla_compliance": None, "opportunities_created": 0, "pipeline_created": 0,
            "mql_commitment_attainment": None,
            "pipeline_sourced_marketing": 0, "pipeline_influenced_marketing": 0, "revenue_won": 0,
            "deals_won": 0, "win_rate": None, "avg_deal_size": None, "sales_cycle_days": None,
            "pipeline_velocity": None, "campaign_cost": 50_000,
            "campaign_roi": roi(credit["CO"], 50_000), "cac": None,
        }  # fmt: skip
    if kind == "campaign":
        # CW: leads L1 and L3 were touched by it; O1, O2, O5, O7 have it on their pipeline journey
        # (O3's journey up to its creation in May is empty, so its revenue does not count here).
        return KpiFilters(campaign_id=lib.campaigns["CW"].id), {
            "leads_created": 2, "mqls": 2, "accepted_leads": 2, "rejected_leads": 0, "sqls": 2,
            "acceptance_rate": D(1), "mql_to_sql_rate": D(1), "speed_to_lead_hours": D(9),
            "sla_compliance": D(1), "opportunities_created": 4, "pipeline_created": 190_000,
            "mql_commitment_attainment": None,
            "pipeline_sourced_marketing": 190_000, "pipeline_influenced_marketing": 190_000,
            "revenue_won": 110_000, "deals_won": 2, "win_rate": D(2) / D(3), "avg_deal_size": 55_000,
            "sales_cycle_days": D("17.5"), "pipeline_velocity": D(2) / D(3) * D(55_000) / D("17.5"),
            "campaign_cost": 100_000, "cac": 50_000, "campaign_roi": roi(credit["CW"], 100_000),
        }  # fmt: skip
    if kind == "channel":
        # outbound (CO): leads L2 and L5; deals O1, O4, O7. O4 was sourced by it, but by the SDR team.
        return KpiFilters(channel="outbound"), {
            "leads_created": 1, "mqls": 1, "accepted_leads": 1, "rejected_leads": 1, "sqls": 1,
            "acceptance_rate": D("0.5"), "mql_to_sql_rate": D(0), "speed_to_lead_hours": D(48),
            "sla_compliance": D(1), "opportunities_created": 3, "pipeline_created": 160_000,
            "mql_commitment_attainment": None,
            "pipeline_sourced_marketing": 0, "pipeline_influenced_marketing": 160_000,
            "revenue_won": 110_000, "deals_won": 2, "win_rate": D(1), "avg_deal_size": 55_000,
            "sales_cycle_days": D("17.5"), "pipeline_velocity": D(55_000) / D("17.5"),
            "campaign_cost": 50_000, "cac": 25_000, "campaign_roi": roi(credit["CO"], 50_000),
        }  # fmt: skip
    assert kind == "segment"
    # enterprise: ACC-E's leads L1, L2, L7 and deals O1, O3, O7 (none open at the end of Q3).
    return KpiFilters(segment="enterprise"), {
        "leads_created": 3, "mqls": 2, "accepted_leads": 1, "rejected_leads": 1, "sqls": 1,
        "acceptance_rate": D("0.5"), "mql_to_sql_rate": D("0.5"), "speed_to_lead_hours": D(28),
        "sla_compliance": D(1), "opportunities_created": 2, "pipeline_created": 110_000,
        "mql_commitment_attainment": None,
        "pipeline_sourced_marketing": 110_000, "pipeline_influenced_marketing": 110_000,
        "revenue_won": 310_000, "deals_won": 3, "win_rate": D(1), "avg_deal_size": 103_333,
        "sales_cycle_days": D(158) / 3, "pipeline_velocity": D(0),
        "campaign_cost": None, "cac": None, "campaign_roi": None,  # campaigns have no segment
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["person", "team", "campaign", "channel", "segment"])
async def test_each_kind_of_filter_by_hand(
    db: AsyncSession, settings: Settings, stored: bool, kind: str
) -> None:
    lib = await data(db, settings, stored)
    filters, expected = expectations(kind, lib, stored)
    assert set(expected) == set(KPIS)
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=list(KPIS), filters=filters)
    check(values, expected)


async def test_filters_combine_and_the_team_of_a_campaign_includes_unowned_ones_for_marketing(
    db: AsyncSession, settings: Settings, stored: bool
) -> None:
    lib = await data(db, settings, stored)
    marketing = KpiFilters(team_id=lib.teams["marketing"].id)
    values = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["campaign_cost", "campaign_roi"], filters=marketing
    )
    # CW and CX (Mia's) and CE (no owner: marketing's): 100,000 + 92,000 + 30,000.
    assert values["campaign_cost"] == 222_000
    attributed = ROI_LINEAR["CW"] if stored else ROI_FIRST["CW"]
    assert values["campaign_roi"] == roi(attributed, 222_000)
    # Sam and smb together: lead L3 and L4; deal O2 (lost).
    both = KpiFilters(person_id=lib.people["sam"].id, segment="smb")
    values = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["mqls", "opportunities_created", "win_rate"], filters=both
    )
    assert values == {"mqls": 2, "opportunities_created": 1, "win_rate": D(0)}


async def test_a_cutoff_counts_only_what_happened_before_it(
    db: AsyncSession, settings: Settings, stored: bool
) -> None:
    await data(db, settings, stored)
    august = at("2026-08-01T04:00Z")  # midnight in New York
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=list(KPIS), as_of=august)
    check(
        values,
        {
            "leads_created": 3,  # L4 was created at noon
            "mqls": 3,
            "sla_compliance": D(1),  # L1, L2, L3 all answered within 24 business hours
            "pipeline_created": 150_000,  # O1, O2
            "pipeline_sourced_marketing": 150_000,
            "revenue_won": 0,
            "win_rate": None,
            "campaign_cost": 131_000,  # CW 100,000 + CX's July: 31 of its 92 Q3 days of 92,000
            "campaign_roi": D(-1),  # nothing won yet
        },
    )
    # Late on Sep 30 L6 (MQL at 20:00Z) is not yet due: it is neither met nor breached.
    late = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["sla_compliance"], as_of=at("2026-09-30T22:00Z")
    )
    assert late["sla_compliance"] == D("0.75")  # met L1, L2, L3; breached L4
    # A burn-up series: the same KPI at several cutoffs never goes down for a sum.
    series = [
        (await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["revenue_won"], as_of=at(t)))[
            "revenue_won"
        ]
        for t in ("2026-07-15T00:00Z", "2026-08-15T00:00Z", "2026-09-15T00:00Z", "2026-12-01T00:00Z")
    ]
    assert series == [0, 100_000, 300_000, 310_000]


async def policy(db: AsyncSession, settings: Settings, quarter: Quarter, hours: int, commitment: int) -> None:
    """Store an SLA policy for `quarter` (Mon-Fri 09:00-17:00) as a leader would, audited."""
    first, _ = quarter.dates(settings.fiscal_year_start_month)
    [period] = await ensure_periods(db, settings=settings, first=first, last=first, today=first)
    db.add(
        SlaPolicy(
            period_id=period.id, follow_up_hours=hours, weekdays=[0, 1, 2, 3, 4], day_start_minute=540,
            day_end_minute=1020, acceptance_target=D("0.9"), mql_commitment=commitment,
            updated_at=at("2026-06-01T00:00Z"),
        )
    )  # fmt: skip
    await record(db, actor="test", action="sla_policy.save", entity="sla_policy")
    await db.commit()


async def test_sla_compliance_follows_each_periods_policy(db: AsyncSession, settings: Settings) -> None:
    await library_data(db)
    before = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["sla_compliance"])
    assert before["sla_compliance"] == D("0.6")
    # Q3: 4 business hours. L1 (Sunday) and L3 (Friday night) were answered before Monday 09:00, so in
    # time; L2 (Monday 08:00, due Monday 13:00) was rejected on Wednesday: late.
    await policy(db, settings, Q3, hours=4, commitment=2)
    after = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["sla_compliance"])
    assert after["sla_compliance"] == D("0.4")  # the saved policy (an audited change) is seen at once
    # Q2: 48 business hours. L5 came on Thursday Jun 25 08:00 and was accepted on Wednesday Jul 1 08:00:
    # 40 business hours, in time under Q2's rule (it would be late under Q3's 4 or the default 24).
    await policy(db, settings, Quarter(2026, 2), hours=48, commitment=0)
    both = await kpis.trailing_actual(db, settings=settings, quarter=Q4, name="sla_compliance")
    assert both == D("0.5")  # met L5, L1, L3 of Q2 + Q3's six MQLs


async def test_mql_commitment_attainment(db: AsyncSession, settings: Settings) -> None:
    await library_data(db)
    await policy(db, settings, Q3, hours=24, commitment=2)
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["mql_commitment_attainment"])
    assert values["mql_commitment_attainment"] == D(5) / D(6)  # 5 MQLs of 3 months x 2
    # Mid-August (midnight in New York): July's 2 and 15 of August's 31 days' share of 2.
    mid = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["mql_commitment_attainment"], as_of=at("2026-08-16T04:00Z")
    )
    check(mid, {"mql_commitment_attainment": D(4) / (D(2) + D(30) / D(31))})  # L1 to L4
    narrowed = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["mql_commitment_attainment"], filters=KpiFilters(team_id=1)
    )
    assert narrowed["mql_commitment_attainment"] is None  # the commitment is the organisation's


async def test_trailing_two_quarters(db: AsyncSession, settings: Settings) -> None:
    lib = await library_data(db)

    async def trailing(name: str, **kw: Any) -> Any:
        return await kpis.trailing_actual(db, settings=settings, quarter=Q4, name=name, **kw)

    assert await trailing("revenue_won") == 155_000  # (0 in Q2 + 310,000 in Q3) / 2
    assert await trailing("revenue_won", per_quarter=False) == 310_000
    assert await trailing("leads_created") == D("3.5")  # (L5 + six in Q3) / 2
    assert await trailing("pipeline_created") == 255_000  # (O3 + O6 = 270,000 + 240,000) / 2
    assert await trailing("campaign_cost") == 151_000  # (CX's June 30,000 + 272,000) / 2
    assert await trailing("win_rate") == D("0.75")  # over the six months as one window
    sam = KpiFilters(person_id=lib.people["sam"].id)
    assert await trailing("deals_won", filters=sam) == D(0)
    assert await trailing("win_rate", filters=sam) == D(0)  # O2 lost


async def test_open_pipeline_for_the_forecast(db: AsyncSession, settings: Settings, stored: bool) -> None:
    lib = await data(db, settings, stored)
    assert await kpis.open_pipeline(db, settings=settings) == [
        (50_000, "commit", D("0.6")),  # O4: EUR 40,000 at 1.25
        (30_000, "best_case", D(0)),  # O5: no probability
        (70_000, "pipeline", D("0.2")),  # O6
    ]
    sam = KpiFilters(person_id=lib.people["sam"].id)
    assert [a for a, _, _ in await kpis.open_pipeline(db, settings=settings, filters=sam)] == [50_000, 70_000]
    webinar = KpiFilters(campaign_id=lib.campaigns["CW"].id)
    assert [a for a, _, _ in await kpis.open_pipeline(db, settings=settings, filters=webinar)] == [30_000]


async def test_roi_follows_the_model_asked_for(db: AsyncSession, settings: Settings) -> None:
    lib = await data(db, settings, True)
    cw = KpiFilters(campaign_id=lib.campaigns["CW"].id)

    async def value(model: str | None) -> Any:
        found = await kpis.kpi_values(
            db, settings=settings, quarter=Q3, names=["campaign_roi"], filters=cw, model=model
        )
        return found["campaign_roi"]

    assert await value(None) == roi(155_000, 100_000)  # linear, the attribution pages' default
    assert await value("first_touch") == roi(310_000, 100_000)
    assert await value("last_touch") == roi(0, 100_000)  # CO is the last touch of every journey
    with pytest.raises(ValidationFailed):
        await value("astrology")


async def test_unknown_names_and_filters_that_do_not_apply(db: AsyncSession, settings: Settings) -> None:
    lib = await library_data(db)
    with pytest.raises(NotFound, match="no KPI 'happiness'"):
        await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["mqls", "happiness"])
    values = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["cac", "mqls"], filters=KpiFilters(segment="smb")
    )
    assert values == {"cac": None, "mqls": 2}
    with pytest.raises(ValidationFailed) as refused:
        await kpis.check_filters(db, KpiFilters(segment="smb"), kpi="cac")
    assert refused.value.errors == [
        {"field": "segment", "message": "the segment filter does not apply to cac"}
    ]
    with pytest.raises(ValidationFailed) as unknown:
        await kpis.check_filters(db, KpiFilters(team_id=999_999, channel="carrier pigeon"))
    assert [e["field"] for e in unknown.value.errors] == ["team", "channel"]
    await kpis.check_filters(db, KpiFilters(team_id=lib.teams["sdr"].id, channel="webinar", segment="smb"))


async def test_values_are_cached_until_the_data_or_the_attribution_run_changes(
    db: AsyncSession, settings: Settings
) -> None:
    lib = await library_data(db)
    await record(db, actor="cli", action="import", entity="touchpoints")
    await db.commit()
    names = ["pipeline_sourced_marketing"]
    assert (await kpis.kpi_values(db, settings=settings, quarter=Q3, names=names))[names[0]] == 190_000
    # A marketing touch before O4's first one, written without an audit event: still cached.
    db.add(
        Touchpoint(
            external_id="T0",
            lead_id=lib.leads["L5"].id,
            campaign_id=lib.campaigns["CE"].id,
            occurred_at=at("2026-06-15T10:00Z"),
        )
    )
    await db.commit()
    assert (await kpis.kpi_values(db, settings=settings, quarter=Q3, names=names))[names[0]] == 190_000
    # A recompute writes no audit event, but a new run is a new data version.
    await recompute_all(db, settings=settings)
    await db.commit()
    assert (await kpis.kpi_values(db, settings=settings, quarter=Q3, names=names))[names[0]] == 240_000


async def test_the_dashboard_tile_and_the_library_agree_on_marketing_sourced_pipeline(
    db: AsyncSession, settings: Settings, stored: bool
) -> None:
    await data(db, settings, stored)
    board = await kpis.dashboard(db, settings=settings, quarter=Q3, today=dt.date(2026, 12, 1))
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=list(KPIS))
    for figure in board.figures:
        assert figure.value == values[figure.kpi.name], figure.kpi.name
    assert board.sourced == {"marketing": 190_000, "sdr": 50_000}


async def test_the_dashboard_compares_to_the_same_day_with_the_stored_run_too(
    db: AsyncSession, settings: Settings, stored: bool
) -> None:
    await data(db, settings, stored)
    # Nov 1 is day 32 of Q4: Q3 is compared up to the end of its day 32, Aug 1.
    board = await kpis.dashboard(db, settings=settings, quarter=Q4, today=dt.date(2026, 11, 1))
    sourced = board.figure("pipeline_sourced_marketing")
    assert (sourced.previous, sourced.previous_to_date) == (190_000, 150_000)  # O1 and O2 by then
    cut = at("2026-08-02T04:00Z")
    to_date = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["pipeline_sourced_marketing", "pipeline_created"], as_of=cut
    )
    assert to_date["pipeline_sourced_marketing"] == sourced.previous_to_date
    assert to_date["pipeline_created"] == board.figure("pipeline_created").previous_to_date
