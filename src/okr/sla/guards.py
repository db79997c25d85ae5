"""Who may change the SLA (DESIGN 8): everyone logged in reads the policy and the board; leaders and
admins change the policy and the reject reasons. Plain functions, so web, API and CLI ask the same."""

from litestar.handlers.base import BaseRouteHandler

from okr.auth.guards import Connection, current_user
from okr.auth.schemas import CurrentUser
from okr.db.people import Role
from okr.lib.errors import OkrError


class NotAllowed(OkrError):
    """The caller's role does not allow changing the SLA."""

    status_code = 403
    title = "Not allowed"


def may_write_sla(user: CurrentUser) -> bool:
    """Leaders and admins may change the SLA policy and the reject reasons."""
    return user.has_role(Role.LEADER)


def check_may_write_sla(user: CurrentUser) -> None:
    """NotAllowed unless the caller is a leader or an admin."""
    if not may_write_sla(user):
        raise NotAllowed(
            "Only leaders and admins can change the SLA policy and the reject reasons; you can read them."
        )


def requires_sla_writer(connection: Connection, _: BaseRouteHandler) -> None:
    """Route guard: leaders and admins only, with the same sentence as the services."""
    check_may_write_sla(current_user(connection))
