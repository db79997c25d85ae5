"""The attribution JSON API: figures by channel, campaign and person, detail, journey, comparison; tokens,
roles, problem answers for bad parameters, and the OpenAPI document."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.attribution.attribution_data import DataSet, attribution_data
from tests.integration.conftest import login, make_person

from okr.attribution import queries
from okr.auth.services import create_token
from okr.db.attribution import STORED_MODELS
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
API = "/api/v1/attribution"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: the current quarter is 2026-Q3."""
    set_clock(lambda: dt.datetime(2026, 8, 15, 16, 0, tzinfo=dt.UTC))
    queries.clear_cache()
    kpis.clear_cache()
    yield
    set_clock(None)
    queries.clear_cache()
    kpis.clear_cache()


async def token(
    db: AsyncSession, *scopes: str, email: str = "api@example.com", role: str = "member"
) -> dict[str, str]:
    person = await make_person(db, email=email, role=role)
    _, plaintext = await create_token(db, person_id=person.id, name="bi export", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


async def reader(client: Client, db: AsyncSession, settings: Settings) -> tuple[DataSet, dict[str, str]]:
    data = await attribution_data(db, settings)
    return data, await token(db, "read")


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_reading_needs_a_login_or_a_read_token(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await attribution_data(db, settings)
    problem(await client.get(f"{API}/figures"), 401)
    import_only = await token(db, "import", email="sync@example.com")
    body = problem(await client.get(f"{API}/figures", headers=import_only), 403)
    assert "read" in body["detail"]
    read = await token(db, "read")
    assert (await client.get(f"{API}/figures?period=2026-Q3", headers=read)).json()["total"] == 1_000_001
    # A logged-in member may read through the API with the session cookie too (DESIGN 8).
    await make_person(db, email="member@example.com")
    await login(client, "member@example.com")
    assert (await client.get(f"{API}/figures?period=2026-Q3")).status_code == 200


async def test_figures_by_channel(client: Client, db: AsyncSession, settings: Settings) -> None:
    _, auth = await reader(client, db, settings)
    response = await client.get(
        f"{API}/figures?period=2026-Q2&model=first_touch&scope=pipeline&group_by=channel", headers=auth
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["period"], body["period_start"], body["period_end"]) == (
        "2026-Q2",
        "2026-04-01",
        "2026-06-30",
    )
    assert (body["model"], body["scope"], body["group_by"], body["currency"]) == (
        "first_touch",
        "pipeline",
        "channel",
        "USD",
    )
    assert (body["total"], body["attributed"], body["unattributed"], body["deals"]) == (
        1_132_099,
        1_132_099,
        0,
        4,
    )
    assert body["campaigns"] is None and body["people"] is None
    channels = {c["channel"]: c for c in body["channels"]}
    assert sum(c["amount"] for c in body["channels"]) + body["unattributed"] == body["total"]
    outbound = channels["outbound"]
    assert (outbound["amount"], outbound["deals"], outbound["cost"]) == (1_000_001, 1, 4_918)
    assert outbound["share"] == "0.883316"  # 1,000,001 / 1,132,099, six places
    assert outbound["roi"] == "202.334892"  # (1,000,001 − 4,918) / 4,918, a decimal string
    assert outbound["campaigns_url"] == (
        f"{API}/figures?period=2026-Q2&model=first_touch&scope=pipeline&group_by=campaign&channel=outbound"
    )
    assert body["left_out"] == [
        {
            "currency": "GBP",
            "count": 1,
            "message": "1 opportunity in GBP left out: there is no FX rate for GBP; import an fx_rates.csv "
            "row for it, then recompute.",
        }
    ]
    assert body["sourcing"] == {
        "pipeline_created": 1_132_099,
        "sourced_by": {"marketing": 132_098, "sdr": 1_000_001},
        "influenced_by_marketing": 1_132_099,
    }


async def test_figures_by_campaign_and_person(client: Client, db: AsyncSession, settings: Settings) -> None:
    data, auth = await reader(client, db, settings)
    body = (await client.get(f"{API}/figures?period=2026-Q3&model=last_touch", headers=auth)).json()
    assert (body["scope"], body["group_by"]) == ("revenue", "campaign")  # the defaults
    campaigns = {c["campaign_id"]: c for c in body["campaigns"]}
    mk = campaigns[data.campaigns["MK"].id]
    assert (mk["amount"], mk["deals"], mk["name"], mk["owner"], mk["team"]) == (
        1_000_001,
        1,
        "Webinar: pipeline",
        "Mia Marketer",
        "marketing",
    )
    assert (
        mk["detail_url"]
        == f"{API}/campaigns/{data.campaigns['MK'].id}?period=2026-Q3&model=last_touch&scope=revenue"
    )
    assert sum(c["amount"] for c in body["campaigns"]) + body["unattributed"] == body["total"] == 1_000_001
    only = (
        await client.get(f"{API}/figures?period=2026-Q3&group_by=campaign&channel=event", headers=auth)
    ).json()
    assert [c["campaign_id"] for c in only["campaigns"]] == [data.campaigns["AE"].id]

    people = (
        await client.get(f"{API}/figures?period=2026-Q3&model=linear&group_by=person", headers=auth)
    ).json()
    reps = {p["name"]: p for p in people["people"] if p["role"] == "rep"}
    assert {n: (p["amount"], p["overlay"]) for n, p in reps.items()} == {
        "Rita Rep": (600_001, 0),
        "Sue Seller": (400_000, 0),
        "Sam Sdr": (0, 100_000),
    }
    marketers = [p for p in people["people"] if p["role"] == "marketer"]
    assert sum(p["amount"] for p in marketers) == people["attributed"]
    assert "target_bonus" not in response_text(people) and "987654321" not in response_text(people)


def response_text(body: object) -> str:
    return str(body)


async def test_campaign_detail_and_bucket(client: Client, db: AsyncSession, settings: Settings) -> None:
    data, auth = await reader(client, db, settings)
    none = data.campaigns["NONE"].id
    body = (
        await client.get(
            f"{API}/campaigns/{none}?period=2026-Q2&model=first_touch&scope=pipeline", headers=auth
        )
    ).json()
    assert (body["total"], body["page"], body["pages"], body["sort"], body["order"]) == (
        3,
        1,
        1,
        "credit",
        "desc",
    )
    assert body["campaign"]["amount"] == 132_098 == sum(o["credit_base"] for o in body["opportunities"])
    lost = next(o for o in body["opportunities"] if o["external_id"] == "O-LOST")
    assert (lost["amount"], lost["currency"], lost["credit"], lost["credit_base"], lost["weight"]) == (
        50_000,
        "EUR",
        50_000,
        54_321,
        "1.0000000000",
    )
    assert lost["journey_url"] == f"{API}/opportunities/{data.deals['LOST'].id}?model=first_touch"
    by_name = (
        await client.get(
            f"{API}/campaigns/{none}?period=2026-Q2&scope=pipeline&sort=name&order=asc", headers=auth
        )
    ).json()
    names = [o["name"] for o in by_name["opportunities"]]
    assert names == sorted(names) and by_name["order"] == "asc"
    bucket = (await client.get(f"{API}/campaigns/unattributed?period=2026-Q2", headers=auth)).json()
    assert [o["external_id"] for o in bucket["opportunities"]] == ["O-BARE"]
    assert bucket["campaign"]["name"] == "Unattributed (no touch)"


async def test_journey(client: Client, db: AsyncSession, settings: Settings) -> None:
    data, auth = await reader(client, db, settings)
    body = (await client.get(f"{API}/opportunities/{data.deals['WON'].id}?model=linear", headers=auth)).json()
    assert (body["external_id"], body["amount"], body["currency"], body["sourced_by"]) == (
        "O-WON",
        1_000_001,
        "USD",
        "sdr",
    )
    pipeline, revenue = body["scopes"]
    assert (pipeline["scope"], revenue["scope"]) == ("pipeline", "revenue")
    assert [s["weight"] for s in revenue["steps"]] == ["0.2000000000"] * 5
    assert sum(s["amount"] for s in revenue["steps"]) == revenue["amount"] == 1_000_001
    assert revenue["steps"][0]["roles"] == ["first touch", "lead creation"]
    assert revenue["steps"][4]["roles"] == ["closed won"]
    assert [(r["name"], r["amount"]) for r in revenue["reps"]] == [
        ("Rita Rep", 600_001),
        ("Sue Seller", 400_000),
    ]
    assert [(r["name"], r["amount"]) for r in revenue["overlay"]] == [("Sam Sdr", 100_000)]
    assert sum(m["amount"] for m in revenue["marketers"]) == 1_000_001
    problem(await client.get(f"{API}/opportunities/999999", headers=auth), 404)


async def test_compare(client: Client, db: AsyncSession, settings: Settings) -> None:
    data, auth = await reader(client, db, settings)
    body = (
        await client.get(f"{API}/compare?period=2026-Q3&model_a=first_touch&model_b=last_touch", headers=auth)
    ).json()
    assert (body["total"], body["unattributed"], body["scope"]) == (1_000_001, 0, "revenue")
    rows = {r["campaign_id"]: (r["amount_a"], r["amount_b"], r["difference"]) for r in body["campaigns"]}
    assert rows[data.campaigns["SDR"].id] == (1_000_001, 0, -1_000_001)
    assert rows[data.campaigns["MK"].id] == (0, 1_000_001, 1_000_001)
    assert (
        sum(r["amount_a"] for r in body["channels"])
        == sum(r["amount_b"] for r in body["channels"])
        == 1_000_001
    )
    missing = problem(await client.get(f"{API}/compare?model_a=linear", headers=auth), 422)
    assert missing["errors"] == [{"field": "model_b", "message": "required"}]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("/figures?model=last_click", 422, "model"),
        ("/figures?scope=bookings", 422, "scope"),
        ("/figures?group_by=team", 422, "group_by"),
        ("/figures?period=2031-Q1", 404, None),
        ("/figures?period=next-quarter", 404, None),
        ("/campaigns/999999?period=2026-Q2", 404, None),
        ("/campaigns/1?order=up", 422, "order"),
        ("/compare?model_a=linear&model_b=best", 422, "model_b"),
        ("/opportunities/1?model=x", 422, "model"),
    ],
)
async def test_bad_parameters_are_problems(
    client: Client, db: AsyncSession, settings: Settings, query: str, status: int, field: str | None
) -> None:
    _, auth = await reader(client, db, settings)
    body = problem(await client.get(API + query, headers=auth), status)
    if field:
        assert [e["field"] for e in body["errors"]] == [field]


