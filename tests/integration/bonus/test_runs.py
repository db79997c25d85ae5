"""Bonus runs on the hand-worked organisation (bonus_data.py): pool, lines, traces, checksums, lifecycle,
ledger, adjustments, clawbacks, carry-forward."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import LINES, POOL, Org, bonus_org

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
    return {by_id[line.person_id]: line.amount for line in await bonus.lines_of(db, run_id=run_id) if line.kind == "earning"}


async def test_a_run_matches_the_hand_worked_figures(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await computed(db, settings, org)
    assert run.pool == POOL
    assert run.summary is not None
    assert run.summary["pool"]["won_revenue"] == 15_000_000
    assert run.summary["pool"]["multiplier"] == "1"
    assert [(t["team"], t["pool"]) for t in run.summary["teams"]] == [("sales", 270_000), ("marketing", 180_000)]
    assert await earnings(db, org, run.id) == LINES
    assert run.paid == POOL and run.leftover == 0

    sue = await bonus.traces_of(db, run_id=run.id, person_id=org.id("sue"))
    assert [(t.opportunity_id, t.campaign_id, t.amount) for t in sue] == [
        (org.deals["W1"].id, None, 72_000),
        (org.deals["W2"].id, None, 90_000),
    ]
    mia = await bonus.traces_of(db, run_id=run.id, person_id=org.id("mia"))
    assert [(t.opportunity_id, t.amount) for t in mia] == [(org.deals["W1"].id, 60_000), (org.deals["W2"].id, 60_000)]
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
        await bonus.add_adjustment(db, person_id=org.id("rita"), amount=5_000, reason=" ", currency="USD", user=fay)
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
