"""Log in with a password, and API tokens (DESIGN 8). Services flush, never commit."""

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth import passwords
from okr.auth.schemas import TOKEN_SCOPES, Credentials, CurrentUser
from okr.db.people import ApiToken, Person, Team
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound, ValidationFailed
from okr.people.services import CLI_ACTOR, normalize_email

log = logging.getLogger("okr.auth")

TOKEN_PREFIX = "okr_"  # noqa: S105 - a public marker that lets secret scanners spot leaked tokens
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)
_MAX_TOKEN_LENGTH = 200


async def authenticate(session: AsyncSession, *, email: str, password: str) -> CurrentUser | None:
    """The person whose email and password match, when active; None otherwise, in the same time either way."""
    row = (
        await session.execute(
            select(Person, Team.name)
            .join(Team, Team.id == Person.team_id)
            .where(Person.email == normalize_email(email))
        )
    ).one_or_none()
    person, team = (row[0], row[1]) if row is not None else (None, "")
    stored = person.password_hash if person is not None else None
    # Unknown emails, people without a password and inactive people all pay for one argon2 verify,
    # so the answer's timing does not tell whether an account exists.
    ok, new_hash = await asyncio.to_thread(passwords.verify_and_update, stored, password)
    if person is None or not ok or not person.is_active:
        log.info("login refused for %r", normalize_email(email)[:320])
        return None
    if new_hash is not None:
        person.password_hash = new_hash
        await session.flush()
    return CurrentUser(
        id=person.id,
        email=person.email,
        name=person.name,
        role=person.role,
        team_id=person.team_id,
        team=team,
    )


def hash_token(plaintext: str) -> str:
    """The stored form of a token: sha256 hex (a long random secret needs no salt or slow hash)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in TOKEN_SCOPES]
    if not chosen or unknown:
        allowed = ", ".join(sorted(TOKEN_SCOPES))
        reason = f"unknown scope(s) {', '.join(unknown)}" if unknown else "at least one scope is required"
        raise ValidationFailed(
            f"The token's scopes are not valid: {reason} (use {allowed}).",
            errors=[{"field": "scopes", "reason": reason}],
        )
    return chosen


async def create_token(
    session: AsyncSession,
    *,
    person_id: int,
    name: str,
    scopes: Sequence[str],
    actor: str = CLI_ACTOR,
    actor_id: int | None = None,
) -> tuple[ApiToken, str]:
    """A new API token acting as `person_id` with `scopes`; the plaintext is returned here and never again."""
    label = name.strip()
    if not label or len(label) > 100:
        reason = "a name of 1 to 100 characters is required"
        raise ValidationFailed(
            f"The token name is not valid: {reason}.", errors=[{"field": "name", "reason": reason}]
        )
    chosen = _check_scopes(scopes)
    person = await session.get(Person, person_id)
    if person is None or not person.is_active:
        raise NotFound(f"No active person has the id {person_id}.")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        person_id=person_id, name=label, token_hash=hash_token(plaintext), scopes=chosen, created_at=utcnow()
    )
    session.add(token)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        actor_id=actor_id,
        action="api_token.create",
        entity="api_token",
        entity_id=token.id,
        after={"name": label, "person": person.email, "scopes": chosen},
    )
    return token, plaintext


async def resolve_token(session: AsyncSession, plaintext: str) -> tuple[CurrentUser, Credentials] | None:
    """The creator and scopes of a live token (not revoked, creator active); None otherwise."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > _MAX_TOKEN_LENGTH:
        return None
    row = (
        await session.execute(
            select(
                ApiToken.id,
                ApiToken.name,
                ApiToken.scopes,
                ApiToken.last_used_at,
                Person.id,
                Person.email,
                Person.name,
                Person.role,
                Person.team_id,
                Team.name,
            )
            .join(Person, Person.id == ApiToken.person_id)
            .join(Team, Team.id == Person.team_id)
            .where(
                ApiToken.token_hash == hash_token(plaintext),
                ApiToken.revoked_at.is_(None),
                Person.is_active.is_(True),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    token_id, token_name, scopes, last_used_at, pid, email, name, role, team_id, team = row
    now = utcnow()
    if last_used_at is None or now - last_used_at >= TOKEN_TOUCH_INTERVAL:
        await _touch_token(session, token_id=token_id, now=now)
    user = CurrentUser(id=pid, email=email, name=name, role=role, team_id=team_id, team=team)
    creds = Credentials(
        kind="token", token_id=token_id, token_name=token_name, scopes=frozenset(scopes) & TOKEN_SCOPES
    )
    return user, creds


async def _touch_token(session: AsyncSession, *, token_id: int, now: dt.datetime) -> None:
    # Best effort: a busy SQLite writer must not turn a read request into an error.
    try:
        async with session.begin_nested():
            await session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    except DBAPIError:
        log.debug("could not record the use of API token %s", token_id, exc_info=True)


async def revoke_token(
    session: AsyncSession, *, token_id: int, actor: str = CLI_ACTOR, actor_id: int | None = None
) -> ApiToken:
    """Revoke a token at once (revoking twice changes nothing)."""
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No API token has the id {token_id}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            actor_id=actor_id,
            action="api_token.revoke",
            entity="api_token",
            entity_id=token.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return token


async def list_tokens(session: AsyncSession, *, person_id: int | None = None) -> Sequence[ApiToken]:
    """API tokens, newest first (of one person when `person_id` is given); hashes stay inside."""
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if person_id is not None:
        stmt = stmt.where(ApiToken.person_id == person_id)
    return (await session.scalars(stmt)).all()


async def ping(session: AsyncSession) -> None:
    """Run a trivial query: raises when the database cannot be reached."""
    await session.execute(text("SELECT 1"))
