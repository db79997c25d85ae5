"""Goals services on both databases: writes with their permissions, version checks, audit events and closed
periods; scores, pace and forecasts against hand-computed numbers; metric KRs against the KPI library."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.goals.goals_data import (
    NOW,
    Q2,
    Q3,
    Q4,
    D,
    cast,
    check_in,
    key_result,
    objective,
)
from tests.integration.kpis.library_data import library_data

from okr.db.audit import AuditEvent
from okr.db.people import Period
from okr.goals import core
from okr.goals import services as goals
from okr.goals.guards import NotAllowed
from okr.kpis import services as kpis
from okr.kpis.core import KpiFilters
from okr.lib.clock import set_clock
from okr.lib.errors import Conflict, ValidationFailed
from okr.settings import Settings

ON, LAG, RISK = core.PaceStatus.ON_TRACK, core.PaceStatus.LAGGING, core.PaceStatus.AT_RISK


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: 2026-Q3 is under way, 45.5 of its 92 days gone by."""
    set_clock(lambda: NOW)
    kpis.clear_cache()
    goals.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    goals.clear_cache()


async def events(db: AsyncSession, action: str) -> list[AuditEvent]:
    return list(
        (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        ).all()
    )


# -- objectives: create, edit, permissions, conflicts, closed periods -----------------------------------------


async def test_a_leader_creates_a_joint_objective(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    first = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales,))
    joint = await objective(
        db, settings, c.sales_lead, "Own the mid-market", (c.sales, c.marketing), weight="2", owner=c.rep
    )
    overview = await goals.goals_overview(db, settings=settings, quarter=Q3, user=c.marketing_lead)
    assert [o.id for o in overview.objectives] == [first, joint]
    o = overview.objective(joint)
    assert o.joint and sorted(o.team_ids) == sorted([c.sales, c.marketing])
    assert (o.title, o.weight, o.position, o.version, o.owner) == (
        "Own the mid-market", D(2), 1, 1, goals.PersonRef(c.rep.id, "Seller"),
    )  # fmt: skip
    # Either team's leader may change a joint objective; the other objective is sales' alone.
    assert o.can_edit and not overview.objective(first).can_edit
    assert overview.window.state == "active" and not overview.window.read_only
    [event] = (await events(db, "objective.create"))[1:]
    assert (event.actor, event.actor_id, event.entity, event.entity_id) == (
        "vp.sales@example.com", c.sales_lead.id, "objective", str(joint),
    )  # fmt: skip
    assert event.before is None
    assert event.after is not None and event.after["team_ids"] == sorted([c.sales, c.marketing])
    assert event.after["period"] == "2026-Q3" and event.after["weight"] == "2"


