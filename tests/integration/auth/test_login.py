"""Logging in and out through the web form: sessions, their rotation, CSRF, redirects."""

import datetime as dt

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.conftest import make_settings
from tests.integration.conftest import (
    CSRF_COOKIE,
    PASSWORD,
    SESSION_COOKIE,
    build_app,
    csrf_token,
    login,
    logout,
    make_person,
)

from okr.auth import passwords
from okr.auth.controllers import BAD_CREDENTIALS
from okr.db.people import Person, WebSession
from okr.people.services import set_active
from okr.settings import Settings

Client = AsyncTestClient[Litestar]


@get("/test-only/page", name="test.page")
async def protected_page() -> str:
    """A page behind login, independent of the dashboard's routes."""
    return "secret page"


@pytest.fixture
def page_app(app: Litestar) -> Litestar:
    app.register(protected_page)
    return app


def plant_session_cookie(client: Client, value: str) -> None:
    """Put a session cookie into the browser, replacing any the server set."""
    host = client.base_url.host
    client.cookies.delete(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, value, domain=host)


async def session_ids(db: AsyncSession) -> set[str]:
    """Every session id stored in the database (read in a fresh transaction)."""
    await db.rollback()
    return set((await db.scalars(select(WebSession.session_id))).all())


async def test_login_page_is_an_accessible_form(client: Client) -> None:
    page = await client.get("/login")
    assert page.status_code == 200
    html = page.text
    assert '<label for="login-email">Email</label>' in html
    assert '<label for="login-password">Password</label>' in html
    assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html
    assert 'name="_csrf_token"' in html and "&lt;input" not in html  # the CSRF field is markup, not text
    assert 'class="btn btn-primary"' in html
    assert CSRF_COOKIE in client.cookies
    assert SESSION_COOKIE not in page.headers.get("set-cookie", "")


async def test_anonymous_requests_store_no_sessions(client: Client, db: AsyncSession) -> None:
    await client.get("/login")
    await client.get("/healthz")
    await client.get("/api/v1/me")
    await client.get("/", follow_redirects=False)
    assert await session_ids(db) == set()
    assert SESSION_COOKIE not in client.cookies


