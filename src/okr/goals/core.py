"""Goals (DESIGN 4): attainment, scores, pace, forecasts, burn-up geometry, sandbagging, roll forward.

Plain data in, plain data out: no database and no web import, and no float. Arithmetic runs on exact
Fractions and becomes a Decimal once, at the end, with 28 significant digits (exact when it fits).

Conventions this module fixes where DESIGN 4 is silent (each is tested):

- A KR with no value yet (`current is None`) has attainment 0. A milestone is 1 when `done`; when only
  a value is given, when that value has reached the target.
- `attainment` refuses only what DESIGN refuses, target == start for increase_to / decrease_to; its
  formula reads either way. The form check (`validate_key_result`) also refuses a target on the wrong
  side of the start (an "increase" that goes down), a stretch that is not beyond the target, and a
  metric KR whose unit is not its KPI's (a per-day KPI is measured in currency).
- Pace, increase_to / decrease_to: actual progress = (current - start) / (target - start), the share
  of the way to the target in either direction; expected progress = elapsed / length, elapsed clamped
  to [0, length]; pace = max(actual, 0) / expected.
  - At the period start nothing is expected yet (0), so pace is None (undefined) and the status is
    on track, unless the value has already moved away from the target: then at risk, as it would be
    at any later moment.
  - No value yet: no pace and no status (the page says there is no check-in yet).
- Pace, stay_above / stay_below: there is no path to compare with, so pace is the attainment: 1 and
  on track while the condition holds, 0 and at risk once it is broken.
- Pace, milestone: done gives 1, on track; not done while the period runs gives no pace and no
  status (the owner's check-in confidence speaks for it); not done once the period is over gives 0,
  at risk.
- Moments (forecast, chart) are all dates or all aware datetimes, in the org's time zone so that
  dates read locally. `period_end` is the exclusive end: `Quarter.utc_bounds()[1]` converted to the
  org zone, or for dates the day after the last day. Points outside the period or without a value
  are left out.
- Linear forecast: least squares through (period start, start value) and the points, evaluated at the
  period end; None with no point besides the start, or when every point sits at the period start.
- Pipeline forecast: `probability_percent` is the opportunity's stored percent (0 to 100), not a
  ratio; an open deal in category `closed` counts in full like `commit`; no category or `pipeline`
  counts 0, and so does a `best_case` deal without a probability. All amounts in one currency (the
  services convert first); rounded half up once, at the end.
- Sandbagging is judged for increase_to and decrease_to only: a stay_* threshold the team already
  meets is a guardrail, not a soft target, and a milestone has no trailing actual.
- Roll forward skips archived objectives and archived KRs, keeps every other field, and gives a
  manual increase_to / decrease_to KR its last checked-in value as the new start (it continues from
  where it got to); metric KRs and other kinds keep their start. A KR whose start has reached its
  target then fails `validate_draft` on `target`, so the leader is asked for a new one.
"""

import datetime as dt
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from typing import Final, NamedTuple

from okr.kpis.core import KPIS
from okr.lib.money import round_half_up

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
DEFAULT_KR_CAP: Final = Decimal("1.5")
"""DESIGN 6.1's default `kr_cap`: the most one KR's attainment counts toward the bonus."""

YELLOW_FROM: Final = Decimal("0.4")
GREEN_FROM: Final = Decimal("0.7")
ON_TRACK_FROM: Final = Decimal("0.95")
LAGGING_FROM: Final = Decimal("0.75")

TITLE_MAX: Final = 300  # the title columns are String(300)
UNITS: Final = ("count", "currency", "percent", "days", "hours")
FILTER_KEYS: Final = ("team", "person", "campaign", "channel", "segment")
FORECAST_CATEGORIES: Final = ("pipeline", "best_case", "commit", "closed")

