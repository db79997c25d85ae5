"""People and auth services on the real databases: users, passwords, tokens, audit rows."""

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth import passwords
from okr.auth.schemas import Credentials, CurrentUser
from okr.auth.services import authenticate, create_token, list_tokens, resolve_token, revoke_token
from okr.db.audit import AuditEvent
from okr.db.people import ApiToken, Person, Team
from okr.lib import clock
from okr.lib.errors import Conflict, NotFound, ValidationFailed
from okr.people.services import (
    create_user,
    get_by_email,
    get_or_create_team,
    load_current_user,
    set_active,
    set_password,
)

PASSWORD = "Correct-horse-7"


@pytest.fixture
def pinned_clock() -> Iterator[list[dt.datetime]]:
    """A clock the test moves by hand: `now[0]`."""
    now = [dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)]
    clock.set_clock(lambda: now[0])
    yield now
    clock.set_clock(None)


async def audit_rows(db: AsyncSession, action: str) -> list[AuditEvent]:
    return list((await db.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_create_user_creates_the_team_and_audits_without_the_hash(db: AsyncSession) -> None:
    person = await create_user(
        db,
        email="  Ana@Example.com ",
        name="Ana Rep",
        team="Sales",
        role="member",
        password=PASSWORD,
        employee_id="E-1",
        actor="admin@example.com",
    )
    assert person.email == "ana@example.com"
    assert person.password_hash and passwords.verify_password(person.password_hash, PASSWORD)
    team = await db.get(Team, person.team_id)
    assert team is not None and team.name == "sales"
    created = await audit_rows(db, "person.create")
    assert len(created) == 1
    assert created[0].actor == "admin@example.com"
    assert created[0].after is not None and created[0].after["email"] == "ana@example.com"
    assert created[0].after["has_password"] is True
    assert person.password_hash not in repr(created[0].after)
    assert len(await audit_rows(db, "team.create")) == 1


async def test_create_user_reuses_an_existing_team(db: AsyncSession) -> None:
    first = await create_user(
        db, email="a@example.com", name="A", team="sales", role="member", password=PASSWORD
    )
    second = await create_user(
        db, email="b@example.com", name="B", team="SALES", role="leader", password=None
    )
    assert first.team_id == second.team_id
    assert second.password_hash is None
    assert await db.scalar(select(func.count()).select_from(Team)) == 1


async def test_create_user_refuses_a_duplicate_email(db: AsyncSession) -> None:
    await create_user(db, email="a@example.com", name="A", team="sales", role="member", password=PASSWORD)
    with pytest.raises(Conflict, match="already exists") as caught:
        await create_user(
            db, email="A@EXAMPLE.COM", name="A2", team="sales", role="member", password=PASSWORD
        )
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@localhost"}, "email"),
        ({"role": "owner"}, "role"),
        ({"name": "  "}, "name"),
        ({"team": " "}, "team"),
        ({"password": "short"}, "password"),
    ],
)
async def test_create_user_explains_bad_input(db: AsyncSession, fields: dict[str, str], field: str) -> None:
    values = {"email": "a@example.com", "name": "A", "team": "sales", "role": "member", "password": PASSWORD}
    values.update(fields)
    with pytest.raises(ValidationFailed) as caught:
        await create_user(db, **values)  # type: ignore[arg-type]
    assert caught.value.errors[0]["field"] == field
    assert await db.scalar(select(func.count()).select_from(Person)) == 0


async def test_get_or_create_team_is_idempotent(db: AsyncSession) -> None:
    one = await get_or_create_team(db, name="Marketing")
    two = await get_or_create_team(db, name="marketing ")
    assert one.id == two.id


async def test_set_password_checks_policy_and_audits(db: AsyncSession) -> None:
    await create_user(db, email="a@example.com", name="A", team="sales", role="member", password=None)
    with pytest.raises(ValidationFailed):
        await set_password(db, email="a@example.com", password="tooshort")
    person = await set_password(db, email="A@example.com", password="New-password-42")
    assert person.password_hash and passwords.verify_password(person.password_hash, "New-password-42")
    [event] = await audit_rows(db, "person.set_password")
    assert event.before == {"has_password": False} and event.after == {"has_password": True}


async def test_set_password_for_nobody_is_not_found(db: AsyncSession) -> None:
    with pytest.raises(NotFound):
        await set_password(db, email="ghost@example.com", password=PASSWORD)


async def test_get_by_email_ignores_case(db: AsyncSession) -> None:
    await create_user(db, email="a@example.com", name="A", team="sales", role="member", password=None)
    found = await get_by_email(db, email=" A@Example.COM")
    assert found is not None and found.email == "a@example.com"
    assert await get_by_email(db, email="b@example.com") is None


async def test_load_current_user_joins_the_team_and_skips_inactive_people(db: AsyncSession) -> None:
    person = await create_user(
        db, email="a@example.com", name="Ann", team="sdr", role="leader", password=None
    )
    user = await load_current_user(db, person.id)
    assert user == CurrentUser(
        id=person.id, email="a@example.com", name="Ann", role="leader", team_id=person.team_id, team="sdr"
    )
    await set_active(db, email="a@example.com", active=False)
    assert await load_current_user(db, person.id) is None
    assert await load_current_user(db, 999_999) is None
    assert len(await audit_rows(db, "person.set_active")) == 1


