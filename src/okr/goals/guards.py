"""Who may change which goals (DESIGN 8): members read; a leader writes the objectives owned by their
own team (a joint objective: any of its teams); admins write all. KR owners may check in on their KRs.

Plain functions over the caller and the objective's owning teams, so the services (web, API and CLI
alike) ask the same questions. A refusal is `NotAllowed` (403) with a sentence that says why.
"""

from collections.abc import Collection

from litestar.handlers.base import BaseRouteHandler

from okr.auth.guards import Connection, current_user
from okr.auth.schemas import CurrentUser
from okr.db.people import Role
from okr.lib.errors import OkrError


class NotAllowed(OkrError):
    """The caller's role or team does not allow this change."""

    status_code = 403
    title = "Not allowed"


def may_write_goals(user: CurrentUser) -> bool:
    """Leaders and admins may create and change goals (each leader only their own team's)."""
    return user.has_role(Role.LEADER)


def may_write_objective(user: CurrentUser, team_ids: Collection[int]) -> bool:
    """Admins always; a leader when their team is one of the objective's owning teams."""
    if user.is_admin:
        return True
    return user.role == Role.LEADER and user.team_id in team_ids


def may_check_in(user: CurrentUser, team_ids: Collection[int], owner_ids: Collection[int]) -> bool:
    """Whoever may write the objective, and the key result's own owners."""
    return may_write_objective(user, team_ids) or user.id in owner_ids


def check_may_write_goals(user: CurrentUser) -> None:
    """NotAllowed unless the caller is a leader or an admin."""
    if not may_write_goals(user):
        raise NotAllowed("Only leaders and admins can change goals; you can read them and check in on yours.")


def requires_goal_writer(connection: Connection, _: BaseRouteHandler) -> None:
    """Route guard: leaders and admins only, with the same sentence as the services."""
    check_may_write_goals(current_user(connection))


def check_may_write_objective(user: CurrentUser, team_ids: Collection[int], title: str) -> None:
    """NotAllowed unless the caller may change the objective owned by `team_ids`."""
    check_may_write_goals(user)
    if not may_write_objective(user, team_ids):
        raise NotAllowed(
            f"“{title}” belongs to another team: a leader changes only the objectives of their own team "
            f"({user.team}). Ask that team's leader or an admin."
        )


def check_may_own(user: CurrentUser, team_ids: Collection[int]) -> None:
    """A leader must keep their own team among an objective's owners (or they could not change it again)."""
    check_may_write_goals(user)
    if not user.is_admin and user.team_id not in team_ids:
        raise NotAllowed(
            f"Keep your own team ({user.team}) among the owning teams: a leader creates and edits only "
            "their own team's objectives (a joint objective names both teams)."
        )


def check_may_check_in(
    user: CurrentUser, team_ids: Collection[int], owner_ids: Collection[int], title: str
) -> None:
    """NotAllowed unless the caller owns the key result or may change its objective."""
    if not may_check_in(user, team_ids, owner_ids):
        raise NotAllowed(
            f"Only the owners of “{title}”, the leaders of its teams and admins can check in on it."
        )
