"""Benchmark: page response times on a loaded database, single user, through the ASGI app.

    .venv/bin/python bench/import_enterprise.py --database sqlite --keep var/bench.db
    .venv/bin/python bench/pages.py --url sqlite+aiosqlite:///var/bench.db
    .venv/bin/python bench/pages.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/okr_bench

Logs in as a demo leader (setting the demo password), then requests each page (the dashboard's, the
attribution pages once attribution is computed, the goals, key result, personal and team pages): once
cold (figure caches cleared) and --repeat times warm, and prints p50 / p95 / max per page as a
Markdown table. When the current quarter has no objectives yet, it first plants the demo's (as
`okr up` does), with targets from the last two quarters.
"""

import argparse
import asyncio
import logging
import statistics
import time

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from okr.app import create_app
from okr.attribution import queries as attribution_queries
from okr.db.engine import open_session, write_intent
from okr.db.goals import KeyResult, Objective
from okr.db.models import Campaign, Opportunity, Period, Team
from okr.demo.core import DEMO_PASSWORD
from okr.demo.services import plant_goals
from okr.goals import services as goals_services
from okr.kpis.services import clear_cache
from okr.lib.clock import utcnow
from okr.lib.periods import quarter_of
from okr.people.services import set_password
from okr.settings import load_settings

LEADER = "vp.sales@demo.okr.example"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values, in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000


async def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeat", type=int, default=50)
    opts = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings(database_url=opts.url, mode="development")
    async with open_session(settings) as session:
        with write_intent():
            await set_password(session, email=LEADER, password=DEMO_PASSWORD, actor="bench")
            await session.commit()
        campaign = await session.scalar(select(func.min(Campaign.id)))
        deal = await session.scalar(select(func.min(Opportunity.id)).where(Opportunity.status == "won"))
        today = utcnow().astimezone(settings.tz).date()
        quarter = quarter_of(today, settings.fiscal_year_start_month)
        planted = select(func.count()).select_from(Objective).join(Period).where(Period.key == quarter.key)
        if not await session.scalar(planted):
            with write_intent():
                await plant_goals(session, settings=settings, today=today)
                await session.commit()
        key_result = await session.scalar(
            select(func.min(KeyResult.id)).join(Objective).join(Period).where(Period.key == quarter.key)
        )
        sales = await session.scalar(select(Team.id).where(Team.name == "sales"))
    previous = quarter.shift(-1).key
    pages = {
        "dashboard, current quarter": "/",
        "dashboard, previous quarter": f"/?period={quarter.shift(-1).key}",
        "dashboard fragment (htmx switch)": f"/?period={quarter.shift(-2).key}",
        "drill-down: revenue won": f"/dashboard/records?kpi=revenue_won&period={quarter.key}",
        "drill-down: marketing-sourced": (
            f"/dashboard/records?kpi=pipeline_sourced_marketing&period={quarter.key}"
        ),
        "attribution, previous quarter": f"/attribution?period={previous}",
        "attribution fragment: switch model (htmx)": f"/attribution?period={previous}&model=data_driven",
        "attribution fragment: switch scope (htmx)": f"/attribution?period={previous}&scope=pipeline",
        "attribution: a campaign's deals": f"/attribution/campaigns/{campaign}?period={previous}",
        "attribution: a deal's journey": f"/attribution/opportunities/{deal}",
        "attribution: compare two models": (
            f"/attribution/compare?period={previous}&model_a=first_touch&model_b=data_driven"
        ),
        "goals page, current quarter": f"/goals?period={quarter.key}",
        "a key result (burn-up, check-ins)": f"/goals/key-results/{key_result}",
        "personal page (/me)": f"/me?period={quarter.key}",
        "team page (sales)": f"/teams/{sales}?period={quarter.key}",
    }
    rows = []
    async with AsyncTestClient(app=create_app(settings)) as client:
        await client.get("/login")
        form = {
            "email": LEADER,
            "password": DEMO_PASSWORD,
            "_csrf_token": client.cookies.get("okr_csrf") or "",
        }
        assert (await client.post("/login", data=form)).status_code in {200, 303}
        for name, path in pages.items():
            headers = {"HX-Request": "true"} if "fragment" in name else {}
            clear_cache()
            attribution_queries.clear_cache()
            goals_services.clear_cache()
            start = time.perf_counter()
            response = await client.get(path, headers=headers)
            cold = time.perf_counter() - start
            assert response.status_code == 200, (path, response.status_code)
            warm = []
            for _ in range(opts.repeat):
                start = time.perf_counter()
                await client.get(path, headers=headers)
                warm.append(time.perf_counter() - start)
            rows.append((name, cold * 1000, pct(warm, 0.5), pct(warm, 0.95), max(warm) * 1000))
    print(f"\n{settings.database_url.split('://')[0]}, {opts.repeat} warm requests per page\n")
    print("| page | cold | p50 | p95 | max |\n| --- | ---: | ---: | ---: | ---: |")
    for name, cold, p50, p95, top in rows:
        print(f"| {name} | {cold:,.0f} ms | {p50:,.1f} ms | {p95:,.1f} ms | {top:,.1f} ms |")
    print(f"\nmedian of p50s: {statistics.median(r[2] for r in rows):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
