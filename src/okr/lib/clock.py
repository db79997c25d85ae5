"""The one source of 'now', so tests and reruns can pin time."""

import datetime as dt
from collections.abc import Callable

_now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def utcnow() -> dt.datetime:
    """The current instant, aware, in UTC."""
    return _now()


def set_clock(fn: Callable[[], dt.datetime] | None) -> None:
    """Pin the clock to `fn` (tests, reproducible demos); None restores the real clock."""
    global _now
    _now = fn if fn is not None else (lambda: dt.datetime.now(dt.UTC))
