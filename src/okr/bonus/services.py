"""Bonus runs (DESIGN 6.2-6.3): read the inputs, call the engine, store lines and traces; the lifecycle,
the ledger and adjustments. Services flush; the request or job commits."""

import datetime as dt
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution.core import AttributionError, rep_credit
from okr.attribution.services import latest_run
from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.bonus import core, engine
from okr.bonus.plans import approved_plan
from okr.db.attribution import STORED_MODELS, attribution_credit
from okr.db.bonus import (
    BonusLine,
    BonusPlan,
    BonusRun,
    BonusTrace,
    LedgerEntry,
    LineKind,
    RunState,
    RunStatus,
)
from okr.db.people import Period, Person, Role, Team
from okr.db.pipeline import Campaign, Opportunity, OpportunitySplit, SplitKind
from okr.goals.core import DEFAULT_KR_CAP
from okr.goals.services import goals_overview
from okr.kpis.core import KpiFilters
from okr.kpis.queries import current_runs, dialect_sql, marketing_stored, window
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, Forbidden, NotFound, ValidationFailed
from okr.lib.periods import Quarter, parse_key
from okr.settings import Settings

Progress = Callable[[str], Awaitable[None]]
WON: Final = "won"
LOST: Final = "lost"


@dataclass(frozen=True, slots=True)
class BonusKr:
    """A key result that counts toward the bonus, with its attainment now."""

    id: int
    title: str
    objective: str
    weight: Decimal
    attainment: Decimal
    url: str


@dataclass(frozen=True, slots=True)
class JointScore:
    """The joint score of DESIGN 6.1 and the KRs it is the weighted mean of."""

    score: Decimal
    kr_cap: Decimal
    key_results: tuple[BonusKr, ...]


async def joint_score(
    session: AsyncSession,
    *,
    settings: Settings,
    quarter: Quarter,
    kr_cap: Decimal = DEFAULT_KR_CAP,
    now: dt.datetime | None = None,
) -> JointScore:
    """The period's joint score: the weighted mean attainment of the KRs flagged counts_toward_bonus."""
    overview = await goals_overview(session, settings=settings, quarter=quarter, now=now)
    krs = tuple(
        BonusKr(
            id=kr.id,
            title=kr.title,
            objective=o.title,
            weight=kr.weight,
            attainment=kr.attainment,
            url=f"/goals/key-results/{kr.id}",
        )
        for o in overview.objectives
        for kr in o.key_results
        if kr.counts_toward_bonus
    )
    score = core.joint_score([(kr.attainment, kr.weight) for kr in krs], kr_cap)
    return JointScore(score=score, kr_cap=kr_cap, key_results=krs)


# -- Reading ------------------------------------------------------------------------------------------


async def period_by_key(session: AsyncSession, key: str) -> Period:
    """The period, or NotFound."""
    period = await session.scalar(select(Period).where(Period.key == key))
    if period is None:
        raise NotFound(f"There is no period {key}.")
    return period


async def get_run(session: AsyncSession, run_id: int) -> BonusRun:
    """The run, or NotFound."""
    run = await session.get(BonusRun, run_id)
    if run is None:
        raise NotFound(f"There is no bonus run {run_id}.")
    return run


async def runs_of(session: AsyncSession, *, period_id: int | None = None) -> list[BonusRun]:
    """Runs, newest first (of one period when given)."""
    stmt = select(BonusRun).order_by(BonusRun.created_at.desc(), BonusRun.id.desc())
    if period_id is not None:
        stmt = stmt.where(BonusRun.period_id == period_id)
    return list((await session.scalars(stmt)).all())


async def lines_of(session: AsyncSession, *, run_id: int, person_id: int | None = None) -> list[BonusLine]:
    """A run's lines (one person's when given), by person then kind."""
    stmt = select(BonusLine).where(BonusLine.run_id == run_id)
    if person_id is not None:
        stmt = stmt.where(BonusLine.person_id == person_id)
    return list((await session.scalars(stmt.order_by(BonusLine.person_id, BonusLine.id))).all())


