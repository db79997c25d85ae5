"""Fiscal quarters: keys like `2026-Q4`, their dates, and their UTC bounds in the org's time zone.

A fiscal year is named by the calendar year in which it ends (a year starting in February 2026
ends in January 2027 and is FY2027); with the default start month 1 it is the calendar year.
"""

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_KEY = re.compile(r"^(\d{4})-Q([1-4])$")


class PeriodKeyError(ValueError):
    """A period key is not of the form YYYY-QN."""


@dataclass(frozen=True, slots=True, order=True)
class Quarter:
    """One fiscal quarter."""

    year: int
    quarter: int

    @property
    def key(self) -> str:
        """The key, e.g. `2026-Q4`."""
        return f"{self.year}-Q{self.quarter}"

    def __str__(self) -> str:
        return self.key

    def shift(self, n: int) -> "Quarter":
        """The quarter n quarters later (earlier when n < 0)."""
        index = self.year * 4 + (self.quarter - 1) + n
        return Quarter(index // 4, index % 4 + 1)

    def dates(self, start_month: int = 1) -> tuple[dt.date, dt.date]:
        """First and last day (inclusive) of the quarter."""
        # The fiscal year `year` ends in calendar year `year`; it starts in year-1 unless start_month is 1.
        first_year = self.year if start_month == 1 else self.year - 1
        month0 = (start_month - 1) + (self.quarter - 1) * 3
        start = dt.date(first_year + month0 // 12, month0 % 12 + 1, 1)
        end_month0 = month0 + 3
        end = dt.date(first_year + end_month0 // 12, end_month0 % 12 + 1, 1) - dt.timedelta(days=1)
        return start, end

    def utc_bounds(self, tz: ZoneInfo, start_month: int = 1) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the quarter as aware UTC datetimes, midnight to midnight in `tz`."""
        start, end = self.dates(start_month)
        return local_midnight_utc(start, tz), local_midnight_utc(end + dt.timedelta(days=1), tz)


def local_midnight_utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Midnight at the start of `day` in `tz`, as an aware UTC datetime."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def parse_key(key: str) -> Quarter:
    """`2026-Q4` to a Quarter; raises PeriodKeyError otherwise."""
    m = _KEY.match(key.strip())
    if not m:
        raise PeriodKeyError(f"{key!r} is not a period key like 2026-Q4")
    return Quarter(int(m.group(1)), int(m.group(2)))


def quarter_of(day: dt.date, start_month: int = 1) -> Quarter:
    """The fiscal quarter holding a calendar day."""
    months_in = (day.month - start_month) % 12
    fy_start_year = day.year if day.month >= start_month else day.year - 1
    fiscal_year = fy_start_year if start_month == 1 else fy_start_year + 1
    return Quarter(fiscal_year, months_in // 3 + 1)


def quarter_of_instant(moment: dt.datetime, tz: ZoneInfo, start_month: int = 1) -> Quarter:
    """The fiscal quarter holding an aware instant, judged by the local date in `tz`."""
    return quarter_of(moment.astimezone(tz).date(), start_month)
