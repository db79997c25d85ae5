"""After login the browser goes to `next` only when it is a path on this site."""

import pytest

from okr.auth.controllers import safe_next


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/goals",
        "/goals/12?period=2026-Q4#krs",
        "/bonus/runs/3/statement",
    ],
)
def test_same_site_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "http://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "https:/evil.example",
        "/login",
        "/logout",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_goes_home(target: str | None) -> None:
    assert safe_next(target) == "/"
