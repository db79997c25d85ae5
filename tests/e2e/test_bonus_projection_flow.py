"""The bonus projection in a browser, on the demo organisation (it has an approved plan for today's quarter):
a rep opens /me, the page draws first and the projection loads into it (htmx, on load); the rep ticks an
open deal that the forecast counts at less than its full amount, recalculates in place, and sees the
projected amount go up while the earned amount stays. Screenshots: test-results/screenshots/bonus-projection-*.
"""

import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LiveServer, login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
REP = "rep@demo.okr.example"


def minor(text: str) -> int:
    """`USD 1,234.56` (or `+USD ...`) as minor units: the digits, sign kept; no float."""
    digits = re.sub(r"[^0-9]", "", text)
    assert digits, text
    return -int(digits) if text.strip().startswith("-") else int(digits)


def loaded(page: Any) -> None:
    """Wait until the projection has replaced its placeholder."""
    page.wait_for_selector("#bonus-projection:not(.projection-loading)")


def test_a_rep_sees_the_projection_and_asks_what_if(page: Any, live_server: LiveServer) -> None:
    login(page, REP, DEMO_PASSWORD)
    page.goto("/me")
    loaded(page)
    section = page.locator("#bonus-projection")
    assert section.get_attribute("data-state") == "ok"
    assert "Projection, not a promise" in section.inner_text()
    projected = minor(page.locator("#projection-projected").inner_text())
    earned = minor(page.locator("#projection-earned").inner_text())
    pipeline = minor(page.locator("#projection-pipeline").inner_text())
    assert projected == earned + pipeline and projected > 0

    # The deals are folded away so the figures stay on the first screen; open them.
    page.screenshot(path=str(SHOTS / "bonus-projection-1280.png"))
    page.locator("#projection-what-if-details summary").click()
    # A deal the forecast counts at less than all of it: closing it in full must raise the projection.
    row = page.locator("#projection-deals tbody tr:not([data-weight='1'])").first
    deal_id = row.get_attribute("data-deal")
    assert deal_id, "the demo rep has no open deal below commit"
    row.locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Recalculate").click()
    page.wait_for_function(
        "document.querySelector('#projection-status') && "
        "document.querySelector('#projection-status').textContent.includes('Recalculated')"
    )
    assert page.url.endswith("/me")  # swapped in place, no navigation
    after = minor(page.locator("#projection-projected").inner_text())
    assert after > projected
    assert minor(page.locator("#projection-earned").inner_text()) == earned
    assert page.locator(f"#close-{deal_id}").is_checked()
    assert "projection-closing" in (page.locator(f"#projection-deal-{deal_id}").get_attribute("class") or "")
    assert page.locator("#projection-what-if-details").get_attribute("open") is not None
    page.locator("#bonus-projection").screenshot(path=str(SHOTS / "bonus-projection-what-if-1280.png"))

    # Back to the forecast: the figure returns to where it was.
    page.get_by_role("link", name="Back to the forecast").click()
    page.wait_for_function(
        f"!document.querySelector('#close-{deal_id}') || !document.querySelector('#close-{deal_id}').checked"
    )
    assert minor(page.locator("#projection-projected").inner_text()) == projected


def test_the_projection_reads_on_a_phone(phone_page: Any, live_server: LiveServer) -> None:
    page = phone_page
    login(page, REP, DEMO_PASSWORD)
    page.goto("/me")
    loaded(page)
    assert page.locator("#projection-projected").is_visible()
    # Nothing wider than the screen: the deals table stacks into cards.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width
    page.locator("#bonus-projection").screenshot(path=str(SHOTS / "bonus-projection-375.png"))
    page.locator("#projection-what-if-details summary").click()
    assert page.get_by_role("button", name="Recalculate").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("#projection-deals tbody tr").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "bonus-projection-375-deals.png"))
