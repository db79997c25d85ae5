"""Joint bonus (DESIGN 6): plan checks, gate curve, joint score, pool, team pools, people lines, traces.

Plain data in, plain data out: no database and no web import, and no float. Amounts are integer minor
units of one currency (the services convert first); rates, scores and multipliers are Decimals. The
arithmetic runs on exact Fractions; every split goes through `okr.lib.money`'s largest-remainder
allocation (DESIGN 6.4), and the pool is rounded half up once (`round_half_up`), nowhere else.

Conventions this module fixes where DESIGN 6 is silent (each is tested):

- Plan: rates >= 0; the team shares are each >= 0 and sum to exactly 1; team names are unique and
  non-empty; the gate curve has at least one point, its scores and multipliers are >= 0, sorted by
  score with non-decreasing multipliers, and at most two points share a score (a step). `pool_cap`,
  when given, is a positive number of minor units; `kr_cap` > 0; the person cap is either an absolute
  positive number of minor units or a positive multiple of the target bonus (exactly one of them);
  the clawback window is a whole number of days >= 0.
- Joint score: each attainment is floored at 0 and capped at `kr_cap`; the weighted mean is 0 when
  there is no KR or no weight. It is returned as a Decimal of 28 significant digits (exact when it
  fits); `pool` computes the multiplier exactly from the score it is given.
- Gate multiplier: an exact Fraction internally; `gate_multiplier` returns it as a 28-digit Decimal
  (exact for any curve whose segments divide evenly). The pool uses the exact Fraction, so the one
  rounding of DESIGN 6.2 is the only one.
- Pool: the cap applies before the carried-forward amount is added (DESIGN 6.2 as written). The
  `formula` shows minor units; the statement page formats them in the currency.
- People: proration = days employed / days in the period, clamped to [0, 1]. It scales the `equal`
  weight, the target bonus (for `by_target_bonus` and for a cap given as a multiple of it); credit is
  not prorated, and an absolute cap is not prorated either.
- A person's cap is taken in whole minor units, rounded down (a cap of 1/3 of a unit is 0), so that no
  line ever exceeds it after the largest-remainder split.
- Cap rounds: each round shares what is left (team pool - caps of those already held) over the
  uncapped members pro rata to their weights; everyone whose share now exceeds the cap is held at it;
  repeat until nobody new is held. What is left when every member with weight is held, or when the
  team has no weight at all (no credit for `by_credit`), is the team's `leftover`; the services apply
  the plan's leftover policy to it.
- The people split breaks ties on the person's email, then their id (DESIGN 6.4's stable ids); team
  pools break ties on the team name.
- A team pool and a person's weight inputs must be >= 0; a reversal is a negative trace: `trace`
  of a negative line is the negation of the trace of the positive line. A line that is not 0 needs
  some credit to be traced over; a line from `equal` or `by_target_bonus` without deals has no trace.
"""

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Final

from okr.goals.core import DEFAULT_KR_CAP
from okr.lib.money import allocate, allocate_scaled, round_half_up

ZERO: Final = Decimal(0)

# Display of exact Fractions: 28 significant digits, exact when it fits.
_CTX: Final = Context(prec=28)
# Truncation toward 0 with ample digits keeps which side of a half an exact Fraction falls on, so
# round_half_up of the truncated value is round-half-up of the exact value.
_TRUNC: Final = Context(prec=100, rounding=ROUND_DOWN)


class BonusError(ValueError):
    """Input the bonus computation cannot use (a programming or data error, not a form problem)."""


class AllocationRule(enum.StrEnum):
    """How a team pool is split over its people (DESIGN 6.1)."""

    BY_CREDIT = "by_credit"
    EQUAL = "equal"
    BY_TARGET_BONUS = "by_target_bonus"


class LeftoverPolicy(enum.StrEnum):
    """What happens to what nobody can take (DESIGN 6.1)."""

    CARRY_FORWARD = "carry_forward"
    RETURN = "return"


