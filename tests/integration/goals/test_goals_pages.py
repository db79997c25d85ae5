"""The goals pages over HTTP: the goals page and its htmx fragments, the forms with their inline errors and
conflicts, a KR's page with its burn-up chart, inline check-ins, reorder, archive, roll forward; who may
do what (members read, leaders write their own teams' goals, a closed period is read-only)."""

import re
from collections.abc import Iterator
from html import unescape

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login
from tests.integration.goals.goals_data import NOW, Q3, Cast, D, cast, check_in, key_result, objective

from okr.db.goals import Objective
from okr.db.people import Period
from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
HX = {"HX-Request": "true"}


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


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def block(html: str, element_id: str) -> str:
    """The words of the element (li or section) with this id, up to its end tag."""
    match = re.search(rf'<(\w+)[^>]*id="{element_id}".*?</\1>', html, re.S)
    assert match, f"no element {element_id}"
    return text(match.group(0))


async def as_(client: Client, email: str) -> None:
    assert (await login(client, email)).status_code == 303


async def post(client: Client, url: str, data: dict[str, object], **kw: object) -> object:
    form = {"_csrf_token": await csrf_token(client), **data}
    return await client.post(url, data=form, follow_redirects=False, **kw)  # type: ignore[arg-type]


async def planted(db: AsyncSession, settings: Settings) -> tuple[Cast, dict[str, int]]:
    """A sales objective with three KRs (on track, at risk and over target) and a marketing objective."""
    c = await cast(db)
    a = await objective(db, settings, c.sales_lead, "Grow revenue", (c.sales,))
    up = await key_result(db, settings, c.sales_lead, a, "Deals signed", owners=(c.rep.id,))
    down = await key_result(
        db, settings, c.sales_lead, a, "Days to close", kind="decrease_to", unit="days", start="40",
        target="20", weight="2",
    )  # fmt: skip
    over = await key_result(db, settings, c.sales_lead, a, "Webinars", target="10")
    b = await objective(db, settings, c.marketing_lead, "Brand", (c.marketing,))
    await check_in(db, settings, c.rep, up, "50", note="Half way")
    await check_in(db, settings, c.sales_lead, down, "35", "at_risk")
    await check_in(db, settings, c.sales_lead, over, "15")
    return c, {"a": a, "b": b, "up": up, "down": down, "over": over}


async def test_anonymous_visitors_go_to_the_login_page(client: Client) -> None:
    response = await client.get("/goals", follow_redirects=False)
    assert response.status_code in {302, 303} and response.headers["location"].startswith("/login")


