"""Import CRM data (DESIGN 7): the one service the CLI, the web admin page and the API share.

A file is all-or-nothing. Rows are read lazily and handled in batches: parse, check duplicate keys,
resolve references with one query per referenced table, count which keys exist, upsert. Writes
happen inside a SAVEPOINT; after the first bad row nothing more is written, but every remaining row
is still checked so the user gets the full list, and a bad file rolls the savepoint back and raises
ImportRejected. The service only flushes; the caller commits (`import_folder` is such a caller).

Opportunity splits have no key of their own: a splits file replaces the splits of every opportunity
it names (see `_Splits`), and each named opportunity's revenue splits must add up to exactly 100 %.
"""

import csv
import inspect
import io
import itertools
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, ClassVar, Final, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.engine import write_intent
from okr.db.models import metadata
from okr.imports import core
from okr.imports.core import (
    AccountRecord,
    CampaignRecord,
    EntitySpec,
    FxRateRecord,
    LeadRecord,
    OpportunityRecord,
    PersonRecord,
    Record,
    RowError,
    SplitRecord,
    TouchpointRecord,
)
from okr.lib.clock import utcnow
from okr.lib.errors import ValidationFailed
from okr.settings import Settings

BATCH_SIZE: Final = 2000
MAX_ERRORS: Final = 1000

T = TypeVar("T")
Stream = Iterator[tuple[int, Mapping[str, Any] | RowError]]
# Told (rows read so far, bytes of the file read so far or None when unknown) once per batch.
ProgressCallback = Callable[[int, int | None], Awaitable[None] | None]
Position = Callable[[], int | None]


