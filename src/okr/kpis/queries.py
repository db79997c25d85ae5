"""The SQL building blocks of the KPI figures: per-database expressions, the period window, what each
filter means for leads, opportunities and campaigns, the current attribution runs, campaign costs.

Money: every opportunity is converted to the org currency at the FX rate in force on its close date
(revenue) or creation date (pipeline), judged in the org's time zone: the latest rate whose `valid_from`
is on or before that date, else the currency's earliest rate. Each opportunity is rounded half up to the
minor unit exactly as `okr.lib.money.convert` does, then summed. PostgreSQL does that in NUMERIC (exact);
SQLite has no decimal type, so there the per-row conversion is `convert` itself, registered as an SQL
function on the connection. An opportunity in a currency with no rate at all is left out of the sums.

Filter semantics (docs/kpis.md): leads are narrowed by their owner (person, team), their account's
segment and their touches (campaign, channel); opportunities by their owner, their account's segment and
their pipeline-scope attribution journey (the current run's, else the journey read from the touches);
campaigns by themselves, their channel and their owner (an unowned campaign is marketing's).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Interval,
    Numeric,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.attribution.core import Scope
from okr.db.attribution import OpportunitySourcing, attribution_credit
from okr.db.models import Account, Campaign, FxRate, Opportunity, Person, Team
from okr.db.models import Lead as LeadModel
from okr.db.models import Touchpoint as Touch
from okr.db.pipeline import OpportunityStatus
from okr.kpis.core import KpiDefinition, KpiFilters, UnknownKpiError, get_kpi
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound
from okr.lib.money import CURRENCY_DECIMALS, MoneyError, allocate, convert
from okr.lib.periods import Quarter, local_midnight_utc
from okr.settings import Settings

LOOKBACK_DAYS: Final = 365  # DESIGN 3: the attribution journey's default lookback window
MARKETING: Final = "marketing"
UNATTRIBUTED: Final = "unattributed"
_RATE_SCALE: Final = 10  # fx_rate.rate_to_base is NUMERIC(20, 10)
CREDIT: Final = attribution_credit.c
_WON: Final = OpportunityStatus.WON.value


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


def _sqlite_micros(start: str | None, end: str | None) -> int | None:
    """okr_micros(): whole microseconds from one stored timestamp to another (exact, no float)."""
    if start is None or end is None:
        return None
    delta = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _register_sqlite_functions(sync_conn: Connection) -> None:
    record = sync_conn.connection
    if record.info.get("okr_kpi_functions_v2"):
        return
    dbapi: Any = record.dbapi_connection
    dbapi.create_function("okr_convert", 4, _sqlite_convert, deterministic=True)
    dbapi.create_function("okr_local_date", 2, _sqlite_local_date, deterministic=True)
    dbapi.create_function("okr_micros", 2, _sqlite_micros, deterministic=True)
    record.info["okr_kpi_functions_v2"] = True


@dataclass(frozen=True, slots=True)
class KpiSql:
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
        return self._shift(stamp, -24 * days)

    def hours_after(self, stamp: Any, hours: int) -> ColumnElement[Any]:
        """`stamp` plus whole hours, comparable with other timestamp columns."""
        return self._shift(stamp, hours)

    def _shift(self, stamp: Any, hours: int) -> ColumnElement[Any]:
        hours = int(hours)  # an int goes into the SQL text below: never anything else
        if self.sqlite:
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': shift the seconds, keep the fraction as it is.
            shifted = func.strftime("%Y-%m-%d %H:%M:%S", stamp, f"{hours:+d} hours")
            return shifted.concat(func.substr(stamp, 20))
        # In hours: an interval in days would follow the session time zone's DST changes.
        interval: ColumnElement[Any] = literal_column(f"INTERVAL '{abs(hours)} hours'", Interval())
        result: ColumnElement[Any] = stamp + interval if hours >= 0 else stamp - interval
        return result

    def micros_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        """Whole microseconds from `start` to `end` (timestamp columns), exact on both databases."""
        if self.sqlite:
            return func.okr_micros(start, end)
        seconds = func.extract("epoch", end - start)  # NUMERIC on PostgreSQL 14+: exact
        return cast(seconds * 1_000_000, BigInteger)

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


async def dialect_sql(session: AsyncSession, settings: Settings) -> KpiSql:
    """The expressions (dates, FX conversion) written for this session's database."""
    conn = await session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        await conn.run_sync(_register_sqlite_functions)
    return KpiSql(sqlite=sqlite, tz_name=settings.org_timezone, currency=settings.org_currency)


