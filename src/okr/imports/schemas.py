"""What the import API answers and what the admin page shows: results, jobs, row errors, the upload form."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from okr.db.jobs import ImportJob, JobStatus
from okr.imports import core
from okr.imports.services import ImportResult

JobState = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class RowErrorRead:
    """One thing wrong with one row: row number as the file shows it (header = 1), column, reason."""

    row: int
    column: str
    reason: str

    @classmethod
    def of(cls, error: dict[str, Any]) -> "RowErrorRead":
        """From a stored {row, column, reason}."""
        return cls(
            row=int(error.get("row", 0)), column=str(error.get("column", "")), reason=str(error["reason"])
        )


@dataclass(frozen=True, slots=True)
class ImportResultRead:
    """A file imported within the request: rows read, records created and updated."""

    entity: str
    rows: int
    created: int
    updated: int

    @classmethod
    def of(cls, result: ImportResult) -> "ImportResultRead":
        """The API view of an import result."""
        return cls(entity=result.entity, rows=result.rows, created=result.created, updated=result.updated)


@dataclass(frozen=True, slots=True)
class ProblemItem:
    """One reason a request was refused: a file's row and column, or a request field."""

    reason: str
    row: int | None = None
    column: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """A refused request (RFC 9457 problem); for a rejected file `errors` lists every bad row."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running import has read: rows, and bytes when the file's position is known."""

    rows: int
    bytes_read: int | None


@dataclass(frozen=True, slots=True)
class ImportJobRead:
    """A background import: its state, how far it has read, and its outcome."""

    id: int
    entity: str
    file_name: str
    file_size: int | None
    status: JobState
    rows: int
    bytes_read: int
    percent: int | None
    created: int
    updated: int
    error_count: int
    errors: list[RowErrorRead]
    message: str | None
    actor: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, job: ImportJob, live: Progress | None = None) -> "ImportJobRead":
        """The job as stored, with the running process's newer progress when it has some."""
        rows, bytes_read = job.rows, job.bytes_read
        if live is not None and job.status == JobStatus.RUNNING:
            rows = max(rows, live.rows)
            bytes_read = max(bytes_read, live.bytes_read or 0)
        status: JobState = job.status  # type: ignore[assignment]
        return cls(
            id=job.id,
            entity=job.entity,
            file_name=job.file_name,
            file_size=job.file_size,
            status=status,
            rows=rows,
            bytes_read=bytes_read,
            percent=_percent(status, bytes_read, job.file_size),
            created=job.created,
            updated=job.updated,
            error_count=job.error_count,
            errors=[RowErrorRead.of(e) for e in job.errors or []],
            message=job.message,
            actor=job.actor,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )

    @property
    def done(self) -> bool:
        """True once the job has succeeded or failed (pages stop polling)."""
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def fraction(self) -> Decimal | None:
        """How much of the file has been read, 0 to 1 (None when unknown)."""
        return None if self.percent is None else Decimal(self.percent) / 100

    @property
    def more_errors(self) -> int:
        """Errors counted beyond the ones kept."""
        return max(self.error_count - len(self.errors), 0)

    @property
    def size_text(self) -> str:
        """The file's size as people read it: 12 KB, 3.4 MB."""
        return format_bytes(self.file_size)

    @property
    def read_text(self) -> str:
        """How much of the file has been read, as people read it."""
        return format_bytes(self.bytes_read)


def _percent(status: str, bytes_read: int, size: int | None) -> int | None:
    if status == JobStatus.SUCCEEDED:
        return 100
    if not size or bytes_read <= 0:
        return 0 if status == JobStatus.QUEUED else None
    # Whole percents, rounded down: 100 only once the job has finished.
    return min(bytes_read * 100 // size, 99)


def format_bytes(size: int | None) -> str:
    """12 bytes, 12 KB, 3.4 MB, 1.2 GB (decimal units, one place above a kilobyte)."""
    if size is None:
        return "–"
    if size < 1000:
        return f"{size:,} byte" + ("" if size == 1 else "s")
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "KB" else f"{value:,.1f} {unit}"
    return f"{size:,} bytes"  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class EntityChoice:
    """One import entity as the upload form lists it, with its columns."""

    name: str
    file_name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]


def entity_choices() -> list[EntityChoice]:
    """The eight DESIGN 7 entities in load order, with their required and optional columns."""
    choices = []
    for name in core.ENTITIES:
        spec = core.SPECS[name]
        required = spec.required
        optional = tuple(c for c in spec.column_names if c not in required)
        choices.append(
            EntityChoice(name=name, file_name=spec.file_name, required=required, optional=optional)
        )
    return choices


@dataclass(slots=True)
class UploadForm:
    """The admin page's upload form as re-rendered: the entity picked and the error beside each field."""

    entity: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
