"""Imports from the web and the API: uploads spooled to disk, and a background runner that imports them.

An upload is streamed to a file under `var/uploads/<runner>/` (never held in memory whole) and
deleted when its import ends. The runner is an asyncio task per job in the app process, holding
one lock so a process runs at most one import at a time (imports are heavy writers). Each job has
a row in `import_job`, written in short transactions of its own; the import itself is one more
transaction that also marks the job succeeded, so a job says "succeeded" exactly when its rows are
committed.

Progress: on PostgreSQL each batch's progress is written to the job row in a separate short
transaction, so every process sees it while the import's transaction is open. On SQLite that
write would wait on the import's own write lock, so progress is kept in memory (`live`) for pages
served by the same process and stored once, at the end.

Recovery: every runner holds an exclusive lock on `var/uploads/<runner>/.lock` while it lives. At
start-up a runner marks failed the unfinished jobs whose runner's lock is free or gone (its process
died), and removes that runner's folder. Processes sharing a database must share `var/uploads`.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import (  # type: ignore[import-untyped]
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
)
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okr.attribution.parallel import run_recompute
from okr.db.engine import create_engine, resolve_url, session_factory, write_intent
from okr.db.jobs import ImportJob, JobStatus
from okr.imports import core
from okr.imports.schemas import ImportJobRead, Progress
from okr.imports.services import ImportRejected, ImportResult, ProgressCallback, import_csv, import_json
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound, OkrError, ValidationFailed
from okr.settings import PROJECT_ROOT, Settings

log = logging.getLogger("okr.imports")

MB: Final = 1024 * 1024
MAX_UPLOAD_BYTES: Final = 200 * MB
# The route's body limit: the file's own limit plus room for the multipart framing and form fields.
MAX_BODY_BYTES: Final = MAX_UPLOAD_BYTES + MB
UPLOAD_ROOT: Final = PROJECT_ROOT / "var" / "uploads"
RECENT_JOBS: Final = 20
MAX_STORED_ERRORS: Final = 1000
STOPPED: Final = "The server stopped during the import; upload the file again."
INTERNAL: Final = (
    "The import stopped because of an error on our side (it was logged). Try again, and tell your "
    "administrator if it keeps happening."
)
CSV_TYPES: Final = frozenset({"text/csv", "application/csv", "text/plain", "application/octet-stream"})
JSON_TYPES: Final = frozenset({"application/json"})
MULTIPART: Final = "multipart/form-data"
_FIELD_LIMIT = 4096  # bytes kept of a form field that is not the file
_WRITE_CHUNK = MB
_LOCK_NAME = ".lock"

Kind = Literal["csv", "json"]


# -- errors ----------------------------------------------------------------------------------------


class UploadRefused(OkrError):
    """An upload that cannot be imported; `field` is the form field the message belongs beside."""

    def __init__(self, detail: str, *, field: str = "file") -> None:
        super().__init__(detail, errors=[{"field": field, "reason": detail}])
        self.field = field


class UploadInvalid(UploadRefused, ValidationFailed):
    """No file, an empty file, an unknown entity, a body that is not a form."""

    status_code = 422
    title = "Invalid input"


class UploadTooLarge(UploadRefused):
    """The file is over the size limit."""

    status_code = 413
    title = "Too large"


class UnsupportedUpload(UploadRefused):
    """The request body is neither a form upload, CSV nor JSON."""

    status_code = 415
    title = "Unsupported media type"


class ImportsBusy(OkrError):
    """Another import holds the database (SQLite: one writer at a time)."""

    status_code = 503
    title = "Busy"


def too_large(limit: int, kind: Kind | None = None) -> UploadTooLarge:
    """The 413 for a file over `limit` bytes, saying what to do instead."""
    if kind == "json":
        return UploadTooLarge(
            f"The JSON file is larger than {limit // MB} MB, the limit for JSON (it is read whole): "
            "send it as CSV, which has no such limit up to "
            f"{MAX_UPLOAD_BYTES // MB} MB, or split it."
        )
    return UploadTooLarge(
        f"The file is larger than the {limit // MB} MB upload limit: split it into smaller files."
    )


# -- limits and actors -------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportLimits:
    """How big an upload may be, and up to what size the API imports within the request."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # import_json reads the whole array into memory, so JSON has a lower limit than streamed CSV.
    max_json_bytes: int = 20 * MB
    inline_max_bytes: int = 5 * MB
    inline_max_rows: int = 20_000


