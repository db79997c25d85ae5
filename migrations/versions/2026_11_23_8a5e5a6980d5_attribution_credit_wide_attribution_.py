"""attribution credit: one wide row per journey step; attribution settings

Credit rows are derived data: the old runs and rows are dropped (a recompute makes them again).

Revision ID: 8a5e5a6980d5
Revises: 25c2e6d573ef
Create Date: 2026-11-23 01:47:36.861799
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "8a5e5a6980d5"
down_revision: str | None = "25c2e6d573ef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODELS = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "full_path",
    "custom",
    "data_driven",
)
RUN_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"],
        ["attribution_run.id"],
        name=op.f(f"fk_{table}_run_id_attribution_run"),
        ondelete="CASCADE",
    )


def _sourcing(*, per_run: bool) -> None:
    op.create_table(
        "opportunity_sourcing",
        sa.Column("id", RUN_ID, sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("opportunity_id", RUN_ID, nullable=False),
        sa.Column(
            "sourced_by",
            sa.String(length=64),
            nullable=False,
            comment="marketing, sdr, sales, ... or unattributed",
        ),
        sa.Column("influenced_by_marketing", sa.Boolean(), nullable=False),
        sa.Column("first_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["opportunity_id"],
            ["opportunity.id"],
            name=op.f("fk_opportunity_sourcing_opportunity_id_opportunity"),
            ondelete="CASCADE",
        ),
        _run_fk("opportunity_sourcing"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_sourcing")),
        sa.UniqueConstraint("run_id", "opportunity_id", name=op.f("uq_opportunity_sourcing_run_id"))
        if per_run
        else sa.UniqueConstraint("opportunity_id", name=op.f("uq_opportunity_sourcing_opportunity_id")),
    )
    if not per_run:
        op.create_index("ix_opportunity_sourcing_run_id", "opportunity_sourcing", ["run_id"])
        op.create_index("ix_opportunity_sourcing_sourced_by", "opportunity_sourcing", ["sourced_by"])


def upgrade() -> None:
    # Derived data: every run is dropped (a recompute makes them again).
    op.drop_table("opportunity_sourcing")
    op.drop_table("attribution_credit")
    op.execute("DELETE FROM attribution_run")
    _sourcing(per_run=True)
    model_columns = []
    for m in MODELS:
        model_columns += [
            sa.Column(f"{m}_units", sa.BigInteger(), nullable=False, comment="weight in units of 10^-10"),
            sa.Column(f"{m}_amount", sa.BigInteger(), nullable=False, comment="minor units of `currency`"),
            sa.Column(
                f"{m}_base",
                sa.BigInteger(),
                nullable=True,
                comment="minor units of the base currency; NULL: no rate",
            ),
        ]
    op.create_table(
        "attribution_credit",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("opportunity_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "position", sa.Integer(), nullable=False, comment="the step's place in the journey, from 0"
        ),
        sa.Column("touchpoint_id", sa.BigInteger(), nullable=True, comment="NULL: the `unattributed` bucket"),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("occurred_at", UTC, nullable=True),
        sa.Column(
            "roles",
            sa.SmallInteger(),
            nullable=False,
            comment="bit mask: 1 first, 2 lead-creation, 4 opp-creation, 8 won",
        ),
        sa.Column("period_at", UTC, nullable=False, comment="the scope's end: created_at or closed_at"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *model_columns,
        _run_fk("attribution_credit"),
        sa.PrimaryKeyConstraint("run_id", "opportunity_id", "position", name=op.f("pk_attribution_credit")),
        comment="One journey step of an opportunity in a run, with every model's weight and credit",
    )
    op.create_index(
        "ix_attribution_credit_run_id_campaign_id", "attribution_credit", ["run_id", "campaign_id"]
    )
    op.create_index("ix_attribution_credit_run_id_period_at", "attribution_credit", ["run_id", "period_at"])
    op.create_table(
        "attribution_setting",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False, start=1, increment=1),
            nullable=False,
        ),
        sa.Column("lookback_days", sa.Integer(), nullable=False),
        sa.Column("half_life_days", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("first", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("lead_creation", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("opportunity_creation", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("closed_won", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("middle", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("updated_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["person.id"],
            name=op.f("fk_attribution_setting_updated_by_id_person"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_setting")),
    )


def downgrade() -> None:
    op.drop_table("attribution_setting")
    op.drop_table("opportunity_sourcing")
    op.drop_table("attribution_credit")
    op.execute("DELETE FROM attribution_run")
    _sourcing(per_run=False)
    op.create_table(
        "attribution_credit",
        sa.Column("id", RUN_ID, sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("opportunity_id", sa.BigInteger(), nullable=False),
        sa.Column("touchpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False, comment="minor units of `currency`"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _run_fk("attribution_credit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_credit")),
    )
    for name, column in (
        ("campaign_id", "campaign_id"),
        ("channel", "channel"),
        ("opportunity_id", "opportunity_id"),
    ):
        op.create_index(
            f"ix_attribution_credit_run_id_model_{name}", "attribution_credit", ["run_id", "model", column]
        )
