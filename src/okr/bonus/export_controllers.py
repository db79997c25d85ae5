"""Exports of a bonus run for finance (DESIGN 6.5): the payroll CSV and the workbook as downloads, the JSON
through the API. Finance only (DESIGN 8); an API token needs the `export` scope. Every export is audited."""

from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import Connection, credentials, current_user, requires_scope
from okr.bonus import export_services, exports
from okr.bonus.exports import ExportData, ExportRead

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

RunId = Annotated[int, PathParameter(ge=1, description="The bonus run's id.")]


def requires_export(connection: Connection, _: BaseRouteHandler) -> None:
    """Finance only: admins may submit runs but not export them; leaders and members may not either."""
    if not export_services.may_export(current_user(connection)):
        raise PermissionDeniedException("Only finance may export bonus runs.")


_GUARDS = [requires_scope("export"), requires_export]


def _via(request: Request[Any, Any, Any]) -> str | None:
    creds = credentials(request)
    return creds.token_name if creds.is_token else None


async def _export(
    request: Request[Any, Any, Any], db_session: AsyncSession, run_id: int, fmt: str
) -> ExportData:
    return await export_services.export_run(
        db_session, run_id=run_id, fmt=fmt, user=current_user(request), via=_via(request)
    )


def _download(content: bytes, media_type: str, name: str) -> Response[bytes]:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # Payroll data: never kept by a shared cache or the browser's.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


class ExportController(Controller):
    """`/bonus/runs/{id}/export.csv` and `.xlsx`: the payroll CSV and the workbook, as downloads."""

    path = "/bonus/runs"
    guards = _GUARDS
    include_in_schema = False

    @get("/{run_id:int}/export.csv", name="bonus.export_csv")
    async def csv(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Response[bytes]:
        """The payroll CSV; its name ends in -DRAFT while the run is not locked."""
        data = await _export(request, db_session, run_id, "csv")
        return _download(exports.payroll_csv(data), CSV_TYPE, exports.file_name(data, "csv"))

    @get("/{run_id:int}/export.xlsx", name="bonus.export_xlsx")
    async def xlsx(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Response[bytes]:
        """The workbook: summary, people, deal trace, adjustments."""
        data = await _export(request, db_session, run_id, "xlsx")
        return _download(exports.workbook(data), XLSX_TYPE, exports.file_name(data, "xlsx"))


@dataclass(frozen=True, slots=True)
class ExportProblem:
    """A refused request (RFC 9457 problem)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ExportProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


class ExportApiController(Controller):
    """`/api/v1/bonus/runs/{id}/export`: a run for finance as JSON."""

    path = "/api/v1/bonus/runs"
    tags = ("bonus",)
    guards = _GUARDS

    @get(
        "/{run_id:int}/export",
        name="api.bonus.run_export",
        summary="Export a bonus run (payroll, people, deal trace, adjustments)",
        description=(
            "Finance only; an API token needs the `export` scope. The same content as the payroll CSV and "
            "the workbook: every amount is given as `{minor, major}`, an integer of minor units and a "
            "decimal string with the currency's decimals. `draft` is true (and `status` is `DRAFT`) while "
            "the run is not locked: do not pay from a draft. `inputs_checksum` is the sha256 of the inputs "
            "the run read. Each export is written to the audit log."
        ),
        responses={
            403: _problem("Not finance, or the token lacks the `export` scope."),
            404: _problem("There is no such run."),
            409: _problem("The run has not finished computing."),
        },
    )
    async def export(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> ExportRead:
        """A bonus run as JSON."""
        data = await _export(request, db_session, run_id, "json")
        return exports.export_read(data)


__all__ = ["ExportApiController", "ExportController", "requires_export"]