def describe_actor(email: str, token_name: str | None = None) -> str:
    """Who imported, as the audit log and the job show it: the email, and the API token's name if any."""
    label = email if token_name is None else f"{email} (token {token_name})"
    return label[:320]


def entity_from_file_name(name: str) -> str | None:
    """The entity a file name announces: `campaigns.csv`, `leads-2026-10.csv`, `People.json`."""
    stem = Path(name).name.lower()
    for suffix in (".csv", ".json", ".txt"):
        stem = stem.removesuffix(suffix)
    best: str | None = None
    for entity in core.ENTITIES:
        named = stem == entity or (stem.startswith(entity) and not stem[len(entity)].isalpha())
        if named and (best is None or len(entity) > len(best)):
            best = entity
    return best


def safe_file_name(name: str, default: str) -> str:
    """A name for the spooled file and for display: no folders, no odd characters, at most 120."""
    base = Path(name.replace("\\", "/")).name.strip()
    cleaned = re.sub(r"[^\w.\- ()]+", "_", base).strip(" .")[:120]
    return cleaned or default


# -- spooling uploads to disk ------------------------------------------------------------------------


@dataclass(slots=True)
class Upload:
    """A file received and written to disk, waiting to be imported; `discard` deletes it."""

    path: Path
    file_name: str
    size: int
    lines: int
    kind: Kind
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete the spooled file (and its folder)."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


class _Sink:
    """One file being written: counts bytes and lines, refuses past the limit, writes in 1 MB chunks."""

    def __init__(self, path: Path, *, limit: int, kind: Kind) -> None:
        self.path = path
        self.limit = limit
        self.kind = kind
        self.size = 0
        self.lines = 0
        self._pending = bytearray()
        self._fh: IO[bytes] = path.open("wb")

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit, self.kind)
        self._pending += data
        if len(self._pending) >= _WRITE_CHUNK:
            await self._drain()

    async def _drain(self) -> None:
        chunk = bytes(self._pending)
        self._pending.clear()
        self.lines += chunk.count(b"\n")
        await asyncio.to_thread(self._fh.write, chunk)

    async def close(self) -> None:
        if self._pending:
            await self._drain()
        self._fh.close()


def _kind_of(file_name: str, content_type: str | None) -> Kind:
    if file_name.lower().endswith(".json") or content_type in JSON_TYPES:
        return "json"
    return "csv"


