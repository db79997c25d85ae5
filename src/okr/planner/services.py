"""Funnel planner services (DESIGN 5): trailing rates from the KPI library, plans saved and listed, a plan
against the actuals, and the period's joint objective made from a plan through the goals services.

Services flush, never commit (the request commits once). Who may write is the goals' rule
(okr.goals.guards): leaders and admins; everyone logged in reads. See docs/planner.md.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.db.goals import KeyResult
from okr.db.people import Period, PeriodState, Person, Role, Team
from okr.db.sla import FunnelPlan
from okr.goals import core as goals_core
from okr.goals import services as goals
from okr.goals.guards import check_may_write_goals
from okr.kpis import services as kpis
from okr.kpis.core import KpiFilters
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, NotFound, ValidationFailed
from okr.lib.money import to_major
from okr.lib.periods import Quarter, parse_key
from okr.periods.services import ensure_periods
from okr.planner import core
from okr.settings import Settings

NAME_MAX: Final = 200
NOTE_MAX: Final = 2000

# What the plan compares with the actuals: every stage, and revenue and pipeline in money.
MONEY_FIGURES: Final = (
    ("revenue", "revenue_won", "Revenue won"),
    ("pipeline", "pipeline_created", "Pipeline created"),
)


def _invalid(problems: dict[str, str], what: str) -> ValidationFailed:
    return ValidationFailed(
        f"The {what} cannot be computed: correct {', '.join(problems)}.",
        errors=[{"field": name, "message": message} for name, message in problems.items()],
    )


# -- trailing inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trailing:
    """The last two quarters' rates and average deal size (None where there is no data), and each
    stage's actual per quarter (for the flag on a stage target at or below it)."""

    quarter: Quarter
    avg_deal_size: int | None
    rates: dict[str, Decimal | None]
    per_quarter: dict[str, Decimal | None]  # stage key -> trailing count per quarter; also revenue, pipeline

    @property
    def quarters(self) -> tuple[Quarter, Quarter]:
        """The two quarters the trailing figures come from."""
        return self.quarter.shift(-2), self.quarter.shift(-1)


