"""Middleware pieces that need no database: write intent, public paths, bearer parsing, session data."""

from typing import Any

import pytest

from okr.auth.middleware import (
    SESSION_PERSON_KEY,
    WriteIntentMiddleware,
    _bearer_token,
    is_api_path,
    is_public_path,
    session_person_id,
)
from okr.db import engine


async def _run(method: str) -> tuple[bool, bool]:
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(engine._write_intent.get())

    middleware = WriteIntentMiddleware()(app)
    scope: Any = {"type": "http", "method": method, "path": "/x", "route_handler": None}
    await middleware(scope, None, None)  # type: ignore[arg-type]
    return seen[0], engine._write_intent.get()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unsafe_methods_are_writers_for_the_request_only(method: str) -> None:
    during, after = await _run(method)
    assert during is True
    assert after is False  # the mark does not leak into whatever runs next in this context


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_are_readers(method: str) -> None:
    assert await _run(method) == (False, False)


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/logout",
        "/healthz",
        "/favicon.ico",
        "/static/okr.css",
        "/api/docs",
        "/api/docs/openapi.json",
    ],
)
def test_public_paths(path: str) -> None:
    assert is_public_path(path)


@pytest.mark.parametrize("path", ["/", "/login/extra", "/api/v1/me", "/api/docsx", "/healthz/x", "/goals"])
def test_private_paths(path: str) -> None:
    assert not is_public_path(path)


def test_api_paths() -> None:
    assert is_api_path("/api/v1/me")
    assert not is_api_path("/apiary")


def _headers(value: str) -> Any:
    return {"type": "http", "headers": [(b"authorization", value.encode())]}


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer okr_abc", "okr_abc"),
        ("bearer   okr_abc  ", "okr_abc"),
        ("Bearer ", ""),
        ("Basic dXNlcjpwYXNz", None),
        ("okr_abc", None),
    ],
)
def test_bearer_token_parsing(header: str, token: str | None) -> None:
    assert _bearer_token(_headers(header)) == token


def test_no_authorization_header() -> None:
    assert _bearer_token({"type": "http", "headers": []}) is None  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ({SESSION_PERSON_KEY: 7}, 7),
        ({SESSION_PERSON_KEY: "7"}, None),
        ({SESSION_PERSON_KEY: True}, None),
        ({}, None),
        (None, None),
    ],
)
def test_session_person_id(session: Any, expected: int | None) -> None:
    assert session_person_id({"session": session}) == expected  # type: ignore[typeddict-item]