def period_bounds(settings: Settings, quarter: Quarter) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a quarter in UTC, from the org's time zone and fiscal year."""
    return quarter.utc_bounds(settings.tz, settings.fiscal_year_start_month)


# -- The window a figure counts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The instants a figure counts: events in [start, cut), where cut = min(end, as_of).

    `now` is when open things are judged: an open MQL past its SLA deadline, the deals open at the
    period's end; it is `as_of` when given, else the clock.
    """

    quarters: tuple[Quarter, ...]
    start: dt.datetime
    end: dt.datetime
    as_of: dt.datetime | None
    now: dt.datetime

    @property
    def cut(self) -> dt.datetime:
        """Events at or after this instant do not count."""
        return self.end if self.as_of is None else max(self.start, min(self.end, self.as_of))

    @property
    def snapshot(self) -> dt.datetime:
        """The instant at which "open" is judged for pipeline velocity: the period's end, or earlier."""
        return max(self.start, min(self.end, self.now))

    def cut_day(self, tz: ZoneInfo) -> dt.date | None:
        """With `as_of` inside the window: the first local day that no longer counts (for costs)."""
        if self.as_of is None or self.as_of >= self.end:
            return None
        local = max(self.as_of, self.start).astimezone(tz)
        day = local.date()
        return day if local_midnight_utc(day, tz) >= max(self.as_of, self.start) else day + dt.timedelta(1)


def window(settings: Settings, quarters: Sequence[Quarter], *, as_of: dt.datetime | None = None) -> Window:
    """The window of consecutive `quarters`, up to `as_of` when given."""
    start, _ = period_bounds(settings, quarters[0])
    _, end = period_bounds(settings, quarters[-1])
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    now = as_of if as_of is not None else utcnow()
    return Window(tuple(quarters), start, end, as_of, now)


# -- Attribution runs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Runs:
    """The current (latest succeeded) attribution run of each scope; None before the first recompute."""

    pipeline: int | None
    revenue: int | None


async def current_runs(session: AsyncSession) -> Runs:
    """The id of each scope's current run."""
    # Imported here: okr.attribution imports this package at its own import time.
    from okr.attribution.services import latest_run

    pipeline = await latest_run(session, Scope.PIPELINE)
    revenue = await latest_run(session, Scope.REVENUE)
    return Runs(None if pipeline is None else pipeline.id, None if revenue is None else revenue.id)


# -- Journeys read from the touches (no attribution run yet) ---------------------------------------------


def first_touch_campaign(
    sql: KpiSql, account_id: Any, end: Any, lookback_from: Any | None = None
) -> ColumnElement[Any]:
    """The campaign of a journey's first touch (DESIGN 3), NULL without a touch.

    The earliest touch of any lead on the opportunity's account, at or before `end` (creation for the
    pipeline scope, close for revenue) and at most LOOKBACK_DAYS before it; ties go to the smaller
    touchpoint external id. Pass `lookback_from` when the window's start is already a column: computing
    it once per opportunity saves a third of the time.
    """
    start = sql.days_before(end, LOOKBACK_DAYS) if lookback_from is None else lookback_from
    return (
        select(Touch.campaign_id)
        .join(LeadModel, LeadModel.id == Touch.lead_id)
        .where(LeadModel.account_id == account_id, Touch.occurred_at <= end, Touch.occurred_at >= start)
        .order_by(Touch.occurred_at, sql.binary(Touch.external_id))
        .limit(1)
        .scalar_subquery()
    )