@dataclass(frozen=True, slots=True)
class TeamPlan:
    """One team's share of the pool and how its pool is split over its people."""

    name: str
    share: Decimal
    rule: str = AllocationRule.BY_CREDIT


@dataclass(frozen=True, slots=True)
class Cap:
    """A per-person cap: an absolute amount in minor units, or a multiple of the (prorated) target bonus."""

    amount: int | None = None
    multiple: Decimal | None = None

    def describe(self) -> str:
        """The cap in words, for the statement."""
        if self.amount is not None:
            return f"at most {self.amount} minor units per person"
        return f"at most {self.multiple} x the person's prorated target bonus"


@dataclass(frozen=True, slots=True)
class Plan:
    """One version of a period's bonus plan (DESIGN 6.1); the attribution settings live with the services."""

    funding_rate: Decimal
    gate_curve: tuple[tuple[Decimal, Decimal], ...]
    teams: tuple[TeamPlan, ...]
    pipeline_rate: Decimal = ZERO
    pool_cap: int | None = None
    kr_cap: Decimal = DEFAULT_KR_CAP
    person_cap: Cap | None = None
    leftover_policy: str = LeftoverPolicy.CARRY_FORWARD
    clawback_days: int = 0


# ---------------------------------------------------------------------------------------------------
# Exact arithmetic helpers


