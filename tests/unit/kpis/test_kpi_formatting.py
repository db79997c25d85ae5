"""How KPI values, changes and dates read on the pages (okr.lib.templating)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from okr.lib.templating import (
    kpi_delta,
    kpi_value,
    make_date_filters,
    number,
    percent,
    signed_percent,
    url_with,
)


def test_values_by_unit() -> None:
    assert kpi_value(1234567, "currency", "USD") == "USD 12,345.67"
    assert kpi_value(1500, "currency", "JPY") == "JPY 1,500"
    assert kpi_value(Decimal("0.2564"), "percent") == "25.6 %"
    assert kpi_value(12345, "count") == "12,345"
    assert kpi_value(Decimal("36.25"), "days") == "36.3 days"
    assert kpi_value(Decimal("4.04"), "hours") == "4.0 h"
    assert kpi_value(Decimal("150050.5"), "per_day", "USD") == "USD 1,500.51 / day"
    assert kpi_value(None, "currency") == "–"


def test_changes_are_signed_in_the_kpi_unit() -> None:
    assert kpi_delta(120000, "currency", "USD") == "+USD 1,200.00"
    assert kpi_delta(-30000, "currency", "USD") == "−USD 300.00"
    assert kpi_delta(Decimal("0.031"), "percent") == "+3.1 pts"
    assert kpi_delta(-12, "count") == "−12"
    assert kpi_delta(0, "count") == "±0"
    assert signed_percent(Decimal("0.125")) == "+12.5 %"
    assert signed_percent(Decimal("-0.0449")) == "−4.5 %"


def test_numbers_and_percents_round_half_up() -> None:
    assert percent(Decimal("0.12345"), 2) == "12.35 %"
    assert percent(None) == "–"
    assert number(Decimal("2.5"), 0) == "3"
    assert number(None) == "–"


def test_dates_show_in_the_org_time_zone() -> None:
    filters = make_date_filters(ZoneInfo("America/New_York"))
    moment = dt.datetime(2026, 10, 1, 2, 0, tzinfo=dt.UTC)
    assert filters["local_date"](moment) == "2026-09-30"
    assert filters["local_datetime"](moment) == "2026-09-30 22:00"
    assert filters["local_date"](None) == "–"


def test_url_with_keeps_and_replaces_parameters() -> None:
    params = {"kpi": "mqls", "period": "2026-Q3"}
    assert (
        url_with("/dashboard/records", params, page=2) == "/dashboard/records?kpi=mqls&period=2026-Q3&page=2"
    )
    assert url_with("/x", params, period=None) == "/x?kpi=mqls"
    assert url_with("/x") == "/x"
    assert url_with("/x", {"q": "a&b"}) == "/x?q=a%26b"
