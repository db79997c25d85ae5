"""The bonus run in a browser, on the demo organisation: finance runs the quarter's bonus, submits it;
the second finance login approves it and locks it; finance downloads the payroll CSV. A leader sees the
team pools but no one's line. Screenshots go to test-results/screenshots/ (bonus-run-*)."""

import csv
import io
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from tests.e2e.conftest import LiveServer, login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
FINANCE = "finance@demo.okr.example"
APPROVER = "finance.approver@demo.okr.example"
LEADER = "vp.sales@demo.okr.example"


def run_id_of(page: Any) -> int:
    found = re.search(r"/bonus/runs/(\d+)$", page.url)
    assert found, page.url
    return int(found.group(1))


def test_finance_runs_approves_as_a_second_user_locks_and_downloads_the_csv(
    browser: Any, live_server: LiveServer
) -> None:
    finance = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    approver = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        page = finance.new_page()
        login(page, FINANCE, DEMO_PASSWORD)
        page.get_by_role("link", name="Bonus", exact=True).click()
        page.wait_for_url(re.compile(r"/bonus"))
        page.get_by_role("button", name=re.compile(r"Run the \d{4}-Q\d bonus")).click()
        page.wait_for_url(re.compile(r"/bonus/runs/\d+$"))
        page.wait_for_selector("#run-lines")  # computed: the page reloads by itself if it took long
        run_id = run_id_of(page)
        assert "DRAFT" in page.locator(".page-sub").inner_text()
        pool = page.locator(".bonus-tiles .tile", has_text="Pool").locator(".tile-figure").inner_text()
        assert pool.startswith("USD ")
        page.get_by_role("button", name="Re-run on the stored inputs").click()
        expect(page.locator("#run-verify")).to_contain_text("byte-identical")
        page.screenshot(path=str(SHOTS / "bonus-run-draft.png"), full_page=True)
        page.get_by_role("button", name="Submit for approval").click()
        page.wait_for_selector("text=Submitted")
        assert page.get_by_role("button", name="Approve").count() == 0  # not by the one who submitted

        other = approver.new_page()
        login(other, APPROVER, DEMO_PASSWORD)
        other.goto(f"/bonus/runs/{run_id}")
        other.get_by_role("button", name="Approve").click()
        other.wait_for_selector("button:has-text('Lock')")
        other.once("dialog", lambda dialog: dialog.accept())
        other.get_by_role("button", name="Lock").click()
        other.wait_for_selector(".page-head .badge:has-text('Locked')")
        assert "DRAFT" not in other.locator(".page-sub").inner_text()
        assert other.get_by_role("button", name="Compute again").count() == 0
        other.screenshot(path=str(SHOTS / "bonus-run-locked.png"), full_page=True)

        page.goto(f"/bonus/runs/{run_id}")
        with page.expect_download() as info:
            page.get_by_role("link", name="Payroll CSV").click()
        download = info.value
        assert download.suggested_filename.endswith(f"-run-{run_id}.csv")
        text = Path(download.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and {r["status"] for r in rows} == {"FINAL"}
        assert {r["run_id"] for r in rows} == {str(run_id)}
        paid = sum(int(r["amount"].replace(".", "")) for r in rows)
        shown = page.locator("#lines-title .muted").inner_text()  # "N lines · paid USD 1,234.56"
        assert paid == int(re.sub(r"[^0-9]", "", shown.split("paid")[1]))
    finally:
        finance.close()
        approver.close()


def test_a_leader_sees_the_team_pools_and_no_ones_line(page: Any) -> None:
    login(page, LEADER, DEMO_PASSWORD)
    page.goto("/bonus")
    page.locator("#runs-table a").first.click()
    page.wait_for_url(re.compile(r"/bonus/runs/\d+$"))
    assert page.locator("#team-pools").is_visible()
    assert page.locator("#run-lines").count() == 0
    assert page.get_by_role("button", name="Submit for approval").count() == 0
