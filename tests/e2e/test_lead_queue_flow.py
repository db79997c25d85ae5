"""The lead queue in a browser, on the demo organisation: the demo rep opens /leads, sees the time left,
accepts one lead, rejects one with a reason, recycles one (each one click, htmx), and bulk-accepts two;
the rows go and nothing of them is left after a reload. Screenshots go to test-results/screenshots/
(leads-1280.png, leads-375.png).

Five fresh open MQLs are given to the rep first, straight into the database, so the test does not depend
on what the demo happens to leave open today."""

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.e2e.conftest import LiveServer, login, run_in_thread

from okr.db.engine import create_engine, session_factory
from okr.db.people import Person
from okr.db.pipeline import Account, Lead
from okr.demo.core import DEMO_PASSWORD
from okr.settings import Settings

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
REP = "rep@demo.okr.example"


async def _give_leads(settings: Settings, tag: str) -> list[str]:
    """Five open MQLs for the demo rep, an hour old; their emails."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as db:
            rep = await db.scalar(select(Person.id).where(Person.email == REP))
            assert rep is not None
            account = Account(external_id=f"E2E-ACC-{tag}", name="Queue Test Co")
            db.add(account)
            await db.flush()
            now = dt.datetime.now(dt.UTC)
            emails = [f"e2e-{tag}-{n}@queue.example" for n in range(1, 6)]
            for n, email in enumerate(emails, 1):
                db.add(
                    Lead(
                        external_id=f"E2E-{tag}-{n}",
                        account_id=account.id,
                        email=email,
                        owner_id=rep,
                        created_at=now - dt.timedelta(hours=2),
                        mql_at=now - dt.timedelta(hours=1, minutes=n),
                    )
                )
            await db.commit()
            return emails
    finally:
        await engine.dispose()


def _settings(live_server: LiveServer) -> Settings:
    settings: Settings = live_server.server.config.app.state["settings"]
    return settings


def test_a_rep_works_the_queue(page: Any, live_server: LiveServer, browser: Any) -> None:
    tag = str(int(time.time() * 1000) % 10**9)
    emails = run_in_thread(_give_leads, settings=_settings(live_server), tag=tag)
    login(page, REP, DEMO_PASSWORD)
    page.goto("/leads")
    assert page.get_by_role("heading", name="Your lead queue").is_visible()
    queue = page.locator("#lead-queue")
    for email in emails:
        assert queue.locator("tr", has_text=email).count() == 1
    left = queue.locator("tr", has_text=emails[0]).locator(".lead-left").inner_text()
    assert re.search(r"(\d+ h )?(\d+ min )?left|overdue by", left), left
    assert re.search(r"Pending|Due soon|Breached", left), left
    page.screenshot(path=str(SHOTS / "leads-1280.png"), full_page=False)

    # One click each: accept, reject with a reason, recycle.
    page.get_by_role("button", name=f"Accept {emails[0]}", exact=True).click()
    done = queue.locator("tr.lead-done", has_text=emails[0])
    assert "Accepted" in done.inner_text() and done.get_by_role("button", name="Undo").is_visible()

    page.get_by_label(f"Reason to reject {emails[1]}").select_option("duplicate")
    page.get_by_role("button", name=f"Reject {emails[1]}", exact=True).click()
    assert "reason: duplicate" in queue.locator("tr.lead-done", has_text=emails[1]).inner_text()

    page.get_by_role("button", name=f"Recycle {emails[2]} to nurture").click()
    assert "Recycled to nurture" in queue.locator("tr.lead-done", has_text=emails[2]).inner_text()

    # The confirmations remove themselves after a few seconds.
    queue.locator("tr", has_text=emails[0]).wait_for(state="detached", timeout=15_000)

    # Bulk: select two and accept them in one request.
    page.get_by_label(f"Select {emails[3]}").check()
    page.get_by_label(f"Select {emails[4]}").check()
    page.locator("#lead-bulk button[value=accept]").click()
    page.get_by_text("Accepted 2 leads.").wait_for()
    queue = page.locator("#lead-queue")
    for email in emails[3:]:
        assert queue.locator("tr", has_text=email).count() == 0

    page.reload()
    body = page.locator("#lead-queue").inner_text()
    assert not any(email in body for email in emails)

    phone = browser.new_context(
        base_url=live_server.url, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    try:
        small = phone.new_page()
        login(small, REP, DEMO_PASSWORD)
        small.goto("/leads")
        assert small.get_by_role("heading", name="Your lead queue").is_visible()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 380, f"the page scrolls sideways on a phone ({width} px)"
        small.screenshot(path=str(SHOTS / "leads-375.png"), full_page=True)
    finally:
        phone.close()
