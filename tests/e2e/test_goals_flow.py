"""Goals in a browser, on the demo organisation: a leader creates a joint objective with a metric and a
manual key result through the forms; a rep checks in inline (htmx) and sees the value, confidence and
history change and the burn-up chart; the rep reads their personal page on a phone and a laptop, and a
leader their team's page. Screenshots go to test-results/screenshots/ (home-*, goals-*)."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from tests.e2e.conftest import LiveServer, login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
LEADER = "vp.sales@demo.okr.example"
LEADER_NAME = "Daniel Okafor"
REP = "rep@demo.okr.example"
REP_NAME = "Jordan Mitchell"
PHONE = {"width": 390, "height": 844}

# The objective the rep's tests need, created once per database through the forms.
_SHARED: dict[str, dict[str, int]] = {}


def create_objective(page: Any, title: str) -> int:
    """As a logged-in leader: a joint objective (sales and marketing) from the goals page; its id."""
    page.goto("/goals")
    page.get_by_role("link", name="Add an objective").first.click()
    page.wait_for_url(re.compile(r"/goals/objectives/new"))
    page.fill("#field-title", title)
    page.fill("#field-description", "Sales and marketing, one pipeline.")
    team = page.locator("#objective-form .goal-choices label", has_text="marketing").locator("input")
    team.check()
    page.get_by_role("button", name="Create the objective").click()
    page.wait_for_url(re.compile(r"/goals\?period=[^#]+#objective-\d+$"))
    found = re.search(r"#objective-(\d+)$", page.url)
    assert found, page.url
    return int(found.group(1))


def add_key_result(
    page: Any, objective_id: int, title: str, target: str, owners: list[str], metric: str | None = None
) -> int:
    """As a logged-in leader: a KR through its form (metric when `metric`, else manual); its id."""
    page.goto("/goals")
    page.locator(f"#objective-{objective_id}").get_by_role("link", name="Add a key result").first.click()
    page.wait_for_url(re.compile(rf"/goals/objectives/{objective_id}/key-results/new"))
    page.fill("#field-title", title)
    # The KPI and its filters show only for a metric key result.
    manual = page.locator('input[name="source"][value="manual"]')
    manual.check()
    assert not page.locator("#field-metric").is_visible()
    if metric:
        page.get_by_label("Metric (computed from pipeline data)").check()
        assert page.locator("#field-metric").is_visible()
        page.select_option("#field-metric", metric)
    page.fill("#field-target", target)
    page.select_option("#field-owner_ids", label=owners)
    page.get_by_role("button", name="Add the key result").click()
    page.wait_for_url(re.compile(r"/goals/key-results/\d+\?saved=1$"))
    page.get_by_text("Saved.").wait_for()
    found = re.search(r"/goals/key-results/(\d+)", page.url)
    assert found, page.url
    return int(found.group(1))


def shared_objective(browser: Any, live_server: LiveServer) -> dict[str, int]:
    """A joint objective whose KRs the rep owns: pipeline (metric), workshops and reference calls
    (manual); created by the VP sales through the forms the first time a test needs it."""
    if live_server.url not in _SHARED:
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            login(page, LEADER, DEMO_PASSWORD)
            o = create_objective(page, "One pipeline, one team")
            _SHARED[live_server.url] = {
                "objective": o,
                "pipeline": add_key_result(
                    page,
                    o,
                    "Pipeline created together",
                    "90000000",
                    [REP_NAME, LEADER_NAME],
                    "pipeline_created",
                ),
                "workshops": add_key_result(page, o, "Customer workshops", "10", [REP_NAME]),
                "calls": add_key_result(page, o, "Reference calls", "20", [REP_NAME]),
            }
        finally:
            context.close()
    return _SHARED[live_server.url]


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context 390 px wide (a current phone)."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def no_sideways_scroll(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > width:
        # Name the widest culprits, innermost first, so a failure says what to fix.
        culprits = page.evaluate(
            """w => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > w && ![...e.children].some(
                    c => c.getBoundingClientRect().right > w))
                .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' +
                    Math.round(e.getBoundingClientRect().right))""",
            width,
        )
        pytest.fail(f"{page.url} scrolls sideways at {width}px ({scroll}px wide): {culprits}")


def test_a_leader_creates_an_objective_with_two_key_results(page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    title = f"Own the mid-market {uuid.uuid4().hex[:6]}"
    objective = create_objective(page, title)
    card = page.locator(f"#objective-{objective}")
    assert title in card.inner_text() and "Joint objective" in card.inner_text()
    metric = add_key_result(
        page, objective, "Marketing-sourced pipeline", "25000000", [LEADER_NAME], "pipeline_sourced_marketing"
    )
    # The KR page says where its value comes from, and links to the records behind it.
    assert "Marketing-sourced pipeline" in page.locator(".page-sub").inner_text()
    assert (
        page.locator("#kr-value a")
        .get_attribute("href")
        .startswith("/kpis/pipeline_sourced_marketing/records")
    )
    manual = add_key_result(page, objective, "Case studies published", "6", [REP_NAME])

    page.goto("/goals")
    card = page.locator(f"#objective-{objective}")
    metric_kr, manual_kr = card.locator(f"#kr-{metric}"), card.locator(f"#kr-{manual}")
    assert "Marketing-sourced pipeline" in metric_kr.inner_text() and "USD" in metric_kr.inner_text()
    assert "the records behind it" in metric_kr.inner_text()
    assert "Case studies published" in manual_kr.inner_text() and "No check-in yet" in manual_kr.inner_text()
    assert f"Owners: {REP_NAME}" in manual_kr.inner_text()
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "goals-leader-created-laptop.png"), full_page=True)


def test_a_rep_checks_in_inline_and_reads_the_key_result(
    page: Any, browser: Any, live_server: LiveServer
) -> None:
    ids = shared_objective(browser, live_server)
    kr_id = ids["workshops"]
    login(page, REP, DEMO_PASSWORD)
    page.get_by_role("link", name="Goals", exact=True).click()
    page.wait_for_url(re.compile(r"/goals$"))
    kr = page.locator(f"#kr-{kr_id}")
    assert "No check-in yet" in kr.inner_text()

    # Check in on the goals page: htmx swaps the objective in place, the page is not reloaded.
    page.evaluate("window.__okr_marker = 'goals'")
    kr.locator("summary", has_text="Check in").click()
    kr.get_by_label("Current value (count)").fill("3")
    kr.get_by_label("Confidence").select_option("at_risk")
    kr.get_by_label("Note (optional)").fill("Two more booked for next month")
    kr.get_by_role("button", name="Save check-in").click()
    page.locator(f"#kr-{kr_id}", has_text="Checked in.").wait_for()
    assert page.evaluate("window.__okr_marker") == "goals", "the check-in reloaded the page"
    kr = page.locator(f"#kr-{kr_id}")
    assert page.locator(f"#kr-{kr_id}-value").inner_text() == "3"
    meta = kr.locator(".goal-kr-meta").inner_text()
    assert "At risk" in meta and "Two more booked for next month" in meta and REP_NAME in meta
    assert "30 % of the way to the target" in kr.inner_text()
    page.screenshot(path=str(SHOTS / "goals-check-in-laptop.png"), full_page=True)

    # The KR's page: the history and the burn-up chart; a second check-in there updates both in place.
    kr.get_by_role("link", name="Customer workshops").click()
    page.wait_for_url(re.compile(rf"/goals/key-results/{kr_id}"))
    rows = page.locator("#check-ins tbody tr")
    assert rows.count() == 1 and "At risk" in rows.first.inner_text()
    chart = page.get_by_role("img", name="Burn-up of Customer workshops")
    assert chart.is_visible() and chart.locator("polyline.actual").count() == 1
    assert page.locator("#kr-value").inner_text() == "3"
    page.evaluate("window.__okr_marker = 'kr'")
    detail = page.locator("#kr-detail")
    detail.get_by_label("Current value (count)").fill("5")
    detail.get_by_label("Confidence").select_option("on_track")
    detail.get_by_role("button", name="Save check-in").click()
    page.locator("#check-ins tbody tr").nth(1).wait_for()
    assert page.evaluate("window.__okr_marker") == "kr"
    assert page.locator("#kr-value").inner_text() == "5"
    assert "On track" in page.locator("#check-ins tbody tr").first.inner_text()
    assert "50 %" in page.locator("#kr-attainment").inner_text()
    page.screenshot(path=str(SHOTS / "goals-key-result-laptop.png"), full_page=True)


def read_my_page(page: Any, ids: dict[str, int], width: int) -> None:
    """The rep's page: their KRs, their share of the joint pipeline KR, what needs them."""
    page.get_by_role("link", name="Me", exact=True).click()
    page.wait_for_url(re.compile(r"/me$"))
    assert page.locator("h1").inner_text() == REP_NAME
    mine = page.locator("#my-key-results")
    for name in ("pipeline", "workshops", "calls"):
        assert mine.locator(f"#kr-{ids[name]}").count() == 1, name
    row = page.locator(f"#contribution-{ids['pipeline']}")
    assert "Pipeline created together" in row.inner_text()
    assert "USD" in page.locator(f"#contribution-{ids['pipeline']}-mine").inner_text()
    assert page.locator(f"#contribution-{ids['pipeline']}-share").inner_text().endswith("%")
    attention = page.locator(f"#attention-{ids['calls']}")
    assert "No check-in yet" in attention.inner_text()
    no_sideways_scroll(page, width)


