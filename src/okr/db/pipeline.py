"""CRM pipeline data: FX rates, campaigns, accounts, leads, touchpoints, opportunities, splits."""

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Percent, Rate


class OpportunityStatus(enum.StrEnum):
    """Where a deal stands."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ForecastCategory(enum.StrEnum):
    """The rep's forecast call on an open deal."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"


class SplitKind(enum.StrEnum):
    """Revenue splits sum to 100 % per opportunity; overlay credit comes on top."""

    REVENUE = "revenue"
    OVERLAY = "overlay"


class FxRate(Base):
    """How many units of the org currency one unit of `currency` is worth, from `valid_from` on."""

    currency: Mapped[str] = mapped_column(String(3))
    rate_to_base: Mapped[Decimal] = mapped_column(Rate)
    valid_from: Mapped[dt.date]

    __table_args__ = (
        UniqueConstraint("currency", "valid_from"),
        CheckConstraint("rate_to_base > 0", name="rate_positive"),
    )


class Campaign(Base):
    """A marketing (or SDR, or sales) activity; it belongs to its owner's team."""

    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(50), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    start_date: Mapped[dt.date | None]
    end_date: Mapped[dt.date | None]

    __table_args__ = (CheckConstraint("cost >= 0", name="cost_nonneg"),)


class Account(Base):
    """A company."""

    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    segment: Mapped[str | None] = mapped_column(String(50), index=True)
    industry: Mapped[str | None] = mapped_column(String(100))


class Lead(Base):
    """A person at an account, with the funnel timestamps."""

    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]
    mql_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    accepted_at: Mapped[dt.datetime | None]
    rejected_at: Mapped[dt.datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(String(100))
    sql_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    recycled_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_lead_created_at", "created_at"),
        Index("ix_lead_owner_id_mql_at", "owner_id", "mql_at"),
    )


class Touchpoint(Base):
    """A lead's interaction with a campaign at a time."""

    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="RESTRICT"))
    occurred_at: Mapped[dt.datetime]
    kind: Mapped[str | None] = mapped_column(String(50))

    __table_args__ = (
        Index("ix_touchpoint_lead_id_occurred_at", "lead_id", "occurred_at"),
        Index("ix_touchpoint_campaign_id_occurred_at", "campaign_id", "occurred_at"),
    )


class Opportunity(Base):
    """A deal at an account."""

    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger, comment="minor units of `currency`")
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    closed_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(8))
    stage: Mapped[str | None] = mapped_column(String(100))
    probability: Mapped[Decimal | None] = mapped_column(Percent, comment="percent, 0 to 100")
    forecast_category: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_opportunity_status_closed_at", "status", "closed_at"),
        CheckConstraint("amount >= 0", name="amount_nonneg"),
        CheckConstraint("status in ('open', 'won', 'lost')", name="status"),
        CheckConstraint(
            "probability is null or (probability >= 0 and probability <= 100)", name="probability"
        ),
        CheckConstraint(
            "forecast_category is null or forecast_category in ('pipeline', 'best_case', 'commit', 'closed')",
            name="forecast_category",
        ),
    )


class OpportunitySplit(Base):
    """A person's credit on an opportunity (percent of its amount)."""

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    percent: Mapped[Decimal] = mapped_column(Percent)

    __table_args__ = (
        UniqueConstraint("opportunity_id", "person_id", "kind"),
        CheckConstraint("kind in ('revenue', 'overlay')", name="kind"),
        CheckConstraint("percent > 0 and percent <= 100", name="percent"),
    )