async def traces_of(session: AsyncSession, *, run_id: int, person_id: int) -> list[BonusTrace]:
    """One person's trace in a run, by deal then campaign."""
    return list(
        (
            await session.scalars(
                select(BonusTrace)
                .where(BonusTrace.run_id == run_id, BonusTrace.person_id == person_id)
                .order_by(BonusTrace.opportunity_id, BonusTrace.campaign_id)
            )
        ).all()
    )


def plan_inputs(plan: BonusPlan) -> dict[str, Any]:
    """A plan version as the engine reads it (decimals as text)."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value.normalize() if value == value.to_integral() else value)

    return {
        "id": plan.id,
        "version": plan.version,
        "funding_rate": text(plan.funding_rate),
        "pipeline_rate": text(plan.pipeline_rate),
        "pool_cap": plan.pool_cap,
        "kr_cap": text(plan.kr_cap),
        "gate_curve": [[str(s), str(m)] for s, m in plan.gate_curve],
        "teams": [{"team": t["team"], "share": str(t["share"]), "rule": t["rule"]} for t in plan.teams],
        "model": plan.model,
        "scope": plan.scope,
        "count_overlay": plan.count_overlay,
        "cap_amount": plan.cap_amount,
        "cap_multiple": text(plan.cap_multiple),
        "prorate": plan.prorate,
        "leftover_policy": plan.leftover_policy,
        "clawback_days": plan.clawback_days,
    }


async def _won_deals(
    session: AsyncSession, settings: Settings, start: dt.datetime, cut: dt.datetime
) -> tuple[dict[int, int], int]:
    """The period's won deals with their amount in the org currency, and how many had no FX rate."""
    sql = await dialect_sql(session, settings)
    o = Opportunity
    rows = await session.execute(
        select(o.id, sql.converted(o.amount, o.currency, o.closed_at)).where(
            o.status == WON, o.closed_at >= start, o.closed_at < cut
        )
    )
    won: dict[int, int] = {}
    unpriced = 0
    for opportunity_id, amount in rows:
        if amount is None:
            unpriced += 1
        else:
            won[int(opportunity_id)] = int(amount)
    return won, unpriced


async def _rep_credit(
    session: AsyncSession, won: dict[int, int], start: dt.datetime, cut: dt.datetime, *, count_overlay: bool
) -> tuple[list[list[Any]], int]:
    """[[person, deal, None, credit]] from the won deals' revenue splits (overlay when counted)."""
    o, s = Opportunity, OpportunitySplit
    splits: dict[int, list[tuple[int, str, Decimal, str]]] = defaultdict(list)
    for opportunity_id, person_id, email, percent, kind in await session.execute(
        select(s.opportunity_id, s.person_id, Person.email, s.percent, s.kind)
        .join(Person, Person.id == s.person_id)
        .join(o, o.id == s.opportunity_id)
        .where(o.status == WON, o.closed_at >= start, o.closed_at < cut)
    ):
        splits[int(opportunity_id)].append((int(person_id), email, Decimal(percent), kind))
    owners = dict(
        (int(i), int(p))
        for i, p in await session.execute(
            select(o.id, o.owner_id).where(o.status == WON, o.closed_at >= start, o.closed_at < cut)
        )
    )
    credit: list[list[Any]] = []
    problems = 0
    for opportunity_id in sorted(won):
        mine = splits.get(opportunity_id, [])
        revenue = [(p, e, x) for p, e, x, k in mine if k == SplitKind.REVENUE]
        overlay = [(p, e, x) for p, e, x, k in mine if k == SplitKind.OVERLAY]
        try:
            people = rep_credit(
                won[opportunity_id], revenue, overlay, owners[opportunity_id], count_overlay=count_overlay
            )
        except AttributionError:
            problems += 1
            continue
        credit += [[pid, opportunity_id, None, amount] for pid, amount in sorted(people.items()) if amount]
    return credit, problems


