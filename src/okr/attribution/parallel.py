"""Attribution runs as jobs: in this process for small data, over worker processes for big data.

A run is CPU-bound (a million touches, every model for 50,000 journeys), so one process per core is
what makes a recompute take seconds. Each worker reads one part of the accounts (its own connection,
committed data) into arrays, sends its Markov path counts, receives the solved removal effects and the
new run's id, computes every model with numpy (okr.attribution.vector) and writes its own rows (COPY on
PostgreSQL, in parallel; on SQLite, which takes one writer at a time, the workers take turns). The run
stays `running`, invisible to every page, until all rows are written; then one transaction marks it
`succeeded` and the pages switch from one whole run to the next. After the switch the scope's older
runs are deleted (the one the pages read until then stays until the next run). A failed run deletes its
own rows. Workers never fork the parent itself, which may be a web server whose event loop and driver
threads a fork would copy mid-flight.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import resource
import traceback
import weakref
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from okr.attribution import services
from okr.attribution.core import Scope
from okr.attribution.summary import Key, Sums, add_groups
from okr.db.attribution import AttributionRun, RunStatus
from okr.db.engine import create_engine, session_factory, write_intent
from okr.db.models import Account, Opportunity
from okr.lib.clock import utcnow
from okr.settings import Settings

log = logging.getLogger("okr.attribution")
PARALLEL_MIN: Final = 10_000
"""Fewer opportunities than this are computed in the calling process (starting workers costs ~1 s)."""
MAX_WORKERS: Final = 4
# Fork server where there is one (Linux): it imports okr once, then forks each worker ready to run;
# elsewhere a fresh interpreter per worker.
_CONTEXT: Final[Any] = multiprocessing.get_context(
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)
if _CONTEXT.get_start_method() == "forkserver":
    _CONTEXT.set_forkserver_preload([__name__])
_POLL_SECONDS: Final = 0.5


class WorkerFailed(RuntimeError):
    """A worker process failed or died; the run is abandoned and its rows deleted."""


async def run_recompute(
    settings: Settings, scopes: Sequence[Scope] = tuple(Scope), *, workers: int | None = None
) -> list[AttributionRun]:
    """Recompute every model's credit for the scopes from the committed data, each scope its own run.

    `workers`: processes per run (default `settings.attribution_workers`; 0 = one per CPU, at most 4;
    1 = in this process). Below PARALLEL_MIN opportunities the run stays in this process.
    """
    loop = asyncio.get_running_loop()
    lock = _ONE_AT_A_TIME.setdefault(loop, asyncio.Lock())
    async with lock:
        runs = await _recompute(settings, scopes, workers)
    return runs


_ONE_AT_A_TIME: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
"""Recomputes of this process queue, per event loop (an import's and a leader's button): two runs of a
scope at once would each delete the other's rows when they switch."""


async def _recompute(
    settings: Settings, scopes: Sequence[Scope], workers: int | None
) -> list[AttributionRun]:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            config = await services.load_config(session)
            count = await session.scalar(select(func.count()).select_from(Opportunity)) or 0
        parts = _parts(settings, workers, count)
        runs = []
        for scope in scopes:
            if parts == 1:
                async with session_factory(engine)() as session:
                    with write_intent():
                        run = await services.recompute(session, settings=settings, scope=scope, config=config)
                        await session.commit()
            else:
                run = await _in_parts(engine, settings, scope, config, parts)
            runs.append(run)
        return runs
    finally:
        await engine.dispose()


def _parts(settings: Settings, workers: int | None, opportunities: int) -> int:
    wanted = settings.attribution_workers if workers is None else workers
    if wanted == 0:
        wanted = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers is None and opportunities < PARALLEL_MIN:
        return 1
    return max(1, wanted)


async def _in_parts(
    engine: AsyncEngine, settings: Settings, scope: Scope, config: services.AttributionConfig, parts: int
) -> AttributionRun:
    clock = services.Phases()
    async with session_factory(engine)() as session:
        low, high = (await session.execute(select(func.min(Account.id), func.max(Account.id)))).one()
    pool = _Pool(settings, scope, config, _ranges(low or 0, high or 0, parts))
    run_id: int | None = None
    try:
        async with session_factory(engine)() as session:
            current = await services.latest_run(session, scope)
        counts = await pool.paths()
        clock.lap(f"read in {parts} processes")
        chain = services.Transitions()
        for part, _ in counts:
            chain.add(part)
        effects = chain.solve()
        clock.lap("removal effects")
        async with session_factory(engine)() as session:
            with write_intent():
                run = await services.start_run(
                    session, scope, effects, sum(n for _, n in counts), config.lookback_days
                )
                run_id = run.id
                await session.commit()
        summary: dict[Key, Sums] = {}
        rows = await pool.credit(run_id, effects.as_decimals(), summary)
        clock.lap("credit and write")
        async with session_factory(engine)() as session:
            with write_intent():
                # The switch: from now on the pages read this run, planned with statistics that know it.
                await services.refresh_statistics(session)
                run = await session.get_one(AttributionRun, run_id)
                await services.finish_summary(session, run, settings, summary)
                run.computed_at = utcnow()
                run.status = RunStatus.SUCCEEDED.value
                await session.commit()
        clock.lap("switch")
        log.info("attribution %s: %s rows in %s", scope.value, rows, clock)
        # After the switch, off the pages' way: delete the scope's older runs. The run the pages read until
        # now stays until the next run, so a page that began reading it is never cut short.
        async with session_factory(engine)() as session:
            with write_intent():
                kept = {run_id} | ({current.id} if current else set())
                await services.delete_runs(session, scope, keep=kept)
                await session.commit()
        clock.lap("older runs deleted")
        log.info("attribution %s: older runs deleted in %.2f s", scope.value, clock.laps[-1][1])
        return run
    except BaseException:
        if run_id is not None:
            async with session_factory(engine)() as session:
                with write_intent():
                    await services.delete_runs(session, scope, only=run_id)
                    await session.commit()
        raise
    finally:
        pool.close()


