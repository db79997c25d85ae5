"""Attribution over a whole run's journeys at once (numpy): the very integers of `okr.attribution.core`.

`core` is the specification: one journey at a time, in plain Python integers, every rule spelled out.
A run has 50,000 journeys and 300,000 steps, and computing them one by one in the interpreter takes
seconds; this module computes the same integers with numpy array operations over all journeys side by
side, so the per-touch loops run in compiled code that comes as a wheel (no compiler needed).

Every result is the core's, bit for bit (tests/unit/attribution/test_vector.py checks it against
`core.journey_credits` on random journeys with ties, equal times, one channel, odd weights and huge
amounts):

- First and last touch, linear, milestone and the money split are exact integer arithmetic in int64
  (the split goes through a high/low decomposition, exact for amounts up to MAX_AMOUNT minor units;
  larger or negative amounts, and custom milestone weights too fine for int64, take the core's own
  functions journey by journey).
- Time decay and data-driven weights are ratios of irrational or 28-digit numbers. They are computed in
  float64 with a proven error bound, and a journey is recomputed with the core's exact integers
  whenever the bound leaves any doubt: a weight's floor within the bound of an integer, or the last
  unit handed out between two remainders closer than twice the bound. On the enterprise demo well
  under 1 % of journeys take that path.

Journeys are given in CSR form: journey j's steps are `start[j]:start[j + 1]`, in the core's order
(time, then touchpoint external id); times are integer microseconds; a step's `rank` is any integer
that orders the touchpoint external ids as strings do (unique per touch).
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from okr.attribution import core
from okr.attribution.core import ROLE_BITS, WEIGHT_UNITS, ModelKind, ModelSpec, Role
from okr.lib.money import allocate_scaled

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]

US_PER_DAY: Final = 86_400_000_000
NO_TIME: Final = int(np.iinfo(np.int64).max)
"""A missing time (a lead without creation time, an opportunity not closed)."""
MAX_AMOUNT: Final = 9 * 10**13
"""Amounts (minor units) split in int64; larger ones go through `allocate_scaled`."""
_INT64_SAFE: Final = 9 * 10**8
"""Largest milestone score whose product with WEIGHT_UNITS fits in int64."""
_SPLIT: Final = 10**5
_Exact = Callable[[list[int], list[int]], list[int]]


# -- Journeys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Journeys:
    """Journeys of one scope side by side. Per journey: its scope's end, amount and base amount
    (`priced` False: no base-currency amount). Per step: time, channel code, external id rank, roles."""

    start: I64
    end: I64
    amount: I64
    base: I64
    priced: Mask
    at: I64
    channel: I64
    rank: I64
    roles: I64

    @property
    def sizes(self) -> I64:
        """Steps per journey."""
        return np.diff(self.start)


@dataclass(frozen=True, slots=True)
class _Index:
    """The non-empty journeys of a `Journeys` (the empty ones have no step) and per step its journey."""

    keep: I64  # which journeys of the Journeys these are
    start: I64  # their CSR offsets (every one non-empty)
    n: I64
    jid: I64  # per step: its journey among `keep`
    pos: I64  # per step: its place in the journey
    idrank: I64  # per step: its external id's place among the journey's, from 0

    @classmethod
    def of(cls, journeys: Journeys) -> "_Index":
        sizes = journeys.sizes
        keep = np.flatnonzero(sizes > 0)
        total = int(journeys.start[-1])
        start = np.append(journeys.start[:-1][keep], total).astype(np.int64)
        n = np.diff(start)
        jid = np.repeat(np.arange(len(n), dtype=np.int64), n)
        pos = np.arange(total, dtype=np.int64) - start[:-1][jid]
        order = np.lexsort((journeys.rank, jid))
        idrank = np.empty(total, dtype=np.int64)
        idrank[order] = pos
        return cls(keep, start, n, jid, pos, idrank)

    def sum(self, values: NDArray[Any]) -> NDArray[Any]:
        """Per journey, the sum of its steps' values."""
        if not len(self.n):
            return np.zeros(0, dtype=values.dtype)
        return np.add.reduceat(values, self.start[:-1])

    def award(self, left: I64, remainders: I64, scores: I64) -> I64:
        """The steps that get one unit left over: per journey the first `left` by larger remainder, then
        larger score, then smaller external id (DESIGN 6.4's order)."""
        wanting = left > 0
        if not wanting.any():
            return np.zeros(0, dtype=np.int64)
        steps = np.flatnonzero(wanting[self.jid])
        jid, remainders, scores = self.jid[steps], remainders[steps], scores[steps]
        idrank = self.idrank[steps]
        if remainders.max() < 2**34 and scores.max() < 2**34 and idrank.max() < 2**20 and jid.max() < 2**29:
            # Two sort keys of 63 bits instead of four: (journey, -remainder) and (-score, external id).
            first = (jid << 34) | (2**34 - 1 - remainders)
            second = ((2**34 - 1 - scores) << 20) | idrank
            order = np.lexsort((second, first))
        else:
            order = np.lexsort((idrank, -scores, -remainders, jid))
        # Sorting by journey first keeps the wanting journeys' steps together, in journey order.
        n = self.n[wanting]
        offsets = np.cumsum(n) - n
        k = np.arange(len(steps), dtype=np.int64) - np.repeat(offsets, n)
        return steps[order[k < np.repeat(left[wanting], n)]]