async def trailing(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> Trailing:
    """The trailing rates and deal size for planning `quarter`, from the KPI library's definitions."""

    async def actual(name: str, *, per_quarter: bool = True) -> Any:
        return await kpis.trailing_actual(
            session, settings=settings, quarter=quarter, name=name, per_quarter=per_quarter
        )

    rates: dict[str, Decimal | None] = {}
    for rate in core.RATES:
        if rate.library_kpi is not None:
            value = await actual(rate.library_kpi)
            rates[rate.name] = core.suggested_rate(None if value is None else Decimal(value))
        else:
            numerator, denominator = core.COUNT_RATES[rate.name]
            rates[rate.name] = core.suggested_rate(
                core.stage_rate(
                    await actual(numerator, per_quarter=False), await actual(denominator, per_quarter=False)
                )
            )
    deal = await actual("avg_deal_size")
    per_quarter: dict[str, Decimal | None] = {}
    for stage in core.STAGES:
        value = await actual(stage.kpi)
        per_quarter[stage.key] = None if value is None else Decimal(value)
    for key, kpi, _ in MONEY_FIGURES:
        value = await actual(kpi)
        per_quarter[key] = None if value is None else Decimal(value)
    return Trailing(
        quarter=quarter,
        avg_deal_size=None if deal is None or int(deal) <= 0 else int(deal),
        rates=rates,
        per_quarter=per_quarter,
    )


@dataclass(frozen=True, slots=True)
class StageFlag:
    """A planned figure at or below what the last two quarters already gave per quarter."""

    key: str
    label: str
    target: int
    trailing: Decimal


def flags(plan: core.Waterfall, trail: Trailing) -> list[StageFlag]:
    """The planned figures (stages, revenue, pipeline) that ask no more than the trailing actual."""
    figures = [(s.key, s.label, s.count) for s in plan.stages]
    figures += [
        ("revenue", "Revenue won", plan.inputs.revenue_target),
        ("pipeline", "Pipeline created", plan.pipeline_needed),
    ]
    found = []
    for key, label, target in figures:
        before = trail.per_quarter.get(key)
        if before is not None and core.below_trailing(target, before):
            found.append(StageFlag(key=key, label=label, target=target, trailing=before))
    return found


def compute(
    *,
    revenue_target: int | None,
    avg_deal_size: int | None,
    rates: Mapping[str, Decimal | None],
) -> core.Waterfall:
    """The waterfall of these inputs; ValidationFailed (422) naming each bad field."""
    given = {k: v for k, v in rates.items() if v is not None}
    missing = {k: None for k in core.RATE_NAMES if k not in given}
    problems = core.validate(
        revenue_target=revenue_target, avg_deal_size=avg_deal_size, rates={**given, **missing}
    )
    if problems:
        raise _invalid(problems, "plan")
    assert revenue_target is not None and avg_deal_size is not None
    return core.waterfall(
        core.PlanInputs(revenue_target=revenue_target, avg_deal_size=avg_deal_size, rates=given)
    )


async def open_pipeline_total(session: AsyncSession, *, settings: Settings) -> int:
    """The open pipeline now, in minor units of the org currency."""
    return sum(amount for amount, _, _ in await kpis.open_pipeline(session, settings=settings))


# -- saved plans -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanView:
    """A saved plan as the pages and the API show it."""

    id: int
    period: str
    name: str
    note: str | None
    waterfall: core.Waterfall
    objective_id: int | None
    created_at: dt.datetime
    created_by: str | None


def _inputs_json(inputs: core.PlanInputs) -> dict[str, Any]:
    return {
        "avg_deal_size": inputs.avg_deal_size,
        "rates": {k: str(inputs.rates[k]) for k in core.RATE_NAMES},
    }


def _results_json(plan: core.Waterfall) -> dict[str, Any]:
    return {**plan.counts, "pipeline_needed": plan.pipeline_needed, "coverage": str(plan.coverage)}


def _waterfall_of(row: FunnelPlan) -> core.Waterfall:
    rates = {k: Decimal(str(v)) for k, v in dict(row.inputs.get("rates", {})).items()}
    return core.waterfall(
        core.PlanInputs(
            revenue_target=int(row.revenue_target),
            avg_deal_size=int(row.inputs["avg_deal_size"]),
            rates=rates,
        )
    )


async def _view(session: AsyncSession, row: FunnelPlan) -> PlanView:
    period = await session.get(Period, row.period_id)
    author = None if row.created_by_id is None else await session.get(Person, row.created_by_id)
    return PlanView(
        id=row.id,
        period="" if period is None else period.key,
        name=row.name,
        note=row.note,
        waterfall=_waterfall_of(row),
        objective_id=row.objective_id,
        created_at=goals_aware(row.created_at),
        created_by=None if author is None else author.name,
    )


def goals_aware(moment: dt.datetime) -> dt.datetime:
    """A stored instant as an aware UTC datetime (SQLite gives it back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


async def _writable_period(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> Period:
    today = utcnow().astimezone(settings.tz).date()
    first, _ = quarter.dates(settings.fiscal_year_start_month)
    [period] = await ensure_periods(session, settings=settings, first=first, last=first, today=today)
    if period.state == PeriodState.CLOSED:
        raise goals.PeriodClosed(quarter.key)
    return period


async def save_plan(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    quarter: Quarter,
    name: str,
    plan: core.Waterfall,
    note: str | None = None,
    via: str | None = None,
) -> FunnelPlan:
    """Store a computed plan for `quarter` (leaders and admins), audited as `funnel_plan.save`."""
    check_may_write_goals(user)
    title = name.strip()
    problems: dict[str, str] = {}
    if not title:
        problems["name"] = "Name the plan (for example “Q3 base case”)."
    elif len(title) > NAME_MAX:
        problems["name"] = f"Keep the name to {NAME_MAX} characters or fewer."
    if note is not None and len(note) > NOTE_MAX:
        problems["note"] = f"Keep the note to {NOTE_MAX} characters or fewer."
    if problems:
        raise ValidationFailed(
            f"The plan was not saved: correct {', '.join(problems)}.",
            errors=[{"field": k, "message": v} for k, v in problems.items()],
        )
    period = await _writable_period(session, settings=settings, quarter=quarter)
    row = FunnelPlan(
        period_id=period.id,
        name=title,
        revenue_target=plan.inputs.revenue_target,
        inputs=_inputs_json(plan.inputs),
        results=_results_json(plan),
        note=(note or "").strip() or None,
        created_at=utcnow(),
        created_by_id=user.id,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=goals.actor_of(user, via),
        actor_id=user.id,
        action="funnel_plan.save",
        entity="funnel_plan",
        entity_id=row.id,
        after={
            "period": quarter.key,
            "name": row.name,
            "revenue_target": row.revenue_target,
            "inputs": row.inputs,
            "results": row.results,
        },
    )
    return row


async def _plan(session: AsyncSession, plan_id: int) -> FunnelPlan:
    row = await session.get(FunnelPlan, plan_id)
    if row is None:
        raise NotFound(f"Plan {plan_id} does not exist.")
    return row


async def list_plans(session: AsyncSession, *, quarter: Quarter) -> list[PlanView]:
    """The saved plans of `quarter`, newest first."""
    rows = (
        await session.scalars(
            select(FunnelPlan)
            .join(Period, Period.id == FunnelPlan.period_id)
            .where(Period.key == quarter.key)
            .order_by(FunnelPlan.created_at.desc(), FunnelPlan.id.desc())
        )
    ).all()
    return [await _view(session, row) for row in rows]


async def plan_view(session: AsyncSession, *, plan_id: int) -> PlanView:
    """One saved plan; NotFound when there is none."""
    return await _view(session, await _plan(session, plan_id))


# -- plan vs actual ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """A saved plan against the actuals of its period so far."""

    plan: PlanView
    window: goals.PeriodWindow
    share: Decimal  # of the period gone by
    rows: list[core.Progress]


async def compare(
    session: AsyncSession, *, settings: Settings, plan_id: int, now: dt.datetime | None = None
) -> Comparison:
    """The plan's stage targets, revenue and pipeline against the KPI library's values for the period so
    far, with the goals' expected-by-today pace."""
    view = await plan_view(session, plan_id=plan_id)
    quarter = parse_key(view.period)
    now = now or utcnow()
    window = await goals.period_window(session, settings=settings, quarter=quarter, now=now)
    names = [s.kpi for s in core.STAGES] + [kpi for _, kpi, _ in MONEY_FIGURES]
    values = await kpis.kpi_values(session, settings=settings, quarter=quarter, names=names)
    elapsed, length = window.elapsed(now), window.length
    plan = view.waterfall
    targets = [(s.key, s.kpi, s.label, s.count) for s in plan.stages]
    targets += [
        ("revenue", "revenue_won", "Revenue won", plan.inputs.revenue_target),
        ("pipeline", "pipeline_created", "Pipeline created", plan.pipeline_needed),
    ]
    rows = []
    for key, kpi, label, target in targets:
        value = values.get(kpi)
        rows.append(
            core.progress(
                key=key,
                kpi=kpi,
                label=label,
                target=target,
                actual=None if value is None else int(value),
                elapsed=elapsed,
                length=length,
            )
        )
    return Comparison(plan=view, window=window, share=window.share(now), rows=rows)


# -- the joint objective -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyResultMade:
    """A KR made from a plan, and whether its target asks no more than the trailing actual."""

    id: int
    title: str
    metric: str
    team: str
    target: Decimal
    trailing: Decimal | None
    flagged: bool


@dataclass(frozen=True, slots=True)
class ObjectiveMade:
    """The joint objective made from a plan."""

    objective_id: int
    period: str
    key_results: list[KeyResultMade]


# (team, KPI, title, plan figure): sales owns revenue, deals and pipeline; marketing the MQLs; the SDRs
# (sales when there is no sdr team) the SQLs they qualify. Every KR is company-wide (no filter), so it
# counts exactly what the plan and its comparison count.
JOINT_KRS: Final = (
    ("sales", "revenue_won", "Win {value} of revenue", "revenue"),
    ("sales", "deals_won", "Win {value} deals", "deals"),
    ("sales", "pipeline_created", "Create {value} of pipeline", "pipeline"),
    ("marketing", "mqls", "Deliver {value} MQLs", "mqls"),
    ("sdr", "sqls", "Qualify {value} SQLs", "sqls"),
)


def _figure(plan: core.Waterfall, key: str) -> int:
    if key == "revenue":
        return plan.inputs.revenue_target
    if key == "pipeline":
        return plan.pipeline_needed
    return plan.stage(key).count


async def create_objective(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    plan_id: int,
    via: str | None = None,
) -> ObjectiveMade:
    """Make the period's joint objective (sales, marketing and sdr when it exists) with a metric KR per
    team from a saved plan, through the goals services; the plan keeps a link to it."""
    check_may_write_goals(user)
    row = await _plan(session, plan_id)
    if row.objective_id is not None:
        raise Conflict(
            "This plan already made its objective; change that objective on the goals page.",
            errors=[{"field": "objective_id", "message": f"objective {row.objective_id} exists"}],
        )
    view = await _view(session, row)
    quarter = parse_key(view.period)
    plan = view.waterfall
    teams = {
        str(name): int(tid)
        for tid, name in await session.execute(
            select(Team.id, Team.name).where(Team.name.in_(["sales", "marketing", "sdr"]))
        )
    }
    missing = [t for t in ("sales", "marketing") if t not in teams]
    if missing:
        raise Conflict(
            f"A joint objective needs a sales and a marketing team; there is no {' or '.join(missing)} team.",
            errors=[{"field": "teams", "message": f"no {t} team"} for t in missing],
        )
    leaders = {
        int(team_id): int(pid)
        for pid, team_id in await session.execute(
            select(Person.id, Person.team_id)
            .where(Person.role == Role.LEADER, Person.team_id.in_(teams.values()))
            .order_by(Person.id.desc())
        )
    }
    currency = settings.org_currency
    target_text = f"{currency} {to_major(plan.inputs.revenue_target, currency):,}"
    o = await goals.create_objective(
        session,
        settings=settings,
        user=user,
        quarter=quarter,
        fields=goals.ObjectiveFields(
            title=f"Hit {target_text} of revenue in {quarter.key}",
            description=(
                f"From the funnel plan “{view.name}”: {plan.stage('deals').count} deals, "
                f"{plan.stage('sqls').count} SQLs, {plan.stage('mqls').count} MQLs, "
                f"{plan.stage('leads').count} leads."
            ),
            team_ids=tuple(sorted(teams.values())),
            owner_id=user.id,
        ),
        via=via,
    )
    made: list[KeyResultMade] = []
    for team, metric, title, key in JOINT_KRS:
        owner_team = team if team in teams else "sales"
        kpi = kpis.library_kpi(metric)
        raw = _figure(plan, key)
        target = goals.kr_value_of(raw, kpi, currency)
        assert target is not None
        shown = f"{currency} {target:,}" if kpi.unit == "currency" else f"{raw:,}"
        leader = leaders.get(teams[owner_team])
        kr = await goals.create_key_result(
            session,
            settings=settings,
            user=user,
            objective_id=o.id,
            fields=goals.KeyResultFields(
                title=title.format(value=shown),
                kind=goals_core.Kind.INCREASE_TO,
                unit=goals.kpi_unit(kpi),
                start_value=Decimal(0),
                target=target,
                owner_ids=() if leader is None else (leader,),
                source=goals_core.Source.METRIC,
                metric=metric,
                filters=KpiFilters(),
            ),
            via=via,
        )
        before = await goals.trailing_value(
            session, settings=settings, quarter=quarter, metric=metric, filters=KpiFilters()
        )
        made.append(
            KeyResultMade(
                id=kr.id,
                title=kr.title,
                metric=metric,
                team=owner_team,
                target=target,
                trailing=goals.plain(before),
                flagged=goals_core.is_sandbagged(goals_core.Kind.INCREASE_TO, target, before),
            )
        )
    row.objective_id = o.id
    await session.flush()
    await audit.record(
        session,
        actor=goals.actor_of(user, via),
        actor_id=user.id,
        action="funnel_plan.objective",
        entity="funnel_plan",
        entity_id=row.id,
        before={"objective_id": None},
        after={"objective_id": o.id, "key_results": [k.id for k in made]},
    )
    return ObjectiveMade(objective_id=o.id, period=quarter.key, key_results=made)


async def objective_flags(
    session: AsyncSession, *, settings: Settings, objective_id: int
) -> list[tuple[int, str, bool, Decimal | None]]:
    """Each KR of an objective: (id, title, flagged, trailing actual), by the goals' sandbagging rule."""
    ids = (
        await session.execute(
            select(KeyResult.id, KeyResult.title)
            .where(KeyResult.objective_id == objective_id, KeyResult.archived_at.is_(None))
            .order_by(KeyResult.position)
        )
    ).all()
    found = []
    for kr_id, title in ids:
        flagged, before = await goals.sandbagging(session, settings=settings, key_result_id=int(kr_id))
        found.append((int(kr_id), str(title), flagged, before))
    return found
