"""KPI figures (DESIGN 4) computed with SQL aggregates: the dashboard's six, and every KPI of the library
for a period and filters, which the KPI pages, the API, the goals and the bonus share.

Money is integer minor units of the org currency (each deal converted at the FX rate of its creation or
close date, see `okr.kpis.queries`), rates and durations are Decimals; no float anywhere. What each
filter means for each family of KPI, the SLA rule (each MQL judged in business hours under its own
period's SLA policy, okr.sla.policy) and the attribution fallback are written down in docs/kpis.md.

Marketing-sourced and marketing-influenced pipeline, and campaign ROI, read the stored attribution: the
current pipeline-scope run (sourced, influenced) and revenue-scope run (ROI). Before the first
recompute they are read from the touches at request time (first touch), as the dashboard always did.
"""

import datetime as dt
import time
import weakref
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import and_, case, exists, func, literal, null, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.db.attribution import AttributionRun, OpportunitySourcing, RunStatus, attribution_credit
from okr.db.models import Account, AuditEvent, Campaign, Lead, Opportunity, Person, Team
from okr.db.pipeline import OpportunityStatus
from okr.kpis.core import (
    ADDITIVE,
    DASHBOARD_KPIS,
    FILTER_NAMES,
    KPIS,
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    BusinessClock,
    Change,
    KpiDefinition,
    KpiFilters,
    KpiValue,
    SlaStatus,
    Unit,
    compare,
    elapsed_share,
    get_kpi,
    inapplicable,
    median,
    ratio,
    sla_status,
    velocity,
)
from okr.kpis.core import (
    micros as micros_of,
)
from okr.kpis.queries import (
    CREDIT,
    LOOKBACK_DAYS,
    MARKETING,
    UNATTRIBUTED,
    KpiSql,
    Runs,
    Window,
    attributed_revenue,
    campaign_costs,
    current_runs,
    dialect_sql,
    disposition,
    first_touch_campaign,
    lead_conditions,
    library_kpi,
    marketing_read,
    marketing_stored,
    opportunity_conditions,
    period_bounds,
    resolve_model,
    source_team,
    window,
)
from okr.kpis.records import (
    PAGE_SIZE,
    SORTS,
    CampaignRow,
    LeadRow,
    OpportunityRow,
    RecordPage,
    default_sort,
    drill_down_kpi,
    kpi_records,
)
from okr.lib.clock import utcnow
from okr.lib.errors import ValidationFailed
from okr.lib.money import CURRENCY_DECIMALS, round_half_up
from okr.lib.periods import Quarter, local_midnight_utc
from okr.settings import Settings
from okr.sla import core as sla_core
from okr.sla.policy import Rule, RuleBook

_WON, _LOST = OpportunityStatus.WON.value, OpportunityStatus.LOST.value

# -- Dashboard figures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataWarning:
    """Records left out of a figure, and why."""

    kpi: str
    period: str
    currency: str
    count: int

    @property
    def message(self) -> str:
        """What is wrong and how to fix it, in one sentence."""
        label = get_kpi(self.kpi).label
        things = "opportunity" if self.count == 1 else "opportunities"
        head = f"{label}, {self.period}: {self.count} {things} in {self.currency} left out"
        if self.currency not in CURRENCY_DECIMALS:
            return (
                f"{head}: okr does not know this currency; correct it in opportunities.csv and import again."
            )
        return f"{head}: there is no FX rate for {self.currency}; import an fx_rates.csv row for it."


