"""The import contract (DESIGN 7): the entities in load order, their columns, one parser per entity.

Pure: no database, no web. `parse_row` turns one raw row (column -> text, or a JSON value) into a
typed record, or into the list of everything wrong with it.

Row numbers are the ones a user sees. In a CSV file the header is row 1 and the first data row is
row 2; a quoted cell that spans lines is still one row, as in a spreadsheet. In a JSON array the
first element is row 1.
"""

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from okr.lib.money import MoneyError, decimals, parse_decimal, to_minor

FX_RATES: Final = "fx_rates"
PEOPLE: Final = "people"
CAMPAIGNS: Final = "campaigns"
ACCOUNTS: Final = "accounts"
LEADS: Final = "leads"
TOUCHPOINTS: Final = "touchpoints"
OPPORTUNITIES: Final = "opportunities"
OPPORTUNITY_SPLITS: Final = "opportunity_splits"

# The load order: every entity only references entities before it.
ENTITIES: Final[tuple[str, ...]] = (
    FX_RATES,
    PEOPLE,
    CAMPAIGNS,
    ACCOUNTS,
    LEADS,
    TOUCHPOINTS,
    OPPORTUNITIES,
    OPPORTUNITY_SPLITS,
)

ROLES: Final = ("member", "leader", "finance", "admin")
STATUSES: Final = ("open", "won", "lost")
FORECAST_CATEGORIES: Final = ("pipeline", "best_case", "commit", "closed")
SPLIT_KINDS: Final = ("revenue", "overlay")
LEAD_STAGES: Final = ("mql_at", "accepted_at", "rejected_at", "sql_at", "recycled_at")

