"""The bonus projection as plain functions (issue item 6, docs/bonus-projection.md): no database, no web.

A projection is a bonus run (`okr.bonus.engine.compute`) on inputs that count the open deals as won:

- each open deal counts its forecast weight of its amount (`forecast_weight`, the rule of
  `okr.goals.core.pipeline_forecast`: commit and closed in full, best case x probability, pipeline 0),
  rounded half up to the minor unit once per deal (`okr.lib.money.round_half_up`), since each deal
  becomes one integer amount in the run;
- a deal the person ticks in the what-if ("if these deals close") counts its full amount instead;
- the reps' credit on a counted deal comes from its revenue splits (or its owner), and overlay when the
  plan counts it, exactly as for won deals (`okr.attribution.core.rep_credit`); marketers get no credit
  on open deals (their attribution credit exists for won deals only), so a marketer's projection moves
  only with the pool;
- the marketing-sourced pipeline, the joint score and everything else stay as the run reads them today.

`project_inputs` + `engine.compute` is the reference; pages use the one-team fast path below (`prepare`,
`with_changes`, `person_line`), which the unit tests hold equal to it person by person.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Context, Decimal
from typing import Any, Final

from okr.attribution.core import AttributionError, rep_credit
from okr.bonus import core, engine
from okr.goals.core import FORECAST_CATEGORIES
from okr.lib.money import round_half_up

ZERO: Final = Decimal(0)
FULL: Final = Decimal(1)
HUNDRED: Final = Decimal(100)
COUNTED_IN_FULL: Final = ("commit", "closed")
"""The forecast categories an open deal counts in full (okr.goals.core.pipeline_forecast)."""
BEST_CASE: Final = "best_case"
OPEN: Final = "open"
# amount x weight is exact at this precision for any amount okr stores (BigInteger x a percent / 100).
_EXACT: Final = Context(prec=100)


class ProjectionError(ValueError):
    """Data the projection cannot use (the message says what)."""


def forecast_weight(category: str | None, probability_percent: Decimal | None) -> Decimal:
    """The share of an open deal's amount the forecast counts: 1 for commit and closed, the probability
    (a percent, 0 to 100) for best case, 0 for pipeline, no category, or best case without a probability."""
    if category is not None and category not in FORECAST_CATEGORIES:
        raise ProjectionError(f"unknown forecast category {category!r}")
    if category in COUNTED_IN_FULL:
        return FULL
    if category == BEST_CASE and probability_percent is not None:
        if isinstance(probability_percent, bool) or not isinstance(probability_percent, Decimal | int):
            raise ProjectionError("a probability is a Decimal percent")
        if not 0 <= probability_percent <= 100:
            raise ProjectionError("a probability is a percent from 0 to 100")
        return Decimal(probability_percent).scaleb(-2, _EXACT)
    return ZERO


def weighted_amount(amount: int, weight: Decimal) -> int:
    """amount x weight in minor units, exact, rounded half up once."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ProjectionError("amounts are ints of minor units")
    return round_half_up(_EXACT.multiply(Decimal(amount), weight))


Split = tuple[int, str, Decimal]  # (person id, email for the tie-break, percent)


@dataclass(frozen=True, slots=True)
class OpenDeal:
    """An open deal with its amount in minor units of the org currency and its splits."""

    id: int
    external_id: str
    name: str
    amount: int
    category: str
    probability: Decimal | None
    owner_id: int
    revenue: tuple[Split, ...] = ()
    overlay: tuple[Split, ...] = ()

    @property
    def weight(self) -> Decimal:
        """The forecast weight of the deal."""
        return forecast_weight(self.category, self.probability)

    def counted(self, closing: bool) -> int:
        """The amount the projection counts: all of it when it closes in the what-if, else weighted."""
        return self.amount if closing else weighted_amount(self.amount, self.weight)

    def credit(self, amount: int, *, count_overlay: bool) -> dict[int, int]:
        """Each rep's credit on `amount` of this deal (revenue splits, or the owner; overlay if counted)."""
        return rep_credit(amount, self.revenue, self.overlay, self.owner_id, count_overlay=count_overlay)


def deals_of_person(
    deals: Sequence[OpenDeal], *, count_overlay: bool
) -> tuple[dict[int, tuple[int, ...]], tuple[int, ...]]:
    """Whose deals are they: {person id: deal ids} of the people credited on each deal (its revenue splits,
    or its owner; overlay when counted), and the ids of the deals whose splits do not add up to 100 %."""
    mine: dict[int, list[int]] = {}
    broken: list[int] = []
    for deal in deals:
        if deal.revenue and sum((x for _, _, x in deal.revenue), ZERO) != HUNDRED:
            broken.append(deal.id)
            continue
        people = {p for p, _, x in deal.revenue if x} or {deal.owner_id}
        if count_overlay:
            people |= {p for p, _, x in deal.overlay if x}
        for person_id in sorted(people):
            mine.setdefault(person_id, []).append(deal.id)
    return {p: tuple(ids) for p, ids in mine.items()}, tuple(broken)