def source_team(campaign: Any, team: Any, first_campaign_id: Any) -> ColumnElement[Any]:
    """Who sourced the pipeline: the first-touch campaign owner's team; an unowned campaign is marketing's."""
    return case(
        (first_campaign_id.is_(None), literal(UNATTRIBUTED)),
        (campaign.owner_id.is_(None), literal(MARKETING)),
        else_=func.coalesce(team.name, literal(UNATTRIBUTED)),
    )


def marketing_campaign_ids() -> Any:
    """The ids of marketing's campaigns: those of marketing people, and those without an owner."""
    owner, team = aliased(Person), aliased(Team)
    return (
        select(Campaign.id)
        .outerjoin(owner, owner.id == Campaign.owner_id)
        .outerjoin(team, team.id == owner.team_id)
        .where((Campaign.owner_id.is_(None)) | (team.name == MARKETING))
    )


def journey_touch(sql: KpiSql, opportunity: Any, *campaign_conditions: Any) -> ColumnElement[bool]:
    """Whether the opportunity's pipeline-scope journey read from the touches has a touch meeting the
    conditions on `Touch` (the fallback while no attribution run exists)."""
    t, lead = aliased(Touch), aliased(LeadModel)
    conditions = [c(t) for c in campaign_conditions]
    return exists(
        select(t.id)
        .join(lead, lead.id == t.lead_id)
        .where(
            lead.account_id == opportunity.account_id,
            t.occurred_at <= opportunity.created_at,
            t.occurred_at >= sql.days_before(opportunity.created_at, LOOKBACK_DAYS),
            *conditions,
        )
    )


def channel_campaign_ids(channel: str) -> Any:
    """The ids of the campaigns of a channel."""
    return select(Campaign.id).where(Campaign.channel == channel)


# -- Filters ---------------------------------------------------------------------------------------------


def lead_conditions(lead: Any, filters: KpiFilters, *, touched_before: dt.datetime) -> list[Any]:
    """Leads narrowed by owner (person, team), account segment, and a touch on the campaign or channel
    before `touched_before` (the end of the window)."""
    conditions: list[Any] = []
    if filters.person_id is not None:
        conditions.append(lead.owner_id == filters.person_id)
    if filters.team_id is not None:
        conditions.append(lead.owner_id.in_(select(Person.id).where(Person.team_id == filters.team_id)))
    if filters.segment is not None:
        conditions.append(lead.account_id.in_(select(Account.id).where(Account.segment == filters.segment)))
    if filters.campaign_id is not None:
        # The campaign's touches (index on campaign and time) are few: read the leads they touched once
        # per statement, however many counts of the statement use them.
        t = aliased(Touch)
        touched = (
            select(t.lead_id)
            .where(t.campaign_id == filters.campaign_id, t.occurred_at < touched_before)
            .distinct()
            .cte("campaign_leads")
            .prefix_with("MATERIALIZED")
        )
        conditions.append(lead.id.in_(select(touched.c.lead_id)))
    if filters.channel is not None:
        # A channel's touches can be a third of all: look for one among each lead's own touches instead.
        t = aliased(Touch)
        conditions.append(
            exists(
                select(t.id).where(
                    t.lead_id == lead.id,
                    t.occurred_at < touched_before,
                    t.campaign_id.in_(channel_campaign_ids(filters.channel)),
                )
            )
        )
    return conditions


def owner_conditions(opportunity: Any, filters: KpiFilters) -> list[Any]:
    """Opportunities narrowed by their owner (person, owner's team) and their account's segment."""
    conditions: list[Any] = []
    if filters.person_id is not None:
        conditions.append(opportunity.owner_id == filters.person_id)
    if filters.team_id is not None:
        conditions.append(
            opportunity.owner_id.in_(select(Person.id).where(Person.team_id == filters.team_id))
        )
    if filters.segment is not None:
        conditions.append(
            opportunity.account_id.in_(select(Account.id).where(Account.segment == filters.segment))
        )
    return conditions