# The database's limits: Percent is NUMERIC(9, 4), Rate is NUMERIC(20, 10), amounts are BIGINT.
PERCENT_PLACES: Final = 4
RATE_PLACES: Final = 10
MAX_RATE: Final = Decimal(10) ** 10
MAX_MINOR: Final = 2**63 - 1
HUNDRED: Final = Decimal(100)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class RowError:
    """One thing wrong with one row: where (row number, column) and why, in plain words."""

    row: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The error as the API and the admin page show it."""
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an import file."""

    name: str
    required: bool = False
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One import file: its columns, its key columns, and the file name a user loads it from."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def file_name(self) -> str:
        """The data-set file holding this entity, e.g. `leads.csv`."""
        return f"{self.name}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column, in the documented order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """The columns that must be present and non-empty."""
        return tuple(c.name for c in self.columns if c.required)


def _spec(name: str, key: tuple[str, ...], *columns: Column) -> EntitySpec:
    return EntitySpec(name=name, columns=columns, key=key)


def _req(name: str, max_length: int | None = None) -> Column:
    return Column(name, required=True, max_length=max_length)


def _opt(name: str, max_length: int | None = None) -> Column:
    return Column(name, required=False, max_length=max_length)


SPECS: Final[dict[str, EntitySpec]] = {
    s.name: s
    for s in (
        _spec(
            FX_RATES, ("currency", "valid_from"), _req("currency"), _req("rate_to_base"), _req("valid_from")
        ),
        _spec(
            PEOPLE,
            ("email",),
            _req("email", 320),
            _req("name", 200),
            _req("team", 64),
            _opt("role"),
            _opt("employee_id", 64),
            _opt("start_date"),
            _opt("end_date"),
            _opt("target_bonus"),
        ),
        _spec(
            CAMPAIGNS,
            ("external_id",),
            _req("external_id", 100),
            _req("name", 300),
            _req("channel", 50),
            _opt("owner_email", 320),
            _opt("cost"),
            _opt("currency"),
            _opt("start_date"),
            _opt("end_date"),
        ),
        _spec(
            ACCOUNTS,
            ("external_id",),
            _req("external_id", 100),
            _req("name", 300),
            _opt("segment", 50),
            _opt("industry", 100),
        ),
        _spec(
            LEADS,
            ("external_id",),
            _req("external_id", 100),
            _req("account_external_id", 100),
            _opt("email", 320),
            _opt("owner_email", 320),
            _req("created_at"),
            _opt("mql_at"),
            _opt("accepted_at"),
            _opt("rejected_at"),
            _opt("rejection_reason", 100),
            _opt("sql_at"),
            _opt("recycled_at"),
        ),
        _spec(
            TOUCHPOINTS,
            ("external_id",),
            _req("external_id", 100),
            _req("lead_external_id", 100),
            _req("campaign_external_id", 100),
            _req("occurred_at"),
            _opt("kind", 50),
        ),
        _spec(
            OPPORTUNITIES,
            ("external_id",),
            _req("external_id", 100),
            _req("account_external_id", 100),
            _req("name", 300),
            _req("owner_email", 320),
            _req("amount"),
            _opt("currency"),
            _req("created_at"),
            _opt("closed_at"),
            _req("status"),
            _opt("stage", 100),
            _opt("probability"),
            _opt("forecast_category"),
        ),
        _spec(
            OPPORTUNITY_SPLITS,
            ("opportunity_external_id", "person_email", "kind"),
            _req("opportunity_external_id", 100),
            _req("person_email", 320),
            _req("kind"),
            _req("percent"),
        ),
    )
}


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FxRateRecord:
    """One row of fx_rates: `rate_to_base` org-currency units per unit of `currency`."""

    row: int
    currency: str
    rate_to_base: Decimal
    valid_from: dt.date

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return f"{self.currency} {self.valid_from.isoformat()}"


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One row of people; `target_bonus` in minor units of the org currency."""

    row: int
    email: str
    name: str
    team: str
    role: str
    employee_id: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    target_bonus: int | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.email


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """One row of campaigns; `cost` in minor units of `currency`."""

    row: int
    external_id: str
    name: str
    channel: str
    owner_email: str | None
    cost: int
    currency: str
    start_date: dt.date | None
    end_date: dt.date | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.external_id


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One row of accounts."""

    row: int
    external_id: str
    name: str
    segment: str | None
    industry: str | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.external_id


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """One row of leads, timestamps in UTC."""

    row: int
    external_id: str
    account_external_id: str
    email: str | None
    owner_email: str | None
    created_at: dt.datetime
    mql_at: dt.datetime | None
    accepted_at: dt.datetime | None
    rejected_at: dt.datetime | None
    rejection_reason: str | None
    sql_at: dt.datetime | None
    recycled_at: dt.datetime | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.external_id


@dataclass(frozen=True, slots=True)
class TouchpointRecord:
    """One row of touchpoints."""

    row: int
    external_id: str
    lead_external_id: str
    campaign_external_id: str
    occurred_at: dt.datetime
    kind: str | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.external_id


@dataclass(frozen=True, slots=True)
class OpportunityRecord:
    """One row of opportunities; `amount` in minor units of `currency`, probability in percent."""

    row: int
    external_id: str
    account_external_id: str
    name: str
    owner_email: str
    amount: int
    currency: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    status: str
    stage: str | None
    probability: Decimal | None
    forecast_category: str | None

    @property
    def key(self) -> str:
        """The row's key inside its file."""
        return self.external_id


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """One row of opportunity_splits; `percent` of the opportunity's amount."""

    row: int
    opportunity_external_id: str
    person_email: str
    kind: str
    percent: Decimal

    @property
    def key(self) -> str:
        """The row's key inside its file: one split per opportunity, person and kind."""
        return f"{self.opportunity_external_id}\x1f{self.person_email}\x1f{self.kind}"


Record = (
    FxRateRecord
    | PersonRecord
    | CampaignRecord
    | AccountRecord
    | LeadRecord
    | TouchpointRecord
    | OpportunityRecord
    | SplitRecord
)


# --- header, keys and reference messages ---------------------------------------------------------


def get_spec(entity: str) -> EntitySpec:
    """The spec of `entity`; KeyError when there is no such import entity."""
    return SPECS[entity]


def normalise_header(names: Iterable[str]) -> list[str]:
    """Header names as okr reads them: trimmed, lower-case, without a byte-order mark."""
    return [name.replace("\ufeff", "").strip().lower() for name in names]


def check_header(entity: str, header: Sequence[str]) -> list[RowError]:
    """What is wrong with a file's header (row 1): duplicate, unknown and missing columns."""
    spec = SPECS[entity]
    allowed = spec.column_names
    errors: list[RowError] = []
    seen: set[str] = set()
    for name in header:
        if not name:
            errors.append(RowError(1, "", "a column has no name in the header"))
        elif name in seen:
            errors.append(RowError(1, name, f"column '{name}' appears more than once in the header"))
        elif name not in allowed:
            errors.append(RowError(1, name, f"unknown column '{name}' (allowed: {', '.join(allowed)})"))
        seen.add(name)
    for name in spec.required:
        if name not in seen:
            errors.append(RowError(1, name, f"required column '{name}' is missing from the header"))
    return errors


def unknown_column(entity: str, row: int, name: str) -> RowError:
    """The error for a JSON key that is not a column of `entity`."""
    allowed = ", ".join(SPECS[entity].column_names)
    return RowError(row, name, f"unknown column '{name}' (allowed: {allowed})")


