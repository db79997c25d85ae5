"""KPI figures for a period, computed with SQL aggregates, and the records behind each figure.

Money: every opportunity is converted to the org currency at the FX rate in force on its close date
(revenue) or creation date (pipeline), judged in the org's time zone: the latest rate whose `valid_from`
is on or before that date, else the currency's earliest rate. Each opportunity is rounded half up to the
minor unit exactly as `okr.lib.money.convert` does, then summed. PostgreSQL does that in NUMERIC (exact);
SQLite has no decimal type, so there the per-row conversion is `convert` itself, registered as an SQL
function on the connection. An opportunity in a currency with no rate at all is left out of the sums
and reported as a data warning.
"""

import datetime as dt
import math
import time
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Interval,
    Numeric,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.db.models import Account, AuditEvent, Campaign, FxRate, Lead, Opportunity, Person, Team
from okr.db.models import Touchpoint as Touch
from okr.db.pipeline import OpportunityStatus
from okr.kpis.core import (
    DASHBOARD_KPIS,
    Change,
    KpiDefinition,
    KpiValue,
    Records,
    Unit,
    compare,
    get_kpi,
    ratio,
)
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound
from okr.lib.money import CURRENCY_DECIMALS, MoneyError, convert
from okr.lib.paging import PageWindow
from okr.lib.periods import Quarter, local_midnight_utc
from okr.settings import Settings

LOOKBACK_DAYS = 365  # DESIGN 3: the attribution journey's default lookback window
PAGE_SIZE = 50
MARKETING = "marketing"
UNATTRIBUTED = "unattributed"
_RATE_SCALE = 10  # fx_rate.rate_to_base is NUMERIC(20, 10)
_WON, _LOST = OpportunityStatus.WON.value, OpportunityStatus.LOST.value


# -- SQL that differs between SQLite and PostgreSQL ------------------------------------------------------


def _sqlite_convert(amount: int | None, rate: float | str | None, from_cur: str, to_cur: str) -> int | None:
    """okr_convert(): `okr.lib.money.convert` for one row; NULL without a rate or for an unknown currency."""
    if amount is None or rate is None:
        return None
    # SQLite keeps NUMERIC(20, 10) as a REAL: read it back exactly as SQLAlchemy does for the ORM.
    exact = Decimal(f"{rate:.{_RATE_SCALE}f}") if isinstance(rate, float) else Decimal(str(rate))
    try:
        return convert(int(amount), exact, from_cur, to_cur)
    except MoneyError:
        return None


def _sqlite_local_date(stamp: str | None, tz_name: str) -> str | None:
    """okr_local_date(): a stored UTC timestamp's calendar date in `tz_name`, as YYYY-MM-DD."""
    if stamp is None:
        return None
    moment = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(tz_name)).date().isoformat()


def _register_sqlite_functions(sync_conn: Connection) -> None:
    record = sync_conn.connection
    if record.info.get("okr_kpi_functions"):
        return
    dbapi: Any = record.dbapi_connection
    dbapi.create_function("okr_convert", 4, _sqlite_convert, deterministic=True)
    dbapi.create_function("okr_local_date", 2, _sqlite_local_date, deterministic=True)
    record.info["okr_kpi_functions"] = True


