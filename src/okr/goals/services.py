"""Goals (DESIGN 4): objectives, key results and check-ins; their values, scores, pace and forecasts.

Reads: `goals_overview` (a period's objectives with their KRs, values, attainment, pace and scores, as
plain dataclasses the goals, personal and team pages share) and `key_result_detail` (one KR with its
value history, forecasts and burn-up chart). Writes: create / update / archive / move objectives and
KRs, check in, roll a period forward. Every write checks the caller (goals.guards), refuses a closed
period, checks the `version` the caller saw (optimistic locking), writes an audit event with before
and after, and flushes; the request commits once.

Units. A KR's numbers are stored as people read them: counts, days and hours as is; currency in major
units of the organisation's currency (`1250000.00`); percent in percentage points (`25.5` is 25.5 %).
A metric KR's value is its KPI's value (`okr.kpis.services.kpi_values`, one call per distinct filter
set, cached there) converted to that unit. The reasons are in docs/goals.md.
"""

import datetime as dt
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.db.goals import CheckIn, Confidence, KeyResult, Objective, key_result_owner, objective_team
from okr.db.people import Period, PeriodState, Person, Team
from okr.goals import core
from okr.goals.guards import (
    check_may_check_in,
    check_may_own,
    check_may_write_goals,
    check_may_write_objective,
    may_check_in,
    may_write_goals,
    may_write_objective,
)
from okr.kpis import services as kpis
from okr.kpis.core import KPIS, KpiDefinition, KpiFilters, KpiValue, Unit
from okr.kpis.services import FilterOptions
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, NotFound, ValidationFailed
from okr.lib.money import MoneyError, decimals, round_half_up, to_major, to_minor
from okr.lib.periods import PeriodKeyError, Quarter, parse_key
from okr.periods.services import ensure_periods, get_period, state_for
from okr.settings import Settings

ONE: Final = Decimal(1)
HUNDRED: Final = Decimal(100)
NOTE_MAX: Final = 2000
DESCRIPTION_MAX: Final = 4000
# Numeric(20, 10): ten digits before the point, ten after.
_NUMBER_LIMIT: Final = Decimal(10) ** 10
_PLACES: Final = 10

OPPORTUNITY_FORECAST_KPIS: Final = frozenset({"revenue_won"})
"""KPIs whose KR also gets the forecast from open opportunities (closed + commit + probability x best
case). Pipeline KPIs do not: their value already counts every open deal created in the period, and an
open deal has no expected close date that would put new pipeline into it (docs/goals.md)."""

HISTORY_STEP: Final = dt.timedelta(days=7)
"""A metric KR's value history is its KPI evaluated at weekly cutoffs (and now)."""

STALE: Final = (
    "was changed by someone else since you opened it; reload to see the changes, then make yours again."
)


# -- errors ------------------------------------------------------------------------------------------------


class EditConflict(Conflict):
    """The `version` the caller saw is not the stored one: someone else changed the record meanwhile."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"This {what} {STALE}", errors=[{"field": "version", "message": f"the {what} {STALE}"}]
        )


class PeriodClosed(Conflict):
    """A closed period's goals are read-only."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"{key} is closed: its goals are read-only. An admin can reopen the period if it must change."
        )


def _invalid(problems: Mapping[str, str], what: str) -> ValidationFailed:
    names = ", ".join(problems)
    return ValidationFailed(
        f"The {what} was not saved: correct {names}.",
        errors=[{"field": name, "message": message} for name, message in problems.items()],
    )


# -- small value types -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamRef:
    """A team by id and name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A person by id and name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """A period's bounds in the organisation's time zone (end exclusive) and its state."""

    quarter: Quarter
    start: dt.datetime
    end: dt.datetime
    state: str
    period_id: int | None

    @property
    def key(self) -> str:
        """The period key, 2026-Q3."""
        return self.quarter.key

    @property
    def read_only(self) -> bool:
        """A closed period's goals cannot change."""
        return self.state == PeriodState.CLOSED

    @property
    def first_day(self) -> dt.date:
        """The first day of the period."""
        return self.start.date()

    @property
    def last_day(self) -> dt.date:
        """The last day of the period."""
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def length(self) -> dt.timedelta:
        """How long the period is."""
        return self.end - self.start

    def elapsed(self, now: dt.datetime) -> dt.timedelta:
        """How much of the period has gone by at `now` (negative before it starts)."""
        return now.astimezone(self.start.tzinfo) - self.start

    def share(self, now: dt.datetime) -> Decimal:
        """The share of the period gone by at `now`, in [0, 1]."""
        return core.expected_value(Decimal(0), ONE, self.elapsed(now), self.length)


@dataclass(frozen=True, slots=True)
class ObjectiveFields:
    """What a caller sets on an objective."""

    title: str
    description: str = ""
    team_ids: tuple[int, ...] = ()
    owner_id: int | None = None
    weight: Decimal = ONE


@dataclass(frozen=True, slots=True)
class KeyResultFields:
    """What a caller sets on a key result; `filters` narrow a metric KR's KPI."""

    title: str
    kind: str
    unit: str
    start_value: Decimal
    target: Decimal
    stretch: Decimal | None = None
    weight: Decimal = ONE
    owner_ids: tuple[int, ...] = ()
    counts_toward_bonus: bool = False
    source: str = core.Source.MANUAL
    metric: str | None = None
    filters: KpiFilters = field(default_factory=KpiFilters)


OBJECTIVE_FIELDS: Final = frozenset(f.name for f in fields(ObjectiveFields))
KEY_RESULT_FIELDS: Final = frozenset(f.name for f in fields(KeyResultFields))


@dataclass(frozen=True, slots=True)
class CheckInView:
    """A check-in as pages and the API show it."""

    id: int
    key_result_id: int
    value: Decimal | None
    confidence: str
    note: str
    author: PersonRef | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class KeyResultView:
    """A key result with its value and scoring at a moment.

    `value` is the live KPI value (metric) or the last checked-in value (manual), in the KR's unit.
    `fill` / `overflow` draw the progress bar; `expected_share` is where the pace marker sits on it
    (the share of the way to the target that is due today; None for stay_* and milestones). `pace` and
    `status` follow goals.core (None where it says there is none). `sandbagged` compares the target
    with the trailing two-quarter actual of the same metric.
    """

    id: int
    objective_id: int
    period: str
    title: str
    kind: str
    unit: str
    start_value: Decimal
    target: Decimal
    stretch: Decimal | None
    weight: Decimal
    owners: tuple[PersonRef, ...]
    counts_toward_bonus: bool
    source: str
    metric: str | None
    kpi: KpiDefinition | None
    filters: KpiFilters
    position: int
    version: int
    archived_at: dt.datetime | None
    value: Decimal | None
    attainment: Decimal
    fill: Decimal
    overflow: Decimal
    expected: Decimal | None
    expected_share: Decimal | None
    pace: Decimal | None
    status: core.PaceStatus | None
    last_check_in: CheckInView | None
    sandbagged: bool
    trailing_actual: Decimal | None
    can_check_in: bool
    problem: str | None = None

    @property
    def owner_ids(self) -> tuple[int, ...]:
        """The owners' person ids."""
        return tuple(p.id for p in self.owners)

    @property
    def records_params(self) -> dict[str, str | int | None]:
        """The query of the KPI records page behind a metric KR's value (period and filters)."""
        return {"period": self.period, **self.filters.params}


@dataclass(frozen=True, slots=True)
class ObjectiveView:
    """An objective with its KRs, its score (weighted mean of capped attainment) and its band."""

    id: int
    period: str
    title: str
    description: str
    teams: tuple[TeamRef, ...]
    owner: PersonRef | None
    weight: Decimal
    position: int
    version: int
    archived_at: dt.datetime | None
    rolled_from_id: int | None
    key_results: tuple[KeyResultView, ...]
    score: Decimal | None
    band: core.Band | None
    can_edit: bool

    @property
    def team_ids(self) -> tuple[int, ...]:
        """The owning teams' ids."""
        return tuple(t.id for t in self.teams)

    @property
    def joint(self) -> bool:
        """Owned by more than one team."""
        return len(self.teams) > 1


