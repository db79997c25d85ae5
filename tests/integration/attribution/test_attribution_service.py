"""Attribution runs end to end on a small hand-built data set, on SQLite and PostgreSQL."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.attribution.attribution_data import journeys
from tests.integration.kpis.pipeline_data import PipelineData

from okr.attribution import parallel, services
from okr.attribution.core import Opportunity as CoreOpportunity
from okr.attribution.core import Scope, Touch, attribute, solve_removal_effects
from okr.attribution.parallel import WorkerFailed, run_recompute
from okr.db.attribution import (
    STORED_MODELS,
    AttributionRun,
    OpportunitySourcing,
    attribution_credit,
    attribution_summary,
)
from okr.db.engine import create_engine
from okr.db.models import Campaign, Lead, Opportunity, Person, Team, Touchpoint
from okr.settings import Settings


async def _data_set(db: AsyncSession) -> dict[str, Opportunity]:
    """Four accounts with deals (won, lost, open, one without touches) and one account with touches only
    (A1 to A5 of attribution_data.py)."""
    deals = (await journeys(PipelineData(db))).deals
    return {key.lower(): deal for key, deal in deals.items()}


@dataclass(frozen=True)
class Credit:
    """One stored step read under one model: a credit row in DESIGN 3's sense."""

    run_id: int
    touchpoint_id: int | None
    campaign_id: int | None
    channel: str
    currency: str
    weight: Decimal
    amount: int
    base: int | None


async def _credits(db: AsyncSession, scope: str) -> dict[tuple[str, int], list[Credit]]:
    c = attribution_credit.c
    run = select(AttributionRun.id).where(AttributionRun.scope == scope).scalar_subquery()
    rows = (await db.execute(select(attribution_credit).where(c.run_id == run).order_by(c.position))).all()
    by: dict[tuple[str, int], list[Credit]] = defaultdict(list)
    for row in rows:
        r = row._mapping
        for model in STORED_MODELS:
            units = r[f"{model}_units"]
            if units:  # a step of weight 0 is no credit under that model
                by[model, r["opportunity_id"]].append(
                    Credit(
                        r["run_id"],
                        r["touchpoint_id"],
                        r["campaign_id"],
                        r["channel"],
                        r["currency"],
                        Decimal(units).scaleb(-10),
                        r[f"{model}_amount"],
                        r[f"{model}_base"],
                    )
                )
    return by


