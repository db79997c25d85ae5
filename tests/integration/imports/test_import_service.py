"""The import service on SQLite and PostgreSQL: all-or-nothing files, idempotent upserts, every error."""

import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.models import metadata
from okr.imports import core, services
from okr.imports.services import (
    ImportRejected,
    ImportResult,
    import_csv,
    import_folder,
    import_json,
    import_rows,
)
from okr.lib.clock import set_clock
from okr.lib.errors import ValidationFailed
from okr.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "data" / "imports"
GOOD = DATA / "good"
BAD = DATA / "bad"
UTC = dt.UTC

DATA_TABLES = (
    "team",
    "person",
    "fx_rate",
    "campaign",
    "account",
    "lead",
    "touchpoint",
    "opportunity",
    "opportunity_split",
)


async def counts(db: AsyncSession) -> dict[str, int]:
    """Rows per table, audit log included."""
    result = {}
    for name in (*DATA_TABLES, "audit_event"):
        result[name] = (
            await db.execute(select(func.count()).select_from(metadata.tables[name]))
        ).scalar_one()
    return result


async def dump(db: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, by id, without updated_at."""
    result = {}
    for name in DATA_TABLES:
        table = metadata.tables[name]
        columns = [c for c in table.c if c.name != "updated_at"]
        rows = await db.execute(select(*columns).order_by(table.c.id))
        result[name] = [tuple(r) for r in rows]
    return result


async def load_good(db: AsyncSession, settings: Settings) -> list[ImportResult]:
    results = await import_folder(db, folder=GOOD, settings=settings, actor="cli")
    assert all(r.ok for r in results), [r.errors for r in results if not r.ok]
    return results


async def rejected(db: AsyncSession, settings: Settings, entity: str, source: Any) -> ImportRejected:
    with pytest.raises(ImportRejected) as info:
        await import_csv(db, entity=entity, path_or_stream=source, settings=settings, actor="cli")
    return info.value


def csv_text(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n")


def triples(exc: ImportRejected) -> list[tuple[int, str]]:
    return [(e["row"], e["column"]) for e in exc.errors]


async def value(db: AsyncSession, table: str, column: str, **where: Any) -> Any:
    t = metadata.tables[table]
    stmt = select(t.c[column]).where(*(t.c[k] == v for k, v in where.items()))
    return (await db.execute(stmt)).scalar_one()


# --- a good data set ------------------------------------------------------------------------------


async def test_good_folder_loads_every_file_in_order(db: AsyncSession, settings: Settings) -> None:
    results = await load_good(db, settings)
    assert [(r.entity, r.rows, r.created, r.updated) for r in results] == [
        ("fx_rates", 4, 4, 0),
        ("people", 7, 7, 0),
        ("campaigns", 4, 4, 0),
        ("accounts", 4, 4, 0),
        ("leads", 4, 4, 0),
        ("touchpoints", 6, 6, 0),
        ("opportunities", 4, 4, 0),
        ("opportunity_splits", 8, 8, 0),
    ]
    assert await counts(db) == {
        "team": 5,
        "person": 7,
        "fx_rate": 4,
        "campaign": 4,
        "account": 4,
        "lead": 4,
        "touchpoint": 6,
        "opportunity": 4,
        "opportunity_split": 8,
        "audit_event": 8,
    }


async def test_amounts_are_converted_exactly(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    amounts = {
        key: (amount, currency)
        for key, amount, currency in (
            await db.execute(
                select(
                    metadata.tables["opportunity"].c.external_id,
                    metadata.tables["opportunity"].c.amount,
                    metadata.tables["opportunity"].c.currency,
                )
            )
        )
    }
    assert amounts == {
        "OPP-1": (1250010, "USD"),
        "OPP-2": (4000000, "EUR"),
        "OPP-3": (25000000, "USD"),  # empty currency: the organisation's
        "OPP-4": (500, "JPY"),
    }
    assert await value(db, "campaign", "cost", external_id="CMP-1") == 1250010
    assert await value(db, "campaign", "cost", external_id="CMP-4") == 500
    assert await value(db, "campaign", "currency", external_id="CMP-3") == "USD"
    assert await value(db, "person", "target_bonus", email="mia.mkt@acme.test") == 2500050
    assert await value(db, "fx_rate", "rate_to_base", currency="JPY") == Decimal("0.0067")
    assert await value(db, "opportunity", "probability", external_id="OPP-4") == Decimal("12.5")


async def test_timestamps_are_stored_in_utc(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    assert await value(db, "lead", "created_at", external_id="LEAD-2") == dt.datetime(
        2026, 7, 5, 6, 30, tzinfo=UTC
    )
    assert await value(db, "lead", "created_at", external_id="LEAD-3") == dt.datetime(2026, 8, 1, tzinfo=UTC)
    assert await value(db, "touchpoint", "occurred_at", external_id="TP-4") == dt.datetime(
        2026, 7, 31, 18, tzinfo=UTC
    )


async def test_people_teams_roles_and_emails(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    team = metadata.tables["team"]
    assert sorted((await db.execute(select(team.c.name))).scalars()) == [
        "finance",
        "marketing",
        "revops",
        "sales",
        "sdr",
    ]
    assert (
        await value(db, "person", "role", email="ben.rep@acme.test") == "member"
    )  # lower-cased, default role
    assert await value(db, "person", "role", email="ada.admin@acme.test") == "admin"
    assert await value(db, "person", "is_active", email="ada.admin@acme.test") is True
    assert await value(db, "person", "password_hash", email="ada.admin@acme.test") is None


async def test_one_audit_row_per_imported_file(db: AsyncSession, settings: Settings) -> None:
    await import_folder(db, folder=GOOD, settings=settings, actor="ops@acme.test")
    audit = metadata.tables["audit_event"]
    rows = (await db.execute(select(audit.c.action, audit.c.entity, audit.c.actor, audit.c.after))).all()
    assert [r.entity for r in rows] == list(core.ENTITIES)
    assert {r.action for r in rows} == {"import"}
    assert {r.actor for r in rows} == {"ops@acme.test"}
    assert rows[1].after == {"rows": 7, "created": 7, "updated": 0, "source": "people.csv"}


# --- idempotence ----------------------------------------------------------------------------------


async def test_loading_the_same_folder_twice_changes_nothing(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    first_counts, first_rows = await counts(db), await dump(db)
    results = await load_good(db, settings)
    assert [(r.created, r.updated) for r in results] == [(0, r.rows) for r in results]
    second_counts = await counts(db)
    assert second_counts == {**first_counts, "audit_event": 16}
    assert await dump(db) == first_rows


async def test_people_keep_password_activity_and_timestamps(db: AsyncSession, settings: Settings) -> None:
    person = metadata.tables["person"]
    first = dt.datetime(2026, 1, 1, 9, tzinfo=UTC)
    later = dt.datetime(2026, 2, 1, 9, tzinfo=UTC)
    try:
        set_clock(lambda: first)
        await load_good(db, settings)
        await db.execute(
            update(person)
            .where(person.c.email == "ana.rep@acme.test")
            .values(password_hash="argon2$x", is_active=False)
        )
        await db.commit()
        set_clock(lambda: later)
        await import_csv(
            db, entity="people", path_or_stream=GOOD / "people.csv", settings=settings, actor="cli"
        )
        ana = (await db.execute(select(person).where(person.c.email == "ana.rep@acme.test"))).one()
        assert (ana.password_hash, ana.is_active) == ("argon2$x", False)
        assert (ana.created_at, ana.updated_at) == (first, first)  # nothing changed: not touched
        renamed = (GOOD / "people.csv").read_text().replace("Ana Ruiz", "Ana Ruiz-Lopez")
        await import_csv(
            db, entity="people", path_or_stream=io.StringIO(renamed), settings=settings, actor="cli"
        )
        ana = (await db.execute(select(person).where(person.c.email == "ana.rep@acme.test"))).one()
        assert (ana.name, ana.created_at, ana.updated_at) == ("Ana Ruiz-Lopez", first, later)
        assert (ana.password_hash, ana.is_active) == ("argon2$x", False)
        vera = (await db.execute(select(person).where(person.c.email == "vera.vp@acme.test"))).one()
        assert vera.updated_at == first
    finally:
        set_clock(None)


async def test_columns_absent_from_the_file_are_left_alone(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    result = await import_csv(
        db,
        entity="people",
        path_or_stream=csv_text("email,name,team", "ada.admin@acme.test,Ada A. Adams,revops"),
        settings=settings,
        actor="cli",
    )
    assert (result.created, result.updated) == (0, 1)
    assert await value(db, "person", "name", email="ada.admin@acme.test") == "Ada A. Adams"
    assert await value(db, "person", "role", email="ada.admin@acme.test") == "admin"
    assert await value(db, "person", "employee_id", email="ada.admin@acme.test") == "E007"


async def test_team_names_match_existing_teams_case_insensitively(
    db: AsyncSession, settings: Settings
) -> None:
    await load_good(db, settings)
    await import_csv(
        db,
        entity="people",
        path_or_stream=csv_text(
            "email,name,team", "new.rep@acme.test,New Rep,Sales", "ops@acme.test,Ops,Ops"
        ),
        settings=settings,
        actor="cli",
    )
    team = metadata.tables["team"]
    assert sorted((await db.execute(select(team.c.name))).scalars()) == [
        "Ops",
        "finance",
        "marketing",
        "revops",
        "sales",
        "sdr",
    ]
    sales_id = await value(db, "team", "id", name="sales")
    assert await value(db, "person", "team_id", email="new.rep@acme.test") == sales_id


# --- rejected files -------------------------------------------------------------------------------


async def test_broken_file_reports_every_bad_row_and_writes_nothing(
    db: AsyncSession, settings: Settings
) -> None:
    await load_good(db, settings)
    before, rows_before = await counts(db), await dump(db)
    exc = await rejected(db, settings, "leads", BAD / "leads.csv")
    assert exc.entity == "leads"
    assert exc.status_code == 422
    assert exc.rows_seen == 9
    assert exc.error_count == 8
    assert exc.errors == [
        {
            "row": 3,
            "column": "account_external_id",
            "reason": "unknown account 'ACC-9' (load accounts.csv first)",
        },
        {"row": 4, "column": "email", "reason": "not an email address: 'not-an-email'"},
        {
            "row": 5,
            "column": "created_at",
            "reason": "not a timestamp: '2026-13-01T00:00:00Z' (use ISO 8601, e.g. 2026-10-01T14:30:00Z)",
        },
        {
            "row": 6,
            "column": "mql_at",
            "reason": "2026-07-04T00:00:00Z is before created_at (2026-07-05T00:00:00Z)",
        },
        {"row": 7, "column": "rejection_reason", "reason": "required when rejected_at is set"},
        {"row": 8, "column": "external_id", "reason": "duplicate: 'LEAD-10' is already in row 2"},
        {"row": 9, "column": "external_id", "reason": "required, but empty"},
        {
            "row": 10,
            "column": "owner_email",
            "reason": "unknown person 'nobody@acme.test' (load people.csv first)",
        },
    ]
    assert exc.detail == "leads.csv was not imported: 8 errors in 9 rows; nothing was written"
    assert await counts(db) == before
    assert await dump(db) == rows_before


async def test_bad_opportunities_report_each_rule(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    before = await counts(db)
    exc = await rejected(db, settings, "opportunities", BAD / "opportunities.csv")
    assert triples(exc) == [
        (2, "amount"),  # 1.005 USD
        (3, "amount"),  # negative
        (4, "currency"),  # XYZ
        (5, "closed_at"),  # won without closed_at
        (6, "closed_at"),  # open with closed_at
        (7, "closed_at"),  # before created_at
        (8, "probability"),  # 101
        (9, "forecast_category"),
        (10, "status"),
    ]
    assert exc.errors[0]["reason"] == "'1.005' has more decimals than USD allows (2)"
    assert await counts(db) == before


async def test_revenue_splits_must_sum_to_100(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    rows_before = await dump(db)
    exc = await rejected(db, settings, "opportunity_splits", BAD / "opportunity_splits.csv")
    assert triples(exc) == [(2, "percent"), (3, "percent"), (6, "percent")]
    assert exc.errors[0]["reason"].startswith(
        "revenue splits of 'OPP-1' add up to 90 %, not 100 % (rows 2, 3)"
    )
    assert await dump(db) == rows_before


async def test_unknown_references_are_row_errors(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    exc = await rejected(
        db,
        settings,
        "touchpoints",
        csv_text(
            "external_id,lead_external_id,campaign_external_id,occurred_at",
            "TP-10,LEAD-9,CMP-1,2026-07-01T00:00:00Z",
            "TP-11,LEAD-1,CMP-9,2026-07-01T00:00:00Z",
        ),
    )
    assert exc.errors == [
        {"row": 2, "column": "lead_external_id", "reason": "unknown lead 'LEAD-9' (load leads.csv first)"},
        {
            "row": 3,
            "column": "campaign_external_id",
            "reason": "unknown campaign 'CMP-9' (load campaigns.csv first)",
        },
    ]


async def test_unknown_header_column_is_reported_on_row_one(db: AsyncSession, settings: Settings) -> None:
    exc = await rejected(db, settings, "accounts", csv_text("external_id,name,arr", "ACC-1,Globex,100"))
    assert triples(exc) == [(1, "arr")]
    assert exc.errors[0]["reason"].startswith("unknown column 'arr' (allowed:")
    assert (await counts(db))["account"] == 0


async def test_missing_required_column_is_reported_once(db: AsyncSession, settings: Settings) -> None:
    exc = await rejected(db, settings, "accounts", csv_text("external_id,segment", "ACC-1,smb", "ACC-2,"))
    assert exc.errors == [
        {"row": 1, "column": "name", "reason": "required column 'name' is missing from the header"}
    ]


async def test_empty_and_unreadable_files(db: AsyncSession, settings: Settings) -> None:
    exc = await rejected(db, settings, "accounts", io.StringIO(""))
    assert triples(exc) == [(1, "")]
    assert exc.errors[0]["reason"].startswith("the file is empty")
    latin1 = "external_id,name\nACC-1,Müller GmbH\n".encode("latin-1")
    exc = await rejected(db, settings, "accounts", io.BytesIO(latin1))
    assert "not UTF-8" in exc.errors[0]["reason"]


async def test_row_with_more_cells_than_the_header(db: AsyncSession, settings: Settings) -> None:
    exc = await rejected(
        db, settings, "accounts", csv_text("external_id,name", "ACC-1,Globex,oops", "ACC-2,Initech,,")
    )
    assert exc.errors == [
        {"row": 2, "column": "", "reason": "the row has 3 cells but the header has 2 columns"}
    ]


async def test_rows_are_numbered_as_a_spreadsheet_shows_them(db: AsyncSession, settings: Settings) -> None:
    text = 'external_id,name\nACC-1,"Globex\nEurope"\n\nACC-2,\n'
    exc = await rejected(db, settings, "accounts", io.StringIO(text))
    assert triples(exc) == [(4, "name")]


async def test_every_error_is_counted_but_at_most_1000_listed(db: AsyncSession, settings: Settings) -> None:
    lines = ["external_id,name"] + [f"ACC-{i}," for i in range(1005)]
    exc = await rejected(db, settings, "accounts", csv_text(*lines))
    assert exc.error_count == 1005
    assert len(exc.errors) == 1000
    assert exc.more == 5
    assert exc.errors[-1]["row"] == 1001
    assert exc.detail.endswith("(the first 1,000 are listed, 5 more)")


async def test_duplicates_and_splits_across_batches(
    db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    await load_good(db, settings)  # the splits of OPP-4 span two batches and still add up
    exc = await rejected(
        db,
        settings,
        "accounts",
        csv_text("external_id,name", "ACC-7,a", "ACC-8,b", "ACC-9,c", "ACC-7,d", "ACC-9,e"),
    )
    assert exc.errors == [
        {"row": 5, "column": "external_id", "reason": "duplicate: 'ACC-7' is already in row 2"},
        {"row": 6, "column": "external_id", "reason": "duplicate: 'ACC-9' is already in row 4"},
    ]
    assert (await counts(db))["account"] == 4


async def test_unknown_entity_is_refused(db: AsyncSession, settings: Settings) -> None:
    with pytest.raises(ValidationFailed, match="unknown import entity 'contacts'"):
        await import_rows(db, entity="contacts", rows=[], settings=settings, actor="cli")


# --- splits replace -------------------------------------------------------------------------------


async def splits_of(db: AsyncSession, opportunity: str) -> list[tuple[str, str, Decimal]]:
    split, opp, person = (metadata.tables[n] for n in ("opportunity_split", "opportunity", "person"))
    rows = await db.execute(
        select(person.c.email, split.c.kind, split.c.percent)
        .join(opp, opp.c.id == split.c.opportunity_id)
        .join(person, person.c.id == split.c.person_id)
        .where(opp.c.external_id == opportunity)
        .order_by(person.c.email, split.c.kind)
    )
    return [tuple(r) for r in rows]


async def test_a_splits_file_replaces_the_splits_of_the_opportunities_it_names(
    db: AsyncSession, settings: Settings
) -> None:
    await load_good(db, settings)
    opp2 = await splits_of(db, "OPP-2")
    ana_split_id = await value(db, "opportunity_split", "id", opportunity_id=1, person_id=2, kind="revenue")
    result = await import_csv(
        db,
        entity="opportunity_splits",
        path_or_stream=csv_text(
            "opportunity_external_id,person_email,kind,percent",
            "OPP-1,ana.rep@acme.test,revenue,100",
            "OPP-3,sam.sdr@acme.test,overlay,25",
        ),
        settings=settings,
        actor="cli",
    )
    assert (result.created, result.updated) == (0, 2)
    assert await splits_of(db, "OPP-1") == [("ana.rep@acme.test", "revenue", Decimal(100))]
    assert (
        await value(db, "opportunity_split", "id", opportunity_id=1, person_id=2, kind="revenue")
        == ana_split_id
    )
    assert await splits_of(db, "OPP-2") == opp2  # not named: untouched


async def test_only_overlay_rows_leave_the_revenue_with_the_owner(
    db: AsyncSession, settings: Settings
) -> None:
    await load_good(db, settings)
    await import_csv(
        db,
        entity="opportunity_splits",
        path_or_stream=csv_text(
            "opportunity_external_id,person_email,kind,percent", "OPP-2,sam.sdr@acme.test,overlay,10"
        ),
        settings=settings,
        actor="cli",
    )
    assert await splits_of(db, "OPP-2") == [("sam.sdr@acme.test", "overlay", Decimal(10))]


# --- folders --------------------------------------------------------------------------------------


async def test_folder_stops_at_the_first_bad_file(
    db: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    for name in ("fx_rates", "people", "campaigns", "accounts", "touchpoints"):
        shutil.copy(GOOD / f"{name}.csv", tmp_path)
    shutil.copy(BAD / "leads.csv", tmp_path)
    results = await import_folder(db, folder=tmp_path, settings=settings, actor="cli")
    assert [(r.entity, r.ok) for r in results] == [
        ("fx_rates", True),
        ("people", True),
        ("campaigns", True),
        ("accounts", True),
        ("leads", False),
    ]
    assert results[-1].error_count == 8
    assert results[-1].errors[0]["row"] == 3
    now = await counts(db)
    assert (now["account"], now["lead"], now["touchpoint"], now["audit_event"]) == (4, 0, 0, 4)


async def test_folder_with_an_unknown_file_is_refused(
    db: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    shutil.copy(GOOD / "accounts.csv", tmp_path)
    (tmp_path / "contacts.csv").write_text("email\n")
    with pytest.raises(ValidationFailed, match="unknown data-set file"):
        await import_folder(db, folder=tmp_path, settings=settings, actor="cli")
    assert (await counts(db))["account"] == 0


# --- JSON and encodings ---------------------------------------------------------------------------


async def test_json_records_with_numbers_are_accepted(db: AsyncSession, settings: Settings) -> None:
    await load_good(db, settings)
    records: list[dict[str, Any]] = [
        {
            "external_id": "OPP-9",
            "account_external_id": "ACC-1",
            "name": "JSON deal",
            "owner_email": "ana.rep@acme.test",
            "amount": 12500.1,
            "currency": "USD",
            "created_at": "2026-07-01T00:00:00Z",
            "closed_at": None,
            "status": "open",
            "probability": 25,
        },
        {
            "external_id": "OPP-10",
            "account_external_id": "ACC-2",
            "name": "Yen deal",
            "owner_email": "ben.rep@acme.test",
            "amount": 500,
            "currency": "JPY",
            "created_at": "2026-07-01T00:00:00+09:00",
            "status": "won",
            "closed_at": "2026-07-02T00:00:00Z",
        },
    ]
    result = await import_rows(db, entity="opportunities", rows=records, settings=settings, actor="api")
    assert (result.rows, result.created, result.updated) == (2, 2, 0)
    assert await value(db, "opportunity", "amount", external_id="OPP-9") == 1250010
    assert await value(db, "opportunity", "probability", external_id="OPP-9") == Decimal(25)
    assert await value(db, "opportunity", "amount", external_id="OPP-10") == 500
    # Keys absent from every record are left alone on existing rows.
    await import_rows(
        db,
        entity="opportunities",
        rows=[{k: v for k, v in records[0].items() if k != "probability"}],
        settings=settings,
        actor="api",
    )
    assert await value(db, "opportunity", "probability", external_id="OPP-9") == Decimal(25)


async def test_json_records_are_numbered_from_one(db: AsyncSession, settings: Settings) -> None:
    with pytest.raises(ImportRejected) as info:
        await import_rows(
            db,
            entity="accounts",
            rows=[
                {"external_id": "ACC-1", "name": "Globex"},
                {"external_id": "ACC-2", "name": "Initech", "arr": 10},
                {"external_id": "ACC-3", "name": None, "arr": 20},
                "not a record",  # type: ignore[list-item]
            ],
            settings=settings,
            actor="api",
        )
    assert triples(info.value) == [(2, "arr"), (3, "name"), (4, "")]


async def test_json_file(db: AsyncSession, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text('[{"external_id": "ACC-1", "name": "Globex", "segment": "smb"}]')
    result = await import_json(db, entity="accounts", path_or_stream=path, settings=settings, actor="cli")
    assert (result.rows, result.created) == (1, 1)
    path.write_text('{"external_id": "ACC-1"}')
    with pytest.raises(ImportRejected, match=r"accounts\.json was not imported"):
        await import_json(db, entity="accounts", path_or_stream=path, settings=settings, actor="cli")


async def test_bom_prefixed_csv_is_accepted(db: AsyncSession, settings: Settings, tmp_path: Path) -> None:
    body = "external_id,name,segment\r\nACC-1,Globex,smb\r\n"
    binary = await import_csv(
        db,
        entity="accounts",
        path_or_stream=io.BytesIO(b"\xef\xbb\xbf" + body.encode()),
        settings=settings,
        actor="cli",
    )
    assert (binary.rows, binary.created) == (1, 1)
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.replace("Globex", "Globex AG").encode())
    from_path = await import_csv(db, entity="accounts", path_or_stream=path, settings=settings, actor="cli")
    assert (from_path.created, from_path.updated) == (0, 1)
    text = await import_csv(
        db, entity="accounts", path_or_stream=io.StringIO("\ufeff" + body), settings=settings, actor="cli"
    )
    assert text.updated == 1
    assert await value(db, "account", "name", external_id="ACC-1") == "Globex"
