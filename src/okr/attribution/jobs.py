"""A recompute started from the web runs as a background task of the web process; its page polls it.

On small data a recompute takes well under a second and the request waits for it (WAIT_SECONDS), so the
page shows the new figures at once. On big data (the enterprise demo: some 25 s for both scopes) the
request answers while it runs, and the page polls `/attribution/recompute/status` until it is done. One
recompute at a time per process: a second request joins the one under way. The audit event is written
when the runs are in, by the task, with who asked for it.
"""

import asyncio
import datetime as dt
import logging
import weakref
from dataclasses import dataclass
from typing import Final

from okr.attribution.parallel import run_recompute
from okr.audit import services as audit
from okr.db.attribution import AttributionRun
from okr.db.engine import create_engine, session_factory, write_intent
from okr.lib.clock import utcnow
from okr.settings import Settings

log = logging.getLogger("okr.attribution")
WAIT_SECONDS: Final = 3.0
"""How long a request waits for its recompute before it answers with a progress indicator instead."""


@dataclass(slots=True)
class RecomputeJob:
    """The recompute under way (or the last one) in this process."""

    task: "asyncio.Task[list[AttributionRun]]"
    started_at: dt.datetime
    actor: str

    @property
    def running(self) -> bool:
        """True until the task is over."""
        return not self.task.done()

    @property
    def failure(self) -> str | None:
        """What went wrong, when the task failed."""
        if not self.task.done() or self.task.cancelled():
            return "The recompute was stopped." if self.task.cancelled() else None
        error = self.task.exception()
        return None if error is None else f"{type(error).__name__}: {error}"


_jobs: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RecomputeJob]] = weakref.WeakKeyDictionary()


def current() -> RecomputeJob | None:
    """This process's recompute under way or last finished, if any."""
    return _jobs.get(asyncio.get_running_loop())


def start(settings: Settings, *, action: str, actor: str, actor_id: int | None) -> RecomputeJob:
    """Start recomputing both scopes in the background, or join the recompute already under way."""
    loop = asyncio.get_running_loop()
    job = _jobs.get(loop)
    if job is not None and job.running:
        return job
    task = loop.create_task(_run(settings, action, actor, actor_id), name="okr-attribution-recompute")
    task.add_done_callback(_log_failure)
    job = _jobs[loop] = RecomputeJob(task, utcnow(), actor)
    return job


async def settle(job: RecomputeJob, seconds: float | None = None) -> list[AttributionRun] | None:
    """The job's runs if it is over within `seconds` (WAIT_SECONDS by default; its error is raised), else
    None; never cancels it."""
    done, _ = await asyncio.wait({job.task}, timeout=WAIT_SECONDS if seconds is None else seconds)
    return job.task.result() if done else None


async def _run(settings: Settings, action: str, actor: str, actor_id: int | None) -> list[AttributionRun]:
    runs = await run_recompute(settings)
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            with write_intent():
                await audit.record(
                    session,
                    actor=actor,
                    actor_id=actor_id,
                    action=action,
                    entity="attribution_run",
                    after={r.scope: {"run": r.id, "opportunities": r.opportunities} for r in runs},
                )
                await session.commit()
    finally:
        await engine.dispose()
    return runs


def _log_failure(task: "asyncio.Task[list[AttributionRun]]") -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("attribution recompute failed", exc_info=error)
