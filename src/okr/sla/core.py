"""The lead SLA (DESIGN 5): business-hours arithmetic and the status of a lead against its deadline.

Plain data in, plain data out: no database, no web. Instants are timezone-aware; the business calendar
says, in the organisation's time zone, which weekdays are working days and the working window of each
(minutes from local midnight, end excluded; 0 to 1440 is the whole day). Durations are timedeltas,
exact to the microsecond.

Conventions (each is tested):

- A working day's window is [local start, local end) converted to UTC on that very date, so a day on
  which daylight saving time begins or ends has the hours the wall clock shows: 09:00 to 17:00 is 8 hours
  on every working day, and 00:00 to 24:00 is 23 or 25 hours on the change days.
- The deadline of an MQL is the instant at which `hours` business hours have elapsed since `mql_at`. An
  MQL that arrives outside business hours starts its clock at the next opening. With no working day at
  all the calendar is refused.
- A lead is `met` when it was accepted or rejected at or before its deadline, `breached` when later or
  still open past it, `pending` while open and not yet due.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo

MINUTES_PER_DAY: Final = 1440
DEFAULT_HOURS: Final = 24
DEFAULT_WEEKDAYS: Final = (0, 1, 2, 3, 4)
"""Monday to Friday (date.weekday())."""
DEFAULT_START: Final = 9 * 60
DEFAULT_END: Final = 17 * 60

SlaStatus = Literal["met", "breached", "pending"]


class CalendarError(ValueError):
    """A business calendar that cannot be used (no working day, an empty window)."""


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Working days and hours in one time zone; `holidays` are local dates that are not working days."""

    tz: ZoneInfo
    weekdays: tuple[int, ...] = DEFAULT_WEEKDAYS
    start_minute: int = DEFAULT_START
    end_minute: int = DEFAULT_END
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.weekdays or any(d not in range(7) for d in self.weekdays):
            raise CalendarError("Choose at least one working day (Monday to Sunday).")
        if not (0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY):
            raise CalendarError("The working day must start before it ends, within the day (00:00 to 24:00).")

    @classmethod
    def always(cls, tz: ZoneInfo) -> "BusinessCalendar":
        """Every hour of every day: business hours are calendar hours."""
        return cls(tz=tz, weekdays=tuple(range(7)), start_minute=0, end_minute=MINUTES_PER_DAY)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The day's working window in UTC, or None on a day off."""
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        return _local(day, self.start_minute, self.tz), _local(day, self.end_minute, self.tz)

    def windows(self, since: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The working windows that end after `since`, in order, starting with the one holding it (endless:
        every week has a working day, and holidays are finitely many)."""
        day = since.astimezone(self.tz).date() - dt.timedelta(days=1)  # a window may start the day before
        while True:
            found = self.window(day)
            if found is not None and found[1] > since:
                yield found
            day += dt.timedelta(days=1)


def _local(day: dt.date, minute: int, tz: ZoneInfo) -> dt.datetime:
    """Local wall-clock `minute` of `day` (1440: the next midnight) as a UTC instant."""
    if minute == MINUTES_PER_DAY:
        day, minute = day + dt.timedelta(days=1), 0
    naive = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
    # A wall-clock time inside a spring-forward gap does not exist: fold=0 reads it with the offset in
    # force before the gap, which lands just after the gap once in UTC (09:00 is never in one in practice).
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(dt.UTC)


def add_business_time(start: dt.datetime, duration: dt.timedelta, calendar: BusinessCalendar) -> dt.datetime:
    """The instant `duration` of business time after `start` (the next opening when it is 0)."""
    if duration < dt.timedelta(0):
        raise ValueError("the duration must be >= 0")
    at = _aware(start, "start")
    left = duration
    for open_, close in calendar.windows(at):
        begin = max(open_, at)
        if left <= close - begin:
            return begin + left
        left -= close - begin
    raise AssertionError("unreachable: windows() never ends")


def business_time_between(start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar) -> dt.timedelta:
    """Business time in [start, end); negative when end is before start."""
    a, b = _aware(start, "start"), _aware(end, "end")
    if b < a:
        return -business_time_between(b, a, calendar)
    total = dt.timedelta(0)
    for open_, close in calendar.windows(a):
        if open_ >= b:
            break
        total += min(close, b) - max(open_, a)
    return total


def deadline(mql_at: dt.datetime, hours: int, calendar: BusinessCalendar) -> dt.datetime:
    """When an MQL must have been accepted or rejected: `hours` business hours after it arrived."""
    if hours <= 0:
        raise ValueError("the follow-up time must be at least one hour")
    return add_business_time(mql_at, dt.timedelta(hours=hours), calendar)


def status(
    mql_at: dt.datetime, disposed_at: dt.datetime | None, *, due: dt.datetime, now: dt.datetime
) -> SlaStatus:
    """met, breached or pending against the deadline `due` (see the module's conventions)."""
    if disposed_at is not None:
        return "met" if disposed_at <= due else "breached"
    return "breached" if due < now else "pending"


def time_left(due: dt.datetime, now: dt.datetime, calendar: BusinessCalendar) -> dt.timedelta:
    """Business time from `now` to the deadline; negative (business time overdue) past it."""
    return business_time_between(now, due, calendar)
