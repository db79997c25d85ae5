"""Attribution runs (DESIGN 3): read the journeys from the database, call the core, store the credit rows.

Memory stays bounded by the opportunities (held once, small) and one account's touches at a time: the
touches are streamed in account order, twice (removal effects first, then every model's credit), and
credit rows go to the database in batches.
"""

import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any, Final, cast

from sqlalchemy import Table, case, delete, insert, literal, select
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
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
    account_path,
    influenced_by_marketing,
    journey_credits,
    markov_paths,
    milestone_weight_problems,
    solve_counted_paths,
    sourced_by,
)
from okr.attribution.summary import Key, Summary, Sums, quarter_finder
from okr.attribution.summary import basis as summary_basis
from okr.attribution.summary import write as write_summary
from okr.db.attribution import (
    STORED_MODELS,
    AttributionRun,
    AttributionSetting,
    OpportunitySourcing,
    RunStatus,
    attribution_credit,
    attribution_summary,
)
from okr.db.models import Campaign, Person, Team
from okr.db.models import Opportunity as OpportunityRow
from okr.kpis.services import dialect_sql
from okr.lib.clock import utcnow
from okr.lib.errors import ValidationFailed
from okr.settings import Settings

BATCH_SIZE: Final = 20_000
log = logging.getLogger("okr.attribution")
_DECIMAL: Final = Context(prec=REMOVAL_EFFECT_DIGITS)


# -- Reading ---------------------------------------------------------------------------------------------
#
# A run reads the opportunities through SQLAlchemy (50,000 rows, with the dashboard's FX conversion) and
# the touchpoints, a million rows, straight from the driver in one round trip: streaming them through
# the ORM's async result costs a greenlet switch per row, which was most of a run's time.

Part = tuple[int, int]
"""(first, last): the accounts whose id is in that range, both included."""
WHOLE: Final[Part] = (-(2**62), 2**62)
FETCH_SIZE: Final = 50_000

_TOUCHES_SQL: Final = (
    "SELECT l.account_id, t.id, t.external_id, t.occurred_at{utc}, t.campaign_id, l.created_at{utc} "
    "FROM touchpoint t JOIN lead l ON l.id = t.lead_id WHERE l.account_id BETWEEN ? AND ?"
)


@dataclass(slots=True)
class _Snapshot:
    """What a run reads, once: the opportunities by account and every account's touches."""

    sqlite: bool
    opportunities: dict[int, list[Opportunity]] = field(default_factory=dict)
    currency: dict[int, str] = field(default_factory=dict)
    base: dict[int, int | None] = field(default_factory=dict)
    touches: dict[int, list[Touch]] = field(default_factory=dict)
    """Accounts with an opportunity: their touches, as the core takes them."""
    touch_only_paths: Counter[tuple[str, ...]] = field(default_factory=Counter)
    """The Markov paths of the accounts without opportunity (never converted), counted."""
    stored_at: dict[int, str] = field(default_factory=dict)
    """SQLite: a touch's occurred_at as stored (the text the written rows must carry)."""

    @property
    def count(self) -> int:
        return len(self.currency)