@dataclass(slots=True)
class ImportResult:
    """What one file did: rows read, keys created and updated; `errors` only when it was rejected."""

    entity: str
    rows: int
    created: int
    updated: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        """True when the file was imported."""
        return not self.error_count and not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The result as the API and the CLI report it."""
        return {
            "entity": self.entity,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "errors": self.errors,
            "error_count": self.error_count,
        }


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


class ImportRejected(ValidationFailed):
    """A file was refused and nothing of it written; `errors` lists row, column and reason (at most 1,000)."""

    def __init__(
        self,
        entity: str,
        errors: list[RowError],
        rows_seen: int,
        *,
        error_count: int | None = None,
        source: str | None = None,
    ) -> None:
        count = len(errors) if error_count is None else error_count
        # Stable: a row's errors stay in column order.
        shown = sorted(errors[:MAX_ERRORS], key=lambda e: e.row)
        more = count - len(shown)
        detail = (
            f"{source or entity} was not imported: {_plural(count, 'error')} in "
            f"{_plural(rows_seen, 'row')}; nothing was written"
        )
        if more > 0:
            detail += f" (the first {len(shown):,} are listed, {more:,} more)"
        super().__init__(detail, errors=[e.as_dict() for e in shown])
        self.entity = entity
        self.row_errors = shown
        self.rows_seen = rows_seen
        self.error_count = count
        self.more = max(more, 0)


def _get_spec(entity: str) -> EntitySpec:
    try:
        return core.get_spec(entity)
    except KeyError:
        raise ValidationFailed(
            f"unknown import entity '{entity}' (one of: {', '.join(core.ENTITIES)})"
        ) from None


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _table(name: str) -> Table:
    return metadata.tables[name]


class _Errors:
    """Every error counted; the first MAX_ERRORS kept."""

    __slots__ = ("count", "items")

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(error)

    def extend(self, errors: Iterable[RowError]) -> None:
        for error in errors:
            self.add(error)


class _Scratch:
    """Per-file bookkeeping that grows with the file (keys seen, split rows), kept out of memory."""

    def __init__(self) -> None:
        # An empty name is a private temporary SQLite database on disk: pages beyond its small
        # cache spill to a file, so a million keys do not grow the process.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (k TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE split (opp TEXT NOT NULL, row INTEGER NOT NULL, kind TEXT NOT NULL, "
            "pct TEXT NOT NULL, opp_id INTEGER, person_id INTEGER)"
        )
        self._db.execute("BEGIN")

    def close(self) -> None:
        self._db.close()

    def first_rows(self, items: Sequence[tuple[str, int]]) -> list[int | None]:
        """For each (key, row): the earlier row holding that key, or None; remembers the new keys."""
        earlier: dict[str, int] = {}
        for chunk in _chunks({k for k, _ in items}, 500):
            marks = ",".join("?" * len(chunk))
            earlier.update(self._db.execute(f"SELECT k, row FROM seen WHERE k IN ({marks})", chunk))  # noqa: S608 - only placeholders
        found: list[int | None] = []
        new: list[tuple[str, int]] = []
        for key, row in items:
            first = earlier.get(key)
            if first is None:
                earlier[key] = row
                new.append((key, row))
            found.append(first)
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", new)
        return found

    def add_splits(self, rows: Iterable[tuple[str, int, str, str, int | None, int | None]]) -> None:
        """Remember split rows: opportunity, row, kind, percent, and the resolved ids when known."""
        self._db.executemany("INSERT INTO split VALUES (?, ?, ?, ?, ?, ?)", rows)

    def revenue_rows(self) -> Iterator[tuple[str, list[tuple[int, Decimal]]]]:
        """Each opportunity named with its revenue split rows (row, percent), one at a time."""
        cursor = self._db.execute("SELECT opp, row, pct FROM split WHERE kind = 'revenue' ORDER BY opp, row")
        for opp, group in itertools.groupby(cursor, key=lambda r: str(r[0])):
            yield opp, [(int(row), Decimal(pct)) for _, row, pct in group]

    def opportunity_ids(self, size: int) -> Iterator[list[int]]:
        """The ids of the opportunities the file names, in chunks."""
        self._db.execute("CREATE INDEX IF NOT EXISTS split_opp_id ON split (opp_id)")
        last = -1
        while True:
            ids = [
                int(r[0])
                for r in self._db.execute(
                    "SELECT DISTINCT opp_id FROM split WHERE opp_id > ? ORDER BY opp_id LIMIT ?", (last, size)
                )
            ]
            if not ids:
                return
            yield ids
            last = ids[-1]

    def split_keys(self, opp_ids: Sequence[int]) -> set[tuple[int, int, str]]:
        """The (opportunity id, person id, kind) the file gives for these opportunities."""
        marks = ",".join("?" * len(opp_ids))
        rows = self._db.execute(
            f"SELECT opp_id, person_id, kind FROM split WHERE opp_id IN ({marks})",  # noqa: S608 - only placeholders
            list(opp_ids),
        )
        return {(int(o), int(p), str(k)) for o, p, k in rows}


class _Job:
    """One file being imported: the session, the settings, the errors, the caches."""

    def __init__(
        self, session: AsyncSession, *, spec: EntitySpec, settings: Settings, written: frozenset[str]
    ) -> None:
        self.session = session
        self.spec = spec
        self.org_currency = settings.org_currency
        self.dialect = session.get_bind().dialect.name
        self.written = written
        self.errors = _Errors()
        self.scratch = _Scratch()
        self.rows = 0
        self.created = 0
        self.updated = 0
        self._people: dict[str, int] | None = None
        self._campaigns: dict[str, int] | None = None
        self._teams: dict[str, int] | None = None
        self._lookups: dict[str, Any] = {}

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        if self.dialect == "sqlite":
            return sqlite_insert(table)
        if self.dialect == "postgresql":
            return pg_insert(table)
        raise NotImplementedError(f"imports do not support the {self.dialect} database")

    def among(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """`column IN :keys` bound as ONE parameter (see `keys`), so the SQL is the same for every batch."""
        # An expanding IN renders one placeholder per key on every execution, which costs more
        # than the query itself at 2,000 keys; an array (PostgreSQL) or a JSON list (SQLite) does not.
        if self.dialect == "postgresql":
            return column == any_(bindparam("keys", type_=ARRAY(column.type)))
        return column.in_(select(literal_column("value")).select_from(func.json_each(bindparam("keys"))))

    def keys(self, values: Iterable[Any]) -> dict[str, Any]:
        """The parameters for a statement built with `among`."""
        listed = list(values)
        return {"keys": listed if self.dialect == "postgresql" else json.dumps(listed)}

    async def people(self) -> dict[str, int]:
        """Every person's id by lower-case email (a small table, read once per file)."""
        if self._people is None:
            person = _table("person")
            rows = await self.session.execute(select(person.c.email, person.c.id))
            self._people = {str(email).lower(): int(pid) for email, pid in rows}
        return self._people

    async def campaigns(self) -> dict[str, int]:
        """Every campaign's id by external id (a small table, read once per file)."""
        if self._campaigns is None:
            campaign = _table("campaign")
            rows = await self.session.execute(select(campaign.c.external_id, campaign.c.id))
            self._campaigns = {str(key): int(cid) for key, cid in rows}
        return self._campaigns

    async def team_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Team ids by lower-case name, creating the teams named that do not exist yet."""
        team = _table("team")
        if self._teams is None:
            rows = await self.session.execute(select(team.c.name, team.c.id))
            self._teams = {str(name).lower(): int(tid) for name, tid in rows}
        teams = self._teams
        missing: dict[str, str] = {}
        for name in names:
            if name.lower() not in teams:
                missing.setdefault(name.lower(), name)
        if missing:
            stmt = self.insert(team).on_conflict_do_nothing(index_elements=["name"])
            await self.session.execute(stmt, [{"name": n} for n in missing.values()])
            rows = await self.session.execute(
                select(team.c.name, team.c.id).where(team.c.name.in_(list(missing.values())))
            )
            teams.update({str(name).lower(): int(tid) for name, tid in rows})
        return teams

    async def ids(self, table: str, keys: Iterable[str]) -> dict[str, int]:
        """Ids by external id for the keys given (one IN query per batch)."""
        stmt = self._lookups.get(table)
        if stmt is None:
            t = _table(table)
            # An expanding bind parameter: the statement is built and compiled once, not per batch.
            stmt = select(t.c.external_id, t.c.id).where(self.among(t.c.external_id))
            self._lookups[table] = stmt
        found: dict[str, int] = {}
        for chunk in _chunks(set(keys), BATCH_SIZE):
            rows = await self.session.execute(stmt, self.keys(chunk))
            found.update({str(key): int(rid) for key, rid in rows})
        return found

    async def person_id(self, record: Record, column: str, email: str | None) -> tuple[bool, int | None]:
        """(resolved, id) of an optional person reference; an unknown email is a row error."""
        if email is None:
            return True, None
        pid = (await self.people()).get(email)
        if pid is None:
            self.errors.add(core.unknown_reference(record.row, column, "person", email))
            return False, None
        return True, pid


AccountOwned = TypeVar("AccountOwned", LeadRecord, OpportunityRecord)


async def _account_and_owner(
    job: _Job, records: list[AccountOwned]
) -> list[tuple[AccountOwned, int, int | None]]:
    """The records whose account and owner both resolve, with their ids; the others become row errors."""
    accounts = await job.ids("account", (r.account_external_id for r in records))
    resolved = []
    for r in records:
        account_id = accounts.get(r.account_external_id)
        if account_id is None:
            job.errors.add(
                core.unknown_reference(r.row, "account_external_id", "account", r.account_external_id)
            )
        ok, owner_id = await job.person_id(r, "owner_email", r.owner_email)
        if account_id is not None and ok:
            resolved.append((r, account_id, owner_id))
    return resolved


class _Handler:
    """How one entity's valid records become rows: references, the existing-key count, the upsert."""

    table_name: ClassVar[str]
    conflict: ClassVar[tuple[str, ...]] = ("external_id",)
    # Which table columns each file column writes; a column absent from the file is left as it is.
    columns: ClassVar[dict[str, tuple[str, ...]]]
    touch: ClassVar[tuple[str, ...]] = ()

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.table = _table(self.table_name)
        self._upsert: Any = None
        self._existing: Any = None

    def upsert(self) -> Any:
        """INSERT ... ON CONFLICT (key) DO UPDATE the file's columns, only where something differs."""
        if self._upsert is None:
            update: list[str] = []
            for name, targets in self.columns.items():
                if name in self.job.written:
                    update.extend(t for t in targets if t not in update)
            ins = self.job.insert(self.table)
            if not update:
                self._upsert = ins.on_conflict_do_nothing(index_elements=list(self.conflict))
            else:
                excluded = ins.excluded
                changes = {c: excluded[c] for c in (*update, *self.touch)}
                changed = or_(*(self.table.c[c].is_distinct_from(excluded[c]) for c in update))
                self._upsert = ins.on_conflict_do_update(
                    index_elements=list(self.conflict), set_=changes, where=changed
                )
        return self._upsert

    async def resolve(self, records: list[Any]) -> list[dict[str, Any]]:
        """The insert parameters of the records whose references all resolve."""
        raise NotImplementedError

    async def existing(self, params: list[dict[str, Any]]) -> int:
        """How many of these rows' keys are already in the table."""
        (key,) = self.conflict
        if self._existing is None:
            column = self.table.c[key]
            self._existing = select(column).where(self.job.among(column))
        rows = await self.job.session.execute(self._existing, self.job.keys(p[key] for p in params))
        return len(rows.all())

    async def write(self, params: list[dict[str, Any]]) -> None:
        """Upsert one batch (executemany)."""
        await self.job.session.execute(self.upsert(), params)

    async def finish(self) -> None:
        """Checks and writes that need the whole file."""


