"""Attribution runs (DESIGN 3): read the journeys from the database, compute every model, store the rows.

A run (or a worker's part of one) reads its opportunities and their accounts' touches once, into numpy
arrays; counts the Markov chain's transitions; computes every model's credit for all its journeys at
once with `okr.attribution.vector` (the pure core's integers, bit for bit); sums them per quarter for
the pages (`okr.attribution.summary`); and writes the rows through the driver: one binary COPY on
PostgreSQL; on SQLite bound into a temporary table, then copied in with one INSERT ... SELECT.
"""

import datetime as dt
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any, Final, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Column, MetaData, Table, case, delete, insert, literal, select, text
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import CreateTable, DropTable

from okr.attribution import vector
from okr.attribution.core import (
    CONVERSION,
    FULL_PATH,
    LOOKBACK_DAYS,
    LOST,
    MARKETING,
    NULL,
    PRESETS,
    REMOVAL_EFFECT_DIGITS,
    START,
    UNATTRIBUTED,
    WEIGHT_UNITS,
    WON,
    MilestoneWeights,
    ModelSpec,
    RemovalEffects,
    Scope,
    milestone_weight_problems,
    solve_transitions,
)
from okr.attribution.summary import Key, Rows, Sums, quarter_finder, summarise
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

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]

BATCH_SIZE: Final = 20_000
log = logging.getLogger("okr.attribution")
_DECIMAL: Final = Context(prec=REMOVAL_EFFECT_DIGITS)


# -- Reading ---------------------------------------------------------------------------------------------
#
# A run reads the opportunities through SQLAlchemy (50,000 rows, with the dashboard's FX conversion) and
# the touchpoints, a million rows, straight from the driver in one round trip, into numpy arrays for
# `okr.attribution.vector`: streaming them through the ORM's async result costs a greenlet switch per
# row, and a Python object per touch costs more than the whole computation.

Part = tuple[int, int]
"""(first, last): the accounts whose id is in that range, both included."""
WHOLE: Final[Part] = (-(2**62), 2**62)
FETCH_SIZE: Final = 20_000
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)

_SQLITE_TOUCHES_SQL: Final = (
    "SELECT l.account_id, t.id, t.external_id, t.campaign_id, t.occurred_at, l.created_at "
    "FROM touchpoint t JOIN lead l ON l.id = t.lead_id WHERE l.account_id BETWEEN ? AND ?"
)


def _us(moment: dt.datetime | None) -> int:
    """An aware instant as integer microseconds since 1970 (vector.NO_TIME for None)."""
    return vector.NO_TIME if moment is None else (moment - _EPOCH) // _MICROSECOND


@dataclass(slots=True)
class _Snapshot:
    """What a run reads, once: the opportunities in id order and their accounts' touches, as arrays."""

    sqlite: bool
    opportunity: I64
    account: I64
    amount: I64
    created: I64
    closed: I64
    won: Mask
    lost: Mask
    base: I64
    priced: Mask
    currency: list[str]
    stamps: list[tuple[dt.datetime, dt.datetime | None]]
    """Per opportunity (created_at, closed_at) as read, for the rows' period_at."""
    touches: vector.Touches
    touch_id: I64
    campaign: I64
    team: I64
    channels: list[str]
    teams: list[str]

    @property
    def count(self) -> int:
        return len(self.opportunity)


async def _driver(session: AsyncSession | AsyncConnection) -> Any:
    """The driver connection (aiosqlite or asyncpg) of a session or connection, inside its transaction."""
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    if not conn.in_transaction():
        await conn.begin()
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


