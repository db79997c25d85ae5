"""The lead queue page (/leads): the rep's open MQLs by deadline with business time left, one-click and bulk
dispositions with htmx (stamped, audited, 409 and 422 shown in place), undo, and who may see and work what."""

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login
from tests.integration.leads.leads_data import NOW, cast

from okr.db.audit import AuditEvent
from okr.db.pipeline import Lead
from okr.leads import services as leads
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Monday 23 November 2026, 10:00 in New York."""
    set_clock(lambda: NOW)
    yield
    set_clock(None)


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def rows(html: str) -> list[str]:
    """The external ids of the queue's rows, in order."""
    return re.findall(r'class="sub">[^<·]*· (L-[A-Z0-9]+)<', html)


async def post(client: Client, url: str, data: dict[str, Any] | None = None, *, htmx: bool = True) -> Any:
    headers = {"x-csrftoken": await csrf_token(client), **(HX if htmx else {})}
    return await client.post(url, data=data or {}, headers=headers, follow_redirects=False)


async def lead(db: AsyncSession, lead_id: int) -> Lead:
    await db.rollback()  # a fresh snapshot: the app committed in its own session
    found = await db.get(Lead, lead_id)
    assert found is not None
    return found


async def events(db: AsyncSession, lead_id: int) -> list[AuditEvent]:
    await db.rollback()
    found = await db.scalars(
        select(AuditEvent).where(AuditEvent.entity == "lead", AuditEvent.entity_id == str(lead_id))
    )
    return list(found)