class _FxRates(_Handler):
    table_name = "fx_rate"
    conflict = ("currency", "valid_from")
    columns: ClassVar[dict[str, tuple[str, ...]]] = {"rate_to_base": ("rate_to_base",)}

    async def resolve(self, records: list[FxRateRecord]) -> list[dict[str, Any]]:
        return [
            {"currency": r.currency, "rate_to_base": r.rate_to_base, "valid_from": r.valid_from}
            for r in records
        ]

    async def existing(self, params: list[dict[str, Any]]) -> int:
        t = self.table
        currencies = sorted({p["currency"] for p in params})
        rows = await self.job.session.execute(
            select(t.c.currency, t.c.valid_from).where(t.c.currency.in_(currencies))
        )
        have = set(rows)
        return sum((p["currency"], p["valid_from"]) in have for p in params)


class _People(_Handler):
    table_name = "person"
    conflict = ("email",)
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("name",),
        "team": ("team_id",),
        "role": ("role",),
        "employee_id": ("employee_id",),
        "start_date": ("start_date",),
        "end_date": ("end_date",),
        "target_bonus": ("target_bonus",),
    }
    # Set only when something changed; created_at, password_hash and is_active are set on insert only.
    touch = ("updated_at",)

    async def resolve(self, records: list[PersonRecord]) -> list[dict[str, Any]]:
        now = utcnow()
        return [
            {
                "email": r.email,
                "name": r.name,
                "team_id": r.team,
                "role": r.role,
                "employee_id": r.employee_id,
                "start_date": r.start_date,
                "end_date": r.end_date,
                "target_bonus": r.target_bonus,
                "password_hash": None,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
            for r in records
        ]

    async def write(self, params: list[dict[str, Any]]) -> None:
        teams = await self.job.team_ids(dict.fromkeys(p["team_id"] for p in params))
        await super().write([{**p, "team_id": teams[p["team_id"].lower()]} for p in params])


class _Campaigns(_Handler):
    table_name = "campaign"
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("name",),
        "channel": ("channel",),
        "owner_email": ("owner_id",),
        "cost": ("cost", "currency"),
        "currency": ("cost", "currency"),
        "start_date": ("start_date",),
        "end_date": ("end_date",),
    }

    async def resolve(self, records: list[CampaignRecord]) -> list[dict[str, Any]]:
        params = []
        for r in records:
            ok, owner_id = await self.job.person_id(r, "owner_email", r.owner_email)
            if ok:
                params.append(
                    {
                        "external_id": r.external_id,
                        "name": r.name,
                        "channel": r.channel,
                        "owner_id": owner_id,
                        "cost": r.cost,
                        "currency": r.currency,
                        "start_date": r.start_date,
                        "end_date": r.end_date,
                    }
                )
        return params


