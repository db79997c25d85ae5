"""Attribution results (DESIGN 3): one run per scope, its credit rows, and who sourced each opportunity.

Credit rows carry no foreign key to the touchpoint, campaign or opportunity they name: they are derived
data, replaced whole by the next run, and such keys would slow the bulk insert and block CRM imports.
"""

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, Final

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Rate, metadata


class RunStatus(enum.StrEnum):
    """Where an attribution run stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"


class AttributionRun(Base):
    """One computation of every model's credit for one scope, with the removal effects it used."""

    scope: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[dt.datetime]
    as_of: Mapped[dt.datetime] = mapped_column(comment="when the data it was computed from was read")
    lookback_days: Mapped[int] = mapped_column(Integer)
    removal_effects: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, comment="per channel: RE and P(-c) as exact fractions and decimals; P; path counts"
    )
    opportunities: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    period_basis: Mapped[str | None] = mapped_column(
        String(80), comment="time zone and fiscal start month its summary's quarters follow; NULL: none"
    )

    __table_args__ = (
        Index("ix_attribution_run_scope", "scope"),
        CheckConstraint("scope in ('pipeline', 'revenue')", name="scope"),
        CheckConstraint("status in ('running', 'succeeded')", name="status"),
    )


STORED_MODELS: Final = (
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
"""The models every run computes, in this order: the presets, the organisation's own milestone weights
(`custom`, see AttributionSetting), and data-driven. Their names are the column prefixes below."""


def _model_columns() -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for model in STORED_MODELS:
        columns += [
            Column(f"{model}_units", BigInteger, nullable=False, comment="weight in units of 10^-10"),
            Column(f"{model}_amount", BigInteger, nullable=False, comment="minor units of `currency`"),
            Column(f"{model}_base", BigInteger, comment="minor units of the base currency; NULL: no rate"),
        ]
    return columns


attribution_credit: Final = Table(
    "attribution_credit",
    metadata,
    # No foreign key to attribution_run: a run writes 300,000 rows, and PostgreSQL checks a foreign key
    # row by row (a quarter of the write). Rows are only written for a run just created and are deleted
    # with it (services.delete_runs); docs/decisions.md.
    Column("run_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("opportunity_id", BigInteger, primary_key=True),
    Column("position", Integer, primary_key=True, comment="the step's place in the journey, from 0"),
    Column("touchpoint_id", BigInteger, comment="NULL: the `unattributed` bucket"),
    Column("campaign_id", BigInteger),
    Column("channel", String(50), nullable=False),
    Column("occurred_at", DateTimeUTC(timezone=True)),
    Column(
        "roles",
        SmallInteger,
        nullable=False,
        comment="bit mask: 1 first, 2 lead-creation, 4 opp-creation, 8 won",
    ),
    Column(
        "period_at",
        DateTimeUTC(timezone=True),
        nullable=False,
        comment="the scope's end: created_at or closed_at",
    ),
    Column("currency", String(3), nullable=False),
    *_model_columns(),
    Index("ix_attribution_credit_run_id_period_at", "run_id", "period_at"),
    Index("ix_attribution_credit_run_id_campaign_id", "run_id", "campaign_id"),
    comment="One journey step of an opportunity in a run, with every model's weight and credit",
)
"""Credit rows (DESIGN 3): one per journey step (or the `unattributed` bucket) and run, wide: each stored
model's weight and amount are columns of the step. A credit row in DESIGN's sense, (opportunity,
touchpoint, campaign, channel, model, scope, weight, amount), is one step read under one model (the
scope is the run's). One wide row instead of one row per model keeps a run's writes to the number of
journey steps, which is what lets a full recompute finish in seconds (docs/decisions.md)."""


def _summary_columns() -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for model in STORED_MODELS:
        columns += [
            Column(
                f"{model}_base",
                BigInteger,
                nullable=False,
                comment="credit, base currency minor units",
            ),
            Column(f"{model}_deals", Integer, nullable=False, comment="deals with a weight above 0"),
        ]
    return columns


attribution_summary: Final = Table(
    "attribution_summary",
    metadata,
    Column("run_id", ForeignKey("attribution_run.id", ondelete="CASCADE"), nullable=False),
    Column("period", String(8), nullable=False, comment="the fiscal quarter of the scope's end, 2026-Q3"),
    Column(
        "kind", String(12), nullable=False, comment="campaign, channel, currency, first, team, influenced"
    ),
    Column("campaign_id", BigInteger, comment="kind campaign and first; NULL: the unattributed bucket"),
    Column("label", String(64), nullable=False, comment="the channel, currency or sourcing team"),
    Column("deals", Integer, nullable=False, comment="deals counted once each"),
    Column("priced", Integer, nullable=False, comment="of them, deals with a base-currency amount"),
    Column("amount", BigInteger, nullable=False, comment="those deals' whole amounts, base currency"),
    *_summary_columns(),
    Index("ix_attribution_summary_run_id_period", "run_id", "period"),
    comment="A run's credit rows summed per quarter, as the campaigns page shows them",
)
"""Per run, quarter and group, the sums the campaigns and compare pages read (see okr.attribution.summary):
written once by the run that made the credit rows, so a quarter's first view needs no aggregation."""


class AttributionSetting(Base):
    """The organisation's attribution settings: lookback, time-decay half life, its own milestone weights.

    One row (the first); none means the defaults. A change is followed by a recompute.
    """

    lookback_days: Mapped[int] = mapped_column(Integer, default=365)
    half_life_days: Mapped[Decimal] = mapped_column(Rate, default=Decimal(7))
    first: Mapped[Decimal] = mapped_column(Rate)
    lead_creation: Mapped[Decimal] = mapped_column(Rate)
    opportunity_creation: Mapped[Decimal] = mapped_column(Rate)
    closed_won: Mapped[Decimal] = mapped_column(Rate)
    middle: Mapped[Decimal] = mapped_column(Rate)
    updated_at: Mapped[dt.datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))


class OpportunitySourcing(Base):
    """Who sourced an opportunity's pipeline (DESIGN 3), per pipeline-scope run (read the current run's)."""

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    sourced_by: Mapped[str] = mapped_column(String(64), comment="marketing, sdr, sales, ... or unattributed")
    influenced_by_marketing: Mapped[bool]
    first_campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(ForeignKey("attribution_run.id", ondelete="CASCADE"))

    __table_args__ = (UniqueConstraint("run_id", "opportunity_id"),)
