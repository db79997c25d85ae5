"""The KPI library page and its records pages over HTTP: every KPI with its definition and value, the
period and filters in the URL, the htmx fragment, errors, and the records behind each value."""

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login, make_person
from tests.integration.kpis.library_data import library_data

from okr.attribution import queries as attribution_queries
from okr.kpis import services as kpis
from okr.kpis.core import KPIS
from okr.lib.clock import set_clock

Client = AsyncTestClient[Litestar]


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-12-01 in New York: the current quarter is 2026-Q4."""
    set_clock(lambda: dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC))
    kpis.clear_cache()
    attribution_queries.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    attribution_queries.clear_cache()


async def logged_in(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="member@example.com", role="member", team="sales")
    response = await login(client, "member@example.com")
    assert response.status_code in {302, 303}, response.text


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="kpi-{name}".*?</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def value(html: str, name: str) -> str:
    """The value a row shows (its link text, without the hidden part)."""
    match = re.search(r'<a href="([^"]+)">([^<]+)<span class="visually-hidden">', row(html, name))
    assert match, row(html, name)
    return match.group(2).strip()


def link(html: str, name: str) -> str:
    match = re.search(r'<a href="([^"]+)">', row(html, name))
    assert match
    return match.group(1).replace("&amp;", "&")


async def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    for path in ("/kpis", "/kpis/mqls/records"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code in {302, 303}
        assert response.headers["location"].startswith("/login")


async def test_the_library_lists_every_kpi_with_its_definition_and_value(
    client: Client, db: AsyncSession
) -> None:
    await library_data(db)
    await logged_in(client, db)
    response = await client.get("/kpis?period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    assert re.findall(r'<tr id="kpi-([a-z_]+)"', html) == list(KPIS)
    for kpi in KPIS.values():
        assert kpi.definition.replace("'", "&#39;") in row(html, kpi.name), kpi.name
        assert link(html, kpi.name) == f"/kpis/{kpi.name}/records?period=2026-Q3"
    assert value(html, "revenue_won") == "USD 3,100.00"
    assert value(html, "win_rate") == "75.0 %"
    assert value(html, "mqls") == "5"
    assert value(html, "speed_to_lead_hours") == "10.0 h"
    assert value(html, "sales_cycle_days") == "52.7 days"
    assert value(html, "pipeline_velocity") == "USD 44.15 / day"  # 4,414.56 minor units a day
    assert value(html, "campaign_cost") == "USD 2,720.00"
    assert "The whole organisation." in text(html)
    assert "within 24 business hours (Mon-Fri 09:00-17:00, America/New_York)" in text(html)
    assert "read from the first touch meanwhile" in text(html)  # no attribution run yet
    # The period and the filters swap the table in place and go into the URL.
    assert 'hx-get="/kpis"' in html and 'hx-target="#kpi-library"' in html and 'hx-push-url="true"' in html
    assert '<option value="2026-Q3" selected>' in html
    for name in ("team", "person", "campaign", "channel", "segment"):
        assert f'<select id="kpi-{name}" name="{name}">' in html


async def test_filters_narrow_every_value_and_stay_in_the_links(client: Client, db: AsyncSession) -> None:
    lib = await library_data(db)
    await logged_in(client, db)
    rita = lib.people["rita"].id
    html = (await client.get(f"/kpis?period=2026-Q3&person={rita}&segment=enterprise&team=&campaign=")).text
    assert value(html, "mqls") == "2"  # L1, L2
    assert value(html, "pipeline_created") == "USD 1,100.00"  # O1, O7
    assert link(html, "mqls") == f"/kpis/mqls/records?period=2026-Q3&person={rita}&segment=enterprise"
    assert f'<option value="{rita}" selected>Rita Rep</option>' in html
    assert '<option value="enterprise" selected>enterprise</option>' in html
    assert "Narrowed to person: Rita Rep, segment: enterprise." in text(html)
    # Campaigns have no segment: their figures say so instead of showing a number.
    cost = row(html, "campaign_cost")
    assert "Not applicable" in cost and "cannot be narrowed by segment" in cost and "<a href" not in cost


async def test_an_htmx_request_gets_only_the_library_fragment(client: Client, db: AsyncSession) -> None:
    await library_data(db)
    await logged_in(client, db)
    response = await client.get("/kpis?period=2026-Q3&channel=webinar", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html and '<section id="kpi-library"' in html
    assert "<title>KPI library 2026-Q3" in html
    assert value(html, "mqls") == "2"
    assert "HX-Request" in response.headers.get("vary", "")


async def test_bad_filters_and_periods_say_what_is_wrong(client: Client, db: AsyncSession) -> None:
    await library_data(db)
    await logged_in(client, db)
    unknown = await client.get("/kpis?period=2026-Q3&team=999999")
    assert unknown.status_code == 422 and "there is no team 999999" in unknown.text
    junk = await client.get("/kpis?period=2026-Q3&person=rita")
    assert junk.status_code == 422 and "must be an id" in junk.text
    assert (await client.get("/kpis?period=2031-Q1")).status_code == 404


async def test_a_value_links_to_the_records_behind_it(client: Client, db: AsyncSession) -> None:
    lib = await library_data(db)
    await logged_in(client, db)
    cw = lib.campaigns["CW"].id
    response = await client.get(f"/kpis/mqls/records?period=2026-Q3&campaign={cw}")
    assert response.status_code == 200
    html = response.text
    assert re.findall(r'<span class="sub">(L\d)</span>', html) == ["L3", "L1"]  # newest MQL first
    assert "2 leads behind MQLs, 2026-Q3 (campaign: Campaign CW)" in text(html)
    assert f'href="/kpis?period=2026-Q3&amp;campaign={cw}"' in html  # back to the library, same filters
    # Sorting keeps the filters.
    assert f"/kpis/mqls/records?period=2026-Q3&amp;campaign={cw}&amp;sort=email&amp;order=asc" in html
    sla = (await client.get("/kpis/sla_compliance/records?period=2026-Q3")).text
    assert text(sla).count("Breached") == 2 and text(sla).count("Met") == 3  # 24 business hours
    costs = (await client.get("/kpis/campaign_cost/records?period=2026-Q3")).text
    assert re.findall(r'<span class="sub">(C[A-Z])</span>', costs) == ["CW", "CX", "CO", "CE"]
    assert "USD 920.00" in costs  # CX: 92 of its 122 days fall in Q3
    roi = (await client.get("/kpis/campaign_roi/records?period=2026-Q3")).text
    assert "Attributed revenue" in roi and "read from the first touch" in roi


async def test_records_pages_refuse_what_does_not_exist(client: Client, db: AsyncSession) -> None:
    await library_data(db)
    await logged_in(client, db)
    assert (await client.get("/kpis/happiness/records?period=2026-Q3")).status_code == 404
    refused = await client.get("/kpis/cac/records?period=2026-Q3&segment=smb")
    assert refused.status_code == 422 and "does not apply to cac" in refused.text
    empty = await client.get("/kpis/revenue_won/records?period=2026-Q3&segment=smb")
    assert empty.status_code == 200 and "No records behind this figure" in empty.text
    assert "with these filters" in empty.text


async def test_the_dashboard_drill_down_leads_to_the_filterable_records(
    client: Client, db: AsyncSession
) -> None:
    await library_data(db)
    await logged_in(client, db)
    html = (await client.get("/dashboard/records?kpi=mqls&period=2026-Q3")).text
    assert 'href="/kpis/mqls/records?period=2026-Q3"' in html


async def test_without_data_the_library_says_what_to_do(client: Client, db: AsyncSession) -> None:
    await logged_in(client, db)
    html = (await client.get("/kpis")).text
    assert "No pipeline data yet" in html and "okr import FOLDER" in html
    assert 'id="kpi-mqls"' not in html