async def test_authenticate(db: AsyncSession) -> None:
    await create_user(db, email="a@example.com", name="A", team="sales", role="finance", password=PASSWORD)
    user = await authenticate(db, email="A@example.com", password=PASSWORD)
    assert user is not None and user.role == "finance" and user.team == "sales"
    assert await authenticate(db, email="a@example.com", password="Wrong-password-1") is None
    assert await authenticate(db, email="nobody@example.com", password=PASSWORD) is None


async def test_authenticate_verifies_even_for_unknown_emails(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str | None] = []
    real = passwords.verify_and_update

    def spy(stored: str | None, password: str) -> tuple[bool, str | None]:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_and_update", spy)
    await create_user(db, email="nopass@example.com", name="N", team="sales", role="member", password=None)
    assert await authenticate(db, email="nobody@example.com", password=PASSWORD) is None
    assert await authenticate(db, email="nopass@example.com", password=PASSWORD) is None
    assert calls == [None, None]  # each went through one (dummy) argon2 verify


async def test_create_token_returns_the_secret_once_and_stores_its_sha256(db: AsyncSession) -> None:
    person = await create_user(db, email="a@example.com", name="A", team="ops", role="admin", password=None)
    token, plaintext = await create_token(
        db, person_id=person.id, name="crm sync", scopes=["read", "import", "read"]
    )
    assert plaintext.startswith("okr_") and len(plaintext) >= 40
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in token.token_hash
    assert token.scopes == ["import", "read"]
    [event] = await audit_rows(db, "api_token.create")
    assert event.after == {"name": "crm sync", "person": "a@example.com", "scopes": ["import", "read"]}
    assert token.token_hash not in repr(event.after)
    _, other = await create_token(db, person_id=person.id, name="crm sync", scopes=["read"])
    assert other != plaintext
    assert [t.id for t in await list_tokens(db, person_id=person.id)][-1] == token.id


@pytest.mark.parametrize(
    ("scopes", "name"),
    [([], "x"), (["admin"], "x"), (["read", "write"], "x"), (["read"], " "), (["read"], "n" * 101)],
)
async def test_create_token_refuses_bad_scopes_or_names(
    db: AsyncSession, scopes: list[str], name: str
) -> None:
    person = await create_user(db, email="a@example.com", name="A", team="ops", role="admin", password=None)
    with pytest.raises(ValidationFailed):
        await create_token(db, person_id=person.id, name=name, scopes=scopes)


async def test_create_token_for_nobody_is_not_found(db: AsyncSession) -> None:
    with pytest.raises(NotFound):
        await create_token(db, person_id=424242, name="x", scopes=["read"])


async def test_resolve_token_gives_the_creator_and_scopes(
    db: AsyncSession, pinned_clock: list[dt.datetime]
) -> None:
    person = await create_user(db, email="a@example.com", name="A", team="ops", role="finance", password=None)
    token, plaintext = await create_token(db, person_id=person.id, name="payroll", scopes=["export"])
    resolved = await resolve_token(db, plaintext)
    assert resolved is not None
    user, creds = resolved
    assert user.email == "a@example.com" and user.role == "finance"
    assert creds == Credentials(
        kind="token", token_id=token.id, scopes=frozenset({"export"}), token_name="payroll"
    )
    assert await resolve_token(db, plaintext + "x") is None
    assert await resolve_token(db, "not-a-token") is None


async def test_last_used_at_is_written_at_most_once_a_minute(
    db: AsyncSession, pinned_clock: list[dt.datetime]
) -> None:
    person = await create_user(db, email="a@example.com", name="A", team="ops", role="admin", password=None)
    token, plaintext = await create_token(db, person_id=person.id, name="sync", scopes=["read"])
    await db.commit()

    async def last_used() -> dt.datetime | None:
        await db.commit()
        return await db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id))

    start = pinned_clock[0]
    await resolve_token(db, plaintext)
    assert await last_used() == start
    pinned_clock[0] = start + dt.timedelta(seconds=30)
    await resolve_token(db, plaintext)
    assert await last_used() == start  # too soon to write again
    pinned_clock[0] = start + dt.timedelta(seconds=61)
    await resolve_token(db, plaintext)
    assert await last_used() == start + dt.timedelta(seconds=61)


async def test_revoke_token_is_immediate_idempotent_and_audited(db: AsyncSession) -> None:
    person = await create_user(db, email="a@example.com", name="A", team="ops", role="admin", password=None)
    token, plaintext = await create_token(db, person_id=person.id, name="sync", scopes=["read"])
    revoked = await revoke_token(db, token_id=token.id, actor="admin@example.com", actor_id=person.id)
    assert revoked.revoked_at is not None
    assert await resolve_token(db, plaintext) is None
    await revoke_token(db, token_id=token.id)
    assert len(await audit_rows(db, "api_token.revoke")) == 1
    with pytest.raises(NotFound):
        await revoke_token(db, token_id=token.id + 1000)
