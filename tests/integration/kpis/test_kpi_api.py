"""The KPI JSON API: the library, a value for a period and filters, the records behind it; who may read;
problem answers for unknown KPIs and bad parameters; the OpenAPI document."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login, make_person
from tests.integration.kpis.library_data import Library, library_data

from okr.attribution import queries as attribution_queries
from okr.auth.services import create_token
from okr.kpis import services as kpis
from okr.kpis.core import KPIS
from okr.lib.clock import set_clock

Client = AsyncTestClient[Litestar]
API = "/api/v1/kpis"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-12-01 in New York: Q3 is over."""
    set_clock(lambda: dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC))
    kpis.clear_cache()
    attribution_queries.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    attribution_queries.clear_cache()


async def token(db: AsyncSession, *scopes: str, email: str = "api@example.com") -> dict[str, str]:
    person = await make_person(db, email=email)
    _, plaintext = await create_token(db, person_id=person.id, name="bi export", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


async def reader(db: AsyncSession) -> tuple[Library, dict[str, str]]:
    lib = await library_data(db)
    return lib, await token(db, "read")


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_reading_needs_a_login_or_a_read_token(client: Client, db: AsyncSession) -> None:
    await library_data(db)
    problem(await client.get(API), 401)
    problem(await client.get(f"{API}/mqls?period=2026-Q3"), 401)
    import_only = await token(db, "import", email="sync@example.com")
    assert "read" in problem(await client.get(f"{API}/mqls", headers=import_only), 403)["detail"]
    read = await token(db, "read")
    assert (await client.get(f"{API}/mqls?period=2026-Q3", headers=read)).json()["value"] == 5
    # Any logged-in member may read KPIs with the session cookie too (DESIGN 8).
    await make_person(db, email="member@example.com")
    await login(client, "member@example.com")
    assert (await client.get(f"{API}/mqls/records?period=2026-Q3")).status_code == 200


async def test_the_library_lists_every_kpi(client: Client, db: AsyncSession) -> None:
    _, auth = await reader(db)
    body = (await client.get(API, headers=auth)).json()
    assert [k["name"] for k in body] == list(KPIS)
    win_rate = next(k for k in body if k["name"] == "win_rate")
    assert win_rate == {
        "name": "win_rate",
        "label": "Win rate",
        "unit": "percent",
        "definition": KPIS["win_rate"].definition,
        "higher_is_better": True,
        "records": "opportunities",
        "filters": ["team", "person", "campaign", "channel", "segment"],
        "url": "/api/v1/kpis/win_rate",
    }
    cac = next(k for k in body if k["name"] == "cac")
    assert (cac["records"], cac["filters"]) == ("campaigns", ["campaign", "channel"])


async def test_a_value_for_a_period_and_filters(client: Client, db: AsyncSession) -> None:
    lib, auth = await reader(db)
    body = (await client.get(f"{API}/revenue_won?period=2026-Q3", headers=auth)).json()
    assert body["value"] == 310_000 and isinstance(body["value"], int)
    assert (body["unit"], body["currency"], body["period"]) == ("currency", "USD", "2026-Q3")
    assert body["filters"] == {
        "team": None,
        "person": None,
        "campaign": None,
        "channel": None,
        "segment": None,
    }
    assert body["start"].startswith("2026-07-01T04:00:00") and body["end"].startswith("2026-10-01T04:00:00")
    assert body["definition"] == KPIS["revenue_won"].definition
    assert body["records_url"] == "/api/v1/kpis/revenue_won/records?period=2026-Q3"
    rate = (await client.get(f"{API}/mql_to_sql_rate?period=2026-Q3", headers=auth)).json()
    assert (rate["value"], rate["currency"]) == ("0.400000", None)  # a decimal string, 6 places
    cw = lib.campaigns["CW"].id
    narrowed = (
        await client.get(f"{API}/mqls?period=2026-Q3&campaign={cw}&segment=enterprise", headers=auth)
    ).json()
    assert narrowed["value"] == 1  # L1
    assert narrowed["filters"]["campaign"] == cw and narrowed["filters"]["segment"] == "enterprise"
    none = (
        await client.get(f"{API}/win_rate?period=2026-Q3&team={lib.teams['sdr'].id}", headers=auth)
    ).json()
    assert none["value"] is None  # the SDR team owns no deal: nothing to divide by
    sla = (await client.get(f"{API}/sla_compliance?period=2026-Q3", headers=auth)).json()
    assert (sla["value"], sla["sla_hours"]) == ("0.600000", 24)  # 24 business hours (the default)
    roi = (await client.get(f"{API}/campaign_roi?period=2026-Q3&model=first_touch", headers=auth)).json()
    assert roi["model"] == "first_touch" and roi["records_url"].endswith("model=first_touch")
    assert (await client.get(f"{API}/deals_won", headers=auth)).json()["period"] == "2026-Q4"  # today's


async def test_the_records_behind_a_value(client: Client, db: AsyncSession) -> None:
    lib, auth = await reader(db)
    cw = lib.campaigns["CW"].id
    body = (
        await client.get(
            f"{API}/mqls/records?period=2026-Q3&campaign={cw}&sort=email&order=asc", headers=auth
        )
    ).json()
    assert (body["name"], body["records"], body["total"], body["page"], body["pages"]) == (
        "mqls",
        "leads",
        2,
        1,
        1,
    )
    assert [(r["kind"], r["external_id"]) for r in body["rows"]] == [("lead", "L1"), ("lead", "L3")]
    assert (body["sort"], body["order"], body["next_url"]) == ("email", "asc", None)
    assert body["value_url"] == f"/api/v1/kpis/mqls?period=2026-Q3&campaign={cw}"
    deals = (await client.get(f"{API}/pipeline_created/records?period=2026-Q3", headers=auth)).json()
    assert sum(r["converted"] for r in deals["rows"]) == 240_000
    o4 = next(r for r in deals["rows"] if r["external_id"] == "O4")
    assert (o4["amount"], o4["currency"], o4["converted"], o4["sourced_by"]) == (40_000, "EUR", 50_000, "sdr")
    campaigns = (await client.get(f"{API}/campaign_roi/records?period=2026-Q3", headers=auth)).json()
    cw_row = next(r for r in campaigns["rows"] if r["external_id"] == "CW")
    assert (cw_row["kind"], cw_row["cost"], cw_row["attributed"], cw_row["roi"]) == (
        "campaign",
        100_000,
        310_000,
        "2.100000",
    )
    sla = (
        await client.get(f"{API}/sla_compliance/records?period=2026-Q3&sort=date&order=asc", headers=auth)
    ).json()
    assert [(r["external_id"], r["sla"], r["response_hours"]) for r in sla["rows"]][:2] == [
        ("L1", "met", "8.000000"),
        ("L2", "met", "48.000000"),  # 48 calendar hours, 16 business hours
    ]


async def test_unknown_kpis_and_periods_are_404_problems(client: Client, db: AsyncSession) -> None:
    _, auth = await reader(db)
    assert "no KPI 'happiness'" in problem(await client.get(f"{API}/happiness", headers=auth), 404)["detail"]
    problem(await client.get(f"{API}/happiness/records", headers=auth), 404)
    problem(await client.get(f"{API}/mqls?period=1999-Q1", headers=auth), 404)
    problem(await client.get(f"{API}/mqls?period=last-quarter", headers=auth), 404)


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("mqls?team=abc", 400, None),  # not a number: Litestar's own 400 problem
        ("mqls?person=0", 400, None),
        ("mqls/records?page=0", 400, None),
        ("mqls?team=999999", 422, "team"),
        ("mqls?campaign=999999", 422, "campaign"),
        ("mqls?channel=carrier_pigeon", 422, "channel"),
        ("mqls?segment=galactic", 422, "segment"),
        ("cac?segment=smb", 422, "segment"),  # campaigns have no segment
        ("campaign_cost/records?segment=smb", 422, "segment"),
        ("campaign_roi?model=astrology", 422, "model"),
        ("mqls/records?sort=password_hash", 422, "sort"),
        ("mqls/records?order=sideways", 422, "order"),
    ],
)
async def test_bad_parameters_are_problems_naming_the_field(
    client: Client, db: AsyncSession, query: str, status: int, field: str | None
) -> None:
    _, auth = await reader(db)
    body = problem(await client.get(f"{API}/{query}", headers=auth), status)
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body


async def test_the_openapi_schema_documents_the_kpi_routes(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/kpis", "/api/v1/kpis/{name}", "/api/v1/kpis/{name}/records"):
        assert "get" in paths[path], path
        assert paths[path]["get"]["tags"] == ["kpis"]
    for path in ("/api/v1/kpis/{name}", "/api/v1/kpis/{name}/records"):
        responses = paths[path]["get"]["responses"]
        assert "404" in responses and "422" in responses
        params = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"period", "team", "person", "campaign", "channel", "segment", "model"} <= params
    assert not any(p.startswith("/kpis") for p in paths)  # the pages are not API
