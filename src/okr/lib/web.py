"""Small request helpers the page controllers share."""

import datetime as dt
from typing import Any

from litestar import Request
from litestar.plugins.htmx import HTMXRequest

from okr.lib.clock import utcnow
from okr.settings import Settings


def app_settings(request: Request[Any, Any, Any]) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state["settings"]
    return settings


def org_today(settings: Settings) -> dt.date:
    """Today in the organisation's time zone."""
    return utcnow().astimezone(settings.tz).date()


def wants_fragment(request: HTMXRequest) -> bool:
    """An htmx request that swaps part of the page (a history restore needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request
