"""The records behind each dashboard figure: the right ones, converted, sorted and paged (50 a page)."""

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData
from tests.integration.kpis.test_kpi_services import fx_data_set

from okr.kpis import services as kpis
from okr.lib.errors import NotFound
from okr.lib.periods import Quarter
from okr.settings import Settings

Q3 = Quarter(2026, 3)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    kpis.clear_cache()
    yield
    kpis.clear_cache()


async def test_revenue_records_are_the_won_deals_with_converted_amounts(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    page = await kpis.kpi_records(db, settings=settings, kpi="revenue_won", quarter=Q3)
    assert (page.total, page.page, page.pages, page.sort, page.descending) == (8, 1, 1, "amount", True)
    converted = {r.external_id: r.converted for r in page.rows}
    assert converted == {
        "W1": 100000, "W2": 10850, "W3": 13591, "W4": 21690, "W5": 8271, "W6": 12700, "W7": None, "W8": 5000,
    }  # fmt: skip
    # Biggest converted amount first; a deal that cannot be converted goes last.
    assert [r.external_id for r in page.rows] == ["W1", "W4", "W3", "W6", "W2", "W5", "W8", "W7"]
    assert page.rows[-1].amount == 50000 and page.rows[-1].currency == "CHF"
    # The records add up to the figure on the tile.
    board = await kpis.dashboard(db, settings=settings, quarter=Q3)
    assert sum(r.converted or 0 for r in page.rows) == board.figure("revenue_won").value


async def test_win_rate_records_are_every_deal_closed_in_the_period(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    page = await kpis.kpi_records(
        db, settings=settings, kpi="win_rate", quarter=Q3, sort="date", descending=False
    )
    assert page.total == 10
    assert {r.status for r in page.rows} == {"won", "lost"}
    closed = [r.closed_at for r in page.rows]
    assert closed == sorted(closed)  # type: ignore[type-var]


async def test_lead_records_page_fifty_at_a_time(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    for i in range(55):
        day = 1 + i % 28
        await data.lead(f"L{i:03d}", "ACC-1", mql_at=f"2026-08-{day:02d}T{10 + i // 28:02d}:00Z")
    await data.lead("OUT", "ACC-1", mql_at="2026-06-01T12:00Z")
    first = await kpis.kpi_records(db, settings=settings, kpi="mqls", quarter=Q3)
    assert (first.total, first.pages, len(first.rows), first.first_index, first.last_index) == (
        55,
        2,
        50,
        1,
        50,
    )
    stamps = [r.mql_at for r in first.rows]
    assert stamps == sorted(stamps, reverse=True)  # type: ignore[type-var]
    second = await kpis.kpi_records(db, settings=settings, kpi="mqls", quarter=Q3, page=2)
    assert (len(second.rows), second.first_index, second.last_index) == (5, 51, 55)
    assert not {r.external_id for r in first.rows} & {r.external_id for r in second.rows}
    assert "OUT" not in {r.external_id for r in first.rows + second.rows}  # type: ignore[operator]
    beyond = await kpis.kpi_records(db, settings=settings, kpi="mqls", quarter=Q3, page=9)
    assert beyond.page == 2  # a page past the end shows the last one
    by_email = await kpis.kpi_records(
        db, settings=settings, kpi="mqls", quarter=Q3, sort="email", descending=False
    )
    assert by_email.rows[0].email == "l000@example.com"  # type: ignore[union-attr]


async def test_sql_records_use_sql_at(db: AsyncSession, settings: Settings) -> None:
    data = PipelineData(db)
    await data.lead("S1", "ACC-1", mql_at="2026-06-01T12:00Z", sql_at="2026-07-02T12:00Z")
    await data.lead("S2", "ACC-1", mql_at="2026-07-03T12:00Z")
    page = await kpis.kpi_records(db, settings=settings, kpi="sqls", quarter=Q3)
    assert [r.external_id for r in page.rows] == ["S1"]
    assert page.date_label == "SQL"


async def test_an_unknown_sort_falls_back_and_an_unknown_kpi_is_not_found(
    db: AsyncSession, settings: Settings
) -> None:
    await fx_data_set(db)
    page = await kpis.kpi_records(db, settings=settings, kpi="revenue_won", quarter=Q3, sort="password_hash")
    assert page.sort == "amount"
    # Every KPI of the library has records now (campaign ROI: the campaigns); the dashboard's
    # drill-down still lists only its own six figures.
    roi = await kpis.kpi_records(db, settings=settings, kpi="campaign_roi", quarter=Q3)
    assert roi.total == 0 and roi.sort == "roi"
    with pytest.raises(NotFound):
        kpis.drill_down_kpi("campaign_roi")
    with pytest.raises(NotFound):
        await kpis.kpi_records(db, settings=settings, kpi="nope", quarter=Q3)
