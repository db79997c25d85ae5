"""The goals JSON API: objectives, key results, check-ins and progress; tokens and roles, version conflicts,
problem answers (400, 403, 404, 409, 422, never a 500), and the OpenAPI document."""

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login
from tests.integration.goals.goals_data import NOW, Cast, cast, check_in, key_result, objective

from okr.auth.schemas import CurrentUser
from okr.auth.services import create_token
from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
API = "/api/v1/goals"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: 2026-Q3 is under way."""
    set_clock(lambda: NOW)
    kpis.clear_cache()
    goals.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    goals.clear_cache()


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


async def planted(db: AsyncSession, settings: Settings) -> tuple[Cast, int, int]:
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales, c.marketing), weight="2")
    krid = await key_result(db, settings, c.sales_lead, oid, "Deals", owners=(c.rep.id,))
    await check_in(db, settings, c.rep, krid, "50", note="Half way")
    return c, oid, krid


async def test_reading_needs_a_login_or_a_read_token(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c, oid, krid = await planted(db, settings)
    problem(await client.get(f"{API}/objectives"), 401)
    body = problem(await client.get(f"{API}/objectives", headers=await token(db, c.rep, "import")), 403)
    assert "read" in body["detail"]
    read = await token(db, c.finance, "read")
    response = await client.get(f"{API}/objectives?period=2026-Q3", headers=read)
    assert response.status_code == 200
    body = response.json()
    assert (body["period"], body["state"], body["period_start"], body["period_end"]) == (
        "2026-Q3", "active", "2026-07-01", "2026-09-30",
    )  # fmt: skip
    assert (body["score"], body["band"]) == ("0.500000", "yellow")
    [o] = body["objectives"]
    assert (o["id"], o["title"], o["joint"], o["weight"], o["version"], o["score"]) == (
        oid, "Grow revenue", True, "2", 1, "0.500000",
    )  # fmt: skip
    assert sorted(t["name"] for t in o["teams"]) == ["marketing", "sales"]
    [kr] = o["key_results"]
    assert (kr["id"], kr["value"], kr["attainment"], kr["progress"], kr["overflow"], kr["status"]) == (
        krid, "50", "0.500000", "0.500000", "0.000000", "on_track",
    )  # fmt: skip
    assert (kr["expected"], kr["pace"]) == ("49.456522", "1.010989")
    assert kr["last_check_in"]["note"] == "Half way" and kr["last_check_in"]["author"]["name"] == "Seller"
    assert kr["owners"] == [{"id": c.rep.id, "name": "Seller"}] and kr["records_url"] is None
    # A logged-in member may read with the session cookie too.
    await login(client, "seller@example.com")
    assert (await client.get(f"{API}/objectives/{oid}")).json()["id"] == oid


async def test_not_found_and_bad_parameters(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, _, _ = await planted(db, settings)
    read = await token(db, c.rep, "read")
    for url in (f"{API}/objectives/999999", f"{API}/key-results/999999", f"{API}/key-results/999999/progress",
                f"{API}/key-results/999999/check-ins", f"{API}/objectives?period=1999-Q1"):  # fmt: skip
        problem(await client.get(url, headers=read), 404)
    problem(await client.get(f"{API}/objectives?period=soon", headers=read), 404)
    problem(await client.get(f"{API}/objectives?team=x", headers=read), 400)


async def test_writing_needs_an_import_token_and_the_right_team(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c, _oid, _krid = await planted(db, settings)
    new = {"period": "2026-Q3", "title": "Pipeline", "team_ids": [c.marketing]}
    # A read token may not write; a session cookie may only read through the API.
    body = problem(
        await client.post(f"{API}/objectives", json=new, headers=await token(db, c.marketing_lead, "read")),
        403,
    )
    assert "import" in body["detail"]
    await login(client, "vp.marketing@example.com")
    problem(await client.post(f"{API}/objectives", json=new), 403)
    client.cookies.clear()
    body = problem(
        await client.post(f"{API}/objectives", json=new, headers=await token(db, c.rep, "import")), 403
    )
    assert "Only leaders and admins" in body["detail"]
    marketing = await token(db, c.marketing_lead, "import")
    body = problem(
        await client.post(f"{API}/objectives", json={**new, "team_ids": [c.sales]}, headers=marketing), 403
    )
    assert "Keep your own team (marketing)" in body["detail"]
    created = await client.post(f"{API}/objectives", json=new, headers=marketing)
    assert created.status_code == 201, created.text
    made = created.json()
    assert (made["title"], made["period"], made["version"], made["position"]) == ("Pipeline", "2026-Q3", 1, 1)
    # Audit: the token's name rides along with its person.
    from sqlalchemy import select

    from okr.db.audit import AuditEvent

    actor = await db.scalar(
        select(AuditEvent.actor).where(
            AuditEvent.entity == "objective", AuditEvent.entity_id == str(made["id"])
        )
    )
    assert actor == "vp.marketing@example.com (token sync)"


async def test_patch_with_version_and_problems(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, oid, krid = await planted(db, settings)
    auth = await token(db, c.sales_lead, "import")
    response = await client.patch(
        f"{API}/objectives/{oid}", json={"version": 1, "title": "Grow revenue fast"}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert (response.json()["title"], response.json()["version"], response.json()["weight"]) == (
        "Grow revenue fast",
        2,
        "2",
    )
    body = problem(
        await client.patch(f"{API}/objectives/{oid}", json={"version": 1, "title": "Late"}, headers=auth), 409
    )
    assert "changed by someone else since you opened it" in body["detail"]
    body = problem(
        await client.patch(
            f"{API}/objectives/{oid}", json={"version": 2, "title": "", "weight": "0"}, headers=auth
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"title", "weight"}
    problem(await client.patch(f"{API}/objectives/{oid}", json={"title": "no version"}, headers=auth), 400)
    problem(
        await client.patch(f"{API}/objectives/{oid}", json={"version": 2, "colour": "red"}, headers=auth), 400
    )
    problem(
        await client.patch(f"{API}/objectives/{oid}", json={"version": 2, "weight": "heavy"}, headers=auth),
        400,
    )
    problem(await client.patch(f"{API}/objectives/999999", json={"version": 1}, headers=auth), 404)
    # Key results: create, patch, archive.
    kr = await client.post(
        f"{API}/key-results",
        json={"objective_id": oid, "title": "Revenue", "kind": "increase_to", "start_value": 0, "target": "250000.50",
              "source": "metric", "metric": "revenue_won", "filters": {"team": c.sales}, "owner_ids": [c.rep.id]},
        headers=auth,
    )  # fmt: skip
    assert kr.status_code == 201, kr.text
    created = kr.json()
    assert (created["unit"], created["target"], created["value"], created["metric"]) == (
        "currency", "250000.5", "0", "revenue_won",
    )  # fmt: skip
    assert created["filters"] == {
        "team": c.sales,
        "person": None,
        "campaign": None,
        "channel": None,
        "segment": None,
    }
    assert created["records_url"] == f"/api/v1/kpis/revenue_won/records?period=2026-Q3&team={c.sales}"
    body = problem(
        await client.post(
            f"{API}/key-results",
            json={"objective_id": oid, "title": "x", "kind": "grow", "start_value": 1, "target": 1},
            headers=auth,
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"kind", "unit"}
    problem(
        await client.post(
            f"{API}/key-results",
            json={
                "objective_id": 999999,
                "title": "x",
                "kind": "milestone",
                "start_value": 0,
                "target": 1,
                "unit": "count",
            },
            headers=auth,
        ),
        404,
    )
    patched = await client.patch(
        f"{API}/key-results/{created['id']}", json={"version": 1, "stretch": "300000"}, headers=auth
    )
    assert patched.status_code == 200 and patched.json()["stretch"] == "300000"
    problem(
        await client.patch(
            f"{API}/key-results/{created['id']}", json={"version": 1, "stretch": None}, headers=auth
        ),
        409,
    )
    archived = await client.post(
        f"{API}/key-results/{created['id']}/archive", json={"version": 2}, headers=auth
    )
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    problem(
        await client.patch(
            f"{API}/key-results/{created['id']}", json={"version": 3, "title": "x"}, headers=auth
        ),
        409,
    )
    read = await token(db, c.sales_lead, "read")
    listed = await client.get(f"{API}/key-results?objective_id={oid}", headers=read)
    assert [k["id"] for k in listed.json()] == [krid, created["id"]]  # archived ones too, by objective
    listed = await client.get(f"{API}/key-results?period=2026-Q3", headers=read)
    assert [k["id"] for k in listed.json()] == [krid]
    archived = await client.post(f"{API}/objectives/{oid}/archive", json={}, headers=auth)
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None


async def test_check_ins_and_progress(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, _oid, krid = await planted(db, settings)
    owner = await token(db, c.rep, "import", "read")
    made = await client.post(
        f"{API}/key-results/{krid}/check-ins",
        json={"value": 60, "confidence": "at_risk", "note": "Slower"},
        headers=owner,
    )
    assert made.status_code == 201, made.text
    assert (made.json()["value"], made.json()["confidence"], made.json()["author"]["name"]) == (
        "60",
        "at_risk",
        "Seller",
    )
    problem(
        await client.post(f"{API}/key-results/{krid}/check-ins", json={"confidence": "sure"}, headers=owner),
        400,
    )
    body = problem(
        await client.post(
            f"{API}/key-results/{krid}/check-ins", json={"confidence": "on_track"}, headers=owner
        ),
        422,
    )
    assert body["errors"] == [{"field": "value", "message": "Enter the current value."}]
    other = await token(db, c.marketer, "import")
    problem(
        await client.post(
            f"{API}/key-results/{krid}/check-ins", json={"value": 1, "confidence": "on_track"}, headers=other
        ),
        403,
    )
    listed = await client.get(f"{API}/key-results/{krid}/check-ins", headers=owner)
    assert [(x["value"], x["note"]) for x in listed.json()] == [("60", "Slower"), ("50", "Half way")]
    progress = await client.get(f"{API}/key-results/{krid}/progress", headers=owner)
    assert progress.status_code == 200
    body = progress.json()
    assert body["key_result"]["value"] == "60" and body["elapsed"] == "0.494565"  # 91/184
    assert [p["value"] for p in body["history"]] == ["50", "60"]
    assert body["linear_forecast"] is not None and body["opportunity_forecast"] is None
    assert body["chart_text"].startswith("Burn-up from Jul 1, 2026 to Sep 30, 2026")


async def test_roll_forward_through_the_api(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, oid, _ = await planted(db, settings)
    auth = await token(db, c.admin, "import")
    rolled = await client.post(f"{API}/roll-forward", json={"period": "2026-Q3"}, headers=auth)
    assert rolled.status_code == 201, rolled.text
    body = rolled.json()
    assert (body["source"], body["target"], body["key_results"], body["not_copied"]) == (
        "2026-Q3",
        "2026-Q4",
        1,
        [],
    )
    assert body["message"].startswith("Copied 1 objective and 1 key result from 2026-Q3 into 2026-Q4.")
    again = problem(await client.post(f"{API}/roll-forward", json={"period": "2026-Q3"}, headers=auth), 409)
    assert "before" in again["detail"]
    q4 = (
        await client.get(f"{API}/objectives?period=2026-Q4", headers=await token(db, c.admin, "read"))
    ).json()
    assert q4["state"] == "planning" and q4["objectives"][0]["rolled_from_id"] == oid
    assert q4["objectives"][0]["key_results"][0]["start_value"] == "50"  # continues from its last check-in


async def test_the_openapi_document_lists_the_goals_api(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/goals/objectives", "/api/v1/goals/objectives/{objective_id}",
                 "/api/v1/goals/key-results/{key_result_id}/progress", "/api/v1/goals/key-results/{key_result_id}/check-ins",
                 "/api/v1/goals/roll-forward"):  # fmt: skip
        assert path in paths, path
    patch = paths["/api/v1/goals/objectives/{objective_id}"]["patch"]
    assert {"400", "403", "404", "409", "422"} <= set(patch["responses"])
    assert not any(p.startswith("/goals") for p in paths)
