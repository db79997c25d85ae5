"""A leader reads the SLA board, switches period in place, edits the policy (an inline error, then a valid
save) and sees the board judge by the new rule."""

import re
from typing import Any

from tests.e2e.conftest import login

from okr.demo.core import DEMO_PASSWORD

LEADER = "vp.sales@demo.okr.example"


def test_board_switch_period_and_edit_the_policy(page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/sla")
    assert page.locator("h1").inner_text() == "SLA board"
    board = page.locator("#sla-board")
    current = board.locator("h2").inner_text()
    assert "business hours" in board.inner_text()

    # Switch to the previous period in place: the address follows, the page is not reloaded.
    page.evaluate("window.__okr_marker = 'sla'")
    select = page.locator("select[name=period]")
    options = select.locator("option").all_inner_texts()
    previous = options[options.index(current) + 1]
    select.select_option(previous)
    page.wait_for_url(re.compile(rf"/sla\?period={previous}"))
    page.locator("#sla-board h2", has_text=previous).wait_for()
    assert page.evaluate("window.__okr_marker") == "sla"

    # Back to the current period; open its policy.
    select.select_option(current)
    page.locator("#sla-board h2", has_text=current).wait_for()
    page.locator("#sla-board").get_by_role("link", name=re.compile("(Set|Change) the policy")).click()
    page.wait_for_url(re.compile(r"/sla/policy\?period="))

    # An inline error first: no working day ticked.
    for box in page.locator("input[name=weekdays]").all():
        box.uncheck()
    page.get_by_label("Follow-up within (business hours)").fill("8")
    page.get_by_role("button", name="Save the policy").click()
    error = page.locator("#field-weekdays-error")
    error.wait_for()
    assert error.inner_text() == "Tick at least one working day."

    # Then a valid save: Monday to Saturday, 8 business hours, 250 MQLs a month.
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"):
        page.get_by_label(day).check()
    page.get_by_label("MQLs per month marketing commits").fill("250")
    page.get_by_role("button", name="Save the policy").click()
    page.wait_for_url(re.compile(r"/sla\?period=.*saved=1"))
    assert "saved" in page.locator(".notice").first.inner_text()
    rule = page.locator(".sla-rule").inner_text()
    assert "8 business hours (Mon-Sat 09:00-17:00" in rule and "250" in rule
    assert "committed" in page.locator("#sla-board").inner_text()
    page.screenshot(path="test-results/sla-board.png", full_page=True)