async def test_login_starts_a_session_and_redirects_home(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    answer = await login(client, "REP@example.com ", PASSWORD)  # email case and spaces do not matter
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    session_id = client.cookies.get(SESSION_COOKIE)
    assert session_id and await session_ids(db) == {session_id}
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == "rep@example.com"


async def test_login_rotates_the_session_id(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await make_person(db, email="lead@example.com", role="leader")

    assert (await login(client, "rep@example.com")).status_code == 303
    first = client.cookies.get(SESSION_COOKIE)
    assert first and await session_ids(db) == {first}

    # Logging in again (here as someone else) from the same browser must issue a new id and kill the old.
    assert (await login(client, "lead@example.com")).status_code == 303
    second = client.cookies.get(SESSION_COOKIE)
    assert second and second != first
    assert await session_ids(db) == {second}  # the old row is gone
    assert (await client.get("/api/v1/me")).json()["email"] == "lead@example.com"

    # The old id no longer authenticates anyone (replayed, say, by whoever saw it before login).
    plant_session_cookie(client, first)
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_planted_session_id_is_never_adopted(client: Client, db: AsyncSession) -> None:
    """Session fixation: an attacker-chosen cookie value must not become the logged-in session."""
    await make_person(db, email="rep@example.com")
    planted = "f" * 64
    plant_session_cookie(client, planted)
    assert (await login(client, "rep@example.com")).status_code == 303
    issued = client.cookies.get(SESSION_COOKIE)
    assert issued and issued != planted
    assert await session_ids(db) == {issued}


async def test_a_stale_session_cookie_is_cleared(client: Client, db: AsyncSession) -> None:
    plant_session_cookie(client, "0" * 64)
    answer = await client.get("/login")
    assert answer.status_code == 200
    assert f"{SESSION_COOKIE}=null" in answer.headers["set-cookie"]
    assert await session_ids(db) == set()


@pytest.mark.parametrize("email", ["rep@example.com", "nobody@example.com"])
async def test_wrong_password_and_unknown_email_look_the_same(
    client: Client, db: AsyncSession, email: str
) -> None:
    await make_person(db, email="rep@example.com")
    answer = await login(client, email, "Wrong-password-9", next_="/goals")
    assert answer.status_code == 400
    assert BAD_CREDENTIALS in answer.text
    assert 'id="login-form-error"' in answer.text and 'aria-describedby="login-form-error"' in answer.text
    assert f'value="{email}"' in answer.text  # the form comes back filled in...
    assert "Wrong-password-9" not in answer.text  # ...but never with the password
    assert 'name="next" value="/goals"' in answer.text
    assert SESSION_COOKIE not in client.cookies
    assert await session_ids(db) == set()


async def test_blank_fields_are_named_beside_the_field(client: Client) -> None:
    token = await csrf_token(client)
    answer = await client.post("/login", data={"email": "", "password": "", "_csrf_token": token})
    assert answer.status_code == 400
    assert 'id="login-email-error"' in answer.text and "Enter your email address." in answer.text
    assert 'id="login-password-error"' in answer.text and "Enter your password." in answer.text


async def test_login_without_the_csrf_token_is_refused(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await client.get("/login")
    answer = await client.post(
        "/login", data={"email": "rep@example.com", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    forged = await client.post(
        "/login",
        data={"email": "rep@example.com", "password": PASSWORD, "_csrf_token": "0" * 128},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert await session_ids(db) == set()


async def test_the_csrf_header_works_like_the_form_field(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    token = await csrf_token(client)
    answer = await client.post(
        "/login",
        data={"email": "rep@example.com", "password": PASSWORD},
        headers={"x-csrftoken": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303


async def test_logout_ends_the_session(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    old = client.cookies.get(SESSION_COOKIE)
    assert old

    answer = await logout(client)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert await session_ids(db) == set()

    # Replaying the old cookie (say, copied before logout) authenticates nobody.
    plant_session_cookie(client, old)
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_logout_without_csrf_is_refused(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    answer = await client.post("/logout", follow_redirects=False)
    assert answer.status_code == 403
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_logout_with_an_expired_session_still_goes_to_login(client: Client) -> None:
    answer = await logout(client)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


@pytest.mark.parametrize(
    "next_",
    [
        "//evil.example",
        "https://evil.example",
        "//evil.example/login",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
async def test_next_never_leaves_the_site(client: Client, db: AsyncSession, next_: str) -> None:
    await make_person(db, email="rep@example.com")
    answer = await login(client, "rep@example.com", next_=next_)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


async def test_next_returns_to_the_page_asked_for(page_app: Litestar, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    async with AsyncTestClient(app=page_app) as client:
        bounce = await client.get("/test-only/page?tab=2", follow_redirects=False)
        assert bounce.status_code in {302, 303}
        # The query comes along: a deep link (period, filters) survives the login.
        assert bounce.headers["location"] == "/login?next=/test-only/page%3Ftab%3D2"
        answer = await login(client, "rep@example.com", next_="/test-only/page?tab=2")
        assert answer.headers["location"] == "/test-only/page?tab=2"
        page = await client.get("/test-only/page")
        assert page.status_code == 200 and page.text == "secret page"


async def test_unauthenticated_pages_redirect_to_login(client: Client) -> None:
    answer = await client.get("/", follow_redirects=False)
    assert answer.status_code in {302, 303}
    assert answer.headers["location"] == "/login?next=/"


async def test_htmx_requests_get_a_client_redirect(page_app: Litestar) -> None:
    async with AsyncTestClient(app=page_app) as client:
        answer = await client.get("/test-only/page", headers={"hx-request": "true"})
        assert answer.headers["hx-redirect"] == "/login?next=/test-only/page"


async def test_login_page_sends_a_logged_in_person_on(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    answer = await client.get("/login?next=/goals", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/goals"
    answer = await client.get("/login?next=//evil.example", follow_redirects=False)
    assert answer.headers["location"] == "/"


async def test_inactive_person_cannot_log_in(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="gone@example.com")
    await set_active(db, email="gone@example.com", active=False)
    await db.commit()
    answer = await login(client, "gone@example.com")
    assert answer.status_code == 400
    assert BAD_CREDENTIALS in answer.text


async def test_deactivating_a_person_ends_their_open_sessions(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    assert (await client.get("/api/v1/me")).status_code == 200
    await set_active(db, email="rep@example.com", active=False)
    await db.commit()
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_person_without_password_cannot_log_in(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="imported@example.com", password=None)
    answer = await login(client, "imported@example.com", "")
    assert answer.status_code == 400
    answer = await login(client, "imported@example.com", PASSWORD)
    assert answer.status_code == 400 and BAD_CREDENTIALS in answer.text


async def test_an_expired_session_authenticates_nobody(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await db.execute(update(WebSession).values(expires_at=past))
    await db.commit()
    assert (await client.get("/api/v1/me")).status_code == 401
    assert await session_ids(db) == set()  # and the expired row is removed


async def test_an_unreadable_session_is_dropped(client: Client, db: AsyncSession) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    db.add(WebSession(session_id="garbled", data=b"not json", expires_at=soon))
    await db.commit()
    plant_session_cookie(client, "garbled")
    assert (await client.get("/api/v1/me")).status_code == 401
    answer = await client.get("/login")
    assert answer.status_code == 200
    assert f"{SESSION_COOKIE}=null" in answer.headers["set-cookie"]
    assert await session_ids(db) == set()


async def test_logging_in_sweeps_away_expired_sessions(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db.add(WebSession(session_id="abandoned", data=b"{}", expires_at=past))
    await db.commit()
    await login(client, "rep@example.com")
    assert await session_ids(db) == {client.cookies.get(SESSION_COOKIE)}


async def test_use_slides_the_expiry_at_most_once_a_minute(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    await db.execute(update(WebSession).values(expires_at=soon))
    await db.commit()
    assert (await client.get("/api/v1/me")).status_code == 200
    await db.rollback()
    renewed = await db.scalar(select(WebSession.expires_at))
    assert renewed is not None and renewed > soon + dt.timedelta(hours=11)


async def test_login_upgrades_a_weak_password_hash(client: Client, db: AsyncSession) -> None:
    from argon2 import PasswordHasher

    person = await make_person(db, email="rep@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    await db.execute(update(Person).where(Person.id == person.id).values(password_hash=weak))
    await db.commit()
    assert (await login(client, "rep@example.com")).status_code == 303
    await db.rollback()
    stored = await db.scalar(select(Person.password_hash).where(Person.id == person.id))
    assert stored is not None and stored != weak and not passwords.needs_rehash(stored)


async def test_healthz_is_public_and_checks_the_database(client: Client) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_production_cookies_are_secure(settings: Settings, db: AsyncSession) -> None:
    production = make_settings(
        settings.database_url, mode="production", secret_key="prod-Secret-key-9f8e7d6c5b4a3210-ZYXWVUTSRQ"
    )
    app = build_app(production)
    await make_person(db, email="rep@example.com")
    async with AsyncTestClient(app=app, base_url="https://okr.example") as client:
        answer = await login(client, "rep@example.com")
        assert answer.status_code == 303
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"secure", "httponly", "samesite", "max-age", "path"} <= attributes
        assert "samesite=lax" in cookie.lower()
        assert "max-age=43200" in cookie.lower()
        assert (await client.get("/api/v1/me")).status_code == 200


async def test_development_cookies_are_httponly_but_not_secure(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    answer = await login(client, "rep@example.com")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" not in cookie


async def test_login_works_on_the_app_as_built(settings: Settings, db: AsyncSession) -> None:
    """`create_app` exactly as shipped, without the fixture's patch (see build_app)."""
    from okr.app import create_app

    await make_person(db, email="rep@example.com")
    async with AsyncTestClient(app=create_app(settings)) as client:
        answer = await login(client, "rep@example.com")
        assert answer.status_code == 303, (
            "logging in failed on the app as built: app.py must pass state=State({...}), not a dict"
        )