async def _marketer_credit(
    session: AsyncSession, *, model: str, scope: str, start: dt.datetime, cut: dt.datetime
) -> tuple[list[list[Any]], int | None]:
    """[[owner, deal, campaign, credit]] of the campaigns' owners under the plan's model and scope."""
    if model not in STORED_MODELS:
        raise ValidationFailed(f"The plan's attribution model {model!r} is not one okr computes.")
    run = await latest_run(session, scope)
    if run is None:
        return [], None
    c = attribution_credit.c
    amount = func.sum(c[f"{model}_base"])
    rows = await session.execute(
        select(Campaign.owner_id, c.opportunity_id, c.campaign_id, amount)
        .join(Campaign, Campaign.id == c.campaign_id)
        .where(
            c.run_id == run.id,
            c.period_at >= start,
            c.period_at < cut,
            c.campaign_id.is_not(None),
            Campaign.owner_id.is_not(None),
        )
        .group_by(Campaign.owner_id, c.opportunity_id, c.campaign_id)
    )
    credit = sorted(
        [int(owner), int(deal), int(campaign), int(total)] for owner, deal, campaign, total in rows if total
    )
    return credit, run.id


async def _people(
    session: AsyncSession, teams: Sequence[str], start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """The people of the plan's teams employed at some time in the period."""
    rows = await session.execute(
        select(Person, Team.name)
        .join(Team, Team.id == Person.team_id)
        .where(
            Team.name.in_(list(teams)),
            or_(Person.start_date.is_(None), Person.start_date <= end),
            or_(Person.end_date.is_(None), Person.end_date >= start),
            or_(Person.is_active.is_(True), Person.end_date.is_not(None)),
        )
        .order_by(Person.id)
    )
    return [
        {
            "id": p.id,
            "email": p.email,
            "name": p.name,
            "team": team,
            "employee_id": p.employee_id,
            "start": None if p.start_date is None else p.start_date.isoformat(),
            "end": None if p.end_date is None else p.end_date.isoformat(),
            "target_bonus": p.target_bonus or 0,
        }
        for p, team in rows
    ]


async def _clawed(session: AsyncSession) -> set[tuple[int, int, int]]:
    """(source run, person, deal) of every clawback posted."""
    rows = await session.execute(
        select(LedgerEntry.source_run_id, LedgerEntry.person_id, LedgerEntry.opportunity_id).where(
            LedgerEntry.kind == LineKind.CLAWBACK
        )
    )
    return {(int(r), int(p), int(d)) for r, p, d in rows if r is not None and d is not None}


async def _reversals(session: AsyncSession, settings: Settings, as_of: dt.datetime) -> list[dict[str, Any]]:
    """Deals paid (as won) in a locked run that are lost or gone now, not clawed back yet."""
    t, o = BonusTrace, Opportunity
    rows = (
        await session.execute(
            select(t.run_id, t.person_id, t.opportunity_id, func.sum(t.amount), o.status, o.closed_at)
            .join(BonusRun, BonusRun.id == t.run_id)
            .outerjoin(o, o.id == t.opportunity_id)
            .where(BonusRun.state == RunState.LOCKED, or_(o.status == LOST, o.id.is_(None)))
            .group_by(t.run_id, t.person_id, t.opportunity_id, o.status, o.closed_at)
        )
    ).all()
    if not rows:
        return []
    done = await _clawed(session)
    runs = {
        r.id: r
        for r in await session.scalars(select(BonusRun).where(BonusRun.id.in_({int(r[0]) for r in rows})))
    }
    grouped: dict[tuple[int, int], dict[str, Any]] = {}
    today = as_of.astimezone(settings.tz).date()
    for run_id, person_id, deal_id, amount, _status, closed_at in rows:
        run = runs[int(run_id)]
        inputs = run.inputs or {}
        deal = inputs.get("deals", {}).get(str(deal_id))
        if deal is None or deal[2] != WON or deal[3] is None:
            continue  # counted as pipeline, not as a won deal: losing it is no reversal
        if (int(run_id), int(person_id), int(deal_id)) in done:
            continue
        closed_on = dt.date.fromisoformat(deal[3])
        reversed_on = today
        if closed_at is not None and closed_at.astimezone(settings.tz).date() > closed_on:
            reversed_on = min(today, closed_at.astimezone(settings.tz).date())
        entry = grouped.setdefault(
            (int(run_id), int(deal_id)),
            {
                "opportunity_id": int(deal_id),
                "closed_on": closed_on.isoformat(),
                "reversed_on": reversed_on.isoformat(),
                "window_days": int(inputs["plan"]["clawback_days"]),
                "source_run_id": int(run_id),
                "traced": [],
            },
        )
        entry["traced"].append([int(person_id), int(amount)])
    return [{**v, "traced": sorted(v["traced"])} for _, v in sorted(grouped.items())]


async def _deals(session: AsyncSession, settings: Settings, ids: set[int]) -> dict[str, list[Any]]:
    """{id: [external_id, name, status, closed_on]} of the deals named by the inputs."""
    result: dict[str, list[Any]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 5000):
        chunk = ordered[i : i + 5000]
        for deal_id, external_id, name, status, closed_at in await session.execute(
            select(
                Opportunity.id,
                Opportunity.external_id,
                Opportunity.name,
                Opportunity.status,
                Opportunity.closed_at,
            ).where(Opportunity.id.in_(chunk))
        ):
            closed = None if closed_at is None else closed_at.astimezone(settings.tz).date().isoformat()
            result[str(deal_id)] = [external_id, name, status, closed]
    return result


async def _carried_forward(session: AsyncSession, quarter: Quarter) -> dict[str, Any]:
    """The previous period's leftover, when its locked run's plan carried it forward."""
    previous = await session.scalar(
        select(BonusRun)
        .join(Period, Period.id == BonusRun.period_id)
        .where(Period.key == quarter.shift(-1).key, BonusRun.state == RunState.LOCKED)
        .limit(1)
    )
    if previous is None or previous.summary is None:
        return {"amount": 0, "from_run_id": None}
    return {"amount": int(previous.summary["leftover"]["carry_forward"]), "from_run_id": previous.id}


async def _adjustments(session: AsyncSession) -> list[dict[str, Any]]:
    """Adjustments waiting in the ledger for the next run."""
    rows = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.kind == LineKind.ADJUSTMENT, LedgerEntry.run_id.is_(None))
        .order_by(LedgerEntry.id)
    )
    return [
        {"entry_id": e.id, "person_id": e.person_id, "amount": e.amount, "reason": e.reason or ""}
        for e in rows
    ]


