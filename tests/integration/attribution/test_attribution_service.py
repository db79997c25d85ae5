"""Attribution runs end to end on a small hand-built data set, on SQLite and PostgreSQL."""

from collections import defaultdict
from fractions import Fraction

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.attribution import services
from okr.attribution.core import PRESETS, solve_removal_effects
from okr.db.attribution import AttributionCredit, AttributionRun, OpportunitySourcing
from okr.db.models import Opportunity
from okr.lib.errors import NotFound
from okr.settings import Settings


async def _data_set(db: AsyncSession) -> dict[str, Opportunity]:
    """Four accounts with deals (won, lost, open, one without touches) and one account with touches only."""
    d = PipelineData(db)
    marketer = await d.person("mia@example.com", "marketing")
    sdr = await d.person("sam@example.com", "sdr")
    seller = await d.person("sue@example.com", "sales")
    mk = await d.campaign("C-MK", marketer, "webinar")
    sd = await d.campaign("C-SDR", sdr, "outbound")
    ae = await d.campaign("C-AE", seller, "event")
    none = await d.campaign("C-NONE", None, "paid_search")

    l1 = await d.lead("L1", "A1", created_at="2026-01-05T12:00Z")
    l2 = await d.lead("L2", "A1", created_at="2026-02-20T12:00Z")
    await d.touch("T1", l1, sd, at("2026-02-01T10:00Z"))
    await d.touch("T2", l1, mk, at("2026-02-10T10:00Z"))
    await d.touch("T3", l2, none, at("2026-03-01T10:00Z"))
    await d.touch("T4", l2, ae, at("2026-05-01T10:00Z"))
    await d.touch("T5", l1, mk, at("2026-06-15T10:00Z"))
    won = await d.opportunity(
        "O-WON",
        amount=1_000_001,
        account="A1",
        created_at="2026-04-01T12:00Z",
        closed_at="2026-07-01T12:00Z",
        status="won",
    )

    l3 = await d.lead("L3", "A2", created_at="2026-02-01T12:00Z")
    await d.touch("T6", l3, none, at("2026-03-01T10:00Z"))
    await d.touch("T7", l3, ae, at("2026-04-01T10:00Z"))
    lost = await d.opportunity(
        "O-LOST",
        amount=50_000,
        currency="EUR",
        account="A2",
        created_at="2026-04-15T12:00Z",
        closed_at="2026-05-01T12:00Z",
        status="lost",
    )
    open_ = await d.opportunity("O-OPEN", amount=77_777, account="A2", created_at="2026-06-01T12:00Z")

    bare = await d.opportunity(
        "O-BARE",
        amount=12_345,
        account="A3",
        created_at="2026-03-01T12:00Z",
        closed_at="2026-04-01T12:00Z",
        status="won",
    )

    l4 = await d.lead("L4", "A4", created_at="2026-04-01T12:00Z")
    await d.touch("T8", l4, mk, at("2026-05-01T10:00Z"))
    await d.touch("T9", l4, sd, at("2026-05-02T10:00Z"))

    l5 = await d.lead("L5", "A5", created_at="2026-03-01T12:00Z")
    await d.touch("T10", l5, ae, at("2026-03-02T10:00Z"))
    await d.touch("T11", l5, mk, at("2026-03-03T10:00Z"))
    small = await d.opportunity(
        "O-SMALL",
        amount=3,
        account="A5",
        created_at="2026-03-10T12:00Z",
        closed_at="2026-03-20T12:00Z",
        status="won",
    )
    return {"won": won, "lost": lost, "open": open_, "bare": bare, "small": small}


async def _credits(db: AsyncSession, scope: str) -> dict[tuple[str, int], list[AttributionCredit]]:
    rows = (await db.scalars(select(AttributionCredit).where(AttributionCredit.scope == scope))).all()
    by: dict[tuple[str, int], list[AttributionCredit]] = defaultdict(list)
    for row in rows:
        by[row.model, row.opportunity_id].append(row)
    return by


async def test_recompute_stores_exact_credit_sourcing_and_removal_effects(
    db: AsyncSession, settings: Settings
) -> None:
    opps = await _data_set(db)
    with pytest.raises(NotFound):
        await services.campaign_totals(db, run_or_scope="pipeline", model="linear")

    pipeline = await services.recompute(db, settings=settings, scope="pipeline")
    revenue = await services.recompute(db, settings=settings, scope="revenue")
    await db.commit()
    assert pipeline.status == revenue.status == "succeeded"
    assert pipeline.opportunities == 5

    # Pipeline scope: every deal, every model, credits add up to the amount exactly, in its currency.
    by = await _credits(db, "pipeline")
    for model in PRESETS:
        for opp in opps.values():
            rows = by[model, opp.id]
            assert sum(r.amount for r in rows) == opp.amount, (model, opp.external_id)
            assert {r.currency for r in rows} == {opp.currency}
            assert all(r.run_id == pipeline.id for r in rows)
    # Revenue scope: only won deals carry credit.
    by_revenue = await _credits(db, "revenue")
    assert {opp_id for _, opp_id in by_revenue} == {opps["won"].id, opps["bare"].id, opps["small"].id}
    for model in PRESETS:
        for key in ("won", "bare", "small"):
            assert sum(r.amount for r in by_revenue[model, opps[key].id]) == opps[key].amount

    # The deal without touches: one unattributed row per model and scope.
    for scope_rows in (by, by_revenue):
        for model in PRESETS:
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

    # Read helpers.
    credit = await services.opportunity_credit(
        db, opportunity_id=opps["bare"].id, model="linear", scope="pipeline"
    )
    assert [(c.channel, c.amount, c.currency) for c in credit] == [("unattributed", 12_345, "USD")]
    totals = await services.campaign_totals(db, run_or_scope="pipeline", model="first_touch")
    assert sum(t.amount for t in totals if t.currency == "USD") == 1_000_001 + 77_777 + 12_345 + 3
    assert sum(t.amount for t in totals if t.currency == "EUR") == 50_000
    assert totals == await services.campaign_totals(db, run_or_scope=pipeline.id, model="first_touch")

    # A second run replaces the first: same rows, no duplicates, one run per scope.
    counts = await db.scalar(select(func.count()).select_from(AttributionCredit))
    again = await services.recompute(db, settings=settings, scope="pipeline")
    await db.commit()
    assert again.id != pipeline.id
    assert await db.scalar(select(func.count()).select_from(AttributionCredit)) == counts
    runs = (await db.execute(select(AttributionRun.scope, AttributionRun.id))).all()
    assert sorted(runs) == sorted([("pipeline", again.id), ("revenue", revenue.id)])
    assert await db.scalar(select(func.count()).select_from(OpportunitySourcing)) == 5
    stale = select(func.count()).where(AttributionCredit.run_id == pipeline.id)
    assert await db.scalar(stale) == 0


async def test_recompute_with_small_batches_and_few_models(
    db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    opps = await _data_set(db)
    # Writes interleave with the open touch cursor, which is read one row at a time.
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr(services, "STREAM_CHUNK", 1)
    run = await services.recompute(db, settings=settings, scope="revenue", models=["linear", "data_driven"])
    await db.flush()
    by = await _credits(db, "revenue")
    assert {m for m, _ in by} == {"linear", "data_driven"}
    for model in ("linear", "data_driven"):
        assert sum(r.amount for r in by[model, opps["won"].id]) == opps["won"].amount
    assert await db.scalar(select(func.count()).select_from(OpportunitySourcing)) == 0
    assert run.removal_effects is not None