@dataclass(frozen=True, slots=True)
class KpiFigure:
    """One KPI for a period, with the previous quarter's value for comparison.

    While the period is under way, `change` compares it with the previous quarter up to the same day
    of the quarter (`previous_to_date`); `previous` is always the whole previous quarter.
    """

    kpi: KpiDefinition
    value: KpiValue
    previous: KpiValue
    change: Change | None
    previous_to_date: KpiValue = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The dashboard KPIs for a quarter."""

    quarter: Quarter
    previous: Quarter
    currency: str
    figures: list[KpiFigure]
    warnings: list[DataWarning] = field(default_factory=list)
    has_data: bool = True
    # Pipeline created in the quarter by the team that sourced it (marketing, sdr, sales, unattributed).
    sourced: dict[str, int] = field(default_factory=dict)
    # Day of the quarter it is today while the quarter is under way, else None.
    day_of_quarter: int | None = None

    def figure(self, name: str) -> KpiFigure:
        """The figure of KPI `name`."""
        return next(f for f in self.figures if f.kpi.name == name)

    @property
    def marketing_share(self) -> Decimal | None:
        """Marketing-sourced pipeline as a share of all pipeline created in the quarter."""
        created = self.figure("pipeline_created").value
        sourced = self.figure("pipeline_sourced_marketing").value
        return None if created is None or sourced is None else ratio(sourced, created)


@dataclass(frozen=True, slots=True)
class QuarterFigures:
    """The dashboard KPIs of one quarter, whole and (given a cutoff) up to the cutoff."""

    values: dict[str, KpiValue]
    values_to_cutoff: dict[str, KpiValue] | None
    sourced: dict[str, int]
    warnings: list[DataWarning]


def same_day_cutoff(
    settings: Settings, quarter: Quarter, today: dt.date
) -> tuple[int | None, dt.datetime | None]:
    """While `quarter` holds `today`: the day of the quarter, and the instant as far into the previous one."""
    first, last = quarter.dates(settings.fiscal_year_start_month)
    if not first <= today <= last:
        return None, None
    day = (today - first).days + 1
    prev_first, prev_last = quarter.shift(-1).dates(settings.fiscal_year_start_month)
    cut = prev_first + dt.timedelta(days=day)  # midnight after the same day of the previous quarter
    if cut > prev_last:
        return day, None  # the previous quarter was shorter: all of it
    return day, local_midnight_utc(cut, settings.tz)


# Figures per engine (a new engine, such as a new app in a test, starts empty). An entry is used only
# while the data version it was computed under holds: the newest audit event (every import writes one,
# in the same transaction as its rows) and the newest attribution run (a recompute after an import
# writes none). Data written without either shows after CACHE_SECONDS at the latest; while there is no
# audit event at all, nothing is cached. The same expiry bounds how stale "now" is for the figures that
# depend on it (open MQLs past their SLA, deals open today).
CACHE_SECONDS = 300.0
_CACHE_SIZE = 64
_VALUES_CACHE_SIZE = 512
_Version = tuple[int, int | None, dt.datetime | None]
_Entries = dict[tuple[Any, ...], tuple[_Version, float, Any]]
_cache: "weakref.WeakKeyDictionary[Engine, _Entries]" = weakref.WeakKeyDictionary()  # QuarterFigures
_values_cache: "weakref.WeakKeyDictionary[Engine, _Entries]" = weakref.WeakKeyDictionary()  # KPI values


def clear_cache() -> None:
    """Forget every cached figure (call it after writing pipeline data without an audit event)."""
    _cache.clear()
    _values_cache.clear()


NO_DATA_CHANGE: Final = (
    "objective.",
    "key_result.",
    "check_in.",
    "api_token.",
    "person.set_password",
    "bonus_",
    "sla_reason.",
    "funnel_plan.",
)
"""Audit actions (prefixes) that change no figure: goals, check-ins, tokens, the bonus (plans, runs,
ledger, inquiries, exports), the reject reasons list and saved funnel plans. Every other audited
action (imports, people and teams) may, so it makes cached figures stale. Without this, each check-in
would send the next goals page back to computing every KPI."""


async def data_version(session: AsyncSession) -> _Version | None:
    """What cached figures depend on: the newest audit event that may change figures and the newest
    attribution run; None: do not cache."""
    succeeded = AttributionRun.status == RunStatus.SUCCEEDED.value
    changing = ~or_(*(AuditEvent.action.startswith(prefix) for prefix in NO_DATA_CHANGE))
    audit, run_id, run_at = (
        await session.execute(
            select(
                select(func.max(AuditEvent.id)).where(changing).scalar_subquery(),
                select(func.max(AttributionRun.id)).where(succeeded).scalar_subquery(),
                select(func.max(AttributionRun.computed_at)).where(succeeded).scalar_subquery(),
            )
        )
    ).one()
    return None if audit is None else (int(audit), run_id, run_at)


def _entries(session: AsyncSession, store: Any, version: _Version | None) -> dict[Any, Any] | None:
    engine = session.get_bind()
    if version is None or not isinstance(engine, Engine):
        return None
    entries: dict[Any, Any] = store.setdefault(engine, {})
    return entries


def _settings_key(settings: Settings) -> tuple[str, str, int]:
    return settings.org_currency, settings.org_timezone, settings.fiscal_year_start_month


async def dashboard(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, today: dt.date | None = None
) -> Dashboard:
    """The six dashboard KPIs for `quarter`, each compared with the quarter before."""
    today = today or utcnow().astimezone(settings.tz).date()
    version = await data_version(session)
    entries = _entries(session, _cache, version)
    previous = quarter.shift(-1)
    day, cutoff = same_day_cutoff(settings, quarter, today)
    current = await _cached_figures(
        session, settings=settings, quarter=quarter, cutoff=None, version=version, entries=entries
    )
    before = await _cached_figures(
        session, settings=settings, quarter=previous, cutoff=cutoff, version=version, entries=entries
    )
    any_lead, any_opp = (
        await session.execute(select(exists(select(Lead.id)), exists(select(Opportunity.id))))
    ).one()
    figures = []
    for name in DASHBOARD_KPIS:
        kpi = get_kpi(name)
        value, prior = current.values[name], before.values[name]
        to_date = before.values_to_cutoff[name] if before.values_to_cutoff is not None else None
        basis = to_date if day is not None and before.values_to_cutoff is not None else prior
        change = compare(value, basis, higher_is_better=kpi.higher_is_better)
        figures.append(
            KpiFigure(kpi=kpi, value=value, previous=prior, change=change, previous_to_date=to_date)
        )
    return Dashboard(
        quarter=quarter,
        previous=previous,
        currency=settings.org_currency,
        figures=figures,
        warnings=current.warnings + before.warnings,
        has_data=bool(any_lead or any_opp),
        sourced=current.sourced,
        day_of_quarter=day,
    )


async def _cached_figures(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    cutoff: dt.datetime | None,
    version: _Version | None,
    entries: dict[Any, tuple[_Version, float, QuarterFigures]] | None,
) -> QuarterFigures:
    if entries is None or version is None:
        return await quarter_figures(session, settings=settings, quarter=quarter, cutoff=cutoff)
    key = (quarter.key, *_settings_key(settings), "" if cutoff is None else cutoff.isoformat())
    hit = entries.get(key)
    if hit is not None and hit[0] == version and time.monotonic() - hit[1] < CACHE_SECONDS:
        return hit[2]
    figures = await quarter_figures(session, settings=settings, quarter=quarter, cutoff=cutoff)
    if len(entries) >= _CACHE_SIZE:
        entries.clear()
    entries[key] = (version, time.monotonic(), figures)
    return figures


def _fold_money(rows: Sequence[Any], *, kpi: str, period: str, warnings: list[DataWarning] | None) -> int:
    """Sum (currency, n, n_converted, amount) rows, warning about the rows left out."""
    total = 0
    for currency, n, n_converted, amount in rows:
        known = currency in CURRENCY_DECIMALS
        if known:
            total += int(amount or 0)
        left_out = int(n) - (int(n_converted) if known else 0)
        if left_out and warnings is not None:
            warnings.append(DataWarning(kpi=kpi, period=period, currency=currency, count=left_out))
    return total


async def quarter_figures(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, cutoff: dt.datetime | None = None
) -> QuarterFigures:
    """The dashboard KPIs of one quarter from a few aggregate queries, also up to `cutoff` when given.

    Who sourced the pipeline comes from the current pipeline-scope attribution run (its sourcing rows),
    else from each opportunity's first touch read at request time.
    """
    sql = await dialect_sql(session, settings)
    start, end = period_bounds(settings, quarter)
    warnings: list[DataWarning] = []

    def part(stamp: Any) -> Any:
        # 0: before the cutoff (counted "to date" as well), 1: after it.
        return (case((stamp < cutoff, 0), else_=1) if cutoff is not None else literal(0)).label("part")

    # Opportunities closed in the quarter: revenue won and win rate.
    o = aliased(Opportunity)
    closed = (
        select(
            part(o.closed_at),
            o.status.label("status"),
            o.currency.label("currency"),
            case((o.status == _WON, sql.converted(o.amount, o.currency, o.closed_at))).label("conv"),
        )
        .where(o.status.in_([_WON, _LOST]), o.closed_at >= start, o.closed_at < end)
        .cte("closed")
        .prefix_with("MATERIALIZED")  # each row converted once, not once per reference
    )
    closed_rows = (
        await session.execute(
            select(
                closed.c.part,
                closed.c.status,
                closed.c.currency,
                func.count(),
                func.count(closed.c.conv),
                func.sum(closed.c.conv),
            ).group_by(closed.c.part, closed.c.status, closed.c.currency)
        )
    ).all()

    # Opportunities created in the quarter: pipeline created, and who sourced it. Rows are
    # (part, source, currency, n, n_converted, amount).
    runs = await current_runs(session)
    if runs.pipeline is not None:
        o = aliased(Opportunity)
        opened = (
            select(
                part(o.created_at),
                o.currency.label("currency"),
                sql.converted(o.amount, o.currency, o.created_at).label("conv"),
            )
            .where(o.created_at >= start, o.created_at < end)
            .cte("opened")
            .prefix_with("MATERIALIZED")
        )
        created_rows: Sequence[Any] = [
            (p, None, c, n, nc, a)
            for p, c, n, nc, a in await session.execute(
                select(
                    opened.c.part,
                    opened.c.currency,
                    func.count(),
                    func.count(opened.c.conv),
                    func.sum(opened.c.conv),
                ).group_by(opened.c.part, opened.c.currency)
            )
        ]
        s = OpportunitySourcing
        stored = (
            select(
                part(CREDIT.period_at),
                s.sourced_by.label("source"),
                CREDIT.currency.label("currency"),
                CREDIT.first_touch_base.label("base"),
            )
            .select_from(attribution_credit)
            .join(s, and_(s.run_id == runs.pipeline, s.opportunity_id == CREDIT.opportunity_id))
            .where(
                CREDIT.run_id == runs.pipeline,
                CREDIT.position == 0,
                CREDIT.period_at >= start,
                CREDIT.period_at < end,
            )
            .subquery("stored")
        )
        source_rows: Sequence[Any] = (
            await session.execute(
                select(
                    stored.c.part,
                    stored.c.source,
                    stored.c.currency,
                    func.count(),
                    func.count(stored.c.base),
                    func.sum(stored.c.base),
                ).group_by(stored.c.part, stored.c.source, stored.c.currency)
            )
        ).all()
    else:
        o = aliased(Opportunity)
        opened = (
            select(
                part(o.created_at),
                o.account_id.label("account_id"),
                o.created_at.label("created_at"),
                sql.days_before(o.created_at, LOOKBACK_DAYS).label("lookback_from"),
                o.currency.label("currency"),
                sql.converted(o.amount, o.currency, o.created_at).label("conv"),
            )
            .where(o.created_at >= start, o.created_at < end)
            .cte("opened")
            .prefix_with("MATERIALIZED")
        )
        first = first_touch_campaign(sql, opened.c.account_id, opened.c.created_at, opened.c.lookback_from)
        created = (
            select(opened.c.part, opened.c.currency, opened.c.conv, first.label("first_campaign_id"))
            .cte("created")
            .prefix_with("MATERIALIZED")  # the first touch is looked up once per opportunity
        )
        source = source_team(Campaign, Team, created.c.first_campaign_id).label("source")
        created_rows = (
            await session.execute(
                select(
                    created.c.part,
                    source,
                    created.c.currency,
                    func.count(),
                    func.count(created.c.conv),
                    func.sum(created.c.conv),
                )
                .select_from(created)
                .outerjoin(Campaign, Campaign.id == created.c.first_campaign_id)
                .outerjoin(Person, Person.id == Campaign.owner_id)
                .outerjoin(Team, Team.id == Person.team_id)
                .group_by(created.c.part, source, created.c.currency)
            )
        ).all()
        source_rows = created_rows

    # Leads reaching MQL and SQL in the quarter (and before the cutoff).
    def count_between(column: Any, hi: dt.datetime) -> Any:
        return select(func.count()).select_from(Lead).where(column >= start, column < hi).scalar_subquery()

    cut = cutoff or end
    mqls, sqls, mqls_cut, sqls_cut = (
        await session.execute(
            select(
                count_between(Lead.mql_at, end),
                count_between(Lead.sql_at, end),
                count_between(Lead.mql_at, cut),
                count_between(Lead.sql_at, cut),
            )
        )
    ).one()

    def values(parts: set[int], warn: list[DataWarning] | None) -> dict[str, KpiValue]:
        closed_in = [r for r in closed_rows if r[0] in parts]
        created_in = [r for r in created_rows if r[0] in parts]
        won = sum(int(r[3]) for r in closed_in if r[1] == _WON)
        lost = sum(int(r[3]) for r in closed_in if r[1] == _LOST)
        won_rows = [r[2:] for r in closed_in if r[1] == _WON]
        revenue = _fold_money(won_rows, kpi="revenue_won", period=quarter.key, warnings=warn)
        per_currency: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for _, _, currency, n, n_conv, amount in created_in:
            acc = per_currency[currency]
            acc[0], acc[1], acc[2] = acc[0] + int(n), acc[1] + int(n_conv), acc[2] + int(amount or 0)
        created_sums = [(c, *v) for c, v in per_currency.items()]
        pipeline = _fold_money(created_sums, kpi="pipeline_created", period=quarter.key, warnings=warn)
        # Rows left out for want of a rate are reported once, under pipeline created.
        sourced_rows = [
            (c, nc, nc, a) for p, team, c, _, nc, a in source_rows if p in parts and team == MARKETING
        ]
        marketing = _fold_money(
            sourced_rows, kpi="pipeline_sourced_marketing", period=quarter.key, warnings=None
        )
        return {
            "revenue_won": revenue,
            "pipeline_created": pipeline,
            "pipeline_sourced_marketing": marketing,
            "win_rate": ratio(won, won + lost),
            "mqls": int(mqls if 1 in parts else mqls_cut),
            "sqls": int(sqls if 1 in parts else sqls_cut),
        }

    whole = values({0, 1}, warnings)
    to_cutoff = values({0}, None) if cutoff is not None else None
    sourced: dict[str, int] = defaultdict(int)
    for _, team, currency, _, _, amount in source_rows:
        if currency in CURRENCY_DECIMALS:
            sourced[str(team or UNATTRIBUTED)] += int(amount or 0)
    warnings.sort(key=lambda w: (DASHBOARD_KPIS.index(w.kpi), w.currency))
    return QuarterFigures(values=whole, values_to_cutoff=to_cutoff, sourced=dict(sourced), warnings=warnings)


# -- The lead SLA: each MQL under its own period's rule ----------------------------------------------------


def as_utc(value: Any) -> dt.datetime | None:
    """A timestamp read from the database (a CASE expression has no column type on SQLite) as aware UTC."""
    if value is None:
        return None
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month of a quarter in the org's time zone, as UTC instants [start, end)."""

    first: dt.date
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        """`Jul 2026`."""
        return self.first.strftime("%b %Y")


