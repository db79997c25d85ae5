"""Request middleware: SQLite write intent, database-backed web sessions, and who is calling (DESIGN 8).

Order (outermost first): write intent -> sessions -> authentication; Litestar puts CSRF inside them.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, cast

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state
from advanced_alchemy.extensions.litestar.session import SQLAlchemyAsyncSessionBackend
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, SerializationException
from litestar.middleware import ASGIMiddleware, DefineMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import ASGIApp, Message, Receive, Scope, ScopeSession, Send
from litestar.types.empty import Empty
from sqlalchemy import Executable, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.schemas import Credentials, CurrentUser
from okr.auth.services import resolve_token
from okr.db.engine import write_intent
from okr.db.people import WebSession
from okr.lib.clock import utcnow
from okr.people.services import load_current_user
from okr.settings import Settings

log = logging.getLogger("okr.auth")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "okr_session"
SESSION_PERSON_KEY = "person_id"
# Sliding expiry: a session's row is pushed forward on use, but written at most this often.
SESSION_REFRESH_INTERVAL = dt.timedelta(minutes=1)
# Paths that need no session at all: no row is read or written for them.
SESSION_EXCLUDE = [r"^/static/", r"^/healthz$", r"^/favicon\.ico$"]
PUBLIC_PATHS = frozenset({"/login", "/logout", "/healthz", "/favicon.ico", "/api/docs"})
PUBLIC_PREFIXES = ("/static/", "/api/docs/")

_SESSION_ID_MAX = 255
_STATE_KEY = "okr.web_session"
_SESSION_CREDENTIALS = Credentials(kind="session")

Connection = ASGIConnection[Any, Any, Any, Any]


def is_public_path(path: str) -> bool:
    """True for paths anyone may open without logging in."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_api_path(path: str) -> bool:
    """True for the JSON API (bearer tokens, no CSRF)."""
    return path.startswith("/api/")


# -- write intent ------------------------------------------------------------------------------


class WriteIntentMiddleware(ASGIMiddleware):
    """Requests with an unsafe method are writers: on SQLite their transactions BEGIN IMMEDIATE."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Mark the request's transactions as writers when its method changes data."""
        if scope.get("method") in UNSAFE_METHODS:
            # A context manager rather than a bare set: the mark must not outlive the request when
            # the server (or a test client) runs several requests in one context.
            with write_intent():
                await next_app(scope, receive, send)
            return
        await next_app(scope, receive, send)


# -- sessions ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _SessionState:
    """What the session backend knows about the current request's session."""

    session_id: str | None = None  # the id found in the database (never one only the client proposed)
    data: bytes | None = None  # its stored data, to skip writing when nothing changed
    rotate: bool = False  # issue a new id at the end of the request (login)


def _session_state(scope: Scope) -> _SessionState:
    state = scope.setdefault("state", {})
    found = state.get(_STATE_KEY)
    if not isinstance(found, _SessionState):
        found = state[_STATE_KEY] = _SessionState()
    return found


def begin_session(connection: Connection, *, person_id: int) -> None:
    """Log `person_id` in: the session's data is replaced and it gets a brand-new id (the old id dies).

    Issuing a new id at login defeats session fixation: an id planted or seen before login is
    worthless after it. Litestar does not do this by itself.
    """
    connection.set_session({SESSION_PERSON_KEY: person_id})
    _session_state(connection.scope).rotate = True


def end_session(connection: Connection) -> None:
    """Log out: the session's row is deleted and the browser told to drop the cookie."""
    connection.clear_session()