def test_a_rep_reads_their_page_on_a_phone_and_a_laptop(
    phone: Any, page: Any, browser: Any, live_server: LiveServer
) -> None:
    ids = shared_objective(browser, live_server)
    login(phone, REP, DEMO_PASSWORD)
    read_my_page(phone, ids, PHONE["width"])
    # The figures fit: the contribution table turns into one card per row.
    box = phone.locator(f"#contribution-{ids['pipeline']}-share").bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    phone.screenshot(path=str(SHOTS / "home-me-phone.png"), full_page=True)

    login(page, REP, DEMO_PASSWORD)
    read_my_page(page, ids, 1280)
    page.screenshot(path=str(SHOTS / "home-me-laptop.png"), full_page=True)
    # Her figure links to the records behind it, narrowed to her.
    page.locator(f"#contribution-{ids['pipeline']}-mine").click()
    page.wait_for_url(re.compile(r"/kpis/pipeline_created/records\?.*person=\d+"))
    page.go_back()
    page.wait_for_url(re.compile(r"/me$"))

    # A check-in from the personal page swaps its KR in place (htmx), and clears what needed attention.
    page.evaluate("window.__okr_marker = 'check-in'")
    calls = page.locator(f"#my-key-results #kr-{ids['calls']}")
    calls.locator("summary", has_text="Check in").click()
    calls.get_by_label("Current value (count)").fill("12")
    calls.get_by_role("button", name="Save check-in").click()
    page.locator(f"#my-key-results #kr-{ids['calls']} .goals-notice", has_text="Checked in.").wait_for()
    assert page.evaluate("window.__okr_marker") == "check-in"  # no page load
    assert page.locator(f"#my-key-results #kr-{ids['calls']}").inner_text().startswith("Reference calls")
    page.reload()
    assert page.locator(f"#attention-{ids['calls']}").count() == 0

    # The period switches in place, and the address follows.
    page.evaluate("window.__okr_marker = 'me'")
    previous = page.locator("#period option").nth(1).get_attribute("value")
    next_up = page.locator("#period option").first.get_attribute("value")
    page.select_option("#period", next_up)
    page.locator(f'#person-content[data-period="{next_up}"]').wait_for()
    assert page.evaluate("window.__okr_marker") == "me" and f"period={next_up}" in page.url
    assert "No key results of yours" in page.locator("#person-content").inner_text()
    assert previous