def quarter_months(settings: Settings, quarter: Quarter) -> list[Month]:
    """The three months of `quarter`, in order."""
    first, last = quarter.dates(settings.fiscal_year_start_month)
    months = []
    day = first
    while day <= last:
        following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        months.append(
            Month(day, local_midnight_utc(day, settings.tz), local_midnight_utc(following, settings.tz))
        )
        day = following
    return months


@dataclass(frozen=True, slots=True)
class Verdict:
    """An MQL judged against its SLA: the status, the deadline, and the business time it took to be
    accepted or rejected (microseconds; None while open)."""

    status: SlaStatus
    due: dt.datetime
    response: int | None


class SlaRules:
    """The SLA rule of each quarter of a window (its stored policy, or DESIGN 5's defaults), with one
    business clock per calendar: each MQL is judged under the rule of the period it arrived in."""

    def __init__(self, book: RuleBook, settings: Settings, win: Window) -> None:
        self._book = book
        self.quarters = win.quarters
        self._starts = [period_bounds(settings, q)[0] for q in win.quarters]
        self._end = win.end
        self.rules: list[Rule] = [book.for_mql(s) for s in self._starts]
        self._clocks: dict[sla_core.BusinessCalendar, BusinessClock] = {}

    @classmethod
    async def load(cls, session: AsyncSession, *, settings: Settings, win: Window) -> "SlaRules":
        """Read every stored policy once."""
        return cls(await RuleBook.load(session, settings=settings), settings, win)

    def rule(self, mql_at: dt.datetime) -> Rule:
        """The rule of the period `mql_at` falls in."""
        i = bisect_right(self._starts, mql_at) - 1
        if i < 0 or mql_at >= self._end:
            return self._book.for_mql(mql_at)
        return self.rules[i]

    def _clock(self, calendar: sla_core.BusinessCalendar) -> BusinessClock:
        clock = self._clocks.get(calendar)
        if clock is None:
            clock = self._clocks[calendar] = BusinessClock(calendar, self._starts[0])
        return clock

    def judge(self, mql_at: dt.datetime, disposed_at: dt.datetime | None, *, now: dt.datetime) -> Verdict:
        """met, breached or pending, with the deadline and the business time to disposition."""
        rule = self.rule(mql_at)
        if mql_at < self._starts[0]:  # outside the window the clocks count from: the plain arithmetic
            due = rule.due(mql_at)
            took = None
            if disposed_at is not None:
                took = micros_of(sla_core.business_time_between(mql_at, disposed_at, rule.calendar))
        else:
            clock = self._clock(rule.calendar)
            due = clock.due(mql_at, rule.hours)
            took = None if disposed_at is None else clock.between(mql_at, disposed_at)
        status = sla_status(mql_at, disposed_at, due=due, now=now)
        assert status is not None  # mql_at is set
        return Verdict(status, due, took)

    def committed(self, settings: Settings, *, until: dt.datetime) -> Decimal:
        """MQLs marketing committed to deliver in the window before `until`: each period's commitment per
        month, pro rata for a month under way."""
        total = Decimal(0)
        for quarter, rule in zip(self.quarters, self.rules, strict=True):
            if rule.mql_commitment:
                for m in quarter_months(settings, quarter):
                    total += rule.mql_commitment * elapsed_share(m.start, m.end, until)
        return total