async def _balances(session: AsyncSession) -> list[list[int]]:
    """Negative balances carried from earlier runs: minus the sum of each person's carry_forward entries."""
    rows = await session.execute(
        select(LedgerEntry.person_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.kind == LineKind.CARRY_FORWARD, LedgerEntry.run_id.is_not(None))
        .group_by(LedgerEntry.person_id)
    )
    return sorted([int(p), -int(total)] for p, total in rows if total)


async def _no_progress(_: str) -> None:
    return None


async def gather_inputs(
    session: AsyncSession,
    *,
    settings: Settings,
    period: Period,
    plan: BonusPlan,
    as_of: dt.datetime,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Everything a run of `period` under `plan` reads, as of `as_of`, as plain JSON data."""
    quarter = parse_key(period.key)
    win = window(settings, [quarter], as_of=as_of)
    p = plan_inputs(plan)
    await progress("Reading the key results that count toward the bonus")
    score = await joint_score(
        session, settings=settings, quarter=quarter, kr_cap=Decimal(p["kr_cap"]), now=as_of
    )
    await progress("Reading the period's won deals")
    won, unpriced = await _won_deals(session, settings, win.start, win.cut)
    sourced: dict[int, int] = {}
    runs = await current_runs(session)
    if runs.pipeline is not None:
        stmt = marketing_stored(win, KpiFilters(), runs.pipeline, sourced=True)
        sourced = {int(i): int(a) for i, a in await session.execute(stmt) if a is not None}
    await progress("Reading the reps' revenue splits")
    reps, split_problems = await _rep_credit(
        session, won, win.start, win.cut, count_overlay=plan.count_overlay
    )
    await progress("Reading the marketers' campaign credit")
    marketers, attribution_run = await _marketer_credit(
        session, model=plan.model, scope=plan.scope, start=win.start, cut=win.cut
    )
    await progress("Reading people, adjustments and reversed deals")
    people = await _people(session, [t["team"] for t in p["teams"]], period.start_date, period.end_date)
    reversals = await _reversals(session, settings, as_of)
    deal_ids = set(won) | {c[1] for c in reps} | {c[1] for c in marketers}
    deal_ids |= {r["opportunity_id"] for r in reversals}
    return {
        "engine": engine.ENGINE_VERSION,
        "period": {
            "key": period.key,
            "start": period.start_date.isoformat(),
            "end": period.end_date.isoformat(),
            "days": (period.end_date - period.start_date).days + 1,
        },
        "currency": settings.org_currency,
        "as_of": as_of.astimezone(dt.UTC).isoformat(),
        "plan": p,
        "key_results": [
            {"id": kr.id, "title": kr.title, "weight": str(kr.weight), "attainment": str(kr.attainment)}
            for kr in score.key_results
        ],
        "won": sorted([i, a] for i, a in won.items()),
        "sourced": sorted([i, a] for i, a in sourced.items()),
        "unpriced": unpriced,
        "split_problems": split_problems,
        "attribution_run_id": attribution_run,
        "deals": await _deals(session, settings, deal_ids),
        "carried_forward": await _carried_forward(session, quarter),
        "people": people,
        "credit": sorted(reps + marketers, key=lambda c: (c[0], c[1], c[2] or 0)),
        "adjustments": await _adjustments(session),
        "reversals": reversals,
        "balances": await _balances(session),
    }


# -- Runs ------------------------------------------------------------------------------------------------


def _actor(user: CurrentUser | None) -> tuple[str, int | None]:
    return ("cli", None) if user is None else (user.email, user.id)


async def create_run(
    session: AsyncSession, *, settings: Settings, period_key: str, user: CurrentUser | None
) -> BonusRun:
    """A new draft run of the period under its approved plan, to be computed (`compute_run`)."""
    period = await period_by_key(session, period_key)
    plan = await approved_plan(session, period_id=period.id)
    if plan is None:
        raise Conflict(
            f"{period.key} has no approved bonus plan yet: a leader drafts it, an admin approves it."
        )
    locked = await session.scalar(
        select(BonusRun.id).where(BonusRun.period_id == period.id, BonusRun.state == RunState.LOCKED)
    )
    if locked is not None:
        raise Conflict(
            f"The {period.key} bonus is locked (run {locked}). Corrections go in as adjustments, "
            "which the next period's run pays."
        )
    number = (
        await session.scalar(select(func.max(BonusRun.number)).where(BonusRun.period_id == period.id))
    ) or 0
    actor, actor_id = _actor(user)
    now = utcnow()
    run = BonusRun(
        period_id=period.id,
        number=number + 1,
        plan_id=plan.id,
        state=RunState.DRAFT,
        status=RunStatus.RUNNING,
        progress="Waiting to start",
        currency=settings.org_currency,
        as_of=now,
        created_at=now,
        created_by_id=actor_id,
    )
    session.add(run)
    await session.flush()
    await audit.record(
        session, actor=actor, actor_id=actor_id, action="bonus_run.create", entity="bonus_run",
        entity_id=run.id, after={"period": period.key, "plan_version": plan.version},
    )  # fmt: skip
    return run


def require_draft(run: BonusRun) -> None:
    """Conflict unless the run is a draft (only a draft is computed again)."""
    if run.state != RunState.DRAFT:
        raise Conflict(f"Run {run.id} is {run.state}: only a draft is computed again.")


async def mark_computing(session: AsyncSession, *, run: BonusRun, user: CurrentUser) -> None:
    """Flag a draft run as being computed again (the job does it), with an audit event."""
    require_draft(run)
    run.status = RunStatus.RUNNING
    run.progress = "Waiting to start"
    run.error = None
    await session.flush()
    await audit.record(
        session, actor=user.email, actor_id=user.id, action="bonus_run.compute", entity="bonus_run",
        entity_id=run.id, after={"inputs_checksum_before": run.inputs_checksum},
    )  # fmt: skip


async def read_inputs(
    session: AsyncSession,
    *,
    settings: Settings,
    run_id: int,
    progress: Progress = _no_progress,
    as_of: dt.datetime | None = None,
) -> dict[str, Any]:
    """What a draft run reads, as of now (or `as_of`): only reads, so a job can write in another session."""
    run = await get_run(session, run_id)
    require_draft(run)
    period = await session.get_one(Period, run.period_id)
    plan = await approved_plan(session, period_id=period.id)
    if plan is None:
        raise Conflict(f"{period.key} has no approved bonus plan.")
    return await gather_inputs(
        session, settings=settings, period=period, plan=plan, as_of=as_of or utcnow(), progress=progress
    )


async def compute_run(
    session: AsyncSession,
    *,
    settings: Settings,
    run_id: int,
    progress: Progress = _no_progress,
    as_of: dt.datetime | None = None,
) -> BonusRun:
    """Read the inputs, compute, and store the lines and traces of a draft run, in one session."""
    inputs = await read_inputs(session, settings=settings, run_id=run_id, progress=progress, as_of=as_of)
    await progress("Computing the pool, the team pools and every line")
    results = engine.compute(inputs)
    await progress("Writing the lines and traces")
    run = await get_run(session, run_id)
    await store_results(session, run=run, inputs=inputs, results=results)
    return run


async def store_results(
    session: AsyncSession, *, run: BonusRun, inputs: dict[str, Any], results: dict[str, Any]
) -> None:
    """Replace the run's lines and traces with the engine's results (a draft run only)."""
    if run.state != RunState.DRAFT:
        raise Conflict(f"Run {run.id} is {run.state}: its lines never change.")
    await session.execute(delete(BonusTrace).where(BonusTrace.run_id == run.id))
    await session.execute(delete(BonusLine).where(BonusLine.run_id == run.id))
    lines = [
        {
            "run_id": run.id,
            "person_id": line["person_id"],
            "kind": line["kind"],
            "team": line.get("team"),
            "amount": line["amount"],
            "credit": line.get("credit"),
            "proration": None if line.get("proration") is None else Decimal(line["proration"]),
            "weight": line.get("weight"),
            "share": line.get("share"),
            "cap": line.get("cap"),
            "capped": bool(line.get("capped", False)),
            "reason": line.get("reason"),
            "opportunity_id": line.get("opportunity_id"),
            "entry_id": line.get("entry_id"),
        }
        for line in results["lines"]
    ]
    if lines:
        await session.execute(insert(BonusLine), lines)
    traces = [
        {"run_id": run.id, "person_id": p, "opportunity_id": o, "campaign_id": c, "credit": cr, "amount": a}
        for p, o, c, cr, a in results["traces"]
    ]
    for i in range(0, len(traces), 10_000):
        await session.execute(insert(BonusTrace), traces[i : i + 10_000])
    run.inputs = inputs
    run.plan_id = int(inputs["plan"]["id"])
    run.as_of = dt.datetime.fromisoformat(inputs["as_of"])
    run.inputs_checksum = engine.checksum(inputs)
    run.results_checksum = engine.checksum(results)
    run.summary = {k: results[k] for k in ("engine", "joint_score", "pool", "teams", "leftover", "paid")}
    run.summary["payable"] = results["payable"]
    run.pool = int(results["pool"]["pool"])
    run.paid = int(results["paid"])
    run.leftover = int(results["leftover"]["amount"])
    run.status = RunStatus.DONE
    run.progress = None
    run.error = None
    run.computed_at = utcnow()
    await session.flush()


async def verify_run(session: AsyncSession, *, run_id: int) -> bool:
    """Whether the stored inputs computed again give the stored results, byte for byte."""
    run = await get_run(session, run_id)
    if run.inputs is None or run.results_checksum is None:
        return False
    return engine.verify(run.inputs, run.results_checksum)


# -- Lifecycle -------------------------------------------------------------------------------------------


def _require_finance(user: CurrentUser, *, admin_too: bool = False) -> None:
    """Forbidden unless finance (or an admin, where DESIGN 8 lets admins do it)."""
    if user.role == Role.FINANCE or (admin_too and user.is_admin):
        return
    raise Forbidden("Only finance or an admin may do this." if admin_too else "Only finance may do this.")


async def _transition(
    session: AsyncSession,
    run: BonusRun,
    to: RunState,
    user: CurrentUser,
    *,
    after: dict[str, Any] | None = None,
) -> BonusRun:
    before = {"state": run.state}
    run.state = to
    now = utcnow()
    if to == RunState.SUBMITTED:
        run.submitted_at, run.submitted_by_id = now, user.id
    elif to == RunState.APPROVED:
        run.approved_at, run.approved_by_id = now, user.id
    elif to == RunState.LOCKED:
        run.locked_at, run.locked_by_id = now, user.id
    else:
        run.submitted_at = run.submitted_by_id = run.approved_at = run.approved_by_id = None
    await session.flush()
    await audit.record(
        session, actor=user.email, actor_id=user.id, action=f"bonus_run.{_VERBS[to]}",
        entity="bonus_run", entity_id=run.id, before=before, after={"state": to, **(after or {})},
    )  # fmt: skip
    return run


_VERBS: Final = {
    RunState.DRAFT: "reopen",
    RunState.SUBMITTED: "submit",
    RunState.APPROVED: "approve",
    RunState.LOCKED: "lock",
}


def _require(run: BonusRun, state: RunState, doing: str) -> None:
    if run.status != RunStatus.DONE:
        raise Conflict(f"Run {run.id} has not finished computing; {doing} it once it has.")
    if run.state != state:
        raise Conflict(f"Run {run.id} is {run.state}; only a {state} run can be {doing}.")


async def submit_run(session: AsyncSession, *, run_id: int, user: CurrentUser) -> BonusRun:
    """draft -> submitted (finance or an admin)."""
    _require_finance(user, admin_too=True)
    run = await get_run(session, run_id)
    _require(run, RunState.DRAFT, "submitted")
    return await _transition(session, run, RunState.SUBMITTED, user, after={"checksum": run.inputs_checksum})


async def approve_run(session: AsyncSession, *, run_id: int, user: CurrentUser) -> BonusRun:
    """submitted -> approved, by a finance user other than the submitter."""
    _require_finance(user)
    run = await get_run(session, run_id)
    _require(run, RunState.SUBMITTED, "approved")
    if run.submitted_by_id == user.id:
        raise Forbidden("You submitted this run: another finance user must approve it.")
    return await _transition(session, run, RunState.APPROVED, user)


async def reopen_run(session: AsyncSession, *, run_id: int, user: CurrentUser, reason: str) -> BonusRun:
    """submitted or approved -> draft again (finance), with the reason in the audit log."""
    _require_finance(user)
    run = await get_run(session, run_id)
    if run.state not in (RunState.SUBMITTED, RunState.APPROVED):
        raise Conflict(f"Run {run.id} is {run.state}; only a submitted or approved run can be sent back.")
    if not reason.strip():
        raise ValidationFailed(
            "Say why the run goes back to draft.", errors=[{"field": "reason", "message": "Required."}]
        )
    return await _transition(session, run, RunState.DRAFT, user, after={"reason": reason.strip()})


async def lock_run(session: AsyncSession, *, run_id: int, user: CurrentUser) -> BonusRun:
    """approved -> locked (finance): post the run's lines to the ledger. A locked run never changes."""
    _require_finance(user)
    run = await get_run(session, run_id)
    _require(run, RunState.APPROVED, "locked")
    other = await session.scalar(
        select(BonusRun.id).where(
            BonusRun.period_id == run.period_id, BonusRun.state == RunState.LOCKED, BonusRun.id != run.id
        )
    )
    if other is not None:
        raise Conflict(f"Run {other} of this period is locked already.")
    await _post_ledger(session, run, user)
    return await _transition(session, run, RunState.LOCKED, user, after={"paid": run.paid, "pool": run.pool})


async def _post_ledger(session: AsyncSession, run: BonusRun, user: CurrentUser) -> None:
    """Write the run's entries: earnings, clawbacks, balances carried in and out; post its adjustments."""
    assert run.inputs is not None and run.summary is not None
    lines = await lines_of(session, run_id=run.id)
    waiting = {
        e.id: e
        for e in await session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.id.in_([line.entry_id for line in lines if line.entry_id is not None])
            )
        )
    }
    clawed = await _clawed(session)
    claws = {
        (int(r["source_run_id"]), int(p), int(r["opportunity_id"]))
        for r in run.inputs["reversals"]
        for p, _ in r["traced"]
    }
    stale = (
        len(waiting) != len([line for line in lines if line.kind == LineKind.ADJUSTMENT])
        or any(e.run_id is not None for e in waiting.values())
        or bool(claws & clawed)
        or await _balances(session) != run.inputs["balances"]
    )
    if stale:
        raise Conflict(
            "The ledger changed since this run was computed (another run posted an adjustment, clawback or "
            "balance): send it back to draft and compute it again."
        )
    now = utcnow()
    entries: list[dict[str, Any]] = []
    for line in lines:
        if line.kind == LineKind.ADJUSTMENT:
            waiting[line.entry_id].run_id = run.id  # type: ignore[index]
            continue
        if line.amount == 0:
            continue
        entries.append(
            {
                "person_id": line.person_id,
                "kind": line.kind,
                "amount": line.amount,
                "currency": run.currency,
                "reason": line.reason,
                "opportunity_id": line.opportunity_id,
                "period_id": run.period_id,
                "run_id": run.id,
                "source_run_id": None,
                "created_at": now,
                "created_by_id": user.id,
            }
        )
    sources = {
        (int(r["opportunity_id"]), int(p)): int(r["source_run_id"])
        for r in run.inputs["reversals"]
        for p, _ in r["traced"]
    }
    for e in entries:
        if e["kind"] == LineKind.CLAWBACK:
            e["source_run_id"] = sources[(e["opportunity_id"], e["person_id"])]
    for p in run.summary["payable"]:
        if p["carried_out"]:
            entries.append(
                {
                    "person_id": p["person_id"],
                    "kind": LineKind.CARRY_FORWARD,
                    "amount": -int(p["carried_out"]),
                    "currency": run.currency,
                    "reason": "negative balance carried to the next run",
                    "opportunity_id": None,
                    "period_id": run.period_id,
                    "run_id": run.id,
                    "source_run_id": None,
                    "created_at": now,
                    "created_by_id": user.id,
                }
            )
    if entries:
        await session.execute(insert(LedgerEntry), entries)
    await session.flush()


