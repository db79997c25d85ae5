"""Attribution (DESIGN 3, 3.1): journeys, roles, model weights, money per touch, people credit, Markov.

Plain data in, plain data out: no database and no web import. Money is split only by
`okr.lib.money.allocate` (DESIGN 6.4), or by `allocate_scaled`, its integer core, straight on the
weight units (the same amounts, without a Decimal round trip); no float is used anywhere.

Conventions this module fixes where DESIGN is silent (each is tested):

- The lookback window is closed at both ends: a touch exactly `lookback_days` x 24 h before the
  scope's end is inside, as in the KPI queries (`occurred_at >= end - 365 days`).
- Weights are Decimals with exactly `WEIGHT_PLACES` (10) decimals that sum to exactly 1: a model's
  exact integer scores (time decay: 2^(-age/half life) in 160-bit fixed point, some 48 digits) are
  turned into 10**10 weight units by the largest-remainder rule of DESIGN 6.4 (ties to the larger
  score, then the smaller touchpoint external id). They fit the
  `Rate` column (Numeric(20, 10)) unchanged, and the money split is `allocate` over those very
  weights, so every stored amount can be recomputed from the stored weights.
- Revenue-scope credit exists only for won opportunities (lost ones carry none, open ones have no
  revenue yet). Rows of weight 0 are not emitted (first/last touch: one row, not n).
- A milestone model whose shares all have nowhere to go (possible only with custom weights, e.g.
  only closed-won in the pipeline scope) splits the journey linearly, as data-driven does when
  every removal effect is 0.
- Markov paths are the revenue-scope journeys of won (-> conversion) and lost (-> null)
  opportunities; a path with no touch carries no channel and is left out.
"""

import bisect
import enum
import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from fractions import Fraction
from typing import Any, Final, NamedTuple, TypeVar

from okr.lib.money import allocate, allocate_scaled, round_half_up

WEIGHT_PLACES: Final = 10
"""Decimals of every weight; the weights of one journey sum to exactly 1 at this scale."""
WEIGHT_UNITS: Final = 10**WEIGHT_PLACES
LOOKBACK_DAYS: Final = 365
HALF_LIFE: Final = timedelta(days=7)
REMOVAL_EFFECT_DIGITS: Final = 28
"""Significant digits of the Decimal removal effects (the exact Fractions are kept alongside)."""

MARKETING: Final = "marketing"
UNATTRIBUTED: Final = "unattributed"
WON: Final = "won"
LOST: Final = "lost"
OPEN: Final = "open"

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
HUNDRED: Final = Decimal(100)

# Time decay: the steps of its tables at 60 significant digits, far beyond the 10 decimals kept.
_DECAY: Final = Context(prec=60, Emax=MAX_EMAX, Emin=MIN_EMIN)
_LN2: Final = _DECAY.ln(Decimal(2))
_RE: Final = Context(prec=REMOVAL_EFFECT_DIGITS)
_EXACT: Final = Context(prec=200)  # overlay: amount x percent, exact for any realistic amount
_W_ZERO: Final = Decimal(0).scaleb(-WEIGHT_PLACES)
_W_ONE: Final = Decimal(WEIGHT_UNITS).scaleb(-WEIGHT_PLACES)
_MICROSECONDS_PER_DAY: Final = 86_400 * 1_000_000
_MICROSECOND: Final = timedelta(microseconds=1)


Stamp = TypeVar("Stamp", bound=Any)


class AttributionError(ValueError):
    """Attribution input that cannot be used as given (the message says what to fix)."""


class Scope(enum.StrEnum):
    """Who created the pipeline (journey up to `created_at`) or who won the revenue (up to `closed_at`)."""

    PIPELINE = "pipeline"
    REVENUE = "revenue"


class Role(enum.StrEnum):
    """The milestone roles of DESIGN 3; one touch may hold several."""

    FIRST = "first"
    LEAD_CREATION = "lead_creation"
    OPPORTUNITY_CREATION = "opportunity_creation"
    CLOSED_WON = "closed_won"


class ModelKind(enum.StrEnum):
    """The attribution model families of DESIGN 3."""

    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    MILESTONE = "milestone"
    DATA_DRIVEN = "data_driven"


# -- Input ------------------------------------------------------------------------------------------


class Touch(NamedTuple):
    """One touchpoint of a lead on the account, with what attribution needs of its campaign and lead.

    `occurred_at` and `lead_created_at` are timezone-aware UTC. `team` is the campaign owner's team
    (`marketing`, `sdr`, `sales`, ...; a campaign without owner is `marketing`). A NamedTuple: a run
    reads a million of them, and a tuple is built five times faster than a frozen dataclass.
    """

    id: int
    external_id: str
    occurred_at: datetime
    campaign_id: int
    channel: str
    team: str
    lead_created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A deal: amount in integer minor units of its currency; status `open`, `won` or `lost`."""

    id: int
    external_id: str
    amount: int
    created_at: datetime
    closed_at: datetime | None
    status: str


class Split(NamedTuple):
    """A person's split on an opportunity: percent of its amount (a plain 3-tuple works too)."""

    person_id: int
    email: str
    percent: Decimal


# -- Models -----------------------------------------------------------------------------------------


