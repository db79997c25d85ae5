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


class _Index:
    """The non-empty journeys of a `Journeys` (the empty ones have no step); per step its journey, place
    and external id rank within the journey, each computed when first asked for (first and last touch
    need none of them)."""

    def __init__(
        self,
        keep: I64,
        start: I64,
        rank: I64,
        *,
        jid: I64 | None = None,
        pos: I64 | None = None,
        idrank: I64 | None = None,
    ) -> None:
        self.keep = keep  # which journeys of the Journeys these are
        self.start = start  # their CSR offsets (every one non-empty)
        self.n: I64 = np.diff(start)
        self._rank = rank
        self._jid, self._pos, self._idrank = jid, pos, idrank

    @classmethod
    def of(cls, journeys: Journeys) -> "_Index":
        keep = np.flatnonzero(journeys.sizes > 0)
        start = np.append(journeys.start[:-1][keep], journeys.start[-1]).astype(np.int64)
        return cls(keep, start, journeys.rank)

    @property
    def jid(self) -> I64:
        """Per step: its journey (among `keep`)."""
        if self._jid is None:
            self._jid = np.repeat(np.arange(len(self.n), dtype=np.int64), self.n)
        return self._jid

    @property
    def pos(self) -> I64:
        """Per step: its place in the journey, from 0."""
        if self._pos is None:
            self._pos = np.arange(len(self.jid), dtype=np.int64) - self.start[:-1][self.jid]
        return self._pos

    @property
    def idrank(self) -> I64:
        """Per step: its external id's place among the journey's, from 0."""
        if self._idrank is None:
            jid, rank = self.jid, self._rank
            bits = int(rank.max()).bit_length() if len(rank) else 0
            fits = len(jid) == 0 or bits + int(jid[-1]).bit_length() <= 63
            # Keys grouped by journey already: a stable sort (timsort) merges the runs in near-linear time.
            order = np.argsort((jid << bits) | rank, kind="stable") if fits else np.lexsort((rank, jid))
            self._idrank = np.empty(len(order), dtype=np.int64)
            self._idrank[order] = self.pos
        return self._idrank

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
        n, cut = self.n[wanting], left[wanting]
        offsets = np.cumsum(n) - n
        order = _ranked(jid, remainders, idrank)
        if order is not None:
            # One sort key leaves the score out: it decides only between equal remainders, so the
            # order holds unless the remainder of the last step given is shared across the cut by
            # steps of unequal scores. Such journeys are rare; then the whole order is sorted again.
            inside = np.flatnonzero(cut < n)
            last = remainders[order[offsets[inside] + cut[inside] - 1]]
            shared = last == remainders[order[offsets[inside] + cut[inside]]]
            if shared.any():
                journeys = inside[shared]
                group = np.zeros(len(n), dtype=np.int64)
                group[journeys] = last[shared]
                member = np.zeros(len(n), dtype=bool)
                member[journeys] = True
                owner = np.repeat(np.arange(len(n), dtype=np.int64), n)
                in_group = member[owner] & (remainders == group[owner])
                high = np.maximum.reduceat(np.where(in_group, scores, -1), offsets)
                low = np.minimum.reduceat(np.where(in_group, scores, np.iinfo(np.int64).max), offsets)
                if (high[journeys] != low[journeys]).any():
                    order = None
        if order is None:
            order = np.lexsort((idrank, -scores, -remainders, jid))
        # Sorting by journey first keeps the wanting journeys' steps together, in journey order.
        k = np.arange(len(steps), dtype=np.int64) - np.repeat(offsets, n)
        return steps[order[k < np.repeat(cut, n)]]


def _ranked(jid: I64, primary: I64, idrank: I64) -> I64 | None:
    """The order of steps by journey (ascending, as given), larger `primary` (>= 0), smaller external id,
    with one sort of one int64 key; None when the three do not fit in 63 bits."""
    if not len(jid):
        return np.zeros(0, dtype=np.int64)
    jb, pb, ib = (int(v).bit_length() for v in (jid[-1], primary.max(), idrank.max()))
    if jb + pb + ib > 63:
        return None
    key = (jid << (pb + ib)) | ((((1 << pb) - 1) - primary) << ib) | idrank
    # The keys are distinct (external ids are, within a journey) and grouped by journey: the stable sort
    # gives the one order, some four times faster than quicksort here as it merges the runs.
    order: I64 = np.argsort(key, kind="stable")
    return order


# -- Weight units -----------------------------------------------------------------------------------


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
    return _Index(
        ix.keep[chosen], start, ix._rank[steps], jid=jid, pos=ix.pos[steps], idrank=ix.idrank[steps]
    )


def _tolerance(ix: _Index) -> NDArray[np.float64]:
    """Per journey, a bound on the float64 error of 10^10 * score / sum (see _floating)."""
    return 3e-4 + ix.n.astype(np.float64) * 4e-6