def key_column(entity: str) -> str:
    """The column a duplicate key is reported on."""
    return {FX_RATES: "valid_from", PEOPLE: "email", OPPORTUNITY_SPLITS: "person_email"}.get(
        entity, "external_id"
    )


def duplicate_error(record: Record, first_row: int) -> RowError:
    """The error for a row whose key an earlier row of the same file already has."""
    if isinstance(record, SplitRecord):
        reason = (
            f"duplicate: '{record.person_email}' already has a {record.kind} split on "
            f"'{record.opportunity_external_id}' in row {first_row}"
        )
        return RowError(record.row, "person_email", reason)
    if isinstance(record, FxRateRecord):
        reason = (
            f"duplicate: a {record.currency} rate valid from {record.valid_from.isoformat()} "
            f"is already in row {first_row}"
        )
        return RowError(record.row, "valid_from", reason)
    if isinstance(record, PersonRecord):
        return RowError(record.row, "email", f"duplicate: '{record.email}' is already in row {first_row}")
    return RowError(record.row, "external_id", f"duplicate: '{record.key}' is already in row {first_row}")


_REFERENCE_FILES: Final = {
    "account": ACCOUNTS,
    "person": PEOPLE,
    "lead": LEADS,
    "campaign": CAMPAIGNS,
    "opportunity": OPPORTUNITIES,
}


def unknown_reference(row: int, column: str, kind: str, value: str) -> RowError:
    """The error for a reference to a record okr does not have, e.g. an unknown lead."""
    return RowError(row, column, f"unknown {kind} '{value}' (load {_REFERENCE_FILES[kind]}.csv first)")


def revenue_split_errors(opportunity: str, revenue_rows: Sequence[tuple[int, Decimal]]) -> list[RowError]:
    """Errors on every revenue row of an opportunity whose revenue splits do not add up to 100 %."""
    total = sum((p for _, p in revenue_rows), Decimal(0))
    if not revenue_rows or total == HUNDRED:
        return []
    rows = ", ".join(str(r) for r, _ in revenue_rows)
    reason = (
        f"revenue splits of '{opportunity}' add up to {_plain(total)} %, not 100 % (rows {rows}); "
        "give every revenue split, or only overlay splits to keep 100 % with the owner"
    )
    return [RowError(r, "percent", reason) for r, _ in revenue_rows]


# --- parsing ------------------------------------------------------------------------------------


