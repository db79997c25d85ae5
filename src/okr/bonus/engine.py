"""A bonus run as one pure function: the inputs a run read (plain JSON data) in, its results out.

`compute(inputs)` is what a run stores and what a re-run repeats: it uses only the inputs, so the same
inputs give byte-identical results (`canonical` + `checksum`). Every figure goes through `okr.bonus.core`
(pool, team pools, people lines with caps and proration, traces), so every split is DESIGN 6.4's.

The inputs (every amount an int of minor units of `currency`, every rate a decimal string):

- `period`: key, start, end (ISO dates, inclusive), days; `currency`; `as_of` (ISO instant).
- `plan`: the plan version (okr.bonus.plans.plan_inputs).
- `key_results`: [{id, title, weight, attainment}] of the KRs that count toward the bonus.
- `won`: [[opportunity_id, amount]] the period's won deals in the org currency; `sourced`: the same for
  the marketing-sourced pipeline created in the period; `unpriced`: deals left out for want of a rate.
- `deals`: {opportunity_id: [external_id, name, closed_on]} of every deal named below.
- `carried_forward`: {amount, from_run_id}: the previous period's leftover, when its plan carried it.
- `people`: [{id, email, name, team, employee_id, start, end, target_bonus}] employed in the period.
- `credit`: [[person_id, opportunity_id, campaign_id or null, amount]]: reps' credit (revenue splits,
  overlay when the plan counts it) with a null campaign; marketers' (campaigns they own) with one.
- `adjustments`: [{entry_id, person_id, amount, reason}] waiting in the ledger.
- `reversals`: [{opportunity_id, closed_on, reversed_on, window_days, source_run_id,
  traced: [[person_id, amount]]}] deals paid in a locked run and lost since.
- `balances`: [[person_id, amount]] negative balances carried from earlier runs (amount < 0).

Decisions where DESIGN 6 is silent (docs/bonus.md):

- A person earns from their own team's pool only; credit of people outside the plan's teams is ignored.
- A clawback applies when (reversed_on - closed_on) is at most the window of the plan that paid the deal.
- A person's total for the run is earning + adjustments + clawbacks + balance carried in. A negative
  total pays 0 and its amount is carried to the person's next run (a `carry_forward` line there).
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from okr.bonus import core

ENGINE_VERSION: Final = 1
"""Stored with each run's inputs; bump when the results of the same inputs change."""


class EngineError(ValueError):
    """Inputs the engine cannot use (the message says what)."""


def canonical(data: Any) -> bytes:
    """The one byte form of JSON data: sorted keys, no spaces, UTF-8. Floats are refused."""

    def no_float(value: Any) -> Any:
        raise EngineError(f"no float in bonus data ({value!r})")

    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=no_float, allow_nan=False
    ).encode()


def checksum(data: Any) -> str:
    """sha256 of the canonical form, hex."""
    return hashlib.sha256(canonical(data)).hexdigest()


def _check_no_float(data: Any, where: str = "inputs") -> None:
    if isinstance(data, float):
        raise EngineError(f"{where} holds a float ({data!r}); amounts are ints, rates decimal strings")
    if isinstance(data, Mapping):
        for key, value in data.items():
            _check_no_float(value, f"{where}.{key}")
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            _check_no_float(value, f"{where}[{i}]")


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def plan_of(plan: Mapping[str, Any]) -> core.Plan:
    """The core plan from its inputs form."""
    cap: core.Cap | None = None
    if plan.get("cap_amount") is not None:
        cap = core.Cap(amount=int(plan["cap_amount"]))
    elif plan.get("cap_multiple") is not None:
        cap = core.Cap(multiple=_dec(plan["cap_multiple"]))
    return core.Plan(
        funding_rate=_dec(plan["funding_rate"]),
        pipeline_rate=_dec(plan.get("pipeline_rate") or "0"),
        pool_cap=None if plan.get("pool_cap") is None else int(plan["pool_cap"]),
        kr_cap=_dec(plan["kr_cap"]),
        gate_curve=tuple((_dec(s), _dec(m)) for s, m in plan["gate_curve"]),
        teams=tuple(core.TeamPlan(t["team"], _dec(t["share"]), t["rule"]) for t in plan["teams"]),
        person_cap=cap,
        leftover_policy=plan["leftover_policy"],
        clawback_days=int(plan["clawback_days"]),
    )


@dataclass(frozen=True, slots=True)
class Member:
    """A person of a plan team as the split sees them (days employed already prorated or not)."""

    id: int
    email: str
    team: str
    target_bonus: int
    days: int


