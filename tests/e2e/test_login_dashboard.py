"""A person logs in as each demo role, reads the dashboard, switches the period in place and drills down."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from tests.e2e.conftest import login

from okr.demo.core import DEMO_LOGINS, DEMO_PASSWORD
from okr.lib.periods import parse_key

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
TILES = ["revenue_won", "pipeline_created", "pipeline_sourced_marketing", "mqls", "sqls", "win_rate"]


@pytest.mark.parametrize(
    ("label", "email", "role"), DEMO_LOGINS, ids=[e.split("@")[0] for _, e, _ in DEMO_LOGINS]
)
def test_each_demo_login_reads_the_dashboard(page: Any, label: str, email: str, role: str) -> None:
    login(page, email, DEMO_PASSWORD)
    assert urlparse(page.url).path == "/", f"{email} landed on {page.url}"
    for name in TILES:
        figure = page.locator(f"#tile-{name} .tile-figure").inner_text().strip()
        assert re.search(r"\d", figure), f"{name} shows no number for {email}: {figure!r}"
    assert page.get_by_text(role).first.is_visible()


def test_period_switch_in_place_and_drill_down(page: Any) -> None:
    login(page, "vp.sales@demo.okr.example", DEMO_PASSWORD)
    current = page.locator("#period").input_value()
    previous = parse_key(current).shift(-1).key
    page.screenshot(path=str(SHOTS / "dashboard-laptop.png"), full_page=True)

    page.evaluate("window.__okr_marker = 1")  # survives only if the page is not reloaded
    page.select_option("#period", previous)
    page.wait_for_url(re.compile(rf"period={previous}"))
    page.locator("#period-title", has_text=previous).wait_for()
    assert page.evaluate("window.__okr_marker") == 1, "the period switch reloaded the page"

    won = page.locator("#tile-revenue_won .tile-figure a")
    shown = won.inner_text()
    won.click()
    page.wait_for_url(re.compile(r"/dashboard/records\?.*kpi=revenue_won"))
    assert previous in page.locator("h1").inner_text()
    rows = page.locator("table.data tbody tr")
    assert rows.count() > 0
    assert "Won" in rows.first.inner_text()
    # The records page names the same total the tile showed.
    assert page.locator("table.data caption").is_visible()
    assert shown


def test_dashboard_on_a_phone(phone_page: Any) -> None:
    login(phone_page, "rep@demo.okr.example", DEMO_PASSWORD)
    phone_page.locator("#tile-revenue_won").wait_for()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the dashboard scrolls sideways on a phone ({width}px)"
    phone_page.screenshot(path=str(SHOTS / "dashboard-phone.png"), full_page=True)


def test_wrong_password_shows_the_error_beside_the_form(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill("rep@demo.okr.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").first.is_visible()
    assert "/login" in page.url


def test_logout_ends_the_session(page: Any) -> None:
    login(page, "finance@demo.okr.example", DEMO_PASSWORD)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto("/")
    assert "/login" in page.url
