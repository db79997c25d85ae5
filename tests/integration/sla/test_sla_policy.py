"""The SLA policy page and the reject reasons over HTTP: defaults, save, inline errors, a stale version
(409), a closed period, who may write (members 403, leaders and admins yes), audit events."""

import re
from collections.abc import Iterator
from html import unescape

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login, make_person
from tests.integration.sla.sla_data import NOW

from okr.db.audit import AuditEvent
from okr.db.people import Period
from okr.db.sla import RejectionReason, SlaPolicy
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.sla import services as sla

Client = AsyncTestClient[Litestar]
VALID = {
    "follow_up_hours": "8",
    "weekdays": ["0", "1", "2", "3"],
    "day_start": "08:30",
    "day_end": "00:00",
    "acceptance_target": "85.5",
    "mql_commitment": "120",
}


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    set_clock(lambda: NOW)
    kpis.clear_cache()
    sla.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    sla.clear_cache()


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def post(client: Client, url: str, data: dict[str, object]) -> object:
    form = {"_csrf_token": await csrf_token(client), **data}
    return await client.post(url, data=form, follow_redirects=False)  # type: ignore[arg-type]


async def as_(client: Client, db: AsyncSession, email: str, role: str) -> None:
    await make_person(db, email=email, role=role)
    assert (await login(client, email)).status_code == 303


async def test_a_leader_saves_the_policy(client: Client, db: AsyncSession) -> None:
    await as_(client, db, "lead@example.com", "leader")
    page = await client.get("/sla/policy?period=2026-Q3")
    assert page.status_code == 200
    assert "No policy saved for 2026-Q3." in text(page.text) and "America/New_York" in page.text
    saved = await post(client, "/sla/policy?period=2026-Q3", {**VALID, "version": "0"})
    assert saved.status_code == 303 and saved.headers["location"] == "/sla?period=2026-Q3&saved=1"  # type: ignore[attr-defined]
    stored = (await db.scalars(select(SlaPolicy))).one()
    assert (stored.follow_up_hours, stored.weekdays, stored.day_start_minute, stored.day_end_minute) == (
        8,
        [0, 1, 2, 3],
        510,
        1440,
    )
    assert (str(stored.acceptance_target.normalize()), stored.mql_commitment, stored.version) == (
        "0.855",
        120,
        1,
    )
    event = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "sla_policy.save"))).one()
    assert event.before is None and event.after is not None and event.after["follow_up_hours"] == 8
    board = await client.get("/sla?period=2026-Q3&saved=1")
    assert "8 business hours (Mon-Thu 08:30-24:00, America/New_York)" in board.text
    assert "SLA policy for 2026-Q3 saved." in text(board.text)
    # Someone saved version 1 meanwhile: a second save of version 0 is stale.
    stale = await post(
        client, "/sla/policy?period=2026-Q3", {**VALID, "follow_up_hours": "9", "version": "0"}
    )
    assert stale.status_code == 409  # type: ignore[attr-defined]
    assert "changed by someone else since you opened it" in text(stale.text)  # type: ignore[attr-defined]
    again = await post(
        client, "/sla/policy?period=2026-Q3", {**VALID, "follow_up_hours": "9", "version": "1"}
    )
    assert again.status_code == 303  # type: ignore[attr-defined]
    await db.commit()  # end the test session's read snapshot
    await db.refresh(stored)
    assert (stored.follow_up_hours, stored.version) == (9, 2)


async def test_inline_errors(client: Client, db: AsyncSession) -> None:
    await as_(client, db, "admin@example.com", "admin")
    bad = {**VALID, "follow_up_hours": "0", "weekdays": [], "day_start": "18:00", "day_end": "09:00"}
    refused = await post(client, "/sla/policy?period=2026-Q3", {**bad, "acceptance_target": "120"})
    assert refused.status_code == 422  # type: ignore[attr-defined]
    words = text(refused.text)  # type: ignore[attr-defined]
    assert "Enter a whole number of business hours from 1 to 720." in words
    assert "Tick at least one working day." in words
    assert "The working day must end after it starts (18:00)." in words
    assert "Enter a percentage from 0 to 100" in words
    assert 'aria-invalid="true"' in refused.text  # type: ignore[attr-defined]
    assert (await db.scalar(select(SlaPolicy.id))) is None


