"""People and teams: create people who log in, set passwords, load the caller. Services flush only."""

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth import passwords
from okr.auth.schemas import CurrentUser
from okr.db.people import Person, Role, Team
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, NotFound, ValidationFailed

CLI_ACTOR = "cli"


def normalize_email(email: str) -> str:
    """The stored form of an email address: trimmed, lower case."""
    return email.strip().lower()


def _check_email(email: str) -> str:
    value = normalize_email(email)
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value) or len(value) > 320:
        raise ValidationFailed(
            f"{email!r} is not an email address.",
            errors=[{"field": "email", "reason": "not an email address"}],
        )
    return value


def _check_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        allowed = ", ".join(r.value for r in Role)
        reason = f"unknown role {role!r} (use one of {allowed})"
        raise ValidationFailed(
            f"The role is not valid: {reason}.", errors=[{"field": "role", "reason": reason}]
        )
    return role


def _person_view(person: Person, team: str) -> dict[str, object]:
    # What the audit log keeps of a person: never the password hash.
    return {
        "email": person.email,
        "name": person.name,
        "team": team,
        "role": person.role,
        "employee_id": person.employee_id,
        "is_active": person.is_active,
        "has_password": person.password_hash is not None,
    }


async def get_or_create_team(
    session: AsyncSession, *, name: str, actor: str = CLI_ACTOR, actor_id: int | None = None
) -> Team:
    """The team called `name` (matched case-insensitively), created when missing."""
    key = name.strip().lower()
    if not key or len(key) > 64:
        reason = "a team name of 1 to 64 characters is required"
        raise ValidationFailed(
            f"The team is not valid: {reason}.", errors=[{"field": "team", "reason": reason}]
        )
    team = await session.scalar(select(Team).where(func.lower(Team.name) == key))
    if team is None:
        team = Team(name=key)
        session.add(team)
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            actor_id=actor_id,
            action="team.create",
            entity="team",
            entity_id=team.id,
            after={"name": key},
        )
    return team


async def get_by_email(session: AsyncSession, *, email: str) -> Person | None:
    """The person with `email` (any case), or None."""
    return await session.scalar(select(Person).where(Person.email == normalize_email(email)))


async def require_by_email(session: AsyncSession, *, email: str) -> Person:
    """The person with `email`; NotFound saying so when there is none."""
    person = await get_by_email(session, email=email)
    if person is None:
        raise NotFound(f"No person has the email {normalize_email(email)}.")
    return person


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    team: str,
    role: str,
    password: str | None,
    employee_id: str | None = None,
    actor: str = CLI_ACTOR,
    actor_id: int | None = None,
) -> Person:
    """Create a person (and their team when missing); a password lets them log in."""
    address = _check_email(email)
    _check_role(role)
    display_name = name.strip()
    if not display_name or len(display_name) > 200:
        reason = "a name of 1 to 200 characters is required"
        raise ValidationFailed(
            f"The name is not valid: {reason}.", errors=[{"field": "name", "reason": reason}]
        )
    if password is not None:
        passwords.check_policy(password)
    if await get_by_email(session, email=address) is not None:
        raise Conflict(
            f"A person with the email {address} already exists.",
            errors=[{"field": "email", "reason": "already in use"}],
        )
    team_row = await get_or_create_team(session, name=team, actor=actor, actor_id=actor_id)
    # Hashing takes ~0.1 s of CPU: off the event loop, so other requests keep flowing.
    password_hash = None if password is None else await asyncio.to_thread(passwords.hash_password, password)
    now = utcnow()
    person = Person(
        email=address,
        name=display_name,
        team_id=team_row.id,
        role=role,
        employee_id=employee_id or None,
        password_hash=password_hash,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        actor_id=actor_id,
        action="person.create",
        entity="person",
        entity_id=person.id,
        after=_person_view(person, team_row.name),
    )
    return person


async def set_password(
    session: AsyncSession, *, email: str, password: str, actor: str = CLI_ACTOR, actor_id: int | None = None
) -> Person:
    """Set the password of the person with `email` (checked against the policy)."""
    passwords.check_policy(password)
    person = await require_by_email(session, email=email)
    had_password = person.password_hash is not None
    person.password_hash = await asyncio.to_thread(passwords.hash_password, password)
    person.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        actor_id=actor_id,
        action="person.set_password",
        entity="person",
        entity_id=person.id,
        before={"has_password": had_password},
        after={"has_password": True},
    )
    return person


async def set_active(
    session: AsyncSession, *, email: str, active: bool, actor: str = CLI_ACTOR, actor_id: int | None = None
) -> Person:
    """Allow or stop a person's logins and tokens (their history stays)."""
    person = await require_by_email(session, email=email)
    if person.is_active != active:
        before = person.is_active
        person.is_active = active
        person.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            actor_id=actor_id,
            action="person.set_active",
            entity="person",
            entity_id=person.id,
            before={"is_active": before},
            after={"is_active": active},
        )
    return person


async def load_current_user(session: AsyncSession, person_id: int) -> CurrentUser | None:
    """The active person `person_id` with their team, in one query; None when missing or inactive."""
    row = (
        await session.execute(
            select(Person.id, Person.email, Person.name, Person.role, Person.team_id, Team.name)
            .join(Team, Team.id == Person.team_id)
            .where(Person.id == person_id, Person.is_active.is_(True))
        )
    ).one_or_none()
    if row is None:
        return None
    pid, email, name, role, team_id, team = row
    return CurrentUser(id=pid, email=email, name=name, role=role, team_id=team_id, team=team)
