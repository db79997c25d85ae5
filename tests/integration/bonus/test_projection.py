"""The bonus projection on the hand-worked organisation (bonus_data.py) plus three open deals added here.

| deal | amount | category | splits | counted |
| --- | --- | --- | --- | --- |
| O1 | 20,000.00 | commit | owner Rita | 20,000.00 (in full) |
| O2 | 10,000.00 | best_case, 40 % | Rita 50 %, Sue 50 % | 4,000.00 (2,000.00 each) |
| O3 | 30,000.00 | pipeline | owner Rita | 0 |

By hand (cents): projected won = 15,000,000 + 2,000,000 + 400,000 = 17,400,000; pool = 0.03 x that =
522,000 (joint score 1, multiplier 1); sales 0.6 = 313,200, i.e. 18,000 per 1,000,000 of sales credit;
marketing 0.4 = 208,800.
- Rita: credit 6,000,000 + 2,000,000 + 200,000 = 8,200,000 -> 147,600 (earned today 108,000, so +39,600);
  traced O1 36,000, O2 3,600.
- Sue: 9,000,000 + 200,000 = 9,200,000 -> 165,600 (earned 162,000).
- Mia: marketing credit unchanged (10 of 15 million) -> 208,800 x 2/3 = 139,200 (earned 120,000).
What-if for Rita: O3 closing in full -> won 20,400,000, pool 612,000, sales 367,200 (18,000 per million),
Rita 11,200,000 -> 201,600. O2 closing in full instead -> won 18,000,000, sales 324,000, Rita 8,500,000
-> 153,000 (O1 keeps counting in full as a commit, O3 still 0).
"""

import re
from collections.abc import Iterator
from decimal import Decimal
from html import unescape

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import Org, bonus_org
from tests.integration.conftest import csrf_token, login
from tests.integration.kpis.pipeline_data import PipelineData

from okr.bonus import engine, projection
from okr.bonus import projection_core as pc
from okr.bonus import services as bonus
from okr.bonus.plans import approved_plan
from okr.db.bonus import BonusPlan
from okr.db.models import Opportunity, OpportunitySplit
from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.lib.clock import set_clock, utcnow
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    for clear in (kpis.clear_cache, goals.clear_cache, projection.clear_cache):
        clear()
    yield
    set_clock(None)
    for clear in (kpis.clear_cache, goals.clear_cache, projection.clear_cache):
        clear()


async def org_with_open_deals(db: AsyncSession, settings: Settings) -> tuple[Org, dict[str, Opportunity]]:
    org = await bonus_org(db, settings)
    d = PipelineData(db)
    rita, sue = org.people["rita"], org.people["sue"]
    o1 = await d.opportunity(
        "O1", amount=2_000_000, created_at="2026-08-01T12:00Z", owner=rita, forecast_category="commit",
        probability="90", name="Acme renewal",
    )  # fmt: skip
    o2 = await d.opportunity(
        "O2", amount=1_000_000, created_at="2026-08-02T12:00Z", owner=rita, forecast_category="best_case",
        probability="40", name="Bolt expansion",
    )  # fmt: skip
    o3 = await d.opportunity(
        "O3", amount=3_000_000, created_at="2026-08-03T12:00Z", owner=rita, forecast_category="pipeline",
        probability="10", name="Cargo new logo",
    )  # fmt: skip
    for person in (rita, sue):
        db.add(
            OpportunitySplit(opportunity_id=o2.id, person_id=person.id, kind="revenue", percent=Decimal(50))
        )
    await db.commit()
    return org, {"O1": o1, "O2": o2, "O3": o3}