async def _driver(session: AsyncSession) -> Any:
    """The session's own driver connection (aiosqlite or asyncpg), inside the session's transaction."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def _campaign_stmt() -> Any:
    # A campaign belongs to its owner's team; a campaign without owner is marketing's (as in the KPIs).
    team = case((Campaign.owner_id.is_(None), literal(MARKETING)), else_=Team.name)
    return (
        select(Campaign.id, Campaign.channel, team)
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )


async def _read(
    session: AsyncSession, settings: Settings, scope: Scope, lookback_days: int, part: Part = WHOLE
) -> _Snapshot:
    """The opportunities and touches of the accounts in `part` (a range of account ids)."""
    o = OpportunityRow
    sql = await dialect_sql(session, settings)
    snap = _Snapshot(sqlite=sql.sqlite)
    stamp = o.created_at if scope is Scope.PIPELINE else o.closed_at
    first, last = part
    rows = await session.execute(
        select(
            o.id,
            o.external_id,
            o.account_id,
            o.amount,
            o.currency,
            o.created_at,
            o.closed_at,
            o.status,
            sql.converted(o.amount, o.currency, stamp),
        )
        .where(o.account_id.between(first, last))
        .order_by(o.account_id, o.id)
    )
    for oid, ext, account_id, amount, currency, created_at, closed_at, status, base in rows:
        snap.opportunities.setdefault(account_id, []).append(
            Opportunity(oid, ext, amount, created_at, closed_at, status)
        )
        snap.currency[oid] = currency
        snap.base[oid] = None if base is None else int(base)
    campaigns = {cid: (channel, team) for cid, channel, team in await session.execute(_campaign_stmt())}
    reader = _TouchReader(snap, campaigns)
    driver = await _driver(session)
    if snap.sqlite:
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: with the offset appended, fromisoformat reads it
        # straight into an aware datetime.
        cursor = await driver.execute(_TOUCHES_SQL.format(utc=" || '+00:00'"), (first, last))
        await _each_batch(lambda: cursor.fetchmany(FETCH_SIZE), reader.add)
        await cursor.close()
    else:
        cursor = await driver.cursor(
            _TOUCHES_SQL.format(utc="").replace("?", "$1", 1).replace("?", "$2", 1), first, last
        )
        await _each_batch(lambda: cursor.fetch(FETCH_SIZE), reader.add)
    window_start = functools.partial(_window_start, lookback_days=lookback_days, text=snap.sqlite)
    for points in reader.touch_only.values():
        path = account_path(points, window_start=window_start)
        if path:
            snap.touch_only_paths[tuple(path)] += 1
    return snap


async def _each_batch(
    fetch: Callable[[], Awaitable[Sequence[Any]]], use: Callable[[Sequence[Any]], None]
) -> None:
    """`use` every batch `fetch` gives until an empty one (memory stays at one batch of rows)."""
    while batch := await fetch():
        use(batch)


class _TouchReader:
    """Turns fetched touch rows into the core's Touch tuples, batch by batch (memory stays flat)."""

    def __init__(self, snap: _Snapshot, campaigns: dict[int, tuple[str, str]]) -> None:
        self.snap, self.campaigns = snap, campaigns
        self.lead_created: dict[Any, dt.datetime] = {}
        self.touch_only: dict[int, list[tuple[Any, str, str]]] = {}
        """Accounts without opportunity only make Markov paths: their time stays as read (SQLite's
        UTC text sorts as time does) and no Touch is built for them."""

    def add(self, rows: Sequence[Any]) -> None:
        # The hottest loop of a run (a million rows): plain locals, one tuple per touch.
        campaigns, lead_created, touch_only = self.campaigns, self.lead_created, self.touch_only
        with_deals, touches, stored_at = self.snap.opportunities, self.snap.touches, self.snap.stored_at
        parse = dt.datetime.fromisoformat if self.snap.sqlite else None
        new_touch = tuple.__new__
        for account_id, tid, ext, occurred, cid, lead_at in rows:
            channel, team = campaigns[cid]
            if account_id not in with_deals:
                if account_id in touch_only:
                    touch_only[account_id].append((occurred, ext, channel))
                else:
                    touch_only[account_id] = [(occurred, ext, channel)]
                continue
            created = lead_created.get(lead_at)
            if created is None:
                created = lead_created[lead_at] = parse(lead_at) if parse else lead_at
            if parse:
                stored_at[tid] = occurred[:-6]
                occurred = parse(occurred)
            touch = new_touch(Touch, (tid, ext, occurred, cid, channel, team, created))
            if account_id in touches:
                touches[account_id].append(touch)
            else:
                touches[account_id] = [touch]


def _window_start(latest: Any, *, lookback_days: int, text: bool) -> Any:
    """The first instant of an account's lookback window, as a datetime or as SQLite's stored text."""
    if not text:
        return latest - dt.timedelta(days=lookback_days)
    start = dt.datetime.fromisoformat(latest) - dt.timedelta(days=lookback_days)
    return f"{start:%Y-%m-%d %H:%M:%S.%f}+00:00"


# -- Removal effects -------------------------------------------------------------------------------------


PathCounts = Counter[tuple[tuple[str, ...], bool]]


def _path_counts(snap: _Snapshot, lookback_days: int) -> PathCounts:
    """The Markov paths (DESIGN 3.1) of won/lost journeys and touch-only accounts, counted."""
    paths: PathCounts = Counter()
    for account_id, opportunities in snap.opportunities.items():
        touches = snap.touches.get(account_id, [])
        for channels, converted in markov_paths(
            [(o, touches) for o in opportunities], lookback_days=lookback_days
        ):
            paths[tuple(channels), converted] += 1
    for path, n in snap.touch_only_paths.items():
        paths[path, False] += n
    return paths


def _removal_effects(paths: PathCounts) -> RemovalEffects:
    """The exact removal effects; each journey counts once: a path seen n times counts n times."""
    return solve_counted_paths(paths)


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


