"""Bonus runs on the hand-worked organisation (bonus_data.py): pool, lines, traces, checksums, lifecycle,
ledger, adjustments, clawbacks, carry-forward."""

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import LINES, POOL, Org, bonus_org, pin_clock, plan_row

from okr.bonus import engine
from okr.bonus import services as bonus
from okr.db.bonus import BonusRun, LedgerEntry
from okr.lib.clock import set_clock
from okr.lib.errors import Conflict, Forbidden, ValidationFailed
from okr.settings import Settings


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    set_clock(None)


async def computed(db: AsyncSession, settings: Settings, org: Org) -> BonusRun:
    """A draft run of Q3 computed by Fay, committed."""
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=org.users["fay"])
    await bonus.compute_run(db, settings=settings, run_id=run.id)
    await db.commit()
    return run


async def earnings(db: AsyncSession, org: Org, run_id: int) -> dict[str, int]:
    by_id = {p.id: name for name, p in org.people.items()}
    return {
        by_id[line.person_id]: line.amount
        for line in await bonus.lines_of(db, run_id=run_id)
        if line.kind == "earning"
    }


async def test_a_run_matches_the_hand_worked_figures(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    assert run.pool == POOL
    assert run.summary is not None
    assert run.summary["pool"]["won_revenue"] == 15_000_000
    assert run.summary["pool"]["multiplier"] == "1"
    assert [(t["team"], t["pool"]) for t in run.summary["teams"]] == [
        ("sales", 270_000),
        ("marketing", 180_000),
    ]
    assert await earnings(db, org, run.id) == LINES
    assert run.paid == POOL and run.leftover == 0

    sue = await bonus.traces_of(db, run_id=run.id, person_id=org.id("sue"))
    assert [(t.opportunity_id, t.campaign_id, t.amount) for t in sue] == [
        (org.deals["W1"].id, None, 72_000),
        (org.deals["W2"].id, None, 90_000),
    ]
    mia = await bonus.traces_of(db, run_id=run.id, person_id=org.id("mia"))
    assert [(t.opportunity_id, t.amount) for t in mia] == [
        (org.deals["W1"].id, 60_000),
        (org.deals["W2"].id, 60_000),
    ]
    assert sum(t.amount for t in await bonus.traces_of(db, run_id=run.id, person_id=org.id("max"))) == 60_000


async def test_a_rerun_on_the_stored_inputs_is_byte_identical(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    assert run.inputs is not None and run.results_checksum is not None
    assert engine.checksum(run.inputs) == run.inputs_checksum
    first = engine.canonical(engine.compute(run.inputs))
    assert engine.canonical(engine.compute(run.inputs)) == first
    assert await bonus.verify_run(db, run_id=run.id)
    # The stored JSON read back from the database gives the same bytes.
    run_id, inputs_sum, results_sum = run.id, run.inputs_checksum, run.results_checksum
    db.expire_all()
    again = await db.get(BonusRun, run_id)
    assert again is not None and again.inputs is not None
    assert engine.checksum(again.inputs) == inputs_sum
    assert engine.checksum(engine.compute(again.inputs)) == results_sum


async def test_the_lifecycle_needs_two_finance_users(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    fay, fin, ada, rita = (org.users[n] for n in ("fay", "fin", "ada", "rita"))
    with pytest.raises(Forbidden):
        await bonus.submit_run(db, run_id=run.id, user=rita)
    with pytest.raises(Conflict):
        await bonus.approve_run(db, run_id=run.id, user=fin)  # not submitted yet
    await bonus.submit_run(db, run_id=run.id, user=fay)
    with pytest.raises(Forbidden, match="another finance user"):
        await bonus.approve_run(db, run_id=run.id, user=fay)
    with pytest.raises(Forbidden):
        await bonus.approve_run(db, run_id=run.id, user=ada)  # admins submit only
    await bonus.approve_run(db, run_id=run.id, user=fin)
    with pytest.raises(Forbidden):
        await bonus.lock_run(db, run_id=run.id, user=ada)
    await bonus.lock_run(db, run_id=run.id, user=fay)
    await db.commit()
    assert run.state == "locked"
    with pytest.raises(Conflict):
        await bonus.compute_run(db, settings=settings, run_id=run.id)
    with pytest.raises(Conflict, match="locked"):
        await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=fay)
    entries = (await db.scalars(select(LedgerEntry).where(LedgerEntry.run_id == run.id))).all()
    assert sorted((e.person_id, e.kind, e.amount) for e in entries) == sorted(
        (org.id(n), "earning", a) for n, a in LINES.items() if a
    )
    actions = [a for (a,) in (await db.execute(select_actions())).all()]
    assert actions == ["bonus_run.create", "bonus_run.submit", "bonus_run.approve", "bonus_run.lock"]


def select_actions():  # type: ignore[no-untyped-def]
    from okr.db.audit import AuditEvent

    return select(AuditEvent.action).where(AuditEvent.entity == "bonus_run").order_by(AuditEvent.id)


async def test_adjustments_need_a_reason_and_go_to_the_next_run(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    fay = org.users["fay"]
    with pytest.raises(ValidationFailed) as refused:
        await bonus.add_adjustment(
            db, person_id=org.id("rita"), amount=5_000, reason=" ", currency="USD", user=fay
        )
    assert refused.value.errors[0]["field"] == "reason"
    with pytest.raises(Forbidden):
        await bonus.add_adjustment(
            db, person_id=org.id("rita"), amount=5_000, reason="x", currency="USD", user=org.users["vic"]
        )
    await bonus.add_adjustment(
        db, person_id=org.id("rita"), amount=-2_500, reason="Q2 overpayment", currency="USD", user=fay
    )
    await db.commit()
    run = await computed(db, settings, org)
    lines = await bonus.lines_of(db, run_id=run.id, person_id=org.id("rita"))
    assert [(line.kind, line.amount) for line in lines] == [("earning", 108_000), ("adjustment", -2_500)]
    assert run.paid == POOL - 2_500


async def lock(db: AsyncSession, org: Org, run: BonusRun) -> None:
    """Submit (Fay), approve (Fin) and lock (Fay), committed."""
    await bonus.submit_run(db, run_id=run.id, user=org.users["fay"])
    await bonus.approve_run(db, run_id=run.id, user=org.users["fin"])
    await bonus.lock_run(db, run_id=run.id, user=org.users["fay"])
    await db.commit()


async def q4_run(db: AsyncSession, settings: Settings, org: Org, **plan: object) -> BonusRun:
    """An approved Q4 plan like Q3's, and a computed Q4 run, as of 2026-12-20."""
    q4 = await bonus.period_by_key(db, "2026-Q4")
    db.add(plan_row(q4.id, **plan))
    await db.commit()
    pin_clock(dt.datetime(2026, 12, 20, 16, tzinfo=dt.UTC))
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q4", user=org.users["fay"])
    await bonus.compute_run(db, settings=settings, run_id=run.id)
    await db.commit()
    return run


async def test_caps_leave_a_leftover_that_the_next_period_carries(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    org.plan.cap_amount = 100_000  # USD 1,000.00 a person
    await db.commit()
    run = await computed(db, settings, org)
    # Sales: Rita 108,000 and Sue 162,000 are both held at 100,000; Vic has no credit: 70,000 is left.
    # Marketing: Mia's 120,000 is held at 100,000 and the 20,000 goes to Max: 80,000.
    assert await earnings(db, org, run.id) == {
        "rita": 100_000,
        "sue": 100_000,
        "vic": 0,
        "mia": 100_000,
        "max": 80_000,
    }
    assert run.leftover == 70_000 and run.paid == POOL - 70_000
    await lock(db, org, run)
    nxt = await q4_run(db, settings, org)
    assert nxt.summary is not None
    assert nxt.summary["pool"]["carried_forward"] == 70_000
    assert nxt.inputs is not None and nxt.inputs["carried_forward"] == {
        "amount": 70_000,
        "from_run_id": run.id,
    }
    assert nxt.pool == 70_000  # no deal won in Q4: the pool is what was carried


async def test_a_deal_reversed_within_the_window_is_clawed_back_in_the_next_run(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    await lock(db, org, run)
    w2 = org.deals["W2"]
    w2.status = "lost"
    w2.closed_at = dt.datetime(2026, 10, 15, 16, tzinfo=dt.UTC)  # 56 days after its close on 08-20
    await db.commit()
    nxt = await q4_run(db, settings, org)
    lines = [(line.person_id, line.kind, line.amount) for line in await bonus.lines_of(db, run_id=nxt.id)]
    claws = sorted((p, a) for p, k, a in lines if k == "clawback")
    # Sue's W2 trace was 90,000 and Mia's W2/MK1 trace 60,000 (bonus_data.py).
    assert claws == sorted([(org.id("sue"), -90_000), (org.id("mia"), -60_000)])
    assert nxt.summary is not None
    sue = next(p for p in nxt.summary["payable"] if p["person_id"] == org.id("sue"))
    assert sue == {
        "person_id": org.id("sue"), "earning": 0, "adjustment": 0, "clawback": -90_000, "carried_in": 0,
        "total": -90_000, "payable": 0, "carried_out": -90_000,
    }  # fmt: skip
    await lock(db, org, nxt)
    entries = (await db.scalars(select(LedgerEntry).where(LedgerEntry.person_id == org.id("sue")))).all()
    assert sorted((e.kind, e.amount, e.source_run_id) for e in entries) == sorted(
        [("earning", 162_000, None), ("clawback", -90_000, run.id), ("carry_forward", 90_000, None)]
    )
    # Every run's entries add up to what it paid.
    assert sum(e.amount for e in entries) == 162_000 + 0


async def test_a_deal_reversed_after_the_window_is_not_clawed_back(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    org.plan.clawback_days = 30
    await db.commit()
    run = await computed(db, settings, org)
    await lock(db, org, run)
    org.deals["W2"].status = "lost"
    org.deals["W2"].closed_at = dt.datetime(2026, 10, 15, 16, tzinfo=dt.UTC)  # 56 days > 30
    await db.commit()
    nxt = await q4_run(db, settings, org)
    assert [line for line in await bonus.lines_of(db, run_id=nxt.id) if line.kind == "clawback"] == []