def test_a_leader_reads_the_team_page(page: Any, phone: Any, browser: Any, live_server: LiveServer) -> None:
    ids = shared_objective(browser, live_server)
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/me")
    page.locator(".page-head .home-links a", has_text="sales").click()
    page.wait_for_url(re.compile(r"/teams/\d+\?period="))
    team_path = urlparse(page.url).path
    assert page.locator("h1").inner_text() == "Team sales"
    assert page.locator(f"#objective-{ids['objective']}").count() == 1
    assert "USD" in page.locator("#figure-revenue_won .tile-figure").inner_text()
    rep_row = page.locator("#people-table tbody tr", has_text=REP_NAME)
    assert int(rep_row.locator("strong.num").inner_text()) >= 3  # the three KRs of the shared objective
    page.screenshot(path=str(SHOTS / "home-team-laptop.png"), full_page=True)
    rep_row.get_by_role("link", name=REP_NAME).click()
    page.wait_for_url(re.compile(r"/people/\d+\?period="))
    assert page.locator("h1").inner_text() == REP_NAME
    assert page.locator(f"#my-key-results #kr-{ids['workshops']}").count() == 1
    page.screenshot(path=str(SHOTS / "home-person-laptop.png"), full_page=True)

    # Every team, from the goals page; each links to its page.
    page.goto("/goals")
    page.get_by_role("link", name="Each team's page").click()
    page.wait_for_url(re.compile(r"/teams\?period="))
    sales = page.locator("#teams-content tbody tr", has_text="sales").first
    assert int(sales.locator("td").nth(1).inner_text()) >= 1  # the shared objective counts for sales
    sales.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"{team_path}\?period="))

    login(phone, LEADER, DEMO_PASSWORD)
    phone.goto(team_path)
    phone.locator("#people-table").wait_for()
    no_sideways_scroll(phone, PHONE["width"])
    phone.screenshot(path=str(SHOTS / "home-team-phone.png"), full_page=True)
