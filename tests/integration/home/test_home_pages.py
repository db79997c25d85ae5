"""The personal and team pages over HTTP: the figures on hand-built data, the check-in that clears an
attention item, the period switch in place, the empty state, and who may open which page (a member gets
404 for anyone else, a leader for people outside their team, finance and admins see all, anonymous
visitors go to the login page)."""

import re
from collections.abc import Iterator
from html import unescape

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login
from tests.integration.home.home_data import NOW, RITA, world

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
    """The page's words, without tags, spaces collapsed (none before punctuation)."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([:,.;)])", r"\1", words)


def block(html: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its matching end tag."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"', html)
    assert start, f"no element {element_id}"
    tag, depth, pos = start.group(1), 0, start.start()
    for m in re.finditer(rf"<(/?){tag}\b[^>]*>", html[pos:]):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return html[pos : pos + m.end()]
    raise AssertionError(f"{element_id} is not closed")


async def as_(client: Client, email: str) -> None:
    assert (await login(client, email)).status_code == 303


async def test_anonymous_visitors_go_to_the_login_page(client: Client) -> None:
    for url in ("/me", "/people/1", "/teams/1"):
        response = await client.get(url, follow_redirects=False)
        assert response.status_code in {302, 303}, url
        assert response.headers["location"].startswith("/login"), url


async def test_my_page_shows_my_key_results_contribution_and_attention(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    ids, rita = w.ids, w.rita.id
    await as_(client, RITA)
    response = await client.get("/me?period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    assert '<a href="/me" aria-current="page">Me</a>' in html
    assert "<h1>Rita Rep</h1>" in html
    summary = text(block(html, "person-summary"))
    assert "Key results 4" in summary
    assert (
        text(block(html, "summary-statuses"))
        == "● 1 on track ◐ 1 lagging ▲ 1 at risk ○ 1 without a status yet"
    )
    assert "Need attention 5" in summary and "Shared KRs 4" in summary and "Objectives owned 1" in summary

    # My KRs: the goals page's own markup, only the KRs Rita owns, grouped under their objectives.
    mine = block(html, "my-key-results")
    for name in ("pipeline", "revenue", "calls", "cases"):
        assert f'id="kr-{ids[name]}"' in mine, name
    for name in ("win_rate", "sams_mqls", "brand_mqls", "floor"):
        assert f'id="kr-{ids[name]}"' not in mine, name
    assert "/move" not in mine and "/archive" not in mine
    # A check-in swaps back just its KR (view "kr"), not the goals page's objective.
    assert 'name="view" value="kr"' in mine and f'hx-target="#kr-{ids["calls"]}"' in mine
    calls = text(block(mine, f"kr-{ids['calls']}"))
    assert "Customer calls" in calls and "No check-in yet" in calls and "Check in" in calls
    revenue = text(block(mine, f"kr-{ids['revenue']}"))
    assert "USD 3,100.00 increase to USD 10,000.00" in revenue and "At risk" in revenue
    assert 'class="progress-pace" style="left: 49.5%"' in block(mine, f"kr-{ids['revenue']}")
    # Each check-in form comes back here, beside its KR.
    assert f'value="/me?period=2026-Q3&amp;checked={ids["calls"]}#kr-{ids["calls"]}"' in mine

    # My share of the shared metric KRs; each figure links to its records, mine narrowed to me.
    row = block(html, f"contribution-{ids['pipeline']}")
    assert text(row).startswith("Pipeline created Pipeline created · Pipeline together · joint")
    assert "USD 1,400.00" in text(block(row, f"contribution-{ids['pipeline']}-mine"))
    assert f'href="/kpis/pipeline_created/records?period=2026-Q3&amp;person={rita}"' in row
    assert "USD 2,400.00" in text(block(row, f"contribution-{ids['pipeline']}-total"))
    assert 'href="/kpis/pipeline_created/records?period=2026-Q3"' in row
    assert text(block(row, f"contribution-{ids['pipeline']}-share")) == "58.3 %"
    win = text(block(html, f"contribution-{ids['win_rate']}"))
    assert "100 %" in win and "75 %" in win and "does not add up" in win
    assert f"contribution-{ids['sams_mqls']}" not in html and f"contribution-{ids['brand_mqls']}" not in html

    # What needs me: most urgent first, each linking to its KR.
    attention = block(html, "attention")
    order = [int(i) for i in re.findall(r'<li id="attention-(\d+)"', attention)]
    assert order == [ids["revenue"], ids["pipeline"], ids["calls"], ids["cases"], ids["floor"]]
    assert f'href="/goals/key-results/{ids["revenue"]}"' in attention
    assert "Pace 63 %: USD 3,100.00 where USD 4,945.65 is expected today" in text(attention)
    assert "No check-in for 14 days" in text(block(attention, f"attention-{ids['cases']}"))
    floor = text(block(attention, f"attention-{ids['floor']}"))
    assert (
        "Target no harder than the last two quarters" in floor
        and "the trailing two-quarter actual, 1" in floor
    )
    owned = text(block(html, "owned"))
    assert "Rita's own" in owned and "score 100 %" in owned


async def test_a_check_in_from_my_page_clears_its_attention_item(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    calls = w.ids["calls"]
    await as_(client, RITA)
    html = (await client.get("/me?period=2026-Q3")).text
    assert f'id="attention-{calls}"' in html
    back = f"/me?period=2026-Q3&checked={calls}#kr-{calls}"
    response = await client.post(
        f"/goals/key-results/{calls}/check-ins",
        data={"_csrf_token": await csrf_token(client), "value": "60", "confidence": "on_track",
              "note": "Good week", "view": "row", "next": back},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == back
    # With htmx, the KR comes back alone, redrawn with the new value and the notice.
    swapped = await client.post(
        f"/goals/key-results/{calls}/check-ins",
        data={"_csrf_token": await csrf_token(client), "value": "61", "confidence": "on_track",
              "note": "Better week", "view": "kr", "next": back},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert swapped.status_code == 200 and swapped.text.lstrip().startswith("<li")
    assert f'id="kr-{calls}"' in swapped.text and "objective-" not in swapped.text
    got = text(swapped.text)
    assert "61 increase to 100" in got and "Checked in." in got and "“Better week”" in got
    html = (await client.get(back.split("#")[0])).text
    assert f'id="attention-{calls}"' not in html
    kr = text(block(html, f"kr-{calls}"))
    assert "61 increase to 100" in kr and "“Better week”" in kr
    assert "Checked in." not in text(block(html, f"kr-{w.ids['cases']}"))
    # A refused check-in shows its error beside the field, on the KR's page.
    response = await client.post(
        f"/goals/key-results/{calls}/check-ins",
        data={"_csrf_token": await csrf_token(client), "value": "lots", "confidence": "on_track",
              "view": "row", "next": back},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 422 and "Enter a number" in response.text


async def test_the_period_switches_in_place_and_an_empty_period_says_what_next(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await world(db, settings)
    await as_(client, RITA)
    response = await client.get("/me?period=2026-Q4", headers=HX)
    assert response.status_code == 200 and response.headers["vary"] == "HX-Request"
    html = response.text
    assert "<html" not in html and html.lstrip().startswith("<title>Me 2026-Q4")
    assert 'hx-swap-oob="true">Showing 2026-Q4' in html
    assert 'id="person-content"' in html and 'data-period="2026-Q4"' in html
    assert "No key results of yours in 2026-Q4 yet" in text(html)
    assert 'href="/teams/' in block(html, "person-content")
    # The whole page for the same address without htmx, with the period switcher on it.
    page = (await client.get("/me?period=2026-Q4")).text
    assert "<html" in page and 'hx-get="/me"' in page and '<option value="2026-Q4" selected>' in page
    assert (await client.get("/me?period=1999-Q1")).status_code == 404


async def test_another_persons_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    await as_(client, "vp.sales@example.com")
    html = (await client.get(f"/people/{w.rita.id}?period=2026-Q3")).text
    assert "<h1>Rita Rep</h1>" in html and 'aria-current="page">Me<' not in html
    assert "Key results 4" in text(block(html, "person-summary"))
    assert "Rita Rep’s key results" in text(block(html, "my-key-results"))
    # The leader may check in on their team's KRs; the form comes back to this page.
    back = f"/people/{w.rita.id}?period=2026-Q3&amp;checked={w.ids['calls']}#kr-{w.ids['calls']}"
    assert f'value="{back}"' in html
    assert f'href="/kpis/pipeline_created/records?period=2026-Q3&amp;person={w.rita.id}"' in html


async def test_the_team_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    w = await world(db, settings)
    c, ids = w.cast, w.ids
    await as_(client, "vp.sales@example.com")
    html = (await client.get(f"/teams/{c.sales}?period=2026-Q3")).text
    assert "<h1>Team sales</h1>" in html
    # The team's objectives, scored and banded by the goals page's own list (joint ones included).
    goals_list = block(html, "goals-list")
    found = [int(i) for i in re.findall(r'id="objective-(\d+)"', goals_list)]
    assert found == [ids["joint"], ids["sales"], ids["own"]]
    assert "Overall score" in text(goals_list) and "Add an objective" in text(goals_list)
    # Its key figures, each linking to the records with the team filter.
    revenue = block(html, "figure-revenue_won")
    assert "USD 3,100.00" in text(revenue)
    assert "Over the leads, opportunities and campaigns that sales people own." in text(html)
    assert f'href="/kpis/revenue_won/records?period=2026-Q3&amp;team={c.sales}"' in revenue
    assert "75.0 %" in text(block(html, "figure-win_rate"))
    # Its people with their KRs; the leader may open their pages, not the marketer's.
    rita = block(html, f"person-{w.rita.id}")
    assert f'href="/people/{w.rita.id}?period=2026-Q3"' in rita
    assert text(block(rita, f"person-{w.rita.id}-count")) == "4"
    assert text(block(rita, f"person-{w.rita.id}-statuses")) == (
        "● 1 on track ◐ 1 lagging ▲ 1 at risk ○ 1 without a status yet"
    )
    marketer = block(html, f"person-{c.marketer.id}")
    assert "from team marketing" in text(marketer) and "/people/" not in marketer
    assert 'href="/me?period=2026-Q3"' in block(html, f"person-{c.sales_lead.id}")

    # A check-in on the team page is the goals page's own: htmx swaps the objective and the team's summary.
    response = await client.post(
        f"/goals/key-results/{ids['calls']}/check-ins",
        data={"_csrf_token": await csrf_token(client), "value": "70", "confidence": "on_track",
              "view": "row", "team": str(c.sales), "next": f"/teams/{c.sales}?period=2026-Q3"},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 200
    swapped = response.text
    assert swapped.lstrip().startswith(f'<li class="card goal-objective" id="objective-{ids["sales"]}"')
    assert 'id="goals-summary"' in swapped and 'hx-swap-oob="true"' in swapped
    assert "70 increase to 100" in text(block(swapped, f"kr-{ids['calls']}"))

    # A member reads any team's page; they open only their own personal page from it.
    await as_(client, "seller@example.com")
    html = (await client.get(f"/teams/{c.marketing}?period=2026-Q3")).text
    assert "Team marketing" in html and "/people/" not in block(html, "team-people")
    assert 'hx-post="/goals/objectives' not in html  # no editing tools for a member
    marketing = block(html, "figure-pipeline_sourced_marketing")
    assert "The whole organisation's: marketing's by definition" in text(marketing)
    assert (await client.get("/teams/999999")).status_code == 404
    fragment = (await client.get(f"/teams/{c.sales}?period=2026-Q4", headers=HX)).text
    assert fragment.lstrip().startswith("<title>Team sales 2026-Q4") and 'id="team-content"' in fragment
    assert fragment.count("<title>") == 1 and fragment.count('id="period-status"') == 1
    assert "No objectives for this team in 2026-Q4" in text(fragment)


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        ("seller@example.com", {"seller"}),
        ("vp.sales@example.com", {"seller", "rita", "vp.sales"}),
        ("vp.marketing@example.com", {"marketer", "mia", "vp.marketing"}),
        ("finance@example.com", {"everyone"}),
        ("admin@example.com", {"everyone"}),
    ],
)
async def test_who_may_open_whose_page(
    client: Client, db: AsyncSession, settings: Settings, viewer: str, sees: set[str]
) -> None:
    w = await world(db, settings)
    c = w.cast
    people = {
        "seller": c.rep.id,
        "rita": w.rita.id,
        "marketer": c.marketer.id,
        "mia": w.lib.people["mia"].id,
        "vp.sales": c.sales_lead.id,
        "vp.marketing": c.marketing_lead.id,
        "admin": c.admin.id,
        "finance": c.finance.id,
    }
    await as_(client, viewer)
    for name, person_id in people.items():
        response = await client.get(f"/people/{person_id}?period=2026-Q3")
        if name in sees or "everyone" in sees:
            assert response.status_code == 200, (viewer, name)
        else:
            # Exactly as for nobody at all: the page will carry the person's bonus (DESIGN 8).
            assert response.status_code == 404, (viewer, name)
            assert f"There is no person {person_id} you can see." in response.text
    missing = await client.get("/people/999999")
    assert missing.status_code == 404 and "There is no person 999999 you can see." in missing.text
    assert (await client.get("/me")).status_code == 200


async def test_the_teams_page_lists_every_team_with_its_objectives(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    w = await world(db, settings)
    c = w.cast
    assert (await client.get("/teams", follow_redirects=False)).status_code in {302, 303}
    await as_(client, RITA)
    html = (await client.get("/teams?period=2026-Q3")).text
    assert "<h1>Teams</h1>" in html
    assert f'href="/teams/{c.sales}?period=2026-Q3"' in block(html, f"team-{c.sales}")
    # The joint objective counts for both of its teams; a team with objectives has a score and band.
    assert text(block(html, f"team-{c.sales}-objectives")) == "3"
    assert text(block(html, f"team-{c.marketing}-objectives")) == "2"
    assert text(block(html, f"team-{c.sales}-people")).isdigit()
    assert "%" in text(block(html, f"team-{c.sales}-score"))
    # Another quarter, switched in place: no objectives, no score yet.
    empty = (await client.get("/teams?period=2026-Q2", headers={"HX-Request": "true"})).text
    assert 'id="teams-content"' in empty and "<h1>" not in empty
    assert text(block(empty, f"team-{c.sales}-objectives")) == "0"
    assert "No score yet" in text(block(empty, f"team-{c.sales}-score"))
