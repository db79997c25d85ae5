"""A leader reads the KPI library, narrows it, and pages through the records behind a value in place."""

import re
from typing import Any

from tests.e2e.conftest import login

from okr.demo.core import DEMO_PASSWORD

LEADER = "vp.marketing@demo.okr.example"


def test_narrow_the_library_then_page_through_the_records(page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.get_by_role("link", name="KPIs", exact=True).click()
    page.wait_for_url(re.compile(r"/kpis$"))
    leads = page.locator("#kpi-leads_created")
    assert "Leads created in the period." in leads.inner_text()
    whole = int(leads.locator("a").inner_text().split()[0].replace(",", ""))
    assert whole > 50  # more than one page of records

    # Narrowed to a team in place: the address keeps the filter, the figure follows.
    page.evaluate("window.__okr_marker = 'kpis'")
    team = page.locator("select[name=team]")
    team.select_option(label="sales")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"/kpis\?.*team=\d+"))
    page.locator("#period-status", has_text="sales").wait_for(state="attached")
    narrowed = int(page.locator("#kpi-leads_created a").inner_text().split()[0].replace(",", ""))
    assert 0 < narrowed <= whole
    assert page.evaluate("window.__okr_marker") == "kpis"  # swapped in place, no page load

    # The records behind the figure, 50 a page; the next page swaps the table in place.
    page.locator("#kpi-leads_created a").click()
    page.wait_for_url(re.compile(r"/kpis/leads_created/records\?.*team=\d+"))
    assert "Leads created" in page.locator("h1").inner_text()
    first_rows = page.locator("#records tbody tr")
    assert first_rows.count() == 50
    first = first_rows.first.inner_text()
    assert narrowed > 50, "the demo's sales team has more than one page of leads this quarter"
    page.evaluate("window.__okr_marker = 'records'")
    page.locator("#records a[rel=next]").last.click()
    page.wait_for_url(re.compile(r"page=2"))
    page.locator("#records a[rel=prev]").last.wait_for()
    assert page.locator("#records tbody tr").first.inner_text() != first
    assert page.evaluate("window.__okr_marker") == "records"  # the table swapped in place
    page.screenshot(path="test-results/kpi-records.png", full_page=True)