_ROLE_LABELS: Final = {
    Role.FIRST: "first-touch",
    Role.LEAD_CREATION: "lead-creation",
    Role.OPPORTUNITY_CREATION: "opportunity-creation",
    Role.CLOSED_WON: "closed-won",
}


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def milestone_weight_problems(
    first: Decimal,
    lead_creation: Decimal,
    opportunity_creation: Decimal,
    closed_won: Decimal,
    middle: Decimal,
) -> list[str]:
    """What is wrong with milestone weights, one sentence each; empty when they can be used."""
    problems: list[str] = []
    named = [
        *zip(_ROLE_LABELS.values(), (first, lead_creation, opportunity_creation, closed_won), strict=True),
        ("middle", middle),
    ]
    for label, value in named:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            problems.append(f"the {label} weight must be a decimal number, got {value!r}")
        elif not Decimal(value).is_finite():
            problems.append(f"the {label} weight must be a finite number, got {value}")
        elif value < 0:
            problems.append(f"the {label} weight must be 0 or more, got {value}")
        elif _decimal_places(Decimal(value)) > WEIGHT_PLACES:
            problems.append(f"the {label} weight may have at most {WEIGHT_PLACES} decimals, got {value}")
    if not problems:
        total = sum((Decimal(v) for _, v in named), ZERO)
        if total != ONE:
            problems.append(f"the weights must add up to 1, they add up to {total}")
    return problems


@dataclass(frozen=True, slots=True)
class MilestoneWeights:
    """A weight per role and the middle share; validated: non-negative, at most 10 decimals, sum 1."""

    first: Decimal
    lead_creation: Decimal
    opportunity_creation: Decimal
    closed_won: Decimal
    middle: Decimal

    def __post_init__(self) -> None:
        problems = milestone_weight_problems(
            self.first, self.lead_creation, self.opportunity_creation, self.closed_won, self.middle
        )
        if problems:
            raise AttributionError("; ".join(problems))

    def by_role(self) -> tuple[tuple[Role, Decimal], ...]:
        """The roles this model has (weight above 0): a role weighing 0 is no role (DESIGN 3)."""
        pairs = (
            (Role.FIRST, self.first),
            (Role.LEAD_CREATION, self.lead_creation),
            (Role.OPPORTUNITY_CREATION, self.opportunity_creation),
            (Role.CLOSED_WON, self.closed_won),
        )
        return tuple((role, Decimal(w)) for role, w in pairs if w > 0)


