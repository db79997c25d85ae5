"""Imports from the admin page and the API (DESIGN 7): receive the file -> import or queue it -> answer.

The request body is streamed to disk by the runner's spooler (never parsed into memory whole); the
admin page always imports in the background and polls the job's card; the API imports a small file
within the request (200) and queues a bigger one (202 + Location of the job).
"""

import math
from dataclasses import dataclass
from email.message import Message
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType as SpecMediaType
from litestar.openapi.spec import Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_202_ACCEPTED,
    HTTP_303_SEE_OTHER,
)
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import credentials, current_user, requires_admin, requires_scope
from okr.imports import core
from okr.imports.jobs import (
    MAX_BODY_BYTES,
    ImportRunner,
    ImportsBusy,
    Spooler,
    Upload,
    UploadInvalid,
    UploadRefused,
    describe_actor,
    entity_from_file_name,
    get_job,
    recent_jobs,
)
from okr.imports.schemas import (
    ImportJobRead,
    ImportProblem,
    ImportResultRead,
    UploadForm,
    entity_choices,
)
from okr.lib.errors import NotFound

RUNNER_KEY = "import_runner"
PAGE = "/admin/imports"
JOB_API = "/api/v1/imports/jobs/{job_id}"
ERRORS_ON_CARD = 10
ERRORS_PER_PAGE = 50
_VARY = {"Vary": "HX-Request"}
_ENTITY_LIST = ", ".join(core.ENTITIES)


def provide_runner(state: State) -> ImportRunner:
    """The app's import runner (made in create_app, started with the app)."""
    runner: ImportRunner = state[RUNNER_KEY]
    return runner


async def _receive(request: Request[Any, Any, Any], spooler: Spooler, *, file_name: str) -> Upload:
    """Spool the request's file to disk: streamed, or copied from a form the CSRF check already parsed."""
    if ScopeState.from_scope(request.scope).form is not Empty:
        # A form posted without htmx carries its CSRF token in the body, so the CSRF middleware
        # has parsed it already (spooling the file to a temporary file beyond 1 MB).
        return await spooler.form(await request.form())
    content_type, options = request.content_type
    return await spooler.body(
        request.stream(),
        content_type=content_type,
        options=options,
        file_name=file_name,
        announced=request.content_length,
    )


def _check_entity(entity: str) -> str:
    if entity not in core.ENTITIES:
        raise NotFound(f"'{entity}' is not an import entity (one of: {_ENTITY_LIST}).")
    return entity


def _raw_file_name(request: Request[Any, Any, Any], entity: str) -> str:
    """The file name a raw body announces (`Content-Disposition: attachment; filename=...`), or a default."""
    disposition = request.headers.get("content-disposition")
    if disposition:
        header = Message()
        header["content-disposition"] = disposition
        name = header.get_filename()
        if name:
            return name
    content_type, _ = request.content_type
    return f"{entity}.json" if content_type == MediaType.JSON else f"{entity}.csv"


# -- the API -----------------------------------------------------------------------------------------


def _upload_body() -> RequestBody:
    record = Schema(
        type=OpenAPIType.OBJECT,
        description="One record: the file's columns as keys (DESIGN 7), values as text or numbers.",
        additional_properties=True,
    )
    return RequestBody(
        required=True,
        description=(
            "One file: a form upload (field `file`; a name ending in .json is read as JSON), a CSV body "
            "(`text/csv`, header row first), or a JSON array of records (`application/json`). Up to "
            "200 MB (JSON: 20 MB)."
        ),
        content={
            "multipart/form-data": SpecMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    properties={"file": Schema(type=OpenAPIType.STRING, format="binary")},  # type: ignore[arg-type]
                    required=["file"],
                )
            ),
            "text/csv": SpecMediaType(schema=Schema(type=OpenAPIType.STRING)),
            "application/json": SpecMediaType(schema=Schema(type=OpenAPIType.ARRAY, items=record)),
        },
    )


@dataclass
class _UploadOperation(Operation):
    """The upload's operation: its body is read as a stream, so its shape is declared here."""

    def __post_init__(self) -> None:
        self.request_body = _upload_body()


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ImportProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