# One rounding at the end of each formula; a fixed context so a caller's context cannot change it.
_CTX: Final = Context(prec=28)
# Sums of money x percent: exact for any realistic amount, so the only rounding is round_half_up's.
_EXACT: Final = Context(prec=100)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_MICROSECONDS_PER_DAY: Final = 86_400 * 1_000_000
_CENT: Final = Decimal("0.01")
_TENTH: Final = Decimal("0.1")

Moment = dt.date  # a date, or an aware datetime (a subclass); one kind per call
Duration = dt.timedelta | int  # an int is a number of days
Point = tuple[dt.date, Decimal | None]


class GoalError(ValueError):
    """A goal input that cannot be computed as given (the message says what to fix)."""


class Kind(enum.StrEnum):
    """How a KR's attainment is computed (the values of the `key_result.kind` column)."""

    INCREASE_TO = "increase_to"
    DECREASE_TO = "decrease_to"
    STAY_ABOVE = "stay_above"
    STAY_BELOW = "stay_below"
    MILESTONE = "milestone"


class Source(enum.StrEnum):
    """Where a KR's value comes from."""

    MANUAL = "manual"
    METRIC = "metric"


class Band(enum.StrEnum):
    """An objective score's display band (Google's practice)."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"

    @property
    def label(self) -> str:
        """The word shown with the colour."""
        return _BAND_LABELS[self]


_BAND_LABELS: Final = {Band.RED: "Behind", Band.YELLOW: "Progressing", Band.GREEN: "On target"}


class PaceStatus(enum.StrEnum):
    """Where a KR stands against its expected value today."""

    ON_TRACK = "on_track"
    LAGGING = "lagging"
    AT_RISK = "at_risk"

    @property
    def label(self) -> str:
        """The word shown with the colour."""
        return _PACE_LABELS[self]


_PACE_LABELS: Final = {
    PaceStatus.ON_TRACK: "On track",
    PaceStatus.LAGGING: "Lagging",
    PaceStatus.AT_RISK: "At risk",
}


class ProgressBar(NamedTuple):
    """A progress bar's fill in [0, 1] and the overflow beyond 100 %."""

    fill: Decimal
    overflow: Decimal


class Pace(NamedTuple):
    """A KR's pace and status; None where the module docstring says there is none."""

    value: Decimal | None
    status: PaceStatus | None


class OpenOpportunity(NamedTuple):
    """An open deal for the pipeline forecast; the probability is the stored percent (0 to 100)."""

    amount_minor: int
    forecast_category: str | None
    probability_percent: Decimal | None


# ---------------------------------------------------------------------------------------------------
# Exact arithmetic helpers


def _fr(value: Decimal | int, name: str) -> Fraction:
    """An exact Fraction of a Decimal or int; refuses float, bool and NaN / infinity."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise GoalError(f"{name} must be a Decimal or an int, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise GoalError(f"{name} must be a finite number, got {value}")
    return Fraction(value)


def _dec(value: Fraction) -> Decimal:
    """A Fraction as a Decimal of 28 significant digits."""
    return _CTX.divide(Decimal(value.numerator), Decimal(value.denominator))


def _kind(kind: str) -> Kind:
    """The Kind named `kind`; raises GoalError."""
    try:
        return Kind(kind)
    except ValueError:
        raise GoalError(f"unknown key result kind {kind!r}") from None


def _span(start: Decimal, target: Decimal) -> tuple[Fraction, Fraction]:
    """Start and target as Fractions; refuses a target equal to the start (DESIGN 4)."""
    s, t = _fr(start, "start"), _fr(target, "target")
    if s == t:
        raise GoalError("a key result whose target equals its start cannot be scored")
    return s, t


def _micro(value: Duration, name: str) -> int:
    """A duration in whole microseconds; an int counts days."""
    if isinstance(value, dt.timedelta):
        return value // _MICROSECOND
    if isinstance(value, bool) or not isinstance(value, int):
        raise GoalError(f"{name} must be a timedelta or a number of days")
    return value * _MICROSECONDS_PER_DAY


def _share(elapsed: Duration, length: Duration) -> Fraction:
    """elapsed / length with elapsed clamped to [0, length]."""
    total = _micro(length, "length")
    if total <= 0:
        raise GoalError("the period length must be positive")
    return Fraction(min(max(_micro(elapsed, "elapsed"), 0), total), total)


# ---------------------------------------------------------------------------------------------------
# Validation (field name -> message, for the form to show beside each field)


def _is_number(value: object) -> bool:
    """A finite Decimal or int (not bool, not float)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return False
    return not isinstance(value, Decimal) or value.is_finite()