def project_inputs(
    inputs: Mapping[str, Any], deals: Sequence[OpenDeal], *, closing: Collection[int] = ()
) -> dict[str, Any]:
    """The run inputs with the open deals added as won: each at its weighted amount, or in full when its
    id is in `closing`. Deals that count 0 or whose splits do not add up are left out."""
    count_overlay = bool(inputs["plan"].get("count_overlay"))
    won = [list(w) for w in inputs["won"]]
    credit = [list(c) for c in inputs["credit"]]
    named = dict(inputs["deals"])
    for deal in deals:
        amount = deal.counted(deal.id in closing)
        if amount <= 0:
            continue
        try:
            people = deal.credit(amount, count_overlay=count_overlay)
        except AttributionError:
            continue
        won.append([deal.id, amount])
        credit += [[pid, deal.id, None, share] for pid, share in sorted(people.items()) if share]
        named[str(deal.id)] = [deal.external_id, deal.name, OPEN, None]
    return {
        **inputs,
        "won": sorted(won),
        "credit": sorted(credit, key=lambda c: (c[0], c[1], c[2] or 0)),
        "deals": named,
    }


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One person's figures in engine.compute's results: earning line, total, paid, trace per deal."""

    earning: int
    total: int
    payable: int
    traced: Mapping[int, int]


def person_result(results: Mapping[str, Any], person_id: int) -> RunFigures:
    """The person's figures in a run's results (all 0 when they have no line)."""
    earning = sum(
        int(x["amount"]) for x in results["lines"] if x["person_id"] == person_id and x["kind"] == "earning"
    )
    pay = next((p for p in results["payable"] if p["person_id"] == person_id), None)
    traced: dict[int, int] = {}
    for pid, deal_id, _campaign, _credit, amount in results["traces"]:
        if pid == person_id:
            traced[int(deal_id)] = traced.get(int(deal_id), 0) + int(amount)
    return RunFigures(
        earning=earning,
        total=0 if pay is None else int(pay["total"]),
        payable=0 if pay is None else int(pay["payable"]),
        traced=traced,
    )


# -- One person's line without the whole run -------------------------------------------------------------
#
# engine.compute works out every line and trace of the organisation: about 155 ms for 200 people and
# 5,000 won deals, 1.6 s for 50,000 (docs/bonus-projection.md). A person's line needs only the pool, the
# team pools and their own team's allocation, so `prepare` reads the inputs once (as the engine does),
# `with_changes` moves some deals' amounts, and `person_line` runs okr.bonus.core on one team. The unit
# tests hold it equal to engine.compute's line, total and trace for every person.


Prepared = engine.Prepared


def prepare(inputs: Mapping[str, Any]) -> Prepared:
    """The inputs read as engine.compute reads them (engine.prepare; a plan that cannot run is refused)."""
    try:
        return engine.prepare(inputs)
    except engine.EngineError as error:
        raise ProjectionError(str(error)) from error


Change = tuple[OpenDeal, int, int]  # (deal, amount counted before, amount counted after)


def with_changes(prepared: Prepared, changes: Sequence[Change]) -> Prepared:
    """`prepared` with each deal counted at a new amount (0 before: added), its reps' credit moved with it.
    Deals whose splits do not add up are left as they were."""
    won = prepared.won
    items = dict(prepared.items)
    totals = dict(prepared.totals)
    copied: set[int] = set()
    for deal, before, after in changes:
        if before == after:
            continue
        try:
            old = deal.credit(before, count_overlay=prepared.count_overlay) if before else {}
            new = deal.credit(after, count_overlay=prepared.count_overlay) if after else {}
        except AttributionError:
            continue
        won += after - before
        key = engine.trace_key(deal.id, None)
        for person_id in sorted(old.keys() | new.keys()):
            if person_id not in copied:
                items[person_id] = dict(items.get(person_id, {}))
                copied.add(person_id)
            bucket = items[person_id]
            assert isinstance(bucket, dict)
            delta = new.get(person_id, 0) - old.get(person_id, 0)
            totals[person_id] = totals.get(person_id, 0) + delta
            value = bucket.get(key, 0) + delta
            if value:
                bucket[key] = value
            else:
                bucket.pop(key, None)
    return replace(prepared, won=won, items=items, totals=totals)


def weighted_changes(deals: Sequence[OpenDeal]) -> list[Change]:
    """Every open deal added at its weighted amount."""
    return [(d, 0, d.counted(False)) for d in deals]


def closing_changes(deals: Sequence[OpenDeal], closing: Collection[int]) -> list[Change]:
    """The ticked deals moved from their weighted amount to their full amount."""
    return [(d, d.counted(False), d.amount) for d in deals if d.id in closing]


@dataclass(frozen=True, slots=True)
class PersonLine:
    """One person's figures in a run: their earning line, what is paid, the pool it came from."""

    in_run: bool
    team: str | None
    earning: int
    payable: int
    credit: int
    capped: bool
    traced: Mapping[int, int]  # deal id -> the part of the earning traced to it
    pool: core.PoolResult


