"""An admin uploads CRM files on /admin/imports, watches them import, and reads a bad file's errors."""

import re
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import login

from okr.demo.core import DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SHOTS.mkdir(parents=True, exist_ok=True)
ADMIN = "admin@demo.okr.example"
HEADER = "external_id,name,channel,owner_email,cost,currency,start_date,end_date"


def write_campaigns(folder: Path, name: str, *rows: str) -> Path:
    path = folder / name
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


def upload(page: Any, path: Path) -> Any:
    """Choose the file, submit, and return the new job's card."""
    page.set_input_files("#import-file", str(path))
    page.get_by_role("button", name="Upload and import").click()
    page.locator(".upload-notice", has_text=f"{path.name} received").wait_for()
    card = page.locator("article.import-job").first
    assert path.name in card.locator("h3").inner_text()
    return card


def test_admin_uploads_a_good_and_a_bad_campaigns_file(page: Any, tmp_path: Path) -> None:
    login(page, ADMIN, DEMO_PASSWORD)
    page.get_by_role("link", name="Import").click()
    page.wait_for_url(re.compile(r"/admin/imports$"))
    assert page.get_by_role("heading", name="Import CRM data").is_visible()

    tag = uuid.uuid4().hex[:8].upper()
    good = write_campaigns(
        tmp_path,
        "campaigns.csv",
        f"E2E-{tag}-1,Winter webinar,webinar,marketer@demo.okr.example,1200.00,USD,2026-11-01,2026-11-30",
        f"E2E-{tag}-2,Partner push,partner,,800,,2026-11-01,",
        f"E2E-{tag}-3,Search brand,paid_search,,0,,,",
    )
    page.set_input_files("#import-file", str(good))
    assert page.locator("#import-entity").input_value() == "campaigns"  # picked from the file name
    card = upload(page, good)
    card.locator('xpath=self::*[@data-status="succeeded"]').wait_for(timeout=30_000)
    counts = card.locator(".import-counts").inner_text()
    assert re.search(r"Created\s+3", counts), counts
    assert re.search(r"Updated\s+0", counts), counts
    assert re.search(r"Rows read\s+3", counts), counts
    page.screenshot(path=str(SHOTS / "imports-laptop.png"), full_page=True)

    bad = write_campaigns(
        tmp_path,
        "campaigns-fixed.csv",
        f"E2E-{tag}-4,No channel,,,100,USD,,",
        f"E2E-{tag}-5,Bad cost,email,,twelve,USD,,",
        f"E2E-{tag}-6,Unknown owner,email,nobody@demo.okr.example,1,USD,,",
    )
    card = upload(page, bad)
    card.locator('xpath=self::*[@data-status="failed"]').wait_for(timeout=30_000)
    assert "Nothing from this file was written." in card.inner_text()
    rows = card.locator("table.errors-table tbody tr")
    assert rows.count() == 3
    table = [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(3)]
    assert table[0][:2] == ["2", "channel"] and "required" in table[0][2]
    assert table[1][:2] == ["3", "cost"] and "twelve" in table[1][2]
    assert table[2][:2] == ["4", "owner_email"] and "nobody@demo.okr.example" in table[2][2]
    page.screenshot(path=str(SHOTS / "imports-errors-laptop.png"), full_page=True)

    # The jobs stay listed: leaving and coming back shows both.
    page.goto("/")
    page.goto("/admin/imports")
    listed = page.locator("article.import-job").all_inner_texts()
    assert any("campaigns.csv" in text and "Imported" in text for text in listed)
    assert any("campaigns-fixed.csv" in text and "Not imported" in text for text in listed)


def test_no_file_chosen_is_said_beside_the_field(page: Any) -> None:
    login(page, ADMIN, DEMO_PASSWORD)
    page.goto("/admin/imports")
    page.get_by_role("button", name="Upload and import").click()
    error = page.locator("#import-file-error")
    error.wait_for()
    assert "Choose a file" in error.inner_text()
    assert page.locator("#import-file").get_attribute("aria-invalid") == "true"


def test_the_import_page_on_a_phone(phone_page: Any, tmp_path: Path) -> None:
    login(phone_page, ADMIN, DEMO_PASSWORD)
    phone_page.goto("/admin/imports")
    bad = write_campaigns(tmp_path, "campaigns.csv", "P-1,,webinar,,1,USD,,", "P-2,Phone,,,x,USD,,")
    card = upload(phone_page, bad)
    card.locator('xpath=self::*[@data-status="failed"]').wait_for(timeout=30_000)
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the import page scrolls sideways on a phone ({width}px)"
    phone_page.screenshot(path=str(SHOTS / "imports-phone.png"), full_page=True)
