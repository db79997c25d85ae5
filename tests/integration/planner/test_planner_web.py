"""The planner's pages and JSON API: the waterfall recomputed in place, saving, plan vs actual, the joint
objective on /goals; members read only; bad input is a 4xx problem naming the field, never a 500."""

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login
from tests.integration.planner.planner_data import funnel

from okr.auth.schemas import CurrentUser
from okr.auth.services import create_token
from okr.db.sla import FunnelPlan

Client = AsyncTestClient[Litestar]
API = "/api/v1/planner"
PROBLEM = "application/problem+json"


async def token(db: AsyncSession, who: CurrentUser, *scopes: str) -> dict[str, str]:
    _, plaintext = await create_token(db, person_id=who.id, name="sync", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_the_planner_page_recomputes_in_place(client: Client, db: AsyncSession) -> None:
    await funnel(db)
    assert (await login(client, "vp.sales@example.com")).status_code == 303
    page = await client.get("/planner?period=2026-Q3")
    assert page.status_code == 200
    assert 'value="50"' in page.text and 'name="win_rate"' in page.text  # trailing win rate 50 %
    assert "Trailing: USD 20,000.00" in page.text
    assert "Enter a revenue target" in page.text
    # htmx asks for the result only, as the numbers change.
    part = await client.get(
        "/planner?period=2026-Q3&revenue_target=100,000&win_rate=25",
        headers={"HX-Request": "true", "HX-Target": "planner-result"},
    )
    assert part.status_code == 200
    assert part.text.lstrip().startswith("{#") is False and "<html" not in part.text
    assert 'id="planner-result"' in part.text
    # 100,000 / 20,000 = 5 deals; / 25 % = 20 opportunities; / 100 % = 20 SQLs; / 50 % = 40 accepted ...
    assert 'data-count="deals">5<' in part.text and 'data-count="opportunities">20<' in part.text
    assert 'data-count="leads">100<' in part.text
    bad = await client.get(
        "/planner?period=2026-Q3&revenue_target=100000&win_rate=0",
        headers={"HX-Request": "true", "HX-Target": "planner-result"},
    )
    assert "Win rate: enter a rate above 0 %" in bad.text and 'data-count="deals"' not in bad.text


async def test_save_then_make_the_objective_and_find_it_on_goals(client: Client, db: AsyncSession) -> None:
    await funnel(db)
    await login(client, "vp.marketing@example.com")
    form = {"revenue_target": "100000", "name": "Base case", "_csrf_token": await csrf_token(client)}
    missing = await client.post("/planner/plans?period=2026-Q3", data={**form, "name": ""})
    assert missing.status_code == 422 and "Name the plan" in missing.text
    saved = await client.post("/planner/plans?period=2026-Q3", data=form, follow_redirects=False)
    assert saved.status_code == 303
    url = saved.headers["location"]
    plan_id = int(url.rsplit("/", 1)[1])
    page = await client.get(url)
    assert page.status_code == 200
    assert "Base case" in page.text and "Plan vs actual" in page.text and 'id="actual-deals"' in page.text
    assert "Create the joint objective" in page.text
    made = await client.post(
        f"{url}/objective", data={"_csrf_token": await csrf_token(client)}, follow_redirects=False
    )
    assert made.status_code == 303
    row = await db.scalar(select(FunnelPlan).where(FunnelPlan.id == plan_id))
    assert row is not None and row.objective_id is not None
    after = await client.get(url)
    assert f'href="/goals?period=2026-Q3#objective-{row.objective_id}"' in after.text
    goals = await client.get("/goals?period=2026-Q3")
    assert "Hit USD 100,000.00 of revenue in 2026-Q3" in goals.text and "Deliver 25 MQLs" in goals.text
    again = await client.post(f"{url}/objective", data={"_csrf_token": await csrf_token(client)})
    assert again.status_code == 409 and "already made its objective" in again.text
    # The list of saved plans shows it.
    listing = await client.get("/planner?period=2026-Q3")
    assert f'href="/planner/plans/{plan_id}"' in listing.text and "objective made" in listing.text


async def test_members_read_plans_but_cannot_plan(client: Client, db: AsyncSession) -> None:
    await funnel(db)
    await login(client, "seller@example.com")
    page = await client.get("/planner?period=2026-Q3")
    assert page.status_code == 200 and 'id="planner-form"' not in page.text
    assert "Leaders and admins plan the quarter here" in page.text
    refused = await client.post(
        "/planner/plans?period=2026-Q3",
        data={"revenue_target": "1000", "name": "x", "_csrf_token": await csrf_token(client)},
    )
    assert refused.status_code == 403


async def test_the_api(client: Client, db: AsyncSession) -> None:
    c = await funnel(db)
    read = await token(db, c.rep, "read")
    body = {"period": "2026-Q3", "revenue_target": "100000", "rates": {"win_rate": "0.25"}}
    computed = await client.post(f"{API}/compute", json=body, headers=read)
    assert computed.status_code == 200, computed.text
    got = computed.json()
    assert [(s["key"], s["count"]) for s in got["stages"]] == [
        ("leads", 100), ("mqls", 50), ("accepted", 40), ("sqls", 20), ("opportunities", 20), ("deals", 5),
    ]  # fmt: skip
    assert (got["revenue_target"], got["avg_deal_size"], got["pipeline_needed"], got["coverage"]) == (
        "100000.00", "20000.00", "400000.00", "4.00",
    )  # fmt: skip
    assert got["rates"]["win_rate"] == "0.25" and got["rates"]["lead_to_mql"] == "0.5"
    assert got["trailing"] == {
        "quarters": ["2026-Q1", "2026-Q2"],
        "avg_deal_size": "20000.00",
        "rates": {"lead_to_mql": "0.5", "acceptance_rate": "0.8", "accepted_to_sql": "0.5",
                  "sql_to_opportunity": "1", "win_rate": "0.5"},
    }  # fmt: skip
    assert got["open_pipeline"] == "40000.00" and got["flags"] == []

    # Bad input: a problem naming the field, never a 500.
    cases: list[tuple[dict[str, Any], str]] = [
        ({"revenue_target": "0"}, "revenue_target"),
        ({"revenue_target": "12.345"}, "revenue_target"),
        ({"revenue_target": "1000", "rates": {"win_rate": "1.5"}}, "win_rate"),
        ({"revenue_target": "1000", "avg_deal_size": "-3"}, "avg_deal_size"),
    ]
    for bad, field in cases:
        answer = problem(
            await client.post(f"{API}/compute", json={"period": "2026-Q3", **bad}, headers=read), 422
        )
        assert [e["field"] for e in answer["errors"]] == [field]
    problem(
        await client.post(f"{API}/compute", json={"revenue_target": "1", "rates": {"x": "1"}}, headers=read),
        400,
    )
    problem(
        await client.post(f"{API}/compute", json={"revenue_target": "1", "period": "nope"}, headers=read), 404
    )

    # Writes need the import scope and a leader.
    plan = {"period": "2026-Q3", "name": "API plan", "revenue_target": "100000"}
    problem(await client.post(f"{API}/plans", json=plan, headers=read), 403)
    problem(await client.post(f"{API}/plans", json=plan, headers=await token(db, c.rep, "import")), 403)
    write = await token(db, c.sales_lead, "import", "read")
    created = await client.post(f"{API}/plans", json=plan, headers=write)
    assert created.status_code == 201, created.text
    saved = created.json()
    assert (saved["name"], saved["results"]["deals"], saved["objective_id"]) == ("API plan", 5, None)

    listing = await client.get(f"{API}/plans?period=2026-Q3", headers=read)
    assert [p["id"] for p in listing.json()["plans"]] == [saved["id"]]
    one = (await client.get(f"{API}/plans/{saved['id']}", headers=read)).json()
    actual = {a["key"]: (a["target"], a["actual"], a["status"]) for a in one["actuals"]}
    assert actual["deals"] == ("5", "1", "at_risk") and actual["revenue"] == (
        "100000.00",
        "25000.00",
        "at_risk",
    )
    problem(await client.get(f"{API}/plans/999999", headers=read), 404)

    problem(await client.post(f"{API}/plans/{saved['id']}/objective", headers=read), 403)
    made = await client.post(f"{API}/plans/{saved['id']}/objective", headers=write)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["url"] == f"/goals?period=2026-Q3#objective-{body['objective_id']}"
    assert [(k["metric"], k["target"], k["below_trailing"]) for k in body["key_results"]] == [
        ("revenue_won", "100000.00", False), ("deals_won", "5", False), ("pipeline_created", "200000.00", False),
        ("mqls", "25", False), ("sqls", "10", False),
    ]  # fmt: skip
    problem(await client.post(f"{API}/plans/{saved['id']}/objective", headers=write), 409)


async def test_the_api_is_documented(client: Client, db: AsyncSession) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    paths = schema["paths"]
    assert {"/api/v1/planner/compute", "/api/v1/planner/plans", "/api/v1/planner/plans/{plan_id}",
            "/api/v1/planner/plans/{plan_id}/objective"} <= set(paths)  # fmt: skip
    assert "422" in paths["/api/v1/planner/compute"]["post"]["responses"]
    assert not any(p.startswith("/planner") for p in paths)
