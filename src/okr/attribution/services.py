"""Attribution runs (DESIGN 3): read the journeys from the database, call the core, store the credit rows.

Memory stays bounded by the opportunities (held once, small) and one account's touches at a time: the
touches are streamed in account order, twice (removal effects first, then every model's credit), and
credit rows go to the database in batches.
"""

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any, Final

from sqlalchemy import case, delete, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution.core import (
    FULL_PATH,
    LOOKBACK_DAYS,
    MARKETING,
    PRESETS,
    REMOVAL_EFFECT_DIGITS,
    UNATTRIBUTED,
    JourneyCredit,
    MilestoneWeights,
    ModelSpec,
    Opportunity,
    RemovalEffects,
    Scope,
    Touch,
    influenced_by_marketing,
    journey_credits,
    markov_paths,
    milestone_weight_problems,
    solve_removal_effects,
    sourced_by,
)
from okr.db.attribution import (
    STORED_MODELS,
    AttributionRun,
    AttributionSetting,
    OpportunitySourcing,
    RunStatus,
    attribution_credit,
)
from okr.db.models import Campaign, Lead, Person, Team, Touchpoint
from okr.db.models import Opportunity as OpportunityRow
from okr.kpis.services import dialect_sql
from okr.lib.clock import utcnow
from okr.lib.errors import ValidationFailed
from okr.settings import Settings

BATCH_SIZE: Final = 5000
STREAM_CHUNK: Final = 10_000
_DECIMAL: Final = Context(prec=REMOVAL_EFFECT_DIGITS)


# -- Reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Deals:
    """The opportunities by account, each one's currency and its amount in the organisation's currency."""

    by_account: dict[int, list[Opportunity]]
    currency: dict[int, str]
    base: dict[int, int | None]

    @property
    def count(self) -> int:
        return len(self.currency)


async def _opportunities(session: AsyncSession, settings: Settings, scope: Scope) -> _Deals:
    """Every opportunity, with its amount converted as the dashboard converts it (rate of the scope's end)."""
    o = OpportunityRow
    sql = await dialect_sql(session, settings)
    stamp = o.created_at if scope is Scope.PIPELINE else o.closed_at
    stmt = select(
        o.id,
        o.external_id,
        o.account_id,
        o.amount,
        o.currency,
        o.created_at,
        o.closed_at,
        o.status,
        sql.converted(o.amount, o.currency, stamp),
    ).order_by(o.account_id, o.id)
    deals = _Deals({}, {}, {})
    result = await session.stream(stmt.execution_options(yield_per=STREAM_CHUNK))
    async for oid, ext, account_id, amount, currency, created_at, closed_at, status, base in result:
        deals.by_account.setdefault(account_id, []).append(
            Opportunity(oid, ext, amount, created_at, closed_at, status)
        )
        deals.currency[oid] = currency
        deals.base[oid] = None if base is None else int(base)
    return deals


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

    async def extend(self, rows: list[dict[str, Any]]) -> None:
        self.rows += rows
        if len(self.rows) >= BATCH_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if self.rows:
            await self.session.execute(self.stmt, self.rows)
            self.written += len(self.rows)
            self.rows = []


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


# -- Settings --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributionConfig:
    """What a run uses: the lookback window, the time-decay half life, the organisation's own milestone."""

    lookback_days: int = LOOKBACK_DAYS
    half_life_days: Decimal = Decimal(7)
    custom: MilestoneWeights = FULL_PATH

    def models(self) -> list[ModelSpec]:
        """The stored models (STORED_MODELS, in order) with these settings."""
        half_life = timedelta(microseconds=int(self.half_life_days * 86_400_000_000))
        specs = {
            **PRESETS,
            "time_decay": ModelSpec.time_decay(half_life),
            "custom": ModelSpec.custom_milestone(self.custom, name="custom"),
        }
        return [specs[name] for name in STORED_MODELS]


MAX_LOOKBACK_DAYS: Final = 3650
MAX_HALF_LIFE_DAYS: Final = Decimal(3650)


async def load_config(session: AsyncSession) -> AttributionConfig:
    """The organisation's attribution settings, or the defaults when none are saved."""
    row = await session.scalar(select(AttributionSetting).order_by(AttributionSetting.id).limit(1))
    if row is None:
        return AttributionConfig()
    weights = MilestoneWeights(
        Decimal(row.first).normalize(),
        Decimal(row.lead_creation).normalize(),
        Decimal(row.opportunity_creation).normalize(),
        Decimal(row.closed_won).normalize(),
        Decimal(row.middle).normalize(),
    )
    return AttributionConfig(row.lookback_days, Decimal(row.half_life_days).normalize(), weights)


def config_problems(
    *, lookback_days: int, half_life_days: Decimal, weights: dict[str, Decimal]
) -> list[dict[str, str]]:
    """Each field's problem as {"field", "message"}; empty when the settings can be saved."""
    errors: list[dict[str, str]] = []
    if not 1 <= lookback_days <= MAX_LOOKBACK_DAYS:
        errors.append({"field": "lookback_days", "message": f"must be 1 to {MAX_LOOKBACK_DAYS} days"})
    if not half_life_days.is_finite() or not Decimal("0.01") <= half_life_days <= MAX_HALF_LIFE_DAYS:
        errors.append({"field": "half_life_days", "message": f"must be 0.01 to {MAX_HALF_LIFE_DAYS} days"})
    elif half_life_days != half_life_days.quantize(Decimal("0.01")):
        errors.append({"field": "half_life_days", "message": "may have at most 2 decimals"})
    names = ("first", "lead_creation", "opportunity_creation", "closed_won", "middle")
    for problem in milestone_weight_problems(*(weights[n] for n in names)):
        field_name = next((n for n in names if f"the {n.replace('_', '-')} " in problem), "weights")
        if problem.startswith("the middle"):
            field_name = "middle"
        errors.append({"field": field_name, "message": problem})
    return errors


