"""Bonus plan versions (DESIGN 6.1): read, draft, approve, and the gate-curve chart the editor draws.

A plan is never edited: every save is a new version (max + 1) in `draft`; an admin approves one draft
and the version approved before it becomes `superseded`, so the history is kept whole. The rules a plan
must follow live in `okr.bonus.core.plan_problems`; this module adds only what the database needs (a
known attribution model and scope, rates that fit the stored precision). Services flush; the request or
job commits.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.bonus import core
from okr.db.attribution import STORED_MODELS
from okr.db.bonus import BonusPlan, PlanStatus
from okr.db.people import Period, PeriodState, Person, Role, Team
from okr.goals.core import DEFAULT_KR_CAP
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, NotFound, OkrError, ValidationFailed
from okr.lib.periods import Quarter
from okr.periods.services import ensure_periods
from okr.settings import Settings

SCOPES: Final = ("revenue", "pipeline")
RULES: Final = tuple(r.value for r in core.AllocationRule)
LEFTOVER_POLICIES: Final = tuple(p.value for p in core.LeftoverPolicy)
MODELS: Final = STORED_MODELS
RATE_PLACES: Final = 10  # the Rate column keeps ten decimals: more would be silently rounded
DEFAULT_CURVE: Final = (
    (Decimal("0.5"), Decimal(0)),
    (Decimal("0.5"), Decimal("0.5")),
    (Decimal("1.0"), Decimal("1.0")),
    (Decimal("1.5"), Decimal("2.0")),
)


class PlanNotAllowed(OkrError):
    """The caller's role does not allow this change to the bonus plan."""

    status_code = 403
    title = "Not allowed"


class PlanPeriodClosed(Conflict):
    """A closed period's plan is kept as it was."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"{key} is closed: its bonus plan can no longer change. "
            "An admin can reopen the period if it must."
        )


# -- who may do what (DESIGN 8: member read, leader write draft, finance read, admin all) -------------------


def may_write_plan(user: CurrentUser) -> bool:
    """Leaders and admins may draft a new plan version."""
    return user.has_role(Role.LEADER)


def may_approve_plan(user: CurrentUser) -> bool:
    """Only admins approve a plan version."""
    return user.is_admin


def check_may_write_plan(user: CurrentUser) -> None:
    """PlanNotAllowed unless the caller is a leader or an admin."""
    if not may_write_plan(user):
        raise PlanNotAllowed("Only leaders and admins can draft the bonus plan; everyone else can read it.")


def check_may_approve_plan(user: CurrentUser) -> None:
    """PlanNotAllowed unless the caller is an admin."""
    if not may_approve_plan(user):
        raise PlanNotAllowed("Only an admin can approve a bonus plan version.")


# -- value types -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamFields:
    """One team's share of the pool and its allocation rule."""

    team: str
    share: Decimal
    rule: str = core.AllocationRule.BY_CREDIT


@dataclass(frozen=True, slots=True)
class PlanFields:
    """Everything a caller sets on a plan version; amounts in minor units, rates as Decimals."""

    funding_rate: Decimal
    gate_curve: tuple[tuple[Decimal, Decimal], ...]
    teams: tuple[TeamFields, ...]
    pipeline_rate: Decimal = Decimal(0)
    pool_cap: int | None = None
    kr_cap: Decimal = DEFAULT_KR_CAP
    model: str = "w_shaped"
    scope: str = "revenue"
    count_overlay: bool = False
    cap_amount: int | None = None
    cap_multiple: Decimal | None = None
    prorate: bool = True
    leftover_policy: str = core.LeftoverPolicy.CARRY_FORWARD
    clawback_days: int = 90
    note: str = ""


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """A stored version with the names of who drafted and who approved it."""

    plan: BonusPlan
    created_by: str | None
    approved_by: str | None


def _person_cap(cap_amount: int | None, cap_multiple: Decimal | None) -> core.Cap | None:
    if cap_amount is None and cap_multiple is None:
        return None
    return core.Cap(amount=cap_amount, multiple=cap_multiple)


