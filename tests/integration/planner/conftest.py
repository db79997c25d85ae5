"""The planner tests run with the clock pinned inside 2026-Q3 and empty KPI and goals caches."""

from collections.abc import Iterator

import pytest
from tests.integration.goals.goals_data import NOW

from okr.goals import services as goals
from okr.kpis import services as kpis
from okr.lib.clock import set_clock


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """Today is 2026-08-15 in New York: 2026-Q3 is under way."""
    set_clock(lambda: NOW)
    kpis.clear_cache()
    goals.clear_cache()
    yield
    set_clock(None)
    kpis.clear_cache()
    goals.clear_cache()
