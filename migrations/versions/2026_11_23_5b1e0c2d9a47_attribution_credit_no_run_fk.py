"""attribution_credit without a foreign key to attribution_run (a run writes its rows a quarter faster)

Revision ID: 5b1e0c2d9a47
Revises: 1439c1ba8ac2
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b1e0c2d9a47"
down_revision: str | None = "1439c1ba8ac2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK = "fk_attribution_credit_run_id_attribution_run"


def upgrade() -> None:
    with op.batch_alter_table("attribution_credit") as batch:
        batch.drop_constraint(_FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("attribution_credit") as batch:
        batch.create_foreign_key(_FK, "attribution_run", ["run_id"], ["id"], ondelete="CASCADE")