def _codes(names: list[str], name: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        names.append(name)
        return len(names) - 1


async def _read(
    session: AsyncSession, settings: Settings, scope: Scope, lookback_days: int, part: Part = WHOLE
) -> _Snapshot:
    """The opportunities and touches of the accounts in `part` (a range of account ids)."""
    o = OpportunityRow
    sql = await dialect_sql(session, settings)
    stamp = o.created_at if scope is Scope.PIPELINE else o.closed_at
    first, last = part
    rows = (
        await session.execute(
            select(
                o.id,
                o.account_id,
                o.amount,
                o.currency,
                o.created_at,
                o.closed_at,
                o.status,
                sql.converted(o.amount, o.currency, stamp),
            )
            .where(o.account_id.between(first, last))
            .order_by(o.id)
        )
    ).all()
    status = [r[6] for r in rows]
    base = [r[7] for r in rows]
    channels: list[str] = []
    teams: list[str] = [MARKETING]
    campaigns = {
        cid: (_codes(channels, channel), _codes(teams, team))
        for cid, channel, team in await session.execute(_campaign_stmt())
    }
    size = max(campaigns, default=0) + 1
    channel_of = np.zeros(size, dtype=np.int64)
    team_of = np.zeros(size, dtype=np.int64)
    for cid, (channel, team) in campaigns.items():
        channel_of[cid], team_of[cid] = channel, team
    columns = await _touch_columns(session, sql.sqlite, int(first), int(last))
    account, touch_id, campaign, at, lead_at, rank = columns
    order = vector.sort_order(account, at, rank)
    campaign = campaign[order]
    touches = vector.Touches(
        account=account[order],
        at=at[order],
        rank=rank[order],
        channel=channel_of[campaign],
        lead_at=lead_at[order],
    )
    snap = _Snapshot(
        sqlite=sql.sqlite,
        opportunity=np.array([r[0] for r in rows], dtype=np.int64),
        account=np.array([r[1] for r in rows], dtype=np.int64),
        amount=np.array([r[2] for r in rows], dtype=np.int64),
        created=np.array([_us(r[4]) for r in rows], dtype=np.int64),
        closed=np.array([_us(r[5]) for r in rows], dtype=np.int64),
        won=np.array([s == WON for s in status], dtype=bool),
        lost=np.array([s == LOST for s in status], dtype=bool),
        base=np.array([0 if b is None else int(b) for b in base], dtype=np.int64),
        priced=np.array([b is not None for b in base], dtype=bool),
        currency=[r[3] for r in rows],
        stamps=[(r[4], r[5]) for r in rows],
        touches=touches,
        touch_id=touch_id[order],
        campaign=campaign,
        team=team_of[campaign],
        channels=channels,
        teams=teams,
    )
    return snap


_TOUCH_ROW: Final = np.dtype(
    [("account", "i8"), ("id", "i8"), ("external", "O"), ("campaign", "i8"), ("occurred", "O"), ("lead", "O")]
)


async def _touch_columns(session: AsyncSession, sqlite: bool, first: int, last: int) -> tuple[Any, ...]:
    """The part's touches as columns: account, id, campaign, occurred_at and the lead's created_at in
    microseconds (NO_TIME: none), and the rank of the external id."""
    driver = await _driver(session)
    if sqlite:
        # Batches of rows, each taken apart by numpy in C and its text turned into integers at once: the
        # driver's tuples and strings never all exist together.
        parts: list[tuple[NDArray[Any], ...]] = []

        def add(rows: Sequence[Any]) -> None:
            found = np.array(rows, dtype=_TOUCH_ROW)
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: numpy reads that text into microseconds.
            lead = found["lead"].astype("datetime64[us]")
            parts.append(
                (  # copies, not views: a view would keep the batch's strings alive
                    found["account"].copy(),
                    found["id"].copy(),
                    found["campaign"].copy(),
                    found["occurred"].astype("datetime64[us]").astype(np.int64),
                    np.where(np.isnat(lead), vector.NO_TIME, lead.astype(np.int64)),
                    # UTF-8 bytes sort as the strings do and take a quarter of numpy's UCS-4 text.
                    np.array([e.encode() for e in found["external"].tolist()], dtype=bytes),
                )
            )

        # A scan reads each page once: a small page cache keeps the two workers' memory down.
        await driver.execute("PRAGMA cache_size=-8192")
        cursor = await driver.execute(_SQLITE_TOUCHES_SQL, (first, last))
        await _each_batch(lambda: cursor.fetchmany(FETCH_SIZE), add)
        await cursor.close()
        await driver.execute("PRAGMA cache_size=-65536")
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return (empty, empty, empty, empty, empty, empty)
        account, touch, campaign, at, lead_at, external = (
            np.concatenate(c) for c in zip(*parts, strict=True)
        )
        rank = np.empty(len(external), dtype=np.int64)
        rank[np.argsort(external, kind="stable")] = np.arange(len(external))
        return (account, touch, campaign, at, lead_at, rank)
    # PostgreSQL: a binary COPY of fixed-width integers, which numpy reads as one array (no Python
    # object per value); the external ids come as their rank in byte order ("C"), which is the code
    # point order Python compares strings in.
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await driver.copy_from_query(_PG_TOUCHES_SQL, first, last, output=keep, format="binary")
    return tuple(_binary_copy(b"".join(chunks), 6))


_PG_TOUCHES_SQL: Final = (
    "SELECT l.account_id, t.id, t.campaign_id, round(date_part('epoch', t.occurred_at) * 1000000)::int8, "
    "coalesce(round(date_part('epoch', l.created_at) * 1000000)::int8, 9223372036854775807), "
    '(rank() OVER (ORDER BY t.external_id COLLATE "C"))::int8 '
    "FROM touchpoint t JOIN lead l ON l.id = t.lead_id WHERE l.account_id BETWEEN $1 AND $2"
)
"""vector.NO_TIME stands for a lead without creation time."""
_COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"


def _binary_copy(data: bytes, fields: int) -> list[I64]:
    """The int8 columns of a PostgreSQL binary COPY (no NULLs), one array each."""
    if not data.startswith(_COPY_SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : -2]  # the trailer is a field count of -1
    layout = np.dtype(
        [("n", ">i2")] + [(f, t) for k in range(fields) for f, t in ((f"l{k}", ">i4"), (f"v{k}", ">i8"))]
    )
    rows = np.frombuffer(body, dtype=layout)
    if any((rows[f"l{k}"] != 8).any() for k in range(fields)):
        raise ValueError("a COPY column is NULL or not int8")
    return [rows[f"v{k}"].astype(np.int64) for k in range(fields)]


async def _each_batch(
    fetch: Callable[[], Awaitable[Sequence[Any]]], use: Callable[[Sequence[Any]], None]
) -> None:
    """`use` every batch `fetch` gives until an empty one (memory stays at one batch of rows)."""
    while batch := await fetch():
        use(batch)


# -- Removal effects -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Transitions:
    """The Markov chain (DESIGN 3.1) as observed: transition counts between channels and the states
    START, CONVERSION and NULL (core's names), over `paths` journeys, `conversions` of them converted.
    The parts of a run add up; solving them gives the exact removal effects."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    paths: int = 0
    conversions: int = 0

    def add(self, other: "Transitions") -> None:
        self.counts.update(other.counts)
        self.paths += other.paths
        self.conversions += other.conversions

    def solve(self) -> RemovalEffects:
        return solve_transitions(self.counts, self.paths, self.conversions)


def _transitions(snap: _Snapshot, lookback_days: int) -> Transitions:
    """The chain of the revenue-scope journeys of won and lost deals (won: converted) and of the accounts
    without opportunity (their touches in the lookback before the latest one; never converted)."""
    touches = snap.touches
    closed = (snap.won | snap.lost) & (snap.closed != vector.NO_TIME)
    accounts = np.unique(touches.account)
    alone = accounts[~np.isin(accounts, snap.account)]
    latest = touches.at[np.searchsorted(touches.account, alone, side="right") - 1]
    account = np.concatenate([snap.account[closed], alone])
    end = np.concatenate([snap.closed[closed], latest])
    lo, hi = vector.windows(touches, account, end - lookback_days * vector.US_PER_DAY, end)
    converted = np.concatenate([snap.won[closed], np.zeros(len(alone), dtype=bool)])
    counts, paths, conversions = vector.window_transitions(touches, lo, hi, converted)
    names = {vector.START_CODE: START, vector.CONVERSION_CODE: CONVERSION, vector.NULL_CODE: NULL}
    names.update(enumerate(snap.channels))
    return Transitions(Counter({(names[a], names[b]): n for (a, b), n in counts.items()}), paths, conversions)


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


_SQLITE: Final = SQLiteDialect(paramstyle="qmark")


class _Writer:
    """Writes row tuples of one table through the driver: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, driver: Any, sqlite: bool, table: Table, columns: Sequence[str]) -> None:
        self.driver, self.sqlite, self.table, self.columns = driver, sqlite, table.name, list(columns)
        if [c.name for c in table.columns if c.name in columns] != list(columns):
            raise ValueError(f"columns must be given in the order of table {table.name}")
        self.insert = str(insert(table).compile(dialect=_SQLITE, column_keys=columns))

    async def write(self, rows: Iterable[tuple[Any, ...]]) -> None:
        if self.sqlite:
            await self.driver.executemany(self.insert, rows)
        else:
            await self.driver.copy_records_to_table(self.table, records=list(rows), columns=self.columns)