# -- The KPI library: any KPI for a period and filters --------------------------------------------------

_LEAD_KPIS = frozenset(name for name, k in KPIS.items() if k.records.value == "leads")
_CREATED_KPIS = frozenset({"opportunities_created", "pipeline_created"})
_CLOSED_KPIS = frozenset(
    {"revenue_won", "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days", "pipeline_velocity", "cac"}
)


def _int(value: Any) -> int:
    """An SQL sum as int (PostgreSQL sums bigints as NUMERIC; an empty sum is NULL)."""
    return 0 if value is None else int(value)


async def kpi_values(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    names: Iterable[str],
    filters: KpiFilters = KpiFilters(),
    as_of: dt.datetime | None = None,
    model: str | None = None,
) -> dict[str, KpiValue]:
    """KPIs `names` for `quarter` narrowed by `filters`, counting only events before `as_of` when given.

    A filter that has no meaning for a KPI (core.inapplicable) makes its value None. `model` is the
    attribution model of campaign ROI (the attribution pages' default when None). sla_compliance judges
    each MQL under its own period's SLA policy (SlaRules). NotFound for an unknown KPI name.
    """
    wanted = tuple(dict.fromkeys(names))
    for name in wanted:
        library_kpi(name)
    chosen = resolve_model(model)
    win = window(settings, [quarter], as_of=as_of)
    return await _cached_values(
        session, settings=settings, win=win, names=wanted, filters=filters, model=chosen
    )


