"""The attribution pages over HTTP: figures with their drill-downs, htmx fragments, roles, settings, recompute."""

import asyncio
import datetime as dt
import re
import threading
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.attribution.attribution_data import DataSet, attribution_data
from tests.integration.conftest import csrf_token, login, make_person

from okr.attribution import jobs, queries
from okr.attribution.services import latest_run, load_config
from okr.db.attribution import AttributionRun, AttributionSetting
from okr.db.audit import AuditEvent
from okr.kpis import services as kpis
from okr.lib.clock import set_clock
from okr.settings import Settings

Client = AsyncTestClient[Litestar]
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: the current quarter is 2026-Q3."""
    set_clock(lambda: dt.datetime(2026, 8, 15, 16, 0, tzinfo=dt.UTC))
    queries.clear_cache()
    kpis.clear_cache()
    yield
    set_clock(None)
    queries.clear_cache()
    kpis.clear_cache()


def text(html: str) -> str:
    """The page's words, without tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def cell(html: str, element_id: str) -> str:
    """The text of the element with this id."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</t[dh]>', html, re.S)
    assert match, f"no element {element_id}"
    return text(match.group(1))


def row(html: str, attribute: str, value: object) -> str:
    """The words of the table row carrying data-{attribute}="{value}"."""
    match = re.search(rf'<tr data-{attribute}="{value}".*?</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return text(match.group(0))


async def as_member(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="member@example.com", role="member", team="marketing")
    assert (await login(client, "member@example.com")).status_code == 303


async def as_leader(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="vp@example.com", role="leader", team="sales")
    assert (await login(client, "vp@example.com")).status_code == 303


async def with_data(db: AsyncSession, settings: Settings, *, compute: bool = True) -> DataSet:
    return await attribution_data(db, settings, compute=compute)


async def test_anonymous_visitors_go_to_the_login_page(client: Client) -> None:
    response = await client.get("/attribution", follow_redirects=False)
    assert response.status_code in {302, 303}
    assert response.headers["location"].startswith("/login")


async def test_the_campaigns_page_adds_up(client: Client, db: AsyncSession, settings: Settings) -> None:
    data = await with_data(db, settings)
    await as_member(client, db)
    response = await client.get("/attribution?period=2026-Q2&model=first_touch&scope=pipeline")
    assert response.status_code == 200
    html = response.text
    assert '<a href="/attribution" aria-current="page">Attribution</a>' in html
    # Totals: the dashboard's pipeline created, split into attributed and unattributed.
    assert "USD 11,320.99" in text(re.search(r'id="attr-total".*?</li>', html, re.S).group(0))  # type: ignore[union-attr]
    assert cell(html, "channel-total") == "USD 11,320.99"
    assert cell(html, "campaign-total") == "USD 11,320.99"
    assert "1 opportunity in GBP left out" in text(html)
    # Channel and campaign rows, each figure a link to the records behind it.
    assert row(html, "channel", "outbound").startswith("outbound 1 campaign USD 10,000.01 88.3 % 1 USD 49.18")
    sdr = data.campaigns["SDR"].id
    assert row(html, "campaign", sdr).startswith(
        "Outbound: founders Sam Sdr · sdr outbound USD 10,000.01 1 USD 49.18"
    )
    assert (
        f'href="/attribution/campaigns/{sdr}?period=2026-Q2&amp;model=first_touch&amp;scope=pipeline"' in html
    )
    assert (
        'href="/attribution?period=2026-Q2&amp;model=first_touch&amp;scope=pipeline&amp;channel=outbound#campaigns"'
        in html
    )
    assert 'href="/dashboard/records?kpi=pipeline_created&amp;period=2026-Q2"' in html
    # Sourced and influenced pipeline, model-independent.
    assert row(html, "team", "sdr").startswith("sdr USD 10,000.01 1")
    assert row(html, "team", "marketing").startswith("marketing USD 1,320.98 3")  # and the GBP deal
    # A member may read but not recompute; credit is not payout: no bonus amount anywhere.
    assert "Recompute attribution" not in html
    assert "9,876,543.21" not in html


async def test_filter_by_channel_and_sort(client: Client, db: AsyncSession, settings: Settings) -> None:
    data = await with_data(db, settings)
    await as_member(client, db)
    html = (await client.get("/attribution?period=2026-Q2&scope=pipeline&channel=email")).text
    ids = re.findall(r'<tr data-campaign="(\d+)"', html)
    assert ids == [str(data.campaigns["IDLE"].id)]
    assert "Campaigns in email" in text(html)
    html = (await client.get("/attribution?period=2026-Q2&scope=pipeline&sort=cost&order=desc")).text
    ids = [int(i) for i in re.findall(r'<tr data-campaign="(\d+)"', html)]
    assert ids[:3] == [data.campaigns[k].id for k in ("MK", "IDLE", "AE")]
    assert 'aria-sort="descending"' in html


async def test_switching_in_place_answers_the_fragment(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await with_data(db, settings)
    await as_member(client, db)
    response = await client.get("/attribution?period=2026-Q3&model=last_touch&scope=revenue", headers=HX)
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    html = response.text
    assert "<html" not in html and '<section id="attribution-figures"' in html
    assert 'data-model="last_touch" data-scope="revenue"' in html
    assert "2026-Q3 · Revenue won · Last touch" in text(html)
    assert cell(html, "campaign-total") == "USD 10,000.01"
    # The page itself carries the form that asks for it, every choice in the URL.
    page = (await client.get("/attribution")).text
    assert 'hx-get="/attribution" hx-target="#attribution-figures"' in page and 'hx-push-url="true"' in page
    assert 'name="model"' in page and 'name="scope"' in page and 'name="period"' in page


async def test_empty_state_before_the_first_recompute(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await with_data(db, settings, compute=False)
    await as_member(client, db)
    html = (await client.get("/attribution")).text
    assert "Attribution has not been computed yet" in html
    assert "Ask a leader or an admin" in html
    await client.post("/logout", data={"_csrf_token": await csrf_token(client)})
    await as_leader(client, db)
    html = (await client.get("/attribution")).text
    assert "Attribution has not been computed yet" in html
    assert 'hx-post="/attribution/recompute"' in html


async def test_bad_parameters(client: Client, db: AsyncSession, settings: Settings) -> None:
    await with_data(db, settings)
    await as_member(client, db)
    bad_model = await client.get("/attribution?model=last_click")
    assert bad_model.status_code == 422
    assert "“last_click” is not an attribution model." in bad_model.text
    assert (await client.get("/attribution?scope=bookings")).status_code == 422
    assert (await client.get("/attribution?order=sideways")).status_code == 422
    assert (await client.get("/attribution?period=2019-Q1")).status_code == 404
    assert (await client.get("/attribution?period=soon")).status_code == 404
    assert (await client.get("/attribution/campaigns/999999")).status_code == 404
    assert (await client.get("/attribution/opportunities/999999")).status_code == 404


async def test_campaign_detail_lists_its_deals(client: Client, db: AsyncSession, settings: Settings) -> None:
    data = await with_data(db, settings)
    await as_member(client, db)
    none = data.campaigns["NONE"]
    response = await client.get(
        f"/attribution/campaigns/{none.id}?period=2026-Q2&model=first_touch&scope=pipeline"
    )
    assert response.status_code == 200
    html = response.text
    assert "<h1>Search: brand</h1>" in html
    deals = data.deals
    assert re.findall(r'<tr data-opportunity="(\d+)"', html) == [
        str(deals[k].id) for k in ("OPEN", "LOST", "WON")
    ]
    lost = row(html, "opportunity", deals["LOST"].id)
    assert "EUR 500.00" in lost and "100.00 %" in lost and "USD 543.21" in lost
    assert (
        f'href="/attribution/opportunities/{deals["OPEN"].id}?model=first_touch&amp;period=2026-Q2&amp;scope=pipeline"'
        in html
    )
    assert "all pages add up to USD 1,320.98" in text(html)
    # The fragment for a switch in place.
    fragment = await client.get(
        f"/attribution/campaigns/{none.id}?period=2026-Q2&model=linear&scope=pipeline", headers=HX
    )
    assert '<section id="campaign-detail"' in fragment.text and "<html" not in fragment.text
    # The unattributed bucket has its page too.
    bucket = await client.get("/attribution/campaigns/unattributed?period=2026-Q2&scope=revenue")
    assert bucket.status_code == 200
    assert re.findall(r'<tr data-opportunity="(\d+)"', bucket.text) == [str(deals["BARE"].id)]
    words = text(bucket.text)
    assert "Unattributed revenue won" in words and "1 deal without a touch in the lookback window" in words
    assert "carry credit" not in words and "the campaign's weight" not in words


async def test_journey_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    data = await with_data(db, settings)
    await as_member(client, db)
    won = data.deals["WON"]
    response = await client.get(f"/attribution/opportunities/{won.id}?model=linear&period=2026-Q3")
    assert response.status_code == 200
    html = response.text
    words = text(html)
    assert "Pipeline journey" in words and "Revenue journey" in words
    assert len(re.findall(r'<li class="attr-step', html)) == 3 + 5
    assert "first touch" in words and "closed won" in words and "opportunity creation" in words
    assert "weight 0.2000000000" in words
    assert "Rita Rep USD 6,000.01" in words and "Sue Seller USD 4,000.00" in words
    assert "Overlay" in words and "Sam Sdr USD 1,000.00" in words
    assert "weights add up to 1.0000000000" in words
    # Each step links to its campaign in the quarter the journey counts in.
    mk = data.campaigns["MK"].id
    assert f'href="/attribution/campaigns/{mk}?period=2026-Q3&amp;model=linear&amp;scope=revenue"' in html
    # The model switches in place.
    fragment = await client.get(f"/attribution/opportunities/{won.id}?model=first_touch", headers=HX)
    assert '<section id="journey"' in fragment.text and "<html" not in fragment.text
    assert "weight 1.0000000000" in text(fragment.text)
    # An open deal has no revenue journey, and says why.
    open_ = await client.get(f"/attribution/opportunities/{data.deals['OPEN'].id}")
    assert "No revenue credit: the deal is open" in text(open_.text)


async def test_compare_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    await with_data(db, settings)
    await as_member(client, db)
    response = await client.get(
        "/attribution/compare?period=2026-Q3&scope=revenue&model_a=first_touch&model_b=last_touch"
    )
    assert response.status_code == 200
    html = response.text
    assert row(html, "channel", "outbound").startswith("outbound USD 10,000.01 USD 0.00 −USD 10,000.01")
    assert row(html, "channel", "webinar").startswith("webinar USD 0.00 USD 10,000.01 +USD 10,000.01")
    assert cell(html, "compare-total-a") == cell(html, "compare-total-b") == "USD 10,000.01"
    assert "What data-driven weighs each channel by" not in html
    dd = (await client.get("/attribution/compare?period=2026-Q3&scope=revenue&model_b=data_driven")).text
    assert re.findall(r'<tr data-effect="([a-z_]+)"', dd) and "What data-driven weighs each channel by" in dd
    assert (await client.get("/attribution/compare?model_b=nope")).status_code == 422


async def test_settings_read_only_for_members(client: Client, db: AsyncSession, settings: Settings) -> None:
    await with_data(db, settings)
    await as_member(client, db)
    html = (await client.get("/attribution/settings")).text
    assert "Settings in force" in html and "365 days" in text(html)
    assert 'hx-post="/attribution/settings"' not in html
    token = await csrf_token(client)
    refused = await client.post(
        "/attribution/settings", data={"lookback_days": "30", "_csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert (await client.post("/attribution/recompute", data={"_csrf_token": token})).status_code == 403
    assert await db.scalar(select(func.count()).select_from(AttributionSetting)) == 0


def settings_form(**changes: str) -> dict[str, str]:
    form = {
        "lookback_days": "365",
        "half_life_days": "7",
        "first": "0.225",
        "lead_creation": "0.225",
        "opportunity_creation": "0.225",
        "closed_won": "0.225",
        "middle": "0.1",
    }
    form.update(changes)
    return form


async def test_settings_errors_show_beside_each_field(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await with_data(db, settings)
    await as_leader(client, db)
    headers = {**HX, "x-csrftoken": await csrf_token(client)}
    bad = settings_form(lookback_days="many", half_life_days="0", first="0.5", middle="-0.1")
    response = await client.post("/attribution/settings", data=bad, headers=headers)
    assert response.status_code == 200  # htmx swaps only 2xx: the form comes back with its errors
    html = response.text
    assert '<section id="settings-form"' in html and "<html" not in html
    assert "The settings were not saved" in html
    assert re.search(r'id="field-lookback_days"[^>]*aria-invalid="true"', html)
    assert "Enter a whole number of days" in html
    assert "must be 0.01 to 3650 days" in html
    assert re.search(r'id="field-middle"[^>]*aria-invalid="true"', html)
    assert 'value="many"' in html  # shown back as typed
    # The weights must add up to 1.
    response = await client.post("/attribution/settings", data=settings_form(first="0.5"), headers=headers)
    assert "the weights must add up to 1, they add up to 1.275" in response.text
    # A plain form post gets the whole page with 422.
    plain = await client.post(
        "/attribution/settings", data={**bad, "_csrf_token": await csrf_token(client)}, follow_redirects=False
    )
    assert plain.status_code == 422 and "<html" in plain.text and "Enter a whole number of days" in plain.text
    assert await db.scalar(select(func.count()).select_from(AttributionSetting)) == 0


async def test_saving_the_settings_recomputes_and_is_audited(
    client: Client, db: AsyncSession, settings: Settings
) -> None:
    await with_data(db, settings)
    before = {r.scope: r.id for r in (await db.scalars(select(AttributionRun))).all()}
    await as_leader(client, db)
    headers = {**HX, "x-csrftoken": await csrf_token(client)}
    form = settings_form(
        lookback_days="40", half_life_days="3.5", first="0.5", lead_creation="0", opportunity_creation="0.3",
        closed_won="0.1", middle="0.1",
    )  # fmt: skip
    response = await client.post("/attribution/settings", data=form, headers=headers)
    assert response.status_code == 200, response.text
    assert "Saved; both scopes were recomputed (6 opportunities)." in response.text
    await db.rollback()  # see what the app committed
    config = await load_config(db)
    assert (config.lookback_days, str(config.half_life_days), str(config.custom.first)) == (40, "3.5", "0.5")
    for scope in ("pipeline", "revenue"):
        run = await latest_run(db, scope)
        assert run is not None and run.id != before[scope] and run.lookback_days == 40
    event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "attribution_settings.update"))
    assert event is not None and event.actor == "vp@example.com"
    assert event.before is not None and event.before["lookback_days"] == 365
    assert event.after is not None and event.after["custom"]["first"] == "0.5"
    page = (await client.get("/attribution/settings")).text
    assert 'value="40"' in page and "Last changed" in page
    # With a 40-day window, WON's pipeline journey (created Apr 1) keeps T3 (Mar 1) only: the SDR
    # campaign (T1, Feb 1) no longer sources it, and the OPEN deal has no touch left at all.
    html = (await client.get("/attribution?period=2026-Q2&scope=pipeline&model=custom")).text
    assert row(html, "team", "sdr").startswith("sdr USD 0.00 0")
    assert row(html, "team", "marketing").startswith("marketing USD 10,000.01 2")  # WON, and GBP
    assert row(html, "team", "unattributed").startswith("unattributed USD 777.77 1")


async def test_recompute_from_the_page(client: Client, db: AsyncSession, settings: Settings) -> None:
    await with_data(db, settings, compute=False)
    await as_leader(client, db)
    token = await csrf_token(client)
    response = await client.post(
        "/attribution/recompute", data={"next": "/attribution"}, headers={**HX, "x-csrftoken": token}
    )
    assert response.status_code == 200 and response.headers["hx-refresh"] == "true"
    await db.rollback()
    assert await latest_run(db, "revenue") is not None
    event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "attribution.recompute"))
    assert event is not None and event.after is not None and event.after["pipeline"]["opportunities"] == 6
    plain = await client.post(
        "/attribution/recompute",
        data={"next": "/attribution?period=2026-Q2", "_csrf_token": token},
        follow_redirects=False,
    )
    assert plain.status_code == 303 and plain.headers["location"] == "/attribution?period=2026-Q2"
    html = (await client.get("/attribution?period=2026-Q2&scope=pipeline")).text
    assert cell(html, "campaign-total") == "USD 11,320.99"
    # The next page may not be another site.
    away = await client.post(
        "/attribution/recompute",
        data={"next": "//evil.example", "_csrf_token": token},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/"


async def test_a_long_recompute_goes_on_in_the_background_and_the_page_polls_it(
    client: Client, db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On big data the button answers at once with a progress indicator; its status polls until done."""
    await with_data(db, settings, compute=False)
    await as_leader(client, db)
    token = await csrf_token(client)
    release, fail = threading.Event(), threading.Event()
    real = jobs.run_recompute

    async def slow(s: Settings) -> list[AttributionRun]:
        while not release.is_set():  # noqa: ASYNC110 (a thread event: the app may run on another loop)
            await asyncio.sleep(0.01)
        if fail.is_set():
            raise RuntimeError("the database went away")
        return await real(s)

    monkeypatch.setattr(jobs, "run_recompute", slow)
    monkeypatch.setattr(jobs, "WAIT_SECONDS", 0.05)
    headers = {**HX, "x-csrftoken": token}
    started = await client.post(
        "/attribution/recompute", data={"next": "/attribution?period=2026-Q2"}, headers=headers
    )
    assert started.status_code == 200 and "hx-refresh" not in started.headers
    assert "Recomputing every model for both scopes, started" in text(started.text)
    assert 'hx-get="/attribution/recompute/status?next=/attribution%3Fperiod%3D2026-Q2"' in started.text
    # Asked again meanwhile: the same recompute, not a second one.
    again = await client.post("/attribution/recompute", data={"next": "/attribution"}, headers=headers)
    assert "Recomputing every model" in again.text
    polled = await client.get(
        "/attribution/recompute/status?next=/attribution%3Fperiod%3D2026-Q2", headers=HX
    )
    assert polled.status_code == 200 and "Recomputing every model" in polled.text
    await db.rollback()
    assert await latest_run(db, "revenue") is None

    release.set()
    for _ in range(500):
        done = await client.get(
            "/attribution/recompute/status?next=/attribution%3Fperiod%3D2026-Q2", headers=HX
        )
        if "hx-redirect" in done.headers:
            break
        await asyncio.sleep(0.01)
    assert done.headers["hx-redirect"] == "/attribution?period=2026-Q2"
    await db.rollback()
    assert await latest_run(db, "revenue") is not None
    event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "attribution.recompute"))
    assert event is not None and event.actor == "vp@example.com"

    # A failure shows on the status, and the previous figures stay.
    release.clear()
    fail.set()
    await client.post("/attribution/recompute", data={"next": "/attribution"}, headers=headers)
    release.set()
    for _ in range(500):
        failed = await client.get("/attribution/recompute/status", headers=HX)
        if "failed" in failed.text:
            break
        await asyncio.sleep(0.01)
    assert "The recompute failed (RuntimeError: the database went away)" in text(failed.text)
    await db.rollback()
    assert await latest_run(db, "revenue") is not None

    await as_member(client, db)
    assert (await client.get("/attribution/recompute/status", headers=HX)).status_code == 403