# -- Ledger ----------------------------------------------------------------------------------------------


async def add_adjustment(
    session: AsyncSession, *, person_id: int, amount: int, reason: str, currency: str, user: CurrentUser
) -> LedgerEntry:
    """A manual adjustment (finance), with a required reason; the next locked run pays it."""
    _require_finance(user)
    errors = []
    if not reason.strip():
        errors.append({"field": "reason", "message": "Give the reason for the adjustment."})
    if amount == 0:
        errors.append({"field": "amount", "message": "An adjustment of 0 changes nothing."})
    person = await session.get(Person, person_id)
    if person is None:
        errors.append({"field": "person_id", "message": f"There is no person {person_id}."})
    if errors:
        raise ValidationFailed("The adjustment was not added.", errors=errors)
    entry = LedgerEntry(
        person_id=person_id,
        kind=LineKind.ADJUSTMENT,
        amount=amount,
        currency=currency,
        reason=reason.strip(),
        created_at=utcnow(),
        created_by_id=user.id,
    )
    session.add(entry)
    await session.flush()
    await audit.record(
        session, actor=user.email, actor_id=user.id, action="bonus_ledger.adjust", entity="ledger_entry",
        entity_id=entry.id, after={"person_id": person_id, "amount": amount, "reason": entry.reason},
    )  # fmt: skip
    return entry


async def ledger(session: AsyncSession, *, person_id: int) -> list[LedgerEntry]:
    """A person's ledger, oldest first (pending adjustments last)."""
    return list(
        (
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.person_id == person_id)
                .order_by(LedgerEntry.run_id.is_(None), LedgerEntry.created_at, LedgerEntry.id)
            )
        ).all()
    )