async def test_the_goals_page_shows_progress_pace_and_scores(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c, ids = await planted(db, settings)
    await as_(client, "seller@example.com")
    response = await client.get("/goals?period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    assert '<a href="/goals" aria-current="page">Goals</a>' in html
    # Objective A: (0.5 x 1 + 0.25 x 2 + 1 x 1) / 4 = 50 %; B has no KR yet; overall 50 %.
    assert "Score 50 % ◐ Progressing" in block(html, f"objective-{ids['a']}")
    assert block(html, "goals-score") == "50 %"
    up = block(html, f"kr-{ids['up']}")
    assert "Deals signed" in up and "On track" in up and "50 increase to 100 from 0" in up
    assert "50 % of the way to the target" in up and "expected today 49.46 (49 %), pace 101 %" in up
    assert "last check-in ✓ On track" in up and "by Seller" in up and "“Half way”" in up
    down = block(html, f"kr-{ids['down']}")
    assert "At risk" in down and "35 days decrease to 20 days from 40 days" in down
    over = block(html, f"kr-{ids['over']}")
    assert "150 % of the way to the target (over target by 50 %)" in over
    # The bar: filled to 100 %, the pace marker where the value should be today (91/184).
    assert 'class="progress-fill tone-good" style="width: 100.0%"' in html
    assert 'class="progress-pace" style="left: 49.5%"' in html
    # A member reads; the owner may check in on their KR, and only there.
    assert "Add an objective" not in html and "/edit" not in html
    assert (
        html.count("<summary>Check in") == 1 and f'action="/goals/key-results/{ids["up"]}/check-ins"' in html
    )
    assert "No key results yet." in block(html, f"objective-{ids['b']}")
    assert c


async def test_the_page_filters_by_team_and_switches_in_place(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c, ids = await planted(db, settings)
    await as_(client, "vp.marketing@example.com")
    html = (await client.get(f"/goals?period=2026-Q3&team={c.marketing}")).text
    assert f'id="objective-{ids["b"]}"' in html and f'id="objective-{ids["a"]}"' not in html
    response = await client.get("/goals?period=2026-Q4", headers=HX)
    assert response.status_code == 200 and response.headers["vary"] == "HX-Request"
    fragment = response.text
    assert "<html" not in fragment and '<section id="goals-list"' in fragment
    assert 'data-period="2026-Q4"' in fragment
    # An empty quarter says what to do next; a leader can roll the last one forward from here.
    assert "No objectives for 2026-Q4 yet" in text(fragment)
    assert "Roll 2026-Q3 forward into 2026-Q4" in text(fragment)
    page = (await client.get("/goals")).text
    assert 'hx-get="/goals" hx-target="#goals-list"' in page and 'hx-push-url="true"' in page


async def test_a_member_sees_an_empty_state_and_cannot_write(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c, ids = await planted(db, settings)
    await as_(client, "seller@example.com")
    html = (await client.get("/goals?period=2026-Q4")).text
    assert "Leaders add their team's objectives here" in text(html)
    assert "Roll 2026-Q3 forward" not in html
    assert (await client.get("/goals/objectives/new?period=2026-Q3")).status_code == 403
    assert (await client.get(f"/goals/objectives/{ids['a']}/edit")).status_code == 403
    refused = await post(client, "/goals/objectives?period=2026-Q3", {"title": "Mine", "team_ids": c.sales})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "Only leaders and admins can change goals" in text(refused.text)  # type: ignore[attr-defined]
    refused = await post(client, f"/goals/objectives/{ids['a']}", {"title": "x", "version": 1, "weight": "1"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    refused = await post(client, f"/goals/objectives/{ids['a']}/archive", {"version": 1})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    refused = await post(
        client, f"/goals/key-results/{ids['down']}/check-ins", {"value": "30", "confidence": "on_track"}
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    refused = await post(client, "/goals/roll-forward", {"period": "2026-Q3"})
    assert refused.status_code == 403  # type: ignore[attr-defined]


async def test_a_leader_creates_and_edits_with_inline_errors(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    await as_(client, "vp.sales@example.com")
    form = (await client.get("/goals/objectives/new?period=2026-Q3")).text
    assert f'name="team_ids" value="{c.sales}" checked' in form
    bad = await post(
        client, "/goals/objectives?period=2026-Q3", {"title": "", "weight": "heavy", "team_ids": c.sales}
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    words = text(bad.text)  # type: ignore[attr-defined]
    assert "The objective was not saved." in words
    assert "Give the objective a title." in words and "Enter a weight, such as 1 or 0.5." in words
    assert 'aria-invalid="true"' in bad.text  # type: ignore[attr-defined]
    made = await post(
        client, "/goals/objectives?period=2026-Q3",
        {"title": "Own the mid-market", "weight": "2", "team_ids": [c.sales, c.marketing], "description": "Joint"},
    )  # fmt: skip
    assert made.status_code == 303  # type: ignore[attr-defined]
    await db.rollback()
    oid = (await db.scalars(select(Objective.id))).one()
    assert made.headers["location"] == f"/goals?period=2026-Q3#objective-{oid}"  # type: ignore[attr-defined]
    edit = (await client.get(f"/goals/objectives/{oid}/edit")).text
    assert 'name="version" value="1"' in edit and "Own the mid-market" in edit
    saved = await post(
        client,
        f"/goals/objectives/{oid}",
        {"title": "Own mid-market", "weight": "2", "team_ids": [c.sales, c.marketing], "version": 1},
    )
    assert saved.status_code == 303  # type: ignore[attr-defined]
    # The form opened at version 1 is now stale: 409, said beside the form.
    stale = await post(
        client,
        f"/goals/objectives/{oid}",
        {"title": "Other", "weight": "2", "team_ids": c.sales, "version": 1},
    )
    assert stale.status_code == 409  # type: ignore[attr-defined]
    words = text(stale.text)  # type: ignore[attr-defined]
    assert (
        "was changed by someone else since you opened it" in words and "Reload the current version" in words
    )
    # A KR: inline errors, then saved; its page then flags the target.
    bad = await post(
        client, f"/goals/objectives/{oid}/key-results",
        {"title": "Deals", "kind": "increase_to", "unit": "count", "source": "manual", "start_value": "10", "target": "10", "weight": "1"},
    )  # fmt: skip
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "The target must differ from the start value." in text(bad.text)  # type: ignore[attr-defined]
    made = await post(
        client, f"/goals/objectives/{oid}/key-results",
        {"title": "Deals", "kind": "increase_to", "unit": "count", "source": "manual", "start_value": "0",
         "target": "1,200", "weight": "1", "owner_ids": [c.rep.id], "counts_toward_bonus": "1"},
    )  # fmt: skip
    assert made.status_code == 303  # type: ignore[attr-defined]
    kr_page = await client.get(made.headers["location"])  # type: ignore[attr-defined]
    assert kr_page.status_code == 200 and "Saved." in kr_page.text
    assert block(kr_page.text, "kr-target") == "1,200"


async def test_leaders_edit_only_their_teams_objectives(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    c = await cast(db)
    sales = await objective(db, settings, c.sales_lead, "Sales only", (c.sales,))
    joint = await objective(db, settings, c.sales_lead, "Joint", (c.sales, c.marketing))
    await as_(client, "vp.marketing@example.com")
    html = (await client.get("/goals")).text
    assert f"/goals/objectives/{joint}/edit" in html and f"/goals/objectives/{sales}/edit" not in html
    assert (await client.get(f"/goals/objectives/{sales}/edit")).status_code == 403
    refused = await post(
        client,
        f"/goals/objectives/{sales}",
        {"title": "x", "weight": "1", "team_ids": c.marketing, "version": 1},
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "belongs to another team" in text(refused.text)  # type: ignore[attr-defined]
    ok = await post(
        client,
        f"/goals/objectives/{joint}",
        {"title": "Joint!", "weight": "1", "team_ids": [c.sales, c.marketing], "version": 1},
    )
    assert ok.status_code == 303  # type: ignore[attr-defined]


async def test_a_closed_period_is_read_only(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, ids = await planted(db, settings)
    await db.execute(update(Period).where(Period.key == "2026-Q3").values(state="closed"))
    await db.commit()
    await as_(client, "admin@example.com")
    html = (await client.get("/goals?period=2026-Q3")).text
    assert "2026-Q3 is closed: its goals are read-only." in text(html)
    assert "Add an objective" not in html and "/edit" not in html and "<summary>Check in" not in html
    refused = await post(
        client, "/goals/objectives?period=2026-Q3", {"title": "Late", "weight": "1", "team_ids": c.sales}
    )
    assert refused.status_code == 409, text(refused.text)  # type: ignore[attr-defined]
    assert "2026-Q3 is closed" in text(refused.text)  # type: ignore[attr-defined]
    assert (await client.get("/goals/objectives/new?period=2026-Q3")).status_code == 409
    refused = await post(
        client, f"/goals/key-results/{ids['up']}/check-ins", {"value": "60", "confidence": "on_track"}
    )
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "2026-Q3 is closed" in text(refused.text)  # type: ignore[attr-defined]


async def test_the_key_result_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, ids = await planted(db, settings)
    metric = await key_result(
        db, settings, c.sales_lead, ids["a"], "Sales pipeline", unit="currency", source="metric",
        metric="pipeline_created", target="50000", filters=goals.KpiFilters(team_id=c.sales),
    )  # fmt: skip
    await as_(client, "seller@example.com")
    response = await client.get(f"/goals/key-results/{ids['up']}")
    assert response.status_code == 200
    html = response.text
    assert block(html, "kr-value") == "50" and block(html, "kr-attainment") == "50 %"
    assert block(html, "kr-expected") == "49.46"
    # The burn-up chart: SVG with a title, a description and three lines; its text alternative printed.
    assert '<svg viewBox="0 0 640 280" role="img" aria-labelledby="kr-chart-title kr-chart-desc"' in html
    assert '<title id="kr-chart-title">Burn-up of Deals signed, 2026-Q3</title>' in html
    assert html.count('<polyline class="') == 3
    assert (
        "Burn-up from Jul 1, 2026 to Sep 30, 2026: start 0, target 100. Latest value 50 on Aug 15, 2026"
        in html
    )
    # Check-ins and the inline form (the member owns this KR).
    rows = re.findall(r'<tr data-check-in="\d+">(.*?)</tr>', html, re.S)
    assert len(rows) == 1 and "Half way" in text(rows[0]) and "Seller" in text(rows[0])
    assert 'name="view" value="detail"' in html
    # A metric KR links to the records behind its value, with its filters.
    page = (await client.get(f"/goals/key-results/{metric}")).text
    assert f'href="/kpis/pipeline_created/records?period=2026-Q3&amp;team={c.sales}"' in page
    assert "Live, from pipeline data" in page
    assert (await client.get("/goals/key-results/999999")).status_code == 404


async def test_inline_check_in_with_htmx(client: Client, db: AsyncSession, settings: Settings) -> None:
    _c, ids = await planted(db, settings)
    await as_(client, "seller@example.com")
    # From the goals page: the objective comes back, and the summary out of band.
    response = await post(
        client, f"/goals/key-results/{ids['up']}/check-ins",
        {"value": "75", "confidence": "on_track", "note": "Two big deals", "view": "row"}, headers=HX,
    )  # fmt: skip
    assert response.status_code == 200  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert html.lstrip().startswith(f'<li class="card goal-objective" id="objective-{ids["a"]}"')
    assert '<div id="goals-summary" class="card goals-summary" hx-swap-oob="true">' in html
    assert "Checked in." in text(html) and block(html, f"kr-{ids['up']}-value") == "75"
    # (0.75 + 0.25 x 2 + 1) / 4 = 56.25 %
    assert block(html, "goals-score") == "56 %"
    # An error comes back beside the field, still 200 so that htmx shows it.
    response = await post(
        client,
        f"/goals/key-results/{ids['up']}/check-ins",
        {"value": "lots", "confidence": "on_track", "view": "row"},
        headers=HX,
    )
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "Enter a number, such as 42 or 1250.50." in text(response.text)  # type: ignore[attr-defined]
    assert '<details class="goal-checkin" open>' in response.text  # type: ignore[attr-defined]
    # From the KR page: its figures come back.
    response = await post(
        client,
        f"/goals/key-results/{ids['up']}/check-ins",
        {"value": "80", "confidence": "at_risk", "view": "detail"},
        headers=HX,
    )
    html = response.text  # type: ignore[attr-defined]
    assert html.lstrip().startswith('<section id="kr-detail"') and block(html, "kr-value") == "80"
    assert len(re.findall(r'<tr data-check-in="\d+">', html)) == 3
    # Without JavaScript: a plain post, then back.
    response = await post(
        client, f"/goals/key-results/{ids['up']}/check-ins", {"value": "81", "confidence": "on_track"}
    )
    assert response.status_code == 303  # type: ignore[attr-defined]


async def test_reorder_archive_and_roll_forward(client: Client, db: AsyncSession, settings: Settings) -> None:
    c, ids = await planted(db, settings)
    await as_(client, "admin@example.com")
    response = await post(client, f"/goals/objectives/{ids['b']}/move", {"direction": "up"}, headers=HX)
    html = response.text  # type: ignore[attr-defined]
    assert html.lstrip().startswith('<section id="goals-list"')
    assert re.findall(r'id="objective-(\d+)"', html) == [str(ids["b"]), str(ids["a"])]
    response = await post(client, f"/goals/key-results/{ids['over']}/move", {"direction": "up"}, headers=HX)
    html = response.text  # type: ignore[attr-defined]
    assert re.findall(r'id="kr-(\d+)"', html) == [str(ids["up"]), str(ids["over"]), str(ids["down"])]
    response = await post(client, f"/goals/key-results/{ids['over']}/archive", {"version": 1}, headers=HX)
    html = response.text  # type: ignore[attr-defined]
    assert "Archived “Webinars”." in text(html) and f'id="kr-{ids["over"]}"' not in html
    stale = await post(client, f"/goals/objectives/{ids['b']}/archive", {"version": 5}, headers=HX)
    assert stale.status_code == 200  # type: ignore[attr-defined]
    assert "was changed by someone else" in text(stale.text)  # type: ignore[attr-defined]
    plain = await post(
        client, f"/goals/objectives/{ids['b']}/archive", {"version": 1, "next": "/goals?period=2026-Q3"}
    )
    assert plain.status_code == 303 and plain.headers["location"] == "/goals?period=2026-Q3"  # type: ignore[attr-defined]
    rolled = await post(client, "/goals/roll-forward", {"period": "2026-Q3"})
    assert rolled.status_code == 200  # type: ignore[attr-defined]
    words = text(rolled.text)  # type: ignore[attr-defined]
    assert "Copied 1 objective and 2 key results from 2026-Q3 into 2026-Q4." in words
    assert 'data-period="2026-Q4"' in rolled.text  # type: ignore[attr-defined]
    again = await post(client, "/goals/roll-forward", {"period": "2026-Q3"})
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "was rolled forward into 2026-Q4 before" in text(again.text)  # type: ignore[attr-defined]
    assert D(1) and Q3 and c