class Spooler:
    """Receives one upload into its own folder under the runner's folder."""

    def __init__(self, folder: Path, limits: ImportLimits) -> None:
        self.limits = limits
        self.folder = folder / f"in-{secrets.token_hex(8)}"
        # The form's other fields, kept even when the upload is refused (the form shows them again).
        self.fields: dict[str, str] = {}

    def _limit(self, kind: Kind) -> int:
        if kind == "json":
            return min(self.limits.max_json_bytes, self.limits.max_upload_bytes)
        return self.limits.max_upload_bytes

    def _sink(self, name: str, kind: Kind) -> _Sink:
        self.folder.mkdir(parents=True, exist_ok=True)
        return _Sink(self.folder / name, limit=self._limit(kind), kind=kind)

    async def body(
        self,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        options: Mapping[str, str],
        file_name: str,
        announced: int | None = None,
    ) -> Upload:
        """Write a request body to disk: a multipart form's `file` field, or a raw CSV or JSON body."""
        try:
            if content_type == MULTIPART:
                return await self._multipart(chunks, options.get("boundary"))
            if content_type in JSON_TYPES or content_type in CSV_TYPES:
                kind: Kind = "json" if content_type in JSON_TYPES else "csv"
                if announced is not None and announced > self._limit(kind):
                    raise too_large(self._limit(kind), kind)
                return await self._raw(chunks, name=file_name, kind=kind)
            raise UnsupportedUpload(
                f"Send the file as multipart/form-data (field 'file'), text/csv or application/json, "
                f"not {content_type or 'a body without a Content-Type'}."
            )
        except RequestEntityTooLarge:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise too_large(self.limits.max_upload_bytes) from None
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    async def _raw(self, chunks: AsyncIterator[bytes], *, name: str, kind: Kind) -> Upload:
        sink = self._sink(safe_file_name(name, f"upload.{kind}"), kind)
        try:
            async for chunk in chunks:
                if chunk:
                    await sink.write(chunk)
        finally:
            await sink.close()
        if not sink.size:
            raise UploadInvalid("The request body is empty: send the file's contents.")
        return Upload(path=sink.path, file_name=sink.path.name, size=sink.size, lines=sink.lines, kind=kind)

    async def _multipart(self, chunks: AsyncIterator[bytes], boundary: str | None) -> Upload:
        if not boundary:
            raise UploadInvalid("The form upload has no multipart boundary in its Content-Type.")
        fields = self.fields
        sink: _Sink | None = None
        chosen: str | None = None
        current: _Sink | bytearray | None = None
        segment: MultipartSegment | None = None
        try:
            with PushMultipartParser(boundary, max_segment_count=50) as parser:
                async for chunk in chunks:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            segment = event
                            if event.filename is not None and event.name == "file" and sink is None:
                                chosen = event.filename
                                kind = _kind_of(event.filename, event.content_type)
                                name = safe_file_name(event.filename, f"upload.{kind}")
                                sink = current = self._sink(name, kind)
                            elif event.filename is not None:
                                current = None  # another file field: read past it
                            else:
                                current = bytearray()
                        elif event is None:
                            if isinstance(current, bytearray) and segment is not None and segment.name:
                                fields[segment.name] = current.decode("utf-8", "replace")
                            current = segment = None
                        elif isinstance(current, _Sink):
                            await current.write(event)
                        elif isinstance(current, bytearray) and len(current) < _FIELD_LIMIT:
                            current += event[: _FIELD_LIMIT - len(current)]
                    if parser.closed:
                        break
        except MultipartError:
            raise UploadInvalid("The upload could not be read as a form: send it again.") from None
        finally:
            if sink is not None:
                await sink.close()
        if sink is None or (not chosen and not sink.size):
            raise UploadInvalid("Choose a file to upload.")
        if not sink.size:
            raise UploadInvalid(f"{sink.path.name} is empty: choose the file that holds the data.")
        return Upload(
            path=sink.path,
            file_name=sink.path.name,
            size=sink.size,
            lines=sink.lines,
            kind=sink.kind,
            fields=fields,
        )

    async def form(self, form: Mapping[str, Any]) -> Upload:
        """Write an upload the framework already parsed (a form posted without htmx) to disk."""
        try:
            fields = self.fields
            fields.update({k: v for k, v in form.items() if isinstance(v, str)})
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise UploadInvalid("Choose a file to upload.")
            kind = _kind_of(upload.filename, upload.content_type)
            sink = self._sink(safe_file_name(upload.filename, f"upload.{kind}"), kind)
            try:
                while chunk := await upload.read(_WRITE_CHUNK):
                    await sink.write(chunk)
            finally:
                await sink.close()
            if not sink.size:
                raise UploadInvalid(f"{sink.path.name} is empty: choose the file that holds the data.")
            return Upload(
                path=sink.path,
                file_name=sink.path.name,
                size=sink.size,
                lines=sink.lines,
                kind=kind,
                fields=fields,
            )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise


# -- the job table -----------------------------------------------------------------------------------


async def create_job(
    session: AsyncSession,
    *,
    entity: str,
    file_name: str,
    file_size: int | None,
    actor: str,
    actor_id: int | None,
    runner: str | None,
) -> ImportJob:
    """A queued job for an uploaded file."""
    job = ImportJob(
        entity=entity,
        file_name=file_name[:255],
        file_size=file_size,
        status=JobStatus.QUEUED,
        rows=0,
        created=0,
        updated=0,
        error_count=0,
        errors=None,
        message=None,
        bytes_read=0,
        actor=actor[:320],
        actor_id=actor_id,
        runner=runner,
        created_at=utcnow(),
    )
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, *, job_id: int) -> ImportJob:
    """One job; NotFound when there is none with that id."""
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"No import job has the id {job_id}.")
    return job


async def recent_jobs(session: AsyncSession, *, limit: int = RECENT_JOBS) -> Sequence[ImportJob]:
    """The latest jobs, newest first."""
    stmt = select(ImportJob).order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).limit(limit)
    return (await session.scalars(stmt)).all()