def journey_conditions(
    sql: KpiSql, opportunity: Any, filters: KpiFilters, pipeline_run: int | None
) -> list[Any]:
    """Opportunities whose pipeline-scope journey includes the campaign (a touch of the channel): from
    the current pipeline run's credit rows, else read from the touches."""
    conditions: list[Any] = []
    if filters.campaign_id is None and filters.channel is None:
        return conditions
    if pipeline_run is not None:
        if filters.campaign_id is not None:
            conditions.append(
                opportunity.id.in_(
                    select(CREDIT.opportunity_id).where(
                        CREDIT.run_id == pipeline_run, CREDIT.campaign_id == filters.campaign_id
                    )
                )
            )
        if filters.channel is not None:
            # A channel's steps can be a third of the run: look among each deal's own steps instead.
            step = aliased(attribution_credit)
            conditions.append(
                exists(
                    select(step.c.position).where(
                        step.c.run_id == pipeline_run,
                        step.c.opportunity_id == opportunity.id,
                        step.c.campaign_id.in_(channel_campaign_ids(filters.channel)),
                    )
                )
            )
        return conditions
    if filters.campaign_id is not None:
        campaign_id = filters.campaign_id
        conditions.append(journey_touch(sql, opportunity, lambda t: t.campaign_id == campaign_id))
    if filters.channel is not None:
        channel = filters.channel
        conditions.append(
            journey_touch(sql, opportunity, lambda t: t.campaign_id.in_(channel_campaign_ids(channel)))
        )
    return conditions


def opportunity_conditions(
    sql: KpiSql, opportunity: Any, filters: KpiFilters, pipeline_run: int | None
) -> list[Any]:
    """Every filter on an opportunity: owner, team, segment, and the campaign or channel on its journey."""
    return [
        *owner_conditions(opportunity, filters),
        *journey_conditions(sql, opportunity, filters, pipeline_run),
    ]


# -- Campaigns and their cost ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignCost:
    """A campaign with its owner and team (an unowned campaign is marketing's) and its cost in a window."""

    id: int
    external_id: str
    name: str
    channel: str
    owner_id: int | None
    owner: str | None
    team_id: int | None
    team: str
    cost: int | None  # minor units of the org currency; None: no FX rate, or no dates to place it in time


async def campaign_costs(
    session: AsyncSession, *, settings: Settings, win: Window, filters: KpiFilters
) -> list[CampaignCost]:
    """The campaigns the filters name (campaign, channel, owner, owner's team), with their cost in the
    window: the attribution pages' cost per quarter (docs/decisions.md, "Cost in a quarter"), and with
    `as_of` inside the window only the days before it (the quarter's share split by days, exactly)."""
    # Imported here: okr.attribution imports this package at its own import time. The cost of a campaign
    # in a quarter is the attribution pages' rule, kept in one place.
    from okr.attribution.queries import CampaignInfo, campaign_columns

    sql = await dialect_sql(session, settings)
    c, owner, team = Campaign, aliased(Person), aliased(Team)
    stmt = (
        select(*campaign_columns(sql, owner, team), owner.team_id)
        .outerjoin(owner, owner.id == c.owner_id)
        .outerjoin(team, team.id == owner.team_id)
        .order_by(c.id)
    )
    if filters.campaign_id is not None:
        stmt = stmt.where(c.id == filters.campaign_id)
    if filters.channel is not None:
        stmt = stmt.where(c.channel == filters.channel)
    if filters.person_id is not None:
        stmt = stmt.where(c.owner_id == filters.person_id)
    if filters.team_id is not None:
        marketing_team = await session.scalar(select(Team.name).where(Team.id == filters.team_id))
        owned = owner.team_id == filters.team_id
        stmt = stmt.where(owned | c.owner_id.is_(None) if marketing_team == MARKETING else owned)
    org, start_month = settings.org_currency, settings.fiscal_year_start_month
    cut_day = win.cut_day(settings.tz)
    found = []
    for row in await session.execute(stmt):
        info = CampaignInfo.of_row(row[:-1], org_currency=org)
        team_id = row[-1]
        found.append(
            CampaignCost(
                id=info.id,
                external_id=info.external_id,
                name=info.name,
                channel=info.channel,
                owner_id=info.owner_id,
                owner=info.owner,
                team_id=team_id,
                team=info.team,
                cost=_cost_in_window(info, win.quarters, start_month, cut_day),
            )
        )
    return found


