"""Who may open whose personal page (DESIGN 8): yourself always; finance and admins everyone; a leader the
people of their own team; a member nobody else.

The personal page will carry the person's bonus projection, which is confidential, so a refusal looks
exactly like a person who does not exist (404, the same sentence): a member cannot even learn who exists.
Plain functions over the caller and the person's id and team, so the bonus statement and its API can ask
the same question; `okr.home.services.visible_person` loads the person and asks it.
"""

from okr.auth.schemas import CurrentUser
from okr.db.people import Role
from okr.lib.errors import NotFound


def no_such_person(person_id: int) -> NotFound:
    """The one answer for a person who does not exist and for one the caller may not see."""
    return NotFound(f"There is no person {person_id} you can see.")


def may_see_person(user: CurrentUser, *, person_id: int, team_id: int) -> bool:
    """Yourself; finance and admins anyone; a leader the people of their own team."""
    if user.id == person_id or user.is_admin or user.role == Role.FINANCE:
        return True
    return user.role == Role.LEADER and user.team_id == team_id


def check_may_see_person(user: CurrentUser, *, person_id: int, team_id: int) -> None:
    """NotFound (404, as for a person who does not exist) unless the caller may see this person."""
    if not may_see_person(user, person_id=person_id, team_id=team_id):
        raise no_such_person(person_id)