async def test_recompute_stores_exact_credit_sourcing_and_removal_effects(
    db: AsyncSession, settings: Settings
) -> None:
    opps = await _data_set(db)
    assert await services.latest_run(db, "pipeline") is None

    pipeline = await services.recompute(db, settings=settings, scope="pipeline")
    revenue = await services.recompute(db, settings=settings, scope="revenue")
    await db.commit()
    assert pipeline.status == revenue.status == "succeeded"
    assert pipeline.opportunities == 5

    # Pipeline scope: every deal, every model, credits add up to the amount exactly, in its currency.
    by = await _credits(db, "pipeline")
    for model in STORED_MODELS:
        for opp in opps.values():
            rows = by[model, opp.id]
            assert sum(r.amount for r in rows) == opp.amount, (model, opp.external_id)
            assert sum(r.weight for r in rows) == 1
            assert {r.currency for r in rows} == {opp.currency}
            assert all(r.run_id == pipeline.id for r in rows)
            # In the organisation's currency: the converted amount, split over the same weights.
            base = sum(r.base or 0 for r in rows)
            assert base == (opp.amount if opp.currency == "USD" else base), (model, opp.external_id)
    assert sum(r.base or 0 for r in by["linear", opps["lost"].id]) == 54_321  # 50,000 EUR x 1.08642
    # Revenue scope: only won deals carry credit.
    by_revenue = await _credits(db, "revenue")
    assert {opp_id for _, opp_id in by_revenue} == {opps["won"].id, opps["bare"].id, opps["small"].id}
    for model in STORED_MODELS:
        for key in ("won", "bare", "small"):
            assert sum(r.amount for r in by_revenue[model, opps[key].id]) == opps[key].amount

    # The deal without touches: one unattributed row per model and scope.
    for scope_rows in (by, by_revenue):
        for model in STORED_MODELS:
            (row,) = scope_rows[model, opps["bare"].id]
            assert (row.channel, row.touchpoint_id, row.campaign_id, row.amount) == (
                "unattributed",
                None,
                None,
                12_345,
            )
    # First touch of the won deal's pipeline journey is the SDR campaign; revenue last touch is T5.
    (first,) = by["first_touch", opps["won"].id]
    assert first.channel == "outbound"
    (last,) = by_revenue["last_touch", opps["won"].id]
    assert (last.channel, last.amount) == ("webinar", 1_000_001)

    sourcing = {
        s.opportunity_id: s
        for s in (await db.scalars(select(OpportunitySourcing))).all()  # pipeline scope only
    }
    assert {o: (s.sourced_by, s.influenced_by_marketing) for o, s in sourcing.items()} == {
        opps["won"].id: ("sdr", True),
        opps["lost"].id: ("marketing", True),  # an unowned campaign is marketing's
        opps["open"].id: ("marketing", True),
        opps["bare"].id: ("unattributed", False),
        opps["small"].id: ("sales", True),
    }
    assert all(s.run_id == pipeline.id for s in sourcing.values())

    # Removal effects: the exact chain of the won/lost revenue journeys and the touch-only account.
    expected = solve_removal_effects(
        [
            (["outbound", "webinar", "paid_search", "event", "webinar"], True),
            (["paid_search", "event"], False),
            (["event", "webinar"], True),
            (["webinar", "outbound"], False),
        ]
    )
    stored = revenue.removal_effects
    assert stored is not None
    assert (stored["paths"], stored["conversions"]) == (4, 2)
    assert Fraction(stored["probability"]["fraction"]) == expected.probability
    assert set(stored["channels"]) == {"outbound", "webinar", "paid_search", "event"}
    for channel, values in stored["channels"].items():
        assert Fraction(values["removal_effect"]["fraction"]) == expected.effects[channel]
        assert Fraction(values["without"]["fraction"]) == expected.without[channel]
        assert values["removal_effect"]["decimal"] == str(expected.as_decimals()[channel])

    # The stored rows are the very rows the core's `attribute` makes, model by model.
    assert await services.latest_run(db, "pipeline") == pipeline
    data = await _core_input(db)
    config = await services.load_config(db)
    for scope, stored_by, effects in (
        (Scope.PIPELINE, by, pipeline.removal_effects),
        (Scope.REVENUE, by_revenue, revenue.removal_effects),
    ):
        assert effects is not None
        decimals = {c: Decimal(v["removal_effect"]["decimal"]) for c, v in effects["channels"].items()}
        expected_rows = attribute(data, models=config.models(), scopes=(scope,), removal_effects=decimals)
        expected_by: dict[tuple[str, int], list[tuple[object, ...]]] = defaultdict(list)
        for row in expected_rows:
            expected_by[row.model, row.opportunity_id].append(
                (row.touchpoint_id, row.campaign_id, row.channel, row.weight, row.amount)
            )
        got = {
            key: [(r.touchpoint_id, r.campaign_id, r.channel, r.weight, r.amount) for r in rows]
            for key, rows in stored_by.items()
        }
        assert got == expected_by

    # A second run replaces the first: same rows, no duplicates, one run per scope.
    counts = await db.scalar(select(func.count()).select_from(attribution_credit))
    again = await services.recompute(db, settings=settings, scope="pipeline")
    await db.commit()
    assert again.id != pipeline.id
    assert await db.scalar(select(func.count()).select_from(attribution_credit)) == counts
    runs = (await db.execute(select(AttributionRun.scope, AttributionRun.id))).all()
    assert sorted(runs) == sorted([("pipeline", again.id), ("revenue", revenue.id)])
    assert await db.scalar(select(func.count()).select_from(OpportunitySourcing)) == 5
    stale = select(func.count()).where(attribution_credit.c.run_id == pipeline.id)
    assert await db.scalar(stale) == 0


async def _core_input(db: AsyncSession) -> list[tuple[CoreOpportunity, list[Touch]]]:
    """Every opportunity with its account's touches, read plainly, as the core takes them."""
    touches: dict[int, list[Touch]] = defaultdict(list)
    rows = await db.execute(
        select(Lead.account_id, Touchpoint, Campaign.channel, Team.name, Lead.created_at)
        .join(Lead, Lead.id == Touchpoint.lead_id)
        .join(Campaign, Campaign.id == Touchpoint.campaign_id)
        .outerjoin(Person, Person.id == Campaign.owner_id)
        .outerjoin(Team, Team.id == Person.team_id)
    )
    for account_id, t, channel, team, lead_created_at in rows:
        touches[account_id].append(
            Touch(
                t.id,
                t.external_id,
                t.occurred_at,
                t.campaign_id,
                channel,
                team or "marketing",
                lead_created_at,
            )
        )
    return [
        (
            CoreOpportunity(o.id, o.external_id, o.amount, o.created_at, o.closed_at, o.status),
            touches[o.account_id],
        )
        for o in (await db.scalars(select(Opportunity).order_by(Opportunity.id))).all()
    ]


