"""The bonus projection (docs/bonus-projection.md): parse -> okr.bonus.projection -> fragment, page or JSON.

`/me` loads `GET /bonus/projection` lazily (htmx, on load) so the page draws before it; the what-if form
posts the deals to count as closing to `/bonus/projection/what-if`, which swaps the projection in place.
Without htmx the same URLs answer a whole page. Finance and admins may name another person (`person`);
anyone else naming someone else gets 404 (okr.bonus.projection.target_of).
"""

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login, requires_scope
from okr.bonus import projection as service
from okr.goals.controllers import goals_quarter
from okr.lib.errors import ValidationFailed
from okr.lib.web import app_settings, wants_fragment

_VARY = {"Vary": "HX-Request"}

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
PersonParam = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=2**62, description="Whose projection (finance and admins only); the caller's when left out."
    ),
]

CATEGORY_LABELS = {"commit": "Commit", "closed": "Closed", "best_case": "Best case", "pipeline": "Pipeline"}


def _id(text: str, field: str) -> int:
    value = text.strip()
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(
            f"{field} must be a record id.", errors=[{"field": field, "message": "Not a record id."}]
        )
    return int(value)


def read_what_if(data: FormMultiDict) -> tuple[int | None, list[int]]:
    """The person (finance and admins) and the deals ticked as closing, from the what-if form."""
    person = str(data.get("person", "") or "").strip()
    closing = [_id(str(v), "close") for v in data.getall("close", []) if str(v).strip()]
    if len(closing) > service.MAX_CLOSING:
        raise ValidationFailed(f"Tick at most {service.MAX_CLOSING} deals at once.")
    return (_id(person, "person") if person else None), closing


class ProjectionController(Controller):
    """`/bonus/projection`: the caller's projected bonus and its what-if."""

    path = "/bonus/projection"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    async def _render(
        self,
        request: HTMXRequest,
        db_session: AsyncSession,
        period: str | None,
        person: int | None,
        closing: list[int],
    ) -> Template:
        settings = app_settings(request)
        quarter, _ = await goals_quarter(db_session, settings, period)
        view = await service.projection(
            db_session,
            settings=settings,
            user=current_user(request),
            quarter=quarter,
            person_id=person,
            closing=closing,
        )
        name = "_projection" if wants_fragment(request) else "_projection_page"
        context = {
            "view": view,
            "p": view.projection,
            "currency": settings.org_currency,
            "category_labels": CATEGORY_LABELS,
            "user": current_user(request),
        }
        return Template(template_name=f"bonus/{name}.html", context=context, headers=_VARY)

    @get("/", name="bonus.projection")
    async def projection(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        person: PersonParam = None,
    ) -> Template:
        """The projected bonus: won deals so far plus open pipeline weighted by forecast category."""
        return await self._render(request, db_session, period, person, [])

    @post("/what-if", name="bonus.projection_what_if", status_code=200)
    async def what_if(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """The projection again with the ticked deals (`close`) closing won at their full amount."""
        person, closing = read_what_if(await request.form())
        return await self._render(request, db_session, period, person, closing)


# -- the API -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectionDealRead:
    """One of the person's open deals in the projection (amounts in minor units of the org currency)."""

    id: int
    external_id: str
    name: str
    amount: int
    forecast_category: str
    probability: str | None
    weight: str
    closing: bool
    counted: int
    credit: int
    part: int


@dataclass(frozen=True, slots=True)
class ProjectionRead:
    """A person's projected bonus; `state` says why there is none (no_plan, not_running, not_in_plan)."""

    period: str
    person_id: int
    state: str
    currency: str
    plan_version: int | None
    as_of: str | None
    projected: int | None
    earned: int | None
    pipeline: int | None
    joint_score: str | None
    multiplier: str | None
    pool: int | None
    capped: bool
    deals: list[ProjectionDealRead]
    note: str = "A projection, not a promise: the approved run decides what is paid."

    @classmethod
    def of(cls, view: service.ProjectionView) -> "ProjectionRead":
        """The JSON form of a projection view."""
        p = view.projection
        deals = [
            ProjectionDealRead(
                id=d.deal.id,
                external_id=d.deal.external_id,
                name=d.deal.name,
                amount=d.deal.amount,
                forecast_category=d.deal.category,
                probability=None if d.deal.probability is None else str(d.deal.probability),
                weight=str(d.weight),
                closing=d.closing,
                counted=d.counted,
                credit=d.credit,
                part=d.part,
            )
            for d in (p.deals if p is not None else ())
        ]
        return cls(
            period=view.quarter.key,
            person_id=view.target.id,
            state=view.state,
            currency=view.currency,
            plan_version=view.plan_version,
            as_of=None if view.as_of is None else view.as_of.isoformat(),
            projected=None if p is None else p.projected,
            earned=None if p is None else p.earned,
            pipeline=None if p is None else p.pipeline,
            joint_score=None if p is None else str(p.joint_score),
            multiplier=None if p is None else str(p.multiplier),
            pool=None if p is None else p.pool,
            capped=False if p is None else p.capped,
            deals=deals,
        )


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=dict[str, Any],
        description=description + " A JSON problem: type, title, status, detail, errors.",
        media_type="application/problem+json",
        generate_examples=False,
    )


class ProjectionApiController(Controller):
    """`/api/v1/bonus/projection`: the same projection as JSON, under the same rules (a login, or a token
    with the `read` scope acting as its creator)."""

    path = "/api/v1/bonus/projection"
    tags = ("bonus",)

    @get(
        "/",
        name="api.bonus.projection",
        guards=[requires_scope("read")],
        summary="A person's projected bonus",
        description=(
            "The bonus projected from won deals so far plus open deals weighted by forecast category (commit "
            "and closed in full, best case x probability, pipeline 0). `close` (repeatable) counts some of "
            "the person's open deals as closing won in full. Only the person, finance and admins: 404 for "
            "anyone else."
        ),
        responses={
            404: _problem("No such person you may see, or no such period."),
            422: _problem("A parameter is not valid."),
        },
    )
    async def projection(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        person: PersonParam = None,
        close: Annotated[
            list[int] | None, QueryParameter(description="Deal ids to count as closing won in full.")
        ] = None,
    ) -> ProjectionRead:
        """A person's projected bonus."""
        settings = app_settings(request)
        closing = list(close or [])
        if len(closing) > service.MAX_CLOSING:
            raise ValidationFailed(f"Name at most {service.MAX_CLOSING} deals at once.")
        quarter, _ = await goals_quarter(db_session, settings, period)
        view = await service.projection(
            db_session,
            settings=settings,
            user=current_user(request),
            quarter=quarter,
            person_id=person,
            closing=closing,
        )
        return ProjectionRead.of(view)
