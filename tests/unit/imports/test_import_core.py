"""The import contract's pure part: columns, parsers, and the exact row, column and reason of each error."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from okr.imports import core
from okr.imports.core import (
    CampaignRecord,
    FxRateRecord,
    LeadRecord,
    OpportunityRecord,
    PersonRecord,
    RowError,
    SplitRecord,
    TouchpointRecord,
)

UTC = dt.UTC

LEAD = {
    "external_id": "LEAD-1",
    "account_external_id": "ACC-1",
    "created_at": "2026-07-01T10:00:00Z",
}
OPPORTUNITY = {
    "external_id": "OPP-1",
    "account_external_id": "ACC-1",
    "name": "Globex platform",
    "owner_email": "ana@acme.test",
    "amount": "12500.10",
    "currency": "USD",
    "created_at": "2026-07-01T10:00:00Z",
    "status": "open",
}
PERSON = {"email": "ana@acme.test", "name": "Ana", "team": "sales"}
CAMPAIGN = {"external_id": "CMP-1", "name": "Search", "channel": "paid_search"}
SPLIT = {
    "opportunity_external_id": "OPP-1",
    "person_email": "ana@acme.test",
    "kind": "revenue",
    "percent": "60",
}
FX = {"currency": "EUR", "rate_to_base": "1.08", "valid_from": "2026-01-01"}
TOUCH = {
    "external_id": "TP-1",
    "lead_external_id": "LEAD-1",
    "campaign_external_id": "CMP-1",
    "occurred_at": "2026-07-01T10:00:00Z",
}


def parse(entity: str, base: dict[str, Any], **changes: Any) -> Any:
    """Parse `base` with `changes` as row 7 of a USD organisation."""
    return core.parse_row(entity, {**base, **changes}, row=7, org_currency="USD")


def errors_of(entity: str, base: dict[str, Any], **changes: Any) -> list[tuple[int, str, str]]:
    result = parse(entity, base, **changes)
    assert isinstance(result, list), f"expected errors, got {result!r}"
    return [(e.row, e.column, e.reason) for e in result]


def only_error(entity: str, base: dict[str, Any], **changes: Any) -> tuple[int, str, str]:
    errors = errors_of(entity, base, **changes)
    assert len(errors) == 1, errors
    return errors[0]


# --- entities and headers ------------------------------------------------------------------------


def test_entities_in_design_load_order() -> None:
    assert core.ENTITIES == (
        "fx_rates",
        "people",
        "campaigns",
        "accounts",
        "leads",
        "touchpoints",
        "opportunities",
        "opportunity_splits",
    )
    assert core.get_spec("leads").file_name == "leads.csv"


def test_required_columns_follow_design() -> None:
    assert core.get_spec("people").required == ("email", "name", "team")
    assert core.get_spec("opportunities").required == (
        "external_id",
        "account_external_id",
        "name",
        "owner_email",
        "amount",
        "created_at",
        "status",
    )
    assert core.get_spec("opportunity_splits").required == (
        "opportunity_external_id",
        "person_email",
        "kind",
        "percent",
    )


def test_unknown_header_column_reported_on_row_one_by_name() -> None:
    errors = core.check_header("accounts", ["external_id", "name", "revenue"])
    assert [(e.row, e.column) for e in errors] == [(1, "revenue")]
    assert errors[0].reason.startswith(
        "unknown column 'revenue' (allowed: external_id, name, segment, industry"
    )


def test_missing_and_duplicate_header_columns() -> None:
    errors = core.check_header("accounts", ["external_id", "segment", "segment"])
    assert [(e.row, e.column, e.reason) for e in errors] == [
        (1, "segment", "column 'segment' appears more than once in the header"),
        (1, "name", "required column 'name' is missing from the header"),
    ]


def test_header_names_are_trimmed_lower_cased_and_lose_the_bom() -> None:
    assert core.normalise_header(["\ufeffExternal_ID ", " Name"]) == ["external_id", "name"]


# --- generic cell rules --------------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_required_column_must_not_be_empty(empty: Any) -> None:
    assert only_error("accounts", {"external_id": "ACC-1", "name": "Globex"}, name=empty) == (
        7,
        "name",
        "required, but empty",
    )


def test_missing_required_key_is_the_same_as_empty() -> None:
    assert errors_of("accounts", {"external_id": "ACC-1"}) == [(7, "name", "required, but empty")]


def test_too_long_values_are_refused() -> None:
    assert only_error("accounts", {"external_id": "A" * 101, "name": "x"}) == (
        7,
        "external_id",
        "too long: 101 characters (at most 100)",
    )


def test_every_error_of_a_row_is_reported() -> None:
    errors = errors_of("opportunities", OPPORTUNITY, amount="abc", created_at="yesterday", status="maybe")
    assert [(row, column) for row, column, _ in errors] == [(7, "amount"), (7, "created_at"), (7, "status")]


def test_values_are_trimmed() -> None:
    record = parse("accounts", {"external_id": "  ACC-1 ", "name": " Globex ", "segment": "  "})
    assert (record.external_id, record.name, record.segment) == ("ACC-1", "Globex", None)


# --- timestamps and dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01T14:30:00Z", dt.datetime(2026, 10, 1, 14, 30, tzinfo=UTC)),
        ("2026-10-01T14:30:00+02:00", dt.datetime(2026, 10, 1, 12, 30, tzinfo=UTC)),
        ("2026-10-01T14:30:00-05:00", dt.datetime(2026, 10, 1, 19, 30, tzinfo=UTC)),
        ("2026-10-01T14:30:00", dt.datetime(2026, 10, 1, 14, 30, tzinfo=UTC)),
        ("2026-10-01 14:30:00.250000Z", dt.datetime(2026, 10, 1, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2026-10-01", dt.datetime(2026, 10, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_become_aware_utc(text: str, expected: dt.datetime) -> None:
    record = parse("touchpoints", TOUCH, occurred_at=text)
    assert isinstance(record, TouchpointRecord)
    assert record.occurred_at == expected
    assert record.occurred_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-13-01T00:00:00Z", "01/10/2026 14:30", "2026-10-01T25:00:00"]
)
def test_bad_timestamps_are_refused(text: str) -> None:
    assert only_error("touchpoints", TOUCH, occurred_at=text) == (
        7,
        "occurred_at",
        f"not a timestamp: '{text}' (use ISO 8601, e.g. 2026-10-01T14:30:00Z)",
    )


@pytest.mark.parametrize("text", ["2026-13-01", "2026/01/01", "20260101", "01-02-2026", "2026-02-30"])
def test_dates_must_be_yyyy_mm_dd(text: str) -> None:
    assert only_error("people", PERSON, start_date=text) == (
        7,
        "start_date",
        f"not a date: '{text}' (use YYYY-MM-DD)",
    )


# --- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12500.10", "USD", 1250010),
        ("12500", "USD", 1250000),
        ("0.01", "USD", 1),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("99.5", "eur", 9950),
    ],
)
def test_amounts_convert_exactly_to_minor_units(amount: str, currency: str, minor: int) -> None:
    record = parse("opportunities", OPPORTUNITY, amount=amount, currency=currency)
    assert isinstance(record, OpportunityRecord)
    assert (record.amount, record.currency) == (minor, currency.upper())


def test_empty_currency_means_the_org_currency() -> None:
    record = core.parse_row("opportunities", {**OPPORTUNITY, "currency": ""}, row=2, org_currency="EUR")
    assert isinstance(record, OpportunityRecord)
    assert (record.amount, record.currency) == (1250010, "EUR")


def test_org_currency_decides_the_decimals() -> None:
    record = core.parse_row(
        "opportunities", {**OPPORTUNITY, "currency": "", "amount": "500"}, row=2, org_currency="JPY"
    )
    assert isinstance(record, OpportunityRecord)
    assert (record.amount, record.currency) == (500, "JPY")
    refused = core.parse_row("opportunities", {**OPPORTUNITY, "currency": None}, row=2, org_currency="JPY")
    assert refused == [RowError(2, "amount", "'12500.10' has more decimals than JPY allows (0)")]


@pytest.mark.parametrize(
    ("amount", "currency", "column", "reason"),
    [
        ("1.005", "USD", "amount", "'1.005' has more decimals than USD allows (2)"),
        ("500.5", "JPY", "amount", "'500.5' has more decimals than JPY allows (0)"),
        ("-5", "USD", "amount", "must not be negative: '-5'"),
        ("12,500.00", "USD", "amount", "not an amount: '12,500.00' (use a plain number such as 12500.00)"),
        ("1e5", "USD", "amount", "not an amount: '1e5' (use a plain number such as 12500.00)"),
        ("10", "XYZ", "currency", "unknown currency 'XYZ' (use an ISO 4217 code such as USD)"),
    ],
)
def test_bad_amounts_are_refused(amount: str, currency: str, column: str, reason: str) -> None:
    assert only_error("opportunities", OPPORTUNITY, amount=amount, currency=currency) == (7, column, reason)


# --- opportunities -------------------------------------------------------------------------------


def test_won_and_lost_need_closed_at() -> None:
    assert only_error("opportunities", OPPORTUNITY, status="won") == (
        7,
        "closed_at",
        "required when status is won",
    )
    assert only_error("opportunities", OPPORTUNITY, status="LOST") == (
        7,
        "closed_at",
        "required when status is lost",
    )


def test_open_must_not_be_closed() -> None:
    assert only_error("opportunities", OPPORTUNITY, closed_at="2026-08-01T00:00:00Z") == (
        7,
        "closed_at",
        "must be empty while status is open",
    )


def test_closed_at_not_before_created_at() -> None:
    assert only_error("opportunities", OPPORTUNITY, status="won", closed_at="2026-06-30T10:00:00Z") == (
        7,
        "closed_at",
        "2026-06-30T10:00:00Z is before created_at (2026-07-01T10:00:00Z)",
    )
    same = parse("opportunities", OPPORTUNITY, status="won", closed_at="2026-07-01T12:00:00+02:00")
    assert isinstance(same, OpportunityRecord)
    assert same.status == "won"


def test_status_must_be_known() -> None:
    assert only_error("opportunities", OPPORTUNITY, status="pending") == (
        7,
        "status",
        "'pending' is not one of: open, won, lost",
    )


@pytest.mark.parametrize(
    ("text", "value"), [("0", Decimal(0)), ("12.5", Decimal("12.5")), ("100", Decimal(100))]
)
def test_probability_is_a_percent(text: str, value: Decimal) -> None:
    record = parse("opportunities", OPPORTUNITY, probability=text)
    assert isinstance(record, OpportunityRecord)
    assert record.probability == value


@pytest.mark.parametrize("text", ["101", "-1", "100.01"])
def test_probability_out_of_range(text: str) -> None:
    assert only_error("opportunities", OPPORTUNITY, probability=text) == (
        7,
        "probability",
        f"must be a percent from 0 to 100, not '{text}'",
    )


def test_probability_with_too_many_decimals() -> None:
    assert only_error("opportunities", OPPORTUNITY, probability="12.34567") == (
        7,
        "probability",
        "'12.34567' has more than 4 decimals",
    )


def test_forecast_category_must_be_known() -> None:
    assert only_error("opportunities", OPPORTUNITY, forecast_category="maybe") == (
        7,
        "forecast_category",
        "'maybe' is not one of: pipeline, best_case, commit, closed",
    )
    record = parse("opportunities", OPPORTUNITY, forecast_category="Best_Case")
    assert isinstance(record, OpportunityRecord)
    assert record.forecast_category == "best_case"


def test_owner_email_is_lower_cased() -> None:
    record = parse("opportunities", OPPORTUNITY, owner_email="Ana@ACME.test")
    assert isinstance(record, OpportunityRecord)
    assert record.owner_email == "ana@acme.test"


# --- splits ---------------------------------------------------------------------------------------


def test_split_kind_must_be_revenue_or_overlay() -> None:
    assert only_error("opportunity_splits", SPLIT, kind="bonus") == (
        7,
        "kind",
        "'bonus' is not one of: revenue, overlay",
    )


@pytest.mark.parametrize("text", ["0", "-10", "100.5"])
def test_split_percent_in_zero_to_hundred(text: str) -> None:
    assert only_error("opportunity_splits", SPLIT, percent=text) == (
        7,
        "percent",
        f"must be a percent greater than 0 and at most 100, not '{text}'",
    )


def test_split_record() -> None:
    record = parse("opportunity_splits", SPLIT, percent="33.3333", person_email="Ana@Acme.Test")
    assert record == SplitRecord(7, "OPP-1", "ana@acme.test", "revenue", Decimal("33.3333"))


def test_revenue_splits_must_add_up_to_exactly_100() -> None:
    assert core.revenue_split_errors("OPP-1", [(2, Decimal(60)), (3, Decimal(40))]) == []
    assert core.revenue_split_errors("OPP-1", [(2, Decimal("33.3334")), (3, Decimal("66.6666"))]) == []
    assert core.revenue_split_errors("OPP-1", []) == []
    errors = core.revenue_split_errors("OPP-1", [(2, Decimal(60)), (5, Decimal(30))])
    assert [(e.row, e.column) for e in errors] == [(2, "percent"), (5, "percent")]
    assert errors[0].reason.startswith("revenue splits of 'OPP-1' add up to 90 %, not 100 % (rows 2, 5)")


# --- leads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["mql_at", "accepted_at", "rejected_at", "sql_at", "recycled_at"])
def test_lead_timestamps_not_before_created_at(stage: str) -> None:
    extra = {"rejection_reason": "no budget"} if stage == "rejected_at" else {}
    assert only_error("leads", LEAD, **{stage: "2026-07-01T09:59:59Z"}, **extra) == (
        7,
        stage,
        "2026-07-01T09:59:59Z is before created_at (2026-07-01T10:00:00Z)",
    )


def test_rejected_lead_needs_a_reason() -> None:
    assert only_error("leads", LEAD, rejected_at="2026-07-02T00:00:00Z") == (
        7,
        "rejection_reason",
        "required when rejected_at is set",
    )
    record = parse("leads", LEAD, rejected_at="2026-07-02T00:00:00Z", rejection_reason="no budget")
    assert isinstance(record, LeadRecord)
    assert record.rejection_reason == "no budget"


def test_lead_record() -> None:
    record = parse("leads", LEAD, email="Jo@Globex.test", mql_at="2026-07-02T12:00:00+02:00")
    assert isinstance(record, LeadRecord)
    assert record.email == "jo@globex.test"
    assert record.mql_at == dt.datetime(2026, 7, 2, 10, tzinfo=UTC)
    assert record.owner_email is None


# --- people ---------------------------------------------------------------------------------------


def test_person_defaults_and_lower_cased_email() -> None:
    record = parse("people", PERSON, email="Ana.Ruiz@ACME.test", target_bonus="20000.50")
    assert record == PersonRecord(
        7, "ana.ruiz@acme.test", "Ana", "sales", "member", None, None, None, 2000050
    )


@pytest.mark.parametrize("email", ["ana", "ana@acme", "ana @acme.test", "@acme.test", "ana@@acme.test"])
def test_person_email_must_be_valid(email: str) -> None:
    assert only_error("people", PERSON, email=email) == (7, "email", f"not an email address: '{email}'")


def test_person_role_must_be_known() -> None:
    assert only_error("people", PERSON, role="boss") == (
        7,
        "role",
        "'boss' is not one of: member, leader, finance, admin",
    )
    record = parse("people", PERSON, role="Admin")
    assert isinstance(record, PersonRecord)
    assert record.role == "admin"


def test_person_target_bonus_in_org_currency_and_not_negative() -> None:
    assert only_error("people", PERSON, target_bonus="-1") == (
        7,
        "target_bonus",
        "must not be negative: '-1'",
    )
    record = core.parse_row("people", {**PERSON, "target_bonus": "1000"}, row=2, org_currency="JPY")
    assert isinstance(record, PersonRecord)
    assert record.target_bonus == 1000


def test_person_end_date_not_before_start_date() -> None:
    assert only_error("people", PERSON, start_date="2026-02-01", end_date="2026-01-31") == (
        7,
        "end_date",
        "end_date 2026-01-31 is before start_date 2026-02-01",
    )


# --- campaigns and fx rates -----------------------------------------------------------------------


def test_campaign_cost_defaults_to_zero_in_org_currency() -> None:
    record = parse("campaigns", CAMPAIGN)
    assert record == CampaignRecord(7, "CMP-1", "Search", "paid_search", None, 0, "USD", None, None)


def test_campaign_cost_not_negative() -> None:
    assert only_error("campaigns", CAMPAIGN, cost="-0.01") == (7, "cost", "must not be negative: '-0.01'")


def test_campaign_cost_in_its_currency() -> None:
    record = parse("campaigns", CAMPAIGN, cost="8000.00", currency="eur")
    assert isinstance(record, CampaignRecord)
    assert (record.cost, record.currency) == (800000, "EUR")


def test_fx_rate_must_be_positive() -> None:
    for text in ("0", "-1.2"):
        assert only_error("fx_rates", FX, rate_to_base=text) == (
            7,
            "rate_to_base",
            f"must be a number greater than 0, not '{text}'",
        )


def test_fx_rate_record() -> None:
    record = parse("fx_rates", FX, currency="jpy", rate_to_base="0.0067")
    assert record == FxRateRecord(7, "JPY", Decimal("0.0067"), dt.date(2026, 1, 1))
    assert only_error("fx_rates", FX, currency="EURO") == (
        7,
        "currency",
        "unknown currency 'EURO' (use an ISO 4217 code such as USD)",
    )


# --- JSON values ----------------------------------------------------------------------------------


def test_json_numbers_and_nulls_are_read_as_text() -> None:
    raw = {
        **OPPORTUNITY,
        "amount": 12500.1,
        "probability": 25,
        "stage": None,
        "forecast_category": None,
    }
    record = core.parse_row("opportunities", raw, row=1, org_currency="USD")
    assert isinstance(record, OpportunityRecord)
    assert (record.amount, record.probability, record.stage) == (1250010, Decimal(25), None)
    decimal_amount = core.parse_row(
        "opportunities", {**raw, "amount": Decimal("1.005")}, row=3, org_currency="USD"
    )
    assert decimal_amount == [RowError(3, "amount", "'1.005' has more decimals than USD allows (2)")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("  x ", "x"),
        (True, "true"),
        (7, "7"),
        (0.1, "0.1"),
        (1e-05, "0.00001"),
        (Decimal("2.50"), "2.50"),
    ],
)
def test_normalise_value(value: Any, text: str | None) -> None:
    assert core.normalise_value(value) == text


def test_nested_json_value_is_an_error() -> None:
    assert only_error("accounts", {"external_id": "ACC-1", "name": "x"}, segment=["smb"]) == (
        7,
        "segment",
        "expected a single value, not a list or an object",
    )


def test_duplicate_messages_name_the_first_row() -> None:
    record = parse("leads", LEAD)
    assert core.duplicate_error(record, 3) == RowError(
        7, "external_id", "duplicate: 'LEAD-1' is already in row 3"
    )
    split = parse("opportunity_splits", SPLIT)
    assert core.duplicate_error(split, 2) == RowError(
        7, "person_email", "duplicate: 'ana@acme.test' already has a revenue split on 'OPP-1' in row 2"
    )


def test_unknown_reference_message_says_what_to_load() -> None:
    assert core.unknown_reference(4, "lead_external_id", "lead", "LEAD-9") == RowError(
        4, "lead_external_id", "unknown lead 'LEAD-9' (load leads.csv first)"
    )