@dataclass(frozen=True, slots=True)
class GoalsOverview:
    """A period's objectives (in their order) with their KRs, and the period's overall score.

    `score` is the weighted mean (objective weights) of the objective scores; `status_counts` counts
    the KRs per pace status (key None: no status yet).
    """

    window: PeriodWindow
    now: dt.datetime
    objectives: tuple[ObjectiveView, ...]
    score: Decimal | None
    band: core.Band | None
    status_counts: dict[core.PaceStatus | None, int]
    can_create: bool
    currency: str

    @property
    def quarter(self) -> Quarter:
        """The period shown."""
        return self.window.quarter

    @property
    def key_results(self) -> list[KeyResultView]:
        """Every KR of every objective, in page order."""
        return [kr for o in self.objectives for kr in o.key_results]

    def objective(self, objective_id: int) -> ObjectiveView:
        """The objective with this id; NotFound when it is not in the overview."""
        for o in self.objectives:
            if o.id == objective_id:
                return o
        raise NotFound(f"There is no objective {objective_id} in {self.window.key}.")


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A KR's value at a moment: a check-in (manual) or the KPI evaluated up to that moment (metric)."""

    at: dt.datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class KeyResultDetail:
    """One KR with its objective, value history, check-ins, forecasts at period end and burn-up chart."""

    overview: GoalsOverview
    objective: ObjectiveView
    key_result: KeyResultView
    history: tuple[HistoryPoint, ...]
    check_ins: tuple[CheckInView, ...]
    linear_forecast: Decimal | None
    opportunity_forecast: Decimal | None
    chart: core.BurnUp


@dataclass(frozen=True, slots=True)
class NotCopied:
    """A KR roll forward left out, and why (its new start already reached its target)."""

    objective: str
    key_result: str
    problems: dict[str, str]


@dataclass(frozen=True, slots=True)
class RollForwardResult:
    """What a roll forward did: objectives and KRs copied, objectives already copied before, KRs left out."""

    source: Quarter
    target: Quarter
    objective_ids: tuple[int, ...]
    key_results: int
    already_copied: tuple[str, ...]
    not_copied: tuple[NotCopied, ...]

    @property
    def message(self) -> str:
        """One paragraph saying what happened."""
        n = len(self.objective_ids)
        text = (
            f"Copied {n} objective{'s' if n != 1 else ''} and {self.key_results} key "
            f"result{'s' if self.key_results != 1 else ''} from {self.source.key} into {self.target.key}."
        )
        if self.already_copied:
            text += f" {len(self.already_copied)} had been copied before and were left as they are."
        if self.not_copied:
            names = "; ".join(f"“{x.key_result}”" for x in self.not_copied)
            text += (
                f" Not copied, because their start (the last checked-in value) already reached the "
                f"target: {names}. Add them in {self.target.key} with a new target."
            )
        return text


# -- units -------------------------------------------------------------------------------------------------


def kpi_unit(kpi: KpiDefinition) -> str:
    """The KR unit a KPI is stated in (a per-day figure is money per day: currency)."""
    return "currency" if kpi.unit in (Unit.CURRENCY, Unit.PER_DAY) else str(kpi.unit)


def kr_value_of(value: KpiValue, kpi: KpiDefinition, currency: str) -> Decimal | None:
    """A KPI value in the KR's unit: money in major units, rates in percentage points."""
    if value is None:
        return None
    if kpi.unit == Unit.CURRENCY:
        return to_major(int(value), currency)
    if kpi.unit == Unit.PER_DAY:
        return to_major(round_half_up(Decimal(value)), currency)
    if kpi.unit == Unit.PERCENT:
        return Decimal(value) * HUNDRED
    return Decimal(value)


def plain(value: Decimal | None) -> Decimal | None:
    """A stored Numeric without its trailing zeros (10.0000000000 -> 10), never in exponent form."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return value.quantize(ONE)
    return value.normalize()


def filters_of(stored: Mapping[str, Any] | None) -> KpiFilters:
    """A KR's stored filters (URL names) as KpiFilters."""
    s = stored or {}

    def as_int(name: str) -> int | None:
        v = s.get(name)
        return int(v) if isinstance(v, int | str) and str(v).isdigit() else None

    def as_text(name: str) -> str | None:
        v = s.get(name)
        return str(v) if v not in (None, "") else None

    return KpiFilters(
        team_id=as_int("team"),
        person_id=as_int("person"),
        campaign_id=as_int("campaign"),
        channel=as_text("channel"),
        segment=as_text("segment"),
    )


def _stored_filters(filters: KpiFilters) -> dict[str, Any]:
    return {k: v for k, v in filters.params.items() if v is not None}


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- periods -----------------------------------------------------------------------------------------------


def _window(settings: Settings, quarter: Quarter, period: Period | None, today: dt.date) -> PeriodWindow:
    start, end = quarter.utc_bounds(settings.tz, settings.fiscal_year_start_month)
    state = (
        period.state
        if period is not None
        else state_for(quarter, today=today, start_month=settings.fiscal_year_start_month)
    )
    return PeriodWindow(
        quarter=quarter,
        start=start.astimezone(settings.tz),
        end=end.astimezone(settings.tz),
        state=str(state),
        period_id=None if period is None else period.id,
    )


async def period_window(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, now: dt.datetime | None = None
) -> PeriodWindow:
    """The period's bounds and state (a period not stored yet takes the state its dates give it)."""
    today = (now or utcnow()).astimezone(settings.tz).date()
    return _window(settings, quarter, await get_period(session, key=quarter.key), today)


async def _open_period(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> Period:
    """The stored period of `quarter` (created when missing); PeriodClosed when it is closed."""
    today = utcnow().astimezone(settings.tz).date()
    first, _ = quarter.dates(settings.fiscal_year_start_month)
    [period] = await ensure_periods(session, settings=settings, first=first, last=first, today=today)
    if period.state == PeriodState.CLOSED:
        raise PeriodClosed(quarter.key)
    return period


async def _period_of(session: AsyncSession, period_id: int) -> Period:
    period = await session.get(Period, period_id)
    if period is None:  # the foreign key makes this impossible; say so plainly if it happens
        raise NotFound(f"Period {period_id} does not exist.")
    return period


def _quarter_of(period: Period) -> Quarter:
    try:
        return parse_key(period.key)
    except PeriodKeyError:
        raise NotFound(f"The period {period.key!r} is not a fiscal quarter.") from None


# -- reading ----------------------------------------------------------------------------------------------


async def _teams_of(session: AsyncSession, objective_ids: Sequence[int]) -> dict[int, list[TeamRef]]:
    found: dict[int, list[TeamRef]] = defaultdict(list)
    if not objective_ids:
        return found
    rows = await session.execute(
        select(objective_team.c.objective_id, Team.id, Team.name)
        .join(Team, Team.id == objective_team.c.team_id)
        .where(objective_team.c.objective_id.in_(objective_ids))
        .order_by(Team.name)
    )
    for objective_id, team_id, name in rows:
        found[int(objective_id)].append(TeamRef(int(team_id), str(name)))
    return found


async def _owners_of(session: AsyncSession, key_result_ids: Sequence[int]) -> dict[int, list[PersonRef]]:
    found: dict[int, list[PersonRef]] = defaultdict(list)
    if not key_result_ids:
        return found
    rows = await session.execute(
        select(key_result_owner.c.key_result_id, Person.id, Person.name)
        .join(Person, Person.id == key_result_owner.c.person_id)
        .where(key_result_owner.c.key_result_id.in_(key_result_ids))
        .order_by(Person.name, Person.id)
    )
    for kr_id, person_id, name in rows:
        found[int(kr_id)].append(PersonRef(int(person_id), str(name)))
    return found


async def _people(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, PersonRef]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted)))
    return {int(i): PersonRef(int(i), str(n)) for i, n in rows}


def _check_in_view(c: CheckIn, author: PersonRef | None) -> CheckInView:
    return CheckInView(
        id=c.id,
        key_result_id=c.key_result_id,
        value=plain(c.value),
        confidence=c.confidence,
        note=c.note,
        author=author,
        created_at=_aware(c.created_at),
    )


async def _latest_check_ins(session: AsyncSession, key_result_ids: Sequence[int]) -> dict[int, CheckInView]:
    """Each KR's latest check-in (by time, then id)."""
    if not key_result_ids:
        return {}
    ranked = (
        select(
            CheckIn.id,
            func.row_number()
            .over(partition_by=CheckIn.key_result_id, order_by=(CheckIn.created_at.desc(), CheckIn.id.desc()))
            .label("n"),
        )
        .where(CheckIn.key_result_id.in_(key_result_ids))
        .subquery()
    )
    rows = (
        await session.execute(
            select(CheckIn, Person.id, Person.name)
            .join(ranked, and_(ranked.c.id == CheckIn.id, ranked.c.n == 1))
            .outerjoin(Person, Person.id == CheckIn.author_id)
        )
    ).all()
    return {
        c.key_result_id: _check_in_view(c, None if pid is None else PersonRef(int(pid), str(name)))
        for c, pid, name in rows
    }