U_SHAPED: Final = MilestoneWeights(Decimal("0.4"), Decimal("0.4"), ZERO, ZERO, Decimal("0.2"))
W_SHAPED: Final = MilestoneWeights(Decimal("0.3"), Decimal("0.3"), Decimal("0.3"), ZERO, Decimal("0.1"))
FULL_PATH: Final = MilestoneWeights(
    Decimal("0.225"), Decimal("0.225"), Decimal("0.225"), Decimal("0.225"), Decimal("0.1")
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One attribution model: its stored `name`, family, and settings (half life, milestone weights)."""

    name: str
    kind: ModelKind
    half_life: timedelta = HALF_LIFE
    milestone: MilestoneWeights | None = None
    # Milestone weights in integer units of 10^-WEIGHT_PLACES (roles of weight 0 left out).
    _role_units: tuple[tuple[Role, int], ...] = field(default=(), init=False, repr=False, compare=False)
    _middle_units: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind is ModelKind.MILESTONE:
            if self.milestone is None:
                raise AttributionError(f"milestone model {self.name!r} needs its weights")
            units = [(role, int(w.scaleb(WEIGHT_PLACES))) for role, w in self.milestone.by_role()]
            object.__setattr__(self, "_role_units", tuple(units))
            object.__setattr__(
                self, "_middle_units", int(Decimal(self.milestone.middle).scaleb(WEIGHT_PLACES))
            )
        if self.kind is ModelKind.TIME_DECAY and self.half_life <= timedelta(0):
            raise AttributionError(
                f"the half life of {self.name!r} must be longer than 0, got {self.half_life}"
            )

    @classmethod
    def time_decay(cls, half_life: timedelta = HALF_LIFE, *, name: str = "time_decay") -> "ModelSpec":
        """A time-decay model with the given half life (7 days unless set)."""
        return cls(name, ModelKind.TIME_DECAY, half_life=half_life)

    @classmethod
    def custom_milestone(cls, weights: MilestoneWeights, *, name: str = "milestone") -> "ModelSpec":
        """A milestone model with a leader's own weights."""
        return cls(name, ModelKind.MILESTONE, milestone=weights)


PRESETS: Final[Mapping[str, ModelSpec]] = {
    m.name: m
    for m in (
        ModelSpec("first_touch", ModelKind.FIRST_TOUCH),
        ModelSpec("last_touch", ModelKind.LAST_TOUCH),
        ModelSpec("linear", ModelKind.LINEAR),
        ModelSpec.time_decay(),
        ModelSpec("u_shaped", ModelKind.MILESTONE, milestone=U_SHAPED),
        ModelSpec("w_shaped", ModelKind.MILESTONE, milestone=W_SHAPED),
        ModelSpec("full_path", ModelKind.MILESTONE, milestone=FULL_PATH),
        ModelSpec("data_driven", ModelKind.DATA_DRIVEN),
    )
}


def preset(name: str) -> ModelSpec:
    """The preset model of that name; raises AttributionError naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise AttributionError(
            f"unknown attribution model {name!r}; use one of {', '.join(PRESETS)}"
        ) from None


# -- Journey and roles ------------------------------------------------------------------------------


_touch_order: Final = operator.attrgetter("occurred_at", "external_id")


_occurred_at: Final = operator.attrgetter("occurred_at")


def scope_end(opportunity: Opportunity, scope: Scope) -> datetime | None:
    """Where the scope's journey ends: `created_at` (pipeline) or `closed_at` (revenue; None if open)."""
    return opportunity.created_at if scope is Scope.PIPELINE else opportunity.closed_at


def _window(touches: Iterable[Touch], end: datetime, lookback_days: int) -> list[Touch]:
    start = end - timedelta(days=lookback_days)
    selected = [t for t in touches if start <= t.occurred_at <= end]
    selected.sort(key=_touch_order)
    return selected


def journey(
    opportunity: Opportunity,
    account_touches: Iterable[Touch],
    *,
    scope: Scope,
    lookback_days: int = LOOKBACK_DAYS,
) -> list[Touch]:
    """The account's touches in [end - lookback, end] (both inclusive), by time then external id."""
    end = scope_end(opportunity, scope)
    return [] if end is None else _window(account_touches, end, lookback_days)


def account_journey(account_touches: Iterable[Touch], *, lookback_days: int = LOOKBACK_DAYS) -> list[Touch]:
    """The journey of an account without opportunity: its touches in the lookback before its latest one."""
    touches = list(account_touches)
    if not touches:
        return []
    return _window(touches, max(t.occurred_at for t in touches), lookback_days)


def _last_at_or_before(journey: Sequence[Touch], when: datetime) -> int | None:
    i = bisect.bisect_right(journey, when, key=_occurred_at) - 1
    return i if i >= 0 else None


def roles(
    journey: Sequence[Touch],
    *,
    opportunity: Opportunity,
    scope: Scope,
    earliest_lead_created_at: datetime | None = None,
) -> dict[Role, int]:
    """Which journey index holds each role (DESIGN 3); a role no touch holds is absent.

    The earliest lead's creation defaults to the earliest `lead_created_at` among the journey's touches.
    The closed-won role exists only in the revenue scope of a won opportunity.
    """
    if not journey:
        return {}
    held: dict[Role, int] = {Role.FIRST: 0}
    lead_at = earliest_lead_created_at
    if lead_at is None:
        lead_at = min((t.lead_created_at for t in journey if t.lead_created_at is not None), default=None)
    lead_index = None if lead_at is None else _last_at_or_before(journey, lead_at)
    held[Role.LEAD_CREATION] = 0 if lead_index is None else lead_index
    opp_index = _last_at_or_before(journey, opportunity.created_at)
    if opp_index is not None:
        held[Role.OPPORTUNITY_CREATION] = opp_index
    if scope is Scope.REVENUE and opportunity.status == WON and opportunity.closed_at is not None:
        won_index = _last_at_or_before(journey, opportunity.closed_at)
        if won_index is not None:
            held[Role.CLOSED_WON] = won_index
    return held


# -- Weights ----------------------------------------------------------------------------------------


class _Decay:
    """2^(-age/half_life) in fixed point (units of 2^-160) for ages in microseconds, without an exp per touch.

    age = sum d_k * 4096^k, so 2^(-age/h) is the product of table_k[d_k]; table_k is built by repeated
    multiplication from one exp of 60 digits. The absolute error stays below 1e-43, far under the
    1e-10 a weight keeps. Four tables (32,768 integers) cover ages up to 8.9 years; older is rare
    enough to take the general loop.
    """

    BITS: Final = 12
    MASK: Final = (1 << 12) - 1
    SCALE: Final = 160
    FIXED_ONE: Final = 1 << 160
    HALF: Final = 1 << 159

    def __init__(self, half_life_us: int) -> None:
        self._half_life_us = half_life_us
        self._tables: list[list[int]] = []
        self._table(3)
        self._t0, self._t1, self._t2, self._t3 = self._tables

    def _table(self, level: int) -> list[int]:
        while len(self._tables) <= level:
            span = Decimal(1 << (self.BITS * len(self._tables)))
            exponent = _DECAY.divide(_DECAY.multiply(_LN2, span), self._half_life_us)
            step_value = _DECAY.exp(_DECAY.minus(exponent))
            step = int(_DECAY.multiply(step_value, Decimal(self.FIXED_ONE)).to_integral_value())
            table = [self.FIXED_ONE]
            for _ in range(self.MASK):
                table.append((table[-1] * step + self.HALF) >> self.SCALE)
            self._tables.append(table)
        return self._tables[level]

    def factor(self, age_us: int) -> int:
        """round(2^(-age/half_life) * 2^160), to within a few units."""
        if age_us >> 48:
            return self._factor_old(age_us)
        mask, scale, half = self.MASK, self.SCALE, self.HALF
        r = self._t3[age_us >> 36]
        r = (r * self._t2[(age_us >> 24) & mask] + half) >> scale
        r = (r * self._t1[(age_us >> 12) & mask] + half) >> scale
        return (r * self._t0[age_us & mask] + half) >> scale

    def factors(self, ages_us: Sequence[int], origin: int) -> list[int]:
        """[factor(a - origin) for a in ages_us], the same integers, inlined."""
        mask, scale, half = self.MASK, self.SCALE, self.HALF
        t0, t1, t2, t3 = self._t0, self._t1, self._t2, self._t3
        relative = [a - origin for a in ages_us]
        if max(relative) >> 48:
            return [self.factor(a) for a in relative]
        return [
            (
                (
                    (((t3[a >> 36] * t2[(a >> 24) & mask] + half) >> scale) * t1[(a >> 12) & mask] + half)
                    >> scale
                )
                * t0[a & mask]
                + half
            )
            >> scale
            for a in relative
        ]

    def _factor_old(self, age_us: int) -> int:
        result = self.FIXED_ONE
        level = 0
        while age_us and result:
            digit = age_us & self.MASK
            if digit:
                result = (result * self._table(level)[digit] + self.HALF) >> self.SCALE
            age_us >>= self.BITS
            level += 1
        return result


@functools.lru_cache(maxsize=8)
def _decay(half_life_us: int) -> _Decay:
    return _Decay(half_life_us)


def _microseconds(delta: timedelta) -> int:
    return delta.days * _MICROSECONDS_PER_DAY + delta.seconds * 1_000_000 + delta.microseconds


def _one_hot(n: int, index: int) -> list[int]:
    result = [0] * n
    result[index] = WEIGHT_UNITS
    return result


def _as_weights(units: Iterable[int]) -> list[Decimal]:
    """Weight units (integers of 10^-WEIGHT_PLACES) as the Decimals they stand for."""
    return [Decimal(u).scaleb(-WEIGHT_PLACES) if u else _W_ZERO for u in units]


def _linear(external_ids: Sequence[Any]) -> list[int]:
    """_normalise([1] * n): equal remainders and scores, so the units left go to the smallest ids."""
    n = len(external_ids)
    share, left = divmod(WEIGHT_UNITS, n)
    units = [share] * n
    if left:
        for _, i in sorted(zip(external_ids, range(n), strict=True))[:left]:
            units[i] += 1
    return units


def _normalise(scores: Sequence[int], external_ids: Sequence[Any]) -> list[int]:
    """Integer scores (>= 0, not all 0) to weight units (of 10^-WEIGHT_PLACES) that sum to exactly 10^10.

    Each touch gets floor(10^10 * s / S) units; the units left go one each to the largest remainders,
    ties to the larger score, then to the smaller touchpoint external id: DESIGN 6.4's rule, applied
    to weight units (exact integers, like `allocate`, without a Decimal round trip per score).
    """
    total = sum(scores)
    products = [WEIGHT_UNITS * s for s in scores]
    units = [p // total for p in products]
    left = WEIGHT_UNITS - sum(units)
    if left:
        # All remainders share the denominator `total`: compare the numerators.
        order = sorted(
            zip(
                [-(p % total) for p in products],
                [-s for s in scores],
                external_ids,
                range(len(units)),
                strict=True,
            )
        )
        for *_, i in order[:left]:
            units[i] += 1
    return units


def _time_decay(
    half_life: timedelta, journey: Sequence[Touch], end: datetime, external_ids: Sequence[str]
) -> list[int]:
    ages = [(end - t.occurred_at) // _MICROSECOND for t in journey]
    youngest = min(ages)
    if youngest < 0:
        late = journey[ages.index(youngest)]
        raise AttributionError(f"touch {late.external_id} is after the scope's end {end.isoformat()}")
    # Only ratios matter: measure from the youngest touch so its score is exactly 1 (no underflow).
    return _normalise(_decay(_microseconds(half_life)).factors(ages, youngest), external_ids)


def _milestone(model: ModelSpec, external_ids: Sequence[str], held: Mapping[Role, int]) -> list[int]:
    n = len(external_ids)
    role_units = [0] * n
    has_role = [False] * n
    for role, w in model._role_units:
        i = held.get(role)
        if i is not None:  # else the share has nowhere to go: dropped
            role_units[i] += w
            has_role[i] = True
    middle = model._middle_units
    m = n - sum(has_role)
    scores = role_units  # no middle touch, or no middle share: the middle share is dropped
    if m and middle:
        # Each middle touch's share is middle / m: scale the role shares by m to stay in integers.
        scores = [role_units[i] * m if has_role[i] else middle for i in range(n)]
    return _normalise(scores, external_ids) if any(scores) else _linear(external_ids)


def _scaled(values: Sequence[Decimal]) -> list[int]:
    """Non-negative Decimals as integers on one common scale (exact: only the exponent moves)."""
    exponent = 0
    for v in values:
        e = v.as_tuple().exponent
        assert isinstance(e, int)
        exponent = min(exponent, e)
    return [int(v.scaleb(-exponent, _EXACT)) for v in values]


def _data_driven(
    journey: Sequence[Touch], effects: Mapping[str, int], external_ids: Sequence[str]
) -> list[int]:
    scores = [effects.get(t.channel, 0) for t in journey]
    return _normalise(scores, external_ids) if any(scores) else _linear(external_ids)


def _scaled_effects(removal_effects: Mapping[str, Decimal]) -> dict[str, int]:
    channels = list(removal_effects)
    values = [Decimal(removal_effects[c]) for c in channels]
    for c, v in zip(channels, values, strict=True):
        if not v.is_finite() or v < 0:
            raise AttributionError(f"the removal effect of {c!r} must be 0 or more, got {v}")
    return dict(zip(channels, _scaled(values), strict=True))


def _units(
    model: ModelSpec,
    journey: Sequence[Touch],
    held: Mapping[Role, int],
    end: datetime,
    effects: Mapping[str, int] | None,
    external_ids: Sequence[str],
) -> list[int]:
    """Each touch's weight in units of 10^-WEIGHT_PLACES, summing to exactly 10^10 (empty journey: [])."""
    n = len(journey)
    if n == 0:
        return []
    kind = model.kind
    if n == 1 or kind is ModelKind.FIRST_TOUCH:
        return _one_hot(n, 0)
    if kind is ModelKind.LAST_TOUCH:
        return _one_hot(n, n - 1)
    if kind is ModelKind.LINEAR:
        return _linear(external_ids)
    if kind is ModelKind.TIME_DECAY:
        return _time_decay(model.half_life, journey, end, external_ids)
    if kind is ModelKind.MILESTONE:
        return _milestone(model, external_ids, held)
    if effects is None:
        raise AttributionError(f"model {model.name!r} needs the run's removal effects")
    return _data_driven(journey, effects, external_ids)


def _weights(
    model: ModelSpec,
    journey: Sequence[Touch],
    held: Mapping[Role, int],
    end: datetime,
    effects: Mapping[str, int] | None,
) -> list[Decimal]:
    return _as_weights(_units(model, journey, held, end, effects, [t.external_id for t in journey]))


def weights(
    model: ModelSpec,
    journey: Sequence[Touch],
    roles: Mapping[Role, int],
    *,
    scope_end: datetime,
    removal_effects: Mapping[str, Decimal] | None = None,
) -> list[Decimal]:
    """Each touch's weight under `model`, WEIGHT_PLACES decimals, summing to exactly 1 (empty journey: []).

    `roles` comes from `roles()`; `removal_effects` (RE per channel) is needed by data-driven models only,
    a channel missing from it weighs 0.
    """
    effects = None
    if removal_effects is not None and model.kind is ModelKind.DATA_DRIVEN:
        channels = {t.channel for t in journey}
        effects = _scaled_effects({c: v for c, v in removal_effects.items() if c in channels})
    return _weights(model, journey, roles, scope_end, effects)


# -- Money per touch --------------------------------------------------------------------------------


class CreditRow(NamedTuple):
    """One touch's (or the unattributed bucket's) share of an opportunity under one model and scope.

    A NamedTuple rather than a dataclass: a run makes millions of them, and a tuple is built three times
    faster (`row._asdict()` gives the column values).
    """

    opportunity_id: int
    touchpoint_id: int | None
    campaign_id: int | None
    channel: str
    model: str
    scope: Scope
    weight: Decimal
    amount: int


_new_row: Final = tuple.__new__  # CreditRow(...) without its Python-level __new__: the same tuple


def _split(opportunity: Opportunity, journey: Sequence[Touch], weights: Sequence[Decimal]) -> dict[int, int]:
    """Journey index -> amount for the touches of non-zero weight, by `allocate` (ties: external id)."""
    if len(weights) != len(journey):
        raise AttributionError(f"{len(weights)} weights for a journey of {len(journey)} touches")
    # Zero weights would get 0 from `allocate` anyway; leaving them out gives the same split.
    shares = [(i, w) for i, w in enumerate(weights) if w]
    if not shares:
        raise AttributionError("the weights of a journey cannot all be 0")
    return allocate(opportunity.amount, shares, sort_keys=[journey[i].external_id for i, _ in shares])


def _split_units(amount: int, units: Sequence[int], external_ids: Sequence[str]) -> Iterable[tuple[int, int]]:
    """(journey index, amount) for the touches of non-zero weight units: the very split `_split` makes.

    `allocate` over the Decimal weights u_i * 10^-10 brings them to one scale, proportional to u_i; that
    scale cancels out of every share and every comparison, so `allocate_scaled` over the units gives
    the same amounts.
    """
    if len(units) == 1 or 0 not in units:
        # Every touch has weight: no index to pick out.
        if len(units) == 1:
            return [(0, amount)]
        return enumerate(allocate_scaled(amount, units, WEIGHT_UNITS, external_ids))
    index = [i for i, u in enumerate(units) if u]
    if len(index) == 1:
        return [(index[0], amount)]
    if not index:
        raise AttributionError("the weights of a journey cannot all be 0")
    amounts = allocate_scaled(
        amount, [units[i] for i in index], WEIGHT_UNITS, [external_ids[i] for i in index]
    )
    return list(zip(index, amounts, strict=True))


def _rows(
    opportunity: Opportunity,
    journey: Sequence[Touch],
    weights: Sequence[Decimal],
    amounts: Mapping[int, int],
    model_name: str,
    scope: Scope,
) -> list[CreditRow]:
    if not journey:
        return [
            CreditRow(opportunity.id, None, None, UNATTRIBUTED, model_name, scope, _W_ONE, opportunity.amount)
        ]
    rows = []
    for i, amount in amounts.items():
        t = journey[i]
        rows.append(
            CreditRow(opportunity.id, t.id, t.campaign_id, t.channel, model_name, scope, weights[i], amount)
        )
    return rows


def credit(
    opportunity: Opportunity,
    journey: Sequence[Touch],
    weights: Sequence[Decimal],
    *,
    model_name: str,
    scope: Scope,
) -> list[CreditRow]:
    """The amount split over the journey by `allocate` (ties: touch external id); rows of weight 0 omitted.

    No touch: one `unattributed` row with the whole amount. Revenue scope: only won deals carry credit.
    """
    if scope is Scope.REVENUE and opportunity.status != WON:
        return []
    amounts = _split(opportunity, journey, weights) if journey else {}
    return _rows(opportunity, journey, weights, amounts, model_name, scope)


def attribute(
    opportunities: Iterable[tuple[Opportunity, Sequence[Touch]]],
    *,
    models: Sequence[ModelSpec],
    scopes: Sequence[Scope] = (Scope.PIPELINE, Scope.REVENUE),
    removal_effects: Mapping[str, Decimal] | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> Iterator[CreditRow]:
    """Credit rows of every opportunity (given with all its account's touches), model and scope.

    The same rows as `journey` -> `roles` -> `weights` -> `credit`, with the journey and roles built
    once per opportunity and scope.
    """
    effects = None
    if any(m.kind is ModelKind.DATA_DRIVEN for m in models):
        if removal_effects is None:
            raise AttributionError("a data-driven model needs the run's removal effects")
        effects = _scaled_effects(removal_effects)
    weight_of: dict[int, Decimal] = {WEIGHT_UNITS: _W_ONE}  # units -> Decimal weight, shared by rows
    new_row = _new_row
    need_roles = any(m.kind is ModelKind.MILESTONE for m in models)
    for opportunity, account_touches in opportunities:
        for scope in scopes:
            if scope is Scope.REVENUE and opportunity.status != WON:
                continue  # lost deals carry no revenue credit, open ones have no revenue yet
            end = scope_end(opportunity, scope)
            steps = [] if end is None else _window(account_touches, end, lookback_days)
            if end is None or not steps:
                for model in models:
                    yield from _rows(opportunity, steps, [], {}, model.name, scope)
                continue
            opportunity_id = opportunity.id
            amount = opportunity.amount
            if len(steps) == 1:  # a journey of one touch: every model gives it everything
                t = steps[0]
                for model in models:
                    yield new_row(
                        CreditRow,
                        (opportunity_id, t.id, t.campaign_id, t.channel, model.name, scope, _W_ONE, amount),
                    )
                continue
            held = roles(steps, opportunity=opportunity, scope=scope) if need_roles else {}
            external_ids = [t.external_id for t in steps]
            for model in models:
                units = _units(model, steps, held, end, effects, external_ids)
                name = model.name
                rows = []
                for i, share in _split_units(amount, units, external_ids):
                    u = units[i]
                    weight = weight_of.get(u)
                    if weight is None:
                        if len(weight_of) > 100_000:
                            weight_of.clear()
                        weight = weight_of[u] = Decimal(u).scaleb(-WEIGHT_PLACES)
                    t = steps[i]
                    rows.append(
                        new_row(
                            CreditRow,
                            (opportunity_id, t.id, t.campaign_id, t.channel, name, scope, weight, share),
                        )
                    )
                yield from rows


ROLE_BITS: Final = {Role.FIRST: 1, Role.LEAD_CREATION: 2, Role.OPPORTUNITY_CREATION: 4, Role.CLOSED_WON: 8}
"""Each role's bit in a step's role mask (the `roles` column of the stored credit)."""


class JourneyCredit(NamedTuple):
    """One opportunity's journey in one scope with every model's weight and credit per step, side by side.

    The same figures as `attribute`'s CreditRows, laid out per step: `units[m][i]` is step i's weight
    under models[m] in units of 10^-WEIGHT_PLACES (summing to 10^10), `amounts[m][i]` its share of the
    amount and `base[m][i]` its share of `base_amount` (the amount in the organisation's currency), both
    split by the DESIGN 6.4 allocation over the same weights (None when there is no base amount). No
    touch: `steps` is empty and every model's single entry is the whole amount (`unattributed`).
    """

    opportunity: Opportunity
    scope: Scope
    end: datetime
    steps: list[Touch]
    roles: list[int]
    units: list[list[int]]
    amounts: list[list[int]]
    base: list[list[int] | None]


_SHAPES_KEPT: Final = 200_000
"""Journey shapes whose weights `journey_credits` keeps (a few hundred bytes each)."""


def _spread(amount: int, units: list[int], external_ids: Sequence[str]) -> list[int]:
    """`amount` over the weight units by `allocate_scaled`: the very split `_split_units` makes.

    A touch of 0 units gets 0 and never a unit left over (the leftover units, fewer than the touches
    with a remainder, go to remainders above 0 first), so the zeros need not be taken out first.
    """
    if units[0] == WEIGHT_UNITS or units[-1] == WEIGHT_UNITS:  # first or last touch: all to one
        result = [0] * len(units)
        result[0 if units[0] else -1] = amount
        return result
    return allocate_scaled(amount, units, WEIGHT_UNITS, external_ids)


def journey_credits(
    opportunities: Iterable[tuple[Opportunity, Sequence[Touch], int | None]],
    *,
    models: Sequence[ModelSpec],
    scope: Scope,
    removal_effects: Mapping[str, Decimal] | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> Iterator[JourneyCredit]:
    """Every model's credit per journey step for (opportunity, its account's touches, base amount) triples.

    Revenue scope: only won opportunities (lost ones carry no revenue credit, open ones have none yet).
    """
    effects = None
    if any(m.kind is ModelKind.DATA_DRIVEN for m in models):
        if removal_effects is None:
            raise AttributionError("a data-driven model needs the run's removal effects")
        effects = _scaled_effects(removal_effects)
    whole = [WEIGHT_UNITS]
    kinds = [(model.kind, model) for model in models]
    shapes: dict[tuple[object, ...], tuple[list[int], tuple[int, ...]]] = {}
    for opportunity, account_touches, base_amount in opportunities:
        if scope is Scope.REVENUE and opportunity.status != WON:
            continue
        end = scope_end(opportunity, scope)
        if end is None:
            continue
        amount = opportunity.amount
        steps = _window(account_touches, end, lookback_days)
        n = len(steps)
        held = roles(steps, opportunity=opportunity, scope=scope)
        mask = [0] * max(n, 1)
        for role, i in held.items():
            mask[i] |= ROLE_BITS[role]
        if n <= 1:
            # No touch (`unattributed`) or one touch: every model gives the one entry everything.
            base_one = None if base_amount is None else [base_amount]
            k = len(models)
            yield JourneyCredit(
                opportunity, scope, end, steps, mask, [whole] * k, [[amount]] * k, [base_one] * k
            )
            continue
        external_ids = [t.external_id for t in steps]
        # Which step has the k-th smallest external id: all that tie-breaks read of the external ids.
        order = tuple(sorted(range(n), key=external_ids.__getitem__))
        channels: tuple[str, ...] | None = None
        all_units: list[list[int]] = []
        all_amounts: list[list[int]] = []
        all_base: list[list[int] | None] = []
        # Models often agree on a journey (a custom milestone equal to a preset, every touch of one
        # channel): the same weights make the same split, computed once.
        splits: dict[tuple[int, ...], tuple[list[int], list[int] | None]] = {}
        same_base = base_amount == amount
        for m, (kind, model) in enumerate(kinds):
            if kind is ModelKind.FIRST_TOUCH or kind is ModelKind.LAST_TOUCH:
                units = _one_hot(n, 0 if kind is ModelKind.FIRST_TOUCH else n - 1)
                key = tuple(units)
            elif kind is ModelKind.TIME_DECAY:
                units = _time_decay(model.half_life, steps, end, external_ids)
                key = tuple(units)
            else:
                # Linear, milestone and data-driven weights depend only on the journey's shape: its
                # length, who holds which role, its channels, the order of its external ids.
                if kind is ModelKind.LINEAR:
                    shape: tuple[object, ...] = (m, order)
                elif kind is ModelKind.MILESTONE:
                    shape = (m, tuple(mask), order)
                else:
                    if channels is None:
                        channels = tuple([t.channel for t in steps])
                    shape = (m, channels, order)
                cached = shapes.get(shape)
                if cached is None:
                    if len(shapes) >= _SHAPES_KEPT:
                        shapes.clear()
                    units = _units(model, steps, held, end, effects, external_ids)
                    cached = shapes[shape] = (units, tuple(units))
                units, key = cached
            split = splits.get(key)
            if split is None:
                amounts = _spread(amount, units, external_ids)
                if base_amount is None:
                    split = (amounts, None)
                else:
                    split = (amounts, amounts if same_base else _spread(base_amount, units, external_ids))
                splits[key] = split
            all_units.append(units)
            all_amounts.append(split[0])
            all_base.append(split[1])
        yield JourneyCredit(opportunity, scope, end, steps, mask, all_units, all_amounts, all_base)


# -- Sourced and influenced -------------------------------------------------------------------------


def sourced_by(pipeline_journey: Sequence[Touch]) -> str:
    """The team of the first touch's campaign (`marketing`, `sdr`, `sales`, ...), else `unattributed`."""
    return pipeline_journey[0].team if pipeline_journey else UNATTRIBUTED


def influenced_by_marketing(pipeline_journey: Iterable[Touch]) -> bool:
    """Whether any touch of the pipeline-scope journey is on a marketing campaign."""
    return any(t.team == MARKETING for t in pipeline_journey)


# -- People credit ----------------------------------------------------------------------------------


def rep_credit(
    amount: int,
    revenue_splits: Sequence[tuple[int, str, Decimal]],
    overlay_splits: Sequence[tuple[int, str, Decimal]],
    owner: int,
    *,
    count_overlay: bool,
) -> dict[int, int]:
    """Each person's credit: the amount allocated over the revenue splits (none: all to the owner),
    plus amount x overlay percent rounded half up when the plan counts overlay."""
    if revenue_splits:
        total = sum((p for _, _, p in revenue_splits), ZERO)
        if total != HUNDRED:
            raise AttributionError(f"revenue splits add up to {total} %, not 100 %")
        result = allocate(
            amount,
            [(pid, Decimal(p)) for pid, _, p in revenue_splits],
            sort_keys=[e for _, e, _ in revenue_splits],
        )
    else:
        result = {owner: amount}
    if count_overlay:
        for person_id, _, percent in overlay_splits:
            share = round_half_up(_EXACT.multiply(Decimal(amount), Decimal(percent)).scaleb(-2, _EXACT))
            result[person_id] = result.get(person_id, 0) + share
    return result


def marketer_credit(
    credit_rows: Iterable[CreditRow], campaign_owner: Mapping[int, int | None]
) -> dict[int, int]:
    """Each marketer's credit: the attributed amount of the campaigns they own (one model and scope)."""
    result: dict[int, int] = {}
    kind: tuple[str, Scope] | None = None
    for row in credit_rows:
        if kind is None:
            kind = (row.model, row.scope)
        elif kind != (row.model, row.scope):
            raise AttributionError(
                f"credit rows mix {kind[0]}/{kind[1]} and {row.model}/{row.scope}: pass one model and scope"
            )
        if row.campaign_id is None:
            continue
        owner = campaign_owner.get(row.campaign_id)
        if owner is not None:
            result[owner] = result.get(owner, 0) + row.amount
    return result


# -- Data-driven: first-order Markov removal effects (DESIGN 3.1) -----------------------------------


def channel_path(journey: Iterable[Touch]) -> list[str]:
    """The channels of a journey in order, consecutive repeats collapsed into one visit."""
    return _collapse(t.channel for t in journey)


def _collapse(channels: Iterable[str]) -> list[str]:
    path: list[str] = []
    for c in channels:
        if not path or path[-1] != c:
            path.append(c)
    return path


def markov_paths(
    opportunities: Iterable[tuple[Opportunity, Sequence[Touch]]],
    touch_only_accounts: Iterable[Sequence[Touch]] = (),
    *,
    lookback_days: int = LOOKBACK_DAYS,
) -> Iterator[tuple[list[str], bool]]:
    """(channel path, converted) per won or lost opportunity (revenue-scope journey; open ones are left
    out) and per account with touches but no opportunity (its `account_journey`, never converted)."""
    for opportunity, account_touches in opportunities:
        if opportunity.status not in (WON, LOST):
            continue
        steps = journey(opportunity, account_touches, scope=Scope.REVENUE, lookback_days=lookback_days)
        if steps:
            yield channel_path(steps), opportunity.status == WON
    for touches in touch_only_accounts:
        steps = account_journey(touches, lookback_days=lookback_days)
        if steps:
            yield channel_path(steps), False


def account_path(
    points: Sequence[tuple[Stamp, str, str]], *, window_start: Callable[[Stamp], Stamp]
) -> list[str]:
    """`channel_path(account_journey(...))` from bare (occurred_at, external_id, channel) triples.

    For the many accounts without opportunity, whose touches only make a Markov path: no Touch is built
    and `occurred_at` may be any stamp that sorts as time does (a datetime, or the database's UTC
    text); `window_start(latest)` is the first instant of the lookback window before the latest touch.
    """
    if not points:
        return []
    ordered = sorted(points)
    start = window_start(ordered[-1][0])
    return _collapse(c for at, _, c in ordered if at >= start)


@dataclass(frozen=True, slots=True)
class RemovalEffects:
    """The solved chain: P (reach conversion from start), P(-c) and RE(c) = 1 - P(-c)/P, all exact."""

    paths: int
    conversions: int
    probability: Fraction
    without: Mapping[str, Fraction]
    effects: Mapping[str, Fraction]
    transitions: Mapping[tuple[str, str], int]
    """Observed transition counts, with the states START, CONVERSION and NULL named as below."""

    def as_decimals(self) -> dict[str, Decimal]:
        """RE per channel as Decimals of REMOVAL_EFFECT_DIGITS significant digits (round half even)."""
        return {c: _to_decimal(re) for c, re in self.effects.items()}


START: Final = "(start)"
CONVERSION: Final = "(conversion)"
NULL: Final = "(null)"
_STATES: Final = frozenset((START, CONVERSION, NULL))


def _to_decimal(value: Fraction) -> Decimal:
    return _RE.divide(Decimal(value.numerator), Decimal(value.denominator))


def _solve(matrix: list[list[int]], rhs: list[int]) -> list[Fraction]:
    """Solve matrix @ x = rhs exactly, for a non-singular M-matrix (the scaled I - Q of an absorbing chain).

    Fraction-free Gaussian elimination (Bareiss): every division below is exact, so the entries stay
    integers of moderate size; Fractions appear only in the back substitution. The k-th pivot is the
    k-th leading principal minor, positive for such a matrix: no row exchange is ever needed.
    """
    n = len(rhs)
    a = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    previous = 1
    for k in range(n):
        pivot_row = a[k]
        pivot = pivot_row[k]
        for r in range(k + 1, n):
            row = a[r]
            factor = row[k]
            for j in range(k + 1, n + 1):
                row[j] = (row[j] * pivot - factor * pivot_row[j]) // previous
            row[k] = 0
        previous = pivot
    x = [Fraction(0)] * n
    for r in range(n - 1, -1, -1):
        row = a[r]
        total = Fraction(row[n]) - sum((row[j] * x[j] for j in range(r + 1, n) if row[j]), Fraction(0))
        x[r] = total / row[r]
    return x


def solve_removal_effects(paths: Iterable[tuple[Sequence[str], bool]]) -> RemovalEffects:
    """The exact first-order removal effects of DESIGN 3.1 from (channel path, converted) journeys.

    Consecutive repeats are one visit; a path with no channel is left out. Every channel reaches an
    absorbing state along the paths it was seen on, so each system below has a unique solution.
    """
    counted: dict[tuple[tuple[str, ...], bool], int] = {}
    for channels, converted in paths:
        key = (tuple(channels), bool(converted))
        counted[key] = counted.get(key, 0) + 1
    return solve_counted_paths(counted)


def solve_counted_paths(counted: Mapping[tuple[tuple[str, ...], bool], int]) -> RemovalEffects:
    """`solve_removal_effects` of each (channel path, converted) repeated as often as it is counted."""
    counts: dict[tuple[str, str], int] = {}
    n_paths = n_conversions = 0
    for (channels, converted), times in counted.items():
        path = _collapse(channels)
        if not path or times <= 0:
            continue
        if _STATES.intersection(path):
            raise AttributionError(f"a channel may not be named {sorted(_STATES.intersection(path))[0]!r}")
        n_paths += times
        n_conversions += times if converted else 0
        for a, b in zip([START, *path], [*path, CONVERSION if converted else NULL], strict=True):
            counts[a, b] = counts.get((a, b), 0) + times
    return solve_transitions(counts, n_paths, n_conversions)


def solve_transitions(counts: Mapping[tuple[str, str], int], paths: int, conversions: int) -> RemovalEffects:
    """The removal effects from the chain's observed transition counts (states START, CONVERSION and
    NULL by those names; consecutive repeats already collapsed) over `paths` journeys, `conversions` of
    them converted: what `solve_counted_paths` computes once it has counted the transitions."""
    counts = dict(counts)
    n_paths, n_conversions = paths, conversions
    channels_seen = sorted({a for a, _ in counts} - {START})
    out: dict[str, int] = {}
    for (a, _), k in counts.items():
        out[a] = out.get(a, 0) + k

    def reach(removed: str | None) -> Fraction:
        # x_c = P(conversion | at c); row c scaled by out(c): out(c) x_c - sum count(c, d) x_d = count(c, +).
        keep = [c for c in channels_seen if c != removed]
        pos = {c: i for i, c in enumerate(keep)}
        matrix = [[0] * len(keep) for _ in keep]
        rhs = [0] * len(keep)
        for (a, b), k in counts.items():
            if a in (START, removed):
                continue
            i = pos[a]
            if b == CONVERSION:
                rhs[i] += k
            elif b != NULL and b != removed:
                matrix[i][pos[b]] -= k
        for c in keep:
            matrix[pos[c]][pos[c]] += out[c]
        x = _solve(matrix, rhs) if keep else []
        start_total = out.get(START, 0)
        if not start_total:
            return Fraction(0)
        reached = sum((k * x[pos[b]] for (a, b), k in counts.items() if a == START and b in pos), Fraction(0))
        return reached / start_total

    p = reach(None)
    without = {c: reach(c) for c in channels_seen}
    effects = {c: (1 - without[c] / p if p else Fraction(0)) for c in channels_seen}
    return RemovalEffects(n_paths, n_conversions, p, without, effects, counts)


def markov_removal_effects(paths: Iterable[tuple[Sequence[str], bool]]) -> dict[str, Decimal]:
    """RE(channel) as Decimals (REMOVAL_EFFECT_DIGITS significant digits); see solve_removal_effects."""
    return solve_removal_effects(paths).as_decimals()