@dataclass(frozen=True, slots=True)
class Credit:
    """A run's part computed: its credit rows (one per journey step, or one `unattributed` row per
    journey without touch; every model side by side, in opportunity id order, the table's key order,
    which makes the inserts sequential) as columns, its sourcing rows (pipeline runs) and its summary.
    Row tuples are made a batch at a time: all at once they would take some 200 MB per worker."""

    run_id: int
    sqlite: bool
    columns: list["NDArray[Any] | Nullable"]
    sources: list[tuple[Any, ...]]
    groups: dict[Key, Sums]

    @property
    def rows(self) -> int:
        first = self.columns[0]
        return len(first if isinstance(first, np.ndarray) else first.values)

    async def copy(self) -> AsyncIterator[bytes]:
        """The credit rows in PostgreSQL's binary COPY format, some BATCH_SIZE rows at a time: made by
        numpy from the columns, without a Python object per value."""
        yield _COPY_SIGNATURE + bytes(8)  # no flags, no header extension
        for k in range(0, self.rows, BATCH_SIZE):
            yield _copy_rows(self.run_id, self.columns, slice(k, k + BATCH_SIZE))
        yield b"\xff\xff"  # the trailer: a field count of -1

    def tuples(self) -> Iterator[tuple[Any, ...]]:
        """The credit rows as tuples, made some BATCH_SIZE rows at a time."""
        for k in range(0, self.rows, BATCH_SIZE):
            window = slice(k, k + BATCH_SIZE)
            parts = [
                c[window].tolist() if isinstance(c, np.ndarray) else c.values_at(window, self.sqlite)
                for c in self.columns
            ]
            yield from zip(itertools.repeat(self.run_id, len(parts[0])), *parts, strict=False)