class Phases:
    """Wall time per phase of a run, for the log (and the benchmark that reads it)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.laps)
        return f"{self.last - self.start:.2f} s ({parts})"


# -- Writing ---------------------------------------------------------------------------------------------
#
# Rows go through the driver too: executemany on SQLite, COPY on PostgreSQL, in the session's transaction.

_CREDIT_COLUMNS: Final = [
    "run_id",
    "opportunity_id",
    "position",
    "touchpoint_id",
    "campaign_id",
    "channel",
    "occurred_at",
    "roles",
    "period_at",
    "currency",
] + [f"{m}_{part}" for m in STORED_MODELS for part in ("units", "amount", "base")]
_SOURCING_TABLE: Final = cast(Table, OpportunitySourcing.__table__)
_SOURCING_COLUMNS: Final = (
    "opportunity_id",
    "sourced_by",
    "influenced_by_marketing",
    "first_campaign_id",
    "run_id",
)


class _Writer:
    """Buffers row tuples of one table and writes them in batches through the driver."""

    def __init__(self, driver: Any, sqlite: bool, table: Table, columns: Sequence[str]) -> None:
        self.driver, self.sqlite, self.table, self.columns = driver, sqlite, table.name, list(columns)
        if [c.name for c in table.columns if c.name in columns] != list(columns):
            raise ValueError(f"columns must be given in the order of table {table.name}")
        self.insert = str(
            insert(table).compile(dialect=SQLiteDialect(paramstyle="qmark"), column_keys=columns)
        )
        self.rows: list[tuple[Any, ...]] = []
        self.written = 0

    async def extend(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows += rows
        if len(self.rows) >= BATCH_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if not self.rows:
            return
        if self.sqlite:
            await self.driver.executemany(self.insert, self.rows)
        else:
            await self.driver.copy_records_to_table(self.table, records=self.rows, columns=self.columns)
        self.written += len(self.rows)
        self.rows = []


def _stored(moment: dt.datetime, sqlite: bool) -> Any:
    """A timestamp as the column stores it: SQLAlchemy's text form on SQLite, the datetime elsewhere."""
    if not sqlite:
        return moment
    if moment.utcoffset():
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _credit_rows(run_id: int, snap: _Snapshot, credit: JourneyCredit) -> list[tuple[Any, ...]]:
    """The stored rows of one journey: one per step (or one `unattributed` row), every model side by side."""
    o = credit.opportunity
    head = (run_id, o.id)
    tail = (_stored(credit.end, snap.sqlite), snap.currency[o.id])
    n = len(credit.steps)
    # Per step, every model's (units, amount, base), in STORED_MODELS order.
    columns = [
        part
        for units, amounts, base in zip(credit.units, credit.amounts, credit.base, strict=True)
        for part in (units, amounts, base if base is not None else [None] * max(n, 1))
    ]
    per_step = list(zip(*columns, strict=True))
    if not n:
        return [(*head, 0, None, None, UNATTRIBUTED, None, credit.roles[0], *tail, *per_step[0])]
    rows = []
    stored_at = snap.stored_at
    for i, t in enumerate(credit.steps):
        at = stored_at[t.id] if snap.sqlite else t.occurred_at
        rows.append((*head, i, t.id, t.campaign_id, t.channel, at, credit.roles[i], *tail, *per_step[i]))
    return rows