def _fr(value: Decimal | int, name: str) -> Fraction:
    """An exact Fraction of a Decimal or int; refuses float, bool and NaN / infinity."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise BonusError(f"{name} must be a Decimal or an int, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise BonusError(f"{name} must be a finite number, got {value}")
    return Fraction(value)


def _int(value: int, name: str) -> int:
    """An int (not bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BonusError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _dec(value: Fraction) -> Decimal:
    """A Fraction as a Decimal of 28 significant digits."""
    return _CTX.divide(Decimal(value.numerator), Decimal(value.denominator))


def _round(value: Fraction) -> int:
    """An exact Fraction of minor units rounded half up (away from 0 at .5), through lib.money."""
    return round_half_up(_TRUNC.divide(Decimal(value.numerator), Decimal(value.denominator)))


def _is_number(value: object) -> bool:
    """A finite Decimal or int (not bool, not float)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return False
    return not isinstance(value, Decimal) or value.is_finite()


def _is_int(value: object) -> bool:
    """An int (not bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------------
# 1. Plan validation (field name -> reason, for the form to show beside each field)


def _check_curve(problems: dict[str, str], curve: object) -> None:
    """Gate curve: points (score, multiplier) >= 0, sorted by score, multipliers non-decreasing."""
    if not isinstance(curve, Sequence) or not curve:
        problems["gate_curve"] = "Give the gate curve at least one point (joint score, multiplier)."
        return
    points: list[tuple[Decimal, Decimal]] = []
    for point in curve:
        if not (isinstance(point, Sequence) and len(point) == 2 and all(_is_number(v) for v in point)):
            problems["gate_curve"] = "Each point is a pair of numbers: a joint score and a multiplier."
            return
        points.append((point[0], point[1]))
    if any(s < 0 or m < 0 for s, m in points):
        problems["gate_curve"] = "Scores and multipliers cannot be negative."
    elif any(b[0] < a[0] for a, b in pairwise(points)):
        problems["gate_curve"] = "Sort the points by joint score, lowest first."
    elif any(b[1] < a[1] for a, b in pairwise(points)):
        problems["gate_curve"] = "A multiplier cannot go down as the joint score goes up."
    elif any(a[0] == c[0] for a, c in zip(points, points[2:], strict=False)):
        problems["gate_curve"] = "At most two points can share a score (a step)."


def _check_teams(problems: dict[str, str], teams: object) -> None:
    """Teams: unique names, shares >= 0 summing to exactly 1, a known allocation rule each."""
    if not isinstance(teams, Sequence) or not teams:
        problems["teams"] = "Give at least one team its share of the pool."
        return
    names: set[str] = set()
    total = Fraction(0)
    shares_ok = True
    for i, team in enumerate(teams):
        if not isinstance(team, TeamPlan):
            problems[f"teams[{i}]"] = "Each team needs a name, a share and an allocation rule."
            shares_ok = False
            continue
        name = team.name.strip() if isinstance(team.name, str) else ""
        if not name:
            problems[f"teams[{i}].name"] = "Name the team."
        elif name in names:
            problems[f"teams[{i}].name"] = f"The team {name!r} is listed twice."
        names.add(name)
        if not _is_number(team.share):
            problems[f"teams[{i}].share"] = "Enter the team's share as a decimal number (0.6 for 60 %)."
            shares_ok = False
        elif team.share < 0:
            problems[f"teams[{i}].share"] = "A share cannot be negative."
            shares_ok = False
        else:
            total += Fraction(team.share)
        if team.rule not in tuple(AllocationRule):
            problems[f"teams[{i}].rule"] = "Choose by_credit, equal or by_target_bonus."
    if shares_ok and total != 1:
        problems["teams"] = f"The team shares must add up to exactly 1 (they add up to {_dec(total)})."


def _check_cap(problems: dict[str, str], cap: object) -> None:
    """Person cap: none, or exactly one of a positive absolute amount / a positive multiple."""
    if cap is None:
        return
    if not isinstance(cap, Cap) or (cap.amount is None) == (cap.multiple is None):
        problems["person_cap"] = "Give the cap either as an amount or as a multiple of the target bonus."
    elif cap.amount is not None and not (_is_int(cap.amount) and cap.amount > 0):
        problems["person_cap"] = "The cap must be a positive amount in minor units."
    elif cap.multiple is not None and not (_is_number(cap.multiple) and cap.multiple > 0):
        problems["person_cap"] = "The cap must be a positive multiple of the target bonus."


def plan_problems(plan: Plan) -> dict[str, str]:
    """What is wrong with a plan, field by field (empty when it can be run)."""
    problems: dict[str, str] = {}
    for name in ("funding_rate", "pipeline_rate"):
        rate = getattr(plan, name)
        if not _is_number(rate):
            problems[name] = "Enter the rate as a decimal number (0.03 for 3 %)."
        elif rate < 0:
            problems[name] = "A rate cannot be negative."
    if plan.pool_cap is not None and not (_is_int(plan.pool_cap) and plan.pool_cap > 0):
        problems["pool_cap"] = "The pool cap must be a positive amount in minor units, or none."
    if not _is_number(plan.kr_cap) or plan.kr_cap <= 0:
        problems["kr_cap"] = "The KR cap must be a number above 0 (1.5 counts a KR up to 150 %)."
    _check_curve(problems, plan.gate_curve)
    _check_teams(problems, plan.teams)
    _check_cap(problems, plan.person_cap)
    if plan.leftover_policy not in tuple(LeftoverPolicy):
        problems["leftover_policy"] = "Choose carry_forward or return."
    if not _is_int(plan.clawback_days) or plan.clawback_days < 0:
        problems["clawback_days"] = "The clawback window is a whole number of days, 0 or more."
    return problems


def _require_valid(plan: Plan) -> None:
    """Raise BonusError naming the first problem of an invalid plan."""
    problems = plan_problems(plan)
    if problems:
        field, reason = next(iter(problems.items()))
        raise BonusError(f"invalid plan: {field}: {reason}")


# ---------------------------------------------------------------------------------------------------
# 2. Gate curve and joint score


def _gate(curve: Sequence[tuple[Decimal, Decimal]], score: Fraction) -> Fraction:
    """The exact multiplier of DESIGN 6.1 at `score` on a sorted curve."""
    points = [(_fr(s, "curve score"), _fr(m, "curve multiplier")) for s, m in curve]
    if not points:
        raise BonusError("the gate curve has no point")
    # The last point at or below the score: at a step that is the second (higher) point.
    at = -1
    for i, (s, _) in enumerate(points):
        if s <= score:
            at = i
    if at < 0:
        return Fraction(0)
    if at == len(points) - 1:
        return points[at][1]
    (s0, m0), (s1, m1) = points[at], points[at + 1]
    return m0 + (m1 - m0) * (score - s0) / (s1 - s0)


def gate_multiplier(curve: Sequence[tuple[Decimal, Decimal]], score: Decimal) -> Decimal:
    """Multiplier at `score`: 0 below the first point, linear between, higher at a step, last beyond."""
    return _dec(_gate(curve, _fr(score, "score")))


def _joint(krs: Sequence[tuple[Decimal, Decimal]], kr_cap: Decimal) -> Fraction:
    """Exact weighted mean of capped attainments; 0 with no KR or no weight."""
    cap = _fr(kr_cap, "kr_cap")
    if cap < 0:
        raise BonusError("the KR cap cannot be negative")
    total = weighted = Fraction(0)
    for attainment, weight in krs:
        w = _fr(weight, "weight")
        if w < 0:
            raise BonusError("a key result's weight cannot be negative")
        total += w
        weighted += w * min(max(_fr(attainment, "attainment"), Fraction(0)), cap)
    return weighted / total if total else Fraction(0)


def joint_score(krs: Sequence[tuple[Decimal, Decimal]], kr_cap: Decimal = DEFAULT_KR_CAP) -> Decimal:
    """Weighted mean of (attainment, weight) of the bonus KRs, each in [0, kr_cap]; 0 with no KR."""
    return _dec(_joint(krs, kr_cap))


# ---------------------------------------------------------------------------------------------------
# 3. Pool


@dataclass(frozen=True, slots=True)
class PoolResult:
    """The pool and every figure on the way to it, for the statement."""

    joint_score: Decimal
    multiplier: Decimal
    won_revenue: int
    sourced_pipeline: int
    funding_rate: Decimal
    pipeline_rate: Decimal
    funded: Decimal  # funding_rate x won + pipeline_rate x sourced, exact
    exact: Decimal  # multiplier x funded, before rounding (28 digits)
    rounded: int  # R(exact)
    pool_cap: int | None
    capped: bool
    carried_forward: int
    pool: int
    formula: str


def pool(
    plan: Plan, *, won_revenue: int, sourced_pipeline: int, joint_score: Decimal, carried_forward: int = 0
) -> PoolResult:
    """min(pool_cap, R(multiplier x (funding_rate x won + pipeline_rate x sourced))) + carried forward."""
    _require_valid(plan)
    won = _int(won_revenue, "won_revenue")
    sourced = _int(sourced_pipeline, "sourced_pipeline")
    carried = _int(carried_forward, "carried_forward")
    multiplier = _gate(plan.gate_curve, _fr(joint_score, "joint_score"))
    funded = Fraction(plan.funding_rate) * won + Fraction(plan.pipeline_rate) * sourced
    exact = multiplier * funded
    rounded = _round(exact)
    capped = plan.pool_cap is not None and rounded > plan.pool_cap
    after_cap = plan.pool_cap if plan.pool_cap is not None and capped else rounded
    total = after_cap + carried
    mult, fund, ex = _dec(multiplier), _dec(funded), _dec(exact)
    inner = f"{mult} × ({plan.funding_rate} × {won} + {plan.pipeline_rate} × {sourced})"
    if plan.pool_cap is None:
        formula = (
            f"pool = R({inner}) + {carried} = R({mult} × {fund}) + {carried} = R({ex}) + {carried}"
            f" = {rounded} + {carried} = {total}"
        )
    else:
        cap = plan.pool_cap
        formula = (
            f"pool = min({cap}, R({inner})) + {carried} = min({cap}, R({mult} × {fund})) + {carried}"
            f" = min({cap}, R({ex})) + {carried} = min({cap}, {rounded}) + {carried} = {total}"
        )
    return PoolResult(
        joint_score=joint_score,
        multiplier=mult,
        won_revenue=won,
        sourced_pipeline=sourced,
        funding_rate=plan.funding_rate,
        pipeline_rate=plan.pipeline_rate,
        funded=fund,
        exact=ex,
        rounded=rounded,
        pool_cap=plan.pool_cap,
        capped=capped,
        carried_forward=carried,
        pool=total,
        formula=formula,
    )


# ---------------------------------------------------------------------------------------------------
# 4. Team pools


def team_pools(plan: Plan, pool_amount: int) -> dict[str, int]:
    """The pool split over the team shares by DESIGN 6.4 (ties to the smaller team name)."""
    _require_valid(plan)
    return allocate(_int(pool_amount, "pool"), [(t.name, t.share) for t in plan.teams])


# ---------------------------------------------------------------------------------------------------
# 5. People


@dataclass(frozen=True, slots=True)
class Person:
    """A team member as the split sees them: credit and target bonus in minor units, days for proration."""

    id: str
    email: str
    days_employed: int
    days_in_period: int
    credit: int = 0
    target_bonus: int = 0


@dataclass(frozen=True, slots=True)
class Line:
    """One person's share of a team pool."""

    person_id: str
    email: str
    credit: int
    proration: Decimal  # days employed / days in period, in [0, 1]
    weight: Decimal  # credit, prorated 1, or prorated target bonus, by the rule
    share: Decimal  # exact share of the team pool, after caps, as a fraction of it (28 digits)
    exact: Decimal  # exact amount before the split into whole units (28 digits)
    cap: int | None  # whole minor units, rounded down
    capped: bool
    amount: int


@dataclass(frozen=True, slots=True)
class TeamAllocation:
    """A team pool split over its people; lines sum to team_pool - leftover."""

    team_pool: int
    rule: str
    lines: tuple[Line, ...]
    leftover: int
    cap_rounds: int
    rule_text: str


_RULE_TEXT: Final[Mapping[str, str]] = {
    AllocationRule.BY_CREDIT: "in proportion to each person's credit on the period's deals",
    AllocationRule.EQUAL: "in equal parts, each prorated by days employed in the period",
    AllocationRule.BY_TARGET_BONUS: "in proportion to each person's target bonus, prorated by days employed",
}


def _proration(person: Person) -> Fraction:
    """days employed / days in period, clamped to [0, 1]."""
    days = _int(person.days_in_period, "days_in_period")
    if days <= 0:
        raise BonusError(f"days in period must be positive for {person.id}")
    return min(max(Fraction(_int(person.days_employed, "days_employed"), days), Fraction(0)), Fraction(1))


def _weight(person: Person, rule: str, proration: Fraction) -> Fraction:
    """The person's weight under the rule."""
    if rule == AllocationRule.BY_CREDIT:
        return Fraction(person.credit)
    if rule == AllocationRule.EQUAL:
        return proration
    if rule == AllocationRule.BY_TARGET_BONUS:
        return person.target_bonus * proration
    raise BonusError(f"unknown allocation rule {rule!r}")


def _cap_of(person: Person, cap: Cap | None, proration: Fraction) -> int | None:
    """The person's cap in whole minor units (rounded down), or None."""
    if cap is None:
        return None
    if cap.amount is not None:
        return _int(cap.amount, "cap amount")
    if cap.multiple is None:
        raise BonusError("a cap needs an amount or a multiple")
    return math.floor(_fr(cap.multiple, "cap multiple") * person.target_bonus * proration)


def _shares(
    amount: int, weights: Sequence[Fraction], caps: Sequence[int | None]
) -> tuple[list[Fraction], set[int], Fraction, int]:
    """Exact shares after cap rounds, who is held at the cap, what nobody can take, and the rounds."""
    held: set[int] = set()
    rounds = 0
    while True:
        rounds += 1
        remaining = amount - sum((Fraction(caps[i] or 0) for i in held), Fraction(0))
        free = [i for i in range(len(weights)) if i not in held]
        free_weight = sum((weights[i] for i in free), Fraction(0))
        shares = [Fraction(0)] * len(weights)
        for i in held:
            shares[i] = Fraction(caps[i] or 0)
        if free_weight == 0:
            return shares, held, remaining, rounds
        newly: set[int] = set()
        for i in free:
            shares[i] = remaining * weights[i] / free_weight
            c = caps[i]
            if c is not None and shares[i] > c:
                newly.add(i)
        if not newly:
            return shares, held, Fraction(0), rounds
        held |= newly


def allocate_team(
    team_pool: int, people: Sequence[Person], rule: str, cap: Cap | None = None
) -> TeamAllocation:
    """Split a team pool over its people by the rule, caps worked out on exact shares, then DESIGN 6.4."""
    amount = _int(team_pool, "team_pool")
    if amount < 0:
        raise BonusError("a team pool cannot be negative (reversals are traced, not allocated)")
    if rule not in tuple(AllocationRule):
        raise BonusError(f"unknown allocation rule {rule!r}")
    ids = [p.id for p in people]
    if len(set(ids)) != len(ids):
        raise BonusError("a person is listed twice in the team")
    prorations: list[Fraction] = []
    weights: list[Fraction] = []
    caps: list[int | None] = []
    for p in people:
        if _int(p.credit, "credit") < 0 or _int(p.target_bonus, "target_bonus") < 0:
            raise BonusError(f"credit and target bonus cannot be negative ({p.id})")
        pr = _proration(p)
        prorations.append(pr)
        weights.append(_weight(p, rule, pr))
        caps.append(_cap_of(p, cap, pr))
    shares, held, nobody, rounds = _shares(amount, weights, caps)
    # Everyone's cap is whole, so what nobody can take is whole too.
    leftover = int(nobody)
    distributable = amount - leftover
    if distributable:
        common = math.lcm(*(s.denominator for s in shares))
        scaled = [s.numerator * (common // s.denominator) for s in shares]
        amounts = allocate_scaled(
            distributable, scaled, sum(scaled), [f"{p.email}\x00{p.id}" for p in people]
        )
    else:
        amounts = [0] * len(people)
    lines = tuple(
        Line(
            person_id=p.id,
            email=p.email,
            credit=p.credit,
            proration=_dec(pr),
            weight=_dec(w),
            share=_dec(s / amount) if amount else ZERO,
            exact=_dec(s),
            cap=c,
            capped=i in held,
            amount=a,
        )
        for i, (p, pr, w, s, c, a) in enumerate(
            zip(people, prorations, weights, shares, caps, amounts, strict=True)
        )
    )
    text = f"The team pool is split {_RULE_TEXT[rule]}"
    if cap is not None:
        text += f"; {cap.describe()}, the excess going to the others pro rata"
    return TeamAllocation(
        team_pool=amount,
        rule=str(rule),
        lines=lines,
        leftover=leftover,
        cap_rounds=rounds,
        rule_text=text + ".",
    )


# ---------------------------------------------------------------------------------------------------
# 6. Trace


def trace(line_amount: int, deals: Sequence[tuple[str, int]]) -> dict[str, int]:
    """A person's line split over the deals their credit came from, summing exactly to the line."""
    amount = _int(line_amount, "line_amount")
    for _, credit in deals:
        if _int(credit, "credit") < 0:
            raise BonusError("a deal's credit cannot be negative")
    if amount and not any(credit for _, credit in deals):
        raise BonusError("a line that is not 0 needs some credit to be traced over")
    return allocate(amount, [(deal_id, Decimal(credit)) for deal_id, credit in deals])
