"""Attribution runs (DESIGN 3): read the journeys from the database, call the core, store the credit rows.

Memory stays bounded by the opportunities (held once, small) and one account's touches at a time: the
touches are streamed in account order, twice (removal effects first, then every model's credit), and
credit rows go to the database in batches.
"""

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any, Final

from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution.core import (
    LOOKBACK_DAYS,
    MARKETING,
    PRESETS,
    REMOVAL_EFFECT_DIGITS,
    CreditRow,
    Opportunity,
    RemovalEffects,
    Scope,
    Touch,
    attribute,
    influenced_by_marketing,
    journey,
    markov_paths,
    preset,
    solve_removal_effects,
    sourced_by,
)
from okr.db.attribution import AttributionCredit, AttributionRun, OpportunitySourcing, RunStatus
from okr.db.models import Campaign, Lead, Person, Team, Touchpoint
from okr.db.models import Opportunity as OpportunityRow
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound
from okr.settings import Settings

BATCH_SIZE: Final = 5000
STREAM_CHUNK: Final = 10_000
_DECIMAL: Final = Context(prec=REMOVAL_EFFECT_DIGITS)


# -- Reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Deals:
    """The opportunities by account, and each one's currency."""

    by_account: dict[int, list[Opportunity]]
    currency: dict[int, str]

    @property
    def count(self) -> int:
        return len(self.currency)


async def _opportunities(session: AsyncSession) -> _Deals:
    stmt = select(
        OpportunityRow.id,
        OpportunityRow.external_id,
        OpportunityRow.account_id,
        OpportunityRow.amount,
        OpportunityRow.currency,
        OpportunityRow.created_at,
        OpportunityRow.closed_at,
        OpportunityRow.status,
    ).order_by(OpportunityRow.account_id, OpportunityRow.id)
    deals = _Deals({}, {})
    result = await session.stream(stmt.execution_options(yield_per=STREAM_CHUNK))
    async for oid, ext, account_id, amount, currency, created_at, closed_at, status in result:
        deals.by_account.setdefault(account_id, []).append(
            Opportunity(oid, ext, amount, created_at, closed_at, status)
        )
        deals.currency[oid] = currency
    return deals


def _touches_stmt() -> Any:
    # A campaign belongs to its owner's team; a campaign without owner is marketing's (as in the KPIs).
    team = case((Campaign.owner_id.is_(None), literal(MARKETING)), else_=Team.name)
    return (
        select(
            Lead.account_id,
            Touchpoint.id,
            Touchpoint.external_id,
            Touchpoint.occurred_at,
            Touchpoint.campaign_id,
            Campaign.channel,
            team,
            Lead.created_at,
        )
        .join(Lead, Lead.id == Touchpoint.lead_id)
        .join(Campaign, Campaign.id == Touchpoint.campaign_id)
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
        .order_by(Lead.account_id, Touchpoint.occurred_at, Touchpoint.id)
    )


async def _accounts(session: AsyncSession) -> AsyncIterator[tuple[int, list[Touch]]]:
    """(account id, its touches) for every account with at least one touch, one account at a time."""
    result = await session.stream(_touches_stmt().execution_options(yield_per=STREAM_CHUNK))
    current: int | None = None
    touches: list[Touch] = []
    async for account_id, tid, ext, occurred_at, campaign_id, channel, team, lead_created_at in result:
        if account_id != current:
            if current is not None:
                yield current, touches
            current, touches = account_id, []
        touches.append(Touch(tid, ext, occurred_at, campaign_id, channel, team, lead_created_at))
    if current is not None:
        yield current, touches


# -- Removal effects -------------------------------------------------------------------------------------