def _cost_in_window(
    info: Any, quarters: Sequence[Quarter], start_month: int, cut_day: dt.date | None
) -> int | None:
    """The campaign's cost over whole quarters; in the quarter holding `cut_day`, only the days before it."""
    total = 0
    for quarter in quarters:
        share: int | None = info.cost_in(quarter, start_month)
        if share is None:
            return None
        q_first, q_last = quarter.dates(start_month)
        if cut_day is not None and share:
            if cut_day <= q_first:
                share = 0
            elif cut_day <= q_last:
                first, last = info.days
                lo, hi = max(first, q_first), min(last, q_last)
                before = max(0, (min(hi, cut_day - dt.timedelta(1)) - lo).days + 1)
                after = (hi - lo).days + 1 - before
                share = allocate(share, [("before", Decimal(before)), ("after", Decimal(after))])["before"]
        total += share
    return total


def _int(value: Any) -> int:
    """An SQL sum as int (PostgreSQL sums bigints as NUMERIC; an empty sum is NULL)."""
    return 0 if value is None else int(value)


# -- Lead disposition ------------------------------------------------------------------------------------


def disposition(lead: Any, as_of: dt.datetime | None) -> ColumnElement[Any]:
    """When the lead was first accepted or rejected at or after its MQL (before `as_of`); NULL when not
    (the SQL form of core.first_disposition)."""
    accepted = [lead.accepted_at.is_not(None), lead.accepted_at >= lead.mql_at]
    rejected = [lead.rejected_at.is_not(None), lead.rejected_at >= lead.mql_at]
    if as_of is not None:
        accepted.append(lead.accepted_at < as_of)
        rejected.append(lead.rejected_at < as_of)
    acc, rej = and_(*accepted), and_(*rejected)
    earlier = case((lead.accepted_at <= lead.rejected_at, lead.accepted_at), else_=lead.rejected_at)
    return case((and_(acc, rej), earlier), (acc, lead.accepted_at), (rej, lead.rejected_at), else_=null())


# -- Names a caller sends --------------------------------------------------------------------------------


def library_kpi(name: str) -> KpiDefinition:
    """The definition of KPI `name`; NotFound naming the library otherwise."""
    try:
        return get_kpi(name)
    except UnknownKpiError:
        raise NotFound(
            f"There is no KPI {name!r}. The library lists every KPI: /kpis, or GET /api/v1/kpis."
        ) from None


def resolve_model(model: str | None) -> str:
    """The stored attribution model `model` names (the attribution pages' default when None); 422 else."""
    # Imported here: okr.attribution imports this package at its own import time.
    from okr.attribution.queries import check_model

    return check_model(model)


# -- Marketing-sourced and -influenced pipeline ----------------------------------------------------------


def marketing_stored(win: Window, filters: KpiFilters, run: int, *, sourced: bool) -> Any:
    """Position-0 credit rows (one per deal, its whole amount) of the marketing-sourced or -influenced
    deals created in the window, in the pipeline run `run`, narrowed by the filters."""
    s = OpportunitySourcing
    stmt = (
        select(CREDIT.opportunity_id.label("id"), CREDIT.first_touch_base.label("converted"))
        .select_from(attribution_credit)
        .join(s, and_(s.run_id == run, s.opportunity_id == CREDIT.opportunity_id))
        .where(
            CREDIT.run_id == run,
            CREDIT.position == 0,
            CREDIT.period_at >= win.start,
            CREDIT.period_at < win.cut,
            s.sourced_by == MARKETING if sourced else s.influenced_by_marketing.is_(True),
        )
    )
    o = aliased(Opportunity)
    owned = owner_conditions(o, filters)
    if owned:
        stmt = stmt.where(CREDIT.opportunity_id.in_(select(o.id).where(*owned)))
    if sourced:
        # For sourced pipeline the campaign is the one that sourced it: the journey's first touch.
        if filters.campaign_id is not None:
            stmt = stmt.where(s.first_campaign_id == filters.campaign_id)
        if filters.channel is not None:
            stmt = stmt.where(s.first_campaign_id.in_(channel_campaign_ids(filters.channel)))
    else:
        touched = aliased(attribution_credit)
        if filters.campaign_id is not None:
            stmt = stmt.where(
                CREDIT.opportunity_id.in_(
                    select(touched.c.opportunity_id).where(
                        touched.c.run_id == run, touched.c.campaign_id == filters.campaign_id
                    )
                )
            )
        if filters.channel is not None:
            stmt = stmt.where(
                CREDIT.opportunity_id.in_(
                    select(touched.c.opportunity_id).where(
                        touched.c.run_id == run,
                        touched.c.campaign_id.in_(channel_campaign_ids(filters.channel)),
                    )
                )
            )
    return stmt


