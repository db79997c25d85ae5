"""Exports of a bonus run for finance (DESIGN 6.5): the payroll CSV, the XLSX workbook and the JSON.

Pure builders over plain data (`ExportData`, read by `okr.bonus.export_services`): no database, no web.
Decisions where DESIGN 6.5 is silent (docs/bonus-exports.md):

- The payroll lists every person with a payable amount in the run (0 included), so payroll sees the
  whole team; the amount is the person's payable amount (never negative: a negative total pays 0 and
  is carried to their next run).
- A run that is not locked is a DRAFT: its file names end in `-DRAFT`, every CSV row has `DRAFT` in its
  first column (`status`, else `FINAL`), every sheet's first row says so, and the JSON has
  `"draft": true`. A first comment line would break plain CSV readers, so the CSV has none.
- Text cells of the CSV and the workbook go through `safe_cell` (CSV injection); amounts are numbers,
  never text. The JSON carries text as it is: it is data for programs, not a spreadsheet.
- The JSON gives every amount twice: an integer of minor units (exact, for programs) and a decimal
  string in major units with the currency's decimals (for people, and for systems that take major units).
"""

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from okr.lib.errors import Conflict
from okr.lib.money import decimals, to_major

DANGEROUS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A text cell beginning with one of these may run as a formula in a spreadsheet (DESIGN 6.5)."""

DRAFT: Final = "DRAFT"
FINAL: Final = "FINAL"

PAYROLL_COLUMNS: Final = (
    "status",
    "employee_id",
    "name",
    "email",
    "team",
    "period",
    "run_id",
    "amount",
    "currency",
    "inputs_checksum",
)

EXCEL_DIGITS: Final = 15
"""Excel keeps 15 significant digits; an amount with more cannot be a number cell exactly."""

# Characters XML 1.0 (and so an XLSX file) cannot hold; openpyxl refuses them.
_NOT_XML: Final = re.compile(r"[\000-\010\013\014\016-\037]")


class ExportError(Conflict):
    """The run cannot be exported as asked (the message says why); the API answers 409."""


def safe_cell(text: str) -> str:
    """The text a spreadsheet shows as text: prefixed with ' when it begins with = + - @ tab or CR."""
    return "'" + text if text.startswith(DANGEROUS) else text


# -- the data --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamRow:
    """A team pool of the run."""

    team: str
    share: str
    rule: str
    pool: int
    paid: int
    leftover: int
    people: int


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One person of the run: who they are, their earning line, and what they are paid."""

    person_id: int
    employee_id: str
    name: str
    email: str
    team: str
    credit: int | None
    proration: Decimal | None
    cap: int | None
    capped: bool
    earning: int
    adjustment: int
    clawback: int
    carried_in: int
    total: int
    payable: int
    carried_out: int


@dataclass(frozen=True, slots=True)
class TraceRow:
    """A part of a person's earning: the deal (and, for marketers, the campaign) it came from."""

    person_id: int
    name: str
    email: str
    opportunity_id: int
    deal_external_id: str
    deal_name: str
    campaign_id: int | None
    campaign_name: str
    credit: int
    amount: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """An adjustment, a clawback, a balance carried in, or a negative total carried out."""

    person_id: int
    name: str
    email: str
    kind: str
    amount: int
    reason: str
    deal_external_id: str


@dataclass(frozen=True, slots=True)
class ExportData:
    """Everything an export of one run shows; amounts are ints of minor units of `currency`."""

    run_id: int
    run_number: int
    period: str
    state: str
    currency: str
    as_of: dt.datetime
    computed_at: dt.datetime | None
    locked_at: dt.datetime | None
    inputs_checksum: str
    results_checksum: str
    joint_score: str
    multiplier: str
    won_revenue: int
    sourced_pipeline: int
    formula: str
    carried_forward: int
    pool: int
    paid: int
    leftover: int
    leftover_policy: str
    teams: tuple[TeamRow, ...]
    people: tuple[PersonRow, ...]
    traces: tuple[TraceRow, ...]
    ledger: tuple[LedgerRow, ...]

    @property
    def draft(self) -> bool:
        """A run that is not locked may still change: its exports are drafts."""
        return self.state != "locked"

    @property
    def status(self) -> str:
        """DRAFT or FINAL."""
        return DRAFT if self.draft else FINAL


