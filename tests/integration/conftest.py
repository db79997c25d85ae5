"""Fixtures for tests that drive the whole web app: `app`, `client`, and helpers to log in.

`app` is built by `create_app` for the database under test (SQLite, then PostgreSQL); tables are
emptied after each test by the `db` fixture it depends on.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.people import Person
from okr.settings import Settings

CSRF_COOKIE = "okr_csrf"
SESSION_COOKIE = "okr_session"
PASSWORD = "Correct-horse-7"


def build_app(settings: Settings) -> Litestar:
    """`create_app(settings)`, imported late so collecting tests never needs the whole app."""
    from okr.app import create_app

    return create_app(settings)


@pytest.fixture
def app(settings: Settings, db: AsyncSession) -> Litestar:
    """The okr app on the test database."""
    return build_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client that keeps cookies, like a browser; the app's start-up and shut-down run around it."""
    async with AsyncTestClient(app=app) as c:
        yield c


async def make_person(
    db: AsyncSession,
    *,
    email: str = "rep@example.com",
    role: str = "member",
    team: str = "sales",
    name: str | None = None,
    password: str | None = PASSWORD,
) -> Person:
    """Create a person who can log in, and commit so the app sees them."""
    from okr.people.services import create_user

    person = await create_user(
        db, email=email, name=name or email.split("@")[0].title(), team=team, role=role, password=password
    )
    await db.commit()
    return person


async def csrf_token(client: httpx.AsyncClient) -> str:
    """The CSRF token the browser holds (fetching the login page first when it holds none)."""
    if CSRF_COOKIE not in client.cookies:
        await client.get("/login")
    token = client.cookies.get(CSRF_COOKIE)
    assert token, "the login page did not set the CSRF cookie"
    return token


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, *, next_: str | None = None
) -> httpx.Response:
    """Log in through the form like a browser: GET /login, then POST it with the CSRF token."""
    page = await client.get("/login")
    assert page.status_code in {200, 303}, page.text
    form = {"email": email, "password": password, "_csrf_token": await csrf_token(client)}
    if next_ is not None:
        form["next"] = next_
    return await client.post("/login", data=form, follow_redirects=False)


async def logout(client: httpx.AsyncClient) -> httpx.Response:
    """Press the log-out button."""
    return await client.post(
        "/logout", data={"_csrf_token": await csrf_token(client)}, follow_redirects=False
    )
