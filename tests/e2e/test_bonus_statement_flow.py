"""Bonus statements in a browser, on the demo organisation: a rep opens their statement from
/bonus/statements, reads the line and the deal trace, and asks finance about the line (htmx); finance
finds the open inquiry on the run's list and answers it in the thread; the rep sees the answer. Another
rep gets 404 on the statement. Screenshots go to test-results/screenshots/ (bonus-statement-*).

The run is set up through the services (an approved plan version that funds the rep's team alone, with
a flat gate so the pool is never 0, computed, submitted by one finance user and approved by the other):
what the browser tests here is the statement and the inquiry, not the run page, which has its own test."""

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tests.e2e.conftest import LiveServer, login, run_in_thread
from tests.integration.bonus.bonus_data import plan_row

from okr.bonus import services as bonus
from okr.db.bonus import BonusLine, BonusPlan, BonusRun, BonusTrace, PlanStatus, RunState
from okr.db.engine import create_engine, session_factory
from okr.db.people import Person, Team
from okr.demo.core import DEMO_PASSWORD
from okr.lib.errors import Conflict
from okr.lib.periods import quarter_of
from okr.people.services import load_current_user
from okr.periods.services import ensure_periods
from okr.settings import Settings

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
REP = "rep@demo.okr.example"
OTHER = "marketer@demo.okr.example"  # another member
FINANCE = "finance@demo.okr.example"
APPROVER = "finance.approver@demo.okr.example"

_RUNS: dict[str, tuple[int, int]] = {}