async def test_queue_lists_the_reps_open_mqls_by_deadline_in_business_time(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    queue = await leads.lead_queue(db, settings=settings, user=c.rep)
    assert [i.external_id for i in queue.items] == ["L-OLD", "L-SOON", "L-WEEKEND"]
    assert [(i.left_text, i.state) for i in queue.items] == [
        ("overdue by 15 h 40 min", "breached"),
        ("2 h left", "due_soon"),
        ("22 h 40 min left", "pending"),  # Friday 16:40: 20 min that day, the weekend does not count
    ]
    weekend = queue.items[2]
    assert weekend.due.isoformat() == "2026-11-25T21:40:00+00:00"  # Wednesday 16:40 New York
    assert (weekend.campaign, weekend.channel) == ("Campaign WEB", "webinar")  # the touch before the MQL

    assert (await login(client, "rep@example.com")).status_code == 303
    page = await client.get("/leads")
    assert page.status_code == 200
    assert rows(page.text) == ["L-OLD", "L-SOON", "L-WEEKEND"]
    words = text(page.text)
    assert "Your lead queue" in words
    assert "24 business hours (Mon-Fri 09:00-17:00, America/New_York)" in words
    assert "overdue by 15 h 40 min ✕ Breached" in words and "22 h 40 min left ◷ Pending" in words
    assert "2 h left ⚠ Due soon" in words and "Campaign LATE" not in words
    assert "3 open ✕ 1 breached ⚠ 1 due soon ◷ 1 pending" in words
    # The 60 s poll gets the list only.
    poll = await client.get("/leads", headers=HX)
    assert poll.text.lstrip().startswith('<section id="lead-queue"') and "<html" not in poll.text
    assert rows(poll.text) == ["L-OLD", "L-SOON", "L-WEEKEND"]


async def test_each_action_stamps_audits_and_removes_the_lead(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    await login(client, "rep@example.com")
    ids = c.leads

    accepted = await post(client, f"/leads/{ids['L-OLD']}/accept")
    assert accepted.status_code == 200
    assert "Accepted l-old@example.com (Account ACME)" in text(accepted.text) and "Undo" in accepted.text
    assert (await lead(db, ids["L-OLD"])).accepted_at == NOW

    missing = await post(client, f"/leads/{ids['L-SOON']}/reject", {"reason": ""})
    assert missing.status_code == 422 and missing.headers["x-leads-swap"] == "1"
    assert "Pick a reason to reject the lead." in text(missing.text) and 'aria-invalid="true"' in missing.text
    wrong = await post(client, f"/leads/{ids['L-SOON']}/reject", {"reason": "too cold"})
    assert wrong.status_code == 422 and "“too cold” is not one of the reject reasons." in text(wrong.text)
    assert (await lead(db, ids["L-SOON"])).rejected_at is None

    rejected = await post(client, f"/leads/{ids['L-SOON']}/reject", {"reason": "No Budget"})
    assert rejected.status_code == 200 and "reason: no budget" in text(rejected.text)
    row = await lead(db, ids["L-SOON"])
    assert (row.rejected_at, row.rejection_reason) == (NOW, "no budget")

    recycled = await post(client, f"/leads/{ids['L-WEEKEND']}/recycle")
    assert recycled.status_code == 200 and "Recycled to nurture" in text(recycled.text)
    assert (await lead(db, ids["L-WEEKEND"])).recycled_at == NOW

    [accept_event] = await events(db, ids["L-OLD"])
    assert (accept_event.action, accept_event.actor, accept_event.before, accept_event.after) == (
        "lead.accept", "rep@example.com", {"external_id": "L-OLD", "accepted_at": None},
        {"external_id": "L-OLD", "accepted_at": NOW.isoformat()},
    )  # fmt: skip
    [reject_event] = await events(db, ids["L-SOON"])
    assert reject_event.action == "lead.reject" and reject_event.after is not None
    assert reject_event.after["rejection_reason"] == "no budget"
    assert [e.action for e in await events(db, ids["L-WEEKEND"])] == ["lead.recycle"]

    page = await client.get("/leads")
    assert rows(page.text) == [] and "No open MQLs" in text(page.text)

    # Acting on a lead that is not open any more: 409, the reason in place, nothing changes.
    again = await post(client, f"/leads/{ids['L-OLD']}/recycle")
    assert again.status_code == 409 and again.headers["x-leads-swap"] == "1"
    assert "L-OLD (l-old@example.com) was accepted at 2026-11-23 15:00 UTC" in text(again.text)
    assert (await lead(db, ids["L-OLD"])).recycled_at is None

    # Undo within the minute puts the lead back (audited); later it is too late.
    undone = await post(client, f"/leads/{ids['L-SOON']}/undo")
    assert undone.status_code == 200 and "Restored to the queue." in text(undone.text)
    row = await lead(db, ids["L-SOON"])
    assert (row.rejected_at, row.rejection_reason) == (None, None)
    assert [e.action for e in await events(db, ids["L-SOON"])] == ["lead.reject", "lead.undo"]
    set_clock(lambda: NOW.replace(minute=5))
    late = await post(client, f"/leads/{ids['L-OLD']}/undo")
    assert late.status_code == 409 and "Too late to undo" in text(late.text)

    # Without JavaScript the form posts and comes back to the page.
    plain = await post(client, f"/leads/{ids['L-SOON']}/accept", htmx=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/leads"


async def test_bulk_is_all_or_nothing(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    await login(client, "rep@example.com")
    ids = c.leads
    picked = [ids["L-OLD"], ids["L-SOON"], ids["L-DONE"]]
    refused = await post(client, "/leads/bulk", {"action": "accept", "lead": picked})
    assert refused.status_code == 409
    assert "Not open any more: L-DONE (l-done@example.com) was accepted" in text(refused.text)
    assert "Nothing was changed" in text(refused.text)
    assert refused.text.count("checked") >= 2  # the selection survives the refusal
    assert (await lead(db, ids["L-OLD"])).accepted_at is None

    other = await post(client, "/leads/bulk", {"action": "accept", "lead": [ids["L-OLD"], ids["L-REP2"]]})
    assert other.status_code == 404 and "L-REP2" in text(other.text)
    none = await post(client, "/leads/bulk", {"action": "accept"})
    assert none.status_code == 422 and "Select at least one lead." in text(none.text)
    no_reason = await post(client, "/leads/bulk", {"action": "reject", "lead": [ids["L-OLD"]]})
    assert no_reason.status_code == 422 and "Pick a reason" in text(no_reason.text)

    done = await post(
        client,
        "/leads/bulk",
        {"action": "reject", "reason": "duplicate", "lead": [ids["L-OLD"], ids["L-SOON"]]},
    )
    assert done.status_code == 200 and "Rejected 2 leads (reason: duplicate)." in text(done.text)
    assert rows(done.text) == ["L-WEEKEND"]
    for key in ("L-OLD", "L-SOON"):
        row = await lead(db, ids[key])
        assert (row.rejected_at, row.rejection_reason) == (NOW, "duplicate")
        assert [e.action for e in await events(db, ids[key])] == ["lead.reject"]


async def test_who_may_see_and_work_which_queue(client: Client, db: AsyncSession) -> None:
    c = await cast(db)
    ids = c.leads
    # A rep: another rep's queue and lead do not exist for them.
    await login(client, "rep2@example.com")
    assert (await client.get(f"/leads?person={c.rep.id}")).status_code == 404
    assert (await post(client, f"/leads/{ids['L-OLD']}/accept")).status_code == 404
    assert (await lead(db, ids["L-OLD"])).accepted_at is None
    assert rows((await client.get("/leads")).text) == ["L-REP2"]

    # A leader sees their team's queues read-only (403 on acting), not other teams'.
    client.cookies.clear()
    await login(client, "lead@example.com")
    seen = await client.get(f"/leads?person={c.rep.id}")
    assert seen.status_code == 200 and rows(seen.text) == ["L-OLD", "L-SOON", "L-WEEKEND"]
    assert "read-only" in text(seen.text) and "/accept" not in seen.text and 'name="lead"' not in seen.text
    forbidden = await post(client, f"/leads/{ids['L-OLD']}/accept")
    assert forbidden.status_code == 403
    bulk = await post(client, "/leads/bulk", {"action": "recycle", "lead": [ids["L-OLD"]]})
    assert bulk.status_code == 403 and "work only your own leads" in text(bulk.text)
    assert (await lead(db, ids["L-OLD"])).accepted_at is None
    client.cookies.clear()
    await login(client, "mlead@example.com")
    assert (await client.get(f"/leads?person={c.rep.id}")).status_code == 404
    assert (await client.get("/leads?person=999999")).status_code == 404

    # An admin sees and works anyone's queue.
    client.cookies.clear()
    await login(client, "admin@example.com")
    theirs = await client.get(f"/leads?person={c.rep.id}")
    assert theirs.status_code == 200 and f"/leads/{ids['L-OLD']}/accept" in theirs.text
    assert f'name="person" value="{c.rep.id}"' in theirs.text
    worked = await post(client, f"/leads/{ids['L-OLD']}/accept", {"person": str(c.rep.id)})
    assert worked.status_code == 200
    assert (await lead(db, ids["L-OLD"])).accepted_at == NOW
    [event] = await events(db, ids["L-OLD"])
    assert event.actor == "admin@example.com"
