"""The lead SLA policy per period, the rejection reasons, and saved funnel plans (DESIGN 5)."""

import datetime as dt
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Rate

DEFAULT_REASONS: Final = (
    "no budget",
    "no timeline",
    "wrong persona",
    "bad data",
    "duplicate",
    "competitor",
    "other",
)
"""DESIGN 5's reject reasons, the list a new organisation starts with."""


class SlaPolicy(Base):
    """A period's SLA between marketing and sales: how fast sales follows up an MQL (business hours in the
    organisation's time zone), the acceptance rate sales aims for, and the MQLs marketing commits to."""

    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="CASCADE"), unique=True)
    follow_up_hours: Mapped[int] = mapped_column(Integer, default=24)
    weekdays: Mapped[list[int]] = mapped_column(JSON, comment="working days, 0 Monday .. 6 Sunday")
    day_start_minute: Mapped[int] = mapped_column(Integer, default=9 * 60, comment="local, from midnight")
    day_end_minute: Mapped[int] = mapped_column(Integer, default=17 * 60, comment="local, 1440 = midnight")
    acceptance_target: Mapped[Decimal] = mapped_column(Rate, comment="0.9 for 90 %")
    mql_commitment: Mapped[int] = mapped_column(
        Integer, default=0, comment="MQLs per month marketing delivers"
    )
    updated_at: Mapped[dt.datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint("follow_up_hours > 0", name="follow_up_hours"),
        CheckConstraint(
            "day_start_minute >= 0 and day_start_minute < day_end_minute and day_end_minute <= 1440",
            name="day_window",
        ),
        CheckConstraint("acceptance_target >= 0 and acceptance_target <= 1", name="acceptance_target"),
        CheckConstraint("mql_commitment >= 0", name="mql_commitment"),
    )


class RejectionReason(Base):
    """One reason a rep may give for rejecting an MQL; retired reasons stay for the leads that carry them."""

    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)


class FunnelPlan(Base):
    """A saved reverse-waterfall plan for a period: the revenue target, the rates used, what they give."""

    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    revenue_target: Mapped[int] = mapped_column(BigInteger, comment="minor units of the org currency")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, comment="rates and deal size used, as decimal text")
    results: Mapped[dict[str, Any]] = mapped_column(JSON, comment="deals, SQLs, accepted, MQLs, leads, ...")
    objective_id: Mapped[int | None] = mapped_column(ForeignKey("objective.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))

    __table_args__ = (CheckConstraint("revenue_target > 0", name="revenue_target"),)
