"""The JSON API: bearer tokens, problem answers, no cookie-borne writes, guards on real routes."""

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import csrf_token, login, make_person

from okr.auth.guards import requires_admin, requires_scope
from okr.auth.services import create_token, revoke_token
from okr.db.people import ApiToken
from okr.people.services import set_active

Client = AsyncTestClient[Litestar]


@post("/api/v1/test-only/echo", name="test.echo")
async def echo(data: JSONBody[dict[str, str]]) -> dict[str, str]:
    """An API write, to see who may reach one."""
    return data


@get("/api/v1/test-only/export", name="test.export", guards=[requires_scope("export")])
async def export_only() -> dict[str, str]:
    """An API read that needs the export scope."""
    return {"ok": "yes"}


@get("/test-only/admin", name="test.admin", guards=[requires_admin])
async def admin_page() -> str:
    """A page only admins may open."""
    return "admin page"


@pytest.fixture
def api_app(app: Litestar) -> Litestar:
    for handler in (echo, export_only, admin_page):
        app.register(handler)
    return app


@pytest.fixture
async def api(api_app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=api_app) as c:
        yield c


async def make_token(db: AsyncSession, email: str, *scopes: str) -> tuple[int, str]:
    person = await make_person(db, email=email)
    token, plaintext = await create_token(db, person_id=person.id, name="crm sync", scopes=list(scopes))
    await db.commit()
    return token.id, plaintext


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


def assert_problem(answer: object, status: int) -> dict[str, object]:
    from httpx import Response

    assert isinstance(answer, Response)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


async def test_me_without_credentials_is_a_401_problem(client: Client) -> None:
    body = assert_problem(await client.get("/api/v1/me"), 401)
    assert "API token" in str(body["detail"])


async def test_me_with_a_session(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="lead@example.com", role="leader", team="marketing", name="Lee Lead")
    await login(client, "lead@example.com")
    answer = await client.get("/api/v1/me")
    assert answer.status_code == 200
    body = answer.json()
    assert body == {
        "id": body["id"],
        "email": "lead@example.com",
        "name": "Lee Lead",
        "role": "leader",
        "team": "marketing",
    }


@pytest.mark.parametrize("scope", ["read", "import", "export"])
async def test_me_with_a_token_of_any_scope(client: Client, db: AsyncSession, scope: str) -> None:
    _, plaintext = await make_token(db, "ops@example.com", scope)
    answer = await client.get("/api/v1/me", headers=bearer(plaintext))
    assert answer.status_code == 200
    assert answer.json()["email"] == "ops@example.com"
    assert "set-cookie" not in answer.headers or "okr_session" not in answer.headers["set-cookie"]


async def test_token_use_is_recorded(client: Client, db: AsyncSession) -> None:
    token_id, plaintext = await make_token(db, "ops@example.com", "read")
    assert (await client.get("/api/v1/me", headers=bearer(plaintext))).status_code == 200
    await db.rollback()
    assert await db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id)) is not None


async def test_a_revoked_token_is_refused(client: Client, db: AsyncSession) -> None:
    token_id, plaintext = await make_token(db, "ops@example.com", "read")
    assert (await client.get("/api/v1/me", headers=bearer(plaintext))).status_code == 200
    await revoke_token(db, token_id=token_id)
    await db.commit()
    assert_problem(await client.get("/api/v1/me", headers=bearer(plaintext)), 401)


async def test_a_token_of_an_inactive_person_is_refused(client: Client, db: AsyncSession) -> None:
    _, plaintext = await make_token(db, "ops@example.com", "read")
    await set_active(db, email="ops@example.com", active=False)
    await db.commit()
    assert_problem(await client.get("/api/v1/me", headers=bearer(plaintext)), 401)


@pytest.mark.parametrize(
    "header",
    ["Bearer okr_not-a-real-token", "Bearer ", "Bearer not-even-the-prefix", "bearer okr_" + "x" * 500],
)
async def test_unknown_tokens_are_refused(client: Client, header: str) -> None:
    assert_problem(await client.get("/api/v1/me", headers={"Authorization": header}), 401)


async def test_a_bad_token_does_not_fall_back_to_the_session(client: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await login(client, "rep@example.com")
    assert_problem(await client.get("/api/v1/me", headers=bearer("okr_wrong")), 401)


async def test_a_session_cookie_cannot_write_through_the_api(api: Client, db: AsyncSession) -> None:
    await make_person(db, email="admin@example.com", role="admin")
    await login(api, "admin@example.com")
    # Even with the CSRF token: the API is exempt from CSRF checks, so a cookie alone must never write.
    answer = await api.post(
        "/api/v1/test-only/echo", json={"a": "b"}, headers={"x-csrftoken": await csrf_token(api)}
    )
    body = assert_problem(answer, 403)
    assert "API token" in str(body["detail"])
    assert (await api.get("/api/v1/me")).status_code == 200  # reading with the session is fine


async def test_a_token_can_write_through_the_api(api: Client, db: AsyncSession) -> None:
    _, plaintext = await make_token(db, "ops@example.com", "import")
    answer = await api.post("/api/v1/test-only/echo", json={"a": "b"}, headers=bearer(plaintext))
    assert answer.status_code == 201
    assert answer.json() == {"a": "b"}


async def test_anonymous_api_write_is_401(api: Client) -> None:
    assert_problem(await api.post("/api/v1/test-only/echo", json={"a": "b"}), 401)


async def test_requires_scope_on_a_real_route(api: Client, db: AsyncSession) -> None:
    _, read_only = await make_token(db, "ops@example.com", "read")
    person_id = (await make_person(db, email="fin@example.com", role="finance")).id
    _, exporter = await create_token(db, person_id=person_id, name="payroll", scopes=["export"])
    await db.commit()
    body = assert_problem(await api.get("/api/v1/test-only/export", headers=bearer(read_only)), 403)
    assert "'export' scope" in str(body["detail"])
    assert (await api.get("/api/v1/test-only/export", headers=bearer(exporter))).json() == {"ok": "yes"}
    await login(api, "fin@example.com")
    assert (await api.get("/api/v1/test-only/export")).status_code == 200  # a web session passes


async def test_requires_role_on_a_real_page(api: Client, db: AsyncSession) -> None:
    await make_person(db, email="rep@example.com")
    await make_person(db, email="admin@example.com", role="admin")
    await login(api, "rep@example.com")
    refused = await api.get("/test-only/admin")
    assert refused.status_code == 403
    assert "Your role does not allow this." in refused.text
    await login(api, "admin@example.com")
    assert (await api.get("/test-only/admin")).text == "admin page"


async def test_api_docs_are_public_and_describe_me(client: Client) -> None:
    schema = await client.get("/api/docs/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert paths["/api/v1/me"]["get"]["summary"] == "Who is calling"
    assert "/login" not in paths and "/logout" not in paths
