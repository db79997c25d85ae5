"""One exception handler: JSON problem bodies for the API, an error fragment for htmx, a page otherwise."""

from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.orm.exc import StaleDataError

from okr.lib.errors import Conflict, OkrError

_TITLES = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
           409: "Conflict", 413: "Too large", 422: "Invalid input", 429: "Too many requests"}  # fmt: skip


def _problem(exc: Exception) -> tuple[int, str, str, list[dict[str, Any]]]:
    if isinstance(exc, StaleDataError):
        exc = Conflict("Someone else changed this record while you were editing it: reload and try again.")
    if isinstance(exc, OkrError):
        return exc.status_code, exc.title, exc.detail, exc.errors
    if isinstance(exc, ValidationException):
        errors = [
            {"field": str(e.get("key") or e.get("source") or ""), "reason": str(e.get("message", ""))}
            for e in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(e, dict)
        ]
        return 400, "Invalid input", str(exc.detail), errors
    if isinstance(exc, HTTPException):
        status = exc.status_code
        return status, _TITLES.get(status, "Error"), str(exc.detail), []
    return (
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Server error",
        "Something went wrong on our side; it was logged.",
        [],
    )


def is_api(request: Request[Any, Any, Any]) -> bool:
    """API routes answer JSON."""
    return request.url.path.startswith("/api/")


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Render any exception for its audience, never leaking internals."""
    status, title, detail, errors = _problem(exc)
    if is_api(request):
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        if errors:
            body["errors"] = errors
        return Response(body, status_code=status, media_type="application/problem+json")
    if status == HTTP_401_UNAUTHORIZED or isinstance(exc, NotAuthorizedException):
        # The whole address, query included: a deep link (period, filters) survives the login.
        asked = request.url.path + ("?" + request.url.query if request.url.query else "")
        target = "/login?next=" + quote(asked, safe="/")
        if request.headers.get("hx-request"):
            return Response("", status_code=200, headers={"HX-Redirect": target}, media_type=MediaType.TEXT)
        return Redirect(target)
    context = {"status": status, "title": title, "detail": detail, "errors": errors}
    name = "_error.html" if request.headers.get("hx-request") else "error.html"
    return Template(template_name=name, context=context, status_code=status)
