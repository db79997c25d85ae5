"""Attribution figures for the pages and the API (DESIGN 3): the read side of the stored credit rows.

Every figure is an SQL aggregate over `attribution_credit` (one row per journey step and run, every
model side by side), selected by the run and the period (`period_at`: creation for the pipeline scope,
close for revenue; index (run_id, period_at)) or by campaign (index (run_id, campaign_id)). Money is in
the organisation's currency (`{model}_base`, converted as the dashboard converts each deal, then split
over the model's weights) unless a name says otherwise; a deal without an FX rate has NULL there and is
left out of the sums, and reported, as on the dashboard.

One fact the queries lean on: step 0 of every journey (the earliest touch, or the `unattributed` row of
a deal without touch) carries the whole deal under first touch. So the rows with `position = 0` are
one row per opportunity whose `first_touch_amount` / `first_touch_base` are its whole amount, and whose
campaign is the one that sourced it.
"""

import datetime as dt
import math
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.attribution import summary
from okr.attribution.core import (
    MARKETING,
    ROLE_BITS,
    UNATTRIBUTED,
    WEIGHT_PLACES,
    AttributionError,
    Role,
    Scope,
    rep_credit,
)
from okr.attribution.services import AttributionConfig, latest_run, load_config
from okr.db.attribution import (
    STORED_MODELS,
    AttributionRun,
    AttributionSetting,
    OpportunitySourcing,
    attribution_credit,
)
from okr.db.models import Account, Campaign, Lead, Opportunity, OpportunitySplit, Person, Team, Touchpoint
from okr.db.pipeline import SplitKind
from okr.kpis.core import ratio
from okr.kpis.services import dialect_sql, period_bounds
from okr.lib.errors import NotFound, ValidationFailed
from okr.lib.money import CURRENCY_DECIMALS, MoneyError, allocate, convert
from okr.lib.paging import PageWindow
from okr.lib.periods import Quarter, quarter_of
from okr.settings import Settings

PAGE_SIZE: Final = 50
DEFAULT_MODEL: Final = "linear"
DEFAULT_SCOPE: Final = Scope.REVENUE
GROUPS: Final = ("channel", "campaign", "person")

MODEL_LABELS: Final = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "u_shaped": "U-shaped",
    "w_shaped": "W-shaped",
    "full_path": "Full path",
    "custom": "Custom milestone",
    "data_driven": "Data-driven",
}
MODEL_DEFINITIONS: Final = {
    "first_touch": "All the credit to the first touch of the journey.",
    "last_touch": "All the credit to the last touch of the journey.",
    "linear": "Equal credit to every touch of the journey.",
    "time_decay": "More credit to touches closer to the deal: a touch's weight halves every half life.",
    "u_shaped": "40 % to the first touch, 40 % to the lead-creation touch, 20 % spread over the others.",
    "w_shaped": "30 % each to the first, lead-creation and opportunity-creation touches, 10 % to the others.",
    "full_path": "22.5 % each to the first, lead-creation, opportunity-creation and closed-won touches, "
    "10 % to the others.",
    "custom": "The organisation's own milestone weights (Attribution settings).",
    "data_driven": "Each channel weighs its Markov removal effect: how many conversions are lost without it.",
}
SCOPE_LABELS: Final = {Scope.PIPELINE: "Pipeline created", Scope.REVENUE: "Revenue won"}
ROLE_LABELS: Final = {
    Role.FIRST: "first touch",
    Role.LEAD_CREATION: "lead creation",
    Role.OPPORTUNITY_CREATION: "opportunity creation",
    Role.CLOSED_WON: "closed won",
}
CAMPAIGN_SORTS: Final = ("amount", "deals", "cost", "roi", "sourced", "influenced", "name", "channel")
DETAIL_SORTS: Final = ("credit", "weight", "date", "name", "account")
COMPARE_SORTS: Final = ("difference", "a", "b", "name")

_C: Final = attribution_credit.c
_T = TypeVar("_T")
_WEIGHT_QUANTUM: Final = Decimal(1).scaleb(-WEIGHT_PLACES)


# -- Parameters ------------------------------------------------------------------------------------------


def check_model(model: str | None, *, field_name: str = "model") -> str:
    """The stored model `model` names (the default when None or blank); 422 naming the known ones."""
    if model is None or model == "":
        return DEFAULT_MODEL
    if model not in STORED_MODELS:
        raise ValidationFailed(
            f"“{model}” is not an attribution model.",
            errors=[{"field": field_name, "message": f"use one of {', '.join(STORED_MODELS)}"}],
        )
    return model


def check_scope(scope: str | None) -> Scope:
    """The scope `scope` names (the default when None or blank); 422 otherwise."""
    if scope is None or scope == "":
        return DEFAULT_SCOPE
    try:
        return Scope(scope)
    except ValueError:
        raise ValidationFailed(
            f"“{scope}” is not an attribution scope.",
            errors=[{"field": "scope", "message": "use pipeline or revenue"}],
        ) from None


def check_group(group_by: str | None) -> str:
    """channel, campaign or person (campaign when None); 422 otherwise."""
    if group_by is None or group_by == "":
        return "campaign"
    if group_by not in GROUPS:
        raise ValidationFailed(
            f"“{group_by}” is not a grouping.",
            errors=[{"field": "group_by", "message": f"use one of {', '.join(GROUPS)}"}],
        )
    return group_by


def check_sort(sort: str | None, allowed: Sequence[str], default: str) -> str:
    """`sort` when it is one of `allowed` (never an arbitrary column), else `default`."""
    return sort if sort is not None and sort in allowed else default


def weight_of(units: int) -> Decimal:
    """Weight units (10^-10) as a Decimal with exactly 10 places: 2_500_000_000 -> 0.2500000000."""
    return Decimal(units).scaleb(-WEIGHT_PLACES).quantize(_WEIGHT_QUANTUM)


def roles_of(mask: int) -> list[str]:
    """The roles a step's bit mask holds, in DESIGN order."""
    return [ROLE_LABELS[role] for role, bit in ROLE_BITS.items() if mask & bit]


def _int(value: Any) -> int:
    """An SQL sum as int (PostgreSQL sums bigints as NUMERIC; an empty sum is NULL)."""
    return 0 if value is None else int(value)


def _units(model: str) -> Any:
    return _C[f"{model}_units"]


def _base(model: str) -> Any:
    return _C[f"{model}_base"]


def _amount(model: str) -> Any:
    return _C[f"{model}_amount"]


# -- Runs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The run a figure was read from: when it was computed, with which lookback, over how many deals."""

    id: int
    scope: Scope
    computed_at: dt.datetime
    lookback_days: int
    opportunities: int
    period_basis: str | None = None

    @classmethod
    def of(cls, run: AttributionRun) -> "RunInfo":
        """From the stored run."""
        return cls(
            run.id, Scope(run.scope), run.computed_at, run.lookback_days, run.opportunities, run.period_basis
        )


async def current_run(session: AsyncSession, scope: Scope) -> RunInfo | None:
    """The scope's current run, or None before the first recompute."""
    run = await latest_run(session, scope)
    return None if run is None else RunInfo.of(run)