def file_name(data: ExportData, extension: str) -> str:
    """`okr-bonus-2026-Q3-run-12.csv`, with `-DRAFT` before the extension when the run is not locked."""
    period = re.sub(r"[^A-Za-z0-9-]", "_", data.period)
    draft = "-DRAFT" if data.draft else ""
    return f"okr-bonus-{period}-run-{data.run_id}{draft}.{extension}"


def banner(data: ExportData) -> str:
    """The line every sheet starts with: DRAFT or FINAL, the run, the checksum."""
    if data.draft:
        return (
            f"DRAFT: run {data.run_id} ({data.period}) is {data.state}, not locked; "
            f"do not pay from this file. Inputs checksum {data.inputs_checksum}"
        )
    locked = f" on {_instant(data.locked_at)}" if data.locked_at else ""
    return f"FINAL: run {data.run_id} ({data.period}) locked{locked}. Inputs checksum {data.inputs_checksum}"


def _instant(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _major(minor: int, currency: str) -> Decimal:
    return to_major(minor, currency)


# -- CSV -------------------------------------------------------------------------------------------------


def payroll_rows(data: ExportData) -> list[list[str | int | Decimal]]:
    """The payroll CSV as rows: a header, then one row per person (text cells made safe)."""
    rows: list[list[str | int | Decimal]] = [list(PAYROLL_COLUMNS)]
    for p in data.people:
        rows.append(
            [
                data.status,
                safe_cell(p.employee_id),
                safe_cell(p.name),
                safe_cell(p.email),
                safe_cell(p.team),
                safe_cell(data.period),
                data.run_id,
                _major(p.payable, data.currency),
                safe_cell(data.currency),
                safe_cell(data.inputs_checksum),
            ]
        )
    return rows


def payroll_csv(data: ExportData) -> bytes:
    """The payroll CSV (RFC 4180, UTF-8 without a byte order mark, CRLF line ends, a header row)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    # str(Decimal) of an amount is a plain number with the currency's decimals (1080.00, 5000, 1.250):
    # the writer quotes only text that needs it, so amounts are never quoted.
    writer.writerows(payroll_rows(data))
    return out.getvalue().encode("utf-8")


# -- XLSX ------------------------------------------------------------------------------------------------


def money_format(currency: str) -> str:
    """The Excel number format showing the currency's decimals: `#,##0.00` for USD, `#,##0` for JPY."""
    places = decimals(currency)
    return "#,##0" + ("." + "0" * places if places else "")


def excel_amount(minor: int, currency: str) -> Decimal:
    """An amount as the exact Decimal a number cell gets; refused when Excel could not hold it exactly."""
    value = _major(minor, currency)
    if len(value.as_tuple().digits) > EXCEL_DIGITS:
        raise ExportError(
            f"{value} {currency} has more digits than a spreadsheet number keeps exactly: "
            "take the payroll CSV or the JSON, which keep every digit."
        )
    return value


class _Sheet:
    """Appends rows to a worksheet with text made safe and amounts as formatted numbers."""

    def __init__(self, ws: Worksheet, data: ExportData) -> None:
        self.ws = ws
        self.data = data
        self.money = money_format(data.currency)
        self.row = 0
        self.add([banner(data)], bold=True)

    def add(self, values: Sequence[Any], *, bold: bool = False, money: Sequence[int] = ()) -> None:
        """One row; `values` are str, int, bool, Decimal or None; the indexes in `money` hold minor units."""
        self.row += 1
        for col, value in enumerate(values, start=1):
            cell = self.ws.cell(row=self.row, column=col)
            if value is None:
                continue
            if col - 1 in money:
                # openpyxl writes a Decimal into the file with "%.16g", that is through a float: exact for
                # any amount of at most 15 significant digits, which excel_amount checks (Excel keeps 15).
                cell.value = excel_amount(int(value), self.data.currency)
                cell.number_format = self.money
            elif isinstance(value, str):
                cell.value = safe_cell(_NOT_XML.sub("\ufffd", value))
                # A text cell stays text, even one that reads like an error code (#N/A) or a formula.
                cell.data_type = "s"
            else:
                cell.value = value
            if bold:
                cell.font = Font(bold=True)

    def header(self, *names: str) -> None:
        """A bold header row."""
        self.add(names, bold=True)


def workbook(data: ExportData) -> bytes:
    """The XLSX workbook: sheets Summary, People, Deal trace, Adjustments."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has one sheet
    book.remove(first)
    _summary(_Sheet(book.create_sheet("Summary"), data))
    _people(_Sheet(book.create_sheet("People"), data))
    _trace(_Sheet(book.create_sheet("Deal trace"), data))
    _ledger(_Sheet(book.create_sheet("Adjustments"), data))
    book.properties.title = file_name(data, "xlsx")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _summary(s: _Sheet) -> None:
    d = s.data
    s.header("Field", "Value")
    s.add(["Status", d.status])
    s.add(["Draft", d.draft])
    s.add(["Run id", d.run_id])
    s.add(["Run number", d.run_number])
    s.add(["Period", d.period])
    s.add(["State", d.state])
    s.add(["Currency", d.currency])
    s.add(["As of (UTC)", _instant(d.as_of)])
    s.add(["Computed at (UTC)", _instant(d.computed_at)])
    s.add(["Locked at (UTC)", _instant(d.locked_at)])
    s.add(["Inputs checksum (sha256)", d.inputs_checksum])
    s.add(["Results checksum (sha256)", d.results_checksum])
    s.add(["Joint score", Decimal(d.joint_score)])
    s.add(["Multiplier", Decimal(d.multiplier)])
    s.add(["Won revenue", d.won_revenue], money=(1,))
    s.add(["Marketing-sourced pipeline", d.sourced_pipeline], money=(1,))
    s.add(["Pool formula (minor units)", d.formula])
    s.add(["Carried forward in", d.carried_forward], money=(1,))
    s.add(["Pool", d.pool], money=(1,))
    s.add(["Paid", d.paid], money=(1,))
    s.add(["Leftover", d.leftover], money=(1,))
    s.add(["Leftover policy", d.leftover_policy])
    s.add([])
    s.header("Team", "Share", "Rule", "Team pool", "Paid", "Leftover", "People")
    for t in d.teams:
        s.add([t.team, Decimal(t.share), t.rule, t.pool, t.paid, t.leftover, t.people], money=(3, 4, 5))


def _people(s: _Sheet) -> None:
    d = s.data
    s.header(
        "Employee id", "Name", "Email", "Team", "Period", "Run id", "Currency", "Credit", "Proration",
        "Cap", "Capped", "Earning", "Adjustments", "Clawbacks", "Carried in", "Total", "Payable",
        "Carried out",
    )  # fmt: skip
    for p in d.people:
        s.add(
            [
                p.employee_id, p.name, p.email, p.team, d.period, d.run_id, d.currency, p.credit, p.proration,
                p.cap, p.capped, p.earning, p.adjustment, p.clawback, p.carried_in, p.total, p.payable,
                p.carried_out,
            ],
            money=(7, 9, 11, 12, 13, 14, 15, 16, 17),
        )  # fmt: skip


def _trace(s: _Sheet) -> None:
    s.header("Name", "Email", "Deal", "Deal name", "Campaign id", "Campaign", "Credit", "Amount")
    for t in s.data.traces:
        s.add(
            [
                t.name,
                t.email,
                t.deal_external_id,
                t.deal_name,
                t.campaign_id,
                t.campaign_name,
                t.credit,
                t.amount,
            ],
            money=(6, 7),
        )


def _ledger(s: _Sheet) -> None:
    s.header("Name", "Email", "Kind", "Deal", "Reason", "Amount")
    for e in s.data.ledger:
        s.add([e.name, e.email, e.kind, e.deal_external_id, e.reason, e.amount], money=(5,))


# -- JSON ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    """An amount: `minor` is exact (integer minor units), `major` the same in major units, as text."""

    minor: int
    major: str


@dataclass(frozen=True, slots=True)
class TeamExport:
    """A team pool."""

    team: str
    share: str
    rule: str
    pool: Money
    paid: Money
    leftover: Money
    people: int


@dataclass(frozen=True, slots=True)
class PersonExport:
    """A payroll row with the person's whole line: what they earned, the other lines, what is paid."""

    person_id: int
    employee_id: str
    name: str
    email: str
    team: str
    credit: Money | None
    proration: str | None
    cap: Money | None
    capped: bool
    earning: Money
    adjustment: Money
    clawback: Money
    carried_in: Money
    total: Money
    payable: Money
    carried_out: Money


@dataclass(frozen=True, slots=True)
class TraceExport:
    """A part of a person's earning from one deal (and campaign)."""

    person_id: int
    email: str
    opportunity_id: int
    deal_external_id: str
    deal_name: str
    campaign_id: int | None
    campaign_name: str
    credit: Money
    amount: Money


@dataclass(frozen=True, slots=True)
class LedgerExport:
    """An adjustment, clawback, balance carried in or negative total carried out."""

    person_id: int
    email: str
    kind: str
    amount: Money
    reason: str
    deal_external_id: str


@dataclass(frozen=True, slots=True)
class PoolExport:
    """How the pool was made, with the formula in minor units."""

    joint_score: str
    multiplier: str
    won_revenue: Money
    sourced_pipeline: Money
    carried_forward: Money
    pool: Money
    formula: str


@dataclass(frozen=True, slots=True)
class ExportRead:
    """A bonus run for finance: the payroll and the workbook's sheets, with the run id and checksums."""

    run_id: int
    run_number: int
    period: str
    state: str
    status: str
    draft: bool
    currency: str
    decimals: int
    as_of: str
    computed_at: str | None
    locked_at: str | None
    inputs_checksum: str
    results_checksum: str
    pool: PoolExport
    paid: Money
    leftover: Money
    leftover_policy: str
    teams: list[TeamExport]
    people: list[PersonExport]
    traces: list[TraceExport]
    adjustments: list[LedgerExport]


def export_read(data: ExportData) -> ExportRead:
    """The JSON export as typed data (what the API answers and documents)."""
    cur = data.currency

    def m(minor: int) -> Money:
        return Money(minor=minor, major=str(_major(minor, cur)))

    return ExportRead(
        run_id=data.run_id,
        run_number=data.run_number,
        period=data.period,
        state=data.state,
        status=data.status,
        draft=data.draft,
        currency=cur,
        decimals=decimals(cur),
        as_of=_instant(data.as_of),
        computed_at=_instant(data.computed_at) or None,
        locked_at=_instant(data.locked_at) or None,
        inputs_checksum=data.inputs_checksum,
        results_checksum=data.results_checksum,
        pool=PoolExport(
            joint_score=data.joint_score,
            multiplier=data.multiplier,
            won_revenue=m(data.won_revenue),
            sourced_pipeline=m(data.sourced_pipeline),
            carried_forward=m(data.carried_forward),
            pool=m(data.pool),
            formula=data.formula,
        ),
        paid=m(data.paid),
        leftover=m(data.leftover),
        leftover_policy=data.leftover_policy,
        teams=[
            TeamExport(
                team=t.team,
                share=t.share,
                rule=t.rule,
                pool=m(t.pool),
                paid=m(t.paid),
                leftover=m(t.leftover),
                people=t.people,
            )
            for t in data.teams
        ],
        people=[
            PersonExport(
                person_id=p.person_id,
                employee_id=p.employee_id,
                name=p.name,
                email=p.email,
                team=p.team,
                credit=None if p.credit is None else m(p.credit),
                proration=None if p.proration is None else str(p.proration),
                cap=None if p.cap is None else m(p.cap),
                capped=p.capped,
                earning=m(p.earning),
                adjustment=m(p.adjustment),
                clawback=m(p.clawback),
                carried_in=m(p.carried_in),
                total=m(p.total),
                payable=m(p.payable),
                carried_out=m(p.carried_out),
            )
            for p in data.people
        ],
        traces=[
            TraceExport(
                person_id=t.person_id,
                email=t.email,
                opportunity_id=t.opportunity_id,
                deal_external_id=t.deal_external_id,
                deal_name=t.deal_name,
                campaign_id=t.campaign_id,
                campaign_name=t.campaign_name,
                credit=m(t.credit),
                amount=m(t.amount),
            )
            for t in data.traces
        ],
        adjustments=[
            LedgerExport(
                person_id=e.person_id,
                email=e.email,
                kind=e.kind,
                amount=m(e.amount),
                reason=e.reason,
                deal_external_id=e.deal_external_id,
            )
            for e in data.ledger
        ],
    )


def export_json(data: ExportData) -> dict[str, Any]:
    """The JSON export as plain JSON data (ints, strings, bools, None; never a float)."""
    return asdict(export_read(data))
