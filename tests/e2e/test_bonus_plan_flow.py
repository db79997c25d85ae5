"""The bonus plan editor in a browser, on the demo organisation: a leader changes a rate, adds a gate-curve
point (the SVG curve redraws in place), gets the shares-must-sum-to-1 error beside the teams, fixes it and
saves a draft; an admin approves it; a member reads it on a phone. Screenshots go to
test-results/screenshots/ (bonus-plan-*)."""

import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
LEADER = "vp.marketing@demo.okr.example"
ADMIN = "admin@demo.okr.example"
REP = "rep@demo.okr.example"


def curve_line(page: Any) -> str:
    """The drawn curve's points."""
    return str(page.locator("#gate-curve polyline.curve").get_attribute("points"))


def test_a_leader_drafts_the_plan_and_an_admin_approves_it(page: Any, browser: Any, live_server: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/bonus/plan")
    editor = page.locator("#plan-editor")
    editor.wait_for()
    period = page.locator("#plan-period").input_value()
    assert re.fullmatch(r"\d{4}-Q[1-4]", period)
    assert (page.locator("#gate-curve-title").text_content() or "").startswith("Gate curve")
    assert page.locator("#gate-curve .marker").count() == 1  # the joint score is marked
    before = curve_line(page)
    points = page.locator('input[name="curve_score"]').count()

    # A rate, then a new point on the curve: the editor comes back with the empty row, the curve redraws.
    page.fill("#field-funding_rate", "0.035")
    page.get_by_role("button", name="+ Add a point").click()
    page.locator('input[name="curve_score"]').nth(points).wait_for()
    assert page.locator("#field-funding_rate").input_value() == "0.035"  # kept across the swap
    page.locator('input[name="curve_score"]').nth(points).fill("2.5")
    page.locator('input[name="curve_multiplier"]').nth(points).fill("3")
    page.wait_for_function(
        "() => (document.querySelector('#gate-curve desc') || {}).textContent.includes('at 2.5, ×3')"
    )
    after = curve_line(page)
    assert after != before
    assert page.locator("#gate-curve circle.point").count() == points + 1

    # Shares that do not add up to 1: refused, the reason beside the teams, everything as typed.
    shares = page.locator('input[name="team_share"]')
    count = shares.count()
    assert count >= 2
    shares.nth(0).fill("0.7")
    shares.nth(1).fill("0.4")
    for i in range(2, count):
        shares.nth(i).fill("0")
    page.get_by_role("button", name="Save as a new draft").click()
    error = page.locator("#err-teams")
    error.wait_for()
    assert "must add up to exactly 1 (they add up to 1.1)" in error.inner_text()
    assert page.locator('input[name="team_share"]').nth(0).get_attribute("aria-invalid") == "true"
    assert page.locator("#field-funding_rate").input_value() == "0.035"
    assert page.locator('input[name="curve_score"]').nth(points).input_value() == "2.5"
    page.screenshot(path=str(SHOTS / "bonus-plan-error-laptop.png"), full_page=True)

    # Fixed and saved: a new draft version, waiting for an admin.
    page.locator('input[name="team_share"]').nth(0).fill("0.6")
    page.get_by_role("button", name="Save as a new draft").click()
    page.wait_for_url(re.compile(r"/bonus/plan\?period=.+&saved=\d+"))
    version = int(re.search(r"saved=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    page.get_by_text(f"Saved as version {version}").wait_for()
    row = page.locator(f"#version-{version}")
    assert "Draft" in row.inner_text()
    assert page.get_by_role("button", name=re.compile("Approve")).count() == 0  # leaders do not approve
    page.screenshot(path=str(SHOTS / "bonus-plan-leader-laptop.png"), full_page=True)

    # The admin approves it: it is the plan in force.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    admin = context.new_page()
    try:
        login(admin, ADMIN, DEMO_PASSWORD)
        admin.goto(f"/bonus/plan?period={period}")
        admin.get_by_role("button", name=f"Approve version {version}").first.click()
        admin.wait_for_url(re.compile(rf"approved={version}"))
        admin.get_by_text(f"Version {version} approved").wait_for()
        assert "Approved" in admin.locator(f"#version-{version}").inner_text()
        assert f"Version {version}" in admin.locator(".plan-status").inner_text()
        admin.goto(f"/bonus/plan?period={period}")
        assert "at 2.5, ×3" in (admin.locator("#gate-curve desc").text_content() or "")
    finally:
        context.close()


def test_a_member_reads_the_plan_on_a_phone(phone_page: Any) -> None:
    login(phone_page, REP, DEMO_PASSWORD)
    phone_page.goto("/bonus/plan")
    phone_page.locator(".plan-status").wait_for()
    assert phone_page.locator("#plan-editor").count() == 0
    assert phone_page.get_by_role("button", name=re.compile("Approve")).count() == 0
    # Nothing sticks out of a 375 px screen.
    width = phone_page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, width
    phone_page.screenshot(path=str(SHOTS / "bonus-plan-member-phone.png"), full_page=True)


def test_the_editor_fits_a_phone(phone_page: Any) -> None:
    login(phone_page, LEADER, DEMO_PASSWORD)
    phone_page.goto("/bonus/plan")
    phone_page.locator("#plan-editor").wait_for()
    assert phone_page.locator('input[name="team_share"]').first.is_visible()
    width = phone_page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, width
    phone_page.screenshot(path=str(SHOTS / "bonus-plan-leader-phone.png"), full_page=True)
