"""Read the attribution figures people open first, in the background, as soon as a run is current.

A run never changes, so the campaigns page of a quarter, model and scope is aggregated once and then
kept (`queries`). The first view of each still costs the aggregation (about half a second on the
enterprise demo); the web process reads the current and the previous quarter under every model and in
both scopes right after it starts and after every recompute it runs, so that people do not wait.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from okr.attribution import parallel, queries
from okr.attribution.core import Scope
from okr.db.attribution import STORED_MODELS
from okr.db.engine import session_factory
from okr.lib.clock import utcnow
from okr.lib.errors import OkrError
from okr.lib.periods import quarter_of
from okr.settings import Settings

log = logging.getLogger("okr.attribution")


class Warmer:
    """Warms the figures of the latest runs with the web app's own engine (its cache is per engine)."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._listener: Callable[[], Awaitable[None]] | None = None

    async def startup(self) -> None:
        """Warm now, and after every recompute this process runs."""
        if not self.settings.attribution_warm:
            return

        async def listener() -> None:
            self.schedule()

        self._listener = listener
        parallel.after_recompute.append(listener)
        self.schedule()

    async def shutdown(self) -> None:
        """Stop warming."""
        if self._listener is not None and self._listener in parallel.after_recompute:
            parallel.after_recompute.remove(self._listener)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def schedule(self) -> None:
        """Warm in the background (once more if it is warming already)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._warm_until_done(), name="okr-attribution-warm")

    async def _warm_until_done(self) -> None:
        while True:
            self._again = False
            try:
                await self.warm()
            except Exception:
                log.exception("warming the attribution figures failed")
            if not self._again:
                return

    async def warm(self) -> int:
        """Read the current and previous quarter's figures under every model, both scopes; how many."""
        today = utcnow().astimezone(self.settings.tz).date()
        current = quarter_of(today, self.settings.fiscal_year_start_month)
        done = 0
        async with session_factory(self.engine)() as session:
            for quarter in (current, current.shift(-1)):
                for model in STORED_MODELS:
                    for scope in Scope:
                        try:
                            figures = await queries.campaign_figures(
                                session, settings=self.settings, quarter=quarter, model=model, scope=scope
                            )
                        except OkrError:
                            figures = None
                        if figures is None:  # no run of that scope yet
                            continue
                        done += 1
                        await session.rollback()  # end the read transaction: no long snapshot held
                        await asyncio.sleep(0)  # let requests in between
        return done