async def test_a_malformed_page_is_a_problem_not_a_crash(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    data, auth = await reader(client, db, settings)
    for bad in ("0", "abc"):
        response = await client.get(f"{API}/campaigns/{data.campaigns['MK'].id}?page={bad}", headers=auth)
        assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM)


async def test_nothing_computed_yet(client: Client, db: AsyncSession, settings: Settings) -> None:
    await attribution_data(db, settings, compute=False)
    auth = await token(db, "read")
    body = problem(await client.get(f"{API}/figures", headers=auth), 404)
    assert "not been computed yet" in body["detail"]
    problem(await client.get(f"{API}/compare?model_a=linear&model_b=first_touch", headers=auth), 404)


async def test_the_openapi_schema_documents_the_attribution_routes(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/v1/attribution/figures",
        "/api/v1/attribution/campaigns/{campaign_id}",
        "/api/v1/attribution/campaigns/unattributed",
        "/api/v1/attribution/opportunities/{opportunity_id}",
        "/api/v1/attribution/compare",
    ):
        assert "get" in paths[path], path
        assert paths[path]["get"]["tags"] == ["attribution"]
        assert "404" in paths[path]["get"]["responses"]
    params = {p["name"]: p for p in paths["/api/v1/attribution/figures"]["get"]["parameters"]}
    assert set(params) >= {"period", "model", "scope", "group_by"}
    assert params["model"]["schema"]["enum"] == list(STORED_MODELS)
    assert params["group_by"]["schema"]["enum"] == ["channel", "campaign", "person"]
    # No page of the web UI is in the API document.
    assert not any(p.startswith("/attribution") for p in paths)