def core_plan(fields: PlanFields) -> core.Plan:
    """The pure core's plan for `fields`."""
    return core.Plan(
        funding_rate=fields.funding_rate,
        gate_curve=tuple(fields.gate_curve),
        teams=tuple(core.TeamPlan(t.team.strip(), t.share, t.rule) for t in fields.teams),
        pipeline_rate=fields.pipeline_rate,
        pool_cap=fields.pool_cap,
        kr_cap=fields.kr_cap,
        person_cap=_person_cap(fields.cap_amount, fields.cap_multiple),
        leftover_policy=fields.leftover_policy,
        clawback_days=fields.clawback_days,
    )


def plain(value: Decimal) -> Decimal:
    """A stored Numeric without the column's trailing zeros: 0.0300000000 -> 0.03, 2.0000000000 -> 2."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def fields_of(plan: BonusPlan) -> PlanFields:
    """The fields of a stored version (rates as typed, without the column's trailing zeros)."""
    return PlanFields(
        funding_rate=plain(plan.funding_rate),
        gate_curve=tuple((Decimal(s), Decimal(m)) for s, m in plan.gate_curve),
        teams=tuple(
            TeamFields(str(t["team"]), Decimal(str(t["share"])), str(t.get("rule", "by_credit")))
            for t in plan.teams
        ),
        pipeline_rate=plain(plan.pipeline_rate),
        pool_cap=plan.pool_cap,
        kr_cap=plain(plan.kr_cap),
        model=plan.model,
        scope=plan.scope,
        count_overlay=plan.count_overlay,
        cap_amount=plan.cap_amount,
        cap_multiple=None if plan.cap_multiple is None else plain(plan.cap_multiple),
        prorate=plan.prorate,
        leftover_policy=plan.leftover_policy,
        clawback_days=plan.clawback_days,
        note=plan.note or "",
    )


def to_core(plan: BonusPlan) -> core.Plan:
    """A stored version as the pure core's plan (its person cap from cap_amount / cap_multiple)."""
    return core_plan(fields_of(plan))


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def plan_problems(fields: PlanFields) -> dict[str, str]:
    """What is wrong with `fields`, field by field: the core's rules plus what storage needs."""
    problems = core.plan_problems(core_plan(fields))
    for name in ("funding_rate", "pipeline_rate", "kr_cap", "cap_multiple"):
        value = getattr(fields, name)
        if name not in problems and value is not None and _places(value) > RATE_PLACES:
            problems[name] = f"Use at most {RATE_PLACES} decimal places."
    if fields.cap_multiple is not None and _places(fields.cap_multiple) > RATE_PLACES:
        problems.setdefault("person_cap", f"Use at most {RATE_PLACES} decimal places.")
    if fields.model not in MODELS:
        problems["model"] = "Choose an attribution model from the list."
    if fields.scope not in SCOPES:
        problems["scope"] = "Choose revenue or pipeline."
    if len(fields.note) > 2000:
        problems["note"] = "Keep the note under 2,000 characters."
    return problems


def _invalid(problems: Mapping[str, str]) -> ValidationFailed:
    names = ", ".join(problems)
    return ValidationFailed(
        f"The bonus plan was not saved: correct {names}.",
        errors=[{"field": name, "message": message} for name, message in problems.items()],
    )


def snapshot(plan: BonusPlan) -> dict[str, Any]:
    """A version's fields as JSON (decimals as text), for the audit log."""
    return {
        "period_id": plan.period_id,
        "version": plan.version,
        "status": plan.status,
        "funding_rate": str(plan.funding_rate),
        "pipeline_rate": str(plan.pipeline_rate),
        "pool_cap": plan.pool_cap,
        "kr_cap": str(plan.kr_cap),
        "gate_curve": plan.gate_curve,
        "teams": plan.teams,
        "model": plan.model,
        "scope": plan.scope,
        "count_overlay": plan.count_overlay,
        "cap_amount": plan.cap_amount,
        "cap_multiple": None if plan.cap_multiple is None else str(plan.cap_multiple),
        "prorate": plan.prorate,
        "leftover_policy": plan.leftover_policy,
        "clawback_days": plan.clawback_days,
        "note": plan.note,
    }


def _actor(user: CurrentUser, via: str | None) -> str:
    return user.email if via is None else f"{user.email} (token {via})"


# -- queries -----------------------------------------------------------------------------------------------


async def plan_versions(session: AsyncSession, period_id: int) -> list[PlanVersion]:
    """Every version of a period's plan, newest first, with who drafted and approved each."""
    creator, approver = aliased(Person), aliased(Person)
    rows = await session.execute(
        select(BonusPlan, creator.name, approver.name)
        .outerjoin(creator, creator.id == BonusPlan.created_by_id)
        .outerjoin(approver, approver.id == BonusPlan.approved_by_id)
        .where(BonusPlan.period_id == period_id)
        .order_by(BonusPlan.version.desc())
    )
    return [PlanVersion(plan, created, approved) for plan, created, approved in rows]


async def plan_version(session: AsyncSession, *, plan_id: int) -> PlanVersion:
    """One version with its people's names; NotFound when there is none."""
    creator, approver = aliased(Person), aliased(Person)
    row = (
        await session.execute(
            select(BonusPlan, creator.name, approver.name)
            .outerjoin(creator, creator.id == BonusPlan.created_by_id)
            .outerjoin(approver, approver.id == BonusPlan.approved_by_id)
            .where(BonusPlan.id == plan_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no bonus plan version {plan_id}.")
    return PlanVersion(row[0], row[1], row[2])


async def latest_plan(session: AsyncSession, *, period_id: int) -> BonusPlan | None:
    """The period's newest version, whatever its status."""
    stmt = (
        select(BonusPlan).where(BonusPlan.period_id == period_id).order_by(BonusPlan.version.desc()).limit(1)
    )
    return (await session.scalars(stmt)).one_or_none()


async def approved_plan(session: AsyncSession, *, period_id: int) -> BonusPlan | None:
    """The version in force: the period's approved one, or None before any approval."""
    stmt = select(BonusPlan).where(BonusPlan.period_id == period_id, BonusPlan.status == PlanStatus.APPROVED)
    return (await session.scalars(stmt.order_by(BonusPlan.version.desc()).limit(1))).one_or_none()


def _equal_shares(count: int) -> list[Decimal]:
    """`count` shares of 1 to two places (four when needed) summing to exactly 1; the last takes the rest."""
    if count <= 0:
        return []
    places = Decimal("0.01") if count <= 100 else Decimal("0.0001")
    each = (Decimal(1) / count).quantize(places, rounding=ROUND_DOWN)
    return [each] * (count - 1) + [Decimal(1) - each * (count - 1)]


async def default_fields(session: AsyncSession, *, period: Period | None, settings: Settings) -> PlanFields:
    """A starting point for a period without a plan: the previous period's approved plan, else defaults."""
    first = period.start_date if period is not None else None
    if first is not None:
        previous = (
            await session.scalars(
                select(BonusPlan)
                .join(Period, Period.id == BonusPlan.period_id)
                .where(Period.start_date < first, BonusPlan.status == PlanStatus.APPROVED)
                .order_by(Period.start_date.desc(), BonusPlan.version.desc())
                .limit(1)
            )
        ).one_or_none()
        if previous is not None:
            return fields_of(previous)
    names = list((await session.scalars(select(Team.name).order_by(Team.name))).all())
    teams: tuple[TeamFields, ...]
    if "sales" in names and "marketing" in names:
        teams = (TeamFields("sales", Decimal("0.6")), TeamFields("marketing", Decimal("0.4")))
    else:
        teams = tuple(TeamFields(n, s) for n, s in zip(names, _equal_shares(len(names)), strict=True))
    return PlanFields(
        funding_rate=Decimal("0.03"),
        gate_curve=DEFAULT_CURVE,
        teams=teams,
        kr_cap=DEFAULT_KR_CAP,
    )


async def period_of(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, create: bool = False
) -> Period | None:
    """The stored period of `quarter` (created when `create` and missing)."""
    if create:
        today = utcnow().astimezone(settings.tz).date()
        first, _ = quarter.dates(settings.fiscal_year_start_month)
        [period] = await ensure_periods(session, settings=settings, first=first, last=first, today=today)
        return period
    stmt = select(Period).where(Period.key == quarter.key)
    return (await session.scalars(stmt)).one_or_none()


# -- changes -----------------------------------------------------------------------------------------------


async def save_plan(
    session: AsyncSession,
    *,
    period: Period,
    fields: PlanFields,
    user: CurrentUser,
    via: str | None = None,
) -> BonusPlan:
    """Store `fields` as the period's next version, in draft; ValidationFailed names each bad field."""
    check_may_write_plan(user)
    if period.state == PeriodState.CLOSED:
        raise PlanPeriodClosed(period.key)
    problems = plan_problems(fields)
    if problems:
        raise _invalid(problems)
    top = await session.scalar(select(func.max(BonusPlan.version)).where(BonusPlan.period_id == period.id))
    plan = BonusPlan(
        period_id=period.id,
        version=(top or 0) + 1,
        status=PlanStatus.DRAFT,
        funding_rate=fields.funding_rate,
        pipeline_rate=fields.pipeline_rate,
        pool_cap=fields.pool_cap,
        kr_cap=fields.kr_cap,
        gate_curve=[[str(s), str(m)] for s, m in fields.gate_curve],
        teams=[{"team": t.team.strip(), "share": str(t.share), "rule": t.rule} for t in fields.teams],
        model=fields.model,
        scope=fields.scope,
        count_overlay=fields.count_overlay,
        cap_amount=fields.cap_amount,
        cap_multiple=fields.cap_multiple,
        prorate=fields.prorate,
        leftover_policy=fields.leftover_policy,
        clawback_days=fields.clawback_days,
        note=fields.note.strip() or None,
        created_at=utcnow(),
        created_by_id=user.id,
    )
    session.add(plan)
    await session.flush()
    await audit.record(
        session,
        actor=_actor(user, via),
        actor_id=user.id,
        action="bonus_plan.save",
        entity="bonus_plan",
        entity_id=plan.id,
        after={"period": period.key, **snapshot(plan)},
    )
    return plan


async def approve_plan(
    session: AsyncSession, *, plan_id: int, user: CurrentUser, via: str | None = None
) -> BonusPlan:
    """Approve a draft (admins); the version approved before it in that period becomes superseded."""
    check_may_approve_plan(user)
    plan = await session.get(BonusPlan, plan_id, with_for_update=True)
    if plan is None:
        raise NotFound(f"There is no bonus plan version {plan_id}.")
    period = await session.get(Period, plan.period_id)
    if period is None:  # the foreign key makes this impossible
        raise NotFound(f"Period {plan.period_id} does not exist.")
    if period.state == PeriodState.CLOSED:
        raise PlanPeriodClosed(period.key)
    if plan.status != PlanStatus.DRAFT:
        raise Conflict(
            f"Version {plan.version} of {period.key} is {plan.status}: only a draft can be approved."
        )
    current = await approved_plan(session, period_id=plan.period_id)
    if current is not None and current.version > plan.version:
        raise Conflict(
            f"Version {current.version} of {period.key}, newer than this draft, is already approved: "
            "draft again from it instead."
        )
    superseded = None
    if current is not None:
        await session.execute(
            update(BonusPlan)
            .where(BonusPlan.id == current.id)
            .values(status=PlanStatus.SUPERSEDED)
            .execution_options(synchronize_session="fetch")
        )
        current.status = PlanStatus.SUPERSEDED
        superseded = current.version
    plan.status = PlanStatus.APPROVED
    plan.approved_at = utcnow()
    plan.approved_by_id = user.id
    await session.flush()
    await audit.record(
        session,
        actor=_actor(user, via),
        actor_id=user.id,
        action="bonus_plan.approve",
        entity="bonus_plan",
        entity_id=plan.id,
        before={"status": PlanStatus.DRAFT.value, "approved_version": superseded},
        after={"period": period.key, "version": plan.version, "status": plan.status},
    )
    return plan


# -- the gate-curve chart (server-rendered SVG; exact arithmetic, coordinates to 0.1 px) ---------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis tick: where (px) and its label."""

    at: str
    label: str


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """A curve point drawn: its place (px) and values."""

    x: str
    y: str
    score: Decimal
    multiplier: Decimal


@dataclass(frozen=True, slots=True)
class Marker:
    """The current joint score on the curve."""

    x: str
    y: str
    score: Decimal
    multiplier: Decimal
    label: str
    anchor: str
    label_x: str
    label_y: str


@dataclass(frozen=True, slots=True)
class GateChart:
    """The gate curve drawn: axes, ticks, the polyline, the points, the marker and the text alternative."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    line: str
    points: tuple[ChartPoint, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    marker: Marker | None
    text: str
    problem: str | None = None
    steps: tuple[Decimal, ...] = field(default_factory=tuple)


def _px(value: Fraction) -> str:
    tenths = math.floor(value * 10 + Fraction(1, 2))
    return f"{tenths // 10}.{tenths % 10}"


def _nice(value: Decimal) -> str:
    """1.50 -> 1.5, 2.000 -> 2, 0.8333333 -> 0.833."""
    q = value.quantize(Decimal("0.001")) if _places(value) > 3 else value
    text = format(q.normalize(), "f")
    return text


def _axis_max(value: Fraction, floor: Fraction) -> Fraction:
    """The axis end: a multiple of 0.5 at or above value + a margin, never below `floor`."""
    return max(floor, Fraction(math.ceil((value + Fraction(1, 4)) * 2), 2))


def gate_chart(
    curve: Sequence[tuple[Decimal, Decimal]], score: Decimal | None, *, problem: str | None = None
) -> GateChart:
    """The gate curve as an SVG chart (0 below the first point, linear between, steps as vertical jumps,
    flat after the last point) with the joint score `score` marked on it."""
    width, height, left, right, top, bottom = 640, 300, 52, 616, 24, 252
    if problem is not None or not curve:
        reason = problem or "Give the curve at least one point."
        return GateChart(width, height, left, right, top, bottom, "", (), (), (), None, reason, reason)
    pts = [(Fraction(s), Fraction(m)) for s, m in curve]
    last_s, last_m = pts[-1]
    x_end = _axis_max(max(last_s, Fraction(score) if score is not None else Fraction(0)), Fraction(3, 2))
    y_end = _axis_max(max(m for _, m in pts), Fraction(1))
    span_x, span_y = Fraction(right - left), Fraction(bottom - top)

    def x_of(v: Fraction) -> str:
        return _px(left + span_x * min(v, x_end) / x_end)

    def y_of(v: Fraction) -> str:
        return _px(bottom - span_y * v / y_end)

    path = [(Fraction(0), Fraction(0)), (pts[0][0], Fraction(0)), *pts, (x_end, last_m)]
    line = " ".join(f"{x_of(x)},{y_of(y)}" for x, y in path)
    points = tuple(
        ChartPoint(x_of(s), y_of(m), Decimal(sd), Decimal(md))
        for (s, m), (sd, md) in zip(pts, curve, strict=True)
    )
    x_step = Fraction(1, 2) if x_end <= 3 else Fraction(1)
    y_step = Fraction(1, 2) if y_end <= 3 else Fraction(1)
    x_ticks = tuple(
        Tick(x_of(x_step * i), _nice(Decimal(x_step.numerator * i) / x_step.denominator))
        for i in range(int(x_end / x_step) + 1)
    )
    y_ticks = tuple(
        Tick(y_of(y_step * i), "×" + _nice(Decimal(y_step.numerator * i) / y_step.denominator))
        for i in range(int(y_end / y_step) + 1)
    )
    described = []
    prev: tuple[Decimal, Decimal] | None = None
    for s, m in curve:
        if prev is not None and prev[0] == s:
            described.append(f"at {_nice(s)} it steps up to ×{_nice(m)}")
        else:
            described.append(f"at {_nice(s)}, ×{_nice(m)}")
        prev = (s, m)
    first_s = curve[0][0]
    text = (
        f"Gate curve: below a joint score of {_nice(first_s)} the multiplier is 0; "
        + "; ".join(described)
        + "; straight lines between the points; "
        + f"beyond {_nice(curve[-1][0])} it stays ×{_nice(curve[-1][1])}."
    )
    marker = None
    if score is not None:
        mult = core.gate_multiplier(curve, score)
        mx = left + span_x * min(Fraction(score), x_end) / x_end
        anchor = "end" if mx > left + span_x * 2 / 3 else "start"
        label = f"Joint score {_nice(score)} → ×{_nice(mult)}"
        label_x = mx - 8 if anchor == "end" else mx + 8
        my = Fraction(bottom) - span_y * Fraction(mult) / y_end
        label_y = my - 10 if my - 10 > top + 10 else my + 18
        marker = Marker(
            x_of(Fraction(score)),
            y_of(Fraction(mult)),
            score,
            mult,
            label,
            anchor,
            _px(label_x),
            _px(label_y),
        )
        text += f" The joint score now is {_nice(score)}: multiplier ×{_nice(mult)}."
    steps = tuple(a[0] for a, b in pairwise(curve) if a[0] == b[0])
    return GateChart(
        width, height, left, right, top, bottom, line, points, x_ticks, y_ticks, marker, text, None, steps
    )
