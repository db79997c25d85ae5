"""Write the demo organisation as DESIGN 7 files and load it through the import path."""

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution.parallel import run_recompute
from okr.db.engine import create_engine, session_factory, write_intent
from okr.db.people import Person
from okr.demo import core
from okr.imports.services import ImportResult, import_folder
from okr.lib.clock import utcnow
from okr.people.services import set_password
from okr.periods.services import ensure_periods
from okr.settings import Settings

Echo = Callable[[str], object]
DEMO_ACTOR = "demo"


def today_in_org(settings: Settings) -> dt.date:
    """Today's date in the organisation's time zone."""
    return utcnow().astimezone(settings.tz).date()


def write_demo(*, out: Path, seed: int, scale: str, settings: Settings) -> dict[str, int]:
    """Write the demo data set's CSV files into `out`; rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    return core.generate(out, seed=seed, scale=scale, today=today_in_org(settings))


def report(results: list[ImportResult], echo: Echo) -> bool:
    """Print what each file did (and every reported error of a rejected one); True when all loaded."""
    for r in results:
        if r.ok:
            echo(f"  {r.entity:<20} {r.rows:>10,} rows  {r.created:>10,} new  {r.updated:>10,} existing")
        else:
            echo(f"  {r.entity:<20} REJECTED: {r.error_count:,} errors, nothing written from this file")
            for e in r.errors:
                echo(f"    row {e['row']}, column {e['column']}: {e['reason']}")
            if r.error_count > len(r.errors):
                echo(f"    ... and {r.error_count - len(r.errors):,} more")
    return bool(results) and all(r.ok for r in results)


async def finish_demo(session: AsyncSession, *, settings: Settings) -> None:
    """Give the demo logins their password and create the periods around today."""
    for _, email, _ in core.DEMO_LOGINS:
        await set_password(session, email=email, password=core.DEMO_PASSWORD, actor=DEMO_ACTOR)
    today = today_in_org(settings)
    await ensure_periods(
        session,
        settings=settings,
        first=today - dt.timedelta(days=460),
        last=today + dt.timedelta(days=92),
        today=today,
    )


async def load_demo(*, settings: Settings, seed: int, scale: str, echo: Echo) -> bool:
    """Generate the demo organisation into a temporary folder and import it; True when loaded."""
    with tempfile.TemporaryDirectory(prefix="okr-demo-") as tmp:
        folder = Path(tmp)
        echo(f"Generating the {scale} demo organisation (seed {seed})...")
        write_demo(out=folder, seed=seed, scale=scale, settings=settings)
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as session:
                with write_intent():
                    echo("Loading it through the import path:")
                    if not report(
                        await import_folder(session, folder=folder, settings=settings, actor=DEMO_ACTOR), echo
                    ):
                        return False
                    await finish_demo(session, settings=settings)
                    await session.commit()
            echo("Computing attribution (every model, both scopes)...")
            await run_recompute(settings)
        finally:
            await engine.dispose()
    return True


async def load_demo_if_empty(*, settings: Settings, seed: int, echo: Echo) -> bool:
    """Load the small demo organisation when nobody is in the database yet; True when it did."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            people = await session.scalar(select(func.count()).select_from(Person))
    finally:
        await engine.dispose()
    if people:
        return False
    return await load_demo(settings=settings, seed=seed, scale="small", echo=echo)


def login_banner(url: str) -> str:
    """Where to log in and as whom."""
    width = max(len(label) for label, _, _ in core.DEMO_LOGINS)
    lines = [
        "",
        f"okr is at {url}",
        f"Demo logins (password for all: {core.DEMO_PASSWORD}):",
        *(f"  {label:<{width}}  {email}" for label, email, _ in core.DEMO_LOGINS),
        "",
    ]
    return "\n".join(lines)