def _check_title(problems: dict[str, str], title: str, what: str) -> None:
    """Title present and short enough for its column."""
    text = title.strip() if isinstance(title, str) else ""
    if not text:
        problems["title"] = f"Give the {what} a title."
    elif len(text) > TITLE_MAX:
        problems["title"] = f"Keep the title to {TITLE_MAX} characters or fewer (it has {len(text)})."


def _check_weight(problems: dict[str, str], weight: Decimal | None) -> None:
    """Weight present and above 0."""
    if weight is None:
        problems["weight"] = "Enter a weight."
    elif not _is_number(weight):
        problems["weight"] = "Enter a number."
    elif weight <= 0:
        problems["weight"] = "The weight must be above 0."


def validate_objective(*, title: str, weight: Decimal | None, team_ids: Sequence[object]) -> dict[str, str]:
    """Problems with an objective's fields, keyed by parameter name; empty when it can be saved."""
    problems: dict[str, str] = {}
    _check_title(problems, title, "objective")
    _check_weight(problems, weight)
    if not team_ids:
        problems["team_ids"] = "Choose at least one owning team (a joint objective names both)."
    return problems


def validate_key_result(
    *,
    title: str,
    kind: str,
    unit: str,
    start_value: Decimal | None,
    target: Decimal | None,
    stretch: Decimal | None = None,
    weight: Decimal | None = ONE,
    counts_toward_bonus: object = False,
    source: str = Source.MANUAL,
    metric: str | None = None,
    filters: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Problems with a KR's fields, keyed by parameter name; empty when it can be saved."""
    problems: dict[str, str] = {}
    _check_title(problems, title, "key result")
    k = Kind(kind) if kind in set(Kind) else None
    if k is None:
        problems["kind"] = "Choose a kind: increase to, decrease to, stay above, stay below or milestone."
    if unit not in UNITS:
        problems["unit"] = "Choose a unit: count, currency, percent, days or hours."
    for name, value in (("start_value", start_value), ("target", target)):
        if value is None or not _is_number(value):
            problems[name] = "Enter a number."
    if stretch is not None and not _is_number(stretch):
        problems["stretch"] = "Enter a number, or leave it empty."
    numbers_ok = "start_value" not in problems and "target" not in problems
    if numbers_ok and start_value is not None and target is not None:
        if k in (Kind.INCREASE_TO, Kind.DECREASE_TO) and target == start_value:
            problems["target"] = "The target must differ from the start value."
        elif k is Kind.INCREASE_TO and target < start_value:
            problems["target"] = (
                "An increase needs a target above the start value; to go down, choose decrease to."
            )
        elif k is Kind.DECREASE_TO and target > start_value:
            problems["target"] = (
                "A decrease needs a target below the start value; to go up, choose increase to."
            )
    if stretch is not None and "stretch" not in problems and k is not None:
        if k is Kind.MILESTONE:
            problems["stretch"] = "A milestone has no stretch; leave it empty."
        elif "target" in problems or target is None:
            pass  # nothing to compare with until the target is right
        elif k in (Kind.INCREASE_TO, Kind.STAY_ABOVE) and stretch <= target:
            problems["stretch"] = "The stretch must be above the target."
        elif k in (Kind.DECREASE_TO, Kind.STAY_BELOW) and stretch >= target:
            problems["stretch"] = "The stretch must be below the target."
    _check_weight(problems, weight)
    if not isinstance(counts_toward_bonus, bool):
        problems["counts_toward_bonus"] = "Choose yes or no."
    if source not in set(Source):
        problems["source"] = "Choose metric (computed from pipeline data) or manual (from check-ins)."
    elif source == Source.METRIC:
        _check_metric(problems, unit, metric, filters)
    return problems


def _check_metric(
    problems: dict[str, str], unit: str, metric: str | None, filters: Mapping[str, object] | None
) -> None:
    """A metric KR names a KPI of the library, in that KPI's unit, with known filters."""
    if not metric:
        problems["metric"] = "Choose the KPI this key result follows."
        return
    kpi = KPIS.get(metric)
    if kpi is None:
        problems["metric"] = "Unknown KPI: choose one from the library."
        return
    # A per-day figure (pipeline velocity) is money per day: its KR is stated in currency.
    kpi_unit = "currency" if kpi.unit == "per_day" else str(kpi.unit)
    if "unit" not in problems and unit != kpi_unit:
        problems["unit"] = f"{kpi.label} is measured in {kpi_unit}: use that unit."
    unknown = sorted(set(filters or {}) - set(FILTER_KEYS))
    if unknown:
        problems["filters"] = (
            f"Unknown filter {', '.join(unknown)}: filter by team, person, campaign, channel or segment."
        )


# ---------------------------------------------------------------------------------------------------
# Attainment, progress bars, scores


def attainment(
    kind: str, start: Decimal, target: Decimal, current: Decimal | None, *, done: bool | None = None
) -> Decimal:
    """A KR's attainment by DESIGN 4: 0 or more, may exceed 1; 0 while it has no value."""
    k = _kind(kind)
    if k is Kind.MILESTONE:
        if done is not None:
            return ONE if done else ZERO
        if current is None:
            return ZERO
        return ONE if _fr(current, "current") >= _fr(target, "target") else ZERO
    if k is Kind.STAY_ABOVE or k is Kind.STAY_BELOW:
        if current is None:
            return ZERO
        c, t = _fr(current, "current"), _fr(target, "target")
        holds = c >= t if k is Kind.STAY_ABOVE else c <= t
        return ONE if holds else ZERO
    s, t = _span(start, target)
    if current is None:
        return ZERO
    # (current - start) / (target - start) equals DESIGN's (start - current) / (start - target).
    progress = (_fr(current, "current") - s) / (t - s)
    return _dec(progress) if progress > 0 else ZERO


def progress_bar(attainment: Decimal) -> ProgressBar:
    """The bar's fill (attainment clamped to [0, 1]) and the overflow shown past 100 %."""
    a = _fr(attainment, "attainment")
    return ProgressBar(_dec(min(max(a, Fraction(0)), Fraction(1))), _dec(max(a - 1, Fraction(0))))


def capped(attainment: Decimal, cap: Decimal = DEFAULT_KR_CAP) -> Decimal:
    """Attainment floored at 0 and capped at `cap` (the bonus plan's KR cap)."""
    c = _fr(cap, "cap")
    if c < 0:
        raise GoalError("the KR cap cannot be negative")
    return _dec(min(max(_fr(attainment, "attainment"), Fraction(0)), c))


def objective_score(key_results: Sequence[tuple[Decimal, Decimal]], *, cap: Decimal = ONE) -> Decimal | None:
    """Weighted mean of (attainment, weight) pairs, each attainment capped; None with no weight."""
    c = _fr(cap, "cap")
    if c < 0:
        raise GoalError("the cap cannot be negative")
    total = weighted = Fraction(0)
    for a, w in key_results:
        weight = _fr(w, "weight")
        if weight < 0:
            raise GoalError("a key result's weight cannot be negative")
        total += weight
        weighted += min(max(_fr(a, "attainment"), Fraction(0)), c) * weight
    if total == 0:
        return None
    return _dec(weighted / total)


def band(score: Decimal) -> Band:
    """The display band of an objective score: red below 0.4, yellow below 0.7, else green."""
    if score < YELLOW_FROM:
        return Band.RED
    if score < GREEN_FROM:
        return Band.YELLOW
    return Band.GREEN


# ---------------------------------------------------------------------------------------------------
# Pace


def expected_value(start: Decimal, target: Decimal, elapsed: Duration, length: Duration) -> Decimal:
    """Where the value should be after `elapsed` of `length`: start + (target - start) x elapsed / length."""
    s, t = _fr(start, "start"), _fr(target, "target")
    return _dec(s + (t - s) * _share(elapsed, length))


def _status(pace: Fraction) -> PaceStatus:
    """The pace status of an exact pace."""
    if pace >= Fraction(ON_TRACK_FROM):
        return PaceStatus.ON_TRACK
    if pace >= Fraction(LAGGING_FROM):
        return PaceStatus.LAGGING
    return PaceStatus.AT_RISK


def pace_status(pace: Decimal) -> PaceStatus:
    """On track from 0.95, lagging from 0.75, at risk below."""
    return _status(_fr(pace, "pace"))


def key_result_pace(
    kind: str,
    start: Decimal,
    target: Decimal,
    current: Decimal | None,
    elapsed: Duration,
    length: Duration,
    *,
    done: bool | None = None,
) -> Pace:
    """A KR's pace and status for any kind, with the edge cases of the module docstring."""
    k = _kind(kind)
    share = _share(elapsed, length)
    if k is Kind.MILESTONE:
        if attainment(k, start, target, current, done=done) == ONE:
            return Pace(ONE, PaceStatus.ON_TRACK)
        return Pace(ZERO, PaceStatus.AT_RISK) if share == 1 else Pace(None, None)
    if k is Kind.STAY_ABOVE or k is Kind.STAY_BELOW:
        if current is None:
            return Pace(None, None)
        a = attainment(k, start, target, current)
        return Pace(a, PaceStatus.ON_TRACK if a == ONE else PaceStatus.AT_RISK)
    s, t = _span(start, target)
    if current is None:
        return Pace(None, None)
    actual = (_fr(current, "current") - s) / (t - s)
    if share == 0:
        return Pace(None, PaceStatus.ON_TRACK if actual >= 0 else PaceStatus.AT_RISK)
    ratio = max(actual, Fraction(0)) / share
    return Pace(_dec(ratio), _status(ratio))


def pace(
    start: Decimal, target: Decimal, current: Decimal | None, elapsed: Duration, length: Duration
) -> Decimal | None:
    """Actual progress / expected progress toward the target; None with no value or nothing due yet."""
    return key_result_pace(Kind.INCREASE_TO, start, target, current, elapsed, length).value


# ---------------------------------------------------------------------------------------------------
# Forecasts


def _in_period(
    points: Sequence[Point], period_start: Moment, period_end: Moment
) -> list[tuple[Moment, Fraction]]:
    """The points with a value inside [period_start, period_end], in time order."""
    if period_end <= period_start:
        raise GoalError("the period must end after it starts")
    kept = [(m, _fr(v, "value")) for m, v in points if v is not None and period_start <= m <= period_end]
    kept.sort(key=lambda p: p[0])
    return kept


def linear_forecast(
    points: Sequence[Point], period_start: Moment, period_end: Moment, start_value: Decimal
) -> Decimal | None:
    """The least-squares line through the start and the points, read at the period end; None if no trend."""
    kept = _in_period(points, period_start, period_end)
    xy = [(0, _fr(start_value, "start value"))]
    xy += [(_micro(m - period_start, "moment"), v) for m, v in kept]
    n = len(xy)
    sx = sum((Fraction(x) for x, _ in xy), Fraction(0))
    sy = sum((y for _, y in xy), Fraction(0))
    sxx = sum((Fraction(x * x) for x, _ in xy), Fraction(0))
    sxy = sum((x * y for x, y in xy), Fraction(0))
    denominator = n * sxx - sx * sx
    if denominator == 0:  # one point, or all at the period start: no trend to extend
        return None
    slope = (n * sxy - sx * sy) / denominator
    intercept = (sy - slope * sx) / n
    return _dec(intercept + slope * _micro(period_end - period_start, "period"))


def pipeline_forecast(
    closed: int, open_opportunities: Sequence[tuple[int, str | None, Decimal | None]]
) -> int:
    """closed + commit + probability x best case, in integer minor units, rounded half up once."""
    if isinstance(closed, bool) or not isinstance(closed, int):
        raise GoalError("closed must be an int of minor units")
    committed = closed
    best_case = ZERO  # sum of amount x percent, divided by 100 once below
    for amount, category, probability in open_opportunities:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise GoalError("amounts must be ints of minor units")
        if category is not None and category not in FORECAST_CATEGORIES:
            raise GoalError(f"unknown forecast category {category!r}")
        if category in ("commit", "closed"):
            committed += amount
        elif category == "best_case" and probability is not None:
            p = _fr(probability, "probability")
            if not 0 <= p <= 100:
                raise GoalError("a probability is a percent from 0 to 100")
            best_case = _EXACT.add(best_case, _EXACT.multiply(Decimal(amount), probability))
    return round_half_up(_EXACT.add(Decimal(committed), best_case.scaleb(-2)))


# ---------------------------------------------------------------------------------------------------
# Sandbagging


def is_sandbagged(kind: str, target: Decimal, trailing_actual: Decimal | None) -> bool:
    """True when the target asks no more than the trailing 2-quarter actual already gives."""
    if trailing_actual is None:
        return False
    k = _kind(kind)
    if k is Kind.INCREASE_TO:
        return target <= trailing_actual
    if k is Kind.DECREASE_TO:
        return target >= trailing_actual
    return False


# ---------------------------------------------------------------------------------------------------
# Burn-up chart geometry


@dataclass(frozen=True, slots=True)
class Tick:
    """One axis tick: its SVG coordinate along the axis and its label."""

    at: str
    label: str


@dataclass(frozen=True, slots=True)
class BurnUp:
    """A burn-up chart as plain data: SVG polyline points, plot edges, ticks and a text alternative."""

    width: int
    height: int
    left: str
    top: str
    right: str
    bottom: str
    actual: str
    ideal: str
    forecast: str  # empty when there is no forecast
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    text: str


def format_value(value: Decimal) -> str:
    """A plain number for a chart label: grouped, at most 2 decimals (half up), no exponent."""
    q = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    # normalize() drops trailing zeros (0.50 -> 0.5) but writes 500 as 5E+2, so integers are quantized.
    q = q.quantize(ONE) if q == q.to_integral_value() else q.normalize()
    return f"{abs(q) if q == 0 else q:,}"  # abs: never "-0"


def _coord(value: Fraction) -> str:
    """An SVG coordinate with one decimal."""
    return str(_dec(value).quantize(_TENTH, rounding=ROUND_HALF_UP))


def _day(moment: Moment) -> dt.date:
    """The calendar date of a date or datetime."""
    return moment.date() if isinstance(moment, dt.datetime) else moment


def _last_day(period_end: Moment) -> dt.date:
    """The last day inside a period that ends (exclusive) at `period_end`."""
    step = _MICROSECOND if isinstance(period_end, dt.datetime) else dt.timedelta(days=1)
    return _day(period_end - step)


def _moment_of(day: dt.date, like: Moment) -> Moment:
    """`day` as the same kind of moment as `like` (a datetime gets `like`'s time of day and zone)."""
    return dt.datetime.combine(day, like.timetz()) if isinstance(like, dt.datetime) else day


def _tick_days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Month starts within [first, last]; weekly days from `first` when that gives fewer than two."""
    days = []
    day = first.replace(day=1)
    while day <= last:
        if day >= first:
            days.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    if len(days) >= 2:
        return days
    return [first + dt.timedelta(days=7 * i) for i in range((last - first).days // 7 + 1)]


def _short(day: dt.date) -> str:
    """`Oct 1`, for a tick."""
    return f"{day:%b} {day.day}"


def _long(day: dt.date) -> str:
    """`Oct 1, 2026`, for the text alternative."""
    return f"{day:%b} {day.day}, {day.year}"


def _nice_ticks(lo: Fraction, hi: Fraction) -> list[Fraction]:
    """Round tick values (1, 2 or 5 x 10^k apart, about four steps) covering [lo, hi]."""
    raw = _dec((hi - lo) / 4)
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = Fraction(next(magnitude * m for m in (1, 2, 5, 10) if raw <= magnitude * m))
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [step * k for k in range(first, last + 1)]


def burn_up(
    points: Sequence[Point],
    period_start: Moment,
    period_end: Moment,
    start: Decimal,
    target: Decimal,
    forecast: Decimal | None,
    width: int,
    height: int,
    *,
    value_label: Callable[[Decimal], str] = format_value,
    margins: tuple[int, int, int, int] = (12, 12, 28, 56),
) -> BurnUp:
    """Burn-up geometry in a width x height box: actual, ideal and forecast lines, ticks, text alternative."""
    # Margins (top, right, bottom, left, as in CSS) leave room for the tick labels; money and percent
    # KRs pass their own `value_label`, since the chart cannot know how their values read.
    top, right, bottom, left = margins
    if min(margins) < 0 or width - left - right <= 0 or height - top - bottom <= 0:
        raise GoalError("the chart box is too small for its margins")
    kept = _in_period(points, period_start, period_end)
    length = _micro(period_end - period_start, "period")
    s, t = _fr(start, "start"), _fr(target, "target")
    f = None if forecast is None else _fr(forecast, "forecast")

    values = [s, t, *(v for _, v in kept), *([] if f is None else [f])]
    lo, hi = min(values), max(values)
    if lo == hi:  # a flat chart: stretch the axis to zero so the line sits on an edge, not nowhere
        lo, hi = (min(lo, Fraction(0)), max(hi, Fraction(0))) if lo != 0 else (lo, lo + 1)
    y_values = _nice_ticks(lo, hi)
    y_lo, y_hi = y_values[0], y_values[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(moment: Moment) -> Fraction:
        return left + plot_w * Fraction(_micro(moment - period_start, "moment"), length)

    def y_of(value: Fraction) -> Fraction:
        return top + plot_h * (y_hi - value) / (y_hi - y_lo)

    def xy(moment: Moment, value: Fraction) -> str:
        return f"{_coord(x_of(moment))},{_coord(y_of(value))}"

    actual = [(period_start, s), *kept]
    first_day, last_day = _day(period_start), _last_day(period_end)
    x_ticks = tuple(
        Tick(_coord(x_of(_moment_of(day, period_start))), _short(day))
        for day in _tick_days(first_day, last_day)
    )
    y_ticks = tuple(Tick(_coord(y_of(v)), value_label(_dec(v))) for v in y_values)

    text = (
        f"Burn-up from {_long(first_day)} to {_long(last_day)}: "
        f"start {value_label(start)}, target {value_label(target)}."
    )
    if kept:
        moment, value = kept[-1]
        ideal = expected_value(start, target, moment - period_start, period_end - period_start)
        text += (
            f" Latest value {value_label(_dec(value))} on {_long(_day(moment))},"
            f" against an ideal of {value_label(ideal)} by then."
        )
    else:
        text += " No value recorded yet."
    text += " No forecast yet." if forecast is None else f" Forecast at period end: {value_label(forecast)}."

    return BurnUp(
        width=width,
        height=height,
        left=_coord(Fraction(left)),
        top=_coord(Fraction(top)),
        right=_coord(Fraction(width - right)),
        bottom=_coord(Fraction(height - bottom)),
        actual=" ".join(xy(m, v) for m, v in actual),
        ideal=f"{xy(period_start, s)} {xy(period_end, t)}",
        forecast="" if f is None else f"{xy(*actual[-1])} {xy(period_end, f)}",
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        text=text,
    )


# ---------------------------------------------------------------------------------------------------
# Roll forward


@dataclass(frozen=True, slots=True)
class KeyResultDraft:
    """A KR to create: every stored field but its ids, period and timestamps."""

    title: str
    kind: str
    unit: str
    start_value: Decimal
    target: Decimal
    stretch: Decimal | None = None
    weight: Decimal = ONE
    owner_ids: tuple[int, ...] = ()
    counts_toward_bonus: bool = False
    source: str = Source.MANUAL
    metric: str | None = None
    filters: Mapping[str, object] = field(default_factory=dict)
    position: int = 0


@dataclass(frozen=True, slots=True)
class ObjectiveDraft:
    """An objective to create, with its KRs."""

    title: str
    description: str = ""
    team_ids: tuple[int, ...] = ()
    owner_id: int | None = None
    weight: Decimal = ONE
    position: int = 0
    key_results: tuple[KeyResultDraft, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyResultRecord:
    """An existing KR as roll forward reads it: its fields, whether archived, its last check-in value."""

    title: str
    kind: str
    unit: str
    start_value: Decimal
    target: Decimal
    stretch: Decimal | None = None
    weight: Decimal = ONE
    owner_ids: tuple[int, ...] = ()
    counts_toward_bonus: bool = False
    source: str = Source.MANUAL
    metric: str | None = None
    filters: Mapping[str, object] = field(default_factory=dict)
    position: int = 0
    archived: bool = False
    last_value: Decimal | None = None  # the latest check-in value (manual KRs)


@dataclass(frozen=True, slots=True)
class ObjectiveRecord:
    """An existing objective as roll forward reads it."""

    title: str
    description: str = ""
    team_ids: tuple[int, ...] = ()
    owner_id: int | None = None
    weight: Decimal = ONE
    position: int = 0
    archived: bool = False
    key_results: tuple[KeyResultRecord, ...] = ()


def _roll_key_result(kr: KeyResultRecord) -> KeyResultDraft:
    """The next period's draft of one KR."""
    start = kr.start_value
    # A manual KR's value lives only in its check-ins: next period continues from where it got to.
    # A metric KR's value is recomputed per period from pipeline data, so its start stays.
    moves = kr.kind in (Kind.INCREASE_TO, Kind.DECREASE_TO)
    if kr.source == Source.MANUAL and moves and kr.last_value is not None:
        start = kr.last_value
    return KeyResultDraft(
        title=kr.title,
        kind=kr.kind,
        unit=kr.unit,
        start_value=start,
        target=kr.target,
        stretch=kr.stretch,
        weight=kr.weight,
        owner_ids=tuple(kr.owner_ids),
        counts_toward_bonus=kr.counts_toward_bonus,
        source=kr.source,
        metric=kr.metric,
        filters=dict(kr.filters),
        position=kr.position,
    )


def roll_forward(objectives: Sequence[ObjectiveRecord]) -> list[ObjectiveDraft]:
    """Drafts of a period's objectives and KRs for the next period, archived ones left out."""
    return [
        ObjectiveDraft(
            title=o.title,
            description=o.description,
            team_ids=tuple(o.team_ids),
            owner_id=o.owner_id,
            weight=o.weight,
            position=o.position,
            key_results=tuple(_roll_key_result(kr) for kr in o.key_results if not kr.archived),
        )
        for o in objectives
        if not o.archived
    ]


def validate_draft(draft: KeyResultDraft) -> dict[str, str]:
    """`validate_key_result` on a draft's fields."""
    return validate_key_result(
        title=draft.title,
        kind=draft.kind,
        unit=draft.unit,
        start_value=draft.start_value,
        target=draft.target,
        stretch=draft.stretch,
        weight=draft.weight,
        counts_toward_bonus=draft.counts_toward_bonus,
        source=draft.source,
        metric=draft.metric,
        filters=draft.filters,
    )
