"""A leader opens Attribution, switches model and scope in place, drills from a campaign to a deal's
journey, compares two models; and the page works on a phone."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tests.e2e.conftest import login

from okr.attribution import jobs
from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
LEADER = "vp.marketing@demo.okr.example"


def money(text: str) -> int:
    """`USD 1,234.56` in minor units."""
    found = re.search(r"([\d,]+)\.(\d\d)", text)
    assert found, text
    return int(found.group(1).replace(",", "")) * 100 + int(found.group(2))


def query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def open_attribution(page: Any) -> None:
    """Log in, follow the nav link; compute attribution first if nobody has yet."""
    login(page, LEADER, DEMO_PASSWORD)
    page.get_by_role("link", name="Attribution", exact=True).click()
    page.wait_for_url(re.compile(r"/attribution$"))
    if page.get_by_text("Attribution has not been computed yet").count():
        page.get_by_role("button", name="Recompute attribution").click()
        page.locator("#campaign-table").wait_for(timeout=120_000)


def test_switch_model_and_scope_then_drill_down_to_a_journey(page: Any) -> None:
    open_attribution(page)
    # Pick a quarter that is over, so both scopes have deals.
    previous = page.locator("#period option").nth(1).get_attribute("value")
    page.select_option("#period", previous)
    page.wait_for_url(re.compile(rf"period={previous}"))
    page.locator("#attr-title", has_text=previous).wait_for()
    total = money(page.locator("#campaign-total").inner_text())
    assert total > 0
    page.screenshot(path=str(SHOTS / "attribution-laptop.png"), full_page=True)

    # Switch the model in place: the page is not reloaded, the URL follows, the total stays.
    page.evaluate("window.__okr_marker = 1")
    page.select_option("#attr-model", "first_touch")
    page.wait_for_url(re.compile(r"model=first_touch"))
    page.locator('#attribution-figures[data-model="first_touch"]').wait_for()
    assert page.evaluate("window.__okr_marker") == 1, "the model switch reloaded the page"
    assert money(page.locator("#campaign-total").inner_text()) == total

    # Switch the scope in place: pipeline created in the same quarter.
    page.select_option("#attr-scope", "pipeline")
    page.wait_for_url(re.compile(r"scope=pipeline"))
    page.locator('#attribution-figures[data-scope="pipeline"]').wait_for()
    assert page.evaluate("window.__okr_marker") == 1, "the scope switch reloaded the page"
    assert query(page) == {"period": previous, "model": "first_touch", "scope": "pipeline"}
    pipeline_total = money(page.locator("#campaign-total").inner_text())
    # Channels add up to the total together with the unattributed bucket.
    amounts = [money(t) for t in page.locator("#channel-table tbody td:nth-child(2)").all_inner_texts()]
    assert sum(amounts) == pipeline_total

    # Drill into the campaign with the most credit, then into one of its deals.
    top = page.locator("#campaign-table tbody tr").first
    name = top.locator("th a").inner_text()
    credited = money(top.locator("td").nth(1).inner_text())
    top.locator("th a").click()
    page.wait_for_url(re.compile(r"/attribution/campaigns/\d+\?"))
    assert page.locator("h1").inner_text() == name
    assert money(page.locator("#detail-amount .tile-figure").inner_text()) == credited
    page.screenshot(path=str(SHOTS / "attribution-campaign-laptop.png"), full_page=True)
    deal = page.locator("#deals-table tbody tr").first.locator("td.lead-cell a")
    deal_name = deal.inner_text()
    deal.click()
    page.wait_for_url(re.compile(r"/attribution/opportunities/\d+"))
    assert page.locator("h1").inner_text() == deal_name
    assert page.locator("#scope-pipeline .attr-step").count() >= 1
    assert "weights add up to 1.0000000000" in page.locator("#scope-pipeline").inner_text()
    # The journey's model switches in place too.
    page.evaluate("window.__okr_marker = 2")
    page.select_option("#journey-model-select", "w_shaped")
    page.locator('#journey[data-model="w_shaped"]').wait_for()
    assert page.evaluate("window.__okr_marker") == 2
    assert "model=w_shaped" in page.url
    page.screenshot(path=str(SHOTS / "attribution-journey-laptop.png"), full_page=True)

    # Compare two models for the quarter: both add up to the same total.
    page.goto(f"/attribution/compare?period={previous}&scope=pipeline&model_a=first_touch&model_b=last_touch")
    total_a = money(page.locator("#compare-total-a").inner_text())
    assert total_a == money(page.locator("#compare-total-b").inner_text()) == pipeline_total
    page.evaluate("window.__okr_marker = 3")
    page.select_option("#attr-model_b", "data_driven")
    page.locator('#comparison[data-model-b="data_driven"]').wait_for()
    assert page.evaluate("window.__okr_marker") == 3
    assert money(page.locator("#compare-total-b").inner_text()) == pipeline_total
    page.screenshot(path=str(SHOTS / "attribution-compare-laptop.png"), full_page=True)


def test_attribution_on_a_phone(phone_page: Any) -> None:
    page = phone_page
    open_attribution(page)
    page.locator("#campaign-table").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the attribution page scrolls sideways on a phone ({width}px)"
    # The wide tables scroll inside their own box instead.
    wrap = page.locator("#campaign-table").locator("xpath=..")
    assert wrap.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    # The controls wrap onto the screen.
    box = page.locator("#attr-scope").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
    page.screenshot(path=str(SHOTS / "attribution-phone.png"), full_page=True)
    top = page.locator("#campaign-table tbody tr th a").first
    top.click()
    page.wait_for_url(re.compile(r"/attribution/campaigns/\d+"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("#deals-table tbody tr td.lead-cell a").first.click()
    page.wait_for_url(re.compile(r"/attribution/opportunities/\d+"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(SHOTS / "attribution-journey-phone.png"), full_page=True)


def test_a_leader_sets_custom_weights_errors_beside_the_fields_then_saved(page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/attribution/settings")
    form = page.locator("#settings-form")
    # Weights that do not add up to 1 and a half life of 0: both refused, beside their fields, in place.
    page.evaluate("window.__okr_marker = 4")
    for name, value in (("first", "0.5"), ("lead_creation", "0.5"), ("opportunity_creation", "0.5")):
        page.fill(f"#field-{name}", value)
    page.fill("#field-closed_won", "0")
    page.fill("#field-middle", "0")
    page.fill("#field-half_life_days", "0")
    form.get_by_role("button", name="Save and recompute").click()
    page.locator("#settings-form .error-box").wait_for()
    assert page.evaluate("window.__okr_marker") == 4, "the refused form reloaded the page"
    assert "add up to 1" in form.inner_text()
    assert page.locator("#field-half_life_days-error").inner_text()
    assert page.locator("#field-half_life_days").get_attribute("aria-invalid") == "true"
    assert page.input_value("#field-first") == "0.5"  # what was typed stays
    page.screenshot(path=str(SHOTS / "attribution-settings-errors.png"), full_page=True)

    # Correct them: saved, every model recomputed with them, the notice says so.
    page.fill("#field-opportunity_creation", "0")
    page.fill("#field-half_life_days", "14")
    form.get_by_role("button", name="Save and recompute").click()
    page.locator("#settings-form .attr-notice").wait_for(timeout=120_000)
    assert "recomputed" in page.locator("#settings-form .attr-notice").inner_text()
    page.reload()
    assert page.input_value("#field-first") == "0.5"
    assert page.input_value("#field-half_life_days") == "14"

    # The custom model now credits half to the first touch and half to the lead-creation touch.
    page.goto("/attribution?model=custom&scope=pipeline")
    total = money(page.locator("#campaign-total").inner_text())
    assert total > 0


def test_a_recompute_that_takes_long_shows_progress_then_the_new_figures(
    page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_attribution(page)
    # As on big data: the request answers before the runs are in, and the page polls their progress.
    monkeypatch.setattr(jobs, "WAIT_SECONDS", 0.0)
    page.get_by_role("button", name="Recompute attribution").click()
    status = page.locator(".attr-recompute-status")
    status.wait_for()
    assert "Recomputing every model for both scopes, started" in status.inner_text()
    page.screenshot(path="test-results/attribution-recompute-progress.png")
    # Polled every 2 s: once both runs are in, the page reloads with them.
    status.wait_for(state="detached", timeout=120_000)
    page.locator("#campaign-table").wait_for()
    assert page.url.endswith("/attribution")
