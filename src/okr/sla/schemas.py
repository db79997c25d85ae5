"""What the SLA forms send and how it is read: the policy form (raw text kept for redisplay, with an error
per field) and the reason forms."""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final

from okr.sla import core

WEEKDAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_HOURS: Final = 720
MAX_COMMITMENT: Final = 10_000_000
REASON_MAX: Final = 100


@dataclass(frozen=True, slots=True)
class PolicyFields:
    """A valid policy as typed: hours, working days and window (local minutes), targets, seen version."""

    follow_up_hours: int
    weekdays: tuple[int, ...]
    day_start_minute: int
    day_end_minute: int
    acceptance_target: Decimal  # 0..1
    mql_commitment: int


@dataclass(slots=True)
class PolicyForm:
    """The policy form as the browser sent it, and each field's error."""

    follow_up_hours: str = str(core.DEFAULT_HOURS)
    weekdays: list[str] = field(default_factory=lambda: [str(d) for d in core.DEFAULT_WEEKDAYS])
    day_start: str = "09:00"
    day_end: str = "17:00"
    acceptance_target: str = "90"
    mql_commitment: str = "0"
    version: str = "0"
    errors: dict[str, str] = field(default_factory=dict)


def clock_text(minute: int) -> str:
    """Local minutes as `HH:MM` (1440: `24:00`)."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def percent_text(rate: Decimal) -> str:
    """0.905 as `90.5`."""
    text = format((rate * 100).normalize(), "f")
    return text


def _minute(text: str, *, end: bool) -> int | None:
    parts = text.strip().split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        return None
    hours, minutes = int(parts[0]), int(parts[1])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    found = hours * 60 + minutes
    # A working day that ends at midnight: the time picker can only say 00:00.
    return core.MINUTES_PER_DAY if end and found in (0, core.MINUTES_PER_DAY) else found


def _whole(text: str, low: int, high: int) -> int | None:
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit() or len(cleaned) > 9:
        return None
    value = int(cleaned)
    return value if low <= value <= high else None


def read_policy(form: PolicyForm) -> PolicyFields | None:
    """The fields of a valid form; None after writing each problem into `form.errors`."""
    errors = form.errors
    hours = _whole(form.follow_up_hours, 1, MAX_HOURS)
    if hours is None:
        errors["follow_up_hours"] = f"Enter a whole number of business hours from 1 to {MAX_HOURS}."
    days = sorted({int(d) for d in form.weekdays if d.isdigit() and int(d) < 7})
    if not days:
        errors["weekdays"] = "Tick at least one working day."
    start = _minute(form.day_start, end=False)
    end = _minute(form.day_end, end=True)
    if start is None or start >= core.MINUTES_PER_DAY:
        errors["day_start"] = "Enter the time the working day starts, like 09:00."
    if end is None:
        errors["day_end"] = "Enter the time the working day ends, like 17:00 (00:00 for midnight)."
    elif start is not None and start < core.MINUTES_PER_DAY and end <= start:
        errors["day_end"] = f"The working day must end after it starts ({clock_text(start)})."
    target: Decimal | None
    try:
        target = Decimal(form.acceptance_target.strip().rstrip("%").strip())
    except InvalidOperation:
        target = None
    if target is None or not target.is_finite() or not (0 <= target <= 100) or target != round(target, 2):
        errors["acceptance_target"] = "Enter a percentage from 0 to 100 (at most two decimals), like 90."
        target = None
    commitment = _whole(form.mql_commitment, 0, MAX_COMMITMENT)
    if commitment is None:
        errors["mql_commitment"] = "Enter a whole number of MQLs per month, 0 or more."
    if errors or hours is None or start is None or end is None or target is None or commitment is None:
        return None
    return PolicyFields(hours, tuple(days), start, end, target / 100, commitment)


def read_reason_name(text: str) -> tuple[str | None, str | None]:
    """A reason's name, trimmed and with inner spaces collapsed; or the error to show."""
    name = " ".join(text.split())
    if not name:
        return None, "Enter the reason, like “no budget”."
    if len(name) > REASON_MAX:
        return None, f"Keep the reason to {REASON_MAX} characters."
    return name, None
