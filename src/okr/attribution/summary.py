"""A run's credit summed per fiscal quarter, written with the run, so a quarter's first view reads sums.

The campaigns and compare pages show, for a quarter, a model and a scope: per campaign and per channel
the credit and the deals credited and touched, per currency the deals and their total, and from the
pipeline run who sourced and who influenced them. Aggregating the wide credit rows of a quarter for that
takes 0.5 to 1 s on the enterprise demo; the run already holds every journey in memory while it writes
its rows, so it adds them up as it goes (each worker its own accounts: every group's sums and deal
counts add up across workers, since a deal belongs to one account) and stores some thousands of rows.
The pages read them when the run's quarters follow the organisation's current time zone and fiscal
year (`period_basis`); otherwise they aggregate the credit rows as before (okr.attribution.queries).
"""

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.attribution import STORED_MODELS, attribution_summary
from okr.lib.periods import quarter_of

CAMPAIGN: Final = "campaign"
CHANNEL: Final = "channel"
CURRENCY: Final = "currency"
FIRST: Final = "first"
TEAM: Final = "team"
INFLUENCED: Final = "influenced"
MARKETING: Final = "marketing"

_N: Final = len(STORED_MODELS)
# A credit row as services._credit_rows makes it: 10 leading columns, then (units, amount, base) per model.
_CAMPAIGN_ID, _CHANNEL, _CURRENCY, _MODELS_AT = 4, 5, 9, 10
_BASE_AT: Final = _MODELS_AT + 2
_FIRST_TOUCH_BASE: Final = _BASE_AT + 3 * STORED_MODELS.index("first_touch")

Key = tuple[str, str, int | None, str]
"""(quarter, kind, campaign id, label)"""
Sums = list[int]
"""[deals, priced, amount, base per model..., deals credited per model...]"""


def basis(tz: ZoneInfo, start_month: int) -> str:
    """What a run's quarters depend on: the time zone and the fiscal year's first month."""
    return f"{tz.key}|{start_month}"


def quarter_finder(tz: ZoneInfo, start_month: int) -> Callable[[dt.datetime], str]:
    """The quarter key of an aware instant (as okr.lib.periods.quarter_of_instant), memoised per local day."""
    keys: dict[dt.date, str] = {}

    def find(moment: dt.datetime) -> str:
        day = moment.astimezone(tz).date()
        key = keys.get(day)
        if key is None:
            key = keys[day] = quarter_of(day, start_month).key
        return key

    return find


class Summary:
    """Sums of credit rows per quarter and group, added journey by journey."""

    def __init__(self, quarter_of: Callable[[dt.datetime], str]) -> None:
        self.quarter_of = quarter_of
        self.groups: dict[Key, Sums] = {}

    def _add(
        self, key: Key, whole: int | None, bases: Sequence[int] | None, credited: Sequence[bool]
    ) -> None:
        sums = self.groups.get(key)
        if sums is None:
            sums = self.groups[key] = [0] * (3 + 2 * _N)
        sums[0] += 1
        if whole is not None:
            sums[1] += 1
            sums[2] += whole
        if bases is not None:
            sums[3 : 3 + _N] = map(int.__add__, sums[3 : 3 + _N], bases)
        if credited:
            sums[3 + _N :] = map(int.__add__, sums[3 + _N :], credited)

    def add_journey(
        self, rows: Sequence[tuple[Any, ...]], end: dt.datetime, source: tuple[str, bool] | None = None
    ) -> None:
        """One deal's credit rows; `source` (sourced by, influenced by marketing) for pipeline runs."""
        period = self.quarter_of(end)
        first = rows[0]
        whole = first[_FIRST_TOUCH_BASE]
        self._add((period, CURRENCY, None, first[_CURRENCY]), whole, None, ())
        # Per campaign and per channel: the credit of every step, the deal counted once.
        per_group: dict[tuple[str, int | None, str], tuple[list[int] | None, list[bool]]] = {}
        for row in rows:
            units = row[_MODELS_AT::3]
            bases = row[_BASE_AT::3] if whole is not None else None
            cid, channel = row[_CAMPAIGN_ID], row[_CHANNEL]
            keys = [(CAMPAIGN, cid, channel)]
            if cid is not None:
                keys.append((CHANNEL, None, channel))
            for key in keys:
                found = per_group.get(key)
                if found is None:
                    per_group[key] = (None if bases is None else list(bases), [u > 0 for u in units])
                else:
                    sums, credited = found
                    if sums is not None and bases is not None:
                        sums[:] = map(int.__add__, sums, bases)
                    credited[:] = map(bool.__or__, credited, (u > 0 for u in units))
        for (kind, cid, label), (sums, credited) in per_group.items():
            self._add((period, kind, cid, label), whole, sums, credited)
        if source is not None:
            sourced_by, influenced = source
            self._add((period, FIRST, first[_CAMPAIGN_ID], ""), whole, None, ())
            self._add((period, TEAM, None, sourced_by), whole, None, ())
            if influenced:
                self._add((period, INFLUENCED, None, MARKETING), whole, None, ())

    def merge(self, groups: dict[Key, Sums]) -> None:
        """Add another part's sums (a worker's)."""
        for key, sums in groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = list(sums)
            else:
                mine[:] = map(int.__add__, mine, sums)


_COLUMNS: Final = (
    ["deals", "priced", "amount"]
    + [f"{m}_base" for m in STORED_MODELS]
    + [f"{m}_deals" for m in STORED_MODELS]
)


async def write(session: AsyncSession, run_id: int, groups: dict[Key, Sums]) -> None:
    """Store a run's summary rows; flushes only."""
    rows = [
        {
            "run_id": run_id,
            "period": p,
            "kind": k,
            "campaign_id": c,
            "label": lab,
            **dict(zip(_COLUMNS, s, strict=True)),
        }
        for (p, k, c, lab), s in groups.items()
    ]
    for start in range(0, len(rows), 5_000):
        await session.execute(insert(attribution_summary), rows[start : start + 5_000])


class Group:
    """One stored summary row, read back."""

    __slots__ = ("amount", "base", "campaign_id", "credited", "deals", "kind", "label", "priced")

    def __init__(self, row: Sequence[Any]) -> None:
        self.kind: str = row[0]
        self.campaign_id: int | None = row[1]
        self.label: str = row[2]
        self.deals, self.priced, self.amount = int(row[3]), int(row[4]), int(row[5])
        self.base: dict[str, int] = {m: int(v) for m, v in zip(STORED_MODELS, row[6 : 6 + _N], strict=True)}
        self.credited: dict[str, int] = {m: int(v) for m, v in zip(STORED_MODELS, row[6 + _N :], strict=True)}


async def read(session: AsyncSession, run_id: int, period: str) -> list[Group]:
    """A run's summary rows of one quarter."""
    s = attribution_summary.c
    stmt = select(s.kind, s.campaign_id, s.label, *(s[c] for c in _COLUMNS)).where(
        s.run_id == run_id, s.period == period
    )
    return [Group(row) for row in await session.execute(stmt)]


def of_kind(groups: Iterable[Group], kind: str) -> list[Group]:
    """The groups of one kind."""
    return [g for g in groups if g.kind == kind]