def _floating(ix: _Index, value: NDArray[np.float64], score_key: I64) -> tuple[I64, Mask]:
    """Weight units from float scores (each journey's sum above 0), and the journeys where the float result
    may differ from the exact one. `score_key`: equal exactly when the exact scores are equal, and
    smaller for a larger score (the second tie-break).

    Error bound: every score has a relative error under 5e-15 (time decay: exp2, within 4 ulp, of an
    argument whose own error is under 1.1e-16 of it, at most 52 for a score that counts: smaller
    scores are below 10^-13 of the sum and their error with them; data-driven: one rounding), the sum
    adds n roundings of 1.1e-16 and the division and product two more, so 10^10 x score / sum is off by
    less than 1e-4 + n x 1.2e-6: the tolerance is three times that.
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
    # Ordered by the fraction to 2^-30 (one int64 sort key), then external id: the order of the float
    # fractions, but for steps closer than 2^-30, far inside the tolerance band checked below.
    order = _ranked(ix.jid, (frac * 2**30).astype(np.int64), ix.idrank)
    if order is None:
        order = np.lexsort((ix.idrank, score_key, -frac, ix.jid))
    k = np.arange(len(ix.jid), dtype=np.int64) - ix.start[:-1][ix.jid]
    units[order[k < left[ix.jid]]] += 1
    # Around the last fraction given, within twice the tolerance either way, the float order may not be
    # the exact one: steps there with unequal exact scores (unequal `score_key`) make the journey unsure.
    # Steps of equal exact scores have equal floats and tie exactly, decided by external id either way.
    inside = np.flatnonzero((left > 0) & (left < ix.n))
    if len(inside):
        edge = np.zeros(len(ix.n))
        edge[inside] = frac[order[ix.start[inside] + left[inside] - 1]]
        near = np.zeros(len(ix.n), dtype=bool)
        near[inside] = True
        band = near[ix.jid] & (np.abs(frac - edge[ix.jid]) <= 2 * step_tol)
        high = np.maximum.reduceat(np.where(band, score_key, np.iinfo(np.int64).min), ix.start[:-1])
        low = np.minimum.reduceat(np.where(band, score_key, np.iinfo(np.int64).max), ix.start[:-1])
        unsure |= near & (high != low)
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
    if kind is ModelKind.LINEAR:
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
    whole = np.where(same, amount, base)
    results = []
    cache: dict[bytes, ModelCredit] = {}
    for model in models:
        if model.kind is ModelKind.FIRST_TOUCH or model.kind is ModelKind.LAST_TOUCH:
            results.append(_one_touch(ix, amount, whole, last=model.kind is ModelKind.LAST_TOUCH))
            continue
        units = _units(ix, journeys, model, effects)
        key = units.tobytes()
        found = cache.get(key)
        if found is None:
            amounts = _spread(ix, amount, units)
            bases = amounts if same.all() else _spread(ix, whole, units)
            found = cache[key] = ModelCredit(units, amounts, bases)
        results.append(found)
    return results


def _one_touch(ix: _Index, amount: I64, base: I64, *, last: bool) -> ModelCredit:
    """First or last touch: the whole weight and amount on one step of each journey (what the split of
    one weight of 10^10 units gives, without computing it)."""
    steps = ix.start[1:] - 1 if last else ix.start[:-1]
    total = int(ix.start[-1])
    units, amounts, bases = (np.zeros(total, dtype=np.int64) for _ in range(3))
    units[steps] = WEIGHT_UNITS
    amounts[steps] = amount
    bases[steps] = base
    return ModelCredit(units, amounts, bases)


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


START_CODE: Final = -1
CONVERSION_CODE: Final = -2
NULL_CODE: Final = -3


def window_transitions(
    touches: Touches, lo: I64, hi: I64, converted: Mask
) -> tuple[Counter[tuple[int, int]], int, int]:
    """The Markov chain's transition counts over the windows lo:hi (channel codes, consecutive repeats
    collapsed; START_CODE, CONVERSION_CODE, NULL_CODE for the states), the number of paths (non-empty
    windows) and of converted ones: what `core.solve_transitions` takes, counted without a path per
    journey."""
    sizes = hi - lo
    channel = touches.channel[_ranges(lo, hi)]
    if not len(channel):
        return Counter(), 0, 0
    jid = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    starts = np.cumsum(sizes) - sizes
    pos = np.arange(len(channel), dtype=np.int64) - starts[jid]
    keep = (pos == 0) | (channel != np.roll(channel, 1))
    codes, owner = channel[keep], jid[keep]
    # Within a journey, each kept step to the next; then START to each first, each last to its end.
    inner = owner[1:] == owner[:-1]
    pairs = [(codes[:-1][inner], codes[1:][inner])]
    path = sizes > 0
    first = codes[np.r_[True, ~inner]]
    last = codes[np.r_[~inner, True]]
    ends = np.where(converted[path], CONVERSION_CODE, NULL_CODE)
    pairs += [(np.full(len(first), START_CODE), first), (last, ends)]
    width = int(channel.max()) + 4  # codes from -3 up
    counts: Counter[tuple[int, int]] = Counter()
    for a, b in pairs:
        keys, n = np.unique((a + 3) * width + (b + 3), return_counts=True)
        for key, k in zip(keys.tolist(), n.tolist(), strict=True):
            counts[key // width - 3, key % width - 3] += k
    return counts, int(path.sum()), int(converted[path].sum())
