"""The personal page (`/me`, `/people/{id}`) and the team page (`/teams/{id}`): parse -> home services ->
the page, or the fragment htmx swaps in place when the period changes (the URL follows).

Anyone logged in opens their own page and any team page (goals and KPIs are everyone's to read, DESIGN 8);
another person's page only their team's leader, finance and admins (okr.home.guards): it will carry the
person's bonus projection. KRs are drawn by the goals feature's own fragments.
"""

from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login
from okr.goals.controllers import (
    CONFIDENCE_LABELS,
    KIND_LABELS,
    SOURCE_LABELS,
    UNIT_LABELS,
    format_kr_value,
    goals_quarter,
)
from okr.goals.schemas import CheckInForm
from okr.home import services as home
from okr.kpis.core import ADDITIVE
from okr.lib.templating import url_with
from okr.lib.web import app_settings, wants_fragment

_VARY = {"Vary": "HX-Request"}

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
# Set by the check-in form's way back (`next`), to say "Checked in." beside that KR; anything else is ignored.
CheckedParam = Annotated[str | None, QueryParameter(max_length=20)]


def _common(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What the goals fragments these pages include expect: value formatting and labels."""
    settings = app_settings(request)
    currency = settings.org_currency

    def kr_value(value: Decimal | None, unit: str) -> str:
        return format_kr_value(value, unit, currency)

    return {
        "user": current_user(request),
        "kr_value": kr_value,
        "kind_labels": KIND_LABELS,
        "unit_labels": UNIT_LABELS,
        "confidence_labels": CONFIDENCE_LABELS,
        "source_labels": SOURCE_LABELS,
        "currency": currency,
        "start_month": settings.fiscal_year_start_month,
        "additive": ADDITIVE,
    }


def _render(request: HTMXRequest, page: str, context: dict[str, Any]) -> Template:
    """The page, or its fragment for an htmx period switch."""
    fragment = wants_fragment(request)
    name = f"home/_{page}.html" if fragment else f"home/{page}.html"
    return Template(
        template_name=name, context={**_common(request), **context, "fragment": fragment}, headers=_VARY
    )


def _checked(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


class HomeController(Controller):
    """`/me`, `/people/{id}` and `/teams/{id}`."""

    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    async def _personal(
        self,
        request: HTMXRequest,
        db_session: AsyncSession,
        person: home.PersonCard,
        path: str,
        period: str | None,
        checked: str | None,
    ) -> Template:
        settings = app_settings(request)
        user = current_user(request)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        page = await home.personal_page(
            db_session, settings=settings, quarter=quarter, person=person, user=user
        )
        done = _checked(checked)
        forms = {}
        if done is not None and any(kr.id == done for kr in page.key_results):
            forms[done] = CheckInForm(done, notice="Checked in.")
        context = {
            "personal": page,
            "own": person.id == user.id,
            "quarter": quarter,
            "quarters": quarters,
            "path": path,
            "here": url_with(path, {"period": quarter.key}),
            "checkin_forms": forms,
        }
        return _render(request, "person", context)

    @get("/me", name="home.me")
    async def me(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        checked: CheckedParam = None,
    ) -> Template:
        """Your KRs, your share of the joint metric KRs and what needs you; htmx gets the content."""
        person = home.PersonCard.of(current_user(request))
        return await self._personal(request, db_session, person, "/me", period, checked)

    @get("/people/{person_id:int}", name="home.person")
    async def person(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        person_id: Annotated[int, PathParameter()],
        period: PeriodParam = None,
        checked: CheckedParam = None,
    ) -> Template:
        """Someone's personal page: for their team's leader, finance and admins (404 for anyone else)."""
        person = await home.visible_person(db_session, user=current_user(request), person_id=person_id)
        return await self._personal(request, db_session, person, f"/people/{person_id}", period, checked)

    @get("/teams", name="home.teams")
    async def teams(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """Every team: its people, the objectives it owns in the period and their score; each links on."""
        settings = app_settings(request)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        overview, summaries = await home.team_summaries(
            db_session, settings=settings, quarter=quarter, user=current_user(request)
        )
        context = {
            "summaries": summaries,
            "overview": overview,
            "quarter": quarter,
            "quarters": quarters,
            "path": "/teams",
        }
        return _render(request, "teams", context)

    @get("/teams/{team_id:int}", name="home.team")
    async def team(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        team_id: Annotated[int, PathParameter()],
        period: PeriodParam = None,
    ) -> Template:
        """A team's objectives with scores, its key KPIs and its people with their KRs."""
        settings = app_settings(request)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        page = await home.team_page(
            db_session, settings=settings, quarter=quarter, team_id=team_id, user=current_user(request)
        )
        here = url_with(f"/teams/{team_id}", {"period": quarter.key})
        context = {
            "team_view": page,
            "quarter": quarter,
            "quarters": quarters,
            "path": f"/teams/{team_id}",
            "here": here,
            # What goals/_goals.html (the team's objectives, drawn and updated by the goals feature) reads.
            "overview": page.overview,
            "team": team_id,
            "teams": [page.team],
            "next_quarter": quarter.shift(1),
            "can_roll_forward": False,
            "checkin_forms": {},
            "next": here,
        }
        return _render(request, "team", context)
