"""Objectives, key results and check-ins (DESIGN 4)."""

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Percent, Rate, metadata


class KeyResultKind(enum.StrEnum):
    """How a KR's attainment is computed."""

    INCREASE_TO = "increase_to"
    DECREASE_TO = "decrease_to"
    STAY_ABOVE = "stay_above"
    STAY_BELOW = "stay_below"
    MILESTONE = "milestone"


class Confidence(enum.StrEnum):
    """A check-in's confidence call."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


objective_team = Table(
    "objective_team",
    metadata,
    Column("objective_id", ForeignKey("objective.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("team.id", ondelete="RESTRICT"), primary_key=True, index=True),
)

key_result_owner = Table(
    "key_result_owner",
    metadata,
    Column("key_result_id", ForeignKey("key_result.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("person.id", ondelete="RESTRICT"), primary_key=True, index=True),
)


class Objective(Base):
    """A period's objective, owned by one or more teams (a joint one names both)."""

    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    weight: Mapped[Decimal] = mapped_column(Percent, default=Decimal(1))
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[dt.datetime | None]
    # The objective this one was rolled forward from (the previous period's), so rolling forward twice
    # copies nothing twice.
    rolled_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("objective.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class KeyResult(Base):
    """A measurable result: a metric from the KPI library, or manual with check-ins."""

    objective_id: Mapped[int] = mapped_column(ForeignKey("objective.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    start_value: Mapped[Decimal] = mapped_column(Rate)
    target: Mapped[Decimal] = mapped_column(Rate)
    stretch: Mapped[Decimal | None] = mapped_column(Rate)
    weight: Mapped[Decimal] = mapped_column(Percent, default=Decimal(1))
    counts_toward_bonus: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(8), default="manual")
    metric: Mapped[str | None] = mapped_column(String(64))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CheckIn(Base):
    """A value and confidence call on a key result, with a note."""

    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_result.id", ondelete="CASCADE"))
    value: Mapped[Decimal | None] = mapped_column(Rate)
    confidence: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_check_in_key_result_id_created_at", "key_result_id", "created_at"),)