class _Accounts(_Handler):
    table_name = "account"
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("name",),
        "segment": ("segment",),
        "industry": ("industry",),
    }

    async def resolve(self, records: list[AccountRecord]) -> list[dict[str, Any]]:
        return [
            {"external_id": r.external_id, "name": r.name, "segment": r.segment, "industry": r.industry}
            for r in records
        ]


class _Leads(_Handler):
    table_name = "lead"
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "account_external_id": ("account_id",),
        "email": ("email",),
        "owner_email": ("owner_id",),
        "created_at": ("created_at",),
        "mql_at": ("mql_at",),
        "accepted_at": ("accepted_at",),
        "rejected_at": ("rejected_at",),
        "rejection_reason": ("rejection_reason",),
        "sql_at": ("sql_at",),
        "recycled_at": ("recycled_at",),
    }

    async def resolve(self, records: list[LeadRecord]) -> list[dict[str, Any]]:
        return [
            {
                "external_id": r.external_id,
                "account_id": account_id,
                "email": r.email,
                "owner_id": owner_id,
                "created_at": r.created_at,
                "mql_at": r.mql_at,
                "accepted_at": r.accepted_at,
                "rejected_at": r.rejected_at,
                "rejection_reason": r.rejection_reason,
                "sql_at": r.sql_at,
                "recycled_at": r.recycled_at,
            }
            for r, account_id, owner_id in await _account_and_owner(self.job, records)
        ]


