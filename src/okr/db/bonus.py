"""The joint bonus (DESIGN 6): plan versions, runs with their lines and traces, the ledger, inquiries.

Amounts are integer minor units of the organisation's currency. A run keeps the inputs it read (JSON) and
their checksum; its lines and traces are what `okr.bonus.engine` returned for those inputs. The ledger is
append-only: nothing updates or deletes an entry once written.
"""

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base, Rate


class PlanStatus(enum.StrEnum):
    """A plan version: drafted by a leader, approved by an admin, superseded by a later approval."""

    DRAFT = "draft"
    APPROVED = "approved"
    SUPERSEDED = "superseded"


class RunState(enum.StrEnum):
    """DESIGN 6.2: draft -> submitted -> approved -> locked."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    LOCKED = "locked"


class RunStatus(enum.StrEnum):
    """Whether a run's computation is under way, done, or failed (its state is separate)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class LineKind(enum.StrEnum):
    """A run line, and the ledger entry it becomes at lock (DESIGN 6.3)."""

    EARNING = "earning"
    ADJUSTMENT = "adjustment"
    CLAWBACK = "clawback"
    CARRY_FORWARD = "carry_forward"


class InquiryStatus(enum.StrEnum):
    """An inquiry is open until finance answers it; the person may reopen it by replying."""

    OPEN = "open"
    ANSWERED = "answered"


class BonusPlan(Base):
    """One version of a period's bonus plan (DESIGN 6.1). A change is a new row; rows are never edited,
    except the status and approval stamps of a draft."""

    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default=PlanStatus.DRAFT)
    funding_rate: Mapped[Decimal] = mapped_column(Rate)
    pipeline_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal(0))
    pool_cap: Mapped[int | None] = mapped_column(BigInteger, comment="minor units; NULL: no cap")
    kr_cap: Mapped[Decimal] = mapped_column(Rate)
    gate_curve: Mapped[list[list[str]]] = mapped_column(JSON, comment="[[score, multiplier], ...] as text")
    teams: Mapped[list[dict[str, str]]] = mapped_column(JSON, comment="[{team, share, rule}, ...]")
    model: Mapped[str] = mapped_column(String(32), comment="attribution model for marketers' credit")
    scope: Mapped[str] = mapped_column(String(16), comment="attribution scope for marketers' credit")
    count_overlay: Mapped[bool] = mapped_column(default=False)
    cap_amount: Mapped[int | None] = mapped_column(BigInteger, comment="per-person cap, minor units")
    cap_multiple: Mapped[Decimal | None] = mapped_column(Rate, comment="per-person cap, x target bonus")
    prorate: Mapped[bool] = mapped_column(default=True)
    leftover_policy: Mapped[str] = mapped_column(String(16))
    clawback_days: Mapped[int] = mapped_column(Integer, default=90)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    approved_at: Mapped[dt.datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("period_id", "version"),
        CheckConstraint("status in ('draft', 'approved', 'superseded')", name="status"),
        CheckConstraint("leftover_policy in ('carry_forward', 'return')", name="leftover_policy"),
        CheckConstraint("scope in ('pipeline', 'revenue')", name="scope"),
        CheckConstraint("clawback_days >= 0", name="clawback_days"),
    )