def _ranges(low: int, high: int, parts: int) -> list[services.Part]:
    """`parts` ranges of account ids covering low..high (ids are dense: equal ranges, equal work)."""
    step = max(1, -(-(high - low + 1) // parts))
    return [(low + k * step, high if k == parts - 1 else low + (k + 1) * step - 1) for k in range(parts)]


class _Pool:
    """The worker processes of one run, one per part of the accounts."""

    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        config: services.AttributionConfig,
        ranges: list[services.Part],
    ) -> None:
        parts = self.parts = len(ranges)
        self.outbox: Any = _CONTEXT.Queue()
        self.inboxes: list[Any] = [_CONTEXT.Queue() for _ in range(parts)]
        self.writing: Any = _CONTEXT.Lock()
        self.processes = [
            _CONTEXT.Process(
                target=_work,
                args=(
                    settings,
                    scope.value,
                    config,
                    k,
                    ranges[k],
                    self.inboxes[k],
                    self.outbox,
                    self.writing,
                ),
                name=f"okr-attribution-{k}",
                daemon=True,
            )
            for k in range(parts)
        ]
        for process in self.processes:
            process.start()

    async def _next(self, expected: str) -> tuple[int, Any]:
        while True:
            try:
                kind, part, payload = await asyncio.to_thread(self.outbox.get, True, _POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise WorkerFailed(f"{dead[0].name} stopped with exit code {dead[0].exitcode}") from None
                continue
            if kind == "error":
                raise WorkerFailed(f"attribution worker {part} failed:\n{payload}")
            if kind != expected:
                raise WorkerFailed(f"attribution worker {part} sent {kind!r}, expected {expected!r}")
            return part, payload

    async def paths(self) -> list[tuple[services.Transitions, int]]:
        """Each part's Markov chain and number of opportunities, once every worker has read its part."""
        found = dict([await self._next("paths") for _ in range(self.parts)])
        return [found[k] for k in range(self.parts)]

    async def credit(self, run_id: int, removal: dict[str, Decimal], summary: dict[Key, Sums]) -> int:
        """Let the workers credit and write their parts; the number of credit rows written. Their
        summaries are added to `summary`."""
        for inbox in self.inboxes:
            inbox.put((run_id, removal))
        written = 0
        for _ in range(self.parts):
            rows, groups = (await self._next("done"))[1]
            written += rows
            add_groups(summary, groups)
        return written

    def close(self) -> None:
        """Stop the workers (at once if the run failed) and release the queues."""
        for process in self.processes:
            process.join(timeout=5 if process.exitcode is None else 0)
            if process.is_alive():
                process.terminate()
                process.join()
        for q in (self.outbox, *self.inboxes):
            q.cancel_join_thread()
            q.close()


def _work(
    settings: Settings,
    scope: str,
    config: services.AttributionConfig,
    index: int,
    part: services.Part,
    inbox: Any,
    outbox: Any,
    writing: Any,
) -> None:
    """A worker's life: read its part, send the path counts, wait for the removal effects, write the rows."""
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    try:
        asyncio.run(_read_credit_write(settings, Scope(scope), config, index, part, inbox, outbox, writing))
    except BaseException:
        outbox.put(("error", index, traceback.format_exc()))


async def _read_credit_write(
    settings: Settings,
    scope: Scope,
    config: services.AttributionConfig,
    index: int,
    part: services.Part,
    inbox: Any,
    outbox: Any,
    writing: Any,
) -> None:
    clock = services.Phases()
    lookback = config.lookback_days
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            snap = await services._read(session, settings, scope, lookback, part)
        clock.lap("read")
        outbox.put(("paths", index, (services._transitions(snap, lookback), snap.count)))
        clock.lap("paths")
        run_id, removal = inbox.get()
        clock.lap("wait")
        done = services.credit(
            snap, run_id, scope, config.models(), removal, lookback, services.quarters(settings)
        )
        clock.lap("credit")
        # SQLite takes one writer at a time: each worker stages its rows in a temporary table of its own
        # connection (at the same time), then the workers take turns copying them in, each in one
        # transaction (left to SQLite's busy timeout they would interleave and sleep while waiting).
        # PostgreSQL writes the parts in parallel.
        async with engine.connect() as conn:
            if snap.sqlite:
                await services.stage(conn, done)
                clock.lap("stage")
            turn = writing if snap.sqlite else contextlib.nullcontext()
            await asyncio.to_thread(turn.__enter__)
            try:
                clock.lap("wait to write")
                with write_intent():
                    await services.write(conn, done, staged=snap.sqlite)
                    clock.lap("insert")
                    await conn.commit()
            finally:
                turn.__exit__(None, None, None)
        clock.lap("commit")
    finally:
        await engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    log.info("attribution worker %s: %s, peak resident memory %s MiB", index, clock, peak)
    outbox.put(("done", index, (done.rows, done.groups)))
