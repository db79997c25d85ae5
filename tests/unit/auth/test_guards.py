"""Guards: who may call what (DESIGN 8), checked on small fake connections."""

from types import SimpleNamespace
from typing import Any

import pytest
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from okr.auth.guards import (
    credentials,
    current_user,
    requires_admin,
    requires_finance,
    requires_leader,
    requires_login,
    requires_role,
    requires_scope,
)
from okr.auth.schemas import Credentials, CurrentUser

HANDLER: Any = None


def person(role: str) -> CurrentUser:
    return CurrentUser(
        id=1, email=f"{role}@example.com", name=role.title(), role=role, team_id=1, team="sales"
    )


def conn(user: CurrentUser | None, auth: Credentials | None = None) -> Any:
    return SimpleNamespace(scope={"user": user, "auth": auth})


SESSION = Credentials(kind="session")


def token(*scopes: str) -> Credentials:
    return Credentials(kind="token", token_id=7, scopes=frozenset(scopes), token_name="crm sync")


def test_current_user_is_the_scope_user() -> None:
    user = person("member")
    assert current_user(conn(user, SESSION)) is user


def test_nobody_logged_in_is_401() -> None:
    with pytest.raises(NotAuthorizedException):
        current_user(conn(None))
    with pytest.raises(NotAuthorizedException):
        requires_login(conn(None), HANDLER)


def test_credentials_default_to_session() -> None:
    assert credentials(conn(person("member"))) == SESSION
    assert credentials(conn(person("member"), token("read"))).is_token


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("member", False), ("leader", False), ("finance", True), ("admin", True)],
)
def test_requires_role_lets_the_role_and_admins_through(role: str, allowed: bool) -> None:
    guard = requires_role("finance")
    if allowed:
        guard(conn(person(role), SESSION), HANDLER)
    else:
        with pytest.raises(PermissionDeniedException):
            guard(conn(person(role), SESSION), HANDLER)


def test_requires_role_accepts_any_of_several_roles() -> None:
    guard = requires_role("leader", "finance")
    guard(conn(person("leader"), SESSION), HANDLER)
    guard(conn(person("finance"), SESSION), HANDLER)
    with pytest.raises(PermissionDeniedException):
        guard(conn(person("member"), SESSION), HANDLER)


def test_role_guard_without_a_user_is_401_not_403() -> None:
    with pytest.raises(NotAuthorizedException):
        requires_admin(conn(None), HANDLER)


def test_shorthand_guards() -> None:
    requires_admin(conn(person("admin"), SESSION), HANDLER)
    requires_finance(conn(person("finance"), SESSION), HANDLER)
    requires_leader(conn(person("leader"), SESSION), HANDLER)
    for guard in (requires_admin, requires_finance, requires_leader):
        with pytest.raises(PermissionDeniedException):
            guard(conn(person("member"), SESSION), HANDLER)


def test_requires_scope_on_a_token() -> None:
    guard = requires_scope("export")
    guard(conn(person("finance"), token("export", "read")), HANDLER)
    with pytest.raises(PermissionDeniedException, match="'export' scope"):
        guard(conn(person("finance"), token("read")), HANDLER)


def test_requires_scope_lets_a_web_session_through() -> None:
    requires_scope("import")(conn(person("admin"), SESSION), HANDLER)


def test_a_token_never_exceeds_its_creators_role() -> None:
    # An import-scoped token of a member still fails an admin-only route: scopes cap, never grant.
    caller = conn(person("member"), token("import"))
    requires_scope("import")(caller, HANDLER)
    with pytest.raises(PermissionDeniedException):
        requires_admin(caller, HANDLER)


def test_guard_names_are_readable() -> None:
    assert requires_role("leader", "finance").__name__ == "requires_role_leader_finance"
    assert requires_scope("read").__name__ == "requires_scope_read"