# -- Weight units -----------------------------------------------------------------------------------


def _one_hot(ix: _Index, last: bool) -> I64:
    target = ix.n[ix.jid] - 1 if last else 0
    return np.where(ix.pos == target, WEIGHT_UNITS, 0).astype(np.int64)


def _linear(ix: _Index) -> I64:
    share, left = np.divmod(WEIGHT_UNITS, ix.n)
    return share[ix.jid] + (ix.idrank < left[ix.jid])


def _normalise(ix: _Index, scores: I64) -> I64:
    """core._normalise for every journey (each sum above 0; every score below _INT64_SAFE)."""
    total = ix.sum(scores)[ix.jid]
    products = scores * WEIGHT_UNITS
    units, remainders = np.divmod(products, total)
    left = WEIGHT_UNITS - ix.sum(units)
    units[ix.award(left, remainders, scores)] += 1
    return units


def _milestone(ix: _Index, roles: I64, model: ModelSpec) -> I64:
    shares = [units for _, units in model._role_units]
    middle = model._middle_units
    # Dividing every share by their gcd changes no ratio, remainder order or tie: the units are the same.
    g = math.gcd(*shares, middle) or 1
    role_units = np.zeros(len(roles), dtype=np.int64)
    has_role = np.zeros(len(roles), dtype=bool)
    for role, units in model._role_units:
        held = (roles & ROLE_BITS[role]) != 0
        role_units += held * (units // g)
        has_role |= held
    m = ix.n - ix.sum(has_role.astype(np.int64))
    use_middle = (m > 0) & (middle > 0)
    scores = np.where(use_middle[ix.jid], np.where(has_role, role_units * m[ix.jid], middle // g), role_units)
    return _normalise_or_linear(ix, scores, exact=core._normalise)


def _normalise_or_linear(ix: _Index, scores: I64, *, exact: _Exact) -> I64:
    """Normalised scores; a journey whose scores are all 0 splits linearly (as the core does); scores too
    large for int64 arithmetic go to `exact` (the core's own function) journey by journey."""
    units = _linear(ix)
    zero = ix.sum(scores) == 0
    big = ix.sum((scores >= _INT64_SAFE).astype(np.int64)) > 0
    fast = ~zero & ~big
    if fast.all():
        return _normalise(ix, scores)
    sub = _subset(ix, fast)
    steps = np.flatnonzero(fast[ix.jid])
    units[steps] = _normalise(sub, scores[steps])
    for j in np.flatnonzero(big & ~zero):
        a, b = int(ix.start[j]), int(ix.start[j + 1])
        units[a:b] = exact(scores[a:b].tolist(), ix.idrank[a:b].tolist())
    return units


def _subset(ix: _Index, chosen: Mask) -> _Index:
    """The journeys of `ix` where `chosen`, as an index of their own (steps renumbered from 0)."""
    n = ix.n[chosen]
    start = np.append(0, np.cumsum(n)).astype(np.int64)
    jid = np.repeat(np.arange(len(n), dtype=np.int64), n)
    steps = chosen[ix.jid]
    return _Index(ix.keep[chosen], start, n, jid, ix.pos[steps], ix.idrank[steps])


def _tolerance(ix: _Index) -> NDArray[np.float64]:
    """Per journey, a bound on the float64 error of 10^10 * score / sum (see _floating)."""
    return 1e-3 + ix.n.astype(np.float64) * 1e-5


def _floating(ix: _Index, value: NDArray[np.float64], score_key: I64) -> tuple[I64, Mask]:
    """Weight units from float scores (each journey's sum above 0), and the journeys where the float result
    may differ from the exact one. `score_key`: equal exactly when the exact scores are equal, and
    smaller for a larger score (the second tie-break).

    Error bound: every score has a relative error under 5e-15 (time decay: exp2 of an argument whose
    own error is under 1e-16 of it, at most 52 for a score that counts; data-driven: one rounding), the
    sum adds n roundings, so 10^10 x score / sum is off by less than 1e-4 + n x 1.2e-6: the tolerance
    is ten times that.
    """
    total = ix.sum(value)
    x = value / total[ix.jid] * WEIGHT_UNITS
    floor = np.floor(x)
    frac = x - floor
    units = floor.astype(np.int64)
    left = WEIGHT_UNITS - ix.sum(units)
    tol = _tolerance(ix)
    step_tol = tol[ix.jid]
    unsure_step = (frac > 1 - step_tol) | ((frac < step_tol) & (floor >= 1))
    unsure = ix.sum(unsure_step.astype(np.int64)) > 0
    unsure |= (left < 0) | (left >= ix.n)
    order = np.lexsort((ix.idrank, score_key, -frac, ix.jid))
    k = np.arange(len(ix.jid), dtype=np.int64) - ix.start[:-1][ix.jid]
    units[order[k < left[ix.jid]]] += 1
    # The last unit handed out and the first one not: too close to tell apart means unsure.
    inside = np.flatnonzero((left > 0) & (left < ix.n))
    given = order[ix.start[inside] + left[inside] - 1]
    missed = order[ix.start[inside] + left[inside]]
    close = (frac[given] - frac[missed] < 2 * tol[inside]) & (score_key[given] != score_key[missed])
    unsure[inside[close]] = True
    return units, unsure


def _time_decay(ix: _Index, journeys: Journeys, model: ModelSpec) -> I64:
    end = journeys.end[ix.keep]
    age = end[ix.jid] - journeys.at
    if len(age) and age.min() < 0:
        late = int(np.argmin(age))
        raise core.AttributionError(f"a touch at step {int(ix.pos[late])} is after the scope's end")
    youngest = np.minimum.reduceat(age, ix.start[:-1]) if len(age) else age
    relative = age - youngest[ix.jid]
    half_life = core._microseconds(model.half_life)
    value = np.exp2(-(relative / half_life))
    units, unsure = _floating(ix, value, relative)
    if unsure.any():
        decay = core._decay(half_life)
        for j in np.flatnonzero(unsure):
            a, b = int(ix.start[j]), int(ix.start[j + 1])
            ages = age[a:b].tolist()
            scores = decay.factors(ages, min(ages))
            units[a:b] = core._normalise(scores, ix.idrank[a:b].tolist())
    return units


def _data_driven(ix: _Index, journeys: Journeys, effects: Sequence[int]) -> I64:
    """`effects`: per channel code, its removal effect scaled to an integer (core._scaled_effects)."""
    exact = np.array(effects, dtype=object)
    value = np.array([float(e) for e in effects], dtype=np.float64)
    distinct = sorted(set(effects), reverse=True)
    key = np.array([distinct.index(e) for e in effects], dtype=np.int64)  # 0: the largest
    value_steps = value[journeys.channel] if len(effects) else np.zeros(0)
    key_steps = key[journeys.channel] if len(effects) else np.zeros(0, dtype=np.int64)
    units = _linear(ix)
    scored = ix.sum(value_steps) > 0
    if not scored.any():
        return units
    sub = _subset(ix, scored)
    steps = np.flatnonzero(scored[ix.jid])
    sub_units, unsure = _floating(sub, value_steps[steps], key_steps[steps])
    units[steps] = sub_units
    for j in np.flatnonzero(scored)[unsure]:
        a, b = int(ix.start[j]), int(ix.start[j + 1])
        scores = exact[journeys.channel[a:b]].tolist()
        units[a:b] = core._normalise(scores, ix.idrank[a:b].tolist())
    return units


def _units(ix: _Index, journeys: Journeys, model: ModelSpec, effects: Sequence[int] | None) -> I64:
    kind = model.kind
    if kind is ModelKind.FIRST_TOUCH or kind is ModelKind.LAST_TOUCH:
        units = _one_hot(ix, kind is ModelKind.LAST_TOUCH)
    elif kind is ModelKind.LINEAR:
        units = _linear(ix)
    elif kind is ModelKind.TIME_DECAY:
        units = _time_decay(ix, journeys, model)
    elif kind is ModelKind.MILESTONE:
        units = _milestone(ix, journeys.roles, model)
    else:
        if effects is None:
            raise core.AttributionError(f"model {model.name!r} needs the run's removal effects")
        units = _data_driven(ix, journeys, effects)
    # A journey of one touch: every model gives it everything (the core's special case).
    units[ix.n[ix.jid] == 1] = WEIGHT_UNITS
    return units


# -- Money ------------------------------------------------------------------------------------------


def _spread(ix: _Index, amount: I64, units: I64) -> I64:
    """Each journey's amount over its steps' weight units: `allocate_scaled`, the core's split."""
    fast = (amount >= 0) & (amount <= MAX_AMOUNT)
    a = np.where(fast, amount, 0)[ix.jid]
    high, low = np.divmod(a, _SPLIT)
    # a x u = (high x u) x 10^5 + low x u, with high x u = q1 x 10^5 + r1: every product fits in int64.
    q1, r1 = np.divmod(high * units, _SPLIT)
    q2, remainders = np.divmod(r1 * _SPLIT + low * units, WEIGHT_UNITS)
    shares = q1 + q2
    left = np.where(fast, amount, 0) - ix.sum(shares)
    shares[ix.award(left, remainders, units)] += 1
    for j in np.flatnonzero(~fast):
        lo, hi = int(ix.start[j]), int(ix.start[j + 1])
        shares[lo:hi] = allocate_scaled(
            int(amount[j]), units[lo:hi].tolist(), WEIGHT_UNITS, ix.idrank[lo:hi].tolist()
        )
    return shares


@dataclass(frozen=True, slots=True)
class ModelCredit:
    """One model's result per step: weight units, amount (minor units), base amount (valid where the
    journey is priced)."""

    units: I64
    amount: I64
    base: I64


def credit(
    journeys: Journeys, models: Sequence[ModelSpec], effects: Sequence[int] | None = None
) -> list[ModelCredit]:
    """Every model's weight units and split per step, as `core.journey_credits` gives them.

    `effects`: per channel code, the scaled removal effect (`scaled_effects`), for data-driven models.
    Journeys without steps get nothing here: the caller gives them the `unattributed` entry.
    """
    ix = _Index.of(journeys)
    amount = journeys.amount[ix.keep]
    base = np.where(journeys.priced, journeys.base, 0)[ix.keep]
    same = (base == amount) | ~journeys.priced[ix.keep]
    results = []
    cache: dict[bytes, ModelCredit] = {}
    for model in models:
        units = _units(ix, journeys, model, effects)
        key = units.tobytes()
        found = cache.get(key)
        if found is None:
            amounts = _spread(ix, amount, units)
            bases = amounts if same.all() else _spread(ix, np.where(same, amount, base), units)
            found = cache[key] = ModelCredit(units, amounts, bases)
        results.append(found)
    return results


def scaled_effects(removal: Mapping[str, Decimal], channels: Sequence[str]) -> list[int]:
    """Per channel code (the order of `channels`), the removal effect as the core scales it; 0 if absent."""
    scaled = core._scaled_effects(removal)
    return [scaled.get(c, 0) for c in channels]


# -- Building journeys from touches -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Touches:
    """Touches sorted by account, time, external id rank; `lead_at` is NO_TIME where unknown."""

    account: I64
    at: I64
    rank: I64
    channel: I64
    lead_at: I64


def sort_order(account: I64, at: I64, rank: I64) -> I64:
    """The permutation that sorts touches by account, then time, then external id."""
    return np.lexsort((rank, at, account))


def _ranges(lo: I64, hi: I64) -> I64:
    """The concatenation of the integer ranges lo[k]:hi[k]."""
    sizes = hi - lo
    total = int(sizes.sum())
    offsets = np.cumsum(sizes) - sizes
    ranges: I64 = np.arange(total, dtype=np.int64) - np.repeat(offsets - lo, sizes)
    return ranges


def windows(touches: Touches, account: I64, first: I64, end: I64) -> tuple[I64, I64]:
    """For each window: the touches of `account` with first <= at <= end, as the range lo:hi."""
    a0 = np.searchsorted(touches.account, account, side="left").astype(np.int64)
    a1 = np.searchsorted(touches.account, account, side="right").astype(np.int64)
    sizes = a1 - a0
    pairs = _ranges(a0, a1)
    owner = np.repeat(np.arange(len(account), dtype=np.int64), sizes)
    at = touches.at[pairs]
    before = np.bincount(owner[at < first[owner]], minlength=len(account))
    upto = np.bincount(owner[at <= end[owner]], minlength=len(account))
    return a0 + before, a0 + upto


def journeys(
    touches: Touches,
    *,
    account: I64,
    end: I64,
    created: I64,
    closed_won: I64,
    amount: I64,
    base: I64,
    priced: Mask,
    lookback_days: int,
) -> tuple[Journeys, I64]:
    """The journeys of the given deals (one scope: `end` is created_at or closed_at) and, per step, the
    touch it is. `closed_won`: where the closed-won role applies (revenue scope, won), the close time,
    else NO_TIME. Roles as `core.roles`."""
    lo, hi = windows(touches, account, end - lookback_days * US_PER_DAY, end)
    steps = _ranges(lo, hi)
    start = np.append(0, np.cumsum(hi - lo)).astype(np.int64)
    at = touches.at[steps]
    result = Journeys(
        start=start,
        end=end,
        amount=amount,
        base=base,
        priced=priced,
        at=at,
        channel=touches.channel[steps],
        rank=touches.rank[steps],
        roles=np.zeros(len(steps), dtype=np.int64),
    )
    ix = _Index.of(result)
    if not len(steps):
        return result, steps
    roles = result.roles
    first = ix.start[:-1]
    roles[first] |= ROLE_BITS[Role.FIRST]

    def last_at_or_before(when: I64) -> I64:
        """Per journey, the index of its last step at or before `when` (-1 when none)."""
        count = ix.sum((at <= when[ix.jid]).astype(np.int64))
        last: I64 = first + count - 1
        return last

    lead_at = np.minimum.reduceat(touches.lead_at[steps], first)
    lead = last_at_or_before(lead_at)
    lead = np.where((lead_at == NO_TIME) | (lead < first), first, lead)
    roles[lead] |= ROLE_BITS[Role.LEAD_CREATION]
    opportunity = last_at_or_before(created[ix.keep])
    held = opportunity >= first
    roles[opportunity[held]] |= ROLE_BITS[Role.OPPORTUNITY_CREATION]
    won_at = closed_won[ix.keep]
    won = last_at_or_before(won_at)
    held = (won_at != NO_TIME) & (won >= first)
    roles[won[held]] |= ROLE_BITS[Role.CLOSED_WON]
    return result, steps


def window_paths(
    touches: Touches, lo: I64, hi: I64, converted: Mask
) -> Counter[tuple[tuple[int, ...], bool]]:
    """The Markov paths (channel codes, consecutive repeats collapsed) of the windows lo:hi, counted with
    whether each converted; an empty window makes no path."""
    sizes = hi - lo
    channel = touches.channel[_ranges(lo, hi)]
    if not len(channel):
        return Counter()
    jid = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    pos = np.arange(len(channel), dtype=np.int64) - (np.cumsum(sizes) - sizes)[jid]
    keep = (pos == 0) | (channel != np.roll(channel, 1))
    codes = channel[keep].tolist()
    bounds = np.searchsorted(jid[keep], np.arange(len(sizes) + 1)).tolist()
    flags = converted.tolist()
    counts: Counter[tuple[tuple[int, ...], bool]] = Counter()
    for j in range(len(sizes)):
        a, b = bounds[j], bounds[j + 1]
        if a < b:
            counts[tuple(codes[a:b]), flags[j]] += 1
    return counts