def session_person_id(scope: Scope) -> int | None:
    """The person id stored in the request's session, if any."""
    session = scope.get("session")
    value = session.get(SESSION_PERSON_KEY) if isinstance(session, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class DatabaseSessionBackend(SQLAlchemyAsyncSessionBackend):
    """Server-side sessions in the `web_session` table, hardened beyond advanced-alchemy's backend.

    - ids are only ever minted by the server: a cookie naming no live row is ignored, never adopted;
    - `begin_session` rotates the id (new row, old row deleted in the same transaction);
    - an empty session stores nothing, so anonymous requests and API calls write no rows;
    - a row is written only when its data changed, and its expiry refreshed at most once a minute.
    """

    def __init__(self, config: ServerSideSessionConfig, alchemy_config: SQLAlchemyAsyncConfig) -> None:
        super().__init__(config=config, alchemy_config=alchemy_config, model=WebSession)

    # Storage ---------------------------------------------------------------------------------

    def _expiry(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.config.max_age)

    async def _execute(self, *statements: Executable) -> None:
        # Its own short transaction, as a writer (BEGIN IMMEDIATE on SQLite), committed at once.
        with write_intent():
            async with self.alchemy.get_session() as db:
                for statement in statements:
                    await db.execute(statement)
                await db.commit()

    async def get(self, /, session_id: str, store: Store | None = None) -> bytes | None:
        """The data stored under `session_id` while it is unexpired; None otherwise."""
        if not session_id or len(session_id) > _SESSION_ID_MAX:
            return None
        async with self.alchemy.get_session() as db:
            row = (
                await db.execute(
                    select(WebSession.data, WebSession.expires_at).where(WebSession.session_id == session_id)
                )
            ).one_or_none()
        if row is None:
            return None
        data, expires_at = row
        now = utcnow()
        if expires_at <= now:
            await self.delete(session_id)
            return None
        renewed = now + dt.timedelta(seconds=self.config.max_age)
        if renewed - expires_at >= SESSION_REFRESH_INTERVAL:
            await self._execute(
                update(WebSession).where(WebSession.session_id == session_id).values(expires_at=renewed)
            )
        return bytes(data)

    async def set(self, /, session_id: str, data: bytes, store: Store | None = None) -> None:
        """Store `data` under `session_id`, replacing what was there, with a fresh expiry."""
        await self._execute(
            delete(WebSession).where(WebSession.session_id == session_id),
            insert(WebSession).values(session_id=session_id, data=data, expires_at=self._expiry()),
        )

    async def delete(self, /, session_id: str, store: Store | None = None) -> None:
        """Delete the session `session_id` (nothing happens when it does not exist)."""
        await self._execute(delete(WebSession).where(WebSession.session_id == session_id))

    # The middleware's hooks ------------------------------------------------------------------

    async def load_from_connection(self, connection: Connection) -> dict[str, Any]:
        """The session named by the request's cookie, when that session exists and is unexpired."""
        state = _session_state(connection.scope)
        session_id = connection.cookies.get(self.config.key)
        if not session_id or session_id == "null":
            return {}
        data = await self.get(session_id)
        if data is None:
            return {}
        state.session_id, state.data = session_id, data
        try:
            loaded: object = self.deserialize_data(data)
        except SerializationException:
            loaded = None
        if not isinstance(loaded, dict):
            # Treated as an empty session: its row is deleted and its cookie cleared at the response.
            log.warning("dropping an unreadable web session")
            return {}
        return loaded

    def get_session_id(self, connection: Connection) -> str:
        """The id of the request's live session ('' when it has none yet)."""
        return _session_state(connection.scope).session_id or ""

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: Connection
    ) -> None:
        """Persist the session as the response starts, and set or clear its cookie."""
        state = _session_state(connection.scope)
        headers = MutableScopeHeaders.from_message(message)
        status = int(cast("dict[str, Any]", message).get("status", 500))
        if scope_session is Empty or scope_session is None or not scope_session:
            if state.session_id is not None:
                await self._settle_request(connection.scope, status)
                await self.delete(state.session_id)
                state.session_id = state.data = None
            if self.config.key in connection.cookies:
                headers.add("Set-Cookie", self._cookie("null", expire=True))
            return
        data = self.serialize_data(scope_session, connection.scope)
        if state.session_id is not None and not state.rotate:
            if data != state.data:
                await self._settle_request(connection.scope, status)
                await self._execute(
                    update(WebSession)
                    .where(WebSession.session_id == state.session_id)
                    .values(data=data, expires_at=self._expiry())
                )
                state.data = data
        else:
            await self._settle_request(connection.scope, status)
            new_id = self.generate_session_id()
            # Housekeeping rides along: sessions abandoned without logging out expire here.
            statements: list[Executable] = [delete(WebSession).where(WebSession.expires_at <= utcnow())]
            if state.session_id is not None:
                statements.append(delete(WebSession).where(WebSession.session_id == state.session_id))
            statements.append(
                insert(WebSession).values(session_id=new_id, data=data, expires_at=self._expiry())
            )
            await self._execute(*statements)
            state.session_id, state.data, state.rotate = new_id, data, False
        # Sent on every response of a live session, so the browser's expiry slides with the row's.
        headers.add("Set-Cookie", self._cookie(state.session_id))

    async def _settle_request(self, scope: Scope, status: int) -> None:
        """End the request's own transaction before the session row is written on another connection.

        On SQLite a writing request holds the database's write lock until its transaction ends,
        which the plugin does only after this hook; writing the session row meanwhile would wait
        out busy_timeout and fail with "database is locked". Ending it here is the request's one
        commit (or rollback), decided as the plugin decides, except that redirects commit: a login
        answers 303 and must keep its work.
        """
        db = get_aa_scope_state(scope, self.alchemy.session_scope_key)
        if isinstance(db, AsyncSession) and db.in_transaction():
            if 200 <= status < 400:
                await db.commit()
            else:
                await db.rollback()

    def _cookie(self, value: str, *, expire: bool = False) -> str:
        c = self.config
        return Cookie(
            key=c.key,
            value=value,
            max_age=0 if expire else c.max_age,
            expires=0 if expire else None,
            path=c.path,
            domain=c.domain,
            secure=c.secure,
            httponly=c.httponly,
            samesite=c.samesite,
        ).to_header(header="")