async def test_who_may_write_objectives(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    fields = goals.ObjectiveFields(title="Ours", team_ids=(c.sales,))
    for reader in (c.rep, c.finance):
        with pytest.raises(NotAllowed) as refused:
            await goals.create_objective(db, settings=settings, user=reader, quarter=Q3, fields=fields)
        assert refused.value.status_code == 403 and "Only leaders and admins" in refused.value.detail
    with pytest.raises(NotAllowed, match="Keep your own team"):
        await goals.create_objective(db, settings=settings, user=c.marketing_lead, quarter=Q3, fields=fields)
    sales_only = await objective(db, settings, c.sales_lead, "Ours", (c.sales,))
    with pytest.raises(NotAllowed, match="belongs to another team"):
        await goals.update_objective(
            db, user=c.marketing_lead, objective_id=sales_only, version=1, changes={"title": "Mine now"}
        )
    # A leader may not hand their objective to another team alone (they could not change it again).
    with pytest.raises(NotAllowed, match="Keep your own team"):
        await goals.update_objective(
            db, user=c.sales_lead, objective_id=sales_only, version=1, changes={"team_ids": (c.marketing,)}
        )
    await db.rollback()
    # An admin may do anything, for any team.
    await goals.update_objective(
        db, user=c.admin, objective_id=sales_only, version=1, changes={"team_ids": (c.marketing,)}
    )
    await db.commit()
    assert (await goals.objective_view(db, settings=settings, objective_id=sales_only)).team_ids == (
        c.marketing,
    )


async def test_a_stale_version_is_a_conflict(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales,))
    await goals.update_objective(
        db,
        user=c.sales_lead,
        objective_id=oid,
        version=1,
        changes={"title": "Grow revenue fast", "weight": D(3)},
    )
    await db.commit()
    # Someone who opened the form at version 1 saves after that change.
    with pytest.raises(goals.EditConflict) as stale:
        await goals.update_objective(
            db, user=c.admin, objective_id=oid, version=1, changes={"title": "Other"}
        )
    assert stale.value.status_code == 409
    assert "changed by someone else since you opened it; reload" in stale.value.detail
    await db.rollback()
    view = await goals.objective_view(db, settings=settings, objective_id=oid)
    assert (view.title, view.weight, view.version) == ("Grow revenue fast", D(3), 2)
    [event] = await events(db, "objective.update")
    assert event.before is not None and event.after is not None
    assert (event.before["title"], event.before["weight"], event.before["version"]) == (
        "Grow revenue",
        "1",
        1,
    )
    assert (event.after["title"], event.after["weight"], event.after["version"]) == (
        "Grow revenue fast",
        "3",
        2,
    )
    # Key results are locked the same way.
    krid = await key_result(db, settings, c.sales_lead, oid, "Deals")
    await goals.update_key_result(
        db, settings=settings, user=c.sales_lead, key_result_id=krid, version=1, changes={"target": D(120)}
    )
    await db.commit()
    with pytest.raises(goals.EditConflict, match="key result was changed by someone else"):
        await goals.update_key_result(
            db, settings=settings, user=c.sales_lead, key_result_id=krid, version=1, changes={"target": D(90)}
        )


