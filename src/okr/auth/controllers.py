"""Log in and out, the health check, and who the API caller is: parse -> service -> response."""

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login
from okr.auth.middleware import begin_session, end_session
from okr.auth.schemas import CurrentUser, HealthRead, LoginForm, MeRead
from okr.auth.services import authenticate, ping

log = logging.getLogger("okr.auth")

LOGIN_TEMPLATE = "auth/login.html"
BAD_CREDENTIALS = "The email or password is not correct."
_MAX_NEXT = 2000
_NOT_AFTER_LOGIN = frozenset({"/login", "/logout"})


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else "/" (the login form is never an open redirect)."""
    if not target or len(target) > _MAX_NEXT:
        return "/"
    # "//host" and "/\\host" are other sites to a browser, which also drops tabs and newlines.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in _NOT_AFTER_LOGIN:
        return "/"
    return target


def _login_form(
    *,
    next_: str,
    email: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name=LOGIN_TEMPLATE,
        context={"next": next_, "email": email, "errors": errors or {}},
        status_code=status_code,
    )


class AuthController(Controller):
    """Login page, logout, health check and `/api/v1/me`."""

    tags = ("auth",)

    @get("/login", name="auth.login", include_in_schema=False)
    async def login_page(
        self,
        request: Request[Any, Any, Any],
        next_: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Response[Any]:
        """The login form; someone already logged in goes straight on."""
        target = safe_next(next_)
        if isinstance(request.scope.get("user"), CurrentUser):
            return Redirect(target, status_code=HTTP_303_SEE_OTHER)
        return _login_form(next_=target if next_ else "")

    @post("/login", name="auth.login_submit", include_in_schema=False)
    async def login(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Check the email and password; on success start a new session and go on to `next`."""
        next_ = safe_next(data.next) if data.next else ""
        email = data.email.strip()[:320]
        errors = {}
        if not email:
            errors["email"] = "Enter your email address."
        if not data.password:
            errors["password"] = "Enter your password."  # noqa: S105 - a message, not a password
        if errors:
            return _login_form(next_=next_, email=email, errors=errors, status_code=HTTP_400_BAD_REQUEST)
        user = await authenticate(db_session, email=email, password=data.password)
        if user is None:
            # One message for an unknown email and a wrong password: the form never says which.
            return _login_form(
                next_=next_, email=email, errors={"form": BAD_CREDENTIALS}, status_code=HTTP_400_BAD_REQUEST
            )
        begin_session(request, person_id=user.id)
        log.info("login: %s", user.email)
        return Redirect(next_ or "/", status_code=HTTP_303_SEE_OTHER)

    @post("/logout", name="auth.logout", include_in_schema=False)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the session (its row is deleted) and show the login page."""
        end_session(request)
        return Redirect("/login", status_code=HTTP_303_SEE_OTHER)

    @get("/healthz", name="auth.health", include_in_schema=False)
    async def health(self, db_session: NamedDependency[AsyncSession]) -> Response[HealthRead]:
        """Liveness and database reachability, for load balancers and monitors."""
        try:
            await ping(db_session)
        except (SQLAlchemyError, OSError, TimeoutError):
            log.exception("health check: the database cannot be reached")
            return Response(HealthRead(status="unavailable"), status_code=HTTP_503_SERVICE_UNAVAILABLE)
        return Response(HealthRead(status="ok"))

    @get(
        "/api/v1/me",
        name="api.me",
        guards=[requires_login],
        summary="Who is calling",
        description=(
            "The person behind the request: the logged-in user, or the creator of the API token in use "
            "(a token of any scope may call this)."
        ),
    )
    async def me(self, request: Request[Any, Any, Any]) -> MeRead:
        """The caller's id, email, name, role and team."""
        return MeRead.of(current_user(request))
