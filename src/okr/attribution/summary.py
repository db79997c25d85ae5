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
import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, cast
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
_FOLD_EVERY: Final = 20_000
_NONE: Final = b""
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
    """Sums of credit rows per quarter and group, added journey by journey; `groups` gives them.

    Written for speed (a pipeline run adds 300,000 steps): a deal is counted once per group under the
    bit mask of the models that credit it (a Counter of (group, mask)), and each campaign's base amounts
    are kept as the steps' tuples and summed column by column every _FOLD_EVERY steps.
    """

    def __init__(self, quarter_of: Callable[[dt.datetime], str]) -> None:
        self.quarter_of = quarter_of
        self._deals: Counter[tuple[str, str, int | None, str, bytes]] = Counter()
        self._priced: Counter[Key] = Counter()
        self._amount: Counter[Key] = Counter()
        self._steps: defaultdict[Key, list[tuple[int, ...]]] = defaultdict(list)
        self._bases: dict[Key, list[int]] = {}
        self._pending = 0

    def add_journey(
        self, rows: Sequence[tuple[Any, ...]], end: dt.datetime, source: tuple[str, bool] | None = None
    ) -> None:
        """One deal's credit rows; `source` (sourced by, influenced by marketing) for pipeline runs."""
        period = self.quarter_of(end)
        first = rows[0]
        whole = first[_FIRST_TOUCH_BASE]
        # Per campaign and per channel: the deal once, with the models that credit any of its steps there.
        groups: dict[Key, bytes] = {(period, CURRENCY, None, first[_CURRENCY]): _NONE}
        steps = self._steps if whole is not None else None
        get = groups.get
        for row in rows:
            # The models crediting the step: one byte each, 1 when its weight is above 0.
            mask = bytes(map(bool, row[_MODELS_AT::3]))
            key = (period, CAMPAIGN, row[_CAMPAIGN_ID], row[_CHANNEL])
            seen = get(key)
            groups[key] = mask if seen is None or seen == mask else bytes(map(operator.or_, seen, mask))
            if steps is not None:
                steps[key].append(row[_BASE_AT::3])
            if key[2] is not None:
                key = (period, CHANNEL, None, key[3])
                seen = get(key)
                groups[key] = mask if seen is None or seen == mask else bytes(map(operator.or_, seen, mask))
        if source is not None:
            groups[(period, FIRST, first[_CAMPAIGN_ID], "")] = _NONE
            groups[(period, TEAM, None, source[0])] = _NONE
            if source[1]:
                groups[(period, INFLUENCED, None, MARKETING)] = _NONE
        self._deals.update([(*key, mask) for key, mask in groups.items()])
        if whole is not None:
            self._priced.update(groups.keys())
            amount = self._amount
            for key in groups:
                amount[key] += whole
        self._pending += len(rows)
        if self._pending >= _FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        for key, tuples in self._steps.items():
            column_sums = [sum(column) for column in zip(*tuples, strict=True)]
            kept = self._bases.get(key)
            self._bases[key] = column_sums if kept is None else list(map(int.__add__, kept, column_sums))
        self._steps.clear()
        self._pending = 0

    @property
    def groups(self) -> dict[Key, Sums]:
        """Every group's sums: [deals, priced, amount, base per model..., deals credited per model...]."""
        self._fold()
        groups: dict[Key, Sums] = {}
        for (*head, mask), n in self._deals.items():
            key = cast(Key, tuple(head))
            sums = groups.get(key)
            if sums is None:
                sums = groups[key] = [0, self._priced[key], self._amount[key]] + [0] * (2 * _N)
                base = self._bases.get(key)
                if base is not None:
                    sums[3 : 3 + _N] = base
            sums[0] += n
            for k, credited in enumerate(mask):
                if credited:
                    sums[3 + _N + k] += n
        # A channel's credit is its campaigns' credit (a campaign has one channel in a run).
        for (period, kind, cid, label), sums in list(groups.items()):
            if kind == CAMPAIGN and cid is not None:
                channel = groups[(period, CHANNEL, None, label)]
                channel[3 : 3 + _N] = map(int.__add__, channel[3 : 3 + _N], sums[3 : 3 + _N])
        return groups


def add_groups(total: dict[Key, Sums], groups: dict[Key, Sums]) -> None:
    """Add one part's `Summary.groups` (a worker's) into `total`."""
    for key, sums in groups.items():
        mine = total.get(key)
        if mine is None:
            total[key] = list(sums)
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
