"""The personal and team pages' services on hand-built data: whose KRs, the person's share of the shared
metric KRs (equal to the KPI with the person filter), what needs attention, the team's figures and people."""

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.goals.goals_data import Q3, check_in
from tests.integration.home.home_data import NOW, World, world

from okr.goals import services as goals
from okr.home import services as home
from okr.home.services import Attention, PersonCard
from okr.kpis import services as kpis
from okr.kpis.core import KPIS, KpiFilters
from okr.lib.clock import set_clock
from okr.lib.errors import NotFound
from okr.settings import Settings

D = Decimal


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: 2026-Q3 is under way."""
    set_clock(lambda: NOW)
    kpis.clear_cache()
    goals.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    goals.clear_cache()


async def rita_page(db: AsyncSession, settings: Settings, w: World) -> home.PersonalPage:
    return await home.personal_page(
        db, settings=settings, quarter=Q3, person=PersonCard.of(w.rita), user=w.rita
    )


async def test_the_personal_page_holds_the_persons_key_results(db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    page = await rita_page(db, settings, w)
    ids = w.ids
    assert [g.objective.id for g in page.groups] == [ids["joint"], ids["sales"]]
    assert [kr.id for kr in page.key_results] == [ids["pipeline"], ids["revenue"], ids["calls"], ids["cases"]]
    assert [o.id for o in page.owned] == [ids["own"]]
    counts = page.status_counts
    assert (counts[home.PaceStatus.ON_TRACK], counts[home.PaceStatus.LAGGING]) == (1, 1)
    assert (counts[home.PaceStatus.AT_RISK], counts[None]) == (1, 1)
    assert not page.empty
    # Finance owns nothing, yet every joint objective is everyone's: its metric KRs show their (zero) share.
    finance = await home.personal_page(
        db, settings=settings, quarter=Q3, person=PersonCard.of(w.cast.finance), user=w.cast.finance
    )
    assert not finance.groups and not finance.attention and not finance.owned and not finance.empty
    assert [(c.key_result.id, c.value) for c in finance.contributions] == [(ids["pipeline"], D(0))]
    # A period without goals is empty.
    empty = await home.personal_page(
        db, settings=settings, quarter=Q3.shift(1), person=PersonCard.of(w.rita), user=w.rita
    )
    assert empty.empty and not empty.attention and not empty.contributions


async def test_contribution_is_the_kpi_with_the_person_filter(db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    page = await rita_page(db, settings, w)
    ids, rita = w.ids, w.rita.id
    found = {c.key_result.id: c for c in page.contributions}
    # Joint objectives and the sales team's; not a KR narrowed to Sam, nor marketing's own objective.
    assert list(found) == [ids["pipeline"], ids["revenue"], ids["win_rate"], ids["floor"]]
    figures = {k: (c.value, c.total, c.share) for k, c in found.items()}
    assert figures[ids["pipeline"]] == (D("1400"), D("2400"), D(1400) / D(2400))
    assert figures[ids["revenue"]] == (D("3100"), D("3100"), D(1))
    assert figures[ids["win_rate"]] == (D("100"), D("75"), None)  # a rate: no share
    assert figures[ids["floor"]] == (D("3"), D("5"), D("0.6"))
    for c in page.contributions:
        kr = c.key_result
        assert c.filters == replace(kr.filters, person_id=rita)
        got = await kpis.kpi_values(
            db, settings=settings, quarter=Q3, names=[str(kr.metric)], filters=KpiFilters(person_id=rita)
        )
        assert c.value == goals.kr_value_of(got[str(kr.metric)], KPIS[str(kr.metric)], "USD")
        assert c.records_params == {
            "period": "2026-Q3", "team": None, "person": rita, "campaign": None, "channel": None, "segment": None,
        }  # fmt: skip
    # Sam's figures are his own deals: the people's pipeline adds up to the total.
    sam = replace(PersonCard.of(w.rita), id=w.lib.people["sam"].id, name="Sam Seller")
    sams = await home.contributions(db, settings=settings, quarter=Q3, overview=page.overview, person=sam)
    assert {c.key_result.id: c.value for c in sams}[ids["pipeline"]] == D("1000")


async def test_attention_items_appear_and_disappear(db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    ids = w.ids
    page = await rita_page(db, settings, w)
    assert [(i.key_result.id, i.reasons) for i in page.attention] == [
        (ids["revenue"], (Attention.AT_RISK,)),
        (ids["pipeline"], (Attention.LAGGING,)),
        (ids["calls"], (Attention.NO_CHECK_IN,)),
        (ids["cases"], (Attention.STALE,)),
        (ids["floor"], (Attention.SANDBAGGED,)),
    ]
    assert {i.key_result.id: i.days_since_check_in for i in page.attention}[ids["cases"]] == 14
    # A check-in on pace (expected today: 49.5) clears the first; a fresh one the stale one.
    await check_in(db, settings, w.rita, ids["calls"], "60")
    await check_in(db, settings, w.rita, ids["cases"], "6")
    page = await rita_page(db, settings, w)
    assert [i.key_result.id for i in page.attention] == [ids["revenue"], ids["pipeline"], ids["floor"]]
    # A check-in far behind pace puts the KR back, at risk.
    await check_in(db, settings, w.rita, ids["calls"], "10", "at_risk")
    page = await rita_page(db, settings, w)
    assert (ids["calls"], (Attention.AT_RISK,)) in [(i.key_result.id, i.reasons) for i in page.attention]
    # Only its owner is asked: the sales lead owns the pipeline KR too, but not Rita's others.
    lead = await home.personal_page(
        db, settings=settings, quarter=Q3, person=PersonCard.of(w.cast.sales_lead), user=w.cast.sales_lead
    )
    assert [i.key_result.id for i in lead.attention] == [ids["pipeline"]]
    # A closed period asks nothing of anyone.
    closed = replace(page.overview, window=replace(page.overview.window, state="closed"))
    assert home.needs_attention(closed, w.rita.id) == ()


async def test_the_team_page(db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    c, ids = w.cast, w.ids
    page = await home.team_page(db, settings=settings, quarter=Q3, team_id=c.sales, user=c.rep)
    assert [o.id for o in page.overview.objectives] == [ids["joint"], ids["sales"], ids["own"]]
    figures = {f.kpi.name: f.value for f in page.figures}
    assert figures == {
        "revenue_won": 310_000,
        "pipeline_created": 240_000,
        "deals_won": 3,
        "win_rate": D("0.75"),
        "avg_deal_size": round(310_000 / 3),
        "sales_cycle_days": figures["sales_cycle_days"],
    }
    assert all(f.filters == KpiFilters(team_id=c.sales) for f in page.figures)
    people = {p.name: p for p in page.people}
    # Those with KRs first, then the rest, each by name.
    assert [p.name for p in page.members] == ["Rita Rep", "Vp.Sales", "Sam Seller", "Seller"]
    assert [(p.name, p.team.name) for p in page.others] == [("Marketer", "marketing")]
    rita = people["Rita Rep"]
    assert [kr.id for kr in rita.key_results] == [ids["pipeline"], ids["revenue"], ids["calls"], ids["cases"]]
    assert rita.status_counts[home.PaceStatus.AT_RISK] == 1 and rita.status_counts[None] == 1
    assert len(people["Vp.Sales"].key_results) == 1 and not people["Sam Seller"].key_results
    # Who may open whose page: a member only their own.
    assert [p.name for p in page.people if p.visible] == ["Seller"]
    lead = await home.team_page(db, settings=settings, quarter=Q3, team_id=c.sales, user=c.sales_lead)
    assert [p.name for p in lead.people if not p.visible] == ["Marketer"]

    marketing = await home.team_page(db, settings=settings, quarter=Q3, team_id=c.marketing, user=c.rep)
    assert [o.id for o in marketing.overview.objectives] == [ids["joint"], ids["brand"]]
    found = {f.kpi.name: f for f in marketing.figures}
    # Marketing owns the campaigns (CW and CX by Mia, CE without owner): 1,000 + 920 + 300.
    assert found["campaign_cost"].value == 222_000 and found["campaign_cost"].team_filtered
    # Sourced pipeline and MQLs are marketing's by definition: the organisation's figures.
    assert not found["mqls"].team_filtered and found["mqls"].value == 5
    with pytest.raises(NotFound):
        await home.team_page(db, settings=settings, quarter=Q3, team_id=999_999, user=c.rep)


async def test_who_may_see_whom(db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    c, rita, mia = w.cast, w.rita.id, w.lib.people["mia"].id
    allowed = {
        "rep": (c.rep, {c.rep.id}),
        "sales lead": (c.sales_lead, {rita, c.rep.id, c.sales_lead.id}),
        "marketing lead": (c.marketing_lead, {mia, c.marketer.id, c.marketing_lead.id}),
        "finance": (c.finance, {rita, mia, c.rep.id, c.admin.id}),
        "admin": (c.admin, {rita, mia, c.rep.id, c.finance.id}),
    }
    everyone = {rita, mia, c.rep.id, c.marketer.id, c.sales_lead.id, c.marketing_lead.id, c.admin.id}
    for name, (user, may) in allowed.items():
        for person_id in everyone | may:
            if person_id in may or user.role in ("admin", "finance"):
                card = await home.visible_person(db, user=user, person_id=person_id)
                assert card.id == person_id, name
            else:
                with pytest.raises(NotFound) as refused:
                    await home.visible_person(db, user=user, person_id=person_id)
                # The same sentence as for nobody at all: a refusal does not say the person exists.
                assert refused.value.detail == f"There is no person {person_id} you can see.", name
    with pytest.raises(NotFound):
        await home.visible_person(db, user=c.admin, person_id=999_999)