async def save_config(
    session: AsyncSession,
    *,
    lookback_days: int,
    half_life_days: Decimal,
    weights: dict[str, Decimal],
    by: int | None,
) -> AttributionConfig:
    """Validate and store the settings (ValidationFailed lists each field's problem); flushes only."""
    errors = config_problems(lookback_days=lookback_days, half_life_days=half_life_days, weights=weights)
    if errors:
        raise ValidationFailed("the attribution settings were not saved", errors=errors)
    row = await session.scalar(select(AttributionSetting).order_by(AttributionSetting.id).limit(1))
    if row is None:
        row = AttributionSetting()
        session.add(row)
    row.lookback_days = lookback_days
    row.half_life_days = half_life_days
    for name, value in weights.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by_id = by
    await session.flush()
    return await load_config(session)


# -- Writing ---------------------------------------------------------------------------------------------


async def _delete_runs(session: AsyncSession, scope: Scope) -> None:
    runs = select(AttributionRun.id).where(AttributionRun.scope == scope.value).scalar_subquery()
    # Explicit deletes rather than relying on ON DELETE CASCADE being enforced everywhere.
    await session.execute(delete(attribution_credit).where(attribution_credit.c.run_id.in_(runs)))
    if scope is Scope.PIPELINE:
        await session.execute(delete(OpportunitySourcing))
    await session.execute(delete(AttributionRun).where(AttributionRun.scope == scope.value))


def _wide_rows(run_id: int, credit: JourneyCredit, currency: str) -> list[dict[str, Any]]:
    """The stored rows of one journey: one per step (or one `unattributed` row), every model side by side."""
    o = credit.opportunity
    rows = []
    for i in range(max(len(credit.steps), 1)):
        t = credit.steps[i] if credit.steps else None
        row: dict[str, Any] = {
            "run_id": run_id,
            "opportunity_id": o.id,
            "position": i,
            "touchpoint_id": t.id if t else None,
            "campaign_id": t.campaign_id if t else None,
            "channel": t.channel if t else UNATTRIBUTED,
            "occurred_at": t.occurred_at if t else None,
            "roles": credit.roles[i],
            "period_at": credit.end,
            "currency": currency,
        }
        for m, name in enumerate(STORED_MODELS):
            base = credit.base[m]
            row[f"{name}_units"] = credit.units[m][i]
            row[f"{name}_amount"] = credit.amounts[m][i]
            row[f"{name}_base"] = None if base is None else base[i]
        rows.append(row)
    return rows


async def recompute(
    session: AsyncSession,
    *,
    settings: Settings,
    scope: Scope | str,
    config: AttributionConfig | None = None,
) -> AttributionRun:
    """Recompute every stored model's credit for one scope, replacing its previous run; flushes only."""
    scope = Scope(scope)
    config = config or await load_config(session)
    specs = config.models()
    lookback_days = config.lookback_days
    as_of = utcnow()
    deals = await _opportunities(session, settings, scope)
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

    credits = _Writer(session, attribution_credit)
    sourcing = _Writer(session, OpportunitySourcing.__table__)

    async def account(opportunities: list[Opportunity], touches: list[Touch]) -> None:
        triples = [(o, touches, deals.base.get(o.id)) for o in opportunities]
        for credit in journey_credits(
            triples, models=specs, scope=scope, removal_effects=removal, lookback_days=lookback_days
        ):
            await credits.extend(_wide_rows(run.id, credit, deals.currency[credit.opportunity.id]))
            if scope is Scope.PIPELINE:
                await sourcing.add(
                    {
                        "opportunity_id": credit.opportunity.id,
                        "sourced_by": sourced_by(credit.steps),
                        "influenced_by_marketing": influenced_by_marketing(credit.steps),
                        "first_campaign_id": credit.steps[0].campaign_id if credit.steps else None,
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


async def recompute_all(
    session: AsyncSession, *, settings: Settings, config: AttributionConfig | None = None
) -> list[AttributionRun]:
    """Both scopes, pipeline first; flushes only."""
    config = config or await load_config(session)
    return [await recompute(session, settings=settings, scope=s, config=config) for s in Scope]


async def latest_run(session: AsyncSession, scope: Scope | str) -> AttributionRun | None:
    """The scope's current run (the newest that succeeded), or None before the first recompute."""
    return await session.scalar(
        select(AttributionRun)
        .where(AttributionRun.scope == Scope(scope).value, AttributionRun.status == RunStatus.SUCCEEDED.value)
        .order_by(AttributionRun.computed_at.desc(), AttributionRun.id.desc())
        .limit(1)
    )


__all__ = [
    "AttributionConfig",
    "config_problems",
    "latest_run",
    "load_config",
    "recompute",
    "recompute_all",
    "save_config",
]