async def trailing_actual(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    name: str,
    filters: KpiFilters = KpiFilters(),
    model: str | None = None,
    per_quarter: bool = True,
) -> KpiValue:
    """KPI `name` over the two quarters before `quarter` (the sandbagging flag, DESIGN 4).

    Rates, medians, means and ratios are computed over the six months as one window. Counts and amounts
    (core.ADDITIVE) are the mean per quarter when `per_quarter` (the default), so they compare with a
    quarter's target: amounts rounded half up to the minor unit, counts as an exact Decimal (7.5).
    """
    library_kpi(name)
    win = window(settings, [quarter.shift(-2), quarter.shift(-1)])
    values = await _cached_values(
        session,
        settings=settings,
        win=win,
        names=(name,),
        filters=filters,
        model=resolve_model(model),
    )
    value = values[name]
    if value is None or not per_quarter or name not in ADDITIVE:
        return value
    if get_kpi(name).unit == Unit.CURRENCY:
        return round_half_up(Decimal(value) / 2)
    return Decimal(value) / 2


async def open_pipeline(
    session: AsyncSession,
    *,
    settings: Settings,
    filters: KpiFilters = KpiFilters(),
) -> list[tuple[int, str, Decimal]]:
    """The open opportunities the filters name, as (amount, forecast category, probability): the amount
    in minor units of the org currency at the rate of its creation date (deals without a rate are left
    out), the category `pipeline` when none is set, the probability as a fraction 0..1 (0 when none)."""
    sql = await dialect_sql(session, settings)
    runs = await current_runs(session)
    o = aliased(Opportunity)
    conv = sql.converted(o.amount, o.currency, o.created_at)
    rows = await session.execute(
        select(conv, o.forecast_category, o.probability)
        .where(
            o.status == OpportunityStatus.OPEN.value, *opportunity_conditions(sql, o, filters, runs.pipeline)
        )
        .order_by(o.id)
    )
    hundred = Decimal(100)
    return [
        (int(amount), category or "pipeline", Decimal(0) if p is None else Decimal(p) / hundred)
        for amount, category, p in rows
        if amount is not None
    ]