async def test_recompute_with_small_batches(
    db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    opps = await _data_set(db)
    # Many small writes through the driver, in the session's transaction.
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    run = await services.recompute(db, settings=settings, scope="revenue")
    await db.flush()
    by = await _credits(db, "revenue")
    for model in ("linear", "data_driven"):
        assert sum(r.amount for r in by[model, opps["won"].id]) == opps["won"].amount
    assert await db.scalar(select(func.count()).select_from(OpportunitySourcing)) == 0
    assert run.removal_effects is not None


async def _stored_rows(db: AsyncSession) -> dict[str, list[tuple[object, ...]]]:
    """The current runs' credit and sourcing rows by scope, the run id left out."""
    found: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    c = attribution_credit.c
    for scope in Scope:
        run = await services.latest_run(db, scope)
        assert run is not None
        rows = await db.execute(
            select(attribution_credit).where(c.run_id == run.id).order_by(c.opportunity_id, c.position)
        )
        found[scope.value] = [tuple(row)[1:] for row in rows]
        summed = await db.execute(select(attribution_summary).where(attribution_summary.c.run_id == run.id))
        found[f"{scope.value} summary"] = sorted((tuple(row)[1:] for row in summed), key=repr)
        assert found[f"{scope.value} summary"], "a run stores its summary"
        if scope is Scope.PIPELINE:
            sourcing = select(OpportunitySourcing).where(OpportunitySourcing.run_id == run.id)
            for s in (await db.scalars(sourcing.order_by(OpportunitySourcing.opportunity_id))).all():
                found["sourcing"].append(
                    (s.opportunity_id, s.sourced_by, s.influenced_by_marketing, s.first_campaign_id)
                )
    return found


async def test_worker_processes_store_the_same_rows_as_one_process(
    db: AsyncSession, settings: Settings
) -> None:
    await _data_set(db)
    await db.commit()  # workers read the committed data

    single = await run_recompute(settings, workers=1)
    assert [r.scope for r in single] == ["pipeline", "revenue"]
    one_process = await _stored_rows(db)
    await db.commit()
    assert len(one_process["pipeline"]) > 5 and len(one_process["sourcing"]) == 5

    parallel = await run_recompute(settings, workers=3)
    in_parts = await _stored_rows(db)
    assert in_parts == one_process
    # The new runs are current; the previous ones stay until the next run of their scope.
    runs = {r.id: r for r in (await db.scalars(select(AttributionRun))).all()}
    assert set(runs) == {r.id for r in single + parallel}
    assert all(r.status == "succeeded" for r in runs.values())
    for before, after in zip(single, parallel, strict=True):
        assert before.removal_effects == after.removal_effects
        assert before.opportunities == after.opportunities == 5
    await db.commit()

    again = await run_recompute(settings, workers=2)
    await db.commit()
    assert {r.id for r in (await db.scalars(select(AttributionRun))).all()} == {
        r.id for r in parallel + again
    }
    assert await _stored_rows(db) == one_process
    stale = (
        select(func.count())
        .select_from(attribution_credit)
        .where(attribution_credit.c.run_id.in_([r.id for r in single]))
    )
    assert await db.scalar(stale) == 0


async def test_a_failed_worker_fails_the_run_and_keeps_the_previous_one(
    db: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    await _data_set(db)
    await db.commit()
    (previous,) = await run_recompute(settings, [Scope.PIPELINE], workers=1)
    # The workers get a database without the tables: they fail on their first read.
    broken = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"})
    engine = create_engine(settings)
    try:
        with pytest.raises(WorkerFailed, match="no such table"):
            await parallel._in_parts(engine, broken, Scope.PIPELINE, await services.load_config(db), 2)
    finally:
        await engine.dispose()
    await db.commit()
    current = await services.latest_run(db, "pipeline")
    assert current is not None and current.id == previous.id
    assert await db.scalar(select(func.count()).select_from(AttributionRun)) == 1


# PostgreSQL only: SQLite plans from its indexes and keeps no such statistics.
@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
@pytest.mark.parametrize("workers", [1, 2])
async def test_postgresql_plans_know_the_new_run_before_the_switch(
    db: AsyncSession, settings: Settings, workers: int
) -> None:
    assert db.get_bind().dialect.name == "postgresql"
    await _data_set(db)
    await db.commit()
    for _ in range(2):  # the second run's id is new to statistics taken after the first
        (run,) = await run_recompute(settings, [Scope.PIPELINE], workers=workers)
    await db.commit()
    for table in ("attribution_credit", "opportunity_sourcing"):
        known = await db.scalar(
            text(
                "SELECT most_common_vals::text FROM pg_stats WHERE tablename = :table AND attname = 'run_id'"
            ),
            {"table": table},
        )
        assert known is not None and str(run.id) in known.strip("{}").split(","), (table, known)