def person_line(prepared: Prepared, person_id: int) -> PersonLine:
    """The person's line as engine.compute would give it, working out their team only."""
    plan = prepared.plan
    pool = core.pool(
        plan,
        won_revenue=prepared.won,
        sourced_pipeline=prepared.sourced,
        joint_score=prepared.score,
        carried_forward=prepared.carried,
    )
    team_name = prepared.team_of.get(person_id)
    team = next((t for t in plan.teams if t.name == team_name), None)
    others = prepared.others.get(person_id, 0)
    if team is None:  # not in the plan's teams: only ledger lines (none for most)
        return PersonLine(False, None, 0, max(others, 0), 0, False, {}, pool)
    pools = core.team_pools(plan, pool.pool)
    allocation = core.allocate_team(
        pools[team.name],
        [
            core.Person(
                id=str(m.id),
                email=m.email,
                days_employed=m.days,
                days_in_period=prepared.days_in_period,
                credit=prepared.totals.get(m.id, 0),
                target_bonus=m.target_bonus,
            )
            for m in prepared.members.get(team.name, ())
        ],
        team.rule,
        plan.person_cap,
    )
    line = next(x for x in allocation.lines if x.person_id == str(person_id))
    mine = prepared.items.get(person_id, {})
    traced: dict[int, int] = {}
    if line.amount and any(mine.values()):
        for key, amount in core.trace(line.amount, sorted(mine.items())).items():
            deal_id = int(key.split(":")[0])
            traced[deal_id] = traced.get(deal_id, 0) + amount
    return PersonLine(
        in_run=True,
        team=team.name,
        earning=line.amount,
        payable=max(line.amount + others, 0),
        credit=line.credit,
        capped=line.capped,
        traced=traced,
        pool=pool,
    )


# -- The projection a person sees ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DealLine:
    """One of the person's open deals in the projection."""

    deal: OpenDeal
    weight: Decimal
    closing: bool
    counted: int  # the deal's amount the projection counts
    credit: int  # the person's credit on the counted amount
    part: int  # the part of the person's projected earning traced to this deal


@dataclass(frozen=True, slots=True)
class PersonProjection:
    """A person's projected bonus: won deals so far plus the open pipeline (and the ticked deals)."""

    person_id: int
    in_run: bool
    team: str | None
    earned: int  # paid on won deals only (the run as it would be today)
    projected: int  # with the open deals counted
    joint_score: Decimal
    multiplier: Decimal
    pool: int
    earned_pool: int
    capped: bool
    deals: tuple[DealLine, ...]
    closing: frozenset[int]

    @property
    def pipeline(self) -> int:
        """What the open deals add to (or, rarely, take from) the earned amount."""
        return self.projected - self.earned

    @property
    def closing_total(self) -> int:
        """The full amount of the deals ticked as closing."""
        return sum(d.deal.amount for d in self.deals if d.closing)


def person_projection(
    person_id: int,
    *,
    earned: Prepared,
    projected: Prepared,
    deals: Sequence[OpenDeal],
    closing: Collection[int] = (),
) -> PersonProjection:
    """The person's projection: `earned` is the run as of today, `projected` the same with every open deal
    at its weighted amount; the person's `deals` in `closing` count in full instead."""
    chosen = frozenset(closing) & {d.id for d in deals}
    now = person_line(earned, person_id)
    then = person_line(with_changes(projected, closing_changes(deals, chosen)), person_id)
    return projection_of(
        person_id, now=now, then=then, deals=deals, closing=chosen, count_overlay=projected.count_overlay
    )


def projection_of(
    person_id: int,
    *,
    now: PersonLine,
    then: PersonLine,
    deals: Sequence[OpenDeal],
    closing: frozenset[int],
    count_overlay: bool,
) -> PersonProjection:
    """The projection from the person's line today (`now`) and projected (`then`, `closing` in full)."""
    lines = []
    for deal in deals:
        is_closing = deal.id in closing
        amount = deal.counted(is_closing)
        try:
            credit = deal.credit(amount, count_overlay=count_overlay) if amount else {}
        except AttributionError:
            credit = {}
        lines.append(
            DealLine(
                deal=deal,
                weight=FULL if is_closing else deal.weight,
                closing=is_closing,
                counted=amount,
                credit=credit.get(person_id, 0),
                part=then.traced.get(deal.id, 0),
            )
        )
    return PersonProjection(
        person_id=person_id,
        in_run=then.in_run,
        team=then.team,
        earned=now.payable,
        projected=then.payable,
        joint_score=then.pool.joint_score,
        multiplier=then.pool.multiplier,
        pool=then.pool.pool,
        earned_pool=now.pool.pool,
        capped=then.capped,
        deals=tuple(lines),
        closing=closing,
    )
