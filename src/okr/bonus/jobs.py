"""A bonus run started from the web computes in the background of the web process; its page polls it.

The job reads in one session (no write lock held while it reads), computes in a worker thread (the pure
engine; the event loop keeps serving pages), and writes the lines in a second, short write transaction.
Each step is stamped on the run's `progress`, which the run page shows and polls. A run whose job died
with its process stays `running` with its last step: finance starts the computation again.
"""

import asyncio
import logging
import weakref
from typing import Final

from sqlalchemy import update

from okr.bonus import engine, services
from okr.db.bonus import BonusRun, RunStatus
from okr.db.engine import create_engine, session_factory, set_write_intent, write_intent
from okr.settings import Settings

log = logging.getLogger("okr.bonus")
WAIT_SECONDS: Final = 3.0
"""How long a request waits for its run before it answers with the progress page instead."""

_tasks: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, "asyncio.Task[None]"]]] = (
    weakref.WeakKeyDictionary()
)


def running(run_id: int) -> bool:
    """Whether this process is computing the run now."""
    task = _tasks.get(asyncio.get_running_loop(), {}).get(run_id)
    return task is not None and not task.done()


def start(settings: Settings, run_id: int) -> "asyncio.Task[None]":
    """Compute the draft run in the background, or join the computation under way."""
    loop = asyncio.get_running_loop()
    tasks = _tasks.setdefault(loop, {})
    task = tasks.get(run_id)
    if task is None or task.done():
        task = loop.create_task(_compute(settings, run_id), name=f"okr-bonus-run-{run_id}")
        task.add_done_callback(_log_failure)
        tasks[run_id] = task
    return task


async def settle(task: "asyncio.Task[None]", seconds: float = WAIT_SECONDS) -> bool:
    """True when the task is over within `seconds` (never cancels it)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


async def _compute(settings: Settings, run_id: int) -> None:
    # The task inherits the starting request's context: a POST's write intent would make the reading
    # session take SQLite's write lock and block its own progress stamps.
    set_write_intent(False)
    db = create_engine(settings)
    sessions = session_factory(db)

    async def stamp(
        message: str | None, *, status: str = RunStatus.RUNNING, error: str | None = None
    ) -> None:
        async with sessions() as session:
            with write_intent():
                await session.execute(
                    update(BonusRun)
                    .where(BonusRun.id == run_id)
                    .values(progress=message, status=status, error=error)
                )
                await session.commit()

    async def progress(message: str) -> None:
        await stamp(message)

    try:
        await stamp("Reading the period's data", status=RunStatus.RUNNING)
        async with sessions() as session:
            inputs = await services.read_inputs(session, settings=settings, run_id=run_id, progress=progress)
        await stamp("Computing the pool, the team pools and every line")
        results = await asyncio.to_thread(engine.compute, inputs)
        await stamp("Writing the lines and traces")
        async with sessions() as session:
            with write_intent():
                run = await services.get_run(session, run_id)
                await services.store_results(session, run=run, inputs=inputs, results=results)
                await session.commit()
    except Exception as error:
        await stamp(None, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}"[:2000])
        raise
    finally:
        await db.dispose()


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("bonus run failed", exc_info=error)