@dataclass(frozen=True, slots=True)
class Nullable:
    """A column of integers with NULLs where not `present`; `moment`: microseconds stored as a timestamp
    (SQLAlchemy's text on SQLite, an aware datetime on PostgreSQL). Python values are made per batch."""

    values: I64
    present: Mask
    moment: bool = False

    def values_at(self, window: slice, sqlite: bool) -> list[Any]:
        values, present = self.values[window], self.present[window]
        if self.moment:
            moments = values.astype("datetime64[us]")
            if sqlite:
                text = np.datetime_as_string(moments, unit="us").tolist()
                stored: list[Any] = [f"{t[:10]} {t[11:]}" for t in text]
            else:
                stored = [d.replace(tzinfo=dt.UTC) for d in moments.tolist()]
            return (
                stored if present.all() else [v if p else None for v, p in zip(stored, present, strict=True)]
            )
        if present.all():
            return list(values.tolist())
        nullable = values.astype(object)
        nullable[~present] = None
        return list(nullable.tolist())


def credit(
    snap: _Snapshot,
    run_id: int,
    scope: Scope,
    specs: Sequence[ModelSpec],
    removal: dict[str, Decimal],
    lookback: int,
    quarter_of: Callable[[dt.datetime], str],
) -> Credit:
    """Every model's credit for the snapshot's opportunities in the scope, as rows to store and summed."""
    pipeline = scope is Scope.PIPELINE
    chosen = np.flatnonzero(
        np.ones(snap.count, dtype=bool) if pipeline else snap.won & (snap.closed != vector.NO_TIME)
    )
    end = (snap.created if pipeline else snap.closed)[chosen]
    priced = snap.priced[chosen]
    base = snap.base[chosen]
    journeys, steps = vector.journeys(
        snap.touches,
        account=snap.account[chosen],
        end=end,
        created=snap.created[chosen],
        closed_won=np.full(len(chosen), vector.NO_TIME, dtype=np.int64) if pipeline else end,
        amount=snap.amount[chosen],
        base=base,
        priced=priced,
        lookback_days=lookback,
    )
    results = vector.credit(journeys, specs, vector.scaled_effects(removal, snap.channels))
    sizes = journeys.sizes
    per_journey = np.maximum(sizes, 1)
    total = int(per_journey.sum())
    journey_of = np.repeat(np.arange(len(sizes), dtype=np.int64), per_journey)
    position = np.arange(total, dtype=np.int64) - (np.cumsum(per_journey) - per_journey)[journey_of]
    is_step = (sizes > 0)[journey_of]

    def column(values: Any, empty: Any) -> Any:
        """A column over all rows (an array): per step `values`, `empty` on the unattributed rows."""
        out = np.full(total, empty, dtype=np.asarray(values).dtype if empty is not None else object)
        out[is_step] = values
        return out

    channel = column(np.array(snap.channels, dtype=object)[journeys.channel], UNATTRIBUTED)
    campaign = column(snap.campaign[steps], -1)
    ends = [snap.stamps[k][0] if pipeline else cast(dt.datetime, snap.stamps[k][1]) for k in chosen.tolist()]
    currency = [snap.currency[k] for k in chosen.tolist()]
    row_priced = priced[journey_of]
    models: list[NDArray[Any] | Nullable] = []
    units_all, bases_all = [], []
    for result in results:
        units = column(result.units, WEIGHT_UNITS)
        amounts = column(result.amount, 0)
        amounts[~is_step] = snap.amount[chosen][sizes == 0]
        bases = column(result.base, 0)
        bases[~is_step] = base[sizes == 0]
        units_all.append(units > 0)
        bases_all.append(bases)
        models += [units, amounts, Nullable(bases, row_priced)]
    columns = [
        snap.opportunity[chosen][journey_of],
        position,
        Nullable(column(snap.touch_id[steps], 0), is_step),
        Nullable(campaign, campaign >= 0),
        channel,
        Nullable(column(journeys.at, 0), is_step, moment=True),
        column(journeys.roles, 0),
        Nullable(end[journey_of], np.ones(total, dtype=bool), moment=True),
        np.array(currency, dtype=object)[journey_of],
        *models,
    ]
    summed = Rows(
        period=[quarter_of(e) for e in ends],
        currency=currency,
        priced=priced,
        whole=base,
        journey=journey_of,
        campaign=campaign,
        channel=channel.tolist(),
        credited=np.stack(units_all, axis=1),
        base=np.stack(bases_all, axis=1),
    )
    if not pipeline:
        return Credit(run_id, snap.sqlite, columns, [], summarise(summed))
    sources = _sources(snap, run_id, chosen, journeys, steps)
    return Credit(
        run_id,
        snap.sqlite,
        columns,
        sources,
        summarise(summed, ([s[1] for s in sources], [s[2] for s in sources], [s[3] for s in sources])),
    )


