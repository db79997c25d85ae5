"""The migrations build exactly the models' schema, and downgrade to an empty database."""

from pathlib import Path

import pytest
from sqlalchemy import inspect
from tests.conftest import POSTGRES_URL, make_settings, scratch_postgres_url

from okr.db import migrate
from okr.db.engine import create_engine


async def _tables(url: str) -> set[str]:
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_upgrade_matches_models_and_downgrade_empties(kind: str, tmp_path: Path) -> None:
    if kind == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not configured: set OKR_TEST_POSTGRES_URL")
        url = await scratch_postgres_url("migrations")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    settings = make_settings(url)
    migrate.upgrade(settings)
    assert await migrate.schema_diff(settings) == []
    assert "opportunity" in await _tables(url)
    migrate.downgrade(settings, "base")
    assert await _tables(url) <= {"alembic_version"}
    migrate.upgrade(settings)  # and up again from base
    assert await migrate.schema_diff(settings) == []
