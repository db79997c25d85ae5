"""Write the demo organisation as DESIGN 7 files and load it through the import path."""

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution.parallel import run_recompute
from okr.auth.schemas import CurrentUser
from okr.bonus import services as bonus
from okr.db.bonus import BonusPlan, BonusRun, PlanStatus
from okr.db.engine import create_engine, session_factory, write_intent
from okr.db.people import Period, Person, Team
from okr.db.sla import SlaPolicy
from okr.demo import core
from okr.goals import services as goals
from okr.imports.services import ImportResult, import_folder
from okr.kpis import services as kpis
from okr.kpis.core import ADDITIVE, KpiFilters, get_kpi
from okr.lib.clock import utcnow
from okr.lib.periods import quarter_of
from okr.people.services import set_password
from okr.periods.services import ensure_periods
from okr.settings import Settings

Echo = Callable[[str], object]
DEMO_ACTOR = "demo"


def today_in_org(settings: Settings) -> dt.date:
    """Today's date in the organisation's time zone."""
    return utcnow().astimezone(settings.tz).date()


def write_demo(*, out: Path, seed: int, scale: str, settings: Settings) -> dict[str, int]:
    """Write the demo data set's CSV files into `out`; rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    return core.generate(out, seed=seed, scale=scale, today=today_in_org(settings))


def report(results: list[ImportResult], echo: Echo) -> bool:
    """Print what each file did (and every reported error of a rejected one); True when all loaded."""
    for r in results:
        if r.ok:
            echo(f"  {r.entity:<20} {r.rows:>10,} rows  {r.created:>10,} new  {r.updated:>10,} existing")
        else:
            echo(f"  {r.entity:<20} REJECTED: {r.error_count:,} errors, nothing written from this file")
            for e in r.errors:
                echo(f"    row {e['row']}, column {e['column']}: {e['reason']}")
            if r.error_count > len(r.errors):
                echo(f"    ... and {r.error_count - len(r.errors):,} more")
    return bool(results) and all(r.ok for r in results)


async def finish_demo(session: AsyncSession, *, settings: Settings) -> None:
    """Give the demo logins their password and create the periods around today."""
    for _, email, _ in core.DEMO_LOGINS:
        await set_password(session, email=email, password=core.DEMO_PASSWORD, actor=DEMO_ACTOR)
    today = today_in_org(settings)
    await ensure_periods(
        session,
        settings=settings,
        first=today - dt.timedelta(days=460),
        last=today + dt.timedelta(days=92),
        today=today,
    )


async def load_demo(*, settings: Settings, seed: int, scale: str, echo: Echo) -> bool:
    """Generate the demo organisation into a temporary folder and import it; True when loaded."""
    with tempfile.TemporaryDirectory(prefix="okr-demo-") as tmp:
        folder = Path(tmp)
        echo(f"Generating the {scale} demo organisation (seed {seed})...")
        write_demo(out=folder, seed=seed, scale=scale, settings=settings)
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as session:
                with write_intent():
                    echo("Loading it through the import path:")
                    if not report(
                        await import_folder(session, folder=folder, settings=settings, actor=DEMO_ACTOR), echo
                    ):
                        return False
                    await finish_demo(session, settings=settings)
                    await session.commit()
            echo("Computing attribution (every model, both scopes)...")
            await run_recompute(settings)
            async with session_factory(engine)() as session:
                with write_intent():
                    made = await plant_goals(session, settings=settings, today=today_in_org(settings))
                    await session.commit()
            echo(f"Planted this quarter's goals: {made} objectives, targets from the last two quarters.")
            async with session_factory(engine)() as session:
                with write_intent():
                    await plant_sla(session, settings=settings, today=today_in_org(settings))
                    run = await plant_bonus(session, settings=settings, today=today_in_org(settings))
                    await session.commit()
            if run is not None:
                echo(f"Ran this quarter's bonus so far: run {run.id}, approved and not locked yet.")
        finally:
            await engine.dispose()
    return True


async def load_demo_if_empty(*, settings: Settings, seed: int, echo: Echo) -> bool:
    """Load the small demo organisation when nobody is in the database yet; True when it did."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            people = await session.scalar(select(func.count()).select_from(Person))
    finally:
        await engine.dispose()
    if people:
        return False
    return await load_demo(settings=settings, seed=seed, scale="small", echo=echo)


def login_banner(url: str) -> str:
    """Where to log in and as whom."""
    width = max(len(label) for label, _, _ in core.DEMO_LOGINS)
    lines = [
        "",
        f"okr is at {url}",
        f"Demo logins (password for all: {core.DEMO_PASSWORD}):",
        *(f"  {label:<{width}}  {email}" for label, email, _ in core.DEMO_LOGINS),
        "",
    ]
    return "\n".join(lines)


# -- Goals: the current quarter's objectives, planned from the trailing actuals -----------------------