@dataclass(frozen=True, slots=True)
class _Sql:
    """Builds the expressions whose SQL differs per database."""

    sqlite: bool
    tz_name: str
    currency: str

    def local_date(self, stamp: Any) -> ColumnElement[Any]:
        """The calendar date of a UTC timestamp column in the org's time zone."""
        if self.sqlite:
            return func.okr_local_date(stamp, self.tz_name)
        return cast(func.timezone(self.tz_name, stamp), Date)

    def days_before(self, stamp: Any, days: int) -> ColumnElement[Any]:
        """`stamp` minus whole 24-hour days, comparable with other timestamp columns."""
        if self.sqlite:
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': shift the seconds, keep the fraction as it is.
            shifted = func.strftime("%Y-%m-%d %H:%M:%S", stamp, f"-{days} days")
            return shifted.concat(func.substr(stamp, 20))
        # In hours: an interval in days would follow the session time zone's DST changes.
        hours: ColumnElement[Any] = literal_column(f"INTERVAL '{24 * days} hours'", Interval())
        result: ColumnElement[Any] = stamp - hours
        return result

    def binary(self, column: Any) -> ColumnElement[Any]:
        """`column` compared byte by byte, as Python compares str (PostgreSQL may collate by locale)."""
        return column if self.sqlite else column.collate("C")  # type: ignore[no-any-return]

    def rate(self, currency: Any, day: Any) -> ColumnElement[Any]:
        """The FX rate in force on `day` (latest valid_from <= day, else the earliest); NULL when none."""
        latest, earliest = aliased(FxRate), aliased(FxRate)
        on_or_before = (
            select(latest.rate_to_base)
            .where(latest.currency == currency, latest.valid_from <= day)
            .order_by(latest.valid_from.desc())
            .limit(1)
            .scalar_subquery()
        )
        first = (
            select(earliest.rate_to_base)
            .where(earliest.currency == currency)
            .order_by(earliest.valid_from)
            .limit(1)
            .scalar_subquery()
        )
        return func.coalesce(on_or_before, first)

    def converted(self, amount: Any, currency: Any, stamp: Any) -> ColumnElement[Any]:
        """`amount` in the org currency at the rate of `stamp`'s local date; NULL without a rate."""
        rate = self.rate(currency, self.local_date(stamp))
        if self.sqlite:
            foreign: ColumnElement[Any] = func.okr_convert(amount, rate, currency, self.currency)
        else:
            # 10^(decimals(org) - decimals(currency)); NULL for a currency okr does not know.
            target = CURRENCY_DECIMALS[self.currency]
            by_places: dict[int, list[str]] = defaultdict(list)
            for code, places in CURRENCY_DECIMALS.items():
                by_places[places].append(code)
            scale = case(
                *[
                    (currency.in_(codes), literal(Decimal(1).scaleb(target - places), Numeric(20, 10)))
                    for places, codes in sorted(by_places.items())
                ],
                else_=null(),
            )
            # NUMERIC arithmetic is exact, and round() of a non-negative NUMERIC rounds half up.
            foreign = cast(func.round(cast(amount, Numeric()) * rate * scale), BigInteger)
        return case((currency == self.currency, amount), else_=foreign)


async def dialect_sql(session: AsyncSession, settings: Settings) -> _Sql:
    """The expressions (dates, FX conversion) written for this session's database."""
    conn = await session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        await conn.run_sync(_register_sqlite_functions)
    return _Sql(sqlite=sqlite, tz_name=settings.org_timezone, currency=settings.org_currency)


def _first_touch_campaign(
    sql: _Sql, account_id: Any, created_at: Any, lookback_from: Any | None = None
) -> ColumnElement[Any]:
    """The campaign of an opportunity's pipeline-scope first touch (DESIGN 3), NULL without a touch.

    The earliest touch of any lead on the opportunity's account, at or before its creation and at most
    LOOKBACK_DAYS before it; ties go to the smaller touchpoint external id. Pass `lookback_from` when the
    window's start is already a column: computing it once per opportunity saves a third of the time.
    """
    start = sql.days_before(created_at, LOOKBACK_DAYS) if lookback_from is None else lookback_from
    return (
        select(Touch.campaign_id)
        .join(Lead, Lead.id == Touch.lead_id)
        .where(Lead.account_id == account_id, Touch.occurred_at <= created_at, Touch.occurred_at >= start)
        .order_by(Touch.occurred_at, sql.binary(Touch.external_id))
        .limit(1)
        .scalar_subquery()
    )


def _source_team(campaign: Any, team: Any, first_campaign_id: Any) -> ColumnElement[Any]:
    """Who sourced the pipeline: the first-touch campaign owner's team; an unowned campaign is marketing's."""
    return case(
        (first_campaign_id.is_(None), literal(UNATTRIBUTED)),
        (campaign.owner_id.is_(None), literal(MARKETING)),
        else_=func.coalesce(team.name, literal(UNATTRIBUTED)),
    )


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


def period_bounds(settings: Settings, quarter: Quarter) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a quarter in UTC, from the org's time zone and fiscal year."""
    return quarter.utc_bounds(settings.tz, settings.fiscal_year_start_month)


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


