"""The KPI library: a page listing every KPI with its value for a period and filters (`/kpis`), the
records behind each value, and the JSON API (`/api/v1/kpis`). Parse -> kpis services -> page or JSON.

Anyone logged in may read KPIs, and API tokens with the `read` scope (DESIGN 8).
"""

from typing import Annotated, Any

from litestar import Controller, Request, Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution import queries as attribution
from okr.auth.guards import requires_login, requires_scope
from okr.db.attribution import STORED_MODELS
from okr.kpis import services as kpis
from okr.kpis.core import KPIS, KpiFilters, Records, inapplicable
from okr.kpis.schemas import (
    FiltersRead,
    KpiRead,
    KpiRecordsRead,
    KpiValueRead,
    api_value,
    money_unit,
    records_url,
)
from okr.lib.errors import ValidationFailed
from okr.lib.periods import Quarter
from okr.lib.web import app_settings, org_today, wants_fragment
from okr.periods.services import resolve_quarter
from okr.settings import Settings
from okr.sla.policy import rule_for_period

_VARY = {"Vary": "HX-Request"}
_FAMILIES = (
    (Records.LEADS, "Leads"),
    (Records.OPPORTUNITIES, "Opportunities"),
    (Records.CAMPAIGNS, "Campaigns"),
)

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
PageParam = Annotated[
    int, QueryParameter(ge=1, le=1_000_000, description="The page, from 1 (50 rows a page).")
]
SortParam = Annotated[str | None, QueryParameter(max_length=16, description="The column to sort by.")]
OrderParam = Annotated[
    str | None,
    QueryParameter(max_length=8, description="asc or desc.", schema_extra={"enum": ["asc", "desc"]}),
]
ModelParam = Annotated[
    str | None,
    QueryParameter(
        max_length=32,
        description=f"The attribution model of campaign_roi; {attribution.DEFAULT_MODEL} when left out.",
        schema_extra={"enum": list(STORED_MODELS)},
    ),
]
# Pages send every select, chosen or not: an empty value means "any".
PageFilter = Annotated[str | None, QueryParameter(max_length=100)]


def _descending(order: str | None) -> bool | None:
    if order is None or order == "":
        return None
    if order not in ("asc", "desc"):
        raise ValidationFailed(
            f"“{order}” is not a sort order.", errors=[{"field": "order", "message": "use asc or desc"}]
        )
    return order == "desc"


def _id(name: str, text: str | None) -> int | None:
    if text is None or text.strip() == "":
        return None
    if not text.strip().isdigit() or len(text.strip()) > 18:
        raise ValidationFailed(
            f"The {name} filter must be an id (a whole number).",
            errors=[{"field": name, "message": "pick one from the list, or leave it empty for any"}],
        )
    return int(text)


def _text(text: str | None) -> str | None:
    return None if text is None or text.strip() == "" else text.strip()


def page_filters(
    team: str | None, person: str | None, campaign: str | None, channel: str | None, segment: str | None
) -> KpiFilters:
    """The filters a page's query string names (empty: any); 422 for an id that is not a number."""
    return KpiFilters(
        team_id=_id("team", team),
        person_id=_id("person", person),
        campaign_id=_id("campaign", campaign),
        channel=_text(channel),
        segment=_text(segment),
    )


async def _quarter(
    session: AsyncSession, settings: Settings, period: str | None
) -> tuple[Quarter, list[Quarter]]:
    return await resolve_quarter(session, settings=settings, key=period, today=org_today(settings))


# -- pages -------------------------------------------------------------------------------------------------