async def _approved_run(settings: Settings) -> tuple[int, int]:
    """(run id, rep id) of an approved run in which the demo rep earned something from traced deals."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as db:
            rep = await db.scalar(select(Person).where(Person.email == REP))
            assert rep is not None
            team = await db.scalar(select(Team.name).where(Team.id == rep.team_id))
            users = {}
            for email in (FINANCE, APPROVER):
                pid = await db.scalar(select(Person.id).where(Person.email == email))
                assert pid is not None
                users[email] = await load_current_user(db, pid)
            today = dt.datetime.now(dt.UTC).astimezone(settings.tz).date()
            now = quarter_of(today, settings.fiscal_year_start_month)
            for back in (1, 2, 3, 0):
                quarter = now.shift(-back)
                first, last = quarter.dates(settings.fiscal_year_start_month)
                await ensure_periods(db, settings=settings, first=first, last=last, today=today)
                period = await bonus.period_by_key(db, quarter.key)
                version = await db.scalar(
                    select(func.max(BonusPlan.version)).where(BonusPlan.period_id == period.id)
                )
                db.add(
                    plan_row(
                        period.id,
                        version=(version or 0) + 1,
                        status=PlanStatus.APPROVED,
                        gate_curve=[["0", "1"]],
                        teams=[{"team": team, "share": "1", "rule": "by_credit"}],
                        created_at=dt.datetime.now(dt.UTC),
                        approved_at=dt.datetime.now(dt.UTC),
                        kr_cap=Decimal("1.5"),
                    )
                )
                await db.commit()
                try:
                    run = await bonus.create_run(
                        db, settings=settings, period_key=quarter.key, user=users[FINANCE]
                    )
                except Conflict:  # locked already (the run flow's test): try another quarter
                    await db.rollback()
                    continue
                await bonus.compute_run(db, settings=settings, run_id=run.id)
                await db.commit()
                earned = await db.scalar(
                    select(BonusLine.amount).where(
                        BonusLine.run_id == run.id, BonusLine.person_id == rep.id, BonusLine.kind == "earning"
                    )
                )
                traced = await db.scalar(
                    select(func.count()).where(BonusTrace.run_id == run.id, BonusTrace.person_id == rep.id)
                )
                if not earned or not traced:
                    continue
                await bonus.submit_run(db, run_id=run.id, user=users[FINANCE])  # type: ignore[arg-type]
                await bonus.approve_run(db, run_id=run.id, user=users[APPROVER])  # type: ignore[arg-type]
                await db.commit()
                assert (await db.get_one(BonusRun, run.id)).state == RunState.APPROVED
                return run.id, rep.id
    finally:
        await engine.dispose()
    raise AssertionError("no quarter of the demo gave the rep a traced earning")


def approved_run(live_server: LiveServer) -> tuple[int, int]:
    """Set up once per database (the live server's settings say which)."""
    if live_server.url not in _RUNS:
        settings = live_server.server.config.app.state["settings"]
        _RUNS[live_server.url] = run_in_thread(_approved_run, settings=settings)
    return _RUNS[live_server.url]


def test_a_rep_asks_about_a_line_and_finance_answers(browser: Any, live_server: LiveServer) -> None:
    run_id, rep_id = approved_run(live_server)
    rep_ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    fin_ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    other_ctx = browser.new_context(
        base_url=live_server.url, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    phone_ctx = browser.new_context(
        base_url=live_server.url, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    contexts = (rep_ctx, fin_ctx, other_ctx, phone_ctx)
    for ctx in contexts:
        ctx.set_default_timeout(15_000)
    try:
        rep = rep_ctx.new_page()
        login(rep, REP, DEMO_PASSWORD)
        rep.goto("/bonus/statements")
        row = rep.locator(f"#statement-run-{run_id}")
        assert "DRAFT" in row.inner_text()
        row.get_by_role("link").click()
        rep.wait_for_url(re.compile(rf"/bonus/runs/{run_id}/statements/{rep_id}$"))
        assert "DRAFT" in rep.locator("#statement-draft").inner_text()
        assert rep.locator("#figure-payable").inner_text().startswith("USD ")
        assert "Credit" in rep.locator("#earning-line").inner_text()
        assert "= USD " in rep.locator("#pool-formula").inner_text()
        deals = rep.locator("#trace-deals tbody tr")
        assert deals.count() >= 1
        journey = deals.first.get_by_role("link").get_attribute("href")
        assert journey and journey.startswith("/attribution/opportunities/") and "model=linear" in journey
        rep.screenshot(path=str(SHOTS / "bonus-statement-rep.png"), full_page=True)

        # Ask about the earning line: the form swaps in place for the confirmation.
        earning = rep.locator("#statement-earning")
        earning.get_by_text("Ask finance about this line").click()
        earning.get_by_label("Subject").fill("Is my split on the first deal right?")
        earning.get_by_label("Your question").fill("I expected a larger share of this deal.")
        earning.get_by_role("button", name="Send to finance").click()
        earning.get_by_text("Sent to finance").wait_for()
        thread_link = earning.get_by_role("link", name="Follow the thread")
        inquiry_url = thread_link.get_attribute("href")
        assert inquiry_url and re.fullmatch(r"/bonus/inquiries/\d+", inquiry_url)

        # Finance: the run's open inquiries, then the answer in place.
        fin = fin_ctx.new_page()
        login(fin, FINANCE, DEMO_PASSWORD)
        fin.goto(f"/bonus/runs/{run_id}/inquiries")
        assert "1 open" in fin.locator("#run-inquiries-title").inner_text()
        fin.get_by_role("link", name="Is my split on the first deal right?").click()
        fin.wait_for_url(re.compile(re.escape(inquiry_url) + "$"))
        assert "Open" in fin.locator("#inquiry-status").inner_text()
        fin.get_by_label("Answer").fill("The split follows the CRM: 100 % yours on that deal.")
        fin.get_by_role("button", name="Send the answer").click()
        fin.locator("#inquiry-status", has_text="Answered").wait_for()
        assert fin.locator("#inquiry-messages li").count() == 2
        fin.screenshot(path=str(SHOTS / "bonus-statement-inquiry-finance.png"), full_page=True)

        # The rep sees the answer.
        rep.goto(inquiry_url)
        assert "Answered" in rep.locator("#inquiry-status").inner_text()
        assert "The split follows the CRM" in rep.locator("#inquiry-messages").inner_text()
        rep.goto(f"/bonus/runs/{run_id}/statements/{rep_id}")
        assert "Answered" in rep.locator("#statement-inquiries").inner_text()

        # Another member, on a phone: the statement and the thread do not exist for them.
        other = other_ctx.new_page()
        login(other, OTHER, DEMO_PASSWORD)
        response = other.goto(f"/bonus/runs/{run_id}/statements/{rep_id}")
        assert response is not None and response.status == 404
        response = other.goto(inquiry_url)
        assert response is not None and response.status == 404

        # The rep's statement on a phone: nothing scrolls sideways.
        mobile = phone_ctx.new_page()
        login(mobile, REP, DEMO_PASSWORD)
        mobile.goto(f"/bonus/runs/{run_id}/statements/{rep_id}")
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the statement scrolls sideways on a phone ({width}px)"
        mobile.screenshot(path=str(SHOTS / "bonus-statement-phone.png"), full_page=True)
    finally:
        for ctx in contexts:
            ctx.close()