async def _cached_values(
    session: AsyncSession,
    *,
    settings: Settings,
    win: Window,
    names: tuple[str, ...],
    filters: KpiFilters,
    model: str,
) -> dict[str, KpiValue]:
    version = await data_version(session)
    entries = _entries(session, _values_cache, version)
    key = (
        tuple(q.key for q in win.quarters),
        names,
        filters,
        None if win.as_of is None else win.as_of.isoformat(),
        model,
        *_settings_key(settings),
    )
    if entries is not None:
        hit = entries.get(key)
        if hit is not None and hit[0] == version and time.monotonic() - hit[1] < CACHE_SECONDS:
            return dict(hit[2])
    values = await _compute(session, settings=settings, win=win, names=names, filters=filters, model=model)
    if entries is not None and version is not None:
        if len(entries) >= _VALUES_CACHE_SIZE:
            entries.clear()
        entries[key] = (version, time.monotonic(), values)
    return dict(values)


async def _compute(
    session: AsyncSession,
    *,
    settings: Settings,
    win: Window,
    names: tuple[str, ...],
    filters: KpiFilters,
    model: str,
) -> dict[str, KpiValue]:
    sql = await dialect_sql(session, settings)
    runs = await current_runs(session)
    values: dict[str, KpiValue] = {}
    active = {name for name in names if not inapplicable(name, filters)}
    if active & _LEAD_KPIS:
        values.update(await _lead_values(session, settings, sql, win, filters, active & _LEAD_KPIS))
    if active & _CREATED_KPIS:
        values.update(await _created_values(session, sql, win, filters, runs))
    if active & _CLOSED_KPIS:
        values.update(await _closed_values(session, sql, win, filters, runs, active))
    if "pipeline_sourced_marketing" in active:
        values["pipeline_sourced_marketing"] = await _marketing_pipeline(
            session, sql, win, filters, runs, sourced=True
        )
    if "pipeline_influenced_marketing" in active:
        values["pipeline_influenced_marketing"] = await _marketing_pipeline(
            session, sql, win, filters, runs, sourced=False
        )
    if active & {"campaign_cost", "cac", "campaign_roi"}:
        costs = await campaign_costs(session, settings=settings, win=win, filters=filters)
        cost = sum(c.cost for c in costs if c.cost is not None)
        values["campaign_cost"] = cost
        if "cac" in active:
            deals = values.get("deals_won")
            values["cac"] = None if not deals else round_half_up(Decimal(cost) / Decimal(deals))
        if "campaign_roi" in active:
            attributed = await attributed_revenue(session, sql, win, filters, runs, model, costs)
            values["campaign_roi"] = ratio(sum(attributed.values()) - cost, cost) if cost else None
    return {name: values.get(name) if name in active else None for name in names}


# -- Leads ---------------------------------------------------------------------------------------------