async def _removal_effects(session: AsyncSession, deals: _Deals, lookback_days: int) -> RemovalEffects:
    """The exact removal effects of DESIGN 3.1 over won/lost journeys and touch-only accounts."""
    paths: Counter[tuple[tuple[str, ...], bool]] = Counter()
    async for account_id, touches in _accounts(session):
        opportunities = deals.by_account.get(account_id)
        found = (
            markov_paths([(o, touches) for o in opportunities], lookback_days=lookback_days)
            if opportunities
            else markov_paths([], [touches], lookback_days=lookback_days)
        )
        for path, converted in found:
            paths[tuple(path), converted] += 1
    # Each journey counts once: a path seen n times is fed n times.
    return solve_removal_effects(
        (list(path), converted) for (path, converted), n in sorted(paths.items()) for _ in range(n)
    )


def _exact(value: Fraction) -> dict[str, str]:
    decimal = _DECIMAL.divide(Decimal(value.numerator), Decimal(value.denominator))
    return {"fraction": str(value), "decimal": str(decimal)}


def _explain(effects: RemovalEffects) -> dict[str, Any]:
    """The removal effects as stored with the run, exact fractions and decimals, to explain a figure."""
    return {
        "paths": effects.paths,
        "conversions": effects.conversions,
        "probability": _exact(effects.probability),
        "channels": {
            c: {"removal_effect": _exact(effects.effects[c]), "without": _exact(effects.without[c])}
            for c in sorted(effects.effects)
        },
    }


# -- Writing ---------------------------------------------------------------------------------------------


class _Writer:
    """Buffers rows and inserts them in batches (Core insert, executemany)."""

    def __init__(self, session: AsyncSession, table: Any) -> None:
        self.session = session
        self.stmt = insert(table)
        self.rows: list[dict[str, Any]] = []
        self.written = 0

    async def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if self.rows:
            await self.session.execute(self.stmt, self.rows)
            self.written += len(self.rows)
            self.rows = []


async def _delete_runs(session: AsyncSession, scope: Scope) -> None:
    runs = select(AttributionRun.id).where(AttributionRun.scope == scope.value).scalar_subquery()
    # Explicit deletes rather than relying on ON DELETE CASCADE being enforced everywhere.
    await session.execute(delete(AttributionCredit).where(AttributionCredit.run_id.in_(runs)))
    await session.execute(delete(OpportunitySourcing).where(OpportunitySourcing.run_id.in_(runs)))
    await session.execute(delete(AttributionRun).where(AttributionRun.scope == scope.value))


async def recompute(
    session: AsyncSession,
    *,
    settings: Settings,
    scope: Scope | str,
    models: Sequence[str] = tuple(PRESETS),
    lookback_days: int = LOOKBACK_DAYS,
) -> AttributionRun:
    """Recompute every model's credit for one scope, replacing that scope's previous run; flushes only."""
    scope = Scope(scope)
    specs = [preset(name) for name in models]
    as_of = utcnow()
    deals = await _opportunities(session)
    effects = await _removal_effects(session, deals, lookback_days)
    removal = effects.as_decimals()

    await _delete_runs(session, scope)
    run = AttributionRun(
        scope=scope.value,
        computed_at=as_of,
        as_of=as_of,
        lookback_days=lookback_days,
        removal_effects=_explain(effects),
        opportunities=deals.count,
        status=RunStatus.RUNNING.value,
    )
    session.add(run)
    await session.flush()

    credits = _Writer(session, AttributionCredit.__table__)
    sourcing = _Writer(session, OpportunitySourcing.__table__)

    async def account(opportunities: list[Opportunity], touches: list[Touch]) -> None:
        rows: list[CreditRow] = list(
            attribute(
                [(o, touches) for o in opportunities],
                models=specs,
                scopes=(scope,),
                removal_effects=removal,
                lookback_days=lookback_days,
            )
        )
        for row in rows:
            await credits.add(
                {
                    "run_id": run.id,
                    "opportunity_id": row.opportunity_id,
                    "touchpoint_id": row.touchpoint_id,
                    "campaign_id": row.campaign_id,
                    "channel": row.channel,
                    "model": row.model,
                    "scope": row.scope.value,
                    "weight": row.weight,
                    "amount": row.amount,
                    "currency": deals.currency[row.opportunity_id],
                }
            )
        if scope is Scope.PIPELINE:
            for o in opportunities:
                steps = journey(o, touches, scope=Scope.PIPELINE, lookback_days=lookback_days)
                await sourcing.add(
                    {
                        "opportunity_id": o.id,
                        "sourced_by": sourced_by(steps),
                        "influenced_by_marketing": influenced_by_marketing(steps),
                        "first_campaign_id": steps[0].campaign_id if steps else None,
                        "run_id": run.id,
                    }
                )

    # Credit rows are inserted while the touch cursor is open: both databases allow it in one transaction.
    seen: set[int] = set()
    async for account_id, touches in _accounts(session):
        opportunities = deals.by_account.get(account_id)
        if opportunities:
            seen.add(account_id)
            await account(opportunities, touches)
    for account_id, opportunities in deals.by_account.items():
        if account_id not in seen:
            await account(opportunities, [])
    await credits.flush()
    await sourcing.flush()

    run.computed_at = utcnow()
    run.status = RunStatus.SUCCEEDED.value
    await session.flush()
    return run