async def mark_running(session: AsyncSession, *, job_id: int) -> None:
    """The job's import has begun."""
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(status=JobStatus.RUNNING, started_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def record_progress(session: AsyncSession, *, job_id: int, rows: int, bytes_read: int | None) -> None:
    """How far the job's import has read."""
    values: dict[str, Any] = {"rows": rows}
    if bytes_read is not None:
        values["bytes_read"] = bytes_read
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == JobStatus.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def mark_succeeded(
    session: AsyncSession, *, job_id: int, result: ImportResult, bytes_read: int
) -> None:
    """The job's file was imported (written in the import's own transaction)."""
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(
            status=JobStatus.SUCCEEDED,
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            bytes_read=bytes_read,
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


async def mark_failed(
    session: AsyncSession,
    *,
    job_ids: Sequence[int],
    message: str,
    rows: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    error_count: int = 0,
) -> None:
    """The jobs ended without writing anything: why, and the rows' errors when the file was rejected."""
    if not job_ids:
        return
    values: dict[str, Any] = {
        "status": JobStatus.FAILED,
        "message": message[:1000],
        "errors": errors[:MAX_STORED_ERRORS] if errors else None,
        "error_count": error_count,
        "created": 0,
        "updated": 0,
        "finished_at": utcnow(),
    }
    if rows is not None:
        values["rows"] = rows
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id.in_(list(job_ids)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def unfinished_jobs(session: AsyncSession) -> list[tuple[int, str | None]]:
    """(id, runner) of every job still queued or running."""
    rows = await session.execute(
        select(ImportJob.id, ImportJob.runner).where(
            ImportJob.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
        )
    )
    return [(int(job_id), runner) for job_id, runner in rows]


# -- runners' folders and locks ----------------------------------------------------------------------


def _folder_name(runner_id: str) -> str:
    return re.sub(r"[^\w.-]+", "_", runner_id)


def _lock_is_free(path: Path) -> bool:
    """True when no live process holds the lock file (so its runner is gone)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock if it was taken
    return True


def runner_is_dead(root: Path, runner_id: str | None) -> bool:
    """True when the runner that owned a job no longer runs (no folder, or its lock is free)."""
    if not runner_id:
        return True
    folder = root / _folder_name(runner_id)
    if not folder.is_dir():
        return True
    lock = folder / _LOCK_NAME
    if not lock.exists():
        # Being created this instant, or a crash before the lock was made: only a stale folder is dead.
        return time.time() - folder.stat().st_mtime > 60
    return _lock_is_free(lock)


# -- the runner --------------------------------------------------------------------------------------


def _is_locked(exc: OperationalError) -> bool:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return "locked" in text or "busy" in text


def _busy() -> ImportsBusy:
    return ImportsBusy(
        "Another import is running, and this database (SQLite) takes one writer at a time: "
        "upload this file again when it has finished."
    )


RECOMPUTE_DELAY_SECONDS = 2.0
"""After an import, attribution is recomputed once no other import started within this delay."""


class ImportRunner:
    """Imports uploaded files in this process, one at a time, in the background or within a request."""

    def __init__(
        self, settings: Settings, *, root: Path = UPLOAD_ROOT, limits: ImportLimits | None = None
    ) -> None:
        self.settings = settings
        self.root = root
        self.limits = limits or ImportLimits()
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.folder = root / _folder_name(self.runner_id)
        # One import at a time per database: in this process (the asyncio lock), and across the
        # host's processes serving the same database (an flock on a file named after it).
        digest = hashlib.sha256(resolve_url(settings.database_url).encode()).hexdigest()[:16]
        self.import_lock_path = root / f".import-{digest}.lock"
        self.is_sqlite = settings.is_sqlite
        self._lock = asyncio.Lock()
        self._import_fd: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress: dict[int, Progress] = {}
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._lock_fd: int | None = None
        self._recompute: asyncio.Task[None] | None = None
        self._recompute_again = False
        self._last_import = 0.0

    # Life cycle ------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Claim this runner's folder, open its database engine, and fail the jobs of dead processes."""
        if self._engine is not None:
            return
        self._claim_folder()
        # An engine of its own (two connections): the app's engine is disposed before on_shutdown
        # hooks run, and shutting down still has to record the jobs it stops.
        self._engine = create_engine(self.settings.model_copy(update={"db_pool_size": 2}))
        self._sessions = session_factory(self._engine)
        await self.recover()

    async def shutdown(self) -> None:
        """Stop running imports (their jobs are marked failed), close the engine, release the folder."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = self._sessions = None
        self._drop_import_lock()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _claim_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a scanning peer holds it for microseconds at most
        self._lock_fd = fd

    def _take_import_lock(self) -> bool:
        fd = os.open(self.import_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._import_fd = fd
        return True

    def _drop_import_lock(self) -> None:
        if self._import_fd is not None:
            os.close(self._import_fd)
            self._import_fd = None

    @contextlib.asynccontextmanager
    async def _importing(self, *, wait: bool) -> AsyncIterator[bool]:
        """Hold the import lock for one import; yields False at once when busy and not `wait`."""
        if not wait and self.busy:
            yield False
            return
        async with self._lock:
            while not self._take_import_lock():
                if not wait:
                    break
                await asyncio.sleep(0.2)  # another process imports into this database
            if self._import_fd is None:
                yield False
                return
            try:
                yield True
            finally:
                self._drop_import_lock()

    async def recover(self) -> int:
        """Fail the unfinished jobs whose process died and remove dead runners' folders; how many failed."""
        stale: list[int] = []
        try:
            async with self._session(write=False) as session:
                stale = [
                    job_id
                    for job_id, runner in await unfinished_jobs(session)
                    if runner != self.runner_id and runner_is_dead(self.root, runner)
                ]
            if stale:
                async with self._session() as session:
                    await mark_failed(session, job_ids=stale, message=STOPPED)
                    await session.commit()
                log.warning("marked %d import job(s) failed: their process stopped (%s)", len(stale), stale)
        except OperationalError:
            # Another process's import may hold SQLite's write lock: start anyway; the next start retries.
            log.warning("could not check for import jobs left by stopped processes", exc_info=True)
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            if folder.is_dir() and folder != self.folder and runner_is_dead(self.root, folder.name):
                shutil.rmtree(folder, ignore_errors=True)
        return len(stale)

    @contextlib.asynccontextmanager
    async def _session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the import runner has not started (ImportRunner.startup)")
        if not write:
            async with self._sessions() as session:
                yield session
            return
        with write_intent():
            async with self._sessions() as session:
                yield session

    # Work ------------------------------------------------------------------------------------------

    def spooler(self) -> Spooler:
        """Where the next upload is written."""
        if self._lock_fd is None:
            raise RuntimeError("the import runner has not started (ImportRunner.startup)")
        return Spooler(self.folder, self.limits)

    @property
    def busy(self) -> bool:
        """True while an import into this database runs, in this process or another one on this host."""
        if self._lock.locked():
            return True
        if not self._take_import_lock():
            return True
        self._drop_import_lock()
        return False

    def fits_inline(self, upload: Upload) -> bool:
        """True when the API may import this upload within the request (small enough)."""
        small = upload.size <= self.limits.inline_max_bytes
        few = upload.kind == "json" or upload.lines <= self.limits.inline_max_rows + 1
        return small and few

    def recompute_attribution(self) -> None:
        """Recompute attribution once no import has finished for a moment (one run for a burst of files)."""
        self._last_import = time.monotonic()
        if self._recompute is not None and not self._recompute.done():
            self._recompute_again = True
            return
        task = asyncio.create_task(self._recompute_when_idle(), name="okr-attribution-after-import")
        self._recompute = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recompute_when_idle(self) -> None:
        while True:
            # A debounce, not a wait for an event: the next file of a batch usually follows.
            while (quiet := time.monotonic() - self._last_import) < RECOMPUTE_DELAY_SECONDS:  # noqa: ASYNC110
                await asyncio.sleep(RECOMPUTE_DELAY_SECONDS - quiet)
            async with self._importing(wait=True):
                self._recompute_again = False
                try:
                    await run_recompute(self.settings)
                except Exception:
                    log.exception("attribution recompute after an import failed")
            if not self._recompute_again:
                return

    def live(self, job_id: int) -> Progress | None:
        """The newest progress of a job this process runs (None when it runs elsewhere or not at all)."""
        return self._progress.get(job_id)

    def view(self, job: ImportJob) -> ImportJobRead:
        """A job as pages and the API show it, with this process's newest progress."""
        return ImportJobRead.of(job, self.live(job.id))

    async def import_now(
        self, upload: Upload, *, entity: str, actor: str, actor_id: int | None
    ) -> ImportResult | None:
        """Import an upload at once (the API's small files) unless another import runs (then None).

        Raises ImportRejected when the file is refused; the upload is deleted unless None is returned.
        """
        async with self._importing(wait=False) as free:
            if not free:
                return None
            try:
                async with self._session() as session:
                    result = await self._load(session, upload, entity=entity, actor=actor, actor_id=actor_id)
                    await session.commit()
                    self.recompute_attribution()
                    return result
            except OperationalError as exc:
                if _is_locked(exc):
                    raise _busy() from exc
                raise
            finally:
                upload.discard()

    async def enqueue(
        self, upload: Upload, *, entity: str, actor: str, actor_id: int | None
    ) -> ImportJobRead:
        """Record a queued job for the upload and start importing it in the background.

        On SQLite, which takes one writer at a time, nothing queues: while another import runs this
        raises ImportsBusy rather than wait on the database's write lock.
        """
        try:
            if self.is_sqlite and self.busy:
                raise _busy()
            async with self._session() as session:
                job = await create_job(
                    session,
                    entity=entity,
                    file_name=upload.file_name,
                    file_size=upload.size,
                    actor=actor,
                    actor_id=actor_id,
                    runner=self.runner_id,
                )
                await session.commit()
        except BaseException as exc:
            upload.discard()
            if isinstance(exc, OperationalError) and _is_locked(exc):
                raise _busy() from exc
            raise
        task = asyncio.create_task(
            self._run(job.id, upload, entity=entity, actor=actor, actor_id=actor_id),
            name=f"okr-import-{job.id}",
        )
        # The event loop keeps only weak references to tasks: hold them until they end.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ImportJobRead.of(job)

    async def _load(
        self,
        session: AsyncSession,
        upload: Upload,
        *,
        entity: str,
        actor: str,
        actor_id: int | None,
        on_progress: ProgressCallback | None = None,
    ) -> ImportResult:
        load = import_json if upload.kind == "json" else import_csv
        return await load(
            session,
            entity=entity,
            path_or_stream=upload.path,
            settings=self.settings,
            actor=actor,
            actor_id=actor_id,
            on_progress=on_progress,
        )

    async def _run(
        self, job_id: int, upload: Upload, *, entity: str, actor: str, actor_id: int | None
    ) -> None:
        try:
            async with self._importing(wait=True):
                async with self._session() as session:
                    await mark_running(session, job_id=job_id)
                    await session.commit()
                self._progress[job_id] = Progress(rows=0, bytes_read=0)
                await self._import(job_id, upload, entity=entity, actor=actor, actor_id=actor_id)
        except asyncio.CancelledError:
            await self._fail(job_id, STOPPED)
            raise
        except Exception:
            log.exception("import job %s (%s, %s) failed", job_id, entity, upload.file_name)
            await self._fail(job_id, INTERNAL)
        finally:
            self._progress.pop(job_id, None)
            upload.discard()

    async def _import(
        self, job_id: int, upload: Upload, *, entity: str, actor: str, actor_id: int | None
    ) -> None:
        rejected: ImportRejected
        async with self._session() as session:
            try:
                result = await self._load(
                    session,
                    upload,
                    entity=entity,
                    actor=actor,
                    actor_id=actor_id,
                    on_progress=self._reporter(job_id),
                )
            except ImportRejected as exc:
                await session.rollback()
                rejected = exc
            else:
                await mark_succeeded(session, job_id=job_id, result=result, bytes_read=upload.size)
                await session.commit()
                self.recompute_attribution()
                log.info(
                    "import job %s: %s %s, %d rows, %d created, %d updated",
                    job_id,
                    entity,
                    upload.file_name,
                    result.rows,
                    result.created,
                    result.updated,
                )
                return
        async with self._session() as session:
            await mark_failed(
                session,
                job_ids=[job_id],
                message=rejected.detail,
                rows=rejected.rows_seen,
                errors=rejected.errors,
                error_count=rejected.error_count,
            )
            await session.commit()

    def _reporter(self, job_id: int) -> ProgressCallback:
        persist = self._engine is not None and self._engine.dialect.name != "sqlite"

        async def report(rows: int, bytes_read: int | None) -> None:
            self._progress[job_id] = Progress(rows=rows, bytes_read=bytes_read)
            if persist:
                try:
                    async with self._session() as session:
                        await record_progress(session, job_id=job_id, rows=rows, bytes_read=bytes_read)
                        await session.commit()
                except SQLAlchemyError:
                    log.warning("could not record the progress of import job %s", job_id, exc_info=True)
            await asyncio.sleep(0)  # let other requests in between batches

        return report

    async def _fail(self, job_id: int, message: str) -> None:
        try:
            async with self._session() as session:
                await mark_failed(session, job_ids=[job_id], message=message)
                await session.commit()
        except (SQLAlchemyError, OSError, RuntimeError, asyncio.CancelledError):
            # The next start-up marks it failed anyway (its runner will be dead by then).
            log.warning("could not mark import job %s failed", job_id, exc_info=True)