def normalise_value(value: Any) -> str | None:
    """A raw cell or JSON value as text: trimmed, None when empty; numbers written out in full."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr is the shortest text that reads back as this float: what the JSON file said.
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    raise TypeError(type(value).__name__)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Row:
    """One raw row being read: its cleaned values and the errors found so far."""

    __slots__ = ("bad", "errors", "row", "values")

    def __init__(self, columns: tuple[Column, ...], raw: Mapping[str, Any], row: int) -> None:
        self.row = row
        self.errors: list[RowError] = []
        self.bad: set[str] = set()
        values: dict[str, str | None] = {}
        self.values = values
        get = raw.get
        for column in columns:
            name = column.name
            value = get(name)
            # The hot path (CSV text) stays inline: this runs once per cell of million-row files.
            if value.__class__ is str:
                value = value.strip() or None
            elif value is not None:
                try:
                    value = normalise_value(value)
                except TypeError:
                    self.fail(name, "expected a single value, not a list or an object")
                    continue
            values[name] = value
            if value is None:
                if column.required:
                    self.fail(name, "required, but empty")
            elif column.max_length is not None and len(value) > column.max_length:
                self.fail(name, f"too long: {len(value)} characters (at most {column.max_length})")

    def fail(self, column: str, reason: str) -> None:
        self.errors.append(RowError(self.row, column, reason))
        self.bad.add(column)

    def ok(self, *columns: str) -> bool:
        return not any(c in self.bad for c in columns)

    def _get(self, name: str) -> str | None:
        return None if name in self.bad else self.values.get(name)

    def text(self, name: str) -> str | None:
        return self._get(name)

    def need_text(self, name: str) -> str:
        return self._get(name) or ""

    def email(self, name: str) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        if not _EMAIL.fullmatch(value):
            self.fail(name, f"not an email address: '{value}'")
            return None
        return value.lower()

    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> str | None:
        value = self._get(name)
        if value is None:
            return None if name in self.bad else default
        lowered = value.lower()
        if lowered not in options:
            self.fail(name, f"'{value}' is not one of: {', '.join(options)}")
            return None
        return lowered

    def timestamp(self, name: str) -> dt.datetime | None:
        value = self._get(name)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, f"not a timestamp: '{value}' (use ISO 8601, e.g. 2026-10-01T14:30:00Z)")
            return None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)

    def date(self, name: str) -> dt.date | None:
        value = self._get(name)
        if value is None:
            return None
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(name, f"not a date: '{value}' (use YYYY-MM-DD)")
            return None

    def currency(self, name: str, default: str) -> str | None:
        value = self._get(name)
        if value is None:
            return None if name in self.bad else default
        code = value.upper()
        try:
            decimals(code)
        except MoneyError:
            self.fail(name, f"unknown currency '{value}' (use an ISO 4217 code such as USD)")
            return None
        return code

    def amount(self, name: str, currency: str | None) -> int | None:
        """Major units to minor units of `currency`; None when empty, invalid or the currency is bad."""
        value = self._get(name)
        if value is None or currency is None:
            return None
        try:
            number = parse_decimal(value)
        except MoneyError:
            self.fail(name, f"not an amount: '{value}' (use a plain number such as 12500.00)")
            return None
        if number < 0:
            self.fail(name, f"must not be negative: '{value}'")
            return None
        try:
            minor = to_minor(number, currency)
        except MoneyError:
            self.fail(name, f"'{value}' has more decimals than {currency} allows ({decimals(currency)})")
            return None
        if minor > MAX_MINOR:
            self.fail(name, f"too large: '{value}'")
            return None
        return minor

    def number(
        self, name: str, *, places: int, low: Decimal, high: Decimal, low_open: bool, rule: str
    ) -> Decimal | None:
        """A decimal within [low, high] (or (low, high] when `low_open`) with at most `places` decimals."""
        value = self._get(name)
        if value is None:
            return None
        try:
            number = parse_decimal(value)
        except MoneyError:
            self.fail(name, f"not a number: '{value}'")
            return None
        if number < low or (low_open and number == low) or number > high:
            self.fail(name, f"{rule}, not '{value}'")
            return None
        if number != number.quantize(Decimal(1).scaleb(-places)):
            self.fail(name, f"'{value}' has more than {places} decimals")
            return None
        return number

    def not_before(self, name: str, value: dt.datetime | None, other: str, start: dt.datetime | None) -> None:
        if value is not None and start is not None and value < start:
            self.fail(name, f"{_iso(value)} is before {other} ({_iso(start)})")

    def dates_in_order(self, start: dt.date | None, end: dt.date | None) -> None:
        if start is not None and end is not None and end < start:
            self.fail("end_date", f"end_date {end.isoformat()} is before start_date {start.isoformat()}")


def _fx_rate(r: _Row, org_currency: str) -> FxRateRecord | None:
    currency = r.currency("currency", org_currency)
    rate = r.number(
        "rate_to_base",
        places=RATE_PLACES,
        low=Decimal(0),
        high=MAX_RATE,
        low_open=True,
        rule="must be a number greater than 0",
    )
    valid_from = r.date("valid_from")
    if r.errors or currency is None or rate is None or valid_from is None:
        return None
    return FxRateRecord(row=r.row, currency=currency, rate_to_base=rate, valid_from=valid_from)


def _person(r: _Row, org_currency: str) -> PersonRecord | None:
    email = r.email("email")
    role = r.choice("role", ROLES, default="member")
    start, end = r.date("start_date"), r.date("end_date")
    r.dates_in_order(start, end)
    target_bonus = r.amount("target_bonus", org_currency)
    if r.errors or email is None or role is None:
        return None
    return PersonRecord(
        row=r.row,
        email=email,
        name=r.need_text("name"),
        team=r.need_text("team"),
        role=role,
        employee_id=r.text("employee_id"),
        start_date=start,
        end_date=end,
        target_bonus=target_bonus,
    )


def _campaign(r: _Row, org_currency: str) -> CampaignRecord | None:
    owner = r.email("owner_email")
    currency = r.currency("currency", org_currency)
    cost = r.amount("cost", currency)
    start, end = r.date("start_date"), r.date("end_date")
    r.dates_in_order(start, end)
    if r.errors or currency is None:
        return None
    return CampaignRecord(
        row=r.row,
        external_id=r.need_text("external_id"),
        name=r.need_text("name"),
        channel=r.need_text("channel"),
        owner_email=owner,
        cost=cost or 0,
        currency=currency,
        start_date=start,
        end_date=end,
    )


def _account(r: _Row, org_currency: str) -> AccountRecord | None:
    if r.errors:
        return None
    return AccountRecord(
        row=r.row,
        external_id=r.need_text("external_id"),
        name=r.need_text("name"),
        segment=r.text("segment"),
        industry=r.text("industry"),
    )


def _lead(r: _Row, org_currency: str) -> LeadRecord | None:
    email = r.email("email")
    owner = r.email("owner_email")
    created_at = r.timestamp("created_at")
    stages = {name: r.timestamp(name) for name in LEAD_STAGES}
    for name, value in stages.items():
        r.not_before(name, value, "created_at", created_at)
    rejection_reason = r.text("rejection_reason")
    if stages["rejected_at"] is not None and rejection_reason is None and r.ok("rejection_reason"):
        r.fail("rejection_reason", "required when rejected_at is set")
    if r.errors or created_at is None:
        return None
    return LeadRecord(
        row=r.row,
        external_id=r.need_text("external_id"),
        account_external_id=r.need_text("account_external_id"),
        email=email,
        owner_email=owner,
        created_at=created_at,
        mql_at=stages["mql_at"],
        accepted_at=stages["accepted_at"],
        rejected_at=stages["rejected_at"],
        rejection_reason=rejection_reason,
        sql_at=stages["sql_at"],
        recycled_at=stages["recycled_at"],
    )


def _touchpoint(r: _Row, org_currency: str) -> TouchpointRecord | None:
    occurred_at = r.timestamp("occurred_at")
    if r.errors or occurred_at is None:
        return None
    return TouchpointRecord(
        row=r.row,
        external_id=r.need_text("external_id"),
        lead_external_id=r.need_text("lead_external_id"),
        campaign_external_id=r.need_text("campaign_external_id"),
        occurred_at=occurred_at,
        kind=r.text("kind"),
    )


def _opportunity(r: _Row, org_currency: str) -> OpportunityRecord | None:
    owner = r.email("owner_email")
    currency = r.currency("currency", org_currency)
    amount = r.amount("amount", currency)
    created_at, closed_at = r.timestamp("created_at"), r.timestamp("closed_at")
    status = r.choice("status", STATUSES)
    if status in ("won", "lost") and closed_at is None and r.ok("closed_at"):
        r.fail("closed_at", f"required when status is {status}")
    elif status == "open" and closed_at is not None:
        r.fail("closed_at", "must be empty while status is open")
    r.not_before("closed_at", closed_at, "created_at", created_at)
    probability = r.number(
        "probability",
        places=PERCENT_PLACES,
        low=Decimal(0),
        high=HUNDRED,
        low_open=False,
        rule="must be a percent from 0 to 100",
    )
    category = r.choice("forecast_category", FORECAST_CATEGORIES)
    if (
        r.errors
        or owner is None
        or currency is None
        or amount is None
        or created_at is None
        or status is None
    ):
        return None
    return OpportunityRecord(
        row=r.row,
        external_id=r.need_text("external_id"),
        account_external_id=r.need_text("account_external_id"),
        name=r.need_text("name"),
        owner_email=owner,
        amount=amount,
        currency=currency,
        created_at=created_at,
        closed_at=closed_at,
        status=status,
        stage=r.text("stage"),
        probability=probability,
        forecast_category=category,
    )


def _split(r: _Row, org_currency: str) -> SplitRecord | None:
    email = r.email("person_email")
    kind = r.choice("kind", SPLIT_KINDS)
    percent = r.number(
        "percent",
        places=PERCENT_PLACES,
        low=Decimal(0),
        high=HUNDRED,
        low_open=True,
        rule="must be a percent greater than 0 and at most 100",
    )
    if r.errors or email is None or kind is None or percent is None:
        return None
    return SplitRecord(
        row=r.row,
        opportunity_external_id=r.need_text("opportunity_external_id"),
        person_email=email,
        kind=kind,
        percent=percent,
    )


_PARSERS: Final[dict[str, Callable[[_Row, str], Record | None]]] = {
    FX_RATES: _fx_rate,
    PEOPLE: _person,
    CAMPAIGNS: _campaign,
    ACCOUNTS: _account,
    LEADS: _lead,
    TOUCHPOINTS: _touchpoint,
    OPPORTUNITIES: _opportunity,
    OPPORTUNITY_SPLITS: _split,
}


def parse_row(entity: str, raw: Mapping[str, Any], *, row: int, org_currency: str) -> Record | list[RowError]:
    """Read one raw row of `entity` into its record, or return every error found in it."""
    r = _Row(SPECS[entity].columns, raw, row)
    record = _PARSERS[entity](r, org_currency)
    if record is None:
        return r.errors
    return record
