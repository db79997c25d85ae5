"""Business errors carry their HTTP status; one handler renders them for htmx, pages and the API."""

from typing import Any


class OkrError(Exception):
    """A business error a user can act on; `detail` is shown to them as is."""

    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class ValidationFailed(OkrError):
    """Input was refused; `errors` lists each field (or row and column) and the reason."""

    status_code = 422
    title = "Invalid input"


class NotFound(OkrError):
    """The record does not exist, or the caller may not know that it does."""

    status_code = 404
    title = "Not found"


class Conflict(OkrError):
    """The change conflicts with the current state (another edit, a locked record)."""

    status_code = 409
    title = "Conflict"


class Forbidden(OkrError):
    """The caller's role or relation to the record does not allow this action."""

    status_code = 403
    title = "Forbidden"