# -- authentication ----------------------------------------------------------------------------


def _bearer_token(scope: Scope) -> str | None:
    header = Headers.from_scope(scope).get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class AuthenticationMiddleware(ASGIMiddleware):
    """Set `scope["user"]` (CurrentUser or None) and `scope["auth"]` (Credentials or None).

    /api/ routes take `Authorization: Bearer <token>`; pages (and the API, for reading) take the
    session cookie. Without either, public paths proceed anonymously and every other path answers
    401 (pages turn that into a redirect to the login page).
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, alchemy: SQLAlchemyAsyncConfig) -> None:
        self.alchemy = alchemy

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Identify the caller, or refuse the request."""
        path = scope["path"]
        if path.startswith("/static/"):
            await next_app(scope, receive, send)
            return
        public = is_public_path(path)
        user: CurrentUser | None = None
        creds: Credentials | None = None
        token = _bearer_token(scope) if is_api_path(path) else None
        if token is not None:
            resolved = await self._resolve_token(token)
            if resolved is None and not public:
                raise NotAuthorizedException(
                    "The API token is unknown or revoked, or its person is inactive."
                )
            if resolved is not None:
                user, creds = resolved
        elif (person_id := session_person_id(scope)) is not None:
            user = await self._load_user(person_id)
            creds = _SESSION_CREDENTIALS if user is not None else None
            if user is not None and is_api_path(path) and scope.get("method") in UNSAFE_METHODS:
                # The API is exempt from CSRF checks, so a cookie (which a browser sends by itself)
                # must never be enough to change data through it.
                raise PermissionDeniedException(
                    "Changes through the API need an API token (Authorization: Bearer okr_...); "
                    "the web session may only read."
                )
        if user is None and not public:
            if is_api_path(path):
                raise NotAuthorizedException(
                    "Authenticate with an API token (Authorization: Bearer okr_...) or log in."
                )
            raise NotAuthorizedException("Log in first.")
        scope["user"] = user
        scope["auth"] = creds
        await next_app(scope, receive, send)

    async def _load_user(self, person_id: int) -> CurrentUser | None:
        async with self.alchemy.get_session() as db:
            return await load_current_user(db, person_id)

    async def _resolve_token(self, token: str) -> tuple[CurrentUser, Credentials] | None:
        async with self.alchemy.get_session() as db:
            resolved = await resolve_token(db, token)
            await db.commit()  # keeps the token's last_used_at
            return resolved


def build_middleware(settings: Settings, alchemy: SQLAlchemyAsyncConfig) -> list[Any]:
    """The app's middleware, outermost first: write intent, sessions, authentication."""
    session_config = ServerSideSessionConfig(
        key=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.mode == "production",
        exclude=SESSION_EXCLUDE,
    )
    backend = DatabaseSessionBackend(config=session_config, alchemy_config=alchemy)
    return [
        WriteIntentMiddleware(),
        DefineMiddleware(SessionMiddleware, backend=backend),
        AuthenticationMiddleware(alchemy),
    ]
