"""Benchmark: a bonus run, trace included, on a loaded database (the enterprise demo), SQLite or PostgreSQL.

    .venv/bin/python bench/bonus.py --url sqlite+aiosqlite:////work/data/ent.db
    .venv/bin/python bench/bonus.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/okr_bench

For the last full quarter before today (or --period), it makes sure an approved plan exists (the demo's
teams and rules; its gate is one point (0, 1) so that the pool is funded whatever the joint score, since
an imported data set has no key results), then --repeat times: creates a draft run and computes it as
`okr bonus run` does (read the inputs, run the engine, write lines and traces, commit), timing each phase;
checks that the stored inputs computed again give the stored results; deletes the run. Prints a Markdown
table of best / median per phase and the process's peak memory (max RSS).
"""

import argparse
import asyncio
import logging
import resource
import statistics
import time
from decimal import Decimal

from sqlalchemy import delete, func, select

from okr.auth.schemas import CurrentUser
from okr.bonus import engine, services
from okr.bonus.plans import approved_plan
from okr.db.bonus import BonusPlan, BonusRun, PlanStatus
from okr.db.engine import open_session, write_intent
from okr.db.models import Period, Person
from okr.lib.clock import utcnow
from okr.lib.periods import parse_key, quarter_of
from okr.periods.services import ensure_periods
from okr.settings import load_settings

FINANCE = "finance@demo.okr.example"


async def ensure_plan(url: str, key: str) -> None:
    """An approved plan for the period (made once)."""
    settings = load_settings(database_url=url, mode="development")
    async with open_session(settings) as session:
        with write_intent():
            first, last = parse_key(key).dates(settings.fiscal_year_start_month)
            today = utcnow().astimezone(settings.tz).date()
            await ensure_periods(session, settings=settings, first=first, last=last, today=today)
            await session.commit()
        period = await session.scalar(select(Period).where(Period.key == key))
        assert period is not None, f"no period {key}"
        if await approved_plan(session, period_id=period.id) is not None:
            return
        with write_intent():
            now = utcnow()
            session.add(
                BonusPlan(
                    period_id=period.id, version=1, status=PlanStatus.APPROVED, funding_rate=Decimal("0.03"),
                    pipeline_rate=Decimal("0.002"), kr_cap=Decimal("1.5"), gate_curve=[["0", "1"]],
                    teams=[
                        {"team": "sales", "share": "0.55", "rule": "by_credit"},
                        {"team": "marketing", "share": "0.3", "rule": "by_credit"},
                        {"team": "sdr", "share": "0.15", "rule": "by_target_bonus"},
                    ],
                    model="w_shaped", scope="revenue", count_overlay=True, cap_multiple=Decimal(3),
                    prorate=True, leftover_policy="carry_forward", clawback_days=90, note="bench",
                    created_at=now, approved_at=now,
                )
            )  # fmt: skip
            await session.commit()


async def one_run(url: str, key: str) -> dict[str, float | int | bool]:
    """Create, compute and commit a run as finance; the phases' seconds; then delete it."""
    settings = load_settings(database_url=url, mode="development")
    figures: dict[str, float | int | bool] = {}
    async with open_session(settings) as session:
        person = await session.scalar(select(Person).where(Person.email == FINANCE))
        assert person is not None
        user = CurrentUser(person.id, person.email, person.name, "finance", person.team_id, "finance")
        with write_intent():
            start = time.perf_counter()
            run = await services.create_run(session, settings=settings, period_key=key, user=user)
            await session.commit()
            t0 = time.perf_counter()
            inputs = await services.read_inputs(session, settings=settings, run_id=run.id)
            t1 = time.perf_counter()
            results = engine.compute(inputs)
            t2 = time.perf_counter()
            await services.store_results(session, run=run, inputs=inputs, results=results)
            await session.commit()
            t3 = time.perf_counter()
        figures.update(
            read=t1 - t0, engine=t2 - t1, write=t3 - t2, total=t3 - start,
            lines=len(results["lines"]), traces=len(results["traces"]), deals=len(inputs["won"]),
            credit=len(inputs["credit"]), pool=int(results["pool"]["pool"]),
        )  # fmt: skip
        v0 = time.perf_counter()
        figures["identical"] = await services.verify_run(session, run_id=run.id)
        figures["verify"] = time.perf_counter() - v0
        with write_intent():
            await session.execute(delete(BonusRun).where(BonusRun.id == run.id))
            await session.commit()
    return figures


async def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--period", help="e.g. 2026-Q3; the last full quarter before today by default")
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(database_url=opts.url, mode="development")
    key = (
        opts.period
        or quarter_of(utcnow().astimezone(settings.tz).date(), settings.fiscal_year_start_month).shift(-1).key
    )
    await ensure_plan(opts.url, key)
    async with open_session(settings) as session:
        people = await session.scalar(select(func.count()).select_from(Person))
    runs = [await one_run(opts.url, key) for _ in range(opts.repeat)]
    first = runs[0]
    print(f"{opts.url.split(':')[0]} · {key} · {people:,} people · {first['deals']:,} won deals · "
          f"{first['credit']:,} credit rows · {first['lines']:,} lines · {first['traces']:,} trace rows · "
          f"pool {first['pool']:,} · re-run identical: {all(r['identical'] for r in runs)}")  # fmt: skip
    print("\n| phase | best | median |\n| --- | --- | --- |")
    for phase in ("read", "engine", "write", "total", "verify"):
        values = [float(r[phase]) for r in runs]
        print(f"| {phase} | {min(values):.2f} s | {statistics.median(values):.2f} s |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"\npeak memory (max RSS of the process): {peak} MiB")


if __name__ == "__main__":
    asyncio.run(main())