async def check_ins(session: AsyncSession, *, key_result_id: int) -> list[CheckInView]:
    """A KR's check-ins, newest first; NotFound for an unknown KR."""
    if await session.get(KeyResult, key_result_id) is None:
        raise NotFound(f"There is no key result {key_result_id}.")
    rows = (
        await session.execute(
            select(CheckIn, Person.id, Person.name)
            .outerjoin(Person, Person.id == CheckIn.author_id)
            .where(CheckIn.key_result_id == key_result_id)
            .order_by(CheckIn.created_at.desc(), CheckIn.id.desc())
        )
    ).all()
    return [_check_in_view(c, None if pid is None else PersonRef(int(pid), str(n))) for c, pid, n in rows]


MetricKey = tuple[str, KpiFilters]

# The KPI figures of a period's goals per engine, reused while kpis.data_version holds (and for at most
# kpis.CACHE_SECONDS): one cheap query for a warm goals page instead of one per filter set and metric.
_FIGURES_CACHE_SIZE: Final = 256
T = TypeVar("T")


def _settings_key(settings: Settings) -> tuple[str, str, int]:
    return settings.org_currency, settings.org_timezone, settings.fiscal_year_start_month


_figures_cache: "weakref.WeakKeyDictionary[Engine, dict[Any, tuple[Any, float, Any]]]" = (
    weakref.WeakKeyDictionary()
)


def clear_cache() -> None:
    """Forget the cached KPI figures of goals (kpis.services.clear_cache forgets the KPIs' own)."""
    _figures_cache.clear()


async def _cached(session: AsyncSession, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]]) -> T:
    """`compute()`, reused while kpis.data_version holds (goal changes and check-ins leave it) and for
    at most kpis.CACHE_SECONDS."""
    version = await kpis.data_version(session)
    engine = session.get_bind()
    if version is None or not isinstance(engine, Engine):
        return await compute()
    entries = _figures_cache.setdefault(engine, {})
    hit = entries.get(key)
    if hit is not None and hit[0] == version and time.monotonic() - hit[1] < kpis.CACHE_SECONDS:
        found: T = hit[2]
        return found
    value = await compute()
    if len(entries) >= _FIGURES_CACHE_SIZE:
        entries.clear()
    entries[key] = (version, time.monotonic(), value)
    return value


async def _kpi_figures(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    metrics: set[MetricKey],
    trailing: set[MetricKey],
) -> tuple[dict[MetricKey, Decimal | None], dict[MetricKey, Decimal | None]]:
    """Each (metric, filters)'s value in `quarter`, and the trailing two-quarter actual of those in
    `trailing`, in KR units: one kpi_values call per distinct filter set, one trailing_actual per pair."""
    if not metrics:
        return {}, {}

    async def compute() -> tuple[dict[MetricKey, Decimal | None], dict[MetricKey, Decimal | None]]:
        groups: dict[KpiFilters, set[str]] = defaultdict(set)
        for name, filters in metrics:
            groups[filters].add(name)
        values: dict[MetricKey, Decimal | None] = {}
        for filters, names in groups.items():
            got = await kpis.kpi_values(
                session, settings=settings, quarter=quarter, names=sorted(names), filters=filters
            )
            for name, value in got.items():
                values[(name, filters)] = kr_value_of(value, KPIS[name], settings.org_currency)
        trails = {
            (name, filters): await trailing_value(
                session, settings=settings, quarter=quarter, metric=name, filters=filters
            )
            for name, filters in sorted(trailing, key=lambda k: (k[0], repr(k[1])))
        }
        return values, trails

    key = ("figures", quarter.key, frozenset(metrics), frozenset(trailing), *_settings_key(settings))
    return await _cached(session, key, compute)


async def trailing_value(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, metric: str, filters: KpiFilters
) -> Decimal | None:
    """The trailing two-quarter actual of a KPI before `quarter`, in the KR's unit (per quarter for counts
    and amounts)."""
    kpi = KPIS.get(metric)
    if kpi is None:
        return None
    value = await kpis.trailing_actual(
        session, settings=settings, quarter=quarter, name=metric, filters=filters
    )
    return kr_value_of(value, kpi, settings.org_currency)


def _moves(kind: str) -> bool:
    return kind in (core.Kind.INCREASE_TO, core.Kind.DECREASE_TO)


def _score_key_result(
    kr: KeyResult,
    *,
    window: PeriodWindow,
    now: dt.datetime,
    value: Decimal | None,
    owners: Sequence[PersonRef],
    last: CheckInView | None,
    trailing: Decimal | None,
    can_check_in: bool,
) -> KeyResultView:
    start, target = plain(kr.start_value) or Decimal(0), plain(kr.target) or Decimal(0)
    elapsed, length = window.elapsed(now), window.length
    problem = None
    expected = share = None
    try:
        attained = core.attainment(kr.kind, start, target, value)
        bar = core.progress_bar(attained)
        pace = core.key_result_pace(kr.kind, start, target, value, elapsed, length)
        if _moves(kr.kind):
            expected = core.expected_value(start, target, elapsed, length)
            share = window.share(now)
        sandbagged = core.is_sandbagged(kr.kind, target, trailing)
    except core.GoalError as exc:  # stored data the forms would refuse (say, target == start)
        problem = f"This key result cannot be scored: {exc}. Edit it to fix this."
        attained, bar, pace, sandbagged = Decimal(0), core.ProgressBar(Decimal(0), Decimal(0)), None, False
    return KeyResultView(
        id=kr.id,
        objective_id=kr.objective_id,
        period=window.key,
        title=kr.title,
        kind=kr.kind,
        unit=kr.unit,
        start_value=start,
        target=target,
        stretch=plain(kr.stretch),
        weight=plain(kr.weight) or Decimal(0),
        owners=tuple(owners),
        counts_toward_bonus=kr.counts_toward_bonus,
        source=kr.source,
        metric=kr.metric,
        kpi=KPIS.get(kr.metric) if kr.metric else None,
        filters=filters_of(kr.filters),
        position=kr.position,
        version=kr.version,
        archived_at=kr.archived_at,
        value=plain(value),
        attainment=attained,
        fill=bar.fill,
        overflow=bar.overflow,
        expected=expected,
        expected_share=share,
        pace=None if pace is None else pace.value,
        status=None if pace is None else pace.status,
        last_check_in=last,
        sandbagged=sandbagged,
        trailing_actual=plain(trailing),
        can_check_in=can_check_in,
        problem=problem,
    )


