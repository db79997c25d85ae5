"""The dashboard: the quarter's KPI tiles, and the records behind each figure."""

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import requires_login
from okr.kpis import services as kpis
from okr.lib.web import app_settings, org_today, wants_fragment
from okr.periods.services import resolve_quarter

# The page and its fragment differ by this header: caches must not hand one out for the other.
_VARY = {"Vary": "HX-Request"}


class DashboardController(Controller):
    """The dashboard (`/`) and its drill-down pages."""

    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="dashboard.index")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: Annotated[
            str | None, QueryParameter(max_length=16, description="a period key like 2026-Q3")
        ] = None,
    ) -> Template:
        """Six KPI tiles for a period; an htmx request gets only the tiles fragment."""
        settings = app_settings(request)
        today = org_today(settings)
        quarter, quarters = await resolve_quarter(db_session, settings=settings, key=period, today=today)
        board = await kpis.dashboard(db_session, settings=settings, quarter=quarter, today=today)
        fragment = wants_fragment(request)
        context = {
            "board": board,
            "quarters": quarters,
            "today": today,
            "start_month": settings.fiscal_year_start_month,
            "fragment": fragment,
        }
        name = "dashboard/_tiles.html" if fragment else "dashboard/index.html"
        return Template(template_name=name, context=context, headers=_VARY)

    @get("/dashboard/records", name="dashboard.records")
    async def records(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        kpi: Annotated[str, QueryParameter(max_length=64)],
        period: Annotated[str | None, QueryParameter(max_length=16)] = None,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        sort: Annotated[str | None, QueryParameter(max_length=16)] = None,
        order: Annotated[Literal["asc", "desc"] | None, QueryParameter()] = None,
    ) -> Template:
        """The records behind one dashboard figure, 50 per page, sortable."""
        settings = app_settings(request)
        kpis.drill_down_kpi(kpi)  # an unknown KPI is a 404 whatever the period
        quarter, _ = await resolve_quarter(
            db_session, settings=settings, key=period, today=org_today(settings)
        )
        descending = None if order is None else order == "desc"
        records = await kpis.kpi_records(
            db_session,
            settings=settings,
            kpi=kpi,
            quarter=quarter,
            page=page,
            sort=sort,
            descending=descending,
        )
        context = {"records": records, "params": {"kpi": kpi, "period": quarter.key}}
        return Template(template_name="dashboard/records.html", context=context)