def text(html: str) -> str:
    """The fragment's words, tags removed, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, f"no {element_id}"
    return unescape(found.group(1)).strip()


def deal_rows(html: str) -> list[str]:
    return re.findall(r'<tr id="projection-deal-\d+" data-deal="(\d+)"', html)


async def as_(client: Client, org: Org, name: str) -> None:
    assert (await login(client, org.people[name].email)).status_code == 303


async def what_if(client: Client, closing: list[int], person: int | None = None) -> str:
    form: dict[str, str | list[str]] = {
        "close": [str(i) for i in closing],
        "_csrf_token": await csrf_token(client),
    }
    if person is not None:
        form["person"] = str(person)
    response = await client.post("/bonus/projection/what-if?period=2026-Q3", data=form, headers=HX)
    assert response.status_code == 200, response.text
    return response.text


async def test_a_reps_projection_matches_the_hand_worked_figures(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org, deals = await org_with_open_deals(db, settings)
    await as_(client, org, "rita")
    response = await client.get("/bonus/projection", headers=HX)
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<section id="bonus-projection"') and "<html" not in html
    assert figure(html, "projection-projected") == "USD 1,476.00"
    assert figure(html, "projection-earned") == "USD 1,080.00"
    assert figure(html, "projection-pipeline") == "+USD 396.00"
    assert figure(html, "projection-score") == "100 %"
    assert figure(html, "projection-multiplier") == "× 1.00"
    assert "Projection, not a promise" in html and "marketers get no credit on open deals" in text(html)
    # Her open deals, biggest expected contribution first; each links to its journey.
    assert deal_rows(html) == [str(deals[k].id) for k in ("O1", "O2", "O3")]
    o1 = text(re.search(rf'<tr id="projection-deal-{deals["O1"].id}".*?</tr>', html, re.S).group(0))  # type: ignore[union-attr]
    assert (
        o1
        == "Acme renewal closes won Acme renewal O1 Commit USD 20,000.00 USD 20,000.00 100 % USD 20,000.00 USD 360.00"
    )
    o2 = text(re.search(rf'<tr id="projection-deal-{deals["O2"].id}".*?</tr>', html, re.S).group(0))  # type: ignore[union-attr]
    assert "Best case 40 % USD 10,000.00 USD 4,000.00 40 % USD 2,000.00 USD 36.00" in o2
    assert f'href="/attribution/opportunities/{deals["O3"].id}"' in html
    assert 'name="close"' in html and "checked" not in html


async def test_the_what_if_counts_the_ticked_deals_in_full(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org, deals = await org_with_open_deals(db, settings)
    await as_(client, org, "rita")
    html = await what_if(client, [deals["O3"].id])
    assert figure(html, "projection-projected") == "USD 2,016.00"
    assert figure(html, "projection-earned") == "USD 1,080.00"  # won deals only: the what-if leaves it
    assert f'value="{deals["O3"].id}" id="close-{deals["O3"].id}" checked' in html
    assert figure(html, "projection-closing-total") == "USD 30,000.00"
    assert "Recalculated with 1 deal closing: projected USD 2,016.00." in html

    html = await what_if(client, [deals["O2"].id])
    assert figure(html, "projection-projected") == "USD 1,530.00"
    # A deal that is not hers is ignored, not counted.
    other = await what_if(client, [org.deals["W1"].id])
    assert figure(other, "projection-projected") == "USD 1,476.00"
    bad = await client.post(
        "/bonus/projection/what-if", data={"close": "x1", "_csrf_token": await csrf_token(client)}, headers=HX
    )
    assert bad.status_code == 422


async def test_each_person_sees_their_own_line(client: Client, db: AsyncSession, settings: Settings) -> None:
    org, deals = await org_with_open_deals(db, settings)
    await as_(client, org, "sue")
    html = (await client.get("/bonus/projection", headers=HX)).text
    assert figure(html, "projection-projected") == "USD 1,656.00"
    assert figure(html, "projection-earned") == "USD 1,620.00"
    assert deal_rows(html) == [str(deals["O2"].id)]

    await as_(client, org, "mia")
    html = (await client.get("/bonus/projection", headers=HX)).text
    assert figure(html, "projection-projected") == "USD 1,392.00"
    assert figure(html, "projection-earned") == "USD 1,200.00"
    assert "no open deal credited to you" in text(html) and "moves with the pool" in text(html)


async def test_only_the_person_finance_and_admins_see_a_projection(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org, _ = await org_with_open_deals(db, settings)
    rita = org.id("rita")
    # A member asking for another person: 404, the same as for nobody.
    await as_(client, org, "sue")
    assert (await client.get(f"/bonus/projection?person={rita}", headers=HX)).status_code == 404
    assert (await client.get(f"/api/v1/bonus/projection?person={rita}")).status_code == 404
    assert (await what_if_status(client, person=rita)) == 404
    # Her team's leader opens her page, but it carries no projection, and the fragment is 404 for him.
    await as_(client, org, "vic")
    page = await client.get(f"/people/{rita}?period=2026-Q3")
    assert page.status_code == 200 and "Rita Rep" in page.text
    assert "bonus-projection" not in page.text and "/bonus/projection" not in page.text
    assert (await client.get(f"/bonus/projection?person={rita}", headers=HX)).status_code == 404
    # His own page loads his own projection lazily.
    me = (await client.get("/me?period=2026-Q3")).text
    assert 'hx-get="/bonus/projection?period=2026-Q3"' in me and 'hx-trigger="load"' in me
    # Finance sees Rita's, from her page and the API; someone who does not exist is 404.
    await as_(client, org, "fay")
    page = await client.get(f"/people/{rita}?period=2026-Q3")
    assert f'hx-get="/bonus/projection?period=2026-Q3&amp;person={rita}"' in page.text
    html = (await client.get(f"/bonus/projection?person={rita}", headers=HX)).text
    assert figure(html, "projection-projected") == "USD 1,476.00" and "Rita Rep’s projected bonus" in html
    assert f'<input type="hidden" name="person" value="{rita}">' in html
    assert (await client.get("/bonus/projection?person=999999", headers=HX)).status_code == 404
    # Fay's own team is not in the plan.
    own = (await client.get("/bonus/projection", headers=HX)).text
    assert "not in the 2026-Q3 bonus plan" in own and "projection-projected" not in own


async def what_if_status(client: Client, *, person: int) -> int:
    data = {"person": str(person), "_csrf_token": await csrf_token(client)}
    return (await client.post("/bonus/projection/what-if", data=data, headers=HX)).status_code


async def test_the_api_gives_the_same_figures(client: Client, db: AsyncSession, settings: Settings) -> None:
    org, deals = await org_with_open_deals(db, settings)
    await as_(client, org, "rita")
    body = (await client.get("/api/v1/bonus/projection")).json()
    assert body["state"] == "ok" and body["period"] == "2026-Q3" and body["currency"] == "USD"
    assert (body["projected"], body["earned"], body["pipeline"]) == (147_600, 108_000, 39_600)
    assert body["joint_score"] == "1" and body["multiplier"] == "1"
    assert [(d["external_id"], d["counted"], d["credit"], d["part"]) for d in body["deals"]] == [
        ("O1", 2_000_000, 2_000_000, 36_000),
        ("O2", 400_000, 200_000, 3_600),
        ("O3", 0, 0, 0),
    ]
    closing = (await client.get(f"/api/v1/bonus/projection?close={deals['O3'].id}")).json()
    assert closing["projected"] == 201_600 and closing["deals"][2]["closing"] is True


async def test_no_plan_or_another_quarter_says_so(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org, _ = await org_with_open_deals(db, settings)
    await as_(client, org, "rita")
    html = (await client.get("/bonus/projection?period=2026-Q2", headers=HX)).text
    assert (
        "2026-Q2 has no approved bonus plan yet" in text(html) and 'href="/bonus/plan?period=2026-Q2"' in html
    )
    await db.execute(update(BonusPlan).values(status="draft"))
    await db.commit()
    html = (await client.get("/bonus/projection", headers=HX)).text
    assert "2026-Q3 has no approved bonus plan yet" in text(html) and "projection-projected" not in html
    # Without htmx the same URL is a whole page (the link in the placeholder, for no JavaScript).
    page = await client.get("/bonus/projection")
    assert page.status_code == 200 and "<html" in page.text and "Back to your page" in page.text


async def test_the_fast_path_equals_the_engine_for_everyone(db: AsyncSession, settings: Settings) -> None:
    org, deals = await org_with_open_deals(db, settings)
    period = await bonus.period_by_key(db, "2026-Q3")
    plan = await approved_plan(db, period_id=period.id)
    assert plan is not None
    inputs = await bonus.gather_inputs(db, settings=settings, period=period, plan=plan, as_of=utcnow())
    found, unpriced = await projection.open_deals(db, settings=settings)
    assert unpriced == 0 and [d.external_id for d in found] == ["O1", "O2", "O3"]
    earned, projected = pc.prepare(inputs), None
    projected = pc.with_changes(earned, pc.weighted_changes(found))
    for closing in (set(), {deals["O3"].id}, {deals["O1"].id, deals["O2"].id}):
        results = engine.compute(pc.project_inputs(inputs, found, closing=closing))
        fast = pc.with_changes(projected, pc.closing_changes(found, closing))
        for name in ("rita", "sue", "vic", "mia", "max"):
            line = pc.person_line(fast, org.id(name))
            assert line.payable == pc.person_result(results, org.id(name)).payable, (closing, name)
    assert pc.person_result(engine.compute(inputs), org.id("rita")).payable == 108_000