async def goals_overview(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    user: CurrentUser | None = None,
    team_id: int | None = None,
    person_id: int | None = None,
    objective_ids: Sequence[int] | None = None,
    include_archived: bool = False,
    now: dt.datetime | None = None,
) -> GoalsOverview:
    """A period's objectives with their KRs, values, attainment, pace, status and scores.

    `team_id` keeps the objectives that team owns (joint ones included); `person_id` those the person
    owns or owns a KR of (every KR of them is kept: filter on `KeyResultView.owners`); `objective_ids`
    those objectives. `user` fills the can_edit / can_check_in / can_create flags (all False without).
    Archived objectives and KRs are left out unless `include_archived`.
    """
    now = (now or utcnow()).astimezone(settings.tz)
    window = await period_window(session, settings=settings, quarter=quarter, now=now)
    objectives: list[Objective] = []
    if window.period_id is not None:
        stmt = select(Objective).where(Objective.period_id == window.period_id)
        if not include_archived:
            stmt = stmt.where(Objective.archived_at.is_(None))
        if objective_ids is not None:
            stmt = stmt.where(Objective.id.in_(list(objective_ids)))
        if team_id is not None:
            stmt = stmt.where(
                Objective.id.in_(
                    select(objective_team.c.objective_id).where(objective_team.c.team_id == team_id)
                )
            )
        if person_id is not None:
            owned_kr = (
                select(KeyResult.objective_id)
                .join(key_result_owner, key_result_owner.c.key_result_id == KeyResult.id)
                .where(key_result_owner.c.person_id == person_id, KeyResult.archived_at.is_(None))
            )
            stmt = stmt.where(or_(Objective.owner_id == person_id, Objective.id.in_(owned_kr)))
        objectives = list((await session.scalars(stmt.order_by(Objective.position, Objective.id))).all())
    ids = [o.id for o in objectives]
    teams = await _teams_of(session, ids)
    krs: list[KeyResult] = []
    if ids:
        kr_stmt = select(KeyResult).where(KeyResult.objective_id.in_(ids))
        if not include_archived:
            kr_stmt = kr_stmt.where(KeyResult.archived_at.is_(None))
        krs = list((await session.scalars(kr_stmt.order_by(KeyResult.position, KeyResult.id))).all())
    kr_ids = [kr.id for kr in krs]
    owners = await _owners_of(session, kr_ids)
    people = await _people(session, (o.owner_id for o in objectives))
    latest = await _latest_check_ins(session, kr_ids)
    metric_keys = {
        (str(kr.metric), filters_of(kr.filters))
        for kr in krs
        if kr.source == core.Source.METRIC and kr.metric in KPIS
    }
    trailing_keys = {
        (str(kr.metric), filters_of(kr.filters))
        for kr in krs
        if kr.source == core.Source.METRIC and kr.metric in KPIS and _moves(kr.kind)
    }
    metric_values, trailing = await _kpi_figures(
        session, settings=settings, quarter=quarter, metrics=metric_keys, trailing=trailing_keys
    )

    by_objective: dict[int, list[KeyResultView]] = defaultdict(list)
    team_ids_of = {o.id: [t.id for t in teams.get(o.id, [])] for o in objectives}
    for kr in krs:
        last = latest.get(kr.id)
        if kr.source == core.Source.METRIC:
            value = metric_values.get((str(kr.metric), filters_of(kr.filters)))
            trail = trailing.get((str(kr.metric), filters_of(kr.filters)))
        else:
            value = None if last is None else last.value
            trail = None
        kr_owners = owners.get(kr.id, [])
        allowed = (
            user is not None
            and not window.read_only
            and kr.archived_at is None
            and may_check_in(user, team_ids_of[kr.objective_id], [p.id for p in kr_owners])
        )
        by_objective[kr.objective_id].append(
            _score_key_result(
                kr,
                window=window,
                now=now,
                value=value,
                owners=kr_owners,
                last=last,
                trailing=trail,
                can_check_in=allowed,
            )
        )
    views = []
    for o in objectives:
        o_krs = by_objective.get(o.id, [])
        score = core.objective_score([(kr.attainment, kr.weight) for kr in o_krs if kr.archived_at is None])
        views.append(
            ObjectiveView(
                id=o.id,
                period=quarter.key,
                title=o.title,
                description=o.description,
                teams=tuple(teams.get(o.id, [])),
                owner=people.get(o.owner_id) if o.owner_id is not None else None,
                weight=plain(o.weight) or Decimal(0),
                position=o.position,
                version=o.version,
                archived_at=o.archived_at,
                rolled_from_id=o.rolled_from_id,
                key_results=tuple(o_krs),
                score=score,
                band=None if score is None else core.band(score),
                can_edit=(
                    user is not None
                    and not window.read_only
                    and o.archived_at is None
                    and may_write_objective(user, team_ids_of[o.id])
                ),
            )
        )
    scored = [(o.score, o.weight) for o in views if o.score is not None and o.archived_at is None]
    overall = core.objective_score(scored) if scored else None
    counts: dict[core.PaceStatus | None, int] = {s: 0 for s in core.PaceStatus}
    counts[None] = 0
    for view in views:
        for kr_view in view.key_results:
            counts[kr_view.status] += 1
    return GoalsOverview(
        window=window,
        now=now,
        objectives=tuple(views),
        score=overall,
        band=None if overall is None else core.band(overall),
        status_counts=counts,
        can_create=user is not None and not window.read_only and may_write_goals(user),
        currency=settings.org_currency,
    )


async def _objective(session: AsyncSession, objective_id: int) -> Objective:
    found = await session.get(Objective, objective_id)
    if found is None:
        raise NotFound(f"There is no objective {objective_id}.")
    return found


async def _key_result(session: AsyncSession, key_result_id: int) -> KeyResult:
    found = await session.get(KeyResult, key_result_id)
    if found is None:
        raise NotFound(f"There is no key result {key_result_id}.")
    return found


async def objective_view(
    session: AsyncSession,
    *,
    settings: Settings,
    objective_id: int,
    user: CurrentUser | None = None,
    now: dt.datetime | None = None,
) -> ObjectiveView:
    """One objective (archived or not) with its KRs and score; NotFound when there is none."""
    o = await _objective(session, objective_id)
    quarter = _quarter_of(await _period_of(session, o.period_id))
    found = await goals_overview(
        session,
        settings=settings,
        quarter=quarter,
        user=user,
        objective_ids=[objective_id],
        include_archived=True,
        now=now,
    )
    return found.objective(objective_id)


async def key_result_view(
    session: AsyncSession,
    *,
    settings: Settings,
    key_result_id: int,
    user: CurrentUser | None = None,
    now: dt.datetime | None = None,
) -> KeyResultView:
    """One KR (archived or not) with its value and scoring; NotFound when there is none."""
    kr = await _key_result(session, key_result_id)
    objective = await objective_view(
        session, settings=settings, objective_id=kr.objective_id, user=user, now=now
    )
    return next(k for k in objective.key_results if k.id == key_result_id)


@dataclass(frozen=True, slots=True)
class KeyResultPlace:
    """Where a KR sits: its objective, its period, its title (no figures computed)."""

    objective_id: int
    period: str
    title: str


