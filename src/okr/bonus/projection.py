"""The bonus projection on the personal page (docs/bonus-projection.md): read the run's inputs as of now
and the open deals, keep them while the data holds, and work out one person's projection and what-if.

Confidential like a payout (DESIGN 8): the person themselves, finance and admins; anyone else asking for
another person gets the same 404 as for a person who does not exist (okr.home.guards.no_such_person).
"""

import datetime as dt
import time
import weakref
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.schemas import CurrentUser
from okr.bonus import projection_core as pc
from okr.bonus import services as bonus
from okr.bonus.plans import approved_plan
from okr.db.audit import AuditEvent
from okr.db.bonus import BonusPlan, LedgerEntry
from okr.db.people import Period, Person, Role, Team
from okr.db.pipeline import Opportunity, OpportunitySplit, SplitKind
from okr.home.guards import no_such_person
from okr.kpis import services as kpis
from okr.kpis.queries import dialect_sql
from okr.lib.clock import utcnow
from okr.lib.periods import Quarter
from okr.settings import Settings

OPEN: Final = "open"
CACHE_SECONDS: Final = kpis.CACHE_SECONDS
_CACHE_SIZE: Final = 16
MAX_CLOSING: Final = 500
"""The most deals one what-if ticks (a person's open deals rarely reach it)."""


class State:
    """Why a projection is shown, or why not."""

    OK: Final = "ok"
    NO_PLAN: Final = "no_plan"  # the quarter has no approved plan (or no stored period)
    NOT_RUNNING: Final = (
        "not_running"  # the quarter is over or not begun: projections are for the running one
    )
    NOT_IN_PLAN: Final = "not_in_plan"  # the person's team is not in the plan, or not employed in the period


@dataclass(frozen=True, slots=True)
class Target:
    """Whose projection it is."""

    id: int
    name: str
    team: str
    own: bool


@dataclass(slots=True)
class Basis:
    """A period's run inputs as of `as_of` and its open deals, read once and kept while the data holds."""

    period_key: str
    plan_version: int
    as_of: dt.datetime
    earned: pc.Prepared
    projected: pc.Prepared
    deals: dict[int, pc.OpenDeal]
    deals_of: dict[int, tuple[int, ...]]
    broken: tuple[int, ...]  # open deals whose splits do not add up: left out
    unpriced: int  # open deals without an FX rate: left out
    open_count: int
    # One person's line today and with the weighted pipeline, worked out once per person.
    lines: dict[int, tuple[pc.PersonLine, pc.PersonLine]] = field(default_factory=dict)

    def lines_of(self, person_id: int) -> tuple[pc.PersonLine, pc.PersonLine]:
        """The person's line today and projected (no deal ticked)."""
        found = self.lines.get(person_id)
        if found is None:
            found = (pc.person_line(self.earned, person_id), pc.person_line(self.projected, person_id))
            self.lines[person_id] = found
        return found


@dataclass(frozen=True, slots=True)
class ProjectionView:
    """What the projection fragment and the API show."""

    state: str
    quarter: Quarter
    target: Target
    currency: str
    plan_version: int | None = None
    as_of: dt.datetime | None = None
    projection: pc.PersonProjection | None = None
    left_out: int = 0  # open deals left out (no FX rate, splits that do not add up)

    @property
    def what_if(self) -> bool:
        """Whether some deals are ticked as closing."""
        return self.projection is not None and bool(self.projection.closing)


# -- Who ---------------------------------------------------------------------------------------------------


def may_see_projection(user: CurrentUser, person_id: int) -> bool:
    """The person themselves, finance and admins (a leader sees team totals, never a member's payout)."""
    return user.id == person_id or user.has_role(Role.FINANCE)


async def target_of(session: AsyncSession, *, user: CurrentUser, person_id: int | None) -> Target:
    """The caller, or the person finance or an admin asks for; 404 for anyone else or nobody."""
    if person_id is None or person_id == user.id:
        return Target(id=user.id, name=user.name, team=user.team, own=True)
    if not may_see_projection(user, person_id):
        raise no_such_person(person_id)
    row = (
        await session.execute(
            select(Person.name, Team.name).join(Team, Team.id == Person.team_id).where(Person.id == person_id)
        )
    ).first()
    if row is None:
        raise no_such_person(person_id)
    return Target(id=person_id, name=str(row[0]), team=str(row[1]), own=False)


# -- Reading -----------------------------------------------------------------------------------------------


async def open_deals(session: AsyncSession, *, settings: Settings) -> tuple[list[pc.OpenDeal], int]:
    """Every open deal with its amount in the org currency at the rate of its creation date (as the KR
    pipeline forecast converts it), its splits; and how many were left out for want of a rate."""
    sql = await dialect_sql(session, settings)
    o, s = Opportunity, OpportunitySplit
    revenue: dict[int, list[pc.Split]] = {}
    overlay: dict[int, list[pc.Split]] = {}
    for deal_id, person_id, email, percent, kind in await session.execute(
        select(s.opportunity_id, s.person_id, Person.email, s.percent, s.kind)
        .join(Person, Person.id == s.person_id)
        .join(o, o.id == s.opportunity_id)
        .where(o.status == OPEN)
        .order_by(s.opportunity_id, s.person_id)
    ):
        bucket = revenue if kind == SplitKind.REVENUE else overlay
        bucket.setdefault(int(deal_id), []).append((int(person_id), str(email), Decimal(percent)))
    deals: list[pc.OpenDeal] = []
    unpriced = 0
    for deal_id, external_id, name, amount, category, probability, owner_id in await session.execute(
        select(
            o.id,
            o.external_id,
            o.name,
            sql.converted(o.amount, o.currency, o.created_at),
            o.forecast_category,
            o.probability,
            o.owner_id,
        )
        .where(o.status == OPEN)
        .order_by(o.id)
    ):
        if amount is None:
            unpriced += 1
            continue
        deals.append(
            pc.OpenDeal(
                id=int(deal_id),
                external_id=str(external_id),
                name=str(name),
                amount=int(amount),
                category=category or "pipeline",
                probability=None if probability is None else Decimal(probability),
                owner_id=int(owner_id),
                revenue=tuple(revenue.get(int(deal_id), ())),
                overlay=tuple(overlay.get(int(deal_id), ())),
            )
        )
    return deals, unpriced


