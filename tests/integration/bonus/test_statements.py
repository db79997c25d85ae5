"""Bonus statements and inquiries on the hand-worked organisation (bonus_data.py): the figures a statement
shows (Sue's 162,000 = W1 72,000 + W2 90,000, Mia's campaigns down to the touches, the pool formula with
the numbers, adjustments), who may see which statement and inquiry on every page and API route (404 for
anyone else, a leader included), and the inquiry thread (raise, answer, reopen, the run's list)."""

import re
from collections.abc import Iterator
from decimal import Decimal
from html import unescape

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.bonus.bonus_data import Org, bonus_org
from tests.integration.conftest import csrf_token, login

from okr.auth.services import create_token
from okr.bonus import services as bonus
from okr.bonus import statements as svc
from okr.db.audit import AuditEvent
from okr.db.bonus import BonusRun, Inquiry
from okr.lib.clock import set_clock
from okr.lib.errors import Forbidden, NotFound, ValidationFailed
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
HX = {"HX-Request": "true"}
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    set_clock(None)


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


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


async def run_in(db: AsyncSession, settings: Settings, org: Org, state: str = "approved") -> BonusRun:
    """A computed Q3 run taken to `state` (Fay submits, Fin approves, Fay locks), committed."""
    fay, fin = org.users["fay"], org.users["fin"]
    run = await bonus.create_run(db, settings=settings, period_key="2026-Q3", user=fay)
    await bonus.compute_run(db, settings=settings, run_id=run.id)
    if state in ("submitted", "approved", "locked"):
        await bonus.submit_run(db, run_id=run.id, user=fay)
    if state in ("approved", "locked"):
        await bonus.approve_run(db, run_id=run.id, user=fin)
    if state == "locked":
        await bonus.lock_run(db, run_id=run.id, user=fay)
    await db.commit()
    return run


async def as_(client: Client, org: Org, name: str) -> None:
    assert (await login(client, org.people[name].email)).status_code == 303


async def bearer(db: AsyncSession, org: Org, name: str, *scopes: str) -> dict[str, str]:
    await db.commit()  # a fresh snapshot: SQLite refuses a write from one older than the app's last commit
    _, plaintext = await create_token(db, person_id=org.id(name), name="stmt", scopes=list(scopes))
    await db.commit()
    return {"Authorization": f"Bearer {plaintext}"}


# -- the figures --------------------------------------------------------------------------------------


