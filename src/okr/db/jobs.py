"""Background jobs: one row per uploaded import file, its progress and its outcome."""

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okr.db.base import Base


class JobStatus(enum.StrEnum):
    """Where an import job stands: queued -> running -> succeeded or failed."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ImportJob(Base):
    """One file uploaded from the admin page or the API and imported in the background."""

    entity: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(255))
    file_size: Mapped[int | None] = mapped_column(BigInteger, comment="bytes")
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    rows: Mapped[int] = mapped_column(Integer, default=0, comment="rows read so far")
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON, comment="the first 1,000 {row, column, reason}"
    )
    message: Mapped[str | None] = mapped_column(String(1000), comment="why it failed, in plain words")
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(String(320), comment="email, or 'email (token NAME)'")
    runner: Mapped[str | None] = mapped_column(
        String(200), comment="host:pid:nonce of the process running it (recovery after a crash)"
    )
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_import_job_created_at", "created_at"),
        Index("ix_import_job_status", "status"),
        CheckConstraint("status in ('queued', 'running', 'succeeded', 'failed')", name="status"),
    )