async def test_members_read_and_a_closed_period_is_read_only(client: Client, db: AsyncSession) -> None:
    await as_(client, db, "member@example.com", "member")
    page = await client.get("/sla/policy?period=2026-Q3")
    assert page.status_code == 200 and "Only leaders and admins change the SLA policy" in text(page.text)
    assert (await post(client, "/sla/policy?period=2026-Q3", {**VALID, "version": "0"})).status_code == 403  # type: ignore[attr-defined]
    assert (await post(client, "/sla/reasons", {"name": "too small"})).status_code == 403  # type: ignore[attr-defined]
    await as_(client, db, "lead@example.com", "leader")
    await client.get("/sla/policy?period=2026-Q2")
    db.add(
        Period(
            key="2026-Q2",
            start_date=NOW.date().replace(month=4, day=1),
            end_date=NOW.date().replace(month=6, day=30),
            state="closed",
        )
    )
    await db.commit()
    closed = await client.get("/sla/policy?period=2026-Q2")
    assert "2026-Q2 is closed: its SLA policy is read-only." in text(closed.text)
    assert "Save the policy" not in closed.text
    refused = await post(client, "/sla/policy?period=2026-Q2", {**VALID, "version": "0"})
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "2026-Q2 is closed" in text(refused.text)  # type: ignore[attr-defined]


async def test_editing_the_reject_reasons(client: Client, db: AsyncSession) -> None:
    await as_(client, db, "lead@example.com", "leader")
    page = await client.get("/sla/reasons")
    assert page.status_code == 200 and "no budget" in page.text  # DESIGN 5's list, seeded
    reasons = {r.name: r.id for r in (await db.scalars(select(RejectionReason))).all()}
    assert len(reasons) == 7
    await db.commit()
    assert (await post(client, "/sla/reasons", {"name": "  too   small "})).status_code == 303  # type: ignore[attr-defined]
    dup = await post(client, "/sla/reasons", {"name": "Too small"})
    assert dup.status_code == 422 and "“Too small” is already on the list" in text(dup.text)  # type: ignore[attr-defined]
    assert (
        await post(client, f"/sla/reasons/{reasons['competitor']}", {"name": "went with a competitor"})
    ).status_code == 303  # type: ignore[attr-defined]
    # Retire "no budget"; then "other" moves above the renamed reason.
    assert (
        await post(client, f"/sla/reasons/{reasons['no budget']}/active", {"active": "0"})
    ).status_code == 303  # type: ignore[attr-defined]
    assert (
        await post(client, f"/sla/reasons/{reasons['other']}/move", {"direction": "up"})
    ).status_code == 303  # type: ignore[attr-defined]
    await db.commit()
    db.expire_all()
    rows = (await db.scalars(select(RejectionReason).order_by(RejectionReason.position))).all()
    assert [r.name for r in rows if r.active] == [
        "no timeline", "wrong persona", "bad data", "duplicate", "other", "went with a competitor", "too small"
    ]  # fmt: skip
    assert [r.name for r in rows if not r.active] == ["no budget"]
    listed = text((await client.get("/sla/reasons")).text)
    assert "Retired no budget" in listed
    assert (
        await post(client, f"/sla/reasons/{reasons['no budget']}/active", {"active": "1"})
    ).status_code == 303  # type: ignore[attr-defined]
    await db.commit()
    actions = sorted(
        a for a in (await db.scalars(select(AuditEvent.action))).all() if a.startswith("sla_reason.")
    )
    assert actions == [
        "sla_reason.add",
        "sla_reason.move",
        "sla_reason.rename",
        "sla_reason.restore",
        "sla_reason.retire",
    ]
    reps_list = text((await client.get("/sla/reasons")).text)
    assert "No retired reasons." in reps_list
