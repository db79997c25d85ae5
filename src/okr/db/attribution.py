"""Attribution results (DESIGN 3): one run per scope, its credit rows, and who sourced each opportunity.

Credit rows carry no foreign key to the touchpoint, campaign or opportunity they name: they are derived
data, replaced whole by the next run, and such keys would slow the bulk insert and block CRM imports.
"""

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Rate


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

    __table_args__ = (
        Index("ix_attribution_run_scope", "scope"),
        CheckConstraint("scope in ('pipeline', 'revenue')", name="scope"),
        CheckConstraint("status in ('running', 'succeeded')", name="status"),
    )


class AttributionCredit(Base):
    """One touch's (or the `unattributed` bucket's) share of an opportunity under one model and scope."""

    run_id: Mapped[int] = mapped_column(ForeignKey("attribution_run.id", ondelete="CASCADE"))
    opportunity_id: Mapped[int] = mapped_column(BigInteger)
    touchpoint_id: Mapped[int | None] = mapped_column(BigInteger)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    weight: Mapped[Decimal] = mapped_column(Rate)
    amount: Mapped[int] = mapped_column(BigInteger, comment="minor units of `currency`")
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (
        Index("ix_attribution_credit_run_id_model_campaign_id", "run_id", "model", "campaign_id"),
        Index("ix_attribution_credit_run_id_model_opportunity_id", "run_id", "model", "opportunity_id"),
        Index("ix_attribution_credit_run_id_model_channel", "run_id", "model", "channel"),
    )


class OpportunitySourcing(Base):
    """Who sourced an opportunity's pipeline (DESIGN 3), from the latest pipeline-scope run."""

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"), unique=True)
    sourced_by: Mapped[str] = mapped_column(String(64), comment="marketing, sdr, sales, ... or unattributed")
    influenced_by_marketing: Mapped[bool]
    first_campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(ForeignKey("attribution_run.id", ondelete="CASCADE"), index=True)

    __table_args__ = (Index("ix_opportunity_sourcing_sourced_by", "sourced_by"),)
