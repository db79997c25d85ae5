"""The funnel planner in a browser, on the demo organisation: a leader enters a revenue target, edits a
rate and sees the waterfall change in place (htmx, no reload), saves the plan, makes the joint objective
and finds it on /goals. Screenshots go to test-results/screenshots/ (planner-*)."""

import re
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
LEADER = "vp.sales@demo.okr.example"


def count(page: Any, stage: str) -> int:
    """A stage's count as the waterfall shows it."""
    return int(page.locator(f'[data-count="{stage}"]').inner_text().replace(",", ""))


def test_a_leader_plans_the_quarter_and_makes_the_joint_objective(page: Any, phone_page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/planner")
    assert page.locator("h1").inner_text() == "Funnel planner"
    # The trailing rates are filled in from the last two quarters.
    win_rate = page.get_by_label("Win rate")
    assert win_rate.input_value() != ""
    page.evaluate("window.__okr_marker = 'planner'")

    page.get_by_label("Revenue target").fill("2500000")
    page.locator('[data-count="deals"]').wait_for()
    deals, opportunities = count(page, "deals"), count(page, "opportunities")
    assert deals >= 1 and opportunities >= deals and count(page, "leads") >= count(page, "mqls")

    # Halve the win rate: the same deals need (about) twice the opportunities, swapped in place.
    halved = f"{float(win_rate.input_value()) / 2:.2f}"
    win_rate.fill(halved)
    page.wait_for_function(
        "n => Number(document.querySelector('[data-count=\"opportunities\"]').textContent.replace(/,/g, '')) > n",
        arg=opportunities,
    )
    assert count(page, "deals") == deals
    assert count(page, "opportunities") >= 2 * opportunities - 1
    assert page.evaluate("window.__okr_marker") == "planner", "the waterfall reloaded the page"
    page.screenshot(path=str(SHOTS / "planner-1280.png"), full_page=True)

    name = f"E2E plan {uuid.uuid4().hex[:6]}"
    page.get_by_label("Plan name").fill(name)
    page.get_by_role("button", name="Save the plan").click()
    page.wait_for_url(re.compile(r"/planner/plans/\d+$"))
    assert page.locator("h1").inner_text() == name
    assert "Plan vs actual" in page.content()
    assert page.locator("#actual-deals td").first.inner_text().replace(",", "") == str(deals)

    page.get_by_role("button", name="Create the joint objective").click()
    page.wait_for_url(re.compile(r"/planner/plans/\d+\?made=1$"))
    page.get_by_role("link", name="See it on Goals").click()
    page.wait_for_url(re.compile(r"/goals\?period=[^#]+#objective-\d+$"))
    found = re.search(r"#objective-(\d+)$", page.url)
    assert found
    card = page.locator(f"#objective-{found.group(1)}")
    text = card.inner_text()
    assert "Hit USD 2,500,000.00 of revenue" in text and "Joint objective" in text
    assert f"Win {deals} deals" in text and "MQLs" in text and "SQLs" in text

    login(phone_page, LEADER, DEMO_PASSWORD)
    phone_page.goto("/planner")
    phone_page.get_by_label("Revenue target").fill("2500000")
    phone_page.locator('[data-count="deals"]').wait_for()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the planner scrolls sideways on a phone ({width} px)"
    phone_page.screenshot(path=str(SHOTS / "planner-375.png"), full_page=True)