async def test_a_closed_period_is_read_only(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    # 2026-Q2 ended before today: it starts closed.
    with pytest.raises(goals.PeriodClosed) as closed:
        await objective(db, settings, c.admin, "Too late", (c.sales,), quarter=Q2)
    assert closed.value.status_code == 409 and "2026-Q2 is closed" in closed.value.detail
    await db.rollback()
    oid = await objective(db, settings, c.sales_lead, "Grow", (c.sales,))
    krid = await key_result(db, settings, c.sales_lead, oid, "Deals", owners=(c.rep.id,))
    await db.execute(update(Period).where(Period.key == "2026-Q3").values(state="closed"))
    await db.commit()
    attempts = [
        goals.update_objective(db, user=c.admin, objective_id=oid, version=1, changes={"title": "x"}),
        goals.archive_objective(db, user=c.admin, objective_id=oid),
        goals.move_objective(db, user=c.admin, objective_id=oid, direction="down"),
        goals.update_key_result(
            db, settings=settings, user=c.admin, key_result_id=krid, version=1, changes={}
        ),
        goals.check_in(
            db, settings=settings, user=c.rep, key_result_id=krid, value=D(5), confidence="on_track"
        ),
    ]
    for attempt in attempts:
        with pytest.raises(goals.PeriodClosed):
            await attempt
    overview = await goals.goals_overview(db, settings=settings, quarter=Q3, user=c.admin)
    assert overview.window.read_only and not overview.can_create
    assert not overview.objectives[0].can_edit and not overview.key_results[0].can_check_in


async def test_fields_are_checked_before_saving(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    with pytest.raises(ValidationFailed) as refused:
        await goals.create_objective(
            db,
            settings=settings,
            user=c.admin,
            quarter=Q3,
            fields=goals.ObjectiveFields(title=" ", weight=D(0)),
        )
    assert refused.value.status_code == 422
    assert {e["field"] for e in refused.value.errors} == {"title", "weight", "team_ids"}
    await db.rollback()
    oid = await objective(db, settings, c.sales_lead, "Grow", (c.sales,))
    bad = goals.KeyResultFields(
        title="Pipeline",
        kind="increase_to",
        unit="count",
        start_value=D(10),
        target=D(10),
        owner_ids=(999_999,),
    )
    with pytest.raises(ValidationFailed) as refused:
        await goals.create_key_result(db, settings=settings, user=c.sales_lead, objective_id=oid, fields=bad)
    assert {e["field"]: e["message"] for e in refused.value.errors} == {
        "target": "The target must differ from the start value.",
        "owner_ids": "Choose the owners from the list.",
    }
    await db.rollback()
    metric = goals.KeyResultFields(
        title="Pipeline",
        kind="increase_to",
        unit="count",
        start_value=D(0),
        target=D("1000.001"),
        source="metric",
        metric="pipeline_created",
        filters=KpiFilters(team_id=999_999),
    )
    with pytest.raises(ValidationFailed) as refused:
        await goals.create_key_result(
            db, settings=settings, user=c.sales_lead, objective_id=oid, fields=metric
        )
    errors = {e["field"]: e["message"] for e in refused.value.errors}
    # The unit follows the KPI (currency), so a cent fraction is refused, and the team must exist.
    assert errors == {"target": "Use at most 2 decimals for USD.", "filter_team": "There is no team 999999."}


# -- scores, pace, status ----------------------------------------------------------------------------------


async def test_scores_pace_and_status_by_hand(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    a = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales,))
    up = await key_result(db, settings, c.sales_lead, a, "Deals", owners=(c.rep.id,))
    down = await key_result(
        db, settings, c.sales_lead, a, "Days to close", kind="decrease_to", unit="days", start="40", target="20",
        weight="2",
    )  # fmt: skip
    mile = await key_result(db, settings, c.sales_lead, a, "Launch", kind="milestone", target="1")
    b = await objective(db, settings, c.marketing_lead, "Brand", (c.marketing,), weight="3")
    stay = await key_result(
        db, settings, c.marketing_lead, b, "NPS", kind="stay_above", unit="percent", start="90", target="90"
    )
    over = await key_result(db, settings, c.marketing_lead, b, "Webinars", target="10")
    await check_in(db, settings, c.rep, up, "50", note="Half way")
    await check_in(db, settings, c.sales_lead, down, "35", "at_risk")
    await check_in(db, settings, c.marketing_lead, stay, "95")
    await check_in(db, settings, c.marketing_lead, over, "15")

    overview = await goals.goals_overview(db, settings=settings, quarter=Q3, user=c.rep)
    krs = {kr.id: kr for kr in overview.key_results}
    # 45.5 of 92 days gone by: 91/184 of the way is due today.
    assert overview.window.share(overview.now) == D(91) / D(184)
    k = krs[up]
    assert (k.value, k.attainment, k.fill, k.overflow) == (D(50), D("0.5"), D("0.5"), D(0))
    assert k.expected == D("49.45652173913043478260869565")  # 100 x 91/184
    assert k.pace == D("1.010989010989010989010989011") and k.status is ON  # 0.5 / (91/184) = 92/91
    assert k.last_check_in is not None and k.last_check_in.note == "Half way"
    assert k.can_check_in  # an owner, though a member
    k = krs[down]
    assert (k.value, k.attainment) == (D(35), D("0.25"))
    assert k.pace == D("0.5054945054945054945054945055") and k.status is RISK  # 46/91
    assert not k.can_check_in  # the member does not own it
    k = krs[mile]
    assert (k.value, k.attainment, k.pace, k.status, k.expected) == (None, D(0), None, None, None)
    assert (krs[stay].attainment, krs[stay].status) == (D(1), ON)
    k = krs[over]
    assert (k.attainment, k.fill, k.overflow, k.status) == (D("1.5"), D(1), D("0.5"), ON)
    # Objective A: (0.5 x 1 + 0.25 x 2 + 0 x 1) / 4; B: attainment capped at 1, so (1 + 1) / 2.
    oa, ob = overview.objective(a), overview.objective(b)
    assert (oa.score, oa.band) == (D("0.25"), core.Band.RED)
    assert (ob.score, ob.band) == (D(1), core.Band.GREEN)
    # The period: objective weights 1 and 3.
    assert (overview.score, overview.band) == (D("0.8125"), core.Band.GREEN)
    assert overview.status_counts == {ON: 3, LAG: 0, RISK: 1, None: 1}
    assert not oa.can_edit and not overview.can_create  # a member reads


async def test_overview_filters_by_team_and_person(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    sales = await objective(db, settings, c.sales_lead, "Sales", (c.sales,))
    joint = await objective(db, settings, c.sales_lead, "Joint", (c.sales, c.marketing))
    mkt = await objective(db, settings, c.marketing_lead, "Marketing", (c.marketing,), owner=c.marketer)
    await key_result(db, settings, c.sales_lead, joint, "Shared", owners=(c.rep.id,))
    by_team = await goals.goals_overview(db, settings=settings, quarter=Q3, team_id=c.marketing)
    assert [o.id for o in by_team.objectives] == [joint, mkt]
    by_rep = await goals.goals_overview(db, settings=settings, quarter=Q3, person_id=c.rep.id)
    assert [o.id for o in by_rep.objectives] == [joint]
    by_marketer = await goals.goals_overview(db, settings=settings, quarter=Q3, person_id=c.marketer.id)
    assert [o.id for o in by_marketer.objectives] == [mkt]
    assert sales not in [o.id for o in by_team.objectives]


# -- archive, reorder ----------------------------------------------------------------------------------------


async def test_archive_and_reorder(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    ids = [await objective(db, settings, c.sales_lead, f"O{n}", (c.sales,)) for n in range(3)]
    assert await goals.move_objective(db, user=c.sales_lead, objective_id=ids[2], direction="up")
    await db.commit()
    overview = await goals.goals_overview(db, settings=settings, quarter=Q3)
    assert [o.id for o in overview.objectives] == [ids[0], ids[2], ids[1]]
    # The order is presentation: moving does not make open edit forms stale.
    assert [o.version for o in overview.objectives] == [1, 1, 1]
    assert not await goals.move_objective(db, user=c.sales_lead, objective_id=ids[0], direction="up")
    [moved] = await events(db, "objective.move")
    assert (moved.entity_id, moved.before, moved.after) == (str(ids[2]), {"position": 2}, {"position": 1})
    with pytest.raises(ValidationFailed):
        await goals.move_objective(db, user=c.sales_lead, objective_id=ids[0], direction="sideways")

    krs = [await key_result(db, settings, c.sales_lead, ids[0], f"K{n}") for n in range(2)]
    assert await goals.move_key_result(db, user=c.sales_lead, key_result_id=krs[1], direction="up")
    await db.commit()
    view = await goals.objective_view(db, settings=settings, objective_id=ids[0])
    assert [kr.id for kr in view.key_results] == [krs[1], krs[0]]

    with pytest.raises(goals.EditConflict):
        await goals.archive_objective(db, user=c.sales_lead, objective_id=ids[1], version=7)
    await db.rollback()
    await goals.archive_objective(db, user=c.sales_lead, objective_id=ids[1], version=1)
    await goals.archive_key_result(db, user=c.sales_lead, key_result_id=krs[0])
    await db.commit()
    # Archiving twice changes nothing and writes no second event.
    await goals.archive_objective(db, user=c.sales_lead, objective_id=ids[1])
    await db.commit()
    overview = await goals.goals_overview(db, settings=settings, quarter=Q3)
    assert [o.id for o in overview.objectives] == [ids[0], ids[2]]
    assert [kr.id for kr in overview.objective(ids[0]).key_results] == [krs[1]]
    [archived] = await events(db, "objective.archive")
    assert archived.before is not None and archived.before["archived_at"] is None
    assert archived.after is not None and archived.after["archived_at"] == NOW.isoformat()
    assert len(await events(db, "key_result.archive")) == 1
    with pytest.raises(Conflict, match="archived"):
        await goals.update_objective(db, user=c.sales_lead, objective_id=ids[1], version=2, changes={})
    # Archived ones are still there to read, by id.
    assert (await goals.objective_view(db, settings=settings, objective_id=ids[1])).archived_at is not None


# -- check-ins -------------------------------------------------------------------------------------------------


async def test_check_in_rules(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Grow", (c.sales,))
    manual = await key_result(db, settings, c.sales_lead, oid, "Deals", owners=(c.marketer.id,))
    metric = await key_result(
        db,
        settings,
        c.sales_lead,
        oid,
        "Pipeline",
        unit="currency",
        source="metric",
        metric="pipeline_created",
    )

    async def refused(who: object, krid: int, value: str | None, **more: str) -> dict[str, str]:
        with pytest.raises(ValidationFailed) as exc:
            await goals.check_in(
                db, settings=settings, user=who, key_result_id=krid, value=None if value is None else D(value),
                confidence=more.get("confidence", "on_track"), note=more.get("note", ""),
            )  # type: ignore[arg-type]  # fmt: skip
        await db.rollback()
        return {e["field"]: e["message"] for e in exc.value.errors}

    assert await refused(c.marketer, manual, None) == {"value": "Enter the current value."}
    assert set(await refused(c.sales_lead, metric, "10")) == {"value"}
    assert await refused(c.marketer, manual, "5", confidence="great") == {
        "confidence": "Choose on track, at risk or off track."
    }
    with pytest.raises(NotAllowed, match="Only the owners"):
        await check_in(db, settings, c.rep, manual, "5")  # a member who does not own it
    await db.rollback()
    # An owner from another team may; a metric KR takes confidence and a note only.
    await check_in(db, settings, c.marketer, manual, "12", "at_risk", "Slow month")
    await check_in(db, settings, c.sales_lead, metric, None, "on_track", "Big deals coming")
    history = await goals.check_ins(db, key_result_id=manual)
    assert [(h.value, h.confidence, h.note, h.author) for h in history] == [
        (D(12), "at_risk", "Slow month", goals.PersonRef(c.marketer.id, "Marketer"))
    ]
    [event, _] = await events(db, "check_in.create")
    assert event.after == {
        "key_result_id": manual,
        "value": "12",
        "confidence": "at_risk",
        "note": "Slow month",
        "created_at": NOW.isoformat(),
    }
    assert event.actor == "marketer@example.com"


# -- roll forward ---------------------------------------------------------------------------------------------


async def test_roll_forward(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    a = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales,), weight="2", owner=c.rep)
    up = await key_result(db, settings, c.sales_lead, a, "Deals", owners=(c.rep.id,), stretch="120")
    done = await key_result(db, settings, c.sales_lead, a, "Small deals", target="10")
    gone = await key_result(db, settings, c.sales_lead, a, "Dropped")
    await key_result(
        db, settings, c.sales_lead, a, "Pipeline", unit="currency", source="metric", metric="pipeline_created",
        target="500000", filters=KpiFilters(team_id=c.sales),
    )  # fmt: skip
    b = await objective(db, settings, c.marketing_lead, "Brand", (c.marketing,))
    await key_result(db, settings, c.marketing_lead, b, "Webinars")
    old = await objective(db, settings, c.sales_lead, "Old", (c.sales,))
    await check_in(db, settings, c.rep, up, "60")
    await check_in(db, settings, c.sales_lead, done, "12")  # beyond its target of 10
    await goals.archive_key_result(db, user=c.sales_lead, key_result_id=gone)
    await goals.archive_objective(db, user=c.sales_lead, objective_id=old)
    await db.commit()

    with pytest.raises(NotAllowed):
        await goals.roll_forward(db, settings=settings, user=c.rep, quarter=Q3)
    result = await goals.roll_forward(db, settings=settings, user=c.sales_lead, quarter=Q3)
    await db.commit()
    # The sales leader copies sales' objectives only; the archived ones stay behind.
    assert (result.source, result.target, len(result.objective_ids), result.key_results) == (Q3, Q4, 1, 2)
    assert [(x.objective, x.key_result, list(x.problems)) for x in result.not_copied] == [
        ("Grow revenue", "Small deals", ["target"])
    ]
    assert "Copied 1 objective and 2 key results from 2026-Q3 into 2026-Q4." in result.message
    assert "“Small deals”" in result.message
    q4 = await goals.goals_overview(db, settings=settings, quarter=Q4)
    assert q4.window.state == "planning"
    [copy] = q4.objectives
    assert (copy.title, copy.weight, copy.team_ids, copy.owner, copy.rolled_from_id) == (
        "Grow revenue", D(2), (c.sales,), goals.PersonRef(c.rep.id, "Seller"), a,
    )  # fmt: skip
    deals, pipeline = copy.key_results
    # A manual KR continues from its last check-in; a metric KR keeps its start; the rest is kept.
    assert (deals.title, deals.start_value, deals.target, deals.stretch, deals.owner_ids) == (
        "Deals", D(60), D(100), D(120), (c.rep.id,),
    )  # fmt: skip
    assert (pipeline.source, pipeline.metric, pipeline.start_value, pipeline.target, pipeline.filters) == (
        "metric", "pipeline_created", D(0), D(500_000), KpiFilters(team_id=c.sales),
    )  # fmt: skip
    assert (deals.value, deals.last_check_in) == (None, None)  # check-ins stay in their period
    [event] = await events(db, "objective.roll_forward")
    assert event.after is not None and event.after["rolled_from_id"] == a
    assert event.after["key_result_ids"] == [deals.id, pipeline.id]

    # The marketing leader then copies marketing's; an admin finds nothing left to copy.
    again = await goals.roll_forward(db, settings=settings, user=c.marketing_lead, quarter=Q3)
    await db.commit()
    assert len(again.objective_ids) == 1 and again.key_results == 1
    with pytest.raises(Conflict, match="rolled forward into 2026-Q4 before"):
        await goals.roll_forward(db, settings=settings, user=c.admin, quarter=Q3)
    await db.rollback()
    assert [o.title for o in (await goals.goals_overview(db, settings=settings, quarter=Q4)).objectives] == [
        "Grow revenue",
        "Brand",
    ]
    # A period without objectives has nothing to roll forward; a closed next period is refused.
    with pytest.raises(ValidationFailed, match="2027-Q1 has no objectives to roll forward"):
        await goals.roll_forward(db, settings=settings, user=c.admin, quarter=Q4.shift(1))
    await db.rollback()
    await db.execute(update(Period).where(Period.key == "2026-Q4").values(state="closed"))
    await db.commit()
    with pytest.raises(goals.PeriodClosed):
        await goals.roll_forward(db, settings=settings, user=c.admin, quarter=Q3)


# -- detail: history, forecasts, chart -------------------------------------------------------------------------


async def test_manual_history_and_linear_forecast(db: AsyncSession, settings: Settings) -> None:
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Grow", (c.sales,))
    krid = await key_result(db, settings, c.sales_lead, oid, "Deals")
    # Half the target exactly half-way (46 of 92 days): the trend reaches the target at the end.
    set_clock(lambda: dt.datetime(2026, 8, 16, 4, tzinfo=dt.UTC))
    await check_in(db, settings, c.sales_lead, krid, "50")
    detail = await goals.key_result_detail(db, settings=settings, key_result_id=krid)
    assert [(p.at.isoformat(), p.value) for p in detail.history] == [("2026-08-16T00:00:00-04:00", D(50))]
    assert detail.linear_forecast == D(100)
    assert detail.opportunity_forecast is None
    assert detail.key_result.status is ON
    chart = detail.chart
    assert (chart.width, chart.height) == (goals.CHART_WIDTH, goals.CHART_HEIGHT)
    assert chart.text == (
        "Burn-up from Jul 1, 2026 to Sep 30, 2026: start 0, target 100. Latest value 50 on Aug 16, 2026, "
        "against an ideal of 50 by then. Forecast at period end: 100."
    )
    assert chart.forecast and chart.actual.count(" ") == 1  # start and one check-in


async def test_metric_key_results_follow_the_kpi_library(db: AsyncSession, settings: Settings) -> None:
    await library_data(db)
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Revenue", (c.sales,))
    revenue = await key_result(
        db, settings, c.sales_lead, oid, "Revenue", unit="currency", source="metric", metric="revenue_won",
        target="5000",
    )  # fmt: skip
    sales_pipeline = await key_result(
        db, settings, c.sales_lead, oid, "Sales pipeline", unit="currency", source="metric",
        metric="pipeline_created", target="1000", filters=KpiFilters(team_id=c.sales),
    )  # fmt: skip
    win_rate = await key_result(
        db, settings, c.sales_lead, oid, "Win rate", unit="percent", source="metric", metric="win_rate",
        start="20", target="80",
    )  # fmt: skip
    overview = await goals.goals_overview(db, settings=settings, quarter=Q3)
    krs = {kr.id: kr for kr in overview.key_results}
    plain = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["revenue_won", "win_rate"])
    sales = await kpis.kpi_values(
        db, settings=settings, quarter=Q3, names=["pipeline_created"], filters=KpiFilters(team_id=c.sales)
    )
    # Money in major units, rates in percentage points: the KPI's value, read the KR's way.
    assert plain["revenue_won"] == 310_000 and krs[revenue].value == D("3100.00")  # O1 + O3 + O7
    assert krs[sales_pipeline].value == Decimal(sales["pipeline_created"]) / 100  # type: ignore[arg-type]
    assert krs[win_rate].value == Decimal(plain["win_rate"]) * 100  # type: ignore[arg-type]
    assert krs[win_rate].value == D(75)  # 3 won of 4 closed
    assert krs[revenue].attainment == D("0.62")  # 3,100 / 5,000
    # Sandbagging: 2026-Q1 and Q2 created 0 and 2,700.00 of pipeline, 1,350.00 a quarter.
    trailing = await kpis.trailing_actual(
        db, settings=settings, quarter=Q3, name="pipeline_created", filters=KpiFilters(team_id=c.sales)
    )
    assert trailing == 135_000
    assert (krs[sales_pipeline].trailing_actual, krs[sales_pipeline].sandbagged) == (D(1350), True)
    assert not krs[revenue].sandbagged
    assert await goals.sandbagging(db, settings=settings, key_result_id=sales_pipeline) == (True, D(1350))
    await goals.update_key_result(
        db, settings=settings, user=c.sales_lead, key_result_id=sales_pipeline, version=1,
        changes={"target": D(2000)},
    )  # fmt: skip
    await db.commit()
    assert await goals.sandbagging(db, settings=settings, key_result_id=sales_pipeline) == (False, D(1350))

    # The history is the KPI at weekly cutoffs (local midnights) and now; O1 was won on Aug 9.
    detail = await goals.key_result_detail(db, settings=settings, key_result_id=revenue)
    assert [(p.at.date().isoformat(), p.value) for p in detail.history] == [
        ("2026-07-08", D(0)), ("2026-07-15", D(0)), ("2026-07-22", D(0)), ("2026-07-29", D(0)),
        ("2026-08-05", D(0)), ("2026-08-12", D("1000.00")), ("2026-08-15", D("3100.00")),
    ]  # fmt: skip
    w = detail.overview.window
    assert detail.linear_forecast == core.linear_forecast(
        [(p.at, p.value) for p in detail.history], w.start, w.end, D(0)
    )
    # Won so far + commit in full (O4, EUR 400.00 = USD 500.00) + best case without probability (0).
    assert detail.opportunity_forecast == D("3600.00")
    assert detail.chart.text.endswith(
        f"Forecast at period end: USD {core.format_value(detail.linear_forecast)}."
    )  # type: ignore[arg-type]


async def test_cached_figures_follow_new_data_but_not_goal_changes(
    db: AsyncSession, settings: Settings
) -> None:
    from tests.integration.kpis.pipeline_data import PipelineData

    from okr.audit import services as audit

    library = await library_data(db)
    c = await cast(db)
    oid = await objective(db, settings, c.sales_lead, "Revenue", (c.sales,))
    krid = await key_result(
        db, settings, c.sales_lead, oid, "Revenue", unit="currency", source="metric", metric="revenue_won",
        target="5000",
    )  # fmt: skip

    async def value() -> Decimal | None:
        view = await goals.key_result_view(db, settings=settings, key_result_id=krid)
        return view.value

    assert await value() == D("3100.00")
    # A check-in (or any goal change) writes an audit event, yet changes no KPI: the figures stay cached.
    version = await kpis.data_version(db)
    await check_in(db, settings, c.sales_lead, krid, None, note="Looking good")
    assert await kpis.data_version(db) == version
    # New pipeline data comes with its import's audit event: the figures follow it.
    await PipelineData(db).opportunity(
        "O9", amount=50_000, account="ACC-NEW", owner=library.people["rita"], created_at="2026-08-01T12:00Z",
        closed_at="2026-08-10T12:00Z", status="won",
    )  # fmt: skip
    await audit.record(db, actor="cli", action="import", entity="opportunity", after={"rows": 1})
    await db.commit()
    assert await kpis.data_version(db) != version
    assert await value() == D("3600.00")
