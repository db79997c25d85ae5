"""The dashboard over HTTP: tiles with their figures, the htmx fragment, 404s, drill-downs and paging."""

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login, make_person
from tests.integration.kpis.pipeline_data import PipelineData
from tests.integration.kpis.test_kpi_services import fx_data_set

from okr.kpis import services as kpis
from okr.lib.clock import set_clock

Client = AsyncTestClient[Litestar]
TILES = ["revenue_won", "pipeline_created", "pipeline_sourced_marketing", "win_rate", "mqls", "sqls"]


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-12-01 in New York: the current quarter is 2026-Q4."""
    set_clock(lambda: dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC))
    kpis.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()


async def logged_in(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="vp@example.com", role="leader", team="sales")
    response = await login(client, "vp@example.com")
    assert response.status_code in {302, 303}, response.text


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def tile(html: str, name: str) -> str:
    """The markup of one tile."""
    match = re.search(rf'<li class="tile" id="tile-{name}".*?</li>', html, re.S)
    assert match, f"no tile {name}"
    return match.group(0)


def figure(html: str, name: str) -> str:
    """The figure a tile shows, without its hidden link text."""
    match = re.search(r'<p class="tile-figure num">\s*<a href="([^"]+)"[^>]*>([^<]+)<', tile(html, name))
    assert match
    return match.group(2).strip()


async def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    response = await client.get("/?period=2026-Q3", follow_redirects=False)
    assert response.status_code in {302, 303}
    assert response.headers["location"].startswith("/login")


async def test_the_dashboard_shows_six_tiles_with_their_figures(client: Client, db: AsyncSession) -> None:
    await fx_data_set(db)
    await db.commit()
    await logged_in(client, db)
    response = await client.get("/?period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    assert [m for m in re.findall(r'id="tile-([a-z_]+)"', html)] == TILES
    assert figure(html, "revenue_won") == "USD 1,721.02"  # 172102 minor units, hand-computed
    assert figure(html, "win_rate") == "80.0 %"
    assert figure(html, "mqls") == "0"
    # Compared with the whole of Q2, and whether that is good.
    revenue = tile(html, "revenue_won")
    assert "vs 2026-Q2" in revenue and "USD 30.00" in revenue and "better" in revenue
    assert "worse" in tile(html, "win_rate")
    # The definition is one tap away, in a details element (not just a title attribute).
    assert "<details" in revenue and "at the FX rate of their close date" in revenue
    # Each figure links to its records.
    assert 'href="/dashboard/records?kpi=revenue_won&amp;period=2026-Q3"' in revenue
    # The CHF deal without an FX rate is reported, not silently dropped.
    assert "no FX rate for CHF" in html
    # The period switcher swaps the tiles in place and keeps the period in the URL.
    assert 'hx-get="/"' in html and 'hx-target="#dashboard-tiles"' in html and 'hx-push-url="true"' in html
    assert '<option value="2026-Q3" selected>' in html


async def test_the_default_period_is_the_current_quarter(client: Client, db: AsyncSession) -> None:
    await fx_data_set(db)
    await db.commit()
    await logged_in(client, db)
    html = (await client.get("/")).text
    assert '<option value="2026-Q4" selected>' in html
    assert figure(html, "revenue_won") == "USD 70.00"  # W9, closed at midnight New York time on Oct 1
    assert "Quarter to date: day 62 of 92" in html


async def test_an_htmx_request_gets_only_the_tiles_fragment(client: Client, db: AsyncSession) -> None:
    await fx_data_set(db)
    await db.commit()
    await logged_in(client, db)
    response = await client.get("/?period=2026-Q3", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html and "<nav" not in html and 'id="period"' not in html
    assert '<section id="dashboard-tiles"' in html
    assert figure(html, "revenue_won") == "USD 1,721.02"
    assert "<title>Dashboard 2026-Q3" in html
    assert "HX-Request" in response.headers.get("vary", "")
    # Going back after htmx dropped its history cache needs the whole page again.
    restore = await client.get(
        "/?period=2026-Q3", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


async def test_an_unknown_period_is_a_404_page_that_says_so(client: Client, db: AsyncSession) -> None:
    await logged_in(client, db)
    response = await client.get("/?period=2031-Q1")
    assert response.status_code == 404
    assert "There is no period 2031-Q1" in response.text
    assert "<html" in response.text
    malformed = await client.get("/?period=last-quarter")
    assert malformed.status_code == 404
    assert "is not a period" in malformed.text
    records = await client.get("/dashboard/records?kpi=mqls&period=1999-Q4")
    assert records.status_code == 404


async def test_without_data_the_dashboard_says_what_to_do(client: Client, db: AsyncSession) -> None:
    await logged_in(client, db)
    html = (await client.get("/")).text
    assert "No pipeline data yet" in html
    assert "okr import FOLDER" in html
    assert 'class="tiles"' not in html


async def test_a_drill_down_lists_the_records_behind_the_figure(client: Client, db: AsyncSession) -> None:
    await fx_data_set(db)
    await db.commit()
    await logged_in(client, db)
    response = await client.get("/dashboard/records?kpi=revenue_won&period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    shown = re.findall(r'<span class="sub">(W\d+|L\d+)</span>', html)
    assert shown == ["W1", "W4", "W3", "W6", "W2", "W5", "W8", "W7"]  # biggest converted amount first
    assert "EUR 123.55" in html and "USD 135.91" in html  # W3: 12355 EUR cents at 1.1, rounded half up
    assert "no FX rate" in html  # W7 in CHF
    assert "Showing 1–8 of 8 opportunities" in text(html)
    ascending = (
        await client.get("/dashboard/records?kpi=revenue_won&period=2026-Q3&sort=amount&order=asc")
    ).text
    assert re.findall(r'<span class="sub">(W\d+)</span>', ascending)[:2] == ["W8", "W5"]
    assert 'aria-sort="ascending"' in ascending


async def test_drill_down_pages_fifty_records_at_a_time(client: Client, db: AsyncSession) -> None:
    data = PipelineData(db)
    for i in range(55):
        await data.lead(f"L{i:03d}", "ACC-1", mql_at=f"2026-08-{1 + i % 28:02d}T{10 + i // 28:02d}:00Z")
    await db.commit()
    await logged_in(client, db)
    first = (await client.get("/dashboard/records?kpi=mqls&period=2026-Q3")).text
    assert len(re.findall(r'<span class="sub">L\d{3}</span>', first)) == 50
    assert "Showing 1–50 of 55 leads" in text(first)
    assert (
        'href="/dashboard/records?kpi=mqls&amp;period=2026-Q3&amp;sort=date&amp;order=desc&amp;page=2"'
        in first
    )
    second = (await client.get("/dashboard/records?kpi=mqls&period=2026-Q3&sort=date&order=desc&page=2")).text
    assert len(re.findall(r'<span class="sub">L\d{3}</span>', second)) == 5
    assert "Showing 51–55 of 55 leads" in text(second)
    assert (await client.get("/dashboard/records?kpi=mqls&period=2026-Q3&page=0")).status_code == 400


async def test_a_drill_down_for_an_unknown_kpi_is_not_found(client: Client, db: AsyncSession) -> None:
    await logged_in(client, db)
    response = await client.get("/dashboard/records?kpi=password&period=2026-Q3")
    assert response.status_code == 404
    assert "Pick a figure on the dashboard" in response.text