async def _version(session: AsyncSession) -> tuple[Any, ...] | None:
    """What the gathered inputs depend on: the pipeline data (kpis.data_version), and any audited change
    (check-ins move the joint score, plan approvals and runs the rest) and ledger entry; None: no cache."""
    data = await kpis.data_version(session)
    if data is None:
        return None
    audit, ledger = (
        await session.execute(
            select(
                select(func.max(AuditEvent.id)).scalar_subquery(),
                select(func.max(LedgerEntry.id)).scalar_subquery(),
            )
        )
    ).one()
    return (*data, audit, ledger)


_cache: "weakref.WeakKeyDictionary[Engine, dict[Any, tuple[Any, float, Basis]]]" = weakref.WeakKeyDictionary()


def clear_cache() -> None:
    """Forget every kept basis."""
    _cache.clear()


async def _read_basis(
    session: AsyncSession, *, settings: Settings, period: Period, plan: BonusPlan, as_of: dt.datetime
) -> Basis:
    inputs = await bonus.gather_inputs(session, settings=settings, period=period, plan=plan, as_of=as_of)
    deals, unpriced = await open_deals(session, settings=settings)
    earned = pc.prepare(inputs)
    deals_of, broken = pc.deals_of_person(deals, count_overlay=earned.count_overlay)
    return Basis(
        period_key=period.key,
        plan_version=plan.version,
        as_of=as_of,
        earned=earned,
        projected=pc.with_changes(earned, pc.weighted_changes(deals)),
        deals={d.id: d for d in deals},
        deals_of=deals_of,
        broken=broken,
        unpriced=unpriced,
        open_count=len(deals),
    )


async def basis(session: AsyncSession, *, settings: Settings, period: Period, plan: BonusPlan) -> Basis:
    """The period's basis as of now, kept per engine while the data version holds (at most CACHE_SECONDS)."""
    version = await _version(session)
    bind = session.get_bind()
    if version is None or not isinstance(bind, Engine):
        return await _read_basis(session, settings=settings, period=period, plan=plan, as_of=utcnow())
    entries = _cache.setdefault(bind, {})
    key = (period.id, plan.id, settings.org_currency, settings.org_timezone, settings.fiscal_year_start_month)
    hit = entries.get(key)
    if hit is not None and hit[0] == version and time.monotonic() - hit[1] < CACHE_SECONDS:
        return hit[2]
    found = await _read_basis(session, settings=settings, period=period, plan=plan, as_of=utcnow())
    if len(entries) >= _CACHE_SIZE:
        entries.clear()
    entries[key] = (version, time.monotonic(), found)
    return found


# -- The projection ----------------------------------------------------------------------------------------


async def projection(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    quarter: Quarter,
    person_id: int | None = None,
    closing: Collection[int] = (),
) -> ProjectionView:
    """The person's projected bonus for `quarter` (the running one), with `closing` deals counted in full."""
    target = await target_of(session, user=user, person_id=person_id)
    view = ProjectionView(state=State.NO_PLAN, quarter=quarter, target=target, currency=settings.org_currency)
    period = await session.scalar(select(Period).where(Period.key == quarter.key))
    if period is None:
        return view
    today = utcnow().astimezone(settings.tz).date()
    plan = await approved_plan(session, period_id=period.id)
    if plan is None:
        return view
    if not period.start_date <= today <= period.end_date:
        return _with(view, state=State.NOT_RUNNING, plan_version=plan.version)
    found = await basis(session, settings=settings, period=period, plan=plan)
    view = _with(
        view,
        plan_version=plan.version,
        as_of=found.as_of,
        left_out=found.unpriced + len(found.broken),
    )
    if target.id not in found.earned.team_of:
        return _with(view, state=State.NOT_IN_PLAN)
    # Biggest expected contribution first, as a rep would work them.
    mine = sorted(
        (found.deals[i] for i in found.deals_of.get(target.id, ())),
        key=lambda d: (-d.counted(False), -d.amount, d.id),
    )
    chosen = frozenset(closing) & {d.id for d in mine}
    now, then = found.lines_of(target.id)
    if chosen:
        changed = pc.with_changes(found.projected, pc.closing_changes(mine, chosen))
        then = pc.person_line(changed, target.id)
    result = pc.projection_of(
        target.id, now=now, then=then, deals=mine, closing=chosen, count_overlay=found.earned.count_overlay
    )
    return _with(view, state=State.OK, projection=result)


def _with(view: ProjectionView, **changes: Any) -> ProjectionView:
    return replace(view, **changes)