class KpiController(Controller):
    """`/kpis`: every KPI of the library for a period and filters, and the records behind each value."""

    path = "/kpis"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="kpis.index")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        team: PageFilter = None,
        person: PageFilter = None,
        campaign: PageFilter = None,
        channel: PageFilter = None,
        segment: PageFilter = None,
    ) -> Template:
        """The library: each KPI's definition and its value (a link to its records); htmx gets the table."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        filters = page_filters(team, person, campaign, channel, segment)
        await kpis.check_filters(db_session, filters)
        values = await kpis.kpi_values(
            db_session, settings=settings, quarter=quarter, names=list(KPIS), filters=filters
        )
        options = await kpis.filter_options(db_session)
        runs = await kpis.current_runs(db_session)
        params = {"period": quarter.key, **filters.params}
        families = [
            (
                label,
                [
                    (kpi, values[kpi.name], inapplicable(kpi.name, filters))
                    for kpi in KPIS.values()
                    if kpi.records == family
                ],
            )
            for family, label in _FAMILIES
        ]
        fragment = wants_fragment(request)
        context = {
            "quarter": quarter,
            "quarters": quarters,
            "filters": filters,
            "filter_labels": options.label(filters),
            "options": options,
            "families": families,
            "params": params,
            "runs": runs,
            "has_data": await kpis.has_pipeline_data(db_session),
            "sla_rule": (await rule_for_period(db_session, settings=settings, quarter=quarter)).describe(),
            "model": attribution.DEFAULT_MODEL,
            "model_label": attribution.MODEL_LABELS[attribution.DEFAULT_MODEL],
            "start_month": settings.fiscal_year_start_month,
            "fragment": fragment,
        }
        name = "kpis/_library.html" if fragment else "kpis/index.html"
        return Template(template_name=name, context=context, headers=_VARY)

    @get("/{name:str}/records", name="kpis.records")
    async def records(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        name: Annotated[str, PathParameter(max_length=64)],
        period: PeriodParam = None,
        team: PageFilter = None,
        person: PageFilter = None,
        campaign: PageFilter = None,
        channel: PageFilter = None,
        segment: PageFilter = None,
        model: ModelParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> Template:
        """The records behind one KPI for a period and filters, 50 a page, sortable."""
        settings = app_settings(request)
        kpi = kpis.library_kpi(name)  # an unknown KPI is a 404 whatever the period
        quarter, _ = await _quarter(db_session, settings, period)
        filters = page_filters(team, person, campaign, channel, segment)
        await kpis.check_filters(db_session, filters, kpi=kpi.name)
        chosen_model = kpis.resolve_model(model) if kpi.name == "campaign_roi" else None
        records = await kpis.kpi_records(
            db_session,
            settings=settings,
            kpi=kpi.name,
            quarter=quarter,
            page=page,
            sort=sort,
            descending=_descending(order),
            filters=filters,
            model=chosen_model,
        )
        options = await kpis.filter_options(db_session)
        params: dict[str, Any] = {"period": quarter.key, **filters.params}
        if chosen_model and chosen_model != attribution.DEFAULT_MODEL:
            params["model"] = chosen_model
        context = {
            "records": records,
            "params": params,
            "filter_labels": options.label(filters),
            "value": (await kpis.kpi_values(
                db_session, settings=settings, quarter=quarter, names=[kpi.name], filters=filters,
                model=chosen_model,
            ))[kpi.name],
        }  # fmt: skip
        return Template(template_name="kpis/records.html", context=context)


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=dict[str, Any],
        description=description + " A JSON problem: type, title, status, detail, errors.",
        media_type="application/problem+json",
        generate_examples=False,
    )


_UNKNOWN = _problem("No such KPI, or no such period.")
_BAD = _problem(
    "A filter names no team, person, campaign, channel or segment okr knows, a filter does not apply to "
    "this KPI, or the model, sort or order is unknown; `errors` names the parameter."
)
TeamParam = Annotated[int | None, QueryParameter(ge=1, description="A team's id: the owners' team.")]
PersonParam = Annotated[
    int | None,
    QueryParameter(ge=1, description="A person's id: lead owner, opportunity owner, or campaign owner."),
]
CampaignParam = Annotated[
    int | None,
    QueryParameter(
        ge=1, description="A campaign's id: leads touched by it, deals whose journey includes it."
    ),
]
ChannelParam = Annotated[
    str | None, QueryParameter(max_length=50, description="A campaign channel such as webinar.")
]
SegmentParam = Annotated[str | None, QueryParameter(max_length=50, description="An account segment.")]


def _api_filters(
    team: int | None, person: int | None, campaign: int | None, channel: str | None, segment: str | None
) -> KpiFilters:
    return KpiFilters(team, person, campaign, _text(channel), _text(segment))


def _check_sort(kpi_name: str, sort: str | None) -> str | None:
    if sort is None or sort == "":
        return None
    allowed = kpis.SORTS[KPIS[kpi_name].records]
    if sort not in allowed:
        raise ValidationFailed(
            f"“{sort}” is not a column these records sort by.",
            errors=[{"field": "sort", "message": f"use one of {', '.join(allowed)}"}],
        )
    return sort


class KpiApiController(Controller):
    """`/api/v1/kpis`: the library, a KPI's value for a period and filters, and the records behind it."""

    path = "/api/v1/kpis"
    tags = ("kpis",)
    guards = [requires_scope("read")]  # noqa: RUF012

    @get(
        "/",
        name="api.kpis.library",
        summary="The KPI library",
        description=(
            "Every KPI of the library (DESIGN 4) in its order: name, label, unit (count, currency, percent, "
            "days, hours, per_day), one-line definition, whether higher is better, the kind of records "
            "behind it and the filters that narrow it."
        ),
    )
    async def library(self) -> list[KpiRead]:
        """The KPI library."""
        return [KpiRead.of(kpi) for kpi in KPIS.values()]

    @get(
        "/{name:str}",
        name="api.kpis.value",
        summary="A KPI for a period and filters",
        description=(
            "The value of one KPI for a period (today's quarter when left out), narrowed by team, person, "
            "campaign, channel and segment (docs/kpis.md says what each means per KPI). Counts and money "
            "are integers (money in minor units of `currency`); rates, hours, days and money per day are "
            "decimal strings with 6 places; null when there is nothing to divide by. Example: "
            "`GET /api/v1/kpis/win_rate?period=2026-Q3&segment=enterprise`."
        ),
        responses={404: _UNKNOWN, 422: _BAD},
    )
    async def value(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        name: Annotated[str, PathParameter(max_length=64, description="The KPI's name, e.g. win_rate.")],
        period: PeriodParam = None,
        team: TeamParam = None,
        person: PersonParam = None,
        campaign: CampaignParam = None,
        channel: ChannelParam = None,
        segment: SegmentParam = None,
        model: ModelParam = None,
    ) -> KpiValueRead:
        """A KPI's value."""
        settings = app_settings(request)
        kpi = kpis.library_kpi(name)
        filters = _api_filters(team, person, campaign, channel, segment)
        chosen_model = kpis.resolve_model(model) if kpi.name == "campaign_roi" else None
        await kpis.check_filters(db_session, filters, kpi=kpi.name)
        quarter, _ = await _quarter(db_session, settings, period)
        values = await kpis.kpi_values(
            db_session,
            settings=settings,
            quarter=quarter,
            names=[kpi.name],
            filters=filters,
            model=chosen_model,
        )
        start, end = kpis.period_bounds(settings, quarter)
        extra = {"model": chosen_model} if chosen_model else {}
        return KpiValueRead(
            name=kpi.name,
            label=kpi.label,
            unit=kpi.unit.value,
            value=api_value(values[kpi.name]),
            currency=settings.org_currency if money_unit(kpi.unit) else None,
            period=quarter.key,
            start=start,
            end=end,
            filters=FiltersRead.of(filters),
            definition=kpi.definition,
            higher_is_better=kpi.higher_is_better,
            model=chosen_model,
            sla_hours=(await rule_for_period(db_session, settings=settings, quarter=quarter)).hours
            if kpi.name == "sla_compliance"
            else None,
            records_url=records_url(kpi.name, quarter.key, filters, **extra),
        )

    @get(
        "/{name:str}/records",
        name="api.kpis.records",
        summary="The records behind a KPI",
        description=(
            "The leads, opportunities or campaigns a KPI's value counts, for the same period and filters, "
            "50 a page. Sort columns: leads date, email, account, owner; opportunities amount, date, name, "
            "account, owner, status; campaigns cost, attributed, roi, name, channel, owner. The money of "
            "all pages adds up to the value for sums (pipeline, revenue, cost)."
        ),
        responses={404: _UNKNOWN, 422: _BAD},
    )
    async def records(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        name: Annotated[str, PathParameter(max_length=64, description="The KPI's name, e.g. win_rate.")],
        period: PeriodParam = None,
        team: TeamParam = None,
        person: PersonParam = None,
        campaign: CampaignParam = None,
        channel: ChannelParam = None,
        segment: SegmentParam = None,
        model: ModelParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> KpiRecordsRead:
        """A page of the records behind a KPI."""
        settings = app_settings(request)
        kpi = kpis.library_kpi(name)
        filters = _api_filters(team, person, campaign, channel, segment)
        chosen_model = kpis.resolve_model(model) if kpi.name == "campaign_roi" else None
        key = _check_sort(kpi.name, sort)
        descending = _descending(order)
        await kpis.check_filters(db_session, filters, kpi=kpi.name)
        quarter, _ = await _quarter(db_session, settings, period)
        found = await kpis.kpi_records(
            db_session,
            settings=settings,
            kpi=kpi.name,
            quarter=quarter,
            page=page,
            sort=key,
            descending=descending,
            filters=filters,
            model=chosen_model,
        )
        return KpiRecordsRead.of(found)


kpi_routes = Router(path="/", route_handlers=[KpiController, KpiApiController])
"""The KPI pages and API, registered on the app as one router."""