class _Touchpoints(_Handler):
    table_name = "touchpoint"
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "lead_external_id": ("lead_id",),
        "campaign_external_id": ("campaign_id",),
        "occurred_at": ("occurred_at",),
        "kind": ("kind",),
    }

    async def resolve(self, records: list[TouchpointRecord]) -> list[dict[str, Any]]:
        job = self.job
        leads = await job.ids("lead", (r.lead_external_id for r in records))
        campaigns = await job.campaigns()
        params = []
        for r in records:
            lead_id = leads.get(r.lead_external_id)
            campaign_id = campaigns.get(r.campaign_external_id)
            if lead_id is None:
                job.errors.add(core.unknown_reference(r.row, "lead_external_id", "lead", r.lead_external_id))
            if campaign_id is None:
                job.errors.add(
                    core.unknown_reference(r.row, "campaign_external_id", "campaign", r.campaign_external_id)
                )
            if lead_id is None or campaign_id is None:
                continue
            params.append(
                {
                    "external_id": r.external_id,
                    "lead_id": lead_id,
                    "campaign_id": campaign_id,
                    "occurred_at": r.occurred_at,
                    "kind": r.kind,
                }
            )
        return params


class _Opportunities(_Handler):
    table_name = "opportunity"
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "account_external_id": ("account_id",),
        "name": ("name",),
        "owner_email": ("owner_id",),
        "amount": ("amount", "currency"),
        "currency": ("amount", "currency"),
        "created_at": ("created_at",),
        "closed_at": ("closed_at",),
        "status": ("status",),
        "stage": ("stage",),
        "probability": ("probability",),
        "forecast_category": ("forecast_category",),
    }

    async def resolve(self, records: list[OpportunityRecord]) -> list[dict[str, Any]]:
        return [
            {
                "external_id": r.external_id,
                "account_id": account_id,
                "name": r.name,
                "owner_id": owner_id,
                "amount": r.amount,
                "currency": r.currency,
                "created_at": r.created_at,
                "closed_at": r.closed_at,
                "status": r.status,
                "stage": r.stage,
                "probability": r.probability,
                "forecast_category": r.forecast_category,
            }
            for r, account_id, owner_id in await _account_and_owner(self.job, records)
        ]


class _Splits(_Handler):
    """Opportunity splits have no external id, so a splits file *replaces* the splits of every
    opportunity it names: the file's splits are upserted by (opportunity, person, kind) and, once the
    whole file is in, that opportunity's other splits are deleted. The revenue splits of each named
    opportunity must add up to exactly 100 %; an opportunity given only overlay rows has no revenue
    split left, so 100 % of its revenue stays with its owner. Upserting rather than deleting and
    re-inserting keeps the rows (and their ids) identical when the same file is loaded twice.
    """

    table_name = "opportunity_split"
    conflict = ("opportunity_id", "person_id", "kind")
    columns: ClassVar[dict[str, tuple[str, ...]]] = {"percent": ("percent",)}

    async def resolve(self, records: list[SplitRecord]) -> list[dict[str, Any]]:
        job = self.job
        opportunities = await job.ids("opportunity", (r.opportunity_external_id for r in records))
        people = await job.people()
        params = []
        scratch: list[tuple[str, int, str, str, int | None, int | None]] = []
        for r in records:
            opp_id = opportunities.get(r.opportunity_external_id)
            person_id = people.get(r.person_email)
            scratch.append((r.opportunity_external_id, r.row, r.kind, str(r.percent), opp_id, person_id))
            if opp_id is None:
                job.errors.add(
                    core.unknown_reference(
                        r.row, "opportunity_external_id", "opportunity", r.opportunity_external_id
                    )
                )
            if person_id is None:
                job.errors.add(core.unknown_reference(r.row, "person_email", "person", r.person_email))
            if opp_id is None or person_id is None:
                continue
            params.append(
                {"opportunity_id": opp_id, "person_id": person_id, "kind": r.kind, "percent": r.percent}
            )
        job.scratch.add_splits(scratch)
        return params

    async def existing(self, params: list[dict[str, Any]]) -> int:
        job, t = self.job, self.table
        opp_ids = sorted({p["opportunity_id"] for p in params})
        rows = await job.session.execute(
            select(t.c.opportunity_id, t.c.person_id, t.c.kind).where(job.among(t.c.opportunity_id)),
            job.keys(opp_ids),
        )
        have = set(rows)
        return sum((p["opportunity_id"], p["person_id"], p["kind"]) in have for p in params)

    async def finish(self) -> None:
        job = self.job
        for opportunity, revenue in job.scratch.revenue_rows():
            job.errors.extend(core.revenue_split_errors(opportunity, revenue))
        if job.errors.count:
            return
        t = self.table
        for opp_ids in job.scratch.opportunity_ids(500):
            keep = job.scratch.split_keys(opp_ids)
            current = await job.session.execute(
                select(t.c.id, t.c.opportunity_id, t.c.person_id, t.c.kind).where(
                    t.c.opportunity_id.in_(opp_ids)
                )
            )
            stale = [sid for sid, opp, person, kind in current if (opp, person, kind) not in keep]
            if stale:
                await job.session.execute(delete(t).where(t.c.id.in_(stale)))


