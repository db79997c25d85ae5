"""Command-line jobs: open a session, call the services, commit once. The CLI stays thin."""

from pathlib import Path

from okr.attribution.core import Scope
from okr.attribution.parallel import run_recompute
from okr.auth.services import create_token
from okr.db.engine import open_session, write_intent
from okr.demo.services import Echo, report
from okr.imports.services import import_folder
from okr.people.services import create_user, require_by_email, set_password
from okr.settings import Settings

CLI_ACTOR = "cli"


async def run_import(*, settings: Settings, folder: Path, echo: Echo) -> bool:
    """Load a data-set folder file by file (each file commits alone); True when all were imported."""
    async with open_session(settings) as session:
        with write_intent():
            results = await import_folder(session, folder=folder, settings=settings, actor=CLI_ACTOR)
    ok = report(results, echo)
    if any(r.rows for r in results):
        echo("Recomputing attribution (every model, both scopes)...")
        await recompute_attribution(settings=settings, scopes=list(Scope), echo=echo)
    return ok


async def add_user(*, settings: Settings, email: str, name: str, team: str, role: str, password: str) -> None:
    """Create a person who can log in."""
    async with open_session(settings) as session:
        with write_intent():
            await create_user(session, email=email, name=name, team=team, role=role, password=password)
            await session.commit()


async def change_password(*, settings: Settings, email: str, password: str) -> None:
    """Set a person's password."""
    async with open_session(settings) as session:
        with write_intent():
            await set_password(session, email=email, password=password)
            await session.commit()


async def add_token(*, settings: Settings, email: str, name: str, scopes: list[str]) -> str:
    """Create an API token for a person; returns its secret, shown once."""
    async with open_session(settings) as session:
        with write_intent():
            person = await require_by_email(session, email=email)
            _, plaintext = await create_token(session, person_id=person.id, name=name, scopes=scopes)
            await session.commit()
    return plaintext


async def run_bonus(*, settings: Settings, period: str, echo: Echo) -> int:
    """Create and compute a draft bonus run of the period (committed); its id."""
    from okr.bonus import services as bonus
    from okr.lib.money import format_money

    async def say(step: str) -> None:
        echo(f"  {step}")

    async with open_session(settings) as session:
        with write_intent():
            run = await bonus.create_run(session, settings=settings, period_key=period, user=None)
            await bonus.compute_run(session, settings=settings, run_id=run.id, progress=say)
            await session.commit()
    summary = run.summary or {}
    pool, paid, left = (format_money(v or 0, run.currency) for v in (run.pool, run.paid, run.leftover))
    echo(f"Run {run.id} ({period}, draft): pool {pool}, paid {paid}, leftover {left}")
    echo(f"  {summary.get('pool', {}).get('formula', '')}")
    echo(f"  inputs checksum {run.inputs_checksum}")
    return run.id


async def recompute_attribution(*, settings: Settings, scopes: list[Scope], echo: Echo) -> None:
    """Recompute every model's credit for the scopes (each scope one run, committed when whole)."""
    for run in await run_recompute(settings, scopes):
        echo(f"  {run.scope:<9} {run.opportunities:>9,} opportunities recomputed")