async def _lead_values(
    session: AsyncSession, settings: Settings, sql: KpiSql, win: Window, filters: KpiFilters, names: set[str]
) -> dict[str, KpiValue]:
    start, cut = win.start, win.cut
    narrowed = lead_conditions(Lead, filters, touched_before=cut)
    disposed = disposition(Lead, win.as_of)
    mql_in = [Lead.mql_at >= start, Lead.mql_at < cut]

    def between(column: Any) -> list[Any]:
        return [column >= start, column < cut]

    def count(*conditions: Any) -> Any:
        return select(func.count()).select_from(Lead).where(*conditions, *narrowed).scalar_subquery()

    reached_sql = [Lead.sql_at.is_not(None)] + ([] if win.as_of is None else [Lead.sql_at < win.as_of])
    counts: dict[str, Any] = {}
    if "leads_created" in names:
        counts["created"] = count(*between(Lead.created_at))
    if names & {"mqls", "mql_to_sql_rate", "mql_commitment_attainment"}:
        counts["mqls"] = count(*mql_in)
    if names & {"accepted_leads", "acceptance_rate"}:
        counts["accepted"] = count(*between(Lead.accepted_at))
    if names & {"rejected_leads", "acceptance_rate"}:
        counts["rejected"] = count(*between(Lead.rejected_at))
    if "sqls" in names:
        counts["sqls"] = count(*between(Lead.sql_at))
    if "mql_to_sql_rate" in names:
        counts["mql_sql"] = count(*mql_in, *reached_sql)
    if "speed_to_lead_hours" in names:
        counts["disposed"] = count(*mql_in, disposed.is_not(None))
    n: dict[str, int] = {}
    if counts:
        keys = list(counts)
        row = (await session.execute(select(*counts.values()))).one()
        n = {k: int(v) for k, v in zip(keys, row, strict=True)}
    values: dict[str, KpiValue] = {}
    if "leads_created" in names:
        values["leads_created"] = n["created"]
    if "mqls" in names:
        values["mqls"] = n["mqls"]
    if "accepted_leads" in names:
        values["accepted_leads"] = n["accepted"]
    if "rejected_leads" in names:
        values["rejected_leads"] = n["rejected"]
    if "sqls" in names:
        values["sqls"] = n["sqls"]
    if "acceptance_rate" in names:
        values["acceptance_rate"] = ratio(n["accepted"], n["accepted"] + n["rejected"])
    if "mql_to_sql_rate" in names:
        values["mql_to_sql_rate"] = ratio(n["mql_sql"], n["mqls"])
    rules: SlaRules | None = None
    if names & {"sla_compliance", "mql_commitment_attainment"}:
        rules = await SlaRules.load(session, settings=settings, win=win)
    if "sla_compliance" in names and rules is not None:
        # Business hours on each period's calendar cannot be said in SQL: read each MQL's two instants
        # and judge it here (a bisection per MQL, see core.BusinessClock).
        tally = {"met": 0, "breached": 0, "pending": 0}
        rows = await session.execute(select(Lead.mql_at, disposed).where(*mql_in, *narrowed))
        for mql_at, disposed_at in rows:
            verdict = rules.judge(as_utc(mql_at) or win.now, as_utc(disposed_at), now=win.now)
            tally[verdict.status] += 1
        values["sla_compliance"] = ratio(tally["met"], tally["met"] + tally["breached"])
    if "mql_commitment_attainment" in names and rules is not None:
        committed = rules.committed(settings, until=min(win.cut, win.now))
        values["mql_commitment_attainment"] = ratio(n["mqls"], committed) if committed else None
    if "speed_to_lead_hours" in names:
        values["speed_to_lead_hours"] = await _median_hours(
            session, sql, n["disposed"], [*mql_in, disposed.is_not(None), *narrowed], disposed
        )
    return values


