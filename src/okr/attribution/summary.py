"""A run's credit summed per fiscal quarter, written with the run, so a quarter's first view reads sums.

The campaigns and compare pages show, for a quarter, a model and a scope: per campaign and per channel
the credit and the deals credited and touched, per currency the deals and their total, and from the
pipeline run who sourced and who influenced them. Aggregating the wide credit rows of a quarter for that
takes 0.5 to 1 s on the enterprise demo; the run already holds every journey's rows as arrays, so it
sums them with numpy (`summarise`; each worker its own accounts: every group's sums and deal counts add
up across workers, since a deal belongs to one account) and stores some thousands of rows.
The pages read them when the run's quarters follow the organisation's current time zone and fiscal
year (`period_basis`); otherwise they aggregate the credit rows as before (okr.attribution.queries).
"""

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
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


def _runs(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Sort order of `keys`, and of each distinct key its first place in that order and the key."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(keys) else np.zeros(0, np.int64)
    return order, starts, ordered[starts]


def _sums(keys: NDArray[np.int64], values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct keys and, per key, the column sums of `values` (rows x columns, exact int64)."""
    order, starts, distinct = _runs(keys)
    if not len(keys):
        return distinct, np.zeros((0, values.shape[1]), dtype=np.int64)
    return distinct, np.add.reduceat(values[order], starts, axis=0)


def _coded(values: list[str]) -> tuple[list[str], NDArray[np.int64]]:
    """The distinct values, sorted, and each value's place among them."""
    distinct = sorted(set(values))
    code = {v: k for k, v in enumerate(distinct)}
    return distinct, np.array([code[v] for v in values], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Rows:
    """A run's stored rows as arrays, what the summary needs of them. Per journey: its quarter, currency,
    whether it has a base amount (`priced`) and that amount (`whole`); per row: its journey, campaign
    (-1: the unattributed bucket), channel label, and per model (columns) whether it is credited (weight
    above 0) and its base amount."""

    period: list[str]
    currency: list[str]
    priced: NDArray[np.bool_]
    whole: NDArray[np.int64]
    journey: NDArray[np.int64]
    campaign: NDArray[np.int64]
    channel: list[str]
    credited: NDArray[np.bool_]
    base: NDArray[np.int64]


def summarise(
    rows: Rows, sources: tuple[list[str], list[bool], list[int | None]] | None = None
) -> dict[Key, Sums]:
    """Every group's sums: [deals, priced, amount, base per model..., deals credited per model...].

    `sources` (pipeline runs): per journey who sourced it, whether marketing influenced it, its first
    campaign. A deal counts once per group; a group's base is the sum of its rows' (priced deals only);
    a channel's figures are its campaigns' (the unattributed bucket has no channel group).
    """
    groups: dict[Key, Sums] = {}
    n_models = rows.credited.shape[1]
    priced = rows.priced.astype(np.int64)
    whole = np.where(rows.priced, rows.whole, 0)
    periods = sorted(set(rows.period))
    period = (
        np.array([periods.index(p) for p in rows.period], dtype=np.int64)
        if rows.period
        else np.zeros(0, dtype=np.int64)
    )
    per_deal = np.stack([np.ones(len(priced), dtype=np.int64), priced, whole], axis=1)

    def deal_groups(kind: str, labels: list[str], code: NDArray[np.int64], ids: list[int | None]) -> None:
        """Groups of one kind with one entry per deal: key (quarter, code), label and id per code."""
        keys, sums = _sums(period * len(labels) + code, per_deal)
        for key, row in zip(keys.tolist(), sums.tolist(), strict=True):
            p, c = divmod(key, len(labels))
            groups[(periods[p], kind, ids[c], labels[c])] = [*row, *([0] * (2 * n_models))]

    currencies, currency = _coded(rows.currency)
    deal_groups(CURRENCY, currencies, currency, [None] * len(currencies))
    if sources is not None:
        sourced, influenced, first = sources
        teams, team = _coded(sourced)
        deal_groups(TEAM, teams, team, [None] * len(teams))
        marketing = np.flatnonzero(np.array(influenced, dtype=bool))
        keys, sums = _sums(period[marketing], per_deal[marketing])
        for p, row in zip(keys.tolist(), sums.tolist(), strict=True):
            groups[(periods[p], INFLUENCED, None, MARKETING)] = [*row, *([0] * (2 * n_models))]
        firsts = sorted({-1 if f is None else f for f in first})
        deal_groups(
            FIRST,
            [""] * len(firsts),
            np.searchsorted(firsts, [-1 if f is None else f for f in first]).astype(np.int64),
            [None if f == -1 else f for f in firsts],
        )
    _step_groups(groups, rows, period, periods, per_deal, by_channel=False)
    _step_groups(groups, rows, period, periods, per_deal, by_channel=True)
    return groups


def _step_groups(
    groups: dict[Key, Sums],
    rows: Rows,
    period: NDArray[np.int64],
    periods: list[str],
    per_deal: NDArray[np.int64],
    *,
    by_channel: bool,
) -> None:
    """Campaign groups (the unattributed bucket included) or channel groups (campaign rows only)."""
    journey = rows.journey
    labels, label = _coded(rows.channel)
    if by_channel:
        chosen = np.flatnonzero(rows.campaign >= 0)
        journey, code = journey[chosen], label[chosen]
        width = len(labels)
    else:
        chosen = np.arange(len(journey))
        campaigns, code = np.unique(rows.campaign, return_inverse=True)
        code = code.astype(np.int64)
        width = len(campaigns)
        label_of = np.zeros(width, dtype=np.int64)
        label_of[code] = label  # a campaign has one channel
    if not len(chosen):
        return
    # One entry per deal and group: are the deal's rows in the group credited by each model?
    pair = journey * width + code
    order, starts, pairs = _runs(pair)
    credited = np.maximum.reduceat(rows.credited[chosen][order].astype(np.int64), starts, axis=0)
    deal = pairs // width
    group = period[deal] * width + pairs % width
    keys, deal_sums = _sums(group, np.concatenate([per_deal[deal], credited], axis=1))
    base = np.where(rows.priced[journey][:, None], rows.base[chosen], 0)
    _, base_sums = _sums(period[journey] * width + code, base)
    n = rows.credited.shape[1]
    for key, head, bases in zip(keys.tolist(), deal_sums.tolist(), base_sums.tolist(), strict=True):
        p, c = divmod(key, width)
        if by_channel:
            name, cid = labels[c], None
        else:
            name = labels[int(label_of[c])]
            cid = None if campaigns[c] < 0 else int(campaigns[c])
        groups[(periods[p], CHANNEL if by_channel else CAMPAIGN, cid, name)] = [
            *head[:3],
            *bases,
            *head[3 : 3 + n],
        ]


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