# Figures per engine (a new engine, such as a new app in a test, starts empty) and quarter. An entry
# is used only while the newest audit event is still the one it was computed under: every import writes
# one, in the same transaction as its rows. Data written without an audit event shows after
# CACHE_SECONDS at the latest; while there is no audit event at all, nothing is cached.
CACHE_SECONDS = 300.0
_CACHE_SIZE = 64
_CacheKey = tuple[str, str, str, int, str]
_cache: "weakref.WeakKeyDictionary[Engine, dict[_CacheKey, tuple[int, float, QuarterFigures]]]" = (
    weakref.WeakKeyDictionary()
)


def clear_cache() -> None:
    """Forget every cached figure (call it after writing pipeline data without an audit event)."""
    _cache.clear()


async def dashboard(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, today: dt.date | None = None
) -> Dashboard:
    """The six dashboard KPIs for `quarter`, each compared with the quarter before."""
    today = today or utcnow().astimezone(settings.tz).date()
    version = (await session.execute(select(func.max(AuditEvent.id)))).scalar_one_or_none()
    engine = session.get_bind()
    entries = _cache.setdefault(engine, {}) if version is not None and isinstance(engine, Engine) else None
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
    version: int | None,
    entries: dict[_CacheKey, tuple[int, float, QuarterFigures]] | None,
) -> QuarterFigures:
    if entries is None or version is None:
        return await quarter_figures(session, settings=settings, quarter=quarter, cutoff=cutoff)
    key = (
        quarter.key,
        settings.org_currency,
        settings.org_timezone,
        settings.fiscal_year_start_month,
        "" if cutoff is None else cutoff.isoformat(),
    )
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
    """The dashboard KPIs of one quarter from three aggregate queries, also up to `cutoff` when given."""
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

    # Opportunities created in the quarter: pipeline created, and who sourced it (the first touch).
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
    first = _first_touch_campaign(sql, opened.c.account_id, opened.c.created_at, opened.c.lookback_from)
    created = (
        select(opened.c.part, opened.c.currency, opened.c.conv, first.label("first_campaign_id"))
        .cte("created")
        .prefix_with("MATERIALIZED")  # the first touch is looked up once per opportunity
    )
    source = _source_team(Campaign, Team, created.c.first_campaign_id).label("source")
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
        sourced_rows = [(c, nc, nc, a) for _, team, c, _, nc, a in created_in if team == MARKETING]
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
    for _, team, currency, _, _, amount in created_rows:
        if currency in CURRENCY_DECIMALS:
            sourced[str(team)] += int(amount or 0)
    warnings.sort(key=lambda w: (DASHBOARD_KPIS.index(w.kpi), w.currency))
    return QuarterFigures(values=whole, values_to_cutoff=to_cutoff, sourced=dict(sourced), warnings=warnings)


# -- The records behind a figure ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpportunityRow:
    """An opportunity behind a figure, with its amount in the org currency."""

    id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    stage: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    amount: int
    currency: str
    converted: int | None
    first_campaign: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class LeadRow:
    """A lead behind a figure."""

    id: int
    external_id: str
    email: str | None
    account: str
    owner: str | None
    created_at: dt.datetime
    mql_at: dt.datetime | None
    accepted_at: dt.datetime | None
    rejected_at: dt.datetime | None
    sql_at: dt.datetime | None


# The sort fields a drill-down accepts, per kind of record (never an arbitrary attribute).
SORTS: dict[Records, tuple[str, ...]] = {
    Records.OPPORTUNITIES: ("amount", "date", "name", "account", "owner", "status"),
    Records.LEADS: ("date", "email", "account", "owner"),
}


@dataclass(frozen=True, slots=True)
class RecordPage(PageWindow):
    """One page of the records behind a KPI figure."""

    kpi: KpiDefinition
    quarter: Quarter
    rows: Sequence[OpportunityRow | LeadRow]
    total: int
    page: int
    sort: str
    descending: bool
    currency: str
    date_label: str
    per_page: int = PAGE_SIZE


def default_sort(kpi: KpiDefinition) -> tuple[str, bool]:
    """The order a drill-down opens in: biggest amounts first for money, newest first otherwise."""
    return ("amount", True) if kpi.unit == Unit.CURRENCY else ("date", True)


def _order(column: Any, descending: bool, *, nullable: bool) -> list[Any]:
    # NULLs last in both directions, on both databases; a column without NULLs keeps its index usable.
    direction = column.desc() if descending else column.asc()
    return [column.is_(None), direction] if nullable else [direction]


