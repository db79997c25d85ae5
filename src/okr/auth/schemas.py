"""Who is calling (what every handler, guard and template reads), and the auth request/response shapes."""

from dataclasses import dataclass, field

from okr.db.people import Role

TOKEN_SCOPES = frozenset({"import", "read", "export"})


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The logged-in person (or the creator of the API token in use)."""

    id: int
    email: str
    name: str
    role: str
    team_id: int
    team: str

    @property
    def is_admin(self) -> bool:
        """Admins may do everything."""
        return self.role == Role.ADMIN

    def has_role(self, *roles: str) -> bool:
        """True when the user holds one of `roles` (admins hold them all)."""
        return self.is_admin or self.role in roles


@dataclass(frozen=True, slots=True)
class Credentials:
    """How the request was authenticated: a web session, or a token with its scopes."""

    kind: str  # "session" or "token"
    token_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_name: str | None = None

    def allows(self, scope: str) -> bool:
        """A session may do what its user may; a token only within its scopes."""
        return self.kind == "session" or scope in self.scopes

    @property
    def is_token(self) -> bool:
        """True when the caller used an API token."""
        return self.kind == "token"


@dataclass(slots=True)
class LoginForm:
    """The login form; every field may be blank so a half-filled form is re-rendered, not rejected."""

    email: str = ""
    password: str = ""
    next: str = ""


@dataclass(frozen=True, slots=True)
class MeRead:
    """The caller as the API shows them."""

    id: int
    email: str
    name: str
    role: str
    team: str

    @classmethod
    def of(cls, user: CurrentUser) -> "MeRead":
        """The API view of `user`."""
        return cls(id=user.id, email=user.email, name=user.name, role=user.role, team=user.team)


@dataclass(frozen=True, slots=True)
class HealthRead:
    """The health check's answer."""

    status: str
