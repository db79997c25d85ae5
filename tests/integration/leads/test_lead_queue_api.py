"""The lead queue API: the queue as JSON, single and bulk dispositions by CRM id, scopes and roles, problem
answers (400, 403, 404, 409, 422, never a 500), a CRM's past `at`, and the OpenAPI document."""

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import at
from tests.integration.leads.leads_data import NOW, cast

from okr.auth.schemas import CurrentUser
from okr.auth.services import create_token
from okr.db.audit import AuditEvent
from okr.db.pipeline import Lead
from okr.lib.clock import set_clock

Client = AsyncTestClient[Litestar]
API = "/api/v1/leads"


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Monday 23 November 2026, 10:00 in New York."""
    set_clock(lambda: NOW)
    yield
    set_clock(None)


async def token(db: AsyncSession, who: CurrentUser, *scopes: str) -> dict[str, str]:
    _, plaintext = await create_token(db, person_id=who.id, name="crm", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def stamps(db: AsyncSession, external_id: str) -> tuple[Any, ...]:
    await db.rollback()
    row = (
        await db.execute(
            select(Lead.accepted_at, Lead.rejected_at, Lead.rejection_reason, Lead.recycled_at).where(
                Lead.external_id == external_id
            )
        )
    ).one()
    return tuple(row)


async def test_queue_json_and_scopes(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    problem(await client.get(f"{API}/queue"), 401)
    body = problem(await client.get(f"{API}/queue", headers=await token(db, c.rep, "import")), 403)
    assert "read" in body["detail"]
    read = await token(db, c.rep, "read")
    response = await client.get(f"{API}/queue", headers=read)
    assert response.status_code == 200
    queue = response.json()
    assert (queue["person_id"], queue["team"], queue["may_work"]) == (c.rep.id, "sales", True)
    assert [
        (x["external_id"], x["status"], x["business_seconds_left"], x["time_left"]) for x in queue["leads"]
    ] == [
        ("L-OLD", "breached", -(15 * 3600 + 40 * 60), "overdue by 15 h 40 min"),
        ("L-SOON", "due_soon", 2 * 3600, "2 h left"),
        ("L-WEEKEND", "pending", 22 * 3600 + 40 * 60, "22 h 40 min left"),
    ]
    weekend = queue["leads"][2]
    assert (weekend["campaign"], weekend["due_at"], weekend["account"]) == (
        "Campaign WEB", "2026-11-25T21:40:00Z", "Account GLOBEX",
    )  # fmt: skip
    # A read token cannot write.
    body = problem(
        await client.post(f"{API}/L-OLD/disposition", json={"action": "accept"}, headers=read), 403
    )
    assert "import" in body["detail"]
    # Someone else's queue: 404 for a rep, read-only for their leader.
    problem(await client.get(f"{API}/queue?person={c.rep.id}", headers=await token(db, c.rep2, "read")), 404)
    seen = await client.get(f"{API}/queue?person={c.rep.id}", headers=await token(db, c.leader, "read"))
    assert seen.status_code == 200 and seen.json()["may_work"] is False and len(seen.json()["leads"]) == 3


async def test_disposition_by_crm_id(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    crm = await token(db, c.rep, "import")
    url = f"{API}/L-OLD/disposition"

    bad = problem(await client.post(url, json={"action": "close"}, headers=crm), 422)
    assert bad["errors"][0]["field"] == "action"
    bad = problem(await client.post(url, json={"action": "reject"}, headers=crm), 422)
    assert bad["errors"][0]["field"] == "reason"
    bad = problem(await client.post(url, json={"action": "accept", "reason": "duplicate"}, headers=crm), 422)
    assert bad["errors"][0]["field"] == "reason"
    for when in ("yesterday", "2026-11-20T10:00", "2026-11-23T15:01:00Z", "2026-11-16T15:00:00Z"):
        bad = problem(await client.post(url, json={"action": "accept", "at": when}, headers=crm), 422)
        assert bad["errors"][0]["field"] == "at", when  # not ISO, no offset, future, before mql_at
    problem(await client.post(url, json={"action": "accept", "extra": 1}, headers=crm), 400)
    problem(await client.post(url, content=b"{not json", headers=crm), 400)
    problem(await client.post(f"{API}/NOPE/disposition", json={"action": "accept"}, headers=crm), 404)
    problem(await client.post(f"{API}/L-REP2/disposition", json={"action": "accept"}, headers=crm), 404)
    assert await stamps(db, "L-OLD") == (None, None, None, None)

    # A CRM pushes a rejection made on Friday.
    done = await client.post(
        url,
        json={"action": "reject", "reason": "wrong persona", "at": "2026-11-20T14:30:00-05:00"},
        headers=crm,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "external_id": "L-OLD", "action": "reject", "at": "2026-11-20T19:30:00Z", "reason": "wrong persona",
    }  # fmt: skip
    assert await stamps(db, "L-OLD") == (None, at("2026-11-20T19:30Z"), "wrong persona", None)
    event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "lead.reject"))
    assert event is not None and event.actor == "rep@example.com (token crm)"

    again = problem(await client.post(url, json={"action": "recycle"}, headers=crm), 409)
    assert "L-OLD" in again["detail"] and "rejected" in again["detail"]

    # A leader's token: 403 on the team's leads; an admin's integration token works any lead.
    problem(
        await client.post(
            f"{API}/L-SOON/disposition",
            json={"action": "accept"},
            headers=await token(db, c.leader, "import"),
        ),
        403,
    )
    admin = await token(db, c.admin, "import")
    assert (
        await client.post(f"{API}/L-SOON/disposition", json={"action": "recycle"}, headers=admin)
    ).status_code == 200
    assert (await stamps(db, "L-SOON"))[3] == NOW


async def test_bulk_dispositions_are_all_or_nothing(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    crm = await token(db, c.rep, "import")
    url = f"{API}/dispositions"
    body = problem(
        await client.post(url, json={"leads": ["L-OLD", "L-DONE", "L-SQL"], "action": "accept"}, headers=crm),
        409,
    )
    assert (
        "L-DONE" in body["detail"] and "L-SQL" in body["detail"] and "Nothing was changed" in body["detail"]
    )
    body = problem(
        await client.post(url, json={"leads": ["L-OLD", "L-X", "L-REP2"], "action": "accept"}, headers=crm),
        404,
    )
    assert "L-X" in body["detail"] and "L-REP2" in body["detail"]
    problem(await client.post(url, json={"leads": [], "action": "accept"}, headers=crm), 422)
    problem(await client.post(url, json={"leads": [""], "action": "accept"}, headers=crm), 422)
    problem(await client.post(url, json={"leads": "L-OLD", "action": "accept"}, headers=crm), 400)
    assert await stamps(db, "L-OLD") == (None, None, None, None)

    done = await client.post(
        url, json={"leads": ["L-OLD", "L-SOON", "L-OLD"], "action": "accept"}, headers=crm
    )
    assert done.status_code == 200, done.text
    assert [d["external_id"] for d in done.json()["dispositions"]] == ["L-OLD", "L-SOON"]
    assert (await stamps(db, "L-OLD"))[0] == NOW and (await stamps(db, "L-SOON"))[0] == NOW
    count = await db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "lead.accept")
    )
    assert count == 2
    queue = await client.get(f"{API}/queue", headers=await token(db, c.rep, "read"))
    assert [x["external_id"] for x in queue.json()["leads"]] == ["L-WEEKEND"]


async def test_openapi_documents_the_lead_api(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    for path, method in (
        (f"{API}/queue", "get"),
        (f"{API}/{{external_id}}/disposition", "post"),
        (f"{API}/dispositions", "post"),
    ):
        op = schema["paths"][path][method]
        assert op["summary"] and "leads" in op["tags"]
    assert {"403", "404", "409", "422"} <= set(schema["paths"][f"{API}/dispositions"]["post"]["responses"])
    assert not any(p.startswith("/leads") for p in schema["paths"])
