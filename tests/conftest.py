"""Shared fixtures: every database test runs on SQLite and, when OKR_TEST_POSTGRES_URL is set, PostgreSQL.

The schema comes from the real migrations, once per database per run; each test then starts from
empty tables (they are emptied after every test that used the database).
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from okr.db import migrate
from okr.db.engine import create_engine, session_factory
from okr.db.models import metadata
from okr.settings import Settings, load_settings

_GIVEN_POSTGRES_URL = os.environ.get("OKR_TEST_POSTGRES_URL", "")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""The pytest-xdist worker running this process (gw0, gw1, ...), empty without xdist."""


def _worker_url(url: str) -> str:
    """Each xdist worker has its own PostgreSQL database, named after the given one: test_gw0, ..."""
    if not url or not WORKER:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    return base.set(database=f"{base.database}_{WORKER}").render_as_string(hide_password=False)


POSTGRES_URL = _worker_url(_GIVEN_POSTGRES_URL)
DATABASES = ["sqlite", "postgresql"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, create this worker's PostgreSQL database (next to the given one) when it is missing."""
    if POSTGRES_URL and POSTGRES_URL != _GIVEN_POSTGRES_URL:
        import asyncio

        asyncio.run(_create_database(_GIVEN_POSTGRES_URL, POSTGRES_URL))


async def _create_database(admin_url: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    eng = create_engine(make_settings(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await eng.dispose()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say plainly which databases this run covers."""
    if POSTGRES_URL:
        return [f"okr databases: SQLite and PostgreSQL ({POSTGRES_URL.rsplit('@', 1)[-1]})"]
    return ["okr databases: SQLite only; PostgreSQL tests SKIPPED (set OKR_TEST_POSTGRES_URL to run them)"]


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for this run's SQLite files."""
    return tmp_path_factory.mktemp("okr")


@pytest.fixture(scope="session", params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    kind: str = request.param
    if kind == "postgresql" and not POSTGRES_URL:
        if os.environ.get("OKR_REQUIRE_POSTGRES"):
            pytest.fail("OKR_REQUIRE_POSTGRES is set but OKR_TEST_POSTGRES_URL is not")
        pytest.skip("PostgreSQL not configured: set OKR_TEST_POSTGRES_URL")
    return kind


def make_settings(url: str, **overrides: object) -> Settings:
    """Test settings: development mode, a fixed secret, New York time, USD."""
    values: dict[str, object] = {
        "database_url": url,
        "mode": "development",
        "secret_key": "test-secret-key-0123456789-abcdefghijklmnop",
        "org_timezone": "America/New_York",
        "org_currency": "USD",
    }
    values.update(overrides)
    return load_settings(**values)


async def scratch_postgres_url(suffix: str) -> str:
    """A fresh, empty database next to the test one (for tests that must not share its tables)."""
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    name = f"{base.database}_okr_{suffix}"
    eng = create_engine(make_settings(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await eng.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def settings(db_kind: str, var_dir: Path) -> Iterator[Settings]:
    """Settings for a migrated database of the kind under test."""
    url = f"sqlite+aiosqlite:///{var_dir / 'test.db'}" if db_kind == "sqlite" else POSTGRES_URL
    s = make_settings(url)
    if db_kind == "postgresql":
        migrate.downgrade(s, "base")  # a previous run may have left tables behind
    migrate.upgrade(s)
    yield s


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """One engine per database for the whole run."""
    eng = create_engine(settings)
    yield eng
    await eng.dispose()


async def empty_tables(engine: AsyncEngine) -> None:
    """Delete every row of every table (children first)."""
    async with engine.begin() as conn:
        tables = [t.name for t in reversed(metadata.sorted_tables)]
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - names come from our metadata


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on empty tables; the tables are emptied again afterwards."""
    async with session_factory(engine)() as session:
        yield session
    await empty_tables(engine)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Close the run by saying plainly what it covered and what it skipped."""
    reports = [r for r in terminalreporter.stats.get("skipped", []) if getattr(r, "longrepr", None)]
    reasons: dict[str, int] = {}
    for r in reports:
        reason = str(r.longrepr[2]) if isinstance(r.longrepr, tuple) else str(r.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(reason.removeprefix("Skipped: "), 0) + 1
    ran_e2e = sum(
        1 for r in terminalreporter.stats.get("passed", []) if "/e2e/" in r.nodeid or "e2e/" in r.nodeid
    )
    terminalreporter.section("okr coverage")
    terminalreporter.write_line(
        "databases: SQLite" + (" and PostgreSQL" if POSTGRES_URL else " only (PostgreSQL tests SKIPPED)")
    )
    terminalreporter.write_line(f"browser tests passed: {ran_e2e}")
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"SKIPPED {count:>4}: {reason}")
