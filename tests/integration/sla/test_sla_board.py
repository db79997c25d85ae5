"""The SLA board on a hand-built data set (sla_data.py): compliance both ways, follow-up by rep, reasons by
campaign and channel, the records behind the figures, and the same judgement as the sla_compliance KPI."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import login, make_person
from tests.integration.kpis.test_kpi_library import policy
from tests.integration.sla.sla_data import NOW, sla_data

from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.lib.periods import Quarter
from okr.settings import Settings
from okr.sla import services as sla

Q3 = Quarter(2026, 3)
D = Decimal


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    set_clock(lambda: NOW)
    kpis.clear_cache()
    sla.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    sla.clear_cache()


async def test_the_board_by_hand(db: AsyncSession, settings: Settings) -> None:
    data = await sla_data(db)
    await policy(db, settings, Q3, hours=24, commitment=5)
    b = await sla.board(db, settings=settings, quarter=Q3)
    t = b.total
    assert (t.mqls, t.met, t.breached, t.pending, t.accepted, t.rejected) == (6, 3, 2, 1, 2, 2)
    assert (t.compliance, t.acceptance, b.median_hours) == (D("0.6"), D("0.5"), D("2.5"))
    assert b.acceptance_met is False  # 50 % against a 90 % target
    # Marketing: 4 MQLs in July, 2 in August, against 5 a month; by now (Aug 15 16:00Z) July's 5 and
    # 14.5 of August's 31 days' share of 5 are due.
    assert [(m.delivered, m.committed, m.state) for m in b.months] == [
        (4, 5, "done"),
        (2, 5, "under_way"),
        (0, 5, "ahead"),
    ]
    due = D(5) + D("72.5") / D(31)
    assert (b.delivered, b.committed, round(b.committed_to_date, 20)) == (6, 15, round(due, 20))
    assert round(b.pace or 0, 20) == round(D(6) / due, 20) and b.pace_state == "lagging"  # 81.8 %
    # By rep, most breaches first.
    reps = [(r.name, r.tally.mqls, r.tally.met, r.tally.breached, r.tally.pending) for r in b.reps]
    assert reps == [("Rita Rep", 3, 2, 1, 0), ("Unassigned", 1, 0, 1, 0), ("Sam Seller", 2, 1, 0, 1)]
    assert b.reps[0].tally.acceptance == D(2) / D(3) and b.reps[2].tally.compliance == 1
    # Reasons: each MQL under its last touch at or before the MQL.
    campaigns = [(s.name, s.mqls, s.rejected, s.reasons) for s in b.campaigns]
    assert campaigns == [
        ("Campaign CW", 2, 1, {"no budget": 1}),
        ("Campaign CO", 3, 1, {"wrong persona": 1}),
        ("No touch before the MQL", 1, 0, {}),
    ]
    assert [(s.name, s.mqls, s.rejected) for s in b.channels] == [
        ("webinar", 2, 1),
        ("outbound", 3, 1),
        ("No touch before the MQL", 1, 0),
    ]
    # The records behind a figure add up to it.
    breached = await sla.records(
        db, settings=settings, quarter=Q3, filters=sla.RecordFilters(rep=data.rita.id, status="breached")
    )
    assert [r.external_id for r in breached.rows] == ["A2"] and breached.total == 1
    rejected_co = await sla.records(
        db, settings=settings, quarter=Q3, filters=sla.RecordFilters(campaign=data.co.id, status="rejected")
    )
    assert [(r.external_id, r.reason, r.response_hours) for r in rejected_co.rows] == [
        ("A3", "wrong persona", 2)
    ]
    # The KPI library judges the same way.
    values = await kpis.kpi_values(db, settings=settings, quarter=Q3, names=["sla_compliance"])
    assert values["sla_compliance"] == t.compliance


async def test_the_board_follows_a_saved_policy(db: AsyncSession, settings: Settings) -> None:
    await sla_data(db)
    await policy(db, settings, Q3, hours=4, commitment=0)
    b = await sla.board(db, settings=settings, quarter=Q3)
    # 4 business hours: A1 (Fri 16:00, due Mon 12:00) met; A2, A4 (now overdue) and A5 breached.
    assert (b.total.met, b.total.breached, b.total.pending) == (3, 3, 0)
    assert b.rule.hours == 4 and b.pace is None  # no commitment, no pace


async def test_the_board_page_and_its_links(db: AsyncSession, settings: Settings, app: Litestar) -> None:
    data = await sla_data(db)
    await make_person(db, email="member@example.com", role="member")
    async with AsyncTestClient(app=app) as client:
        assert (await login(client, "member@example.com")).status_code == 303
        page = await client.get("/sla?period=2026-Q3")
        assert page.status_code == 200
        html = page.text
        assert "No policy is saved for 2026-Q3: these are the defaults." in html
        assert "24 business hours (Mon-Fri 09:00-17:00, America/New_York)" in html
        assert '<title id="sla-chart-title">MQLs delivered by month in 2026-Q3' in html
        assert "Jul 2026: 4 delivered" in html  # the chart's text alternative
        assert f"/sla/records?period=2026-Q3&amp;rep={data.rita.id}&amp;status=breached" in html
        assert f"/kpis/mqls/records?period=2026-Q3&amp;person={data.rita.id}" in html
        assert "Change the policy" not in html and "Set the policy" not in html  # members read
        fragment = await client.get("/sla?period=2026-Q2", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert 'id="sla-board"' in fragment.text and "No MQLs in 2026-Q2" in fragment.text
        records = await client.get(f"/sla/records?period=2026-Q3&campaign={data.cw.id}")
        assert records.status_code == 200 and "A1" in records.text and "A2" in records.text
        assert "A3" not in records.text
        bad = await client.get("/sla/records?period=2026-Q3&status=lost")
        assert bad.status_code == 422