# -- Campaigns and their cost ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """A campaign as the figures name it: owner and team (an unowned campaign is marketing's), dates, cost."""

    id: int
    external_id: str
    name: str
    channel: str
    owner_id: int | None
    owner: str | None
    team: str
    cost: int
    currency: str
    start_date: dt.date | None
    end_date: dt.date | None
    cost_base: int | None  # the whole cost in the org currency; None: no FX rate

    @classmethod
    def of_row(cls, row: Sequence[Any], *, org_currency: str) -> "CampaignInfo":
        """From a row of CAMPAIGN_COLUMNS (id, external id, name, channel, owner id, owner name, team name,
        cost, currency, start, end, FX rate of its first date), its cost converted to the org currency."""
        cid, ext, name, channel, owner_id, owner, team, cost, currency, start, end, fx = row
        base: int | None
        if currency == org_currency:
            base = int(cost)
        elif fx is None:
            base = None
        else:
            try:
                base = convert(int(cost), Decimal(fx), currency, org_currency)
            except MoneyError:
                base = None
        return cls(
            id=cid,
            external_id=ext,
            name=name,
            channel=channel,
            owner_id=owner_id,
            owner=owner,
            team=MARKETING if owner_id is None else (team or UNATTRIBUTED),
            cost=int(cost),
            currency=currency,
            start_date=start,
            end_date=end,
            cost_base=base,
        )

    def cost_in(self, quarter: Quarter, start_month: int) -> int | None:
        """The share of the cost that falls in `quarter` (DESIGN-silent rule in docs/decisions.md).

        The cost (in the org currency, at the rate of the start date) is spread over the campaign's days
        by the largest-remainder rule, quarter by quarter, so the shares of all quarters add up to it
        exactly. A campaign with one date runs that one day; without dates its cost is in no quarter
        (None), and so is one without an FX rate.
        """
        if self.cost_base is None:
            return None
        first, last = self.days
        if first is None or last is None:
            return None
        q_first, q_last = quarter.dates(start_month)
        if last < q_first or first > q_last:
            return 0
        shares: list[tuple[str, Decimal]] = []
        q = quarter_of(first, start_month)
        while True:
            a, b = q.dates(start_month)
            days = (min(b, last) - max(a, first)).days + 1
            shares.append((q.key, Decimal(days)))
            if b >= last:
                break
            q = q.shift(1)
        return allocate(self.cost_base, shares)[quarter.key]

    @property
    def days(self) -> tuple[dt.date | None, dt.date | None]:
        """First and last day it runs; a missing date is the other one."""
        first = self.start_date or self.end_date
        last = self.end_date or self.start_date
        if first is not None and last is not None and last < first:
            first, last = last, first
        return first, last

    @property
    def dated(self) -> bool:
        """Whether it has a date to place its cost in time."""
        return self.start_date is not None or self.end_date is not None


def campaign_columns(sql: Any, owner: Any = Person, team: Any = Team) -> list[Any]:
    """The columns CampaignInfo.of_row reads, for a select joining the owner and their team."""
    c = Campaign
    rate = sql.rate(c.currency, func.coalesce(c.start_date, c.end_date))
    return [c.id, c.external_id, c.name, c.channel, c.owner_id, owner.name, team.name, c.cost, c.currency,
            c.start_date, c.end_date, rate]  # fmt: skip


async def _campaigns(
    session: AsyncSession, settings: Settings, ids: Iterable[int] | None = None
) -> dict[int, CampaignInfo]:
    """The campaigns (all, or those of `ids`) with owner, team and cost in the org currency."""
    sql = await dialect_sql(session, settings)
    stmt = (
        select(*campaign_columns(sql))
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )
    if ids is not None:
        stmt = stmt.where(Campaign.id.in_(list(ids)))
    org = settings.org_currency
    return {row[0]: CampaignInfo.of_row(row, org_currency=org) for row in await session.execute(stmt)}


# -- Campaign figures for a period -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Deals left out of the money figures for want of an FX rate (or an unknown currency)."""

    currency: str
    count: int

    @property
    def message(self) -> str:
        """What is wrong and how to fix it."""
        things = "opportunity" if self.count == 1 else "opportunities"
        if self.currency not in CURRENCY_DECIMALS:
            return f"{self.count} {things} in {self.currency} left out: okr does not know this currency."
        return (
            f"{self.count} {things} in {self.currency} left out: there is no FX rate for {self.currency}; "
            "import an fx_rates.csv row for it, then recompute."
        )


@dataclass(frozen=True, slots=True)
class CampaignFigure:
    """One campaign in a period under one model and scope: what it earned, what it cost, what it reached."""

    campaign: CampaignInfo
    amount: int
    deals: int
    touched: int
    cost: int | None
    sourced: int = 0
    sourced_deals: int = 0
    influenced: int = 0
    influenced_deals: int = 0

    @property
    def roi(self) -> Decimal | None:
        """(attributed − cost) / cost; None without a cost."""
        return None if not self.cost else ratio(self.amount - self.cost, self.cost)


@dataclass(frozen=True, slots=True)
class ChannelFigure:
    """One channel in a period: the sum of its campaigns, with deals counted once per channel."""

    channel: str
    amount: int
    deals: int
    touched: int
    cost: int
    campaigns: int
    sourced: int = 0

    @property
    def roi(self) -> Decimal | None:
        """(attributed − cost) / cost; None without a cost."""
        return None if not self.cost else ratio(self.amount - self.cost, self.cost)


@dataclass(frozen=True, slots=True)
class Figures:
    """Campaign figures of a period, model and scope; `total` == `attributed` + `unattributed`, and
    `total` is the dashboard's pipeline created (pipeline scope) or revenue won (revenue scope)."""

    quarter: Quarter
    model: str
    scope: Scope
    currency: str
    run: RunInfo
    pipeline_run: RunInfo | None
    channels: list[ChannelFigure]
    campaigns: list[CampaignFigure]
    unattributed: int
    unattributed_deals: int
    total: int
    deals: int
    left_out: list[LeftOut]
    # Pipeline created in the period by who sourced it (marketing, sdr, sales, unattributed), and the
    # part of it with any marketing touch: from the pipeline-scope run, whatever the scope shown.
    sourced_by: dict[str, int] = field(default_factory=dict)
    sourced_deals_by: dict[str, int] = field(default_factory=dict)
    pipeline_total: int = 0
    influenced_marketing: int = 0
    influenced_marketing_deals: int = 0
    undated: int = 0  # campaigns credited here whose cost cannot be placed in time

    @property
    def attributed(self) -> int:
        """What the campaigns earned under the model: the total less the unattributed bucket."""
        return sum(f.amount for f in self.campaigns)

    @property
    def cost(self) -> int:
        """The campaigns' cost in the period."""
        return sum(f.cost or 0 for f in self.campaigns)

    @property
    def roi(self) -> Decimal | None:
        """(attributed − cost) / cost over every campaign; None without cost."""
        cost = self.cost
        return None if not cost else ratio(self.attributed - cost, cost)

    def share(self, amount: int) -> Decimal | None:
        """`amount` as a share of the total."""
        return ratio(amount, self.total) if self.total else None

    def pipeline_share(self, amount: int) -> Decimal | None:
        """`amount` as a share of the period's pipeline created."""
        return ratio(amount, self.pipeline_total) if self.pipeline_total else None

    @property
    def max_channel(self) -> int:
        """The largest channel amount (the chart's scale), at least 1."""
        return max([c.amount for c in self.channels] + [self.unattributed, 1])

    def sorted_campaigns(self, sort: str, descending: bool) -> list[CampaignFigure]:
        """The campaign rows in the order asked for (sort is one of CAMPAIGN_SORTS); ties by name."""
        keys: dict[str, Any] = {
            "amount": lambda f: f.amount,
            "deals": lambda f: f.deals,
            "cost": lambda f: -1 if f.cost is None else f.cost,
            "roi": lambda f: Decimal("-Infinity") if f.roi is None else f.roi,
            "sourced": lambda f: f.sourced,
            "influenced": lambda f: f.influenced,
            "name": lambda f: f.campaign.name.casefold(),
            "channel": lambda f: f.campaign.channel,
        }
        by_name = sorted(self.campaigns, key=lambda f: (f.campaign.name.casefold(), f.campaign.id))
        return sorted(by_name, key=keys[sort], reverse=descending)

    def channel_campaigns(self, channel: str) -> list[CampaignFigure]:
        """The campaigns of one channel, biggest first."""
        return [f for f in self.sorted_campaigns("amount", True) if f.campaign.channel == channel]