def _sources(
    snap: _Snapshot, run_id: int, chosen: I64, journeys: vector.Journeys, steps: I64
) -> list[tuple[Any, ...]]:
    """Per pipeline journey: (opportunity, sourced by, influenced by marketing, first campaign, run)."""
    sizes = journeys.sizes
    touched = sizes > 0
    first = steps[journeys.start[:-1][touched]]
    team = np.array(snap.teams, dtype=object)
    sourced = np.full(len(sizes), UNATTRIBUTED, dtype=object)
    sourced[touched] = team[snap.team[first]]
    campaign = np.full(len(sizes), None, dtype=object)
    campaign[touched] = snap.campaign[first]
    marketing = (snap.team[steps] == snap.teams.index(MARKETING)).astype(np.int64)
    influenced = np.zeros(len(sizes), dtype=bool)
    if len(steps):
        influenced[touched] = np.add.reduceat(marketing, journeys.start[:-1][touched]) > 0
    return list(
        zip(
            snap.opportunity[chosen].tolist(),
            sourced.tolist(),
            influenced.tolist(),
            campaign.tolist(),
            itertools.repeat(run_id, len(sizes)),
            strict=True,
        )
    )


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
    effects = _transitions(snap, lookback).solve()
    removal = effects.as_decimals()
    clock.lap("removal effects")
    await delete_runs(session, scope)
    run = await start_run(session, scope, effects, snap.count, lookback)
    done = credit(snap, run.id, scope, specs, removal, lookback, quarters(settings))
    await write(session, done)
    await refresh_statistics(session)
    await finish_summary(session, run, settings, done.groups)
    clock.lap("credit and write")
    log.info("attribution %s: %s rows in %s", scope.value, done.rows, clock)
    run.computed_at = utcnow()
    run.status = RunStatus.SUCCEEDED.value
    await session.flush()
    return run


