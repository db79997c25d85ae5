"""Alembic environment: the okr metadata, the URL from okr settings (or the caller's config)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from okr.db.engine import create_engine
from okr.db.migrate import compare_options
from okr.db.models import metadata
from okr.settings import get_settings, load_settings

config = context.config


def _settings() -> Any:
    url = config.get_main_option("sqlalchemy.url")
    return load_settings(database_url=url) if url else get_settings()


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = (
        connection.dialect.name if connection is not None else (url or "").split(":", 1)[0].split("+")[0]
    )
    context.configure(
        **compare_options(dialect),
        connection=connection,
        url=url,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs table copies for most ALTERs
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    _configure(url=_settings().database_url)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    """Run against the database, reusing a connection the caller passed in when there is one."""
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run_sync(connectable)
        return
    engine = create_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_online() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_migrations_online())
        return
    # Called from async code (the tests, a running app): use a worker thread with its own loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run_migrations_online()).result()


if context.is_offline_mode():
    run_migrations_offline()
else:
    _run_online()
