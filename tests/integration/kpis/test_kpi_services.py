"""Dashboard KPIs on hand-built data, with hand-computed figures (SQLite and PostgreSQL).

The test settings put the organisation in America/New_York with USD; 2026-Q3 runs from
2026-07-01T04:00Z to 2026-10-01T04:00Z.
"""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.audit.services import record
from okr.kpis import services as kpis
from okr.lib.money import convert
from okr.lib.periods import Quarter
from okr.settings import Settings

Q2, Q3, Q4 = Quarter(2026, 2), Quarter(2026, 3), Quarter(2026, 4)
AFTER_Q3 = dt.date(2026, 12, 1)  # a "today" after Q3, so Q3 compares with all of Q2


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Computed figures are cached per engine; every test here starts and ends without any."""
    kpis.clear_cache()
    yield
    kpis.clear_cache()


async def figures(db: AsyncSession, settings: Settings, quarter: Quarter, today: dt.date = AFTER_Q3) -> dict:
    board = await kpis.dashboard(db, settings=settings, quarter=quarter, today=today)
    return {f.kpi.name: f for f in board.figures}


async def fx_data_set(db: AsyncSession) -> PipelineData:
    """Won and lost deals around 2026-Q3 in five currencies (see test_revenue_won_converts_each_deal...)."""
    data = PipelineData(db)
    await data.rate("EUR", "1.0845", "2026-07-01")
    await data.rate("EUR", "1.1000", "2026-08-15")
    await data.rate("JPY", "0.0067", "2026-01-01")
    await data.rate("GBP", "1.2700", "2026-09-01")
    won = [
        ("W1", 100000, "USD", "2026-07-10T15:00Z"),
        ("W2", 10005, "EUR", "2026-08-01T12:00Z"),
        ("W3", 12355, "EUR", "2026-09-01T12:00Z"),
        ("W4", 20000, "EUR", "2026-08-15T02:00Z"),  # 2026-08-14 22:00 in New York: the July rate
        ("W5", 12345, "JPY", "2026-07-20T12:00Z"),
        ("W6", 10000, "GBP", "2026-07-15T12:00Z"),  # before the first GBP rate: the earliest one
        ("W7", 50000, "CHF", "2026-07-15T12:00Z"),  # no CHF rate at all
        ("W8", 5000, "USD", "2026-10-01T02:00Z"),  # 2026-09-30 22:00 in New York: Q3
        ("W9", 7000, "USD", "2026-10-01T04:00Z"),  # midnight in New York: Q4
        ("W10", 3000, "USD", "2026-07-01T03:59Z"),  # 2026-06-30 23:59 in New York: Q2
    ]
    for ext, amount, currency, closed in won:
        await data.opportunity(ext, amount=amount, currency=currency, closed_at=closed, status="won")
    await data.opportunity("L1", amount=900000, closed_at="2026-08-01T12:00Z", status="lost")
    await data.opportunity("L2", amount=900000, currency="EUR", closed_at="2026-09-29T12:00Z", status="lost")
    return data


async def test_revenue_won_converts_each_deal_at_its_close_date_rate_then_sums(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    q3 = await figures(db, settings, Q3)
    # W1 100000 + W2 10005 x 1.0845 = 10850.4225 -> 10850 + W3 12355 x 1.1 = 13590.5 -> 13591 (half up)
    # + W4 20000 x 1.0845 = 21690 + W5 JPY 12345 x 0.0067 x 100 = 8271.15 -> 8271
    # + W6 10000 x 1.27 = 12700 + W8 5000; W7 (CHF) left out.
    assert q3["revenue_won"].value == 100000 + 10850 + 13591 + 21690 + 8271 + 12700 + 5000 == 172102
    assert q3["revenue_won"].value == (
        100000
        + convert(10005, Decimal("1.0845"), "EUR", "USD")
        + convert(12355, Decimal("1.1"), "EUR", "USD")
        + convert(20000, Decimal("1.0845"), "EUR", "USD")
        + convert(12345, Decimal("0.0067"), "JPY", "USD")
        + convert(10000, Decimal("1.27"), "GBP", "USD")
        + 5000
    )
    assert isinstance(q3["revenue_won"].value, int)
    assert q3["revenue_won"].previous == 3000  # W10 in Q2


async def test_a_currency_without_any_rate_is_left_out_and_reported(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    board = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    # The CHF deal was created in Q2 (the comparison quarter) and won in Q3.
    assert [(w.kpi, w.period, w.currency, w.count) for w in board.warnings] == [
        ("revenue_won", "2026-Q3", "CHF", 1),
        ("pipeline_created", "2026-Q2", "CHF", 1),
    ]
    assert "no FX rate for CHF" in board.warnings[0].message


async def test_period_bounds_follow_the_org_time_zone(db: AsyncSession, settings: Settings) -> None:
    await fx_data_set(db)
    q4 = await figures(db, settings, Q4, today=dt.date(2026, 12, 31))
    assert q4["revenue_won"].value == 7000  # W9 only; W8 at 2026-10-01T02:00Z stayed in Q3
    records = await kpis.kpi_records(db, settings=settings, kpi="revenue_won", quarter=Q3)
    assert "W8" in {r.external_id for r in records.rows}
    assert "W9" not in {r.external_id for r in records.rows}


async def test_win_rate_counts_won_and_lost_closed_in_the_period(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    q3 = await figures(db, settings, Q3)
    # Won W1-W8 (the CHF deal still counts as a deal), lost L1 and L2.
    assert q3["win_rate"].value == Decimal(8) / Decimal(10)
    assert q3["win_rate"].previous == Decimal(1)  # Q2: W10 won, nothing lost
    change = q3["win_rate"].change
    assert change is not None and change.direction == "down" and change.good is False


async def test_win_rate_is_none_without_closed_deals(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    await data.opportunity("O1", amount=1000, created_at="2026-08-01T12:00Z")
    q3 = await figures(db, settings, Q3)
    assert q3["win_rate"].value is None
    assert q3["win_rate"].previous is None
    assert q3["win_rate"].change is None
    assert q3["revenue_won"].value == 0


async def test_pipeline_converts_at_the_creation_date_rate(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    await data.rate("EUR", "1.0845", "2026-07-01")
    await data.rate("EUR", "1.1000", "2026-08-15")
    await data.opportunity(
        "P1",
        amount=10000,
        currency="EUR",
        created_at="2026-08-20T12:00Z",
        closed_at="2026-09-02T12:00Z",
        status="lost",
    )
    await data.opportunity("P2", amount=10001, currency="EUR", created_at="2026-07-02T12:00Z")
    await data.opportunity("P3", amount=25000, created_at="2026-06-30T12:00Z")  # Q2
    q3 = await figures(db, settings, Q3)
    # P1 10000 x 1.1 = 11000, P2 10001 x 1.0845 = 10846.0845 -> 10846
    assert q3["pipeline_created"].value == 11000 + 10846
    assert q3["pipeline_created"].previous == 25000
    change = q3["pipeline_created"].change
    assert change is not None and change.delta == 21846 - 25000 and change.good is False


async def sourcing_data_set(db: AsyncSession) -> None:
    """Opportunities created at T = 2026-08-10T12:00Z whose first touch is known by construction."""
    data = PipelineData(db)
    marketer = await data.person("mara@example.com", "marketing")
    sdr = await data.person("sam@example.com", "sdr")
    seller = await data.person("sal@example.com", "sales")
    cm = await data.campaign("CM", marketer)
    cs = await data.campaign("CS", sdr, channel="outbound")
    cu = await data.campaign("CU", None, channel="partner")  # no owner: counts as marketing
    cr = await data.campaign("CR", seller, channel="event")
    t = at("2026-08-10T12:00Z")
    day = dt.timedelta(days=1)

    async def opp(ext: str, amount: int) -> None:
        await data.opportunity(ext, amount=amount, created_at=t, account=f"ACC-{ext}")

    # A: marketing first, then SDR -> marketing.
    la = await data.lead("LA", "ACC-A")
    await data.touch("TA1", la, cm, t - 10 * day)
    await data.touch("TA2", la, cs, t - 5 * day)
    await opp("A", 10_000)
    # B: SDR first -> sdr.
    lb = await data.lead("LB", "ACC-B")
    await data.touch("TB1", lb, cs, t - 10 * day)
    await data.touch("TB2", lb, cm, t - 5 * day)
    await opp("B", 20_000)
    # C: the marketing touch comes after creation and is ignored -> sdr.
    lc = await data.lead("LC", "ACC-C")
    await data.touch("TC1", lc, cm, t + dt.timedelta(hours=1))
    await data.touch("TC2", lc, cs, t - 3 * day)
    await opp("C", 40_000)
    # D: the marketing touch is 366 days old and ignored -> sdr.
    ld = await data.lead("LD", "ACC-D")
    await data.touch("TD1", ld, cm, t - 366 * day)
    await data.touch("TD2", ld, cs, t - 10 * day)
    await opp("D", 80_000)
    # D2: only a 400-day-old touch -> unattributed.
    ld2 = await data.lead("LD2", "ACC-D2")
    await data.touch("TD3", ld2, cm, t - 400 * day)
    await opp("D2", 160_000)
    # E: two leads touched at the same instant; the smaller external id (TE-1, marketing) wins.
    le1, le2 = await data.lead("LE1", "ACC-E"), await data.lead("LE2", "ACC-E")
    await data.touch("TE-2", le1, cs, t - 2 * day)
    await data.touch("TE-1", le2, cm, t - 2 * day)
    await opp("E", 320_000)
    # F: the same tie the other way round -> sdr.
    lf1, lf2 = await data.lead("LF1", "ACC-F"), await data.lead("LF2", "ACC-F")
    await data.touch("TF-2", lf1, cm, t - 2 * day)
    await data.touch("TF-1", lf2, cs, t - 2 * day)
    await opp("F", 640_000)
    # G: an unowned campaign -> marketing.
    lg = await data.lead("LG", "ACC-G")
    await data.touch("TG1", lg, cu, t - day)
    await opp("G", 1_280_000)
    # H: no lead on the account; another account's touch does not count -> unattributed.
    lx = await data.lead("LX", "ACC-X")
    await data.touch("TX1", lx, cm, t - day)
    await opp("H", 2_560_000)
    # I: a touch exactly at creation counts -> marketing.
    li = await data.lead("LI", "ACC-I")
    await data.touch("TI1", li, cm, t)
    await opp("I", 5_120_000)
    # J: a touch exactly 365 days before creation is inside the window -> marketing.
    lj = await data.lead("LJ", "ACC-J")
    await data.touch("TJ1", lj, cm, t - 365 * day)
    await opp("J", 10_240_000)
    # K: a sales campaign first -> sales.
    lk = await data.lead("LK", "ACC-K")
    await data.touch("TK1", lk, cr, t - day)
    await opp("K", 1_000)


async def test_marketing_sourced_pipeline_follows_the_first_touch(
    db: AsyncSession, settings: Settings
) -> None:
    await sourcing_data_set(db)
    board = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert (
        board.figure("pipeline_sourced_marketing").value
        == 10_000 + 320_000 + 1_280_000 + 5_120_000 + 10_240_000
    )
    assert board.figure("pipeline_created").value == 20_471_000
    assert board.sourced == {
        "marketing": 16_970_000,
        "sdr": 20_000 + 40_000 + 80_000 + 640_000,
        "sales": 1_000,
        "unattributed": 160_000 + 2_560_000,
    }
    assert board.marketing_share == Decimal(16_970_000) / Decimal(20_471_000)


async def test_sourced_drill_down_lists_the_marketing_sourced_deals(
    db: AsyncSession, settings: Settings
) -> None:
    await sourcing_data_set(db)
    page = await kpis.kpi_records(db, settings=settings, kpi="pipeline_sourced_marketing", quarter=Q3)
    assert page.total == 5
    assert [r.external_id for r in page.rows] == ["J", "I", "G", "E", "A"]  # biggest first
    assert {r.external_id: r.first_campaign for r in page.rows}["E"] == "Campaign CM"
    assert {r.external_id: r.first_campaign for r in page.rows}["G"] == "Campaign CU"
    assert all(r.source == "marketing" for r in page.rows)
    everything = await kpis.kpi_records(
        db, settings=settings, kpi="pipeline_created", quarter=Q3, sort="name", descending=False
    )
    sources = {r.external_id: r.source for r in everything.rows}
    assert sources == {
        "A": "marketing", "B": "sdr", "C": "sdr", "D": "sdr", "D2": "unattributed", "E": "marketing",
        "F": "sdr", "G": "marketing", "H": "unattributed", "I": "marketing", "J": "marketing", "K": "sales",
    }  # fmt: skip
    assert [r.external_id for r in everything.rows] == sorted(sources, key=lambda e: f"Deal {e}")


async def test_mqls_and_sqls_count_leads_by_their_timestamps(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    await data.lead("M1", "ACC-1", mql_at="2026-07-01T04:00Z", sql_at="2026-07-20T12:00Z")
    await data.lead("M2", "ACC-1", mql_at="2026-08-01T12:00Z")
    await data.lead("M3", "ACC-1", mql_at="2026-10-01T02:00Z", sql_at="2026-10-01T03:59Z")  # still Q3
    await data.lead("M4", "ACC-1", mql_at="2026-10-01T04:00Z", sql_at="2026-10-02T12:00Z")  # Q4
    await data.lead("M5", "ACC-1", mql_at="2026-07-01T03:59Z")  # Q2
    await data.lead("M6", "ACC-1")  # never an MQL
    q3 = await figures(db, settings, Q3)
    assert (q3["mqls"].value, q3["mqls"].previous) == (3, 1)
    assert (q3["sqls"].value, q3["sqls"].previous) == (2, 0)
    change = q3["mqls"].change
    assert change is not None and change.relative == Decimal(2) and change.good is True


async def test_a_quarter_under_way_compares_with_the_previous_one_to_the_same_day(
    db: AsyncSession, settings: Settings
) -> None:
    data = PipelineData(db)
    await data.opportunity("NOW", amount=50_000, closed_at="2026-08-05T12:00Z", status="won")
    await data.opportunity("EARLY", amount=20_000, closed_at="2026-04-20T12:00Z", status="won")
    await data.opportunity("LATE", amount=80_000, closed_at="2026-06-01T12:00Z", status="won")
    board = await kpis.dashboard(db, settings=settings, quarter=Q3, today=dt.date(2026, 8, 10))
    assert board.day_of_quarter == 41
    revenue = board.figure("revenue_won")
    assert (revenue.value, revenue.previous, revenue.previous_to_date) == (50_000, 100_000, 20_000)
    assert revenue.change is not None and revenue.change.delta == 30_000 and revenue.change.good is True
    finished = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert finished.day_of_quarter is None
    assert finished.figure("revenue_won").change.delta == -50_000  # type: ignore[union-attr]


async def test_no_data_at_all_is_an_empty_dashboard(db: AsyncSession, settings: Settings) -> None:
    board = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert board.has_data is False
    assert board.figure("revenue_won").value == 0
    assert board.figure("win_rate").value is None


async def test_figures_are_cached_until_the_next_audited_change(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    await record(db, actor="cli", action="import", entity="opportunities")
    await data.opportunity("A", amount=1_000, closed_at="2026-08-05T12:00Z", status="won")
    first = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert first.figure("revenue_won").value == 1_000
    # An import writes its rows and an audit event in one transaction: the next page sees both.
    await data.opportunity("B", amount=2_000, closed_at="2026-08-06T12:00Z", status="won")
    await record(db, actor="cli", action="import", entity="opportunities")
    second = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert second.figure("revenue_won").value == 3_000
    # A write without an audit event shows once the cache is cleared (or after CACHE_SECONDS).
    await data.opportunity("C", amount=4_000, closed_at="2026-08-07T12:00Z", status="won")
    assert (await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)).figure(
        "revenue_won"
    ).value == 3_000
    kpis.clear_cache()
    third = await kpis.dashboard(db, settings=settings, quarter=Q3, today=AFTER_Q3)
    assert third.figure("revenue_won").value == 7_000