@dataclass(frozen=True, slots=True)
class _KrPlan:
    title: str
    kind: str
    metric: str | None
    owners: tuple[str, ...]
    growth: Decimal | None = None  # target = trailing actual x growth (metric increase/decrease KRs)
    target: Decimal | None = None  # fixed target (stay_* KRs, manual KRs)
    start: Decimal = Decimal(0)
    unit: str | None = None  # manual KRs
    bonus: bool = False
    team: str | None = None  # the KPI narrowed to this team
    # (day of the quarter, value, confidence, note)
    check_ins: tuple[tuple[int, Decimal | None, str, str], ...] = ()


_GOALS: Final = (
    (
        "Grow new revenue together",
        "One number for sales and marketing: the revenue we win and the pipeline that feeds it.",
        ("sales", "marketing", "sdr"),
        "cro",
        (
            _KrPlan(
                "Win more new revenue",
                "increase_to",
                "revenue_won",
                ("vp.sales", "vp.marketing"),
                growth=Decimal("1.15"),
                bonus=True,
            ),
            _KrPlan(
                "Marketing sources more pipeline",
                "increase_to",
                "pipeline_sourced_marketing",
                ("vp.marketing",),
                growth=Decimal("1.2"),
                bonus=True,
            ),
            _KrPlan("Raise the win rate", "increase_to", "win_rate", ("vp.sales",), growth=Decimal("1.1")),
        ),
    ),
    (
        "Hand over leads fast and well",
        "Marketing sends leads sales wants; sales follows up inside the SLA.",
        ("marketing", "sdr"),
        "vp.marketing",
        (
            _KrPlan(
                "MQLs delivered", "increase_to", "mqls", ("vp.marketing", "marketer"), growth=Decimal("1.1")
            ),
            _KrPlan(
                "Sales accepts the leads it gets",
                "stay_above",
                "acceptance_rate",
                ("vp.marketing",),
                target=Decimal(75),
            ),
            _KrPlan(
                "Follow up inside the SLA",
                "stay_above",
                "sla_compliance",
                ("sdr",),
                target=Decimal(80),
                bonus=True,
            ),
            _KrPlan(
                "Webinar attendees",
                "increase_to",
                None,
                ("marketer",),
                target=Decimal(1500),
                unit="count",
                check_ins=(
                    (7, Decimal(180), "on_track", "Two webinars done, good turnout."),
                    (21, Decimal(420), "on_track", "Partner webinar filled up."),
                    (35, Decimal(610), "at_risk", "One speaker cancelled; rescheduling."),
                ),
            ),
        ),
    ),
    (
        "Close faster",
        "Shorter cycles free reps for the next deal.",
        ("sales",),
        "vp.sales",
        (
            _KrPlan(
                "Shorten the sales cycle",
                "decrease_to",
                "sales_cycle_days",
                ("vp.sales", "rep"),
                growth=Decimal("0.9"),
            ),
            _KrPlan(
                "Mutual close plans on every deal over USD 50k",
                "milestone",
                None,
                ("rep",),
                target=Decimal(1),
                unit="count",
                check_ins=((14, Decimal(0), "at_risk", "Template agreed; half the deals have one."),),
            ),
        ),
    ),
)


def _nice(value: Decimal) -> Decimal:
    """A target people would write down: two significant digits."""
    if value <= 0:
        return value
    digits = value.adjusted() - 1
    step = Decimal(10) ** digits
    return (value / step).quantize(Decimal(1)) * step


async def plant_goals(session: AsyncSession, *, settings: Settings, today: dt.date) -> int:
    """The demo's objectives for today's quarter (targets from the trailing two quarters), with check-ins;
    how many objectives. Written through the goals services, as the admin, so they are audited."""
    people = {p.email.split("@")[0]: p for p in (await session.scalars(select(Person))).all()}
    teams = {t.name: t for t in (await session.scalars(select(Team))).all()}
    admin = people["admin"]
    user = CurrentUser(admin.id, admin.email, admin.name, "admin", admin.team_id, "revops")
    quarter = quarter_of(today, settings.fiscal_year_start_month)
    start, _ = quarter.utc_bounds(settings.tz, settings.fiscal_year_start_month)
    made = 0
    for title, description, team_names, owner, plans in _GOALS:
        objective = await goals.create_objective(
            session,
            settings=settings,
            user=user,
            quarter=quarter,
            fields=goals.ObjectiveFields(
                title=title,
                description=description,
                team_ids=tuple(teams[n].id for n in team_names if n in teams),
                owner_id=people[owner].id,
            ),
            via=DEMO_ACTOR,
        )
        made += 1
        for plan in plans:
            filters = KpiFilters(team_id=teams[plan.team].id) if plan.team else KpiFilters()
            kpi = get_kpi(plan.metric) if plan.metric else None
            start_value, target = plan.start, plan.target
            if kpi is not None and plan.growth is not None:
                trailing = await kpis.trailing_actual(
                    session, settings=settings, quarter=quarter, name=kpi.name, filters=filters
                )
                actual = goals.kr_value_of(trailing, kpi, settings.org_currency)
                if not actual:
                    continue
                target = _nice(actual * plan.growth)
                # Counts and amounts pile up over the quarter from 0; a rate or a duration starts where
                # the team stands.
                cumulative = plan.kind == "increase_to" and kpi.name in ADDITIVE
                start_value = Decimal(0) if cumulative else _nice(actual)
                if start_value == target:
                    continue
            assert target is not None
            kr = await goals.create_key_result(
                session,
                settings=settings,
                user=user,
                objective_id=objective.id,
                fields=goals.KeyResultFields(
                    title=plan.title,
                    kind=plan.kind,
                    unit=goals.kpi_unit(kpi) if kpi else (plan.unit or "count"),
                    start_value=start_value,
                    target=target,
                    owner_ids=tuple(people[o].id for o in plan.owners if o in people),
                    counts_toward_bonus=plan.bonus,
                    source="metric" if kpi else "manual",
                    metric=kpi.name if kpi else None,
                    filters=filters,
                ),
                via=DEMO_ACTOR,
            )
            for day, value, confidence, note in plan.check_ins:
                when = start + dt.timedelta(days=day, hours=15)
                if when.date() > today:
                    break
                author = people[plan.owners[0]]
                c = await goals.check_in(
                    session,
                    settings=settings,
                    user=CurrentUser(author.id, author.email, author.name, author.role, author.team_id, ""),
                    key_result_id=kr.id,
                    value=value,
                    confidence=confidence,
                    note=note,
                    via=DEMO_ACTOR,
                )
                c.created_at = when  # the demo's history: check-ins through the quarter so far
    await session.flush()
    return made