async def key_result_place(session: AsyncSession, *, key_result_id: int) -> KeyResultPlace:
    """A KR's objective, period and title in one query; NotFound when there is none."""
    row = (
        await session.execute(
            select(KeyResult.objective_id, Period.key, KeyResult.title)
            .join(Objective, Objective.id == KeyResult.objective_id)
            .join(Period, Period.id == Objective.period_id)
            .where(KeyResult.id == key_result_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no key result {key_result_id}.")
    return KeyResultPlace(int(row[0]), str(row[1]), str(row[2]))


def history_cutoffs(window: PeriodWindow, now: dt.datetime) -> list[dt.datetime]:
    """Weekly cutoffs (local midnights) from a week into the period up to, not including, now or its end."""
    stop = min(now, window.end)
    cutoffs = []
    moment = window.start + HISTORY_STEP
    while moment < stop:
        cutoffs.append(moment)
        moment += HISTORY_STEP
    return cutoffs


async def value_history(
    session: AsyncSession,
    *,
    settings: Settings,
    window: PeriodWindow,
    kr: KeyResultView,
    now: dt.datetime,
    check_in_list: Sequence[CheckInView] = (),
) -> list[HistoryPoint]:
    """A KR's values through the period, oldest first: its check-ins (manual), or its KPI at weekly
    cutoffs and now (metric; each cutoff is one cached kpi_values call)."""
    if kr.source != core.Source.METRIC or kr.kpi is None:
        checked = [
            HistoryPoint(c.created_at.astimezone(settings.tz), c.value)
            for c in sorted(check_in_list, key=lambda c: (c.created_at, c.id))
            if c.value is not None and window.start <= c.created_at <= window.end
        ]
        return checked
    if now < window.start:
        return []
    cutoffs = tuple(history_cutoffs(window, now))
    kpi = kr.kpi

    async def compute() -> list[HistoryPoint]:
        found = []
        for cutoff in cutoffs:
            values = await kpis.kpi_values(
                session,
                settings=settings,
                quarter=window.quarter,
                names=[kpi.name],
                filters=kr.filters,
                as_of=cutoff.astimezone(dt.UTC),
            )
            value = kr_value_of(values[kpi.name], kpi, settings.org_currency)
            if value is not None:
                found.append(HistoryPoint(cutoff, value))
        return found

    key = ("history", window.key, kpi.name, kr.filters, cutoffs, *_settings_key(settings))
    points = list(await _cached(session, key, compute))
    if kr.value is not None:
        points.append(HistoryPoint(min(now, window.end), kr.value))
    return points


async def opportunity_forecast(
    session: AsyncSession, *, settings: Settings, window: PeriodWindow, kr: KeyResultView, now: dt.datetime
) -> Decimal | None:
    """Revenue won so far + commit + probability x best case of the open deals the KR's filters name,
    while the period runs (None otherwise, and for other KPIs)."""
    if kr.kpi is None or kr.kpi.name not in OPPORTUNITY_FORECAST_KPIS or kr.value is None:
        return None
    if not window.start <= now < window.end:
        return None
    closed = to_minor(kr.value, settings.org_currency)

    async def compute() -> list[tuple[int, str | None, Decimal | None]]:
        deals = await kpis.open_pipeline(session, settings=settings, filters=kr.filters)
        # open_pipeline gives the probability as a fraction; goals.core takes the stored percent.
        return [(amount, category, probability * HUNDRED) for amount, category, probability in deals]

    open_deals = await _cached(session, ("open deals", kr.filters, *_settings_key(settings)), compute)
    return to_major(core.pipeline_forecast(closed, open_deals), settings.org_currency)


_THOUSANDS: Final = ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k"))


def compact(value: Decimal) -> str:
    """A short number for an axis tick: 1.2M, 250k, 12.5."""
    for size, suffix in _THOUSANDS:
        if abs(value) >= size:
            return core.format_value((value / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + suffix
    return core.format_value(value)


def value_label(unit: str, currency: str, *, short: bool = False) -> Callable[[Decimal], str]:
    """How a KR value of `unit` reads on the chart: in full (its text), or short (its axis ticks)."""

    def label(value: Decimal) -> str:
        text = compact(value) if short else core.format_value(value)
        if unit == "currency":
            return f"{currency} {text}"
        if unit == "percent":
            return f"{text} %"
        if unit == "days":
            return f"{text} d"
        if unit == "hours":
            return f"{text} h"
        return text

    return label


CHART_WIDTH: Final = 640
CHART_HEIGHT: Final = 280
CHART_MARGINS: Final = (12, 16, 28, 76)  # top, right, bottom, left: room for "USD 250.5M"


async def key_result_detail(
    session: AsyncSession,
    *,
    settings: Settings,
    key_result_id: int,
    user: CurrentUser | None = None,
    now: dt.datetime | None = None,
) -> KeyResultDetail:
    """One KR with its value history, check-ins, both forecasts and the burn-up chart geometry."""
    now = (now or utcnow()).astimezone(settings.tz)
    kr_row = await _key_result(session, key_result_id)
    o = await _objective(session, kr_row.objective_id)
    quarter = _quarter_of(await _period_of(session, o.period_id))
    overview = await goals_overview(
        session,
        settings=settings,
        quarter=quarter,
        user=user,
        objective_ids=[o.id],
        include_archived=True,
        now=now,
    )
    objective = overview.objective(o.id)
    kr = next(k for k in objective.key_results if k.id == key_result_id)
    window = overview.window
    history_check_ins = await check_ins(session, key_result_id=key_result_id)
    history = await value_history(
        session, settings=settings, window=window, kr=kr, now=now, check_in_list=history_check_ins
    )
    points = [(p.at, p.value) for p in history]
    linear = None
    opportunities = None
    if kr.problem is None:
        try:
            linear = core.linear_forecast(points, window.start, window.end, kr.start_value)
        except core.GoalError:
            linear = None
        opportunities = await opportunity_forecast(session, settings=settings, window=window, kr=kr, now=now)
    forecast = linear  # the chart extends the trend; the opportunity forecast is a figure beside it
    geometry = (
        points,
        window.start,
        window.end,
        kr.start_value,
        kr.target,
        forecast,
        CHART_WIDTH,
        CHART_HEIGHT,
    )
    # Short labels on the axis (they must fit its margin), the full figures in the text alternative.
    chart = core.burn_up(
        *geometry, value_label=value_label(kr.unit, settings.org_currency, short=True), margins=CHART_MARGINS
    )
    full = core.burn_up(
        *geometry, value_label=value_label(kr.unit, settings.org_currency), margins=CHART_MARGINS
    )
    chart = replace(chart, text=full.text)
    return KeyResultDetail(
        overview=overview,
        objective=objective,
        key_result=kr,
        history=tuple(history),
        check_ins=tuple(history_check_ins),
        linear_forecast=linear,
        opportunity_forecast=opportunities,
        chart=chart,
    )


# -- validation --------------------------------------------------------------------------------------------


def _check_number(
    problems: dict[str, str], name: str, value: Decimal | None, unit: str, currency: str
) -> None:
    """A number that fits the columns (ten digits each side of the point), money in whole minor units."""
    if value is None or name in problems or not value.is_finite():
        return
    if abs(value) >= _NUMBER_LIMIT:
        problems[name] = "Enter a number below 10,000,000,000."
    elif unit == "currency":
        try:
            to_minor(value, currency)
        except MoneyError:
            problems[name] = f"Use at most {decimals(currency)} decimals for {currency}."
    elif isinstance(value.as_tuple().exponent, int) and int(value.as_tuple().exponent) < -_PLACES:
        problems[name] = f"Use at most {_PLACES} decimals."


async def objective_problems(session: AsyncSession, f: ObjectiveFields) -> dict[str, str]:
    """What is wrong with an objective's fields (field name -> message); empty when it can be saved."""
    problems = core.validate_objective(title=f.title, weight=f.weight, team_ids=f.team_ids)
    if len(f.description) > DESCRIPTION_MAX:
        problems["description"] = f"Keep the description to {DESCRIPTION_MAX} characters or fewer."
    if "weight" not in problems and f.weight >= 10_000:
        problems["weight"] = "Enter a weight below 10,000."
    if f.team_ids and "team_ids" not in problems:
        known = set((await session.scalars(select(Team.id).where(Team.id.in_(f.team_ids)))).all())
        if set(f.team_ids) - known:
            problems["team_ids"] = "Choose teams from the list."
    if f.owner_id is not None and await session.get(Person, f.owner_id) is None:
        problems["owner_id"] = "Choose the owner from the list, or leave it empty."
    return problems


async def key_result_problems(session: AsyncSession, f: KeyResultFields, *, currency: str) -> dict[str, str]:
    """What is wrong with a KR's fields (field name -> message); empty when it can be saved."""
    metric = f.metric if f.source == core.Source.METRIC else None
    problems = core.validate_key_result(
        title=f.title,
        kind=f.kind,
        unit=f.unit,
        start_value=f.start_value,
        target=f.target,
        stretch=f.stretch,
        weight=f.weight,
        counts_toward_bonus=f.counts_toward_bonus,
        source=f.source,
        metric=metric,
        filters=_stored_filters(f.filters) if metric else None,
    )
    for name in ("start_value", "target", "stretch"):
        _check_number(problems, name, getattr(f, name), f.unit, currency)
    if "weight" not in problems and f.weight >= 10_000:
        problems["weight"] = "Enter a weight below 10,000."
    if f.owner_ids:
        known = set((await session.scalars(select(Person.id).where(Person.id.in_(f.owner_ids)))).all())
        if set(f.owner_ids) - known:
            problems["owner_ids"] = "Choose the owners from the list."
    if f.source == core.Source.MANUAL and f.filters:
        problems["filters"] = "Only a metric key result has filters; leave them empty for a manual one."
    if metric and "metric" not in problems and f.filters:
        try:
            await kpis.check_filters(session, f.filters, kpi=metric)
        except ValidationFailed as exc:
            for error in exc.errors:
                name = f"filter_{error.get('field')}"
                problems.setdefault(name, str(error.get("message", "")).capitalize() + ".")
    return problems


# -- snapshots for the audit log ---------------------------------------------------------------------------


def _number(value: Decimal | None) -> str | None:
    return None if value is None else str(plain(value))


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _objective_snapshot(o: Objective, period: str, team_ids: Iterable[int]) -> dict[str, Any]:
    return {
        "period": period,
        "title": o.title,
        "description": o.description,
        "team_ids": sorted(team_ids),
        "owner_id": o.owner_id,
        "weight": _number(o.weight),
        "position": o.position,
        "archived_at": _when(o.archived_at),
        "rolled_from_id": o.rolled_from_id,
        "version": o.version,
    }


def _kr_snapshot(kr: KeyResult, owner_ids: Iterable[int]) -> dict[str, Any]:
    return {
        "objective_id": kr.objective_id,
        "title": kr.title,
        "kind": kr.kind,
        "unit": kr.unit,
        "start_value": _number(kr.start_value),
        "target": _number(kr.target),
        "stretch": _number(kr.stretch),
        "weight": _number(kr.weight),
        "owner_ids": sorted(owner_ids),
        "counts_toward_bonus": kr.counts_toward_bonus,
        "source": kr.source,
        "metric": kr.metric,
        "filters": dict(kr.filters or {}),
        "position": kr.position,
        "archived_at": _when(kr.archived_at),
        "version": kr.version,
    }


def actor_of(user: CurrentUser, via: str | None) -> str:
    """The audit actor: the person's email, with the API token's name when one was used."""
    return user.email if via is None else f"{user.email} (token {via})"


async def _record(
    session: AsyncSession,
    user: CurrentUser,
    via: str | None,
    action: str,
    entity: str,
    entity_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await audit.record(
        session,
        actor=actor_of(user, via),
        actor_id=user.id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
    )


async def _flush(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except StaleDataError:  # the version changed between our read and our write
        raise EditConflict(what) from None


# -- objectives --------------------------------------------------------------------------------------------


async def _team_ids(session: AsyncSession, objective_id: int) -> list[int]:
    rows = await session.scalars(
        select(objective_team.c.team_id).where(objective_team.c.objective_id == objective_id)
    )
    return sorted(int(t) for t in rows)


async def _owner_ids(session: AsyncSession, key_result_id: int) -> list[int]:
    rows = await session.scalars(
        select(key_result_owner.c.person_id).where(key_result_owner.c.key_result_id == key_result_id)
    )
    return sorted(int(p) for p in rows)


def _merge(current: Any, changes: Mapping[str, Any], allowed: frozenset[str], what: str) -> Any:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed(
            f"Unknown {what} field(s): {', '.join(unknown)}.",
            errors=[{"field": name, "message": "not a field you can set"} for name in unknown],
        )
    return replace(current, **changes)


async def _writable_objective(
    session: AsyncSession, user: CurrentUser, objective_id: int
) -> tuple[Objective, Period, list[int]]:
    """The objective, its period and teams, once the caller may change it and its period is open."""
    o = await _objective(session, objective_id)
    team_ids = await _team_ids(session, o.id)
    check_may_write_objective(user, team_ids, o.title)
    period = await _period_of(session, o.period_id)
    if period.state == PeriodState.CLOSED:
        raise PeriodClosed(period.key)
    return o, period, team_ids


def _check_version(current: int, seen: int | None, what: str) -> None:
    if seen is not None and seen != current:
        raise EditConflict(what)


def _check_not_archived(archived_at: dt.datetime | None, what: str) -> None:
    if archived_at is not None:
        raise Conflict(f"This {what} is archived: it can no longer change.")


def objective_fields(o: Objective, team_ids: Sequence[int]) -> ObjectiveFields:
    """An objective's current fields."""
    return ObjectiveFields(
        title=o.title,
        description=o.description,
        team_ids=tuple(team_ids),
        owner_id=o.owner_id,
        weight=plain(o.weight) or Decimal(0),
    )


async def create_objective(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    quarter: Quarter,
    fields: ObjectiveFields,
    via: str | None = None,
) -> Objective:
    """Create an objective in `quarter`, last in its order; a leader's must name their own team."""
    check_may_write_goals(user)
    f = replace(fields, title=fields.title.strip(), team_ids=tuple(sorted(set(fields.team_ids))))
    problems = await objective_problems(session, f)
    if problems:
        raise _invalid(problems, "objective")
    check_may_own(user, f.team_ids)
    period = await _open_period(session, settings=settings, quarter=quarter)
    last = await session.scalar(select(func.max(Objective.position)).where(Objective.period_id == period.id))
    now = utcnow()
    o = Objective(
        period_id=period.id,
        title=f.title,
        description=f.description,
        owner_id=f.owner_id,
        weight=f.weight,
        position=0 if last is None else int(last) + 1,
        created_at=now,
        updated_at=now,
    )
    session.add(o)
    await session.flush()
    await session.execute(insert(objective_team), [{"objective_id": o.id, "team_id": t} for t in f.team_ids])
    await _record(
        session,
        user,
        via,
        "objective.create",
        "objective",
        o.id,
        None,
        _objective_snapshot(o, period.key, f.team_ids),
    )
    return o


async def update_objective(
    session: AsyncSession,
    *,
    user: CurrentUser,
    objective_id: int,
    version: int,
    changes: Mapping[str, Any],
    via: str | None = None,
) -> Objective:
    """Change an objective's fields (those named in `changes`); EditConflict when `version` is stale."""
    o, period, team_ids = await _writable_objective(session, user, objective_id)
    _check_not_archived(o.archived_at, "objective")
    _check_version(o.version, version, "objective")
    merged = _merge(objective_fields(o, team_ids), changes, OBJECTIVE_FIELDS, "objective")
    f = replace(merged, title=merged.title.strip(), team_ids=tuple(sorted(set(merged.team_ids))))
    problems = await objective_problems(session, f)
    if problems:
        raise _invalid(problems, "objective")
    check_may_own(user, f.team_ids)
    before = _objective_snapshot(o, period.key, team_ids)
    o.title, o.description, o.owner_id, o.weight = f.title, f.description, f.owner_id, f.weight
    o.updated_at = utcnow()  # always an UPDATE, so the version moves even when only the teams change
    await _flush(session, "objective")
    if list(f.team_ids) != team_ids:
        await session.execute(delete(objective_team).where(objective_team.c.objective_id == o.id))
        await session.execute(
            insert(objective_team), [{"objective_id": o.id, "team_id": t} for t in f.team_ids]
        )
    await _record(
        session,
        user,
        via,
        "objective.update",
        "objective",
        o.id,
        before,
        _objective_snapshot(o, period.key, f.team_ids),
    )
    return o


async def archive_objective(
    session: AsyncSession,
    *,
    user: CurrentUser,
    objective_id: int,
    version: int | None = None,
    via: str | None = None,
) -> Objective:
    """Archive an objective (it leaves the period's pages and scores, its history stays); idempotent."""
    o, period, team_ids = await _writable_objective(session, user, objective_id)
    if o.archived_at is not None:
        return o
    _check_version(o.version, version, "objective")
    before = _objective_snapshot(o, period.key, team_ids)
    o.archived_at = o.updated_at = utcnow()
    await _flush(session, "objective")
    await _record(
        session,
        user,
        via,
        "objective.archive",
        "objective",
        o.id,
        before,
        _objective_snapshot(o, period.key, team_ids),
    )
    return o


async def _renumber(
    session: AsyncSession, model: Any, rows: Sequence[tuple[int, int]], moved: int, step: int
) -> tuple[int, int] | None:
    """Swap the row `moved` with its neighbour `step` (-1 up, +1 down) and number them 0..n-1; the
    positions before and after of the moved row (None when it cannot move further)."""
    order = [row_id for row_id, _ in rows]
    i = order.index(moved)
    j = i + step
    if not 0 <= j < len(order):
        return None
    order[i], order[j] = order[j], order[i]
    old = dict(rows)
    # A table-level UPDATE: the order is presentation, not content, so it does not bump the version
    # (an edit form opened before someone reordered still saves).
    table = model.__table__
    for position, row_id in enumerate(order):
        if old[row_id] != position:
            await session.execute(update(table).where(table.c.id == row_id).values(position=position))
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj, ["position"])  # read again from the rows just written
    return old[moved], order.index(moved)


async def _move(
    session: AsyncSession,
    user: CurrentUser,
    via: str | None,
    model: type[Objective] | type[KeyResult],
    item_id: int,
    among: ColumnElement[bool],
    step: int,
    entity: str,
) -> bool:
    """Move an item one place among its unarchived siblings (`among`) and audit it; False at the end."""
    rows = (
        await session.execute(
            select(model.id, model.position)
            .where(among, model.archived_at.is_(None))
            .order_by(model.position, model.id)
        )
    ).all()
    moved = await _renumber(session, model, [(int(i), int(p)) for i, p in rows], item_id, step)
    if moved is None:
        return False
    before, after = {"position": moved[0]}, {"position": moved[1]}
    await _record(session, user, via, f"{entity}.move", entity, item_id, before, after)
    return True


async def move_objective(
    session: AsyncSession, *, user: CurrentUser, objective_id: int, direction: str, via: str | None = None
) -> bool:
    """Move an objective one place up or down among its period's; False when it is already at that end."""
    step = _step(direction)
    o, _, _ = await _writable_objective(session, user, objective_id)
    _check_not_archived(o.archived_at, "objective")
    among = Objective.period_id == o.period_id
    return await _move(session, user, via, Objective, o.id, among, step, "objective")


def _step(direction: str) -> int:
    if direction not in ("up", "down"):
        raise ValidationFailed(
            f"“{direction}” is not a direction.", errors=[{"field": "direction", "message": "use up or down"}]
        )
    return -1 if direction == "up" else 1


# -- key results -------------------------------------------------------------------------------------------


def key_result_fields(kr: KeyResult, owner_ids: Sequence[int]) -> KeyResultFields:
    """A KR's current fields."""
    return KeyResultFields(
        title=kr.title,
        kind=kr.kind,
        unit=kr.unit,
        start_value=plain(kr.start_value) or Decimal(0),
        target=plain(kr.target) or Decimal(0),
        stretch=plain(kr.stretch),
        weight=plain(kr.weight) or Decimal(0),
        owner_ids=tuple(owner_ids),
        counts_toward_bonus=kr.counts_toward_bonus,
        source=kr.source,
        metric=kr.metric,
        filters=filters_of(kr.filters),
    )


def _normalized(f: KeyResultFields) -> KeyResultFields:
    """Trimmed title, sorted owners; a metric KR takes its KPI's unit, a manual one has no metric."""
    f = replace(f, title=f.title.strip(), owner_ids=tuple(sorted(set(f.owner_ids))))
    if f.source == core.Source.METRIC and f.metric in KPIS:
        f = replace(f, unit=kpi_unit(KPIS[str(f.metric)]))
    if f.source == core.Source.MANUAL:
        f = replace(f, metric=None)
    return f


def _apply_key_result(kr: KeyResult, f: KeyResultFields) -> None:
    kr.title, kr.kind, kr.unit = f.title, f.kind, f.unit
    kr.start_value, kr.target, kr.stretch, kr.weight = f.start_value, f.target, f.stretch, f.weight
    kr.counts_toward_bonus, kr.source, kr.metric = f.counts_toward_bonus, f.source, f.metric
    kr.filters = _stored_filters(f.filters) if f.source == core.Source.METRIC else {}


async def _set_owners(session: AsyncSession, key_result_id: int, owner_ids: Sequence[int]) -> None:
    await session.execute(delete(key_result_owner).where(key_result_owner.c.key_result_id == key_result_id))
    if owner_ids:
        await session.execute(
            insert(key_result_owner), [{"key_result_id": key_result_id, "person_id": p} for p in owner_ids]
        )


async def create_key_result(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    objective_id: int,
    fields: KeyResultFields,
    via: str | None = None,
) -> KeyResult:
    """Add a KR to an objective, last in its order."""
    o, _, _ = await _writable_objective(session, user, objective_id)
    _check_not_archived(o.archived_at, "objective")
    f = _normalized(fields)
    problems = await key_result_problems(session, f, currency=settings.org_currency)
    if problems:
        raise _invalid(problems, "key result")
    last = await session.scalar(select(func.max(KeyResult.position)).where(KeyResult.objective_id == o.id))
    now = utcnow()
    kr = KeyResult(
        objective_id=o.id,
        position=0 if last is None else int(last) + 1,
        created_at=now,
        updated_at=now,
        filters={},
    )
    _apply_key_result(kr, f)
    session.add(kr)
    await session.flush()
    await _set_owners(session, kr.id, f.owner_ids)
    await _record(
        session, user, via, "key_result.create", "key_result", kr.id, None, _kr_snapshot(kr, f.owner_ids)
    )
    return kr


async def _writable_key_result(
    session: AsyncSession, user: CurrentUser, key_result_id: int
) -> tuple[KeyResult, Objective, list[int]]:
    kr = await _key_result(session, key_result_id)
    o, _, _ = await _writable_objective(session, user, kr.objective_id)
    return kr, o, await _owner_ids(session, kr.id)


async def update_key_result(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    key_result_id: int,
    version: int,
    changes: Mapping[str, Any],
    via: str | None = None,
) -> KeyResult:
    """Change a KR's fields (those named in `changes`); EditConflict when `version` is stale."""
    kr, _, owner_ids = await _writable_key_result(session, user, key_result_id)
    _check_not_archived(kr.archived_at, "key result")
    _check_version(kr.version, version, "key result")
    f = _normalized(_merge(key_result_fields(kr, owner_ids), changes, KEY_RESULT_FIELDS, "key result"))
    problems = await key_result_problems(session, f, currency=settings.org_currency)
    if problems:
        raise _invalid(problems, "key result")
    before = _kr_snapshot(kr, owner_ids)
    _apply_key_result(kr, f)
    kr.updated_at = utcnow()
    await _flush(session, "key result")
    if list(f.owner_ids) != owner_ids:
        await _set_owners(session, kr.id, f.owner_ids)
    await _record(
        session, user, via, "key_result.update", "key_result", kr.id, before, _kr_snapshot(kr, f.owner_ids)
    )
    return kr


async def archive_key_result(
    session: AsyncSession,
    *,
    user: CurrentUser,
    key_result_id: int,
    version: int | None = None,
    via: str | None = None,
) -> KeyResult:
    """Archive a KR (it leaves the scores; its check-ins stay); idempotent."""
    kr, _, owner_ids = await _writable_key_result(session, user, key_result_id)
    if kr.archived_at is not None:
        return kr
    _check_version(kr.version, version, "key result")
    before = _kr_snapshot(kr, owner_ids)
    kr.archived_at = kr.updated_at = utcnow()
    await _flush(session, "key result")
    await _record(
        session, user, via, "key_result.archive", "key_result", kr.id, before, _kr_snapshot(kr, owner_ids)
    )
    return kr


async def move_key_result(
    session: AsyncSession, *, user: CurrentUser, key_result_id: int, direction: str, via: str | None = None
) -> bool:
    """Move a KR one place up or down within its objective; False when it is already at that end."""
    step = _step(direction)
    kr, _, _ = await _writable_key_result(session, user, key_result_id)
    _check_not_archived(kr.archived_at, "key result")
    among = KeyResult.objective_id == kr.objective_id
    return await _move(session, user, via, KeyResult, kr.id, among, step, "key_result")


async def sandbagging(
    session: AsyncSession, *, settings: Settings, key_result_id: int
) -> tuple[bool, Decimal | None]:
    """Whether a metric KR's target asks no more than its trailing two-quarter actual, and that actual."""
    kr = await _key_result(session, key_result_id)
    if kr.source != core.Source.METRIC or not kr.metric or not _moves(kr.kind):
        return False, None
    o = await _objective(session, kr.objective_id)
    quarter = _quarter_of(await _period_of(session, o.period_id))
    trailing = await trailing_value(
        session, settings=settings, quarter=quarter, metric=kr.metric, filters=filters_of(kr.filters)
    )
    return core.is_sandbagged(kr.kind, plain(kr.target) or Decimal(0), trailing), plain(trailing)


# -- check-ins ---------------------------------------------------------------------------------------------


async def check_in(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    key_result_id: int,
    value: Decimal | None,
    confidence: str,
    note: str = "",
    via: str | None = None,
) -> CheckIn:
    """Record a check-in: the value (manual KRs; a metric KR's value is computed), confidence and note."""
    kr = await _key_result(session, key_result_id)
    o = await _objective(session, kr.objective_id)
    team_ids, owner_ids = await _team_ids(session, o.id), await _owner_ids(session, kr.id)
    check_may_check_in(user, team_ids, owner_ids, kr.title)
    period = await _period_of(session, o.period_id)
    if period.state == PeriodState.CLOSED:
        raise PeriodClosed(period.key)
    if kr.archived_at is not None or o.archived_at is not None:
        raise Conflict("This key result is archived: it takes no more check-ins.")
    problems: dict[str, str] = {}
    if confidence not in set(Confidence):
        problems["confidence"] = "Choose on track, at risk or off track."
    if kr.source == core.Source.METRIC:
        if value is not None:
            problems["value"] = (
                "This key result's value is computed from pipeline data: leave the value empty "
                "and give your confidence and a note."
            )
    elif value is None:
        problems["value"] = "Enter the current value."
    else:
        _check_number(problems, "value", value, kr.unit, settings.org_currency)
    if len(note) > NOTE_MAX:
        problems["note"] = f"Keep the note to {NOTE_MAX} characters or fewer (it has {len(note)})."
    if problems:
        raise _invalid(problems, "check-in")
    c = CheckIn(
        key_result_id=kr.id,
        value=value,
        confidence=confidence,
        note=note.strip(),
        author_id=user.id,
        created_at=utcnow(),
    )
    session.add(c)
    await session.flush()
    after = {
        "key_result_id": kr.id,
        "value": _number(value),
        "confidence": confidence,
        "note": c.note,
        "created_at": _when(c.created_at),
    }
    await _record(session, user, via, "check_in.create", "check_in", c.id, None, after)
    return c


# -- roll forward ------------------------------------------------------------------------------------------


async def roll_forward(
    session: AsyncSession, *, settings: Settings, user: CurrentUser, quarter: Quarter, via: str | None = None
) -> RollForwardResult:
    """Copy `quarter`'s objectives and KRs the caller may change into the next quarter, in one step.

    Archived ones stay behind (goals.core.roll_forward); objectives copied before (rolled_from_id) are
    not copied again; a KR whose new start already reached its target is left out and named. Refused
    when the next period is closed, or when nothing is left to copy.
    """
    check_may_write_goals(user)
    target = quarter.shift(1)
    source_period = await get_period(session, key=quarter.key)
    rows = []
    if source_period is not None:
        rows = list(
            (
                await session.scalars(
                    select(Objective)
                    .where(Objective.period_id == source_period.id, Objective.archived_at.is_(None))
                    .order_by(Objective.position, Objective.id)
                )
            ).all()
        )
    teams = await _teams_of(session, [o.id for o in rows])
    mine = [o for o in rows if may_write_objective(user, [t.id for t in teams.get(o.id, [])])]
    if not mine:
        whose = "" if user.is_admin else f" of your team ({user.team})"
        raise ValidationFailed(
            f"{quarter.key} has no objectives{whose} to roll forward.",
            errors=[{"field": "period", "message": "nothing to roll forward"}],
        )
    period = await _open_period(session, settings=settings, quarter=target)
    copied_before = set(
        (
            await session.scalars(
                select(Objective.rolled_from_id).where(
                    Objective.period_id == period.id, Objective.rolled_from_id.in_([o.id for o in mine])
                )
            )
        ).all()
    )
    todo = [o for o in mine if o.id not in copied_before]
    already = tuple(o.title for o in mine if o.id in copied_before)
    if not todo:
        raise Conflict(
            f"Everything in {quarter.key} you may change was rolled forward into {target.key} before: "
            "nothing was copied again."
        )
    krs = list(
        (
            await session.scalars(
                select(KeyResult)
                .where(KeyResult.objective_id.in_([o.id for o in todo]))
                .order_by(KeyResult.position, KeyResult.id)
            )
        ).all()
    )
    owners = await _owners_of(session, [kr.id for kr in krs])
    latest = await _latest_check_ins(session, [kr.id for kr in krs])
    krs_of: dict[int, list[KeyResult]] = defaultdict(list)
    for kr in krs:
        krs_of[kr.objective_id].append(kr)
    records = [
        core.ObjectiveRecord(
            title=o.title,
            description=o.description,
            team_ids=tuple(t.id for t in teams.get(o.id, [])),
            owner_id=o.owner_id,
            weight=plain(o.weight) or ONE,
            position=o.position,
            archived=False,
            key_results=tuple(
                core.KeyResultRecord(
                    title=kr.title,
                    kind=kr.kind,
                    unit=kr.unit,
                    start_value=plain(kr.start_value) or Decimal(0),
                    target=plain(kr.target) or Decimal(0),
                    stretch=plain(kr.stretch),
                    weight=plain(kr.weight) or ONE,
                    owner_ids=tuple(p.id for p in owners.get(kr.id, [])),
                    counts_toward_bonus=kr.counts_toward_bonus,
                    source=kr.source,
                    metric=kr.metric,
                    filters=dict(kr.filters or {}),
                    position=kr.position,
                    archived=kr.archived_at is not None,
                    last_value=None if kr.id not in latest else latest[kr.id].value,
                )
                for kr in krs_of.get(o.id, [])
            ),
        )
        for o in todo
    ]
    drafts = core.roll_forward(records)
    last = await session.scalar(select(func.max(Objective.position)).where(Objective.period_id == period.id))
    position = 0 if last is None else int(last) + 1
    now = utcnow()
    created: list[int] = []
    kr_count = 0
    not_copied: list[NotCopied] = []
    for source, draft in zip(todo, drafts, strict=True):
        o = Objective(
            period_id=period.id,
            title=draft.title,
            description=draft.description,
            owner_id=draft.owner_id,
            weight=draft.weight,
            position=position,
            rolled_from_id=source.id,
            created_at=now,
            updated_at=now,
        )
        position += 1
        session.add(o)
        await session.flush()
        await session.execute(
            insert(objective_team), [{"objective_id": o.id, "team_id": t} for t in draft.team_ids]
        )
        kr_ids = []
        for n, d in enumerate(draft.key_results):
            problems = core.validate_draft(d)
            if problems:
                not_copied.append(NotCopied(draft.title, d.title, problems))
                continue
            kr = KeyResult(
                objective_id=o.id,
                title=d.title,
                kind=d.kind,
                unit=d.unit,
                start_value=d.start_value,
                target=d.target,
                stretch=d.stretch,
                weight=d.weight,
                counts_toward_bonus=d.counts_toward_bonus,
                source=d.source,
                metric=d.metric,
                filters=dict(d.filters),
                position=n,
                created_at=now,
                updated_at=now,
            )
            session.add(kr)
            await session.flush()
            await _set_owners(session, kr.id, d.owner_ids)
            kr_ids.append(kr.id)
        kr_count += len(kr_ids)
        created.append(o.id)
        after = {**_objective_snapshot(o, target.key, draft.team_ids), "key_result_ids": kr_ids}
        await _record(session, user, via, "objective.roll_forward", "objective", o.id, None, after)
    return RollForwardResult(
        source=quarter,
        target=target,
        objective_ids=tuple(created),
        key_results=kr_count,
        already_copied=already,
        not_copied=tuple(not_copied),
    )


# -- choices for the forms ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormChoices:
    """What the goal forms offer: teams, active people, the KPI library and the KPI filter options."""

    teams: list[TeamRef]
    people: list[PersonRef]
    kpis: list[KpiDefinition]
    filters: FilterOptions
    units: tuple[str, ...] = core.UNITS
    kinds: tuple[str, ...] = tuple(k.value for k in core.Kind)
    confidences: tuple[str, ...] = tuple(c.value for c in Confidence)


async def teams(session: AsyncSession) -> list[TeamRef]:
    """Every team, by name."""
    rows = await session.execute(select(Team.id, Team.name).order_by(Team.name))
    return [TeamRef(int(i), str(n)) for i, n in rows]


async def form_choices(session: AsyncSession) -> FormChoices:
    """The choices the objective and KR forms offer."""
    teams = [
        TeamRef(int(i), str(n))
        for i, n in await session.execute(select(Team.id, Team.name).order_by(Team.name))
    ]
    people = [
        PersonRef(int(i), str(n))
        for i, n in await session.execute(
            select(Person.id, Person.name).where(Person.is_active.is_(True)).order_by(Person.name, Person.id)
        )
    ]
    return FormChoices(
        teams=teams, people=people, kpis=list(KPIS.values()), filters=await kpis.filter_options(session)
    )


__all__ = [
    "CHART_HEIGHT",
    "CHART_WIDTH",
    "KEY_RESULT_FIELDS",
    "OBJECTIVE_FIELDS",
    "OPPORTUNITY_FORECAST_KPIS",
    "CheckInView",
    "EditConflict",
    "FormChoices",
    "GoalsOverview",
    "HistoryPoint",
    "KeyResultDetail",
    "KeyResultFields",
    "KeyResultPlace",
    "KeyResultView",
    "NotCopied",
    "ObjectiveFields",
    "ObjectiveView",
    "PeriodClosed",
    "PeriodWindow",
    "PersonRef",
    "RollForwardResult",
    "TeamRef",
    "archive_key_result",
    "archive_objective",
    "check_in",
    "check_ins",
    "clear_cache",
    "create_key_result",
    "create_objective",
    "form_choices",
    "goals_overview",
    "key_result_detail",
    "key_result_place",
    "key_result_view",
    "move_key_result",
    "move_objective",
    "objective_view",
    "period_window",
    "roll_forward",
    "sandbagging",
    "teams",
    "update_key_result",
    "update_objective",
]