def quarters(settings: Settings) -> Callable[[dt.datetime], str]:
    """The quarter key of an instant in the organisation's time zone and fiscal year."""
    return quarter_finder(settings.tz, settings.fiscal_year_start_month)


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


_PG_INT: Final = {"position": ">i4", "roles": ">i2"}
"""The credit columns that are not bigint, text or timestamptz, with their binary width."""
_PG_EPOCH_US: Final = 946_684_800_000_000
"""PostgreSQL's timestamps count microseconds from 2000-01-01 UTC."""


def _copy_rows(run_id: int, columns: Sequence["NDArray[Any] | Nullable"], window: slice) -> bytes:
    """Rows of the credit table (run_id, then `columns` in _CREDIT_COLUMNS order) in the binary COPY
    format. Rows differ in layout only by their NULLs and the length of their texts: each group of rows
    of one layout is one numpy record array, turned into bytes at once."""
    names = _CREDIT_COLUMNS[1:]
    parts: list[tuple[str, Any, Any]] = []  # (kind, values, present)
    for name, column in zip(names, columns, strict=True):
        if isinstance(column, Nullable):
            values = column.values[window]
            kind = "time" if column.moment else "int8"
            parts.append((kind, values - _PG_EPOCH_US if column.moment else values, column.present[window]))
        elif column.dtype == object:
            texts, code = np.unique(column[window], return_inverse=True)
            parts.append(("text", (texts, code.astype(np.int64)), None))
        else:
            parts.append((_PG_INT.get(name, "int8"), column[window], None))
    count = len(parts[0][1]) if parts[0][0] != "text" else len(parts[0][1][1])
    # A row's layout: which nullable fields are there, which text each text field holds.
    layout = np.zeros(count, dtype=np.int64)
    for kind, values, present in parts:
        if kind == "text":
            layout = layout * len(values[0]) + values[1]
        elif present is not None:
            layout = layout * 2 + present
    _, first, group = np.unique(layout, return_index=True, return_inverse=True)
    chunks = []
    for g, row in enumerate(first.tolist()):
        rows = np.flatnonzero(group == g)
        fields: list[tuple[str, str]] = [("n", ">i2"), ("l_run", ">i4"), ("v_run", ">i8")]
        fill: list[tuple[str, Any]] = [("n", len(parts) + 1), ("l_run", 8), ("v_run", run_id)]
        for k, (kind, values, present) in enumerate(parts):
            if kind == "text":
                text = values[0][values[1][row]].encode()
                fields += [(f"l{k}", ">i4"), (f"v{k}", f"S{len(text)}")]
                fill += [(f"l{k}", len(text)), (f"v{k}", text)]
            elif present is not None and not present[row]:
                fields.append((f"l{k}", ">i4"))
                fill.append((f"l{k}", -1))
            else:
                width = ">i8" if kind in ("int8", "time") else kind
                fields += [(f"l{k}", ">i4"), (f"v{k}", width)]
                fill += [(f"l{k}", np.dtype(width).itemsize), (f"v{k}", values[rows])]
        records = np.empty(len(rows), dtype=np.dtype(fields))
        for field_name, value in fill:
            records[field_name] = value
        chunks.append(records.tobytes())
    return b"".join(chunks)