# -- SLA: this quarter's policy, with marketing's commitment from the last two quarters -----------------


async def plant_sla(session: AsyncSession, *, settings: Settings, today: dt.date) -> SlaPolicy | None:
    """This quarter's SLA policy: DESIGN 5's defaults, and marketing committing to a tenth more MQLs a month
    than it delivered over the last two quarters (rounded to ten)."""
    quarter = quarter_of(today, settings.fiscal_year_start_month)
    period = await session.scalar(select(Period).where(Period.key == quarter.key))
    if period is None:
        return None
    trailing = await kpis.trailing_actual(session, settings=settings, quarter=quarter, name="mqls")
    per_month = Decimal(int(trailing or 0)) / 3 * Decimal("1.1")
    policy = SlaPolicy(
        period_id=period.id,
        follow_up_hours=24,
        weekdays=[0, 1, 2, 3, 4],
        day_start_minute=9 * 60,
        day_end_minute=17 * 60,
        acceptance_target=Decimal("0.9"),
        mql_commitment=int((per_month / 10).to_integral_value()) * 10,
        updated_at=utcnow(),
    )
    session.add(policy)
    await session.flush()
    return policy


# -- Bonus: this quarter's approved plan and an approved (not locked) run of it ------------------------


async def plant_bonus(session: AsyncSession, *, settings: Settings, today: dt.date) -> BonusRun | None:
    """An approved plan for today's quarter, and a run of it submitted by finance and approved by the
    second finance login, so that finance can lock it and every rep can read a statement."""
    people = {p.email.split("@")[0]: p for p in (await session.scalars(select(Person))).all()}
    teams = {t.name for t in (await session.scalars(select(Team))).all()}
    quarter = quarter_of(today, settings.fiscal_year_start_month)
    period = await session.scalar(select(Period).where(Period.key == quarter.key))
    if period is None or not {"sales", "marketing", "sdr"} <= teams:
        return None

    def login(name: str) -> CurrentUser:
        p = people[name]
        return CurrentUser(p.id, p.email, p.name, p.role, p.team_id, "")

    now = utcnow()
    plan = BonusPlan(
        period_id=period.id,
        version=1,
        status=PlanStatus.APPROVED,
        funding_rate=Decimal("0.03"),
        pipeline_rate=Decimal("0.002"),
        pool_cap=None,
        kr_cap=Decimal("1.5"),
        # Nothing below a quarter of the goals, then a ramp: mid-quarter the demo still pays something.
        gate_curve=[["0.25", "0"], ["1.0", "1.0"], ["1.5", "2.0"]],
        teams=[
            {"team": "sales", "share": "0.55", "rule": "by_credit"},
            {"team": "marketing", "share": "0.3", "rule": "by_credit"},
            {"team": "sdr", "share": "0.15", "rule": "by_target_bonus"},
        ],
        model="w_shaped",
        scope="revenue",
        count_overlay=False,
        cap_multiple=Decimal(3),
        prorate=True,
        leftover_policy="carry_forward",
        clawback_days=90,
        note="Demo plan: 3 % of won revenue, 0.2 % of marketing-sourced pipeline, gated by the joint score.",
        created_at=now,
        created_by_id=people["vp.sales"].id,
        approved_at=now,
        approved_by_id=people["admin"].id,
    )
    session.add(plan)
    await session.flush()
    run = await bonus.create_run(session, settings=settings, period_key=period.key, user=login("finance"))
    await bonus.compute_run(session, settings=settings, run_id=run.id)
    await bonus.submit_run(session, run_id=run.id, user=login("finance"))
    await bonus.approve_run(session, run_id=run.id, user=login("finance.approver"))
    return run