@dataclass(frozen=True, slots=True)
class _Window:
    """A quarter as read from one run: its bounds, and its key when the run's summary has it."""

    start: dt.datetime
    end: dt.datetime
    period: str | None


def _window(settings: Settings, quarter: Quarter, run: RunInfo) -> _Window:
    start, end = period_bounds(settings, quarter)
    # A run summed its quarters under the calendar of its day: once the organisation changes its time
    # zone or fiscal year, the sums no longer match the quarter and the credit rows are read instead.
    follows = run.period_basis == summary.basis(settings.tz, settings.fiscal_year_start_month)
    return _Window(start, end, quarter.key if follows else None)


def _period(run_id: int, start: dt.datetime, end: dt.datetime) -> list[ColumnElement[bool]]:
    return [_C.run_id == run_id, _C.period_at >= start, _C.period_at < end]


# -- Aggregates, kept per run ----------------------------------------------------------------------------
#
# A run never changes once it has succeeded (a recompute makes a new run), so an aggregate over one run,
# period and model can be served again: going back and forth between models, scopes and pages reads each
# aggregate from the database once. Entries are keyed by the run's id and its computed_at (SQLite may
# give a new run the id of a deleted one), per engine, at most _CACHE_SIZE of them. Campaign names,
# owners and costs are read fresh every time.

_CACHE_SIZE: Final = 512
_cache: "weakref.WeakKeyDictionary[Engine, dict[tuple[Any, ...], Any]]" = weakref.WeakKeyDictionary()


def clear_cache() -> None:
    """Forget every kept aggregate (tests that reuse run ids and times call it)."""
    _cache.clear()


async def _cached(session: AsyncSession, key: tuple[Any, ...], compute: Callable[[], Awaitable[_T]]) -> _T:
    engine = session.get_bind()
    entries = _cache.setdefault(engine, {}) if isinstance(engine, Engine) else None
    if entries is not None and key in entries:
        found: _T = entries[key]
        return found
    value = await compute()
    if entries is not None:
        if len(entries) >= _CACHE_SIZE:
            entries.clear()
        entries[key] = value
    return value


def _cached_value(session: AsyncSession, key: tuple[Any, ...]) -> Any:
    engine = session.get_bind()
    return _cache.get(engine, {}).get(key) if isinstance(engine, Engine) else None


def _key(kind: str, run: RunInfo, start: dt.datetime, end: dt.datetime, *more: Any) -> tuple[Any, ...]:
    return (kind, run.id, run.computed_at, start, end, *more)


async def _summary(session: AsyncSession, run: RunInfo, period: str) -> list[summary.Group]:
    """The run's stored sums of one quarter (see okr.attribution.summary)."""
    key = ("summary", run.id, run.computed_at, period)
    return await _cached(session, key, lambda: summary.read(session, run.id, period))


@dataclass(frozen=True, slots=True)
class _Sums:
    """One group's credit under a model: amount (org currency), deals credited, deals touched."""

    key: Any
    channel: str
    amount: int
    credited: int
    touched: int


async def _campaign_sums(
    session: AsyncSession, run: RunInfo, window: _Window, model: str
) -> tuple[_Sums, ...]:
    """Per campaign (None: the unattributed bucket) in the period, under `model`."""
    if window.period is not None:
        groups = summary.of_kind(await _summary(session, run, window.period), summary.CAMPAIGN)
        return tuple(_Sums(g.campaign_id, g.label, g.base[model], g.credited[model], g.deals) for g in groups)
    start, end = window.start, window.end

    async def compute() -> tuple[_Sums, ...]:
        units, base = _units(model), _base(model)
        rows = await session.execute(
            select(
                _C.campaign_id,
                _C.channel,
                func.sum(base),
                func.count(distinct(case((units > 0, _C.opportunity_id)))),
                func.count(distinct(_C.opportunity_id)),
            )
            .where(*_period(run.id, start, end))
            .group_by(_C.campaign_id, _C.channel)
        )
        return tuple(_Sums(cid, ch, _int(a), int(n1), int(n2)) for cid, ch, a, n1, n2 in rows)

    return await _cached(session, _key("campaigns", run, start, end, model), compute)


async def _channel_sums(
    session: AsyncSession, run: RunInfo, window: _Window, model: str
) -> tuple[_Sums, ...]:
    """Per channel in the period, under `model`; a deal counts once per channel."""
    if window.period is not None:
        groups = summary.of_kind(await _summary(session, run, window.period), summary.CHANNEL)
        return tuple(_Sums(g.label, g.label, g.base[model], g.credited[model], g.deals) for g in groups)
    start, end = window.start, window.end

    async def compute() -> tuple[_Sums, ...]:
        units, base = _units(model), _base(model)
        rows = await session.execute(
            select(
                _C.channel,
                func.sum(base),
                func.count(distinct(case((units > 0, _C.opportunity_id)))),
                func.count(distinct(_C.opportunity_id)),
            )
            .where(*_period(run.id, start, end), _C.campaign_id.is_not(None))
            .group_by(_C.channel)
        )
        return tuple(_Sums(ch, ch, _int(a), int(n1), int(n2)) for ch, a, n1, n2 in rows)

    return await _cached(session, _key("channels", run, start, end, model), compute)


@dataclass(frozen=True, slots=True)
class _Totals:
    """The period's deals in a run: the total in the org currency, how many, and those left out."""

    total: int
    deals: int
    left_out: tuple[LeftOut, ...]


