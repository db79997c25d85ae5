"""Guards: plain functions that raise when the caller may not use a route (DESIGN 8)."""

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from okr.auth.schemas import Credentials, CurrentUser
from okr.db.people import Role

Connection = ASGIConnection[Any, Any, Any, Any]
Guard = Callable[[Connection, BaseRouteHandler], None]


def current_user(connection: Connection) -> CurrentUser:
    """The caller; 401 when nobody is logged in."""
    user = connection.scope.get("user")
    if not isinstance(user, CurrentUser):
        raise NotAuthorizedException("Log in first.")
    return user


def credentials(connection: Connection) -> Credentials:
    """How the caller authenticated (session when unknown)."""
    auth = connection.scope.get("auth")
    return auth if isinstance(auth, Credentials) else Credentials(kind="session")


def requires_role(*roles: str) -> Guard:
    """Only people holding one of `roles` (admins always) may call the route."""

    def guard(connection: Connection, _: BaseRouteHandler) -> None:
        if not current_user(connection).has_role(*roles):
            raise PermissionDeniedException("Your role does not allow this.")

    guard.__name__ = f"requires_role_{'_'.join(roles)}"
    return guard


def requires_scope(scope: str) -> Guard:
    """An API token must carry `scope`; a web session passes (its role guards still apply)."""

    def guard(connection: Connection, _: BaseRouteHandler) -> None:
        current_user(connection)
        if not credentials(connection).allows(scope):
            raise PermissionDeniedException(f"This API token lacks the '{scope}' scope.")

    guard.__name__ = f"requires_scope_{scope}"
    return guard


def requires_login(connection: Connection, _: BaseRouteHandler) -> None:
    """Anyone logged in (or holding a valid token) may call the route."""
    current_user(connection)


requires_admin = requires_role(Role.ADMIN)
requires_finance = requires_role(Role.FINANCE)
requires_leader = requires_role(Role.LEADER)