class ImportApiController(Controller):
    """`POST /api/v1/imports/{entity}` and the background jobs it starts."""

    path = "/api/v1/imports"
    tags = ("imports",)
    guards = [requires_scope("import"), requires_admin]  # noqa: RUF012
    dependencies = {"runner": Provide(provide_runner, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/{entity:str}",
        name="api.imports.upload",
        status_code=200,
        request_max_body_size=MAX_BODY_BYTES,
        operation_class=_UploadOperation,
        summary="Import one file",
        description=(
            "Upsert one DESIGN 7 file (all or nothing) as the token's creator, who must be an admin; "
            "the token needs the `import` scope. A small file (up to 5 MB and 20,000 rows) is imported "
            "within the request: 200 with the counts. A bigger one, or one sent while another import "
            "runs, becomes a background job: 202 with its state and `Location` of "
            "`GET /api/v1/imports/jobs/{id}`. A bad file answers 422 listing every error as "
            "{row, column, reason} (row 1 is a CSV file's header; a JSON array's first record is row 1) "
            "and nothing is written."
        ),
        responses={
            200: ResponseSpec(
                ImportResultRead, description="Imported: rows read, records created and updated."
            ),
            202: ResponseSpec(ImportJobRead, description="Queued as a background job; poll its Location."),
            404: _problem("No such import entity."),
            413: _problem("The file is over the size limit (200 MB; JSON 20 MB)."),
            415: _problem("The body is not a form upload, CSV or JSON."),
            422: _problem("The file was rejected and nothing written; `errors` lists every bad row."),
            503: _problem("SQLite only: another import holds the database; send the file again later."),
        },
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        runner: NamedDependency[ImportRunner],
        entity: Annotated[
            str,
            PathParameter(
                description="What the file holds, in load order: " + _ENTITY_LIST,
                schema_extra={"enum": list(core.ENTITIES)},
            ),
        ],
    ) -> Response[Any]:
        """Import a file now, or queue it."""
        _check_entity(entity)
        user = current_user(request)
        actor = describe_actor(user.email, credentials(request).token_name)
        upload = await _receive(request, runner.spooler(), file_name=_raw_file_name(request, entity))
        if runner.fits_inline(upload):
            result = await runner.import_now(upload, entity=entity, actor=actor, actor_id=user.id)
            if result is not None:
                return Response(ImportResultRead.of(result))
        job = await runner.enqueue(upload, entity=entity, actor=actor, actor_id=user.id)
        return Response(
            job, status_code=HTTP_202_ACCEPTED, headers={"Location": JOB_API.format(job_id=job.id)}
        )

    @get(
        "/jobs/{job_id:int}",
        name="api.imports.job",
        summary="An import job's state",
        description=(
            "Status (queued, running, succeeded, failed), rows read so far, bytes read of the file "
            "(`percent` when known), records created and updated, and, for a rejected file, its errors "
            "(the first 1,000; `error_count` counts them all). Poll until the status is succeeded or "
            "failed."
        ),
        responses={404: _problem("No import job has this id.")},
    )
    async def job(
        self,
        db_session: NamedDependency[AsyncSession],
        runner: NamedDependency[ImportRunner],
        job_id: Annotated[int, PathParameter(description="The job's id, from the upload's Location.")],
    ) -> ImportJobRead:
        """One import job."""
        return runner.view(await get_job(db_session, job_id=job_id))


# -- the admin page ----------------------------------------------------------------------------------


def _page_context(form: UploadForm, jobs: list[ImportJobRead], runner: ImportRunner) -> dict[str, Any]:
    return {
        "form": form,
        "entities": entity_choices(),
        "jobs": jobs,
        "limits": runner.limits,
        "errors_on_card": ERRORS_ON_CARD,
    }


class ImportPageController(Controller):
    """`/admin/imports`: upload a file, watch it import, come back to recent jobs."""

    path = PAGE
    guards = [requires_admin]  # noqa: RUF012
    include_in_schema = False
    dependencies = {"runner": Provide(provide_runner, sync_to_thread=False)}  # noqa: RUF012

    @get("/", name="imports.page")
    async def page(
        self, db_session: NamedDependency[AsyncSession], runner: NamedDependency[ImportRunner]
    ) -> Template:
        """The upload form and the last 20 jobs."""
        jobs = [runner.view(job) for job in await recent_jobs(db_session)]
        return Template(template_name="imports/page.html", context=_page_context(UploadForm(), jobs, runner))

    @post("/", name="imports.upload", request_max_body_size=MAX_BODY_BYTES)
    async def upload(self, request: HTMXRequest, runner: NamedDependency[ImportRunner]) -> Response[Any]:
        """Receive one file and import it in the background; htmx gets the form back and the job's card."""
        user = current_user(request)
        form = UploadForm()
        spooler = runner.spooler()
        upload: Upload | None = None
        try:
            upload = await _receive(request, spooler, file_name="upload.csv")
            chosen = upload.fields.get("entity", "").strip()
            entity = chosen or entity_from_file_name(upload.file_name)
            if entity is None:
                raise UploadInvalid(
                    f"Choose what {upload.file_name} holds (its name does not say).", field="entity"
                )
            if entity not in core.ENTITIES:
                raise UploadInvalid(
                    f"'{entity}' is not an import entity: choose one of the list.", field="entity"
                )
            job = await runner.enqueue(
                upload, entity=entity, actor=describe_actor(user.email), actor_id=user.id
            )
        except UploadRefused as exc:
            if upload is not None:
                upload.discard()
            form.entity = spooler.fields.get("entity", "").strip()
            form.errors[exc.field] = exc.detail
            return self._form_again(request, form, runner, status_code=exc.status_code)
        except ImportsBusy as exc:
            form.entity = spooler.fields.get("entity", "").strip()
            form.errors["file"] = exc.detail
            return self._form_again(request, form, runner, status_code=exc.status_code)
        if not request.htmx:
            return Redirect(f"{PAGE}/jobs/{job.id}", status_code=HTTP_303_SEE_OTHER)
        form = UploadForm(notice=f"{job.file_name} received: it is being imported below.")
        context = {**_page_context(form, [job], runner), "job": job}
        return Template(template_name="imports/_uploaded.html", context=context, headers=_VARY)

    def _form_again(
        self, request: HTMXRequest, form: UploadForm, runner: ImportRunner, *, status_code: int
    ) -> Template:
        # htmx swaps only 2xx answers: the form with its errors comes back as 200 to htmx, and with
        # the error's status to a plain form post (which then shows the whole page again).
        if request.htmx:
            context = _page_context(form, [], runner)
            return Template(template_name="imports/_form.html", context=context, headers=_VARY)
        return Template(
            template_name="imports/page.html",
            context={**_page_context(form, [], runner), "jobs_hidden": True},
            status_code=status_code,
        )

    @get("/jobs/{job_id:int}", name="imports.job")
    async def job(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        runner: NamedDependency[ImportRunner],
        job_id: Annotated[int, PathParameter()],
        page: Annotated[int, QueryParameter(ge=1, le=1000)] = 1,
    ) -> Template:
        """One job: its card for htmx polling, or a page with every error, paged."""
        job = runner.view(await get_job(db_session, job_id=job_id))
        if request.htmx and not request.htmx.history_restore_request:
            context = {"job": job, "errors_on_card": ERRORS_ON_CARD, "fragment": True}
            return Template(template_name="imports/_job.html", context=context, headers=_VARY)
        pages = max(math.ceil(len(job.errors) / ERRORS_PER_PAGE), 1)
        page = min(page, pages)
        first = (page - 1) * ERRORS_PER_PAGE
        context = {
            "job": job,
            "errors_on_card": 0,
            "rows": job.errors[first : first + ERRORS_PER_PAGE],
            "page": page,
            "pages": pages,
            "first_index": first + 1,
            "last_index": min(first + ERRORS_PER_PAGE, len(job.errors)),
        }
        return Template(template_name="imports/job.html", context=context, headers=_VARY)
