"""Jinja filters and globals shared by every page: money, numbers, KPI values, local dates, URLs."""

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment

from okr import __version__
from okr.lib.money import format_money, round_half_up
from okr.settings import Settings

DASH = "–"


def money(minor: int | None, currency: str = "USD") -> str:
    """`USD 12,500.00`, or an en dash for no value."""
    return DASH if minor is None else format_money(minor, currency)


def signed_money(minor: int | None, currency: str = "USD") -> str:
    """`+USD 1,200.00` / `−USD 300.00`: a change in money."""
    if minor is None:
        return DASH
    sign = "+" if minor > 0 else "−" if minor < 0 else "±"
    return sign + format_money(abs(minor), currency)


def _quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def percent(value: Decimal | None, places: int = 1) -> str:
    """A ratio as a percent: Decimal('0.256') -> '25.6 %'."""
    if value is None:
        return DASH
    return f"{_quantize(Decimal(value) * 100, places)} %"


def number(value: int | Decimal | None, places: int = 0) -> str:
    """A count or measure with thousands separators: 12345 -> '12,345'."""
    if value is None:
        return DASH
    if places == 0 and isinstance(value, int):
        return f"{value:,}"
    return f"{_quantize(Decimal(value), places):,}"


def kpi_value(value: int | Decimal | None, unit: str, currency: str = "USD") -> str:
    """A KPI's value as people read it, by its unit (count, currency, percent, days, hours, per_day)."""
    if value is None:
        return DASH
    if unit == "currency":
        return money(int(value), currency)
    if unit == "percent":
        return percent(Decimal(value))
    if unit == "days":
        return f"{number(value, 1)} days"
    if unit == "hours":
        return f"{number(value, 1)} h"
    if unit == "per_day":
        return f"{money(round_half_up(Decimal(value)), currency)} / day"
    return number(value)


def kpi_delta(delta: int | Decimal | None, unit: str, currency: str = "USD") -> str:
    """A change in a KPI's own unit, signed: '+37', '+USD 1,200.00', '+3.1 pts'."""
    if delta is None:
        return DASH
    if unit == "currency":
        return signed_money(int(delta), currency)
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    if unit == "percent":
        return f"{sign}{_quantize(abs(Decimal(delta)) * 100, 1)} pts"
    magnitude: int | Decimal = -delta if delta < 0 else delta
    return sign + kpi_value(magnitude, unit, currency)


def signed_percent(value: Decimal | None, places: int = 1) -> str:
    """A relative change: Decimal('0.125') -> '+12.5 %'."""
    if value is None:
        return DASH
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return sign + percent(abs(value), places)


def url_with(path: str, params: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """`path?query` from `params` with `changes` applied; a None value drops the parameter."""
    merged = {**(params or {}), **changes}
    query = urlencode([(k, str(v)) for k, v in merged.items() if v is not None and v != ""])
    return f"{path}?{query}" if query else path


def make_date_filters(tz: ZoneInfo) -> dict[str, Any]:
    """Filters that show stored UTC instants in the organisation's time zone."""

    def local_date(value: dt.datetime | dt.date | None) -> str:
        if value is None:
            return DASH
        if isinstance(value, dt.datetime):
            return value.astimezone(tz).date().isoformat()
        return value.isoformat()

    def local_datetime(value: dt.datetime | None) -> str:
        if value is None:
            return DASH
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    def iso_datetime(value: dt.datetime | None) -> str:
        return "" if value is None else value.astimezone(dt.UTC).isoformat()

    return {"local_date": local_date, "local_datetime": local_datetime, "iso_datetime": iso_datetime}


def configure(env: Environment, settings: Settings) -> None:
    """Register okr's filters and globals on the Jinja environment."""
    env.filters.update(
        money=money,
        signed_money=signed_money,
        percent=percent,
        signed_percent=signed_percent,
        number=number,
        kpi_value=kpi_value,
        kpi_delta=kpi_delta,
        **make_date_filters(settings.tz),
    )
    env.globals.update(
        org_name=settings.org_name,
        org_currency=settings.org_currency,
        org_timezone=settings.org_timezone,
        okr_version=__version__,
        settings_mode=settings.mode,
        url_with=url_with,
    )
    env.autoescape = True
    env.trim_blocks = True
    env.lstrip_blocks = True