_HANDLERS: Final[dict[str, type[_Handler]]] = {
    core.FX_RATES: _FxRates,
    core.PEOPLE: _People,
    core.CAMPAIGNS: _Campaigns,
    core.ACCOUNTS: _Accounts,
    core.LEADS: _Leads,
    core.TOUCHPOINTS: _Touchpoints,
    core.OPPORTUNITIES: _Opportunities,
    core.OPPORTUNITY_SPLITS: _Splits,
}


async def _flush(job: _Job, handler: _Handler, batch: list[Record]) -> None:
    """Check one batch's keys and references; write it while the file is still clean."""
    firsts = job.scratch.first_rows([(r.key, r.row) for r in batch])
    records = []
    for record, first in zip(batch, firsts, strict=True):
        if first is None:
            records.append(record)
        else:
            job.errors.add(core.duplicate_error(record, first))
    params = await handler.resolve(records)
    if job.errors.count or not params:
        return
    existing = await handler.existing(params)
    job.created += len(params) - existing
    job.updated += existing
    await handler.write(params)


async def _import(
    session: AsyncSession,
    *,
    spec: EntitySpec,
    stream: Stream,
    settings: Settings,
    actor: str,
    actor_id: int | None,
    written: frozenset[str],
    header_errors: Sequence[RowError] = (),
    check_keys: bool = False,
    source: str | None = None,
    on_progress: ProgressCallback | None = None,
    position: Position | None = None,
) -> ImportResult:
    job = _Job(session, spec=spec, settings=settings, written=written)
    handler = _HANDLERS[spec.name](job)
    job.errors.extend(header_errors)
    # A required column missing from the header is reported once (row 1), not on every row.
    absent = {e.column for e in header_errors if e.column in spec.required and e.column not in written}
    allowed = set(spec.column_names)
    reported: set[str] = set()
    told = 0

    async def progress() -> None:
        nonlocal told
        if on_progress is not None and job.rows != told:
            told = job.rows
            outcome = on_progress(job.rows, position() if position is not None else None)
            if inspect.isawaitable(outcome):
                await outcome

    try:
        with write_intent():
            async with session.begin_nested():
                batch: list[Record] = []
                for row, raw in stream:
                    if job.rows - told >= BATCH_SIZE:
                        await progress()
                    job.rows += 1
                    if isinstance(raw, RowError):
                        job.errors.add(raw)
                        continue
                    if check_keys:
                        for name in raw:
                            if name not in allowed and name not in reported:
                                reported.add(name)
                                job.errors.add(core.unknown_column(spec.name, row, name))
                    parsed = core.parse_row(spec.name, raw, row=row, org_currency=job.org_currency)
                    if isinstance(parsed, list):
                        job.errors.extend(e for e in parsed if e.column not in absent)
                        continue
                    batch.append(parsed)
                    if len(batch) >= BATCH_SIZE:
                        await _flush(job, handler, batch)
                        batch = []
                if batch:
                    await _flush(job, handler, batch)
                await progress()
                await handler.finish()
                if job.errors.count:
                    raise ImportRejected(
                        spec.name, job.errors.items, job.rows, error_count=job.errors.count, source=source
                    )
                counts = {"rows": job.rows, "created": job.created, "updated": job.updated}
                await session.execute(
                    insert(_table("audit_event")).values(
                        occurred_at=utcnow(),
                        actor=actor,
                        actor_id=actor_id,
                        action="import",
                        entity=spec.name,
                        entity_id=None,
                        before=None,
                        after={**counts, "source": source},
                    )
                )
    finally:
        job.scratch.close()
    return ImportResult(entity=spec.name, rows=job.rows, created=job.created, updated=job.updated)


def _numbered(rows: Iterable[Any], first_row: int) -> Stream:
    for row, raw in enumerate(rows, start=first_row):
        if isinstance(raw, Mapping):
            yield row, raw
        else:
            yield row, RowError(row, "", "expected an object with column names as keys")