class BonusRun(Base):
    """One computation of a period's bonus from stored inputs, and where it stands in its lifecycle."""

    period_id: Mapped[int] = mapped_column(ForeignKey("period.id", ondelete="RESTRICT"))
    number: Mapped[int] = mapped_column(Integer, comment="1, 2, ... within the period")
    plan_id: Mapped[int] = mapped_column(ForeignKey("bonus_plan.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(12), default=RunState.DRAFT)
    status: Mapped[str] = mapped_column(String(12), default=RunStatus.RUNNING)
    progress: Mapped[str | None] = mapped_column(String(200), comment="what the computation is doing")
    error: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    as_of: Mapped[dt.datetime] = mapped_column(comment="when the data it read was read")
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="everything the engine read")
    inputs_checksum: Mapped[str | None] = mapped_column(String(64), comment="sha256 of the canonical inputs")
    results_checksum: Mapped[str | None] = mapped_column(
        String(64), comment="sha256 of the canonical results"
    )
    summary: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, comment="pool, formula, team pools, leftover"
    )
    pool: Mapped[int | None] = mapped_column(BigInteger)
    paid: Mapped[int | None] = mapped_column(BigInteger, comment="sum of the people's payable amounts")
    leftover: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    computed_at: Mapped[dt.datetime | None]
    submitted_at: Mapped[dt.datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    approved_at: Mapped[dt.datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    locked_at: Mapped[dt.datetime | None]
    locked_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("period_id", "number"),
        CheckConstraint("state in ('draft', 'submitted', 'approved', 'locked')", name="state"),
        CheckConstraint("status in ('running', 'done', 'failed')", name="status"),
    )


class BonusLine(Base):
    """One line of a run for one person: an earning, an adjustment, a clawback or a balance carried."""

    run_id: Mapped[int] = mapped_column(ForeignKey("bonus_run.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    credit: Mapped[int | None] = mapped_column(BigInteger, comment="earning: the person's credit")
    proration: Mapped[Decimal | None] = mapped_column(Rate)
    weight: Mapped[str | None] = mapped_column(String(64), comment="earning: the weight under the rule")
    share: Mapped[str | None] = mapped_column(String(64), comment="earning: exact share of the team pool")
    cap: Mapped[int | None] = mapped_column(BigInteger)
    capped: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text, comment="adjustment reason, clawback deal, ...")
    opportunity_id: Mapped[int | None] = mapped_column(BigInteger, comment="clawback: the reversed deal")
    entry_id: Mapped[int | None] = mapped_column(BigInteger, comment="adjustment: its pending ledger entry")

    __table_args__ = (
        Index("ix_bonus_line_run_id_person_id", "run_id", "person_id"),
        CheckConstraint("kind in ('earning', 'adjustment', 'clawback', 'carry_forward')", name="kind"),
    )


class BonusTrace(Base):
    """A person's earning split over the deals (and, for marketers, the campaigns) it came from."""

    run_id: Mapped[int] = mapped_column(ForeignKey("bonus_run.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(BigInteger)
    opportunity_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, comment="NULL: a rep's revenue split")
    credit: Mapped[int] = mapped_column(BigInteger, comment="the person's credit on this deal/campaign")
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_bonus_trace_run_id_person_id", "run_id", "person_id"),
        Index("ix_bonus_trace_opportunity_id", "opportunity_id"),
    )


class LedgerEntry(Base):
    """DESIGN 6.3's append-only ledger per person. Adjustments wait (run_id NULL) until a run is locked;
    the other kinds are written when the run that holds them is locked."""

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    opportunity_id: Mapped[int | None] = mapped_column(BigInteger)
    period_id: Mapped[int | None] = mapped_column(ForeignKey("period.id", ondelete="RESTRICT"))
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("bonus_run.id", ondelete="RESTRICT"), comment="the locked run it was posted in"
    )
    source_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("bonus_run.id", ondelete="RESTRICT"), comment="clawback: the locked run that paid the deal"
    )
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_ledger_entry_run_id", "run_id"),
        CheckConstraint("kind in ('earning', 'adjustment', 'clawback', 'carry_forward')", name="kind"),
    )


class Inquiry(Base):
    """A person's question on a line of a run; finance answers in the thread."""

    run_id: Mapped[int] = mapped_column(ForeignKey("bonus_run.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    line_id: Mapped[int | None] = mapped_column(BigInteger, comment="the line asked about; NULL: the whole")
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=InquiryStatus.OPEN)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    __table_args__ = (CheckConstraint("status in ('open', 'answered')", name="status"),)


class InquiryMessage(Base):
    """One message of an inquiry's thread."""

    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
