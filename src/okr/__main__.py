"""`okr` command line: serve, db, import, demo, users, tokens."""

import asyncio
import logging
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import click

from okr.settings import Settings, SettingsError, get_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@click.group()
@click.version_option(package_name="okr")
def cli() -> None:
    """okr: joint goals, attribution and one bonus pool for sales and marketing."""


# -- serve -------------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default from settings: 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default from settings: 8000).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str | None, port: int | None, workers: int, reload: bool) -> None:
    """Serve the web app with uvicorn."""
    import uvicorn

    settings = _settings()
    if settings.secret_generated and workers > 1:
        raise click.ClickException("Several workers need one shared OKR_SECRET_KEY: set it first.")
    _say_secret(settings)
    uvicorn.run(
        "okr.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        reload=reload,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def _say_secret(settings: Settings) -> None:
    if settings.secret_generated:
        click.echo(
            "Development mode: using a generated secret key kept in var/.secret_key "
            "(production needs OKR_SECRET_KEY).",
            err=True,
        )


@cli.command()
@click.option("--seed", default=7, show_default=True)
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
def up(seed: int, host: str | None, port: int | None) -> None:
    """Migrate, load the demo organisation when the database is empty, print the logins, serve."""
    from okr.db import migrate
    from okr.demo import services as demo

    settings = _settings()
    migrate.upgrade(settings)
    loaded = _run(demo.load_demo_if_empty(settings=settings, seed=seed, echo=click.echo))
    if not loaded:
        click.echo("The database already holds data: the demo organisation was not loaded again.")
    h, p = host or settings.host, port or settings.port
    click.echo(demo.login_banner(f"http://{h}:{p}"))
    click.get_current_context().invoke(serve, host=h, port=p, workers=1, reload=False)


# -- db ----------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up (to the newest revision by default)."""
    from okr.db import migrate

    migrate.upgrade(_settings(), revision)
    click.echo(f"Database at {revision}.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (`base` drops every table)."""
    from okr.db import migrate

    migrate.downgrade(_settings(), revision)


@db.command("current")
def db_current() -> None:
    """Show the database's revision."""
    from okr.db import migrate

    migrate.current(_settings())


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from okr.db import migrate

    migrate.revision(_settings(), message)


# -- import ------------------------------------------------------------------------------------


@cli.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_(folder: Path) -> None:
    """Load a folder of DESIGN 7 CSV files (upsert by key; each file all-or-nothing)."""
    from okr import jobs

    ok = _run(jobs.run_import(settings=_settings(), folder=folder, echo=click.echo))
    if not ok:
        sys.exit(1)


# -- attribution -------------------------------------------------------------------------------


@cli.group()
def attribution() -> None:
    """Attribution runs (DESIGN 3)."""
    # The run logs its phases (read, removal effects, credit and write) at INFO.
    logging.basicConfig(level=logging.INFO, format="  %(message)s")


@attribution.command("recompute")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice(["pipeline", "revenue"]),
    multiple=True,
    help="Only this scope (repeatable); both by default.",
)
def attribution_recompute(scopes: tuple[str, ...]) -> None:
    """Recompute every model's credit from the data in the database, replacing the previous runs."""
    _boot_workers()  # the worker processes' fork server imports okr while this process does
    from okr import jobs
    from okr.attribution.core import Scope

    chosen = [Scope(s) for s in scopes] or list(Scope)
    _run(jobs.recompute_attribution(settings=_settings(), scopes=chosen, echo=click.echo))


def _boot_workers() -> None:
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.get_context("forkserver").set_forkserver_preload(["okr.attribution.parallel"])
        forkserver.ensure_running()


# -- demo --------------------------------------------------------------------------------------


@cli.command()
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
@click.option("--scale", type=click.Choice(["small", "enterprise"]), default="small", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the CSV files into this folder and stop (load them later with `okr import`).",
)
def demo(seed: int, scale: str, out: Path | None) -> None:
    """Generate the demo organisation and load it (or, with --out, only write its files)."""
    from okr.demo import services as demo_services

    settings = _settings()
    if out is not None:
        counts = demo_services.write_demo(out=out, seed=seed, scale=scale, settings=settings)
        for name, n in counts.items():
            click.echo(f"  {name:<24} {n:>10,} rows")
        click.echo(f"Wrote {out}. Load it with: okr import {out}")
        return
    from okr.db import migrate

    migrate.upgrade(settings)
    ok = _run(demo_services.load_demo(settings=settings, seed=seed, scale=scale, echo=click.echo))
    if not ok:
        sys.exit(1)
    click.echo(demo_services.login_banner(f"http://{settings.host}:{settings.port}"))


# -- users and tokens --------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """People who log in."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--team", required=True, help="sales, marketing, sdr, finance, ... (created when missing)")
@click.option("--role", type=click.Choice(["member", "leader", "finance", "admin"]), default="member")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_create(email: str, name: str, team: str, role: str, password: str) -> None:
    """Create a person who can log in."""
    from okr import jobs

    _run(jobs.add_user(settings=_settings(), email=email, name=name, team=team, role=role, password=password))
    click.echo(f"Created {email} ({role}, {team}).")


@users.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(email: str, password: str) -> None:
    """Set a person's password."""
    from okr import jobs

    _run(jobs.change_password(settings=_settings(), email=email, password=password))
    click.echo(f"Password set for {email}.")


@cli.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--email", required=True, help="The person the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'crm sync'.")
@click.option(
    "--scope", "scopes", multiple=True, type=click.Choice(["import", "read", "export"]), required=True
)
def tokens_create(email: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API token; its secret is shown once."""
    from okr import jobs

    plaintext = _run(jobs.add_token(settings=_settings(), email=email, name=name, scopes=list(scopes)))
    click.echo(plaintext)


# -- bonus ---------------------------------------------------------------------------------------


@cli.group()
def bonus() -> None:
    """Bonus runs (DESIGN 6)."""


@bonus.command("run")
@click.option("--period", required=True, help="The fiscal quarter, e.g. 2026-Q3.")
def bonus_run(period: str) -> None:
    """Compute a draft run of the period under its approved plan and print its pool and lines."""
    from okr import jobs

    _run(jobs.run_bonus(settings=_settings(), period=period, echo=click.echo))


def main() -> None:
    """Entry point of the `okr` script."""
    from okr.lib.errors import OkrError

    try:
        cli(standalone_mode=True)
    except OkrError as exc:
        click.echo(f"Error: {exc.detail}", err=True)
        for e in exc.errors[:50]:
            click.echo(f"  {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