_NULLABLE_SORTS = frozenset({"amount", "owner", "email"})


def drill_down_kpi(name: str) -> KpiDefinition:
    """The KPI whose records a drill-down lists; NotFound unless it is on the dashboard."""
    if name not in DASHBOARD_KPIS:
        raise NotFound(f"There is no list of records behind {name!r}. Pick a figure on the dashboard.")
    return get_kpi(name)


async def kpi_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: str,
    quarter: Quarter,
    page: int = 1,
    sort: str | None = None,
    descending: bool | None = None,
) -> RecordPage:
    """A page of the records behind a dashboard KPI for `quarter`; NotFound for another KPI."""
    definition = drill_down_kpi(kpi)
    default_key, default_desc = default_sort(definition)
    key = sort if sort in SORTS[definition.records] else default_key
    desc = default_desc if descending is None else descending
    page = max(1, page)
    if definition.records == Records.LEADS:
        return await _lead_records(
            session, settings=settings, kpi=definition, quarter=quarter, page=page, sort=key, descending=desc
        )
    return await _opportunity_records(
        session, settings=settings, kpi=definition, quarter=quarter, page=page, sort=key, descending=desc
    )


async def _opportunity_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: KpiDefinition,
    quarter: Quarter,
    page: int,
    sort: str,
    descending: bool,
) -> RecordPage:
    sql = await dialect_sql(session, settings)
    start, end = period_bounds(settings, quarter)
    by_close = kpi.name in ("revenue_won", "win_rate")
    sourced_only = kpi.name == "pipeline_sourced_marketing"
    o = aliased(Opportunity)
    stamp = o.closed_at if by_close else o.created_at
    statuses = {"revenue_won": [_WON], "win_rate": [_WON, _LOST]}.get(kpi.name)

    in_period = select(
        o.id.label("id"),
        sql.converted(o.amount, o.currency, stamp).label("converted"),
        o.account_id.label("account_id"),
        o.created_at.label("created_at"),
    ).where(stamp >= start, stamp < end)
    if statuses:
        in_period = in_period.where(o.status.in_(statuses))
    if sourced_only:
        in_period = in_period.add_columns(sql.days_before(o.created_at, LOOKBACK_DAYS).label("lookback_from"))
    behind = in_period.cte("behind").prefix_with("MATERIALIZED")
    if sourced_only:
        first = _first_touch_campaign(sql, behind.c.account_id, behind.c.created_at, behind.c.lookback_from)
        behind = (
            select(behind.c.id, behind.c.converted, first.label("first_campaign_id"))
            .cte("behind_sourced")
            .prefix_with("MATERIALIZED")
        )
    campaign, owner_of_campaign, team = aliased(Campaign), aliased(Person), aliased(Team)

    def only_sourced(stmt: Any) -> Any:
        if not sourced_only:
            return stmt
        return (
            stmt.outerjoin(campaign, campaign.id == behind.c.first_campaign_id)
            .outerjoin(owner_of_campaign, owner_of_campaign.id == campaign.owner_id)
            .outerjoin(team, team.id == owner_of_campaign.team_id)
            .where(_source_team(campaign, team, behind.c.first_campaign_id) == MARKETING)
        )

    total = int((await session.execute(only_sourced(select(func.count()).select_from(behind)))).scalar_one())
    page = min(page, max(1, math.ceil(total / PAGE_SIZE)))

    owner = aliased(Person)
    opp = aliased(Opportunity)
    sort_columns: dict[str, Any] = {
        "amount": behind.c.converted,
        "date": opp.closed_at if by_close else opp.created_at,
        "name": opp.name,
        "account": Account.name,
        "owner": owner.name,
        "status": opp.status,
    }
    stmt = only_sourced(
        select(
            opp.id,
            opp.external_id,
            opp.name,
            Account.name,
            owner.name,
            opp.status,
            opp.stage,
            opp.created_at,
            opp.closed_at,
            opp.amount,
            opp.currency,
            behind.c.converted,
        )
        .select_from(behind)
        .join(opp, opp.id == behind.c.id)
        .join(Account, Account.id == opp.account_id)
        .outerjoin(owner, owner.id == opp.owner_id)
    )
    stmt = stmt.order_by(*_order(sort_columns[sort], descending, nullable=sort in _NULLABLE_SORTS), opp.id)
    found = (await session.execute(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))).all()
    sources = await _first_touches(session, sql, [r[0] for r in found]) if not by_close else {}
    rows = [
        OpportunityRow(
            id=r[0], external_id=r[1], name=r[2], account=r[3], owner=r[4], status=r[5], stage=r[6],
            created_at=r[7], closed_at=r[8], amount=r[9], currency=r[10],
            converted=r[11] if r[10] in CURRENCY_DECIMALS else None,
            first_campaign=sources.get(r[0], (None, None))[0], source=sources.get(r[0], (None, None))[1],
        )
        for r in found
    ]  # fmt: skip
    return RecordPage(
        kpi=kpi,
        quarter=quarter,
        rows=rows,
        total=total,
        page=page,
        sort=sort,
        descending=descending,
        currency=settings.org_currency,
        date_label="Closed" if by_close else "Created",
    )