async def _totals(session: AsyncSession, run: RunInfo, window: _Window) -> _Totals:
    """Per currency: deals, deals with a base amount, the base total (one row per deal: position 0)."""
    start, end = window.start, window.end

    async def compute() -> _Totals:
        rows: Iterable[tuple[str, int, int, int | None]]
        if window.period is not None:
            groups = summary.of_kind(await _summary(session, run, window.period), summary.CURRENCY)
            rows = [(g.label, g.deals, g.priced, g.amount) for g in groups]
        else:
            rows = await session.execute(
                select(
                    _C.currency, func.count(), func.count(_C.first_touch_base), func.sum(_C.first_touch_base)
                )
                .where(*_period(run.id, start, end), _C.position == 0)
                .group_by(_C.currency)
            )
        total, deals, left = 0, 0, []
        for currency, n, n_base, amount in rows:
            deals += int(n)
            total += _int(amount)
            if int(n) > int(n_base):
                left.append(LeftOut(currency, int(n) - int(n_base)))
        return _Totals(total, deals, tuple(sorted(left, key=lambda x: x.currency)))

    return await _cached(session, _key("totals", run, start, end, window.period), compute)


_NO_REACH: Final = (0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class _Reach:
    """From the pipeline run: per campaign (sourced, deals, influenced, deals); per sourcing team
    (amount, deals); and the marketing-influenced (amount, deals)."""

    per_campaign: dict[int | None, tuple[int, int, int, int]]
    by_team: dict[str, tuple[int, int]]
    influenced: tuple[int, int]


async def _reach(
    session: AsyncSession,
    run: RunInfo,
    window: _Window,
    *,
    campaign_id: int | None = None,
) -> _Reach:
    """Sourced and influenced pipeline of the period (every campaign, or one when `campaign_id` is set)."""
    if window.period is not None:
        return _summed_reach(await _summary(session, run, window.period))
    start, end = window.start, window.end
    key = _key("reach", run, start, end)
    if campaign_id is None:
        return await _cached(session, key, lambda: _compute_reach(session, run.id, start, end, None))
    kept = _cached_value(session, key)
    if isinstance(kept, _Reach):
        return kept
    return await _compute_reach(session, run.id, start, end, campaign_id)


def _summed_reach(groups: Iterable[summary.Group]) -> _Reach:
    per_campaign: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_team: dict[str, tuple[int, int]] = {}
    influenced = (0, 0)
    for g in groups:
        if g.kind == summary.FIRST:
            per_campaign[g.campaign_id][0:2] = g.amount, g.deals
        elif g.kind == summary.CAMPAIGN and g.campaign_id is not None:
            per_campaign[g.campaign_id][2:4] = g.amount, g.deals
        elif g.kind == summary.TEAM:
            by_team[g.label] = g.amount, g.deals
        elif g.kind == summary.INFLUENCED:
            influenced = g.amount, g.deals
    return _Reach({k: (v[0], v[1], v[2], v[3]) for k, v in per_campaign.items()}, by_team, influenced)


async def _compute_reach(
    session: AsyncSession, run_id: int, start: dt.datetime, end: dt.datetime, campaign_id: int | None
) -> _Reach:
    s = OpportunitySourcing
    sourced_stmt = (
        select(
            _C.campaign_id,
            s.sourced_by,
            s.influenced_by_marketing,
            func.count(),
            func.sum(_C.first_touch_base),
        )
        .outerjoin(s, and_(s.run_id == run_id, s.opportunity_id == _C.opportunity_id))
        .where(*_period(run_id, start, end), _C.position == 0)
        .group_by(_C.campaign_id, s.sourced_by, s.influenced_by_marketing)
    )
    if campaign_id is not None:
        sourced_stmt = sourced_stmt.where(_C.campaign_id == campaign_id)
    per_campaign: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_team: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    influenced = [0, 0]
    for cid, team, influenced_flag, n, amount in await session.execute(sourced_stmt):
        acc = per_campaign[cid]
        acc[0] += _int(amount)
        acc[1] += int(n)
        key = str(team or UNATTRIBUTED)
        by_team[key][0] += _int(amount)
        by_team[key][1] += int(n)
        if influenced_flag:
            influenced[0] += _int(amount)
            influenced[1] += int(n)

    # Influenced per campaign: each deal with any step on it, counted once, at its whole amount (its
    # step 0 under first touch, found by primary key).
    pair_filter = [*_period(run_id, start, end), _C.campaign_id.is_not(None)]
    if campaign_id is not None:
        pair_filter.append(_C.campaign_id == campaign_id)
    pairs = select(_C.campaign_id, _C.opportunity_id).where(*pair_filter).distinct().subquery("pairs")
    whole = aliased(attribution_credit, name="whole")
    reach_stmt = (
        select(pairs.c.campaign_id, func.count(), func.sum(whole.c.first_touch_base))
        .select_from(pairs)
        .join(
            whole,
            and_(
                whole.c.run_id == run_id,
                whole.c.opportunity_id == pairs.c.opportunity_id,
                whole.c.position == 0,
            ),
        )
        .group_by(pairs.c.campaign_id)
    )
    for cid, n, amount in await session.execute(reach_stmt):
        acc = per_campaign[cid]
        acc[2] += _int(amount)
        acc[3] += int(n)
    return _Reach(
        {k: (v[0], v[1], v[2], v[3]) for k, v in per_campaign.items()},
        {k: (v[0], v[1]) for k, v in by_team.items()},
        (influenced[0], influenced[1]),
    )


async def campaign_figures(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, model: str, scope: Scope
) -> Figures | None:
    """Per channel and per campaign: attributed amount, deals, cost, ROI, sourced and influenced
    pipeline, plus the unattributed bucket and the total; None before the first recompute."""
    model = check_model(model)
    run = await current_run(session, scope)
    if run is None:
        return None
    pipeline_run = run if scope is Scope.PIPELINE else await current_run(session, Scope.PIPELINE)
    window = _window(settings, quarter, run)
    by_campaign = await _campaign_sums(session, run, window, model)
    by_channel = await _channel_sums(session, run, window, model)
    totals = await _totals(session, run, window)
    reach = _Reach({}, {}, (0, 0))
    pipeline_total = 0
    if pipeline_run is not None:
        pipeline_window = _window(settings, quarter, pipeline_run)
        reach = await _reach(session, pipeline_run, pipeline_window)
        pipeline_total = (
            totals.total
            if pipeline_run is run
            else (await _totals(session, pipeline_run, pipeline_window)).total
        )

    campaigns = await _campaigns(session, settings)
    start_month = settings.fiscal_year_start_month
    figures: list[CampaignFigure] = []
    unattributed = unattributed_deals = 0
    seen: set[int] = set()
    undated = 0
    for row in by_campaign:
        cid = row.key
        if cid is None:
            unattributed += row.amount
            unattributed_deals += row.touched
            continue
        info = campaigns.get(cid) or _missing_campaign(cid)
        seen.add(cid)
        undated += 0 if info.dated else 1
        sourced = reach.per_campaign.get(cid, _NO_REACH)
        figures.append(
            CampaignFigure(
                campaign=info,
                amount=row.amount,
                deals=row.credited,
                touched=row.touched,
                cost=info.cost_in(quarter, start_month),
                sourced=sourced[0],
                sourced_deals=sourced[1],
                influenced=sourced[2],
                influenced_deals=sourced[3],
            )
        )
    # Campaigns that cost money in the period but earned nothing in it are listed too.
    for cid, info in campaigns.items():
        if cid in seen:
            continue
        cost = info.cost_in(quarter, start_month)
        sourced = reach.per_campaign.get(cid, _NO_REACH)
        if cost or any(sourced):
            figures.append(CampaignFigure(info, 0, 0, 0, cost, *sourced))

    channels = _channels(by_channel, figures)
    return Figures(
        quarter=quarter,
        model=model,
        scope=scope,
        currency=settings.org_currency,
        run=run,
        pipeline_run=pipeline_run,
        channels=channels,
        campaigns=sorted(figures, key=lambda f: (-f.amount, f.campaign.name.casefold(), f.campaign.id)),
        unattributed=unattributed,
        unattributed_deals=unattributed_deals,
        total=totals.total,
        deals=totals.deals,
        left_out=list(totals.left_out),
        sourced_by={k: v[0] for k, v in reach.by_team.items()},
        sourced_deals_by={k: v[1] for k, v in reach.by_team.items()},
        pipeline_total=pipeline_total,
        influenced_marketing=reach.influenced[0],
        influenced_marketing_deals=reach.influenced[1],
        undated=undated,
    )


UNATTRIBUTED_BUCKET: Final = CampaignInfo(
    0,
    UNATTRIBUTED,
    "Unattributed (no touch)",
    UNATTRIBUTED,
    None,
    None,
    UNATTRIBUTED,
    0,
    "",
    None,
    None,
    None,
)
"""The pseudo-campaign of the deals without touch in their window."""


def _missing_campaign(cid: int) -> CampaignInfo:
    # Credit rows keep no foreign key: a campaign deleted since the run still shows, by its id.
    return CampaignInfo(cid, str(cid), f"Campaign {cid} (deleted)", UNATTRIBUTED, None, None,
                        MARKETING, 0, "", None, None, None)  # fmt: skip


def _channels(rows: Iterable[_Sums], figures: list[CampaignFigure]) -> list[ChannelFigure]:
    counted: dict[str, tuple[int, int, int]] = {r.channel: (r.amount, r.credited, r.touched) for r in rows}
    cost: dict[str, int] = defaultdict(int)
    campaigns: dict[str, int] = defaultdict(int)
    sourced: dict[str, int] = defaultdict(int)
    for f in figures:
        channel = f.campaign.channel
        cost[channel] += f.cost or 0
        sourced[channel] += f.sourced
        if f.touched:
            campaigns[channel] += 1
    names = sorted(set(counted) | {c for c, v in cost.items() if v})
    result = [
        ChannelFigure(
            channel=name,
            amount=counted.get(name, (0, 0, 0))[0],
            deals=counted.get(name, (0, 0, 0))[1],
            touched=counted.get(name, (0, 0, 0))[2],
            cost=cost.get(name, 0),
            campaigns=campaigns.get(name, 0),
            sourced=sourced.get(name, 0),
        )
        for name in names
    ]
    return sorted(result, key=lambda c: (-c.amount, c.channel))


# -- Campaign detail -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditedDeal:
    """An opportunity a campaign touched in the period, with the campaign's credit on it."""

    id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    period_at: dt.datetime
    amount: int
    currency: str
    steps: int
    weight: Decimal
    credit: int  # deal currency
    credit_base: int | None  # org currency


@dataclass(frozen=True, slots=True)
class CampaignDetail(PageWindow):
    """One campaign in a period under one model and scope, and a page of the deals it touched."""

    figure: CampaignFigure
    quarter: Quarter
    model: str
    scope: Scope
    currency: str
    run: RunInfo
    rows: list[CreditedDeal]
    total: int
    page: int
    sort: str
    descending: bool
    per_page: int = PAGE_SIZE


async def _require_run(session: AsyncSession, scope: Scope) -> RunInfo:
    run = await current_run(session, scope)
    if run is None:
        raise NotFound(
            "Attribution has not been computed yet: a leader or admin can recompute it on the "
            "Attribution page (or run `okr attribution recompute`)."
        )
    return run


async def campaign_detail(
    session: AsyncSession,
    *,
    settings: Settings,
    campaign_id: int | None,
    quarter: Quarter,
    model: str,
    scope: Scope,
    page: int = 1,
    sort: str | None = None,
    descending: bool | None = None,
) -> CampaignDetail:
    """The campaign's figure and a page of the deals it touched in the period; NotFound for no campaign.

    `campaign_id` None is the `unattributed` bucket: the deals without any touch in their window.
    """
    model = check_model(model)
    if campaign_id is None:
        info = UNATTRIBUTED_BUCKET
    else:
        infos = await _campaigns(session, settings, [campaign_id])
        found = infos.get(campaign_id)
        if found is None:
            raise NotFound(f"There is no campaign {campaign_id}.")
        info = found
    run = await _require_run(session, scope)
    start, end = period_bounds(settings, quarter)
    units, base, amount = _units(model), _base(model), _amount(model)
    which = _C.campaign_id.is_(None) if campaign_id is None else _C.campaign_id == campaign_id
    where = [_C.run_id == run.id, which, _C.period_at >= start, _C.period_at < end]

    per_deal = (
        select(
            _C.opportunity_id.label("opportunity_id"),
            func.count().label("steps"),
            func.sum(units).label("units"),
            func.sum(amount).label("credit"),
            func.sum(base).label("credit_base"),
            func.count(base).label("n_base"),
            func.max(_C.period_at).label("period_at"),
        )
        .where(*where)
        .group_by(_C.opportunity_id)
        .subquery("per_deal")
    )
    n_touched, n_credited, credited_base = (
        await session.execute(
            select(
                func.count(),
                func.count(case((per_deal.c.units > 0, 1))),
                func.sum(per_deal.c.credit_base),
            ).select_from(per_deal)
        )
    ).one()
    total = int(n_touched)
    figure = CampaignFigure(
        campaign=info,
        amount=_int(credited_base),
        deals=int(n_credited),
        touched=total,
        cost=info.cost_in(quarter, settings.fiscal_year_start_month),
    )
    pipeline_run = run if scope is Scope.PIPELINE else await current_run(session, Scope.PIPELINE)
    if pipeline_run is not None and campaign_id is not None:
        reach = await _reach(
            session, pipeline_run, _window(settings, quarter, pipeline_run), campaign_id=campaign_id
        )
        s = reach.per_campaign.get(campaign_id, _NO_REACH)
        figure = CampaignFigure(info, figure.amount, figure.deals, figure.touched, figure.cost, *s)

    key = check_sort(sort, DETAIL_SORTS, "credit")
    desc = (key not in ("name", "account")) if descending is None else descending
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    owner = aliased(Person)
    o = Opportunity
    columns: dict[str, Any] = {
        "credit": per_deal.c.credit_base,
        "weight": per_deal.c.units,
        "date": per_deal.c.period_at,
        "name": o.name,
        "account": Account.name,
    }
    column = columns[key]
    order = [column.is_(None), column.desc() if desc else column.asc(), o.id]
    stmt = (
        select(
            o.id,
            o.external_id,
            o.name,
            Account.name,
            owner.name,
            o.status,
            per_deal.c.period_at,
            o.amount,
            o.currency,
            per_deal.c.steps,
            per_deal.c.units,
            per_deal.c.credit,
            per_deal.c.credit_base,
            per_deal.c.n_base,
        )
        .select_from(per_deal)
        .join(o, o.id == per_deal.c.opportunity_id)
        .join(Account, Account.id == o.account_id)
        .outerjoin(owner, owner.id == o.owner_id)
        .order_by(*order)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    rows = [
        CreditedDeal(
            id=r[0], external_id=r[1], name=r[2], account=r[3], owner=r[4], status=r[5], period_at=r[6],
            amount=r[7], currency=r[8], steps=int(r[9]), weight=weight_of(_int(r[10])), credit=_int(r[11]),
            credit_base=_int(r[12]) if int(r[13]) else None,
        )
        for r in await session.execute(stmt)
    ]  # fmt: skip
    return CampaignDetail(
        figure=figure,
        quarter=quarter,
        model=model,
        scope=scope,
        currency=settings.org_currency,
        run=run,
        rows=rows,
        total=total,
        page=page,
        sort=key,
        descending=desc,
        per_page=PAGE_SIZE,
    )


# -- Opportunity journey ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One step of a journey under one model: the touch, its roles, its weight and credit."""

    position: int
    touchpoint_id: int | None
    touchpoint: str | None
    kind: str | None
    lead: str | None
    occurred_at: dt.datetime | None
    campaign_id: int | None
    campaign: str | None
    channel: str
    owner_id: int | None
    owner: str | None
    roles: list[str]
    weight: Decimal
    amount: int  # deal currency
    base: int | None  # org currency


@dataclass(frozen=True, slots=True)
class PersonShare:
    """A person's credit on one deal: in the deal's currency and in the org currency."""

    person_id: int | None
    name: str
    team: str | None
    amount: int
    base: int | None
    campaigns: int = 0


@dataclass(frozen=True, slots=True)
class ScopeJourney:
    """A deal's journey in one scope, with the people credit it gives."""

    scope: Scope
    run: RunInfo
    end: dt.datetime
    steps: list[JourneyStep]
    reps: list[PersonShare]
    overlay: list[PersonShare]
    marketers: list[PersonShare]
    split_problem: str | None = None

    @property
    def amount(self) -> int:
        """The credited amount (the deal's), in its currency."""
        return sum(s.amount for s in self.steps)

    @property
    def base(self) -> int | None:
        """The credited amount in the org currency; None without FX rate."""
        if any(s.base is None for s in self.steps):
            return None
        return sum(s.base or 0 for s in self.steps)

    @property
    def weight(self) -> Decimal:
        """The weights' sum: exactly 1."""
        return sum((s.weight for s in self.steps), Decimal(0))

    @property
    def unattributed(self) -> bool:
        """No touch in the window: the whole deal is unattributed."""
        return len(self.steps) == 1 and self.steps[0].touchpoint_id is None


@dataclass(frozen=True, slots=True)
class Journey:
    """An opportunity and its journeys under one model, in both scopes (revenue: won deals only)."""

    id: int
    external_id: str
    name: str
    account: str
    owner: str | None
    status: str
    stage: str | None
    amount: int
    currency: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    model: str
    org_currency: str
    sourced_by: str | None
    influenced_by_marketing: bool | None
    first_campaign_id: int | None
    scopes: list[ScopeJourney]
    missing: list[Scope]  # scopes with a run that holds no journey for this deal

    def scope(self, scope: Scope | str) -> ScopeJourney | None:
        """The journey in `scope`, if the run holds it."""
        return next((s for s in self.scopes if s.scope == scope), None)


async def journey(session: AsyncSession, *, settings: Settings, opportunity_id: int, model: str) -> Journey:
    """An opportunity's steps in both scopes under `model`, with rep and marketer credit; NotFound."""
    model = check_model(model)
    o, owner = Opportunity, aliased(Person)
    row = (
        await session.execute(
            select(
                o.id, o.external_id, o.name, Account.name, owner.name, o.status, o.stage, o.amount,
                o.currency, o.created_at, o.closed_at, o.owner_id,
            )
            .join(Account, Account.id == o.account_id)
            .outerjoin(owner, owner.id == o.owner_id)
            .where(o.id == opportunity_id)
        )
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"There is no opportunity {opportunity_id}.")
    (
        oid,
        ext,
        name,
        account,
        owner_name,
        status,
        stage,
        amount,
        currency,
        created_at,
        closed_at,
        owner_id,
    ) = row
    pipeline_run = await current_run(session, Scope.PIPELINE)
    sourcing = None
    if pipeline_run is not None:
        sourcing = (
            await session.execute(
                select(
                    OpportunitySourcing.sourced_by,
                    OpportunitySourcing.influenced_by_marketing,
                    OpportunitySourcing.first_campaign_id,
                ).where(
                    OpportunitySourcing.run_id == pipeline_run.id, OpportunitySourcing.opportunity_id == oid
                )
            )
        ).one_or_none()

    splits = await _splits(session, oid)
    scopes: list[ScopeJourney] = []
    missing: list[Scope] = []
    for scope in Scope:
        run = await current_run(session, scope)
        if run is None:
            continue
        found = await _steps(session, run.id, oid, model)
        if found is None:
            missing.append(scope)
            continue
        steps, end = found
        scopes.append(_scope_journey(scope, run, end, steps, amount, splits, owner_id, owner_name))
    return Journey(
        id=oid,
        external_id=ext,
        name=name,
        account=account,
        owner=owner_name,
        status=status,
        stage=stage,
        amount=amount,
        currency=currency,
        created_at=created_at,
        closed_at=closed_at,
        model=model,
        org_currency=settings.org_currency,
        sourced_by=None if sourcing is None else sourcing[0],
        influenced_by_marketing=None if sourcing is None else bool(sourcing[1]),
        first_campaign_id=None if sourcing is None else sourcing[2],
        scopes=scopes,
        missing=missing,
    )


_Split = tuple[int, str, Decimal, str, str | None, str]  # person id, email, percent, name, team, kind


async def _splits(session: AsyncSession, opportunity_id: int) -> list[_Split]:
    s = OpportunitySplit
    stmt = (
        select(s.person_id, Person.email, s.percent, Person.name, Team.name, s.kind)
        .join(Person, Person.id == s.person_id)
        .outerjoin(Team, Team.id == Person.team_id)
        .where(s.opportunity_id == opportunity_id)
        .order_by(Person.email)
    )
    return [(r[0], r[1], Decimal(r[2]), r[3], r[4], r[5]) for r in await session.execute(stmt)]


async def _steps(
    session: AsyncSession, run_id: int, opportunity_id: int, model: str
) -> tuple[list[JourneyStep], dt.datetime] | None:
    t, camp, owner = Touchpoint, aliased(Campaign), aliased(Person)
    stmt = (
        select(
            _C.position, _C.touchpoint_id, t.external_id, t.kind, Lead.email, _C.occurred_at, _C.campaign_id,
            camp.name, _C.channel, camp.owner_id, owner.name, _C.roles, _units(model), _amount(model),
            _base(model), _C.period_at,
        )
        .outerjoin(t, t.id == _C.touchpoint_id)
        .outerjoin(Lead, Lead.id == t.lead_id)
        .outerjoin(camp, camp.id == _C.campaign_id)
        .outerjoin(owner, owner.id == camp.owner_id)
        .where(_C.run_id == run_id, _C.opportunity_id == opportunity_id)
        .order_by(_C.position)
    )  # fmt: skip
    rows = (await session.execute(stmt)).all()
    if not rows:
        return None
    steps = [
        JourneyStep(
            position=r[0], touchpoint_id=r[1], touchpoint=r[2], kind=r[3], lead=r[4], occurred_at=r[5],
            campaign_id=r[6], campaign=r[7], channel=r[8], owner_id=r[9], owner=r[10], roles=roles_of(r[11]),
            weight=weight_of(int(r[12])), amount=int(r[13]), base=None if r[14] is None else int(r[14]),
        )
        for r in rows
    ]  # fmt: skip
    return steps, rows[0][15]


def _scope_journey(
    scope: Scope,
    run: RunInfo,
    end: dt.datetime,
    steps: list[JourneyStep],
    amount: int,
    splits: list[_Split],
    owner_id: int,
    owner_name: str | None,
) -> ScopeJourney:
    base = None if any(s.base is None for s in steps) else sum(s.base or 0 for s in steps)
    revenue = [(pid, email, pct) for pid, email, pct, _, _, kind in splits if kind == SplitKind.REVENUE]
    overlay = [(pid, email, pct) for pid, email, pct, _, _, kind in splits if kind == SplitKind.OVERLAY]
    names = {pid: (n, team) for pid, _, _, n, team, _ in splits}
    names.setdefault(owner_id, (owner_name or f"Person {owner_id}", None))
    problem = None
    try:
        reps = rep_credit(amount, revenue, overlay, owner_id, count_overlay=False)
        with_overlay = rep_credit(amount, revenue, overlay, owner_id, count_overlay=True)
        reps_base = (
            None if base is None else rep_credit(base, revenue, overlay, owner_id, count_overlay=False)
        )
        overlay_base = (
            None if base is None else rep_credit(base, revenue, overlay, owner_id, count_overlay=True)
        )
    except AttributionError as exc:
        problem = f"The revenue splits cannot be used: {exc}."
        reps, with_overlay, reps_base, overlay_base = {}, {}, None, None

    def person(pid: int, value: int, value_base: int | None) -> PersonShare:
        n, team = names.get(pid, (f"Person {pid}", None))
        return PersonShare(pid, n, team, value, value_base)

    rep_rows = [person(pid, v, None if reps_base is None else reps_base[pid]) for pid, v in reps.items()]
    overlay_rows = []
    for pid, _, _ in overlay:
        extra = with_overlay.get(pid, 0) - reps.get(pid, 0)
        extra_base = None if overlay_base is None or reps_base is None else (
            overlay_base.get(pid, 0) - reps_base.get(pid, 0)
        )  # fmt: skip
        overlay_rows.append(person(pid, extra, extra_base))

    by_owner: dict[int | None, list[int]] = {}
    owner_names: dict[int | None, str] = {}
    campaigns: dict[int | None, set[int]] = defaultdict(set)
    for s in steps:
        if s.campaign_id is None or s.weight == 0:
            continue
        acc = by_owner.setdefault(s.owner_id, [0, 0])
        acc[0] += s.amount
        acc[1] += s.base or 0
        owner_names[s.owner_id] = s.owner or "No owner (counts as marketing)"
        campaigns[s.owner_id].add(s.campaign_id)
    marketers = [
        PersonShare(pid, owner_names[pid], None, v[0], None if base is None else v[1], len(campaigns[pid]))
        for pid, v in by_owner.items()
    ]
    return ScopeJourney(
        scope=scope,
        run=run,
        end=end,
        steps=steps,
        reps=sorted(rep_rows, key=lambda p: (-p.amount, p.name)),
        overlay=sorted(overlay_rows, key=lambda p: (-p.amount, p.name)),
        marketers=sorted(marketers, key=lambda p: (-p.amount, p.name)),
        split_problem=problem,
    )


# -- Data-driven: the removal effects a run used ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemovalEffectsView:
    """What the data-driven model weighed each channel by, as stored with the run (DESIGN 3.1)."""

    paths: int
    conversions: int
    probability: Decimal | None
    channels: list[tuple[str, Decimal, Decimal | None]]  # channel, removal effect, P without it


def _decimal_of(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value["decimal"]))
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return None


async def removal_effects(session: AsyncSession, scope: Scope) -> RemovalEffectsView | None:
    """The removal effects of the scope's current run, biggest first; None without a run."""
    run = await latest_run(session, scope)
    stored = None if run is None else run.removal_effects
    if not stored:
        return None
    channels = []
    for channel, values in (stored.get("channels") or {}).items():
        effect = _decimal_of(values.get("removal_effect"))
        if effect is not None:
            channels.append((str(channel), effect, _decimal_of(values.get("without"))))
    channels.sort(key=lambda c: (-c[1], c[0]))
    return RemovalEffectsView(
        paths=int(stored.get("paths") or 0),
        conversions=int(stored.get("conversions") or 0),
        probability=_decimal_of(stored.get("probability")),
        channels=channels,
    )


# -- Comparing two models --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One channel or campaign under two models."""

    key: str
    label: str
    channel: str
    campaign_id: int | None
    a: int
    b: int

    @property
    def difference(self) -> int:
        """b − a."""
        return self.b - self.a

    @property
    def relative(self) -> Decimal | None:
        """(b − a) / a; None when a is 0."""
        return ratio(self.b - self.a, self.a) if self.a else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two models side by side for one period and scope; both totals are the period's total."""

    quarter: Quarter
    scope: Scope
    model_a: str
    model_b: str
    currency: str
    run: RunInfo
    channels: list[CompareRow]
    campaigns: list[CompareRow]
    unattributed: int
    total: int
    left_out: list[LeftOut]
    sort: str = "difference"
    effects: "RemovalEffectsView | None" = None

    @property
    def total_a(self) -> int:
        """Model A's attributed amount plus the unattributed bucket (== total)."""
        return sum(r.a for r in self.channels) + self.unattributed

    @property
    def total_b(self) -> int:
        """Model B's attributed amount plus the unattributed bucket (== total)."""
        return sum(r.b for r in self.channels) + self.unattributed

    @property
    def max_amount(self) -> int:
        """The largest channel amount under either model (chart scale), at least 1."""
        return max([max(r.a, r.b) for r in self.channels] + [1])


def _compare_order(rows: list[CompareRow], sort: str) -> list[CompareRow]:
    by_label = sorted(rows, key=lambda r: (r.label.casefold(), r.key))
    if sort == "name":
        return by_label
    keys: dict[str, Any] = {
        "difference": lambda r: abs(r.difference),
        "a": lambda r: r.a,
        "b": lambda r: r.b,
    }
    return sorted(by_label, key=keys[sort], reverse=True)


async def compare(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    scope: Scope,
    model_a: str,
    model_b: str,
    sort: str | None = None,
) -> Comparison | None:
    """Per channel and per campaign: the amount under model A and B and the difference; None without run."""
    model_a = check_model(model_a, field_name="model_a")
    model_b = check_model(model_b, field_name="model_b")
    run = await current_run(session, scope)
    if run is None:
        return None
    window = _window(settings, quarter, run)
    sums_a = await _campaign_sums(session, run, window, model_a)
    sums_b = await _campaign_sums(session, run, window, model_b)
    totals = await _totals(session, run, window)
    paired: dict[tuple[int | None, str], list[int]] = defaultdict(lambda: [0, 0])
    for i, sums in enumerate((sums_a, sums_b)):
        for row in sums:
            paired[row.key, row.channel][i] += row.amount
    infos = await _campaigns(session, settings, [cid for cid, _ in paired if cid is not None])
    campaigns: list[CompareRow] = []
    channels: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unattributed = 0
    for (cid, channel), (a, b) in paired.items():
        if cid is None:
            unattributed += a
            continue
        info = infos.get(cid) or _missing_campaign(cid)
        campaigns.append(CompareRow(f"campaign:{cid}", info.name, channel, cid, a, b))
        channels[channel][0] += a
        channels[channel][1] += b
    key = check_sort(sort, COMPARE_SORTS, "difference")
    channel_rows = [CompareRow(f"channel:{c}", c, c, None, v[0], v[1]) for c, v in channels.items()]
    return Comparison(
        quarter=quarter,
        scope=scope,
        model_a=model_a,
        model_b=model_b,
        currency=settings.org_currency,
        run=run,
        channels=_compare_order(channel_rows, key),
        campaigns=_compare_order(campaigns, key),
        unattributed=unattributed,
        total=totals.total,
        left_out=list(totals.left_out),
        sort=key,
        effects=await removal_effects(session, scope) if "data_driven" in (model_a, model_b) else None,
    )


# -- Credit by person ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonCredit:
    """A person's attribution credit in a period: a marketer's campaigns, or a rep's revenue splits.

    Credit is not payout: no bonus amount is read or shown here.
    """

    person_id: int | None
    name: str
    team: str | None
    role: str  # "marketer" or "rep"
    amount: int
    overlay: int = 0
    deals: int = 0
    campaigns: int = 0


@dataclass(frozen=True, slots=True)
class PeopleCredit:
    """Marketers (campaign owners) and reps (revenue splits) with their credit for a period."""

    figures: Figures
    marketers: list[PersonCredit]
    reps: list[PersonCredit]
    split_problems: int = 0


async def people_credit(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, model: str, scope: Scope
) -> PeopleCredit | None:
    """Marketer credit = their campaigns' credit under the model; rep credit = the period's deals split
    by their revenue splits (overlay apart), in the org currency; None before the first recompute."""
    figures = await campaign_figures(session, settings=settings, quarter=quarter, model=model, scope=scope)
    if figures is None:
        return None
    by_owner: dict[int | None, list[int]] = {}
    names: dict[int | None, tuple[str, str | None]] = {}
    for f in figures.campaigns:
        if not f.touched:
            continue
        c = f.campaign
        acc = by_owner.setdefault(c.owner_id, [0, 0, 0])
        acc[0] += f.amount
        acc[1] += f.deals
        acc[2] += 1
        names[c.owner_id] = (
            c.owner or "No owner (counts as marketing)",
            None if c.owner_id is None else c.team,
        )
    marketers = [
        PersonCredit(pid, names[pid][0], names[pid][1], "marketer", v[0], deals=v[1], campaigns=v[2])
        for pid, v in by_owner.items()
    ]

    # Reps: one row per deal of the period (position 0 carries the whole deal under first touch).
    start, end = period_bounds(settings, quarter)
    deals = (
        await session.execute(
            select(_C.opportunity_id, _C.first_touch_base, Opportunity.owner_id)
            .join(Opportunity, Opportunity.id == _C.opportunity_id)
            .where(*_period(figures.run.id, start, end), _C.position == 0)
        )
    ).all()
    ids = select(_C.opportunity_id).where(*_period(figures.run.id, start, end), _C.position == 0)
    s = OpportunitySplit
    splits: dict[int, list[tuple[int, str, Decimal, str]]] = defaultdict(list)
    for opp_id, pid, email, pct, kind in await session.execute(
        select(s.opportunity_id, s.person_id, Person.email, s.percent, s.kind)
        .join(Person, Person.id == s.person_id)
        .where(s.opportunity_id.in_(ids))
    ):
        splits[opp_id].append((pid, email, Decimal(pct), kind))
    credit: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    problems = 0
    for opp_id, base, owner_id in deals:
        if base is None:
            continue
        mine = splits.get(opp_id, [])
        revenue = [(p, e, x) for p, e, x, k in mine if k == SplitKind.REVENUE]
        overlay = [(p, e, x) for p, e, x, k in mine if k == SplitKind.OVERLAY]
        try:
            plain = rep_credit(int(base), revenue, overlay, owner_id, count_overlay=False)
            full = rep_credit(int(base), revenue, overlay, owner_id, count_overlay=True)
        except AttributionError:
            problems += 1
            continue
        for pid, value in plain.items():
            credit[pid][0] += value
            credit[pid][2] += 1
        for pid, value in full.items():
            extra = value - plain.get(pid, 0)
            if extra:
                credit[pid][1] += extra
                if pid not in plain:
                    credit[pid][2] += 1
    people = {}
    if credit:
        people = {
            pid: (n, team)
            for pid, n, team in await session.execute(
                select(Person.id, Person.name, Team.name)
                .outerjoin(Team, Team.id == Person.team_id)
                .where(Person.id.in_(list(credit)))
            )
        }
    reps = [
        PersonCredit(pid, people.get(pid, (f"Person {pid}", None))[0], people.get(pid, ("", None))[1], "rep",
                     v[0], overlay=v[1], deals=v[2])
        for pid, v in credit.items()
    ]  # fmt: skip
    return PeopleCredit(
        figures=figures,
        marketers=sorted(marketers, key=lambda p: (-p.amount, p.name)),
        reps=sorted(reps, key=lambda p: (-p.amount, p.name)),
        split_problems=problems,
    )


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SCOPE",
    "MODEL_LABELS",
    "CampaignDetail",
    "Comparison",
    "Figures",
    "Journey",
    "PeopleCredit",
    "campaign_detail",
    "campaign_figures",
    "check_model",
    "check_scope",
    "compare",
    "journey",
    "people_credit",
]


# -- Settings --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsView:
    """The attribution settings in force, and who saved them last (none: the defaults)."""

    config: AttributionConfig
    updated_at: dt.datetime | None
    updated_by: str | None


async def settings_view(session: AsyncSession) -> SettingsView:
    """The settings in force, with their last change."""
    config = await load_config(session)
    row = (
        await session.execute(
            select(AttributionSetting.updated_at, Person.name)
            .outerjoin(Person, Person.id == AttributionSetting.updated_by_id)
            .order_by(AttributionSetting.id)
            .limit(1)
        )
    ).one_or_none()
    return SettingsView(config, None if row is None else row[0], None if row is None else row[1])
