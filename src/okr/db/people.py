"""People, teams, periods, API tokens, web sessions."""

import datetime as dt
import enum

from advanced_alchemy.extensions.litestar.session import SessionModelMixin
from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from okr.db.base import Base


class Role(enum.StrEnum):
    """What a person may do (DESIGN 8)."""

    MEMBER = "member"
    LEADER = "leader"
    FINANCE = "finance"
    ADMIN = "admin"


class PeriodState(enum.StrEnum):
    """A period's life: planning -> active -> closed."""

    PLANNING = "planning"
    ACTIVE = "active"
    CLOSED = "closed"


class Team(Base):
    """A team: sales, marketing, sdr, or another name."""

    name: Mapped[str] = mapped_column(String(64), unique=True)


class Person(Base):
    """Someone in the organisation; may log in when a password is set."""

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    employee_id: Mapped[str | None] = mapped_column(String(64))
    start_date: Mapped[dt.date | None]
    end_date: Mapped[dt.date | None]
    target_bonus: Mapped[int | None] = mapped_column(BigInteger, comment="minor units of the org currency")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    team: Mapped[Team] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint("role in ('member', 'leader', 'finance', 'admin')", name="role"),
        CheckConstraint("target_bonus is null or target_bonus >= 0", name="target_bonus_nonneg"),
    )


class Period(Base):
    """A fiscal quarter such as 2026-Q4; dates are in the organisation's time zone."""

    key: Mapped[str] = mapped_column(String(7), unique=True)
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date]
    state: Mapped[str] = mapped_column(String(16), default=PeriodState.PLANNING)

    __table_args__ = (
        CheckConstraint("state in ('planning', 'active', 'closed')", name="state"),
        CheckConstraint("end_date >= start_date", name="dates"),
    )


class ApiToken(Base):
    """A bearer token that acts as its creator with at most its scopes."""

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class WebSession(SessionModelMixin):
    """Server-side web sessions, stored in the database so several app processes share them."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_session_id", "session_id", unique=True),)