async def test_sues_statement_shows_the_pool_rule_line_and_deals(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    s = await svc.statement(db, run_id=run.id, person_id=org.id("sue"), user=org.users["sue"])
    assert s.own and s.draft and s.state == "approved"
    assert s.pool.pool == 450_000 and s.pool.won_revenue == 15_000_000
    assert s.pool.formula_text == (
        "pool = R(1 × (0.03 × USD 150,000.00 + 0 × USD 59,999.00)) + USD 0.00 = R(1 × USD 4,500.00) + USD 0.00"
        " = R(USD 4,500.00) + USD 0.00 = USD 4,500.00 + USD 0.00 = USD 4,500.00"
    )
    assert "15000000" in s.pool.formula  # the raw formula, in cents, kept as stored
    assert s.team is not None and (s.team.team, s.team.pool, s.team.share_percent) == (
        "sales",
        270_000,
        "60 %",
    )
    assert (
        s.team.rule_text
        == "The team pool is split in proportion to each person's credit on the period's deals."
    )
    assert s.earning is not None
    assert (s.earning.amount, s.earning.credit, s.earning.capped) == (162_000, 9_000_000, False)
    assert s.earning.proration == 1
    assert [(d.deal.external_id, d.credit, d.amount) for d in s.deals] == [
        ("W1", 4_000_000, 72_000),
        ("W2", 5_000_000, 90_000),
    ]
    assert s.deals[0].deal.journey_url == (
        f"/attribution/opportunities/{org.deals['W1'].id}?model=linear&scope=revenue&period=2026-Q3"
    )
    assert s.deals[1].deal.closed_on == "2026-08-20"
    assert s.traced == 162_000 and not s.marketer
    assert (s.payable.payable, s.payable.total, s.payable.carried_out) == (162_000, 162_000, 0)


async def test_mias_statement_goes_campaign_by_campaign_down_to_the_touches(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    s = await svc.statement(db, run_id=run.id, person_id=org.id("mia"), user=org.users["fay"])
    assert s.marketer and not s.deals and not s.own
    assert [(c.name, c.channel, c.credit, c.amount) for c in s.campaigns] == [
        ("Campaign MK1", "webinar", 10_000_000, 120_000)
    ]
    deals = s.campaigns[0].deals
    assert [(d.deal.external_id, d.credit, d.amount) for d in deals] == [
        ("W1", 5_000_000, 60_000),
        ("W2", 5_000_000, 60_000),
    ]
    # W1's journey has two touches (MK1, MK2); Mia's campaign holds T1 only, with half the deal.
    assert [(t.touchpoint, t.weight, t.credit) for t in deals[0].touches] == [
        ("T1", Decimal("0.5"), 5_000_000)
    ]
    assert [(t.touchpoint, t.credit) for t in deals[1].touches] == [("T3", 5_000_000)]
    assert sum(t.credit or 0 for d in deals for t in d.touches) == s.campaigns[0].credit
    assert not s.touches_missing and s.traced == 120_000


async def test_adjustments_show_with_their_reason(db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    await bonus.add_adjustment(
        db,
        person_id=org.id("rita"),
        amount=-2_500,
        reason="Q2 overpayment",
        currency="USD",
        user=org.users["fay"],
    )
    await db.commit()
    run = await run_in(db, settings, org)
    s = await svc.statement(db, run_id=run.id, person_id=org.id("rita"), user=org.users["rita"])
    assert [(line.kind, line.amount, line.reason) for line in s.other_lines] == [
        ("adjustment", -2_500, "Q2 overpayment")
    ]
    assert (s.payable.earning, s.payable.adjustment, s.payable.payable) == (108_000, -2_500, 105_500)
    assert [label for _, label, _ in s.lines] == ["Earning", "Adjustment"]


async def test_the_statement_page_shows_the_numbers_and_marks_a_draft(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    await as_(client, org, "sue")
    page = await client.get(f"/bonus/runs/{run.id}/statements/{org.id('sue')}")
    assert page.status_code == 200
    html = page.text
    assert "DRAFT" in text(block(html, "statement-draft"))
    figures = text(block(html, "statement-figures"))
    assert "Payable USD 1,620.00" in figures
    assert "= USD 4,500.00" in text(block(html, "pool-formula"))
    assert "The sales team gets 60 % of the pool, USD 2,700.00" in text(block(html, "rule-text"))
    trace = block(html, "trace-deals")
    assert f'href="/attribution/opportunities/{org.deals["W1"].id}?model=linear&amp;scope=revenue' in trace
    assert "USD 720.00" in text(block(trace, f"trace-deal-{org.deals['W1'].id}"))
    assert "USD 900.00" in text(block(trace, f"trace-deal-{org.deals['W2'].id}"))
    assert 'action="/bonus/runs/' in block(html, "statement-earning")  # the inquiry form on the line

    printable = await client.get(f"/bonus/runs/{run.id}/statements/{org.id('sue')}/print")
    assert printable.status_code == 200
    assert 'class="mainnav"' not in printable.text and "<form" not in printable.text
    assert "USD 1,620.00" in text(block(printable.text, "statement-figures"))

    mine = await client.get("/bonus/statements")
    assert mine.status_code == 200
    row = text(block(mine.text, f"statement-run-{run.id}"))
    assert "2026-Q3 · run 1" in row and "USD 1,620.00" in row and "DRAFT" in row


async def test_a_locked_statement_is_final_and_mias_page_lists_the_touches(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org, "locked")
    await as_(client, org, "mia")
    html = (await client.get(f"/bonus/runs/{run.id}/statements/{org.id('mia')}")).text
    assert 'id="statement-draft"' not in html and "Final" in text(block(html, "statement-final"))
    campaigns = text(block(html, "trace-campaigns"))
    assert "Campaign MK1 webinar" in campaigns and "T1" in campaigns and "T3" in campaigns
    assert "weight 50.00 % · USD 50,000.00" in campaigns


# -- who sees what ------------------------------------------------------------------------------------


async def test_a_person_sees_only_approved_or_locked_runs_finance_sees_drafts(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org, "submitted")
    with pytest.raises(NotFound):
        await svc.statement(db, run_id=run.id, person_id=org.id("sue"), user=org.users["sue"])
    person, rows = await svc.my_statements(db, person_id=org.id("sue"), user=org.users["sue"])
    assert person.name == "Sue Seller" and rows == []
    _, rows = await svc.my_statements(db, person_id=org.id("sue"), user=org.users["fay"])
    assert [(r.run_id, r.state, r.draft, r.payable) for r in rows] == [(run.id, "submitted", True, 162_000)]
    s = await svc.statement(db, run_id=run.id, person_id=org.id("sue"), user=org.users["ada"])
    assert s.earning is not None and s.earning.amount == 162_000
    with pytest.raises(NotFound):  # Fay has no line in the run
        await svc.statement(db, run_id=run.id, person_id=org.id("fay"), user=org.users["fay"])


async def test_every_statement_page_is_404_for_anyone_but_the_person_finance_and_admins(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    sue = org.id("sue")
    pages = [
        f"/bonus/runs/{run.id}/statements/{sue}",
        f"/bonus/runs/{run.id}/statements/{sue}/print",
        f"/bonus/statements?person={sue}",
    ]
    for name, expected in (
        ("rita", 404),
        ("vic", 404),
        ("mia", 404),
        ("sue", 200),
        ("fay", 200),
        ("ada", 200),
    ):
        await as_(client, org, name)
        for url in pages:
            response = await client.get(url)
            assert response.status_code == expected, (name, url)
            if expected == 404:
                assert "Sue" not in response.text and "1,620.00" not in response.text, (name, url)
    # A refusal reads exactly like a statement that does not exist.
    await as_(client, org, "rita")
    refused = await client.get(f"/bonus/runs/{run.id}/statements/{sue}")
    absent = await client.get(f"/bonus/runs/{run.id}/statements/999999")
    assert refused.status_code == absent.status_code == 404
    assert text(block(refused.text, "main")) == text(block(absent.text, "main")).replace("999999", str(sue))


async def test_every_statement_api_route_is_404_for_anyone_else(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    url = f"/api/v1/bonus/runs/{run.id}/statements/{org.id('sue')}"
    for name, expected in (("rita", 404), ("vic", 404), ("sue", 200), ("fay", 200), ("ada", 200)):
        response = await client.get(url, headers=await bearer(db, org, name, "read"))
        assert response.status_code == expected, name
        if expected == 404:
            assert response.headers["content-type"].startswith(PROBLEM)
            assert "162000" not in response.text
    body = (await client.get(url, headers=await bearer(db, org, "sue", "read"))).json()
    assert body["earning"]["amount"] == 162_000 and body["pool"]["pool"] == 450_000
    assert [d["amount"] for d in body["deals"]] == [72_000, 90_000]
    assert body["pool"]["formula_text"].endswith("= USD 4,500.00")
    # A token without the read scope, and bad ids: 4xx problems, never 500.
    assert (await client.get(url, headers=await bearer(db, org, "sue", "export"))).status_code == 403
    bad = await client.get(
        f"/api/v1/bonus/runs/0/statements/{org.id('sue')}", headers=await bearer(db, org, "sue", "read")
    )
    assert bad.status_code == 400 and bad.headers["content-type"].startswith(PROBLEM)
    mine = (
        await client.get("/api/v1/bonus/statements/me", headers=await bearer(db, org, "sue", "read"))
    ).json()
    assert [(r["run_id"], r["payable"]) for r in mine["statements"]] == [(run.id, 162_000)]
    assert mine["person"]["name"] == "Sue Seller"


# -- inquiries ----------------------------------------------------------------------------------------


async def test_raise_answer_reopen_an_inquiry_and_the_run_lists_it(
    db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    sue, fay, ada, rita = (org.users[n] for n in ("sue", "fay", "ada", "rita"))
    s = await svc.statement(db, run_id=run.id, person_id=sue.id, user=sue)
    assert s.earning is not None
    with pytest.raises(ValidationFailed) as refused:
        await svc.raise_inquiry(db, run_id=run.id, line_id=s.earning.id, subject=" ", body="", user=sue)
    assert {e["field"] for e in refused.value.errors} == {"subject", "body"}
    with pytest.raises(NotFound):  # Rita cannot ask about Sue's line
        await svc.raise_inquiry(db, run_id=run.id, line_id=s.earning.id, subject="x", body="y", user=rita)
    found = await svc.raise_inquiry(
        db, run_id=run.id, line_id=s.earning.id, subject="W2 credit", body="Was W2 all mine?", user=sue
    )
    await db.commit()
    assert found.status == "open"
    listed = await svc.inquiries_of_run(db, run_id=run.id, user=fay)
    assert [(i.subject, i.status, i.person, i.line_kind, i.messages) for i in listed] == [
        ("W2 credit", "open", "Sue Seller", "earning", 1)
    ]
    with pytest.raises(NotFound):
        await svc.inquiries_of_run(db, run_id=run.id, user=sue)
    with pytest.raises(Forbidden):
        await svc.reply(db, inquiry_id=found.id, body="Looking", user=ada)
    with pytest.raises(NotFound):
        await svc.reply(db, inquiry_id=found.id, body="Me too", user=rita)
    await svc.reply(db, inquiry_id=found.id, body="Yes: no split, you own it.", user=fay)
    assert (await db.get(Inquiry, found.id)).status == "answered"  # type: ignore[union-attr]
    await svc.reply(db, inquiry_id=found.id, body="And the close date?", user=sue)
    thread = await svc.inquiry(db, inquiry_id=found.id, user=sue)
    assert thread.inquiry.status == "open" and thread.may_reply and thread.own
    assert [(m.author, m.finance) for m in thread.messages] == [
        ("Sue Seller", False),
        ("Fay Finance", True),
        ("Sue Seller", False),
    ]
    actions = (
        await db.scalars(
            select(AuditEvent.action).where(AuditEvent.entity == "inquiry").order_by(AuditEvent.id)
        )
    ).all()
    assert list(actions) == ["bonus_inquiry.raise", "bonus_inquiry.reply", "bonus_inquiry.reply"]


async def test_inquiry_pages_and_api_over_http(client: Client, db: AsyncSession, settings: Settings) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    await as_(client, org, "sue")
    line = (await svc.statement(db, run_id=run.id, person_id=org.id("sue"), user=org.users["sue"])).earning
    assert line is not None
    await db.commit()
    token = await csrf_token(client)
    empty = await client.post(
        f"/bonus/runs/{run.id}/inquiries", data={"line_id": str(line.id), "subject": "", "body": "", "_csrf_token": token},
        headers=HX,
    )  # fmt: skip
    assert empty.status_code == 422 and "Write the subject." in empty.text
    sent = await client.post(
        f"/bonus/runs/{run.id}/inquiries",
        data={"line_id": str(line.id), "subject": "My W2", "body": "Why 900?", "_csrf_token": token},
        headers=HX,
    )
    assert sent.status_code == 200 and "Sent to finance" in sent.text
    inquiry_id = int(re.findall(r"/bonus/inquiries/(\d+)", sent.text)[0])
    garbage = await client.post(
        f"/bonus/runs/{run.id}/inquiries",
        data={"line_id": "abc", "subject": "s", "body": "b", "_csrf_token": token},
    )
    assert garbage.status_code == 422
    assert "My W2" in text(
        block(
            (await client.get(f"/bonus/runs/{run.id}/statements/{org.id('sue')}")).text, "statement-inquiries"
        )
    )

    # Everyone else: 404 on the thread, the reply, the run's list and the API.
    for name in ("rita", "vic", "mia"):
        await as_(client, org, name)
        assert (await client.get(f"/bonus/inquiries/{inquiry_id}")).status_code == 404, name
        reply = await client.post(
            f"/bonus/inquiries/{inquiry_id}/replies",
            data={"body": "hi", "_csrf_token": await csrf_token(client)},
        )
        assert reply.status_code == 404, name
        assert (await client.get(f"/bonus/runs/{run.id}/inquiries", headers=HX)).status_code == 404, name
        read = await client.get(
            f"/api/v1/bonus/inquiries/{inquiry_id}", headers=await bearer(db, org, name, "read")
        )
        assert read.status_code == 404 and read.headers["content-type"].startswith(PROBLEM), name
        raise_api = await client.post(
            "/api/v1/bonus/inquiries",
            json={"run_id": run.id, "line_id": line.id, "subject": "x", "body": "y"},
            headers=await bearer(db, org, name, "import"),
        )
        assert raise_api.status_code == 404, name

    # Finance: the run's open inquiry, then the answer in place.
    await as_(client, org, "fay")
    listed = await client.get(f"/bonus/runs/{run.id}/inquiries", headers=HX)
    assert listed.status_code == 200 and "<html" not in listed.text
    assert "1 open" in text(listed.text) and "My W2" in text(block(listed.text, f"run-inquiry-{inquiry_id}"))
    page = await client.get(f"/bonus/inquiries/{inquiry_id}")
    assert page.status_code == 200 and "Why 900?" in page.text
    answered = await client.post(
        f"/bonus/inquiries/{inquiry_id}/replies",
        data={"body": "W2 had no split: all yours.", "_csrf_token": await csrf_token(client)},
        headers=HX,
    )
    assert answered.status_code == 200
    thread = block(answered.text, "inquiry-thread")
    assert "Answered" in text(block(thread, "inquiry-status"))
    assert text(thread).index("Why 900?") < text(thread).index("W2 had no split: all yours.")
    assert "0 open · 1 answered" in text(
        (await client.get(f"/bonus/runs/{run.id}/inquiries", headers=HX)).text
    )

    # The person sees the answer (web and API); admins read but do not reply.
    await as_(client, org, "sue")
    assert "W2 had no split" in (await client.get(f"/bonus/inquiries/{inquiry_id}")).text
    api = await client.get(
        f"/api/v1/bonus/inquiries/{inquiry_id}", headers=await bearer(db, org, "sue", "read")
    )
    assert api.status_code == 200 and api.json()["inquiry"]["status"] == "answered"
    assert [m["body"] for m in api.json()["messages"]][-1] == "W2 had no split: all yours."
    admin = await bearer(db, org, "ada", "read", "import")
    assert (await client.get(f"/api/v1/bonus/inquiries/{inquiry_id}", headers=admin)).status_code == 200
    refused = await client.post(
        f"/api/v1/bonus/inquiries/{inquiry_id}/replies", json={"body": "x"}, headers=admin
    )
    assert refused.status_code == 403


async def test_the_inquiry_api_raises_and_refuses_bad_input(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    org = await bonus_org(db, settings)
    run = await run_in(db, settings, org)
    sue = await bearer(db, org, "sue", "read", "import")
    created = await client.post(
        "/api/v1/bonus/inquiries",
        json={"run_id": run.id, "subject": "All of it", "body": "Explain?"},
        headers=sue,
    )
    assert created.status_code == 201, created.text
    assert created.json()["inquiry"]["line_id"] is None and created.json()["inquiry"]["status"] == "open"
    for body, status in (
        ({"run_id": run.id, "subject": "s", "body": "b", "extra": 1}, 400),
        ({"run_id": "x", "subject": "s", "body": "b"}, 400),
        ({"run_id": run.id, "subject": "s" * 201, "body": "b"}, 400),
        ({"run_id": run.id, "subject": "  ", "body": "b"}, 422),
        ({"run_id": 987654, "subject": "s", "body": "b"}, 404),
    ):
        response = await client.post("/api/v1/bonus/inquiries", json=body, headers=sue)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
    read_only = await bearer(db, org, "sue", "read")
    assert (
        await client.post(
            "/api/v1/bonus/inquiries", json={"run_id": run.id, "subject": "s", "body": "b"}, headers=read_only
        )
    ).status_code == 403