async def _median_hours(
    session: AsyncSession, sql: KpiSql, n: int, conditions: list[Any], disposed: Any
) -> Decimal | None:
    """The median of the MQL-to-disposition times, in hours: only the middle one or two are read."""
    if n == 0:
        return None
    micros = sql.micros_between(Lead.mql_at, disposed)
    middle = (
        (
            await session.execute(
                select(micros)
                .where(*conditions)
                .order_by(micros)
                .offset((n - 1) // 2)
                .limit(1 if n % 2 else 2)
            )
        )
        .scalars()
        .all()
    )
    found = median([int(m) for m in middle])
    return None if found is None else found / MICROS_PER_HOUR


# -- Opportunities -------------------------------------------------------------------------------------


async def _created_values(
    session: AsyncSession, sql: KpiSql, win: Window, filters: KpiFilters, runs: Runs
) -> dict[str, KpiValue]:
    o = aliased(Opportunity)
    conv = sql.converted(o.amount, o.currency, o.created_at)
    n, amount = (
        await session.execute(
            select(func.count(), func.sum(conv)).where(
                o.created_at >= win.start,
                o.created_at < win.cut,
                *opportunity_conditions(sql, o, filters, runs.pipeline),
            )
        )
    ).one()
    return {"opportunities_created": int(n), "pipeline_created": _int(amount)}


async def _closed_values(
    session: AsyncSession, sql: KpiSql, win: Window, filters: KpiFilters, runs: Runs, names: set[str]
) -> dict[str, KpiValue]:
    o = aliased(Opportunity)
    conditions = opportunity_conditions(sql, o, filters, runs.pipeline)
    won = o.status == _WON
    conv = case((won, sql.converted(o.amount, o.currency, o.closed_at)), else_=null())
    cycle = case((won, sql.micros_between(o.created_at, o.closed_at)), else_=null())
    counts: dict[str, list[int]] = {_WON: [0, 0, 0, 0], _LOST: [0, 0, 0, 0]}
    for status, n, priced, amount, micros in await session.execute(
        select(o.status, func.count(), func.count(conv), func.sum(conv), func.sum(cycle))
        .where(o.status.in_([_WON, _LOST]), o.closed_at >= win.start, o.closed_at < win.cut, *conditions)
        .group_by(o.status)
    ):
        counts[status] = [int(n), int(priced), _int(amount), _int(micros)]
    deals, priced, revenue, micros = counts[_WON]
    lost = counts[_LOST][0]
    win_rate = ratio(deals, deals + lost)
    cycle_days = None if deals == 0 else Decimal(micros) / (Decimal(deals) * MICROS_PER_DAY)
    values: dict[str, KpiValue] = {
        "revenue_won": revenue,
        "deals_won": deals,
        "win_rate": win_rate,
        "avg_deal_size": None if priced == 0 else round_half_up(Decimal(revenue) / priced),
        "sales_cycle_days": cycle_days,
    }
    if "pipeline_velocity" in names:
        at = win.snapshot
        open_deals = (
            await session.execute(
                select(func.count()).where(
                    o.created_at < at, or_(o.closed_at.is_(None), o.closed_at >= at), *conditions
                )
            )
        ).scalar_one()
        values["pipeline_velocity"] = velocity(int(open_deals), win_rate, revenue, priced, cycle_days)
    return values


async def _marketing_pipeline(
    session: AsyncSession, sql: KpiSql, win: Window, filters: KpiFilters, runs: Runs, *, sourced: bool
) -> int:
    """Marketing-sourced (first touch on a marketing campaign) or -influenced (any touch on one)
    pipeline created in the window: from the current pipeline run, else read from the touches."""
    if runs.pipeline is not None:
        deals = marketing_stored(win, filters, runs.pipeline, sourced=sourced).subquery()
    else:
        deals = marketing_read(sql, win, filters, sourced=sourced).subquery()
    return _int((await session.execute(select(func.sum(deals.c.converted)))).scalar())


async def has_pipeline_data(session: AsyncSession) -> bool:
    """Whether any lead or opportunity has been loaded (pages show what to do next when none has)."""
    any_lead, any_opp = (
        await session.execute(select(exists(select(Lead.id)), exists(select(Opportunity.id))))
    ).one()
    return bool(any_lead or any_opp)


# -- Filters: the choices a page offers, and checking what a caller sent ------------------------------


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """What each filter can be set to: (id, label) pairs, or the values in use."""

    teams: list[tuple[int, str]]
    people: list[tuple[int, str]]
    campaigns: list[tuple[int, str]]
    channels: list[str]
    segments: list[str]

    def label(self, filters: KpiFilters) -> list[tuple[str, str]]:
        """(filter, what it is set to) for each filter set, for headings and captions."""
        named = {
            "team": dict(self.teams).get(filters.team_id or 0),
            "person": dict(self.people).get(filters.person_id or 0),
            "campaign": dict(self.campaigns).get(filters.campaign_id or 0),
            "channel": filters.channel,
            "segment": filters.segment,
        }
        return [(name, str(named[name] or filters.params[name])) for name in filters.used]


async def filter_options(session: AsyncSession) -> FilterOptions:
    """Every team, person, campaign, channel and account segment, sorted by name."""
    teams = [
        (int(i), str(n)) for i, n in await session.execute(select(Team.id, Team.name).order_by(Team.name))
    ]
    people = [
        (int(i), str(n))
        for i, n in await session.execute(select(Person.id, Person.name).order_by(Person.name, Person.id))
    ]
    campaigns = [
        (int(i), str(n))
        for i, n in await session.execute(
            select(Campaign.id, Campaign.name).order_by(Campaign.name, Campaign.id)
        )
    ]
    channels = list(
        (await session.execute(select(Campaign.channel).distinct().order_by(Campaign.channel))).scalars()
    )
    segments = list(
        (
            await session.execute(
                select(Account.segment)
                .where(Account.segment.is_not(None))
                .distinct()
                .order_by(Account.segment)
            )
        ).scalars()
    )
    return FilterOptions(teams, people, campaigns, [str(c) for c in channels], [str(s) for s in segments])


async def check_filters(session: AsyncSession, filters: KpiFilters, *, kpi: str | None = None) -> None:
    """ValidationFailed (422) naming each filter that names nothing known, or (given `kpi`) that has no
    meaning for that KPI."""
    errors: list[dict[str, Any]] = []
    lookups: list[tuple[str, Any, Any]] = [
        ("team", filters.team_id, select(Team.id).where(Team.id == filters.team_id)),
        ("person", filters.person_id, select(Person.id).where(Person.id == filters.person_id)),
        ("campaign", filters.campaign_id, select(Campaign.id).where(Campaign.id == filters.campaign_id)),
        ("channel", filters.channel, select(Campaign.id).where(Campaign.channel == filters.channel)),
        ("segment", filters.segment, select(Account.id).where(Account.segment == filters.segment)),
    ]
    for name, value, stmt in lookups:
        if value is not None and not (await session.execute(select(exists(stmt)))).scalar():
            errors.append({"field": name, "message": f"there is no {name} {value!r}"})
    if kpi is not None:
        for name in inapplicable(kpi, filters):
            errors.append({"field": name, "message": f"the {name} filter does not apply to {kpi}"})
    if errors:
        fields = ", ".join(e["field"] for e in errors)
        raise ValidationFailed(f"Some filters cannot be used: {fields}.", errors=errors)


__all__ = [
    "CACHE_SECONDS",
    "FILTER_NAMES",
    "LOOKBACK_DAYS",
    "MARKETING",
    "PAGE_SIZE",
    "SORTS",
    "UNATTRIBUTED",
    "CampaignRow",
    "Dashboard",
    "DataWarning",
    "FilterOptions",
    "KpiFigure",
    "KpiFilters",
    "LeadRow",
    "Month",
    "OpportunityRow",
    "QuarterFigures",
    "RecordPage",
    "SlaRules",
    "Verdict",
    "as_utc",
    "check_filters",
    "clear_cache",
    "current_runs",
    "dashboard",
    "data_version",
    "default_sort",
    "dialect_sql",
    "drill_down_kpi",
    "filter_options",
    "has_pipeline_data",
    "kpi_records",
    "kpi_values",
    "library_kpi",
    "open_pipeline",
    "period_bounds",
    "quarter_figures",
    "quarter_months",
    "resolve_model",
    "same_day_cutoff",
    "trailing_actual",
]