async def _first_touches(
    session: AsyncSession, sql: _Sql, ids: list[int]
) -> dict[int, tuple[str | None, str]]:
    """Per opportunity id: its first-touch campaign's name and the team that sourced it."""
    if not ids:
        return {}
    o = aliased(Opportunity)
    first = (
        select(o.id.label("id"), _first_touch_campaign(sql, o.account_id, o.created_at).label("campaign_id"))
        .where(o.id.in_(ids))
        .cte("first")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        select(first.c.id, Campaign.name, _source_team(Campaign, Team, first.c.campaign_id))
        .select_from(first)
        .outerjoin(Campaign, Campaign.id == first.c.campaign_id)
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )
    return {r[0]: (r[1], str(r[2])) for r in (await session.execute(stmt)).all()}


async def _lead_records(
    session: AsyncSession,
    *,
    settings: Settings,
    kpi: KpiDefinition,
    quarter: Quarter,
    page: int,
    sort: str,
    descending: bool,
) -> RecordPage:
    start, end = period_bounds(settings, quarter)
    stamp = Lead.mql_at if kpi.name == "mqls" else Lead.sql_at
    in_period = [stamp >= start, stamp < end]
    total = int(
        (await session.execute(select(func.count()).select_from(Lead).where(*in_period))).scalar_one()
    )
    page = min(page, max(1, math.ceil(total / PAGE_SIZE)))
    sort_columns: dict[str, Any] = {
        "date": stamp,
        "email": Lead.email,
        "account": Account.name,
        "owner": Person.name,
    }
    # First the page's ids, joining only what the sort needs (a deep page then skips over index
    # entries, not over joined rows), then those 50 leads with their account and owner.
    ids_stmt = select(Lead.id).where(*in_period)
    if sort == "account":
        ids_stmt = ids_stmt.join(Account, Account.id == Lead.account_id)
    elif sort == "owner":
        ids_stmt = ids_stmt.outerjoin(Person, Person.id == Lead.owner_id)
    ids_stmt = (
        ids_stmt.order_by(*_order(sort_columns[sort], descending, nullable=sort in _NULLABLE_SORTS), Lead.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    ids = list((await session.execute(ids_stmt)).scalars().all())
    stmt = (
        select(
            Lead.id,
            Lead.external_id,
            Lead.email,
            Account.name,
            Person.name,
            Lead.created_at,
            Lead.mql_at,
            Lead.accepted_at,
            Lead.rejected_at,
            Lead.sql_at,
        )
        .join(Account, Account.id == Lead.account_id)
        .outerjoin(Person, Person.id == Lead.owner_id)
        .where(Lead.id.in_(ids))
    )
    found = {
        r[0]: LeadRow(
            id=r[0], external_id=r[1], email=r[2], account=r[3], owner=r[4], created_at=r[5],
            mql_at=r[6], accepted_at=r[7], rejected_at=r[8], sql_at=r[9],
        )
        for r in (await session.execute(stmt)).all()
    }  # fmt: skip
    rows = [found[i] for i in ids if i in found]
    return RecordPage(
        kpi=kpi,
        quarter=quarter,
        rows=rows,
        total=total,
        page=page,
        sort=sort,
        descending=descending,
        currency=settings.org_currency,
        date_label="MQL" if kpi.name == "mqls" else "SQL",
    )