async def import_rows(
    session: AsyncSession,
    *,
    entity: str,
    rows: Iterable[Mapping[str, Any]],
    settings: Settings,
    actor: str,
    actor_id: int | None = None,
    header: Sequence[str] | None = None,
    first_row: int | None = None,
    source: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import one file's rows of `entity`, all or nothing; raise ImportRejected listing every bad row.

    With a `header` (a CSV file's column names, as the rows use them) the header is row 1 and rows
    are numbered from 2. Without one the rows are JSON records numbered from 1, a key that is not a
    column is reported on the first record that has it, and a missing key reads as empty. Columns
    absent from the file (from the header, or from every record of a list) are left unchanged on
    existing rows. `on_progress(rows, None)` is called once per batch of rows read.
    """
    spec = _get_spec(entity)
    allowed = set(spec.column_names)
    if header is not None:
        names = list(header)
        return await _import(
            session,
            spec=spec,
            stream=_numbered(rows, 2 if first_row is None else first_row),
            settings=settings,
            actor=actor,
            actor_id=actor_id,
            written=frozenset(names) & allowed,
            header_errors=core.check_header(entity, names),
            source=source,
            on_progress=on_progress,
        )
    if isinstance(rows, Sequence):
        present = {name for raw in rows if isinstance(raw, Mapping) for name in raw}
        written = frozenset(present & allowed)
    else:
        written = frozenset(allowed)
    return await _import(
        session,
        spec=spec,
        stream=_numbered(rows, 1 if first_row is None else first_row),
        settings=settings,
        actor=actor,
        actor_id=actor_id,
        written=written,
        check_keys=True,
        source=source,
        on_progress=on_progress,
    )


def _csv_stream(reader: Iterator[list[str]], header: list[str]) -> Stream:
    """Data rows as dicts numbered as a spreadsheet shows them; blank rows are skipped."""
    width = len(header)
    row = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield (
                row + 1,
                RowError(row + 1, "", "the file is not UTF-8 text near here (save it as 'CSV UTF-8')"),
            )
            return
        except csv.Error as exc:
            yield row + 1, RowError(row + 1, "", f"the file cannot be read as CSV here: {exc}")
            return
        row += 1
        if not "".join(cells).strip():
            continue
        if len(cells) > width and "".join(cells[width:]).strip():
            yield row, RowError(row, "", f"the row has {len(cells)} cells but the header has {width} columns")
            continue
        yield row, dict(zip(header, cells, strict=False))


async def _import_text(
    session: AsyncSession,
    *,
    spec: EntitySpec,
    text: IO[str],
    settings: Settings,
    actor: str,
    actor_id: int | None,
    source: str | None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    reader = csv.reader(text)
    try:
        first = next(reader, None)
    except UnicodeDecodeError:
        reason = "the file is not UTF-8 text (save it as 'CSV UTF-8')"
        raise ImportRejected(spec.name, [RowError(1, "", reason)], 0, source=source) from None
    except csv.Error as exc:
        reason = f"the header cannot be read as CSV: {exc}"
        raise ImportRejected(spec.name, [RowError(1, "", reason)], 0, source=source) from None
    if first is None or not any(cell.strip() for cell in first):
        reason = f"the file is empty: the first row must be the header ({', '.join(spec.column_names)})"
        raise ImportRejected(spec.name, [RowError(1, "", reason)], 0, source=source)
    header = core.normalise_header(first)
    return await _import(
        session,
        spec=spec,
        stream=_csv_stream(reader, header),
        settings=settings,
        actor=actor,
        actor_id=actor_id,
        written=frozenset(header) & set(spec.column_names),
        header_errors=core.check_header(spec.name, header),
        source=source,
        on_progress=on_progress,
        position=_bytes_read(text),
    )


def _bytes_read(text: IO[str]) -> Position:
    """How far into the underlying bytes a text stream has read (None when it cannot tell)."""
    # The text layer refuses tell() while a csv reader iterates it; its buffer does not, and is at
    # most one read-ahead chunk (8 KiB) past what the reader has consumed.
    buffer = getattr(text, "buffer", None)

    def position() -> int | None:
        try:
            return int(buffer.tell()) if buffer is not None else None
        except (OSError, ValueError, AttributeError):
            return None

    return position


PathOrStream = str | os.PathLike[str] | IO[str] | IO[bytes]


async def import_csv(
    session: AsyncSession,
    *,
    entity: str,
    path_or_stream: PathOrStream,
    settings: Settings,
    actor: str,
    actor_id: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import one CSV file of `entity` (a path, or a text or binary stream), read lazily, BOM or not.

    `on_progress(rows, bytes_read)` is called once per batch of rows read (bytes_read is None when
    the stream cannot tell its position).
    """
    spec = _get_spec(entity)
    if isinstance(path_or_stream, str | os.PathLike):
        path = Path(path_or_stream)
        # Read lazily, one batch at a time between database round trips; a local file read is short.
        with path.open(encoding="utf-8-sig", newline="") as text:  # noqa: ASYNC230
            return await _import_text(
                session,
                spec=spec,
                text=text,
                settings=settings,
                actor=actor,
                actor_id=actor_id,
                source=path.name,
                on_progress=on_progress,
            )
    source = getattr(path_or_stream, "name", None)
    source = Path(source).name if isinstance(source, str) else None
    if isinstance(path_or_stream.read(0), str):
        return await _import_text(
            session,
            spec=spec,
            text=cast(IO[str], path_or_stream),
            settings=settings,
            actor=actor,
            actor_id=actor_id,
            source=source,
            on_progress=on_progress,
        )
    wrapper = io.TextIOWrapper(cast(IO[bytes], path_or_stream), encoding="utf-8-sig", newline="")
    try:
        return await _import_text(
            session,
            spec=spec,
            text=wrapper,
            settings=settings,
            actor=actor,
            actor_id=actor_id,
            source=source,
            on_progress=on_progress,
        )
    finally:
        wrapper.detach()  # the caller owns the stream: do not close it


async def import_json(
    session: AsyncSession,
    *,
    entity: str,
    path_or_stream: PathOrStream,
    settings: Settings,
    actor: str,
    actor_id: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import one JSON file of `entity`: an array of records (held in memory; use CSV for big files).

    `on_progress(rows, None)` is called once per batch of records read.
    """
    spec = _get_spec(entity)
    source: str | None
    try:
        if isinstance(path_or_stream, str | os.PathLike):
            path = Path(path_or_stream)
            source = path.name
            with path.open("rb") as fh:  # noqa: ASYNC230 - JSON is read whole anyway
                data = json.load(fh, parse_float=Decimal)
        else:
            name = getattr(path_or_stream, "name", None)
            source = Path(name).name if isinstance(name, str) else None
            data = json.load(path_or_stream, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ImportRejected(
            spec.name, [RowError(0, "", f"not valid JSON{where}")], 0, source=source
        ) from None
    if not isinstance(data, list):
        raise ImportRejected(
            spec.name, [RowError(0, "", "expected a JSON array of records")], 0, source=source
        )
    return await import_rows(
        session,
        entity=entity,
        rows=data,
        settings=settings,
        actor=actor,
        actor_id=actor_id,
        source=source,
        on_progress=on_progress,
    )


def data_set_files(folder: Path) -> list[tuple[str, Path]]:
    """The data-set files in `folder`, in load order; refuses unknown or doubled file names."""
    if not folder.is_dir():
        raise ValidationFailed(f"{folder} is not a folder")
    known = {f"{entity}{suffix}" for entity in core.ENTITIES for suffix in (".csv", ".json")}
    unknown = sorted(
        p.name for p in folder.iterdir() if p.suffix.lower() in (".csv", ".json") and p.name not in known
    )
    if unknown:
        raise ValidationFailed(
            f"unknown data-set file(s) in {folder}: {', '.join(unknown)} "
            f"(expected: {', '.join(core.SPECS[e].file_name for e in core.ENTITIES)}, or .json)"
        )
    files: list[tuple[str, Path]] = []
    for entity in core.ENTITIES:
        found = [
            folder / f"{entity}{suffix}"
            for suffix in (".csv", ".json")
            if (folder / f"{entity}{suffix}").is_file()
        ]
        if len(found) > 1:
            raise ValidationFailed(f"{folder} holds both {entity}.csv and {entity}.json: keep one")
        files.extend((entity, path) for path in found)
    if not files:
        raise ValidationFailed(
            f"{folder} holds no data-set file ({', '.join(core.SPECS[e].file_name for e in core.ENTITIES)})"
        )
    return files


async def import_folder(
    session: AsyncSession,
    *,
    folder: Path,
    settings: Settings,
    actor: str,
    actor_id: int | None = None,
) -> list[ImportResult]:
    """Load a data-set folder in DESIGN order, committing file by file; stop at the first rejected file.

    The last result carries the rejected file's errors; the files before it stay committed.
    """
    results: list[ImportResult] = []
    for entity, path in data_set_files(folder):
        load = import_json if path.suffix == ".json" else import_csv
        try:
            result = await load(
                session, entity=entity, path_or_stream=path, settings=settings, actor=actor, actor_id=actor_id
            )
        except ImportRejected as exc:
            await session.rollback()
            results.append(
                ImportResult(
                    entity=entity,
                    rows=exc.rows_seen,
                    created=0,
                    updated=0,
                    errors=exc.errors,
                    error_count=exc.error_count,
                )
            )
            break
        await session.commit()
        results.append(result)
    return results