def credit_batches(
    snap: _Snapshot,
    run_id: int,
    scope: Scope,
    specs: Sequence[ModelSpec],
    removal: dict[str, Decimal],
    lookback: int,
    summary: Summary,
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(credit rows, sourcing rows) of the snapshot's opportunities, some BATCH_SIZE credit rows at a time;
    adds every journey to `summary` on the way."""
    # In opportunity id order: the rows then arrive in the table's key order, which makes the inserts
    # sequential (twice as fast on SQLite as the account order).
    by_id = sorted(
        (
            (o, snap.touches.get(account_id, ()))
            for account_id, opportunities in snap.opportunities.items()
            for o in opportunities
        ),
        key=lambda pair: pair[0].id,
    )
    triples = ((o, touches, snap.base[o.id]) for o, touches in by_id)
    rows: list[tuple[Any, ...]] = []
    sources: list[tuple[Any, ...]] = []
    for credit in journey_credits(
        triples, models=specs, scope=scope, removal_effects=removal, lookback_days=lookback
    ):
        journey = _credit_rows(run_id, snap, credit)
        rows += journey
        if scope is Scope.PIPELINE:
            steps = credit.steps
            first = steps[0].campaign_id if steps else None
            source = sourced_by(steps), influenced_by_marketing(steps)
            sources.append((credit.opportunity.id, *source, first, run_id))
            summary.add_journey(journey, credit.end, source)
        else:
            summary.add_journey(journey, credit.end)
        if len(rows) >= BATCH_SIZE:
            yield rows, sources
            rows, sources = [], []
    if rows or sources:
        yield rows, sources


async def recompute(
    session: AsyncSession,
    *,
    settings: Settings,
    scope: Scope | str,
    config: AttributionConfig | None = None,
) -> AttributionRun:
    """Recompute every stored model's credit for one scope in this process and this session's transaction,
    replacing the scope's previous run; flushes only. `okr.attribution.parallel.run_recompute` is the
    same over worker processes, for big data."""
    scope = Scope(scope)
    config = config or await load_config(session)
    specs = config.models()
    lookback = config.lookback_days
    clock = Phases()
    snap = await _read(session, settings, scope, lookback)
    clock.lap("read")
    effects = _removal_effects(_path_counts(snap, lookback))
    removal = effects.as_decimals()
    clock.lap("removal effects")
    await delete_runs(session, scope)
    run = await start_run(session, scope, effects, snap.count, lookback)
    driver = await _driver(session)
    credits = _Writer(driver, snap.sqlite, attribution_credit, _CREDIT_COLUMNS)
    sourcing = _Writer(driver, snap.sqlite, _SOURCING_TABLE, _SOURCING_COLUMNS)
    summary = new_summary(settings)
    for rows, sources in credit_batches(snap, run.id, scope, specs, removal, lookback, summary):
        await credits.extend(rows)
        await sourcing.extend(sources)
    await credits.flush()
    await sourcing.flush()
    await finish_summary(session, run, settings, summary.groups)
    clock.lap("credit and write")
    log.info("attribution %s: %s rows in %s", scope.value, credits.written, clock)
    run.computed_at = utcnow()
    run.status = RunStatus.SUCCEEDED.value
    await session.flush()
    return run


def new_summary(settings: Settings) -> Summary:
    """An empty summary whose quarters follow the organisation's time zone and fiscal year."""
    return Summary(quarter_finder(settings.tz, settings.fiscal_year_start_month))


async def finish_summary(
    session: AsyncSession, run: AttributionRun, settings: Settings, groups: dict[Key, Sums]
) -> None:
    """Store the run's summary and the quarter basis it follows; flushes only."""
    await write_summary(session, run.id, groups)
    run.period_basis = summary_basis(settings.tz, settings.fiscal_year_start_month)


async def start_run(
    session: AsyncSession, scope: Scope, effects: RemovalEffects, opportunities: int, lookback: int
) -> AttributionRun:
    """A new run of the scope, `running` until its rows are all written; flushes only."""
    now = utcnow()
    run = AttributionRun(
        scope=scope.value,
        computed_at=now,
        as_of=now,
        lookback_days=lookback,
        removal_effects=_explain(effects),
        opportunities=opportunities,
        status=RunStatus.RUNNING.value,
    )
    session.add(run)
    await session.flush()
    return run


async def write_rows(
    session: AsyncSession, rows: list[tuple[Any, ...]], sources: list[tuple[Any, ...]]
) -> None:
    """Insert credit and sourcing rows (as `credit_batches` makes them) through the session's driver."""
    driver = await _driver(session)
    sqlite = (await session.connection()).dialect.name == "sqlite"
    for table, columns, batch in (
        (attribution_credit, _CREDIT_COLUMNS, rows),
        (_SOURCING_TABLE, _SOURCING_COLUMNS, sources),
    ):
        writer = _Writer(driver, sqlite, table, columns)
        await writer.extend(batch)
        await writer.flush()


async def delete_runs(
    session: AsyncSession, scope: Scope, *, keep: int | None = None, only: int | None = None
) -> None:
    """Delete the scope's runs (all, all but `keep`, or `only` that one) with their rows; flushes only."""
    runs = select(AttributionRun.id).where(AttributionRun.scope == scope.value)
    if keep is not None:
        runs = runs.where(AttributionRun.id != keep)
    if only is not None:
        runs = runs.where(AttributionRun.id == only)
    stale = runs.scalar_subquery()
    # Explicit deletes rather than relying on ON DELETE CASCADE being enforced everywhere.
    await session.execute(delete(attribution_credit).where(attribution_credit.c.run_id.in_(stale)))
    await session.execute(delete(OpportunitySourcing).where(OpportunitySourcing.run_id.in_(stale)))
    await session.execute(delete(attribution_summary).where(attribution_summary.c.run_id.in_(stale)))
    await session.execute(delete(AttributionRun).where(AttributionRun.id.in_(runs.scalar_subquery())))


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