def marketing_read(sql: KpiSql, win: Window, filters: KpiFilters, *, sourced: bool) -> Any:
    """The marketing-sourced or -influenced deals created in the window read from the touches at request
    time (no attribution run yet): (id, converted) rows narrowed by the filters."""
    o = aliased(Opportunity)
    conditions = [o.created_at >= win.start, o.created_at < win.cut, *owner_conditions(o, filters)]
    converted = sql.converted(o.amount, o.currency, o.created_at).label("converted")
    if not sourced:
        marketing = journey_touch(sql, o, lambda t: t.campaign_id.in_(marketing_campaign_ids()))
        return select(o.id.label("id"), converted).where(
            *conditions, marketing, *journey_conditions(sql, o, filters, None)
        )
    opened = (
        select(
            o.id.label("id"), converted, first_touch_campaign(sql, o.account_id, o.created_at).label("first")
        )
        .where(*conditions)
        .cte("opened")
        .prefix_with("MATERIALIZED")  # the first touch is looked up once per opportunity
    )
    campaign, owner, team = aliased(Campaign), aliased(Person), aliased(Team)
    stmt = (
        select(opened.c.id, opened.c.converted)
        .select_from(opened)
        .outerjoin(campaign, campaign.id == opened.c.first)
        .outerjoin(owner, owner.id == campaign.owner_id)
        .outerjoin(team, team.id == owner.team_id)
        .where(source_team(campaign, team, opened.c.first) == MARKETING)
    )
    if filters.campaign_id is not None:
        stmt = stmt.where(opened.c.first == filters.campaign_id)
    if filters.channel is not None:
        stmt = stmt.where(campaign.channel == filters.channel)
    return stmt


async def attributed_revenue(
    session: AsyncSession,
    sql: KpiSql,
    win: Window,
    filters: KpiFilters,
    runs: Runs,
    model: str,
    costs: Sequence[CampaignCost],
) -> dict[int, int]:
    """Per campaign the filters name: the revenue won in the window credited to it under `model` (the
    current revenue run), else, before the first recompute, under first touch read from the touches."""
    narrowed = any(
        v is not None for v in (filters.campaign_id, filters.channel, filters.team_id, filters.person_id)
    )
    ids = [c.id for c in costs]
    if narrowed and not ids:
        return {}
    if runs.revenue is not None:
        base = CREDIT[f"{model}_base"]
        stmt = (
            select(CREDIT.campaign_id, func.sum(base))
            .where(
                CREDIT.run_id == runs.revenue,
                CREDIT.period_at >= win.start,
                CREDIT.period_at < win.cut,
                CREDIT.campaign_id.in_(ids) if narrowed else CREDIT.campaign_id.is_not(None),
            )
            .group_by(CREDIT.campaign_id)
        )
        return {int(cid): _int(amount) for cid, amount in await session.execute(stmt)}
    o = aliased(Opportunity)
    first = first_touch_campaign(sql, o.account_id, o.closed_at).label("first")
    won = (
        select(first, sql.converted(o.amount, o.currency, o.closed_at).label("converted"))
        .where(o.status == _WON, o.closed_at >= win.start, o.closed_at < win.cut)
        .cte("won")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        select(won.c.first, func.sum(won.c.converted))
        .where(won.c.first.in_(ids) if narrowed else won.c.first.is_not(None))
        .group_by(won.c.first)
    )
    return {int(cid): _int(amount) for cid, amount in await session.execute(stmt)}