# -- Reading the results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignTotal:
    """A campaign's attributed amount in one currency (minor units); campaign None is `unattributed`."""

    campaign_id: int | None
    channel: str
    currency: str
    amount: int
    opportunities: int


@dataclass(frozen=True, slots=True)
class OpportunityCredit:
    """One stored credit row of an opportunity."""

    touchpoint_id: int | None
    campaign_id: int | None
    channel: str
    weight: Decimal
    amount: int
    currency: str


async def _run_id(session: AsyncSession, run_or_scope: AttributionRun | int | Scope | str) -> int:
    if isinstance(run_or_scope, AttributionRun):
        return run_or_scope.id
    if isinstance(run_or_scope, int):
        return run_or_scope
    scope = Scope(run_or_scope)
    run_id = await session.scalar(
        select(AttributionRun.id)
        .where(AttributionRun.scope == scope.value)
        .order_by(AttributionRun.computed_at.desc(), AttributionRun.id.desc())
        .limit(1)
    )
    if run_id is None:
        raise NotFound(f"no attribution run for the {scope.value} scope yet: recompute attribution first")
    return int(run_id)


async def campaign_totals(
    session: AsyncSession, *, run_or_scope: AttributionRun | int | Scope | str, model: str
) -> list[CampaignTotal]:
    """Each campaign's amount under `model` in a run (or the latest run of a scope), largest first."""
    run_id = await _run_id(session, run_or_scope)
    c = AttributionCredit
    total = func.sum(c.amount)
    rows = await session.execute(
        select(c.campaign_id, c.channel, c.currency, total, func.count(func.distinct(c.opportunity_id)))
        .where(c.run_id == run_id, c.model == model)
        .group_by(c.campaign_id, c.channel, c.currency)
        .order_by(total.desc(), c.campaign_id)
    )
    return [CampaignTotal(cid, ch, cur, int(amount), int(n)) for cid, ch, cur, amount, n in rows]


async def opportunity_credit(
    session: AsyncSession, *, opportunity_id: int, model: str, scope: Scope | str
) -> list[OpportunityCredit]:
    """The credit rows of one opportunity under `model` in the latest run of `scope`."""
    run_id = await _run_id(session, Scope(scope))
    c = AttributionCredit
    rows = await session.execute(
        select(c.touchpoint_id, c.campaign_id, c.channel, c.weight, c.amount, c.currency)
        .where(c.run_id == run_id, c.model == model, c.opportunity_id == opportunity_id)
        .order_by(c.amount.desc(), c.touchpoint_id)
    )
    return [OpportunityCredit(t, cid, ch, Decimal(w), int(a), cur) for t, cid, ch, w, a, cur in rows]


__all__ = [
    "BATCH_SIZE",
    "CampaignTotal",
    "OpportunityCredit",
    "campaign_totals",
    "opportunity_credit",
    "recompute",
]