def _days_employed(person: Mapping[str, Any], start: date, end: date) -> int:
    first = max(start, date.fromisoformat(person["start"])) if person.get("start") else start
    last = min(end, date.fromisoformat(person["end"])) if person.get("end") else end
    return max(0, (last - first).days + 1)


def trace_key(opportunity_id: int, campaign_id: int | None) -> str:
    """The key of one (deal, campaign) credit item; fixed width so ties break on the smaller ids."""
    return f"{opportunity_id:015d}:{campaign_id or 0:015d}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """The inputs read once: what the pool, the team pools and every person's line depend on."""

    plan: core.Plan
    count_overlay: bool
    score: Decimal
    won: int
    sourced: int
    carried: int
    days_in_period: int
    members: Mapping[str, tuple[Member, ...]]  # team -> its people, by id
    team_of: Mapping[int, str]
    items: Mapping[int, Mapping[str, int]]  # person -> trace key -> credit
    totals: Mapping[int, int]  # person -> credit (the sum of their items)
    other_lines: tuple[dict[str, Any], ...]  # adjustments, clawbacks, balances carried in
    others: Mapping[int, int]  # person -> the sum of their other lines


def _other_lines(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Adjustment lines, clawback lines of the reversals within their window, balances carried in."""
    lines: list[dict[str, Any]] = [
        {
            "person_id": int(a["person_id"]),
            "kind": "adjustment",
            "amount": int(a["amount"]),
            "reason": a["reason"],
            "entry_id": int(a["entry_id"]),
        }
        for a in inputs["adjustments"]
    ]
    for r in inputs["reversals"]:
        closed, reversed_on = date.fromisoformat(r["closed_on"]), date.fromisoformat(r["reversed_on"])
        if (reversed_on - closed).days > int(r["window_days"]):
            continue
        for person_id, amount in r["traced"]:
            if int(amount):
                lines.append(
                    {
                        "person_id": int(person_id),
                        "kind": "clawback",
                        "amount": -int(amount),
                        "opportunity_id": int(r["opportunity_id"]),
                        "source_run_id": int(r["source_run_id"]),
                        "reason": f"deal reversed on {reversed_on.isoformat()}, "
                        f"{(reversed_on - closed).days} days after its close",
                    }
                )
    for person_id, amount in inputs["balances"]:
        if int(amount):
            lines.append(
                {
                    "person_id": int(person_id),
                    "kind": "carry_forward",
                    "amount": int(amount),
                    "reason": "balance carried from an earlier run",
                }
            )
    return lines


def prepare(inputs: Mapping[str, Any]) -> Prepared:
    """Check the inputs and read them once (EngineError for a float or a plan that cannot be run)."""
    _check_no_float(inputs)
    plan = plan_of(inputs["plan"])
    problems = core.plan_problems(plan)
    if problems:
        field, reason = next(iter(problems.items()))
        raise EngineError(f"the plan cannot be run: {field}: {reason}")
    period = inputs["period"]
    start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
    days_in_period = (end - start).days + 1
    prorate = bool(inputs["plan"].get("prorate", True))
    score = core.joint_score(
        [(_dec(kr["attainment"]), _dec(kr["weight"])) for kr in inputs["key_results"]], plan.kr_cap
    )
    items: dict[int, dict[str, int]] = defaultdict(dict)
    for person_id, opportunity_id, campaign_id, amount in inputs["credit"]:
        key = trace_key(int(opportunity_id), None if campaign_id is None else int(campaign_id))
        bucket = items[int(person_id)]
        bucket[key] = bucket.get(key, 0) + int(amount)
    members: dict[str, list[Member]] = defaultdict(list)
    team_of: dict[int, str] = {}
    for p in inputs["people"]:
        days = _days_employed(p, start, end) if prorate else days_in_period
        members[p["team"]].append(
            Member(int(p["id"]), p["email"], p["team"], int(p.get("target_bonus") or 0), days)
        )
        team_of[int(p["id"])] = p["team"]
    other_lines = _other_lines(inputs)
    others: dict[int, int] = defaultdict(int)
    for line in other_lines:
        others[line["person_id"]] += line["amount"]
    return Prepared(
        plan=plan,
        count_overlay=bool(inputs["plan"].get("count_overlay")),
        score=score,
        won=sum(int(a) for _, a in inputs["won"]),
        sourced=sum(int(a) for _, a in inputs["sourced"]),
        carried=int(inputs["carried_forward"]["amount"]),
        days_in_period=days_in_period,
        members={team: tuple(sorted(m, key=lambda x: x.id)) for team, m in members.items()},
        team_of=team_of,
        items=dict(items),
        totals={p: sum(bucket.values()) for p, bucket in items.items()},
        other_lines=tuple(other_lines),
        others=dict(others),
    )


def compute(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The run's results for its inputs: pool, team pools, lines, traces, payable per person."""
    prepared = prepare(inputs)
    plan, items = prepared.plan, prepared.items
    pool = core.pool(
        plan,
        won_revenue=prepared.won,
        sourced_pipeline=prepared.sourced,
        joint_score=prepared.score,
        carried_forward=prepared.carried,
    )
    pools = core.team_pools(plan, pool.pool)

    lines: list[dict[str, Any]] = []
    traces: list[list[Any]] = []
    teams: list[dict[str, Any]] = []
    leftover = 0
    for team in plan.teams:
        people = prepared.members.get(team.name, ())
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
                for m in people
            ],
            team.rule,
            plan.person_cap,
        )
        leftover += allocation.leftover
        teams.append(
            {
                "team": team.name,
                "share": str(team.share),
                "rule": str(team.rule),
                "pool": allocation.team_pool,
                "paid": allocation.team_pool - allocation.leftover,
                "leftover": allocation.leftover,
                "cap_rounds": allocation.cap_rounds,
                "people": len(people),
                "rule_text": allocation.rule_text,
            }
        )
        for line in allocation.lines:
            person_id = int(line.person_id)
            lines.append(
                {
                    "person_id": person_id,
                    "kind": "earning",
                    "team": team.name,
                    "amount": line.amount,
                    "credit": line.credit,
                    "proration": str(line.proration),
                    "weight": str(line.weight),
                    "share": str(line.share),
                    "cap": line.cap,
                    "capped": line.capped,
                }
            )
            mine = items.get(person_id, {})
            if line.amount and any(mine.values()):
                split = core.trace(line.amount, sorted(mine.items()))
                for key in sorted(mine):
                    opportunity, campaign = (int(x) for x in key.split(":"))
                    traces.append([person_id, opportunity, campaign or None, mine[key], split[key]])

    lines += [dict(line) for line in prepared.other_lines]

    totals: dict[int, dict[str, int]] = {}
    for entry in lines:
        t = totals.setdefault(entry["person_id"], defaultdict(int))
        t[entry["kind"]] += entry["amount"]
    payable = []
    for person_id in sorted(totals):
        t = totals[person_id]
        total = sum(t.values())
        payable.append(
            {
                "person_id": person_id,
                "earning": t["earning"],
                "adjustment": t["adjustment"],
                "clawback": t["clawback"],
                "carried_in": t["carry_forward"],
                "total": total,
                "payable": max(total, 0),
                "carried_out": min(total, 0),
            }
        )
    policy = plan.leftover_policy
    return {
        "engine": ENGINE_VERSION,
        "joint_score": str(prepared.score),
        "pool": {
            "joint_score": str(pool.joint_score),
            "multiplier": str(pool.multiplier),
            "won_revenue": pool.won_revenue,
            "sourced_pipeline": pool.sourced_pipeline,
            "funding_rate": str(pool.funding_rate),
            "pipeline_rate": str(pool.pipeline_rate),
            "funded": str(pool.funded),
            "exact": str(pool.exact),
            "rounded": pool.rounded,
            "pool_cap": pool.pool_cap,
            "capped": pool.capped,
            "carried_forward": pool.carried_forward,
            "pool": pool.pool,
            "formula": pool.formula,
        },
        "teams": teams,
        "leftover": {
            "amount": leftover,
            "policy": str(policy),
            "carry_forward": leftover if policy == core.LeftoverPolicy.CARRY_FORWARD else 0,
            "returned": leftover if policy == core.LeftoverPolicy.RETURN else 0,
        },
        "lines": lines,
        "traces": traces,
        "payable": payable,
        "paid": sum(p["payable"] for p in payable),
    }


def verify(inputs: Mapping[str, Any], results_checksum: str) -> bool:
    """Whether computing the stored inputs again gives the stored results, byte for byte."""
    return checksum(compute(inputs)) == results_checksum


def sum_lines(lines: Sequence[Mapping[str, Any]], kind: str = "earning") -> int:
    """The total of the lines of one kind."""
    return sum(int(line["amount"]) for line in lines if line["kind"] == kind)
