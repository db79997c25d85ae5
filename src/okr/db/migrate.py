"""Run Alembic from Python: `okr db upgrade`, the tests, and `make run` share this."""

from typing import Any

from advanced_alchemy.types import GUID
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Identity
from sqlalchemy.engine import Connection

from okr.db.engine import create_engine
from okr.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def compare_type(
    ctx: Any, inspected: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic type comparison, minus what SQLite cannot reflect (a GUID reads back as NUMERIC(16))."""
    if ctx.dialect.name == "sqlite" and isinstance(metadata_type, GUID):
        return False
    return None


def _sqlite_compare_server_default(ctx: Any, inspected: Any, metadata_column: Any, *_: Any) -> bool | None:
    # SQLite has no IDENTITY: its INTEGER PRIMARY KEY is one, so there is nothing to compare.
    if isinstance(metadata_column.server_default, Identity):
        return False
    return None


def compare_options(dialect: str) -> dict[str, Any]:
    """How autogenerate compares columns on this dialect (the same in env.py and the schema test)."""
    default: Any = _sqlite_compare_server_default if dialect == "sqlite" else True
    return {"compare_type": compare_type, "compare_server_default": default}


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointed at okr's migrations and the configured database."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    """Migrate the database down to `revision` (`base` empties it)."""
    command.downgrade(alembic_config(settings), revision)


def current(settings: Settings) -> None:
    """Print the database's current revision."""
    command.current(alembic_config(settings))


def revision(settings: Settings, message: str) -> None:
    """Autogenerate a new revision from the models."""
    command.revision(alembic_config(settings), message=message, autogenerate=True)


async def schema_diff(settings: Settings) -> list[Any]:
    """What autogenerate would change between the database and the models (empty when they match)."""
    from okr.db.models import metadata

    def _diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts=compare_options(conn.dialect.name))
        return list(compare_metadata(ctx, metadata))

    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff)
    finally:
        await engine.dispose()