_STAGED: Final = Table(
    "okr_staged_credit",
    MetaData(),
    *(Column(c.name, c.type) for c in attribution_credit.columns),
    prefixes=["TEMPORARY"],
)
"""SQLite: the temporary table (of one connection) a worker's credit rows wait in for its turn to write."""
_STAGE_SQL: Final = (
    str(DropTable(_STAGED, if_exists=True).compile(dialect=_SQLITE)),
    str(CreateTable(_STAGED).compile(dialect=_SQLITE)),
)
_UNSTAGE_SQL: Final = (
    str(
        insert(attribution_credit)
        .from_select(_CREDIT_COLUMNS, select(*(_STAGED.c[name] for name in _CREDIT_COLUMNS)))
        .compile(dialect=_SQLITE)
    ),
    str(DropTable(_STAGED).compile(dialect=_SQLITE)),
)


async def stage(conn: AsyncConnection, done: Credit) -> None:
    """SQLite: put a part's credit rows in a temporary table of this connection and commit. A temporary
    table is outside the database's write lock, so the workers stage at the same time; the turn each then
    takes (`write(..., staged=True)`) is one INSERT ... SELECT inside SQLite, with no Python per row."""
    driver = await _driver(conn)
    for statement in _STAGE_SQL:
        await driver.execute(statement)
    # The driver's thread makes the row tuples as it binds them (a generator): made by another thread,
    # the two threads would take turns at the GIL for every row.
    await _Writer(driver, True, _STAGED, _CREDIT_COLUMNS).write(done.tuples())
    await conn.commit()


async def write(conn: AsyncSession | AsyncConnection, done: Credit, *, staged: bool = False) -> None:
    """Insert a computed part's credit and sourcing rows through the driver, in the transaction of the
    session or connection: on SQLite from the rows `stage` put in this connection's temporary table
    (`staged`), or else bound one by one; on PostgreSQL as one binary COPY."""
    driver = await _driver(conn)
    sourcing = _Writer(driver, done.sqlite, _SOURCING_TABLE, _SOURCING_COLUMNS)
    if not done.sqlite:
        # PostgreSQL: one binary COPY of every credit row, made by numpy while the server takes the last.
        await driver.copy_to_table(
            attribution_credit.name, source=done.copy(), columns=_CREDIT_COLUMNS, format="binary"
        )
    elif staged:
        for statement in _UNSTAGE_SQL:
            await driver.execute(statement)
    else:
        await _Writer(driver, True, attribution_credit, _CREDIT_COLUMNS).write(done.tuples())
    await sourcing.write(done.sources)


async def refresh_statistics(session: AsyncSession) -> None:
    """PostgreSQL: update the planner's statistics of the run columns once a run's rows are written, in
    the switch's transaction. Until then the new run id is unknown to them: PostgreSQL estimates one row
    for it and plans nested loops that took a drill-down from 0.1 s to over 30 s on the enterprise demo
    (with autovacuum off, or before it comes round). Only the `run_id` columns, so it takes a fraction of
    a second. SQLite plans from its indexes and needs nothing."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(text(f"ANALYZE {attribution_credit.name} (run_id)"))
    await session.execute(text(f"ANALYZE {_SOURCING_TABLE.name} (run_id)"))


async def delete_runs(
    session: AsyncSession, scope: Scope, *, keep: Collection[int] = (), only: int | None = None
) -> None:
    """Delete the scope's runs (all, all but those in `keep`, or `only` that one) with their rows; flushes
    only."""
    runs = select(AttributionRun.id).where(AttributionRun.scope == scope.value)
    if keep:
        runs = runs.where(AttributionRun.id.not_in(list(keep)))
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
