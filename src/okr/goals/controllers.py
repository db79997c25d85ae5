"""Goals pages and JSON API (DESIGN 4): parse -> goals services -> page, htmx fragment or JSON.

Pages: the goals of a period (`/goals?period=&team=`), objective and KR forms, a KR's page with its
burn-up chart and check-ins, inline check-ins, reorder, archive, roll forward. Forms are plain posts
that come back with each field's error (422, or 409 when someone changed the record meanwhile); the
inline check-in, reorder and archive buttons use htmx and fall back to plain posts. The API answers the
same data as JSON under `/api/v1/goals`.

Who may do what is decided in the services (okr.goals.guards): members read, leaders write their own
team's objectives, KR owners check in on their KRs, admins do everything; a closed period is read-only.
"""

from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.controllers import safe_next
from okr.auth.guards import credentials, current_user, requires_login, requires_scope
from okr.auth.schemas import CurrentUser
from okr.goals import core
from okr.goals import services as goals
from okr.goals.guards import check_may_write_objective, may_write_goals, requires_goal_writer
from okr.goals.schemas import (
    FILTER_FIELDS,
    ArchiveBody,
    CheckInCreate,
    CheckInForm,
    CheckInRead,
    GoalsProblem,
    KeyResultCreate,
    KeyResultForm,
    KeyResultPatch,
    KeyResultRead,
    ObjectiveCreate,
    ObjectiveForm,
    ObjectiveListRead,
    ObjectivePatch,
    ObjectiveRead,
    ProgressRead,
    RollForwardBody,
    RollForwardRead,
)
from okr.kpis.core import ADDITIVE, KPIS, KpiFilters
from okr.lib.errors import Conflict, NotFound, OkrError, ValidationFailed
from okr.lib.money import MoneyError, decimals, parse_decimal
from okr.lib.periods import PeriodKeyError, Quarter, parse_key, quarter_of
from okr.lib.templating import DASH, number
from okr.lib.web import app_settings, org_today, wants_fragment
from okr.periods.services import resolve_quarter
from okr.settings import Settings

_VARY = {"Vary": "HX-Request"}

KIND_LABELS = {
    "increase_to": "Increase to",
    "decrease_to": "Decrease to",
    "stay_above": "Stay above",
    "stay_below": "Stay below",
    "milestone": "Milestone",
}
UNIT_LABELS = {
    "count": "Count",
    "currency": "Currency",
    "percent": "Percent",
    "days": "Days",
    "hours": "Hours",
}
CONFIDENCE_LABELS = {"on_track": "On track", "at_risk": "At risk", "off_track": "Off track"}
SOURCE_LABELS = {"manual": "Manual (check-ins)", "metric": "Metric (computed from pipeline data)"}

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
TeamParam = Annotated[str | None, QueryParameter(max_length=20, description="Only this team's objectives.")]


# -- formatting and parsing --------------------------------------------------------------------------------


def format_kr_value(value: Decimal | None, unit: str, currency: str) -> str:
    """A KR value as people read it, by its unit: `USD 1,250,000.00`, `25.5 %`, `3 days`, `1,200`."""
    if value is None:
        return DASH
    if unit == "currency":
        return f"{currency} {number(value, decimals(currency))}"
    text = core.format_value(value)
    if unit == "percent":
        return f"{text} %"
    if unit == "days":
        return f"{text} days"
    if unit == "hours":
        return f"{text} h"
    return text


def _decimal(text: str) -> Decimal | None:
    """A typed number (`1,250,000.50` too); None when it is not one."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    try:
        return parse_decimal(cleaned)
    except MoneyError:
        return None


def _int(text: str) -> int | None:
    s = text.strip()
    return int(s) if s.isdigit() and len(s) <= 18 else None


def _texts(data: FormMultiDict, name: str) -> list[str]:
    return [str(v) for v in data.getall(name, []) if str(v).strip()]


def _text(data: FormMultiDict, name: str) -> str:
    return str(data.get(name, "") or "")


def _errors_of(exc: OkrError) -> dict[str, str]:
    found: dict[str, str] = {} if exc.errors else {"form": exc.detail}
    for e in exc.errors:
        name = str(e.get("field") or "form")
        found.setdefault(name, str(e.get("message") or e.get("reason") or exc.detail))
    return found


def _via(request: Request[Any, Any, Any]) -> str | None:
    creds = credentials(request)
    return creds.token_name if creds.is_token else None


PLAN_AHEAD = 2
"""Goals may be planned this many quarters ahead of today's, before any data or period exists there."""


async def goals_quarter(
    session: AsyncSession, settings: Settings, period: str | None
) -> tuple[Quarter, list[Quarter]]:
    """The quarter `period` names (today's when None) and the quarters to offer, newest first: those with
    data or a stored period, and the next PLAN_AHEAD ones; NotFound otherwise."""
    today = org_today(settings)
    ahead = [quarter_of(today, settings.fiscal_year_start_month).shift(n) for n in range(1, PLAN_AHEAD + 1)]
    try:
        quarter, quarters = await resolve_quarter(session, settings=settings, key=period, today=today)
    except NotFound:
        try:
            quarter = parse_key(period or "")
        except PeriodKeyError:
            raise NotFound(
                f"“{period}” is not a period. Periods look like 2026-Q3; pick one from the list."
            ) from None
        if quarter not in ahead:
            raise
        _, quarters = await resolve_quarter(session, settings=settings, key=None, today=today)
    return quarter, sorted({*quarters, *ahead}, reverse=True)


_quarter = goals_quarter


def _here(request: Request[Any, Any, Any]) -> str:
    return str(request.url.path) + ("?" + request.url.query if request.url.query else "")


def _common(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What every goals template uses: the caller, value formatting, the labels."""
    settings = app_settings(request)
    user = current_user(request)
    currency = settings.org_currency

    def kr_value(value: Decimal | None, unit: str) -> str:
        return format_kr_value(value, unit, currency)

    return {
        "user": user,
        "may_write": may_write_goals(user),
        "kr_value": kr_value,
        "kind_labels": KIND_LABELS,
        "unit_labels": UNIT_LABELS,
        "confidence_labels": CONFIDENCE_LABELS,
        "source_labels": SOURCE_LABELS,
        "currency": currency,
        "start_month": settings.fiscal_year_start_month,
        "additive": ADDITIVE,
    }


def _template(
    request: Request[Any, Any, Any], name: str, context: dict[str, Any], status: int = 200
) -> Template:
    full = {**_common(request), **context}
    return Template(template_name=f"goals/{name}.html", context=full, headers=_VARY, status_code=status)


def _team_filter(team: str | None) -> int | None:
    if team is None or team.strip() == "":
        return None
    found = _int(team)
    if found is None:
        raise ValidationFailed(
            "The team filter must be a team id.",
            errors=[{"field": "team", "message": "pick one from the list"}],
        )
    return found


def _goals_url(period: str, team: int | None = None, anchor: str = "") -> str:
    query = f"?period={period}" + (f"&team={team}" if team else "")
    return f"/goals{query}{anchor}"


def _status_for(request: HTMXRequest, status: int) -> int:
    """htmx swaps only 2xx answers: a form with its errors goes back to htmx as 200."""
    return 200 if request.htmx else status


# -- pages -------------------------------------------------------------------------------------------------


class GoalsController(Controller):
    """`/goals`: a period's objectives and KRs, their forms, a KR's page, check-ins, roll forward."""

    path = "/goals"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    async def _goals_context(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        quarter: Quarter,
        quarters: list[Quarter] | None,
        team_id: int | None,
        **more: Any,
    ) -> dict[str, Any]:
        settings = app_settings(request)
        user = current_user(request)
        overview = await goals.goals_overview(
            db_session, settings=settings, quarter=quarter, user=user, team_id=team_id
        )
        if quarters is None:
            _, quarters = await _quarter(db_session, settings, quarter.key)
        next_quarter = quarter.shift(1)
        return {
            "overview": overview,
            "quarter": quarter,
            "quarters": quarters,
            "team": team_id,
            "teams": await goals.teams(db_session),
            "params": {"period": quarter.key, "team": team_id},
            "next_quarter": next_quarter,
            "can_roll_forward": may_write_goals(user) and bool(overview.objectives),
            "checkin_forms": {},
            "next": _goals_url(quarter.key, team_id),
            **more,
        }

    @get("/", name="goals.index")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        team: TeamParam = None,
    ) -> Template:
        """The period's objectives with KR progress, pace and status, scores; htmx gets the list."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        context = await self._goals_context(request, db_session, quarter, quarters, _team_filter(team))
        fragment = wants_fragment(request)
        context["fragment"] = fragment
        return _template(request, "_goals" if fragment else "page", context)

    # -- objectives ------------------------------------------------------------------------------------

    async def _objective_page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        quarter: Quarter,
        form: ObjectiveForm,
        objective: goals.ObjectiveView | None,
        status: int = 200,
    ) -> Template:
        choices = await goals.form_choices(db_session)
        action = (
            "/goals/objectives?period=" + quarter.key
            if objective is None
            else f"/goals/objectives/{objective.id}"
        )
        context = {
            "form": form,
            "objective": objective,
            "quarter": quarter,
            "choices": choices,
            "action": action,
            "back": _goals_url(quarter.key),
        }
        return _template(request, "objective_form", context, status)

    @get("/objectives/new", name="goals.objective_new", guards=[requires_goal_writer])
    async def objective_new(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """The form for a new objective (your own team ticked)."""
        settings = app_settings(request)
        quarter, _ = await _quarter(db_session, settings, period)
        window = await goals.period_window(db_session, settings=settings, quarter=quarter)
        if window.read_only:
            raise goals.PeriodClosed(quarter.key)
        user = current_user(request)
        form = ObjectiveForm(team_ids=[] if user.is_admin else [str(user.team_id)], owner_id=str(user.id))
        return await self._objective_page(request, db_session, quarter, form, None)

    @post("/objectives", name="goals.objective_create", guards=[requires_goal_writer], status_code=200)
    async def objective_create(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Response[Any]:
        """Create an objective; the form comes back with its errors, else go to the goals page."""
        settings = app_settings(request)
        quarter, _ = await _quarter(db_session, settings, period)
        form, fields = _read_objective_form(await request.form())
        if fields is not None:
            try:
                o = await goals.create_objective(
                    db_session, settings=settings, user=current_user(request), quarter=quarter, fields=fields
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
            else:
                return Redirect(
                    _goals_url(quarter.key, anchor=f"#objective-{o.id}"), status_code=HTTP_303_SEE_OTHER
                )
        return await self._objective_page(request, db_session, quarter, form, None, _form_status(form))

    async def _objective(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, objective_id: int
    ) -> tuple[goals.ObjectiveView, Quarter]:
        settings = app_settings(request)
        view = await goals.objective_view(
            db_session, settings=settings, objective_id=objective_id, user=current_user(request)
        )
        quarter, _ = await _quarter(db_session, settings, view.period)
        return view, quarter

    @get("/objectives/{objective_id:int}/edit", name="goals.objective_edit", guards=[requires_goal_writer])
    async def objective_edit(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Template:
        """The form to change an objective (leaders of its teams and admins)."""
        view, quarter = await self._objective(request, db_session, objective_id)
        check_may_write_objective(current_user(request), view.team_ids, view.title)
        if not view.can_edit:
            raise Conflict(
                f"“{view.title}” cannot change: it is archived or its period ({view.period}) is closed."
            )
        return await self._objective_page(request, db_session, quarter, ObjectiveForm.of(view), view)

    @post(
        "/objectives/{objective_id:int}",
        name="goals.objective_update",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def objective_update(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Save an objective's changes; a stale version comes back as 409 with the form and its notice."""
        view, quarter = await self._objective(request, db_session, objective_id)
        check_may_write_objective(current_user(request), view.team_ids, view.title)
        form, fields = _read_objective_form(await request.form())
        version = _int(form.version)
        if fields is not None:
            changes = {
                "title": fields.title,
                "description": fields.description,
                "team_ids": fields.team_ids,
                "owner_id": fields.owner_id,
                "weight": fields.weight,
            }
            try:
                await goals.update_objective(
                    db_session,
                    user=current_user(request),
                    objective_id=objective_id,
                    version=version if version is not None else -1,
                    changes=changes,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
                if isinstance(exc, goals.EditConflict):
                    form.errors["version"] = exc.detail
            else:
                return Redirect(
                    _goals_url(quarter.key, anchor=f"#objective-{objective_id}"),
                    status_code=HTTP_303_SEE_OTHER,
                )
        return await self._objective_page(request, db_session, quarter, form, view, _form_status(form))

    async def _list_answer(
        self,
        request: HTMXRequest,
        db_session: AsyncSession,
        quarter: Quarter,
        data: FormMultiDict,
        *,
        notice: str | None = None,
        problem: str | None = None,
        status: int = 200,
    ) -> Response[Any]:
        """After a button on the goals page: htmx gets the list again, a plain post goes back."""
        team_id = _int(_text(data, "team"))
        if request.htmx:
            context = await self._goals_context(
                request, db_session, quarter, None, team_id, notice=notice, problem=problem, fragment=False
            )
            return _template(request, "_goals", context)
        if problem is not None:
            context = await self._goals_context(request, db_session, quarter, None, team_id, problem=problem)
            return _template(request, "page", context, status)
        return Redirect(
            safe_next(_text(data, "next")) or _goals_url(quarter.key), status_code=HTTP_303_SEE_OTHER
        )

    @post(
        "/objectives/{objective_id:int}/archive",
        name="goals.objective_archive",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def objective_archive(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Archive an objective (with the version shown on the page)."""
        view, quarter = await self._objective(request, db_session, objective_id)
        data = await request.form()
        try:
            await goals.archive_objective(
                db_session,
                user=current_user(request),
                objective_id=objective_id,
                version=_int(_text(data, "version")),
            )
        except Conflict as exc:
            await db_session.rollback()
            return await self._list_answer(request, db_session, quarter, data, problem=exc.detail, status=409)
        return await self._list_answer(request, db_session, quarter, data, notice=f"Archived “{view.title}”.")

    @post(
        "/objectives/{objective_id:int}/move",
        name="goals.objective_move",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def objective_move(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Move an objective one place up or down."""
        _, quarter = await self._objective(request, db_session, objective_id)
        data = await request.form()
        await goals.move_objective(
            db_session,
            user=current_user(request),
            objective_id=objective_id,
            direction=_text(data, "direction"),
        )
        return await self._list_answer(request, db_session, quarter, data)

    # -- key results -----------------------------------------------------------------------------------

    async def _key_result_page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        objective: goals.ObjectiveView,
        form: KeyResultForm,
        key_result: goals.KeyResultView | None,
        status: int = 200,
    ) -> Template:
        choices = await goals.form_choices(db_session)
        action = (
            f"/goals/objectives/{objective.id}/key-results"
            if key_result is None
            else f"/goals/key-results/{key_result.id}"
        )
        context = {
            "form": form,
            "objective": objective,
            "key_result": key_result,
            "choices": choices,
            "action": action,
            "back": _goals_url(objective.period, anchor=f"#objective-{objective.id}"),
            "filter_fields": FILTER_FIELDS,
        }
        return _template(request, "key_result_form", context, status)

    @get(
        "/objectives/{objective_id:int}/key-results/new",
        name="goals.key_result_new",
        guards=[requires_goal_writer],
    )
    async def key_result_new(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Template:
        """The form for a new KR of an objective."""
        view, _ = await self._objective(request, db_session, objective_id)
        check_may_write_objective(current_user(request), view.team_ids, view.title)
        if not view.can_edit:
            raise Conflict(
                f"“{view.title}” cannot change: it is archived or its period ({view.period}) is closed."
            )
        return await self._key_result_page(request, db_session, view, KeyResultForm(), None)

    @post(
        "/objectives/{objective_id:int}/key-results",
        name="goals.key_result_create",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def key_result_create(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Create a KR; the form comes back with its errors, else go to the KR's page."""
        settings = app_settings(request)
        view, _ = await self._objective(request, db_session, objective_id)
        check_may_write_objective(current_user(request), view.team_ids, view.title)
        form, fields = _read_key_result_form(await request.form(), settings.org_currency)
        if fields is not None:
            try:
                kr = await goals.create_key_result(
                    db_session,
                    settings=settings,
                    user=current_user(request),
                    objective_id=objective_id,
                    fields=fields,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
            else:
                return Redirect(f"/goals/key-results/{kr.id}?saved=1", status_code=HTTP_303_SEE_OTHER)
        return await self._key_result_page(request, db_session, view, form, None, _form_status(form))

    @get("/key-results/{key_result_id:int}", name="goals.key_result")
    async def key_result(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
        saved: Annotated[str | None, QueryParameter(max_length=4)] = None,
        team: TeamParam = None,
    ) -> Template:
        """A KR: its figures, burn-up chart, check-in history, inline check-in and the records behind it."""
        detail = await goals.key_result_detail(
            db_session,
            settings=app_settings(request),
            key_result_id=key_result_id,
            user=current_user(request),
        )
        form = CheckInForm(key_result_id)
        context = {
            "d": detail,
            "kr": detail.key_result,
            "checkin_form": form,
            "saved": bool(saved),
            "back": _goals_url(detail.objective.period, _team_filter(team), f"#kr-{key_result_id}"),
            "fragment": False,
        }
        return _template(request, "key_result", context)

    @get("/key-results/{key_result_id:int}/edit", name="goals.key_result_edit", guards=[requires_goal_writer])
    async def key_result_edit(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
    ) -> Template:
        """The form to change a KR (leaders of its objective's teams and admins)."""
        kr = await goals.key_result_view(
            db_session,
            settings=app_settings(request),
            key_result_id=key_result_id,
            user=current_user(request),
        )
        view, _ = await self._objective(request, db_session, kr.objective_id)
        check_may_write_objective(current_user(request), view.team_ids, view.title)
        if not view.can_edit or kr.archived_at is not None:
            raise Conflict(
                f"“{kr.title}” cannot change: it is archived or its period ({kr.period}) is closed."
            )
        return await self._key_result_page(request, db_session, view, KeyResultForm.of(kr), kr)

    @post(
        "/key-results/{key_result_id:int}",
        name="goals.key_result_update",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def key_result_update(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Save a KR's changes; a stale version comes back as 409 with the form and its notice."""
        settings = app_settings(request)
        user = current_user(request)
        kr = await goals.key_result_view(
            db_session, settings=settings, key_result_id=key_result_id, user=user
        )
        view, _ = await self._objective(request, db_session, kr.objective_id)
        check_may_write_objective(user, view.team_ids, view.title)
        form, fields = _read_key_result_form(await request.form(), settings.org_currency)
        version = _int(form.version)
        if fields is not None:
            changes = {name: getattr(fields, name) for name in goals.KEY_RESULT_FIELDS}
            try:
                await goals.update_key_result(
                    db_session,
                    settings=settings,
                    user=user,
                    key_result_id=key_result_id,
                    version=version if version is not None else -1,
                    changes=changes,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
                if isinstance(exc, goals.EditConflict):
                    form.errors["version"] = exc.detail
            else:
                return Redirect(f"/goals/key-results/{key_result_id}?saved=1", status_code=HTTP_303_SEE_OTHER)
        return await self._key_result_page(request, db_session, view, form, kr, _form_status(form))

    @post(
        "/key-results/{key_result_id:int}/archive",
        name="goals.key_result_archive",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def key_result_archive(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Archive a KR (with the version shown on the page)."""
        settings = app_settings(request)
        kr = await goals.key_result_place(db_session, key_result_id=key_result_id)
        quarter, _ = await _quarter(db_session, settings, kr.period)
        data = await request.form()
        try:
            await goals.archive_key_result(
                db_session,
                user=current_user(request),
                key_result_id=key_result_id,
                version=_int(_text(data, "version")),
            )
        except Conflict as exc:
            await db_session.rollback()
            return await self._list_answer(request, db_session, quarter, data, problem=exc.detail, status=409)
        return await self._list_answer(request, db_session, quarter, data, notice=f"Archived “{kr.title}”.")

    @post(
        "/key-results/{key_result_id:int}/move",
        name="goals.key_result_move",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def key_result_move(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Move a KR one place up or down within its objective."""
        settings = app_settings(request)
        kr = await goals.key_result_place(db_session, key_result_id=key_result_id)
        quarter, _ = await _quarter(db_session, settings, kr.period)
        data = await request.form()
        await goals.move_key_result(
            db_session,
            user=current_user(request),
            key_result_id=key_result_id,
            direction=_text(data, "direction"),
        )
        return await self._list_answer(request, db_session, quarter, data)

    # -- check-ins -------------------------------------------------------------------------------------

    @post("/key-results/{key_result_id:int}/check-ins", name="goals.check_in", status_code=200)
    async def check_in(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Check in on a KR; htmx gets the objective (goals page) or the KR's figures (KR page) again."""
        settings = app_settings(request)
        user = current_user(request)
        data = await request.form()
        form = CheckInForm(
            key_result_id,
            value=_text(data, "value").strip(),
            confidence=_text(data, "confidence"),
            note=_text(data, "note"),
        )
        value = None
        if form.value:
            value = _decimal(form.value)
            if value is None:
                form.errors["value"] = "Enter a number, such as 42 or 1250.50."
        if not form.errors:
            try:
                await goals.check_in(
                    db_session,
                    settings=settings,
                    user=user,
                    key_result_id=key_result_id,
                    value=value,
                    confidence=form.confidence,
                    note=form.note,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
            else:
                form = CheckInForm(key_result_id, notice="Checked in.")
        status = 422 if form.errors else 200
        view_name = _text(data, "view")
        if not request.htmx and not form.errors:
            fallback = f"/goals/key-results/{key_result_id}"
            return Redirect(safe_next(_text(data, "next") or fallback), status_code=HTTP_303_SEE_OTHER)
        if view_name == "kr" and request.htmx:
            # Pages that show single KRs (the personal page) get the KR back, redrawn with its new value.
            kr_view = await goals.key_result_view(
                db_session, settings=settings, key_result_id=key_result_id, user=user
            )
            context = {
                **_common(request),
                "kr": kr_view,
                "o": {"id": kr_view.objective_id, "can_edit": False},
                "kr_view": "kr",
                "checkin_forms": {key_result_id: form},
                "next": _text(data, "next"),
                "team": None,
            }
            return _template(request, "_key_result", context)
        if view_name == "row" and request.htmx:
            kr = await goals.key_result_place(db_session, key_result_id=key_result_id)
            quarter, _ = await _quarter(db_session, settings, kr.period)
            context = await self._goals_context(
                request,
                db_session,
                quarter,
                None,
                _int(_text(data, "team")),
                checkin_forms={key_result_id: form},
            )
            context["o"] = context["overview"].objective(kr.objective_id)
            context["oob"] = True
            return _template(request, "_objective", context)
        detail = await goals.key_result_detail(
            db_session, settings=settings, key_result_id=key_result_id, user=user
        )
        context = {
            "d": detail,
            "kr": detail.key_result,
            "checkin_form": form,
            "saved": False,
            "back": _goals_url(detail.objective.period, anchor=f"#kr-{key_result_id}"),
            "fragment": bool(request.htmx),
        }
        name = "_key_result_detail" if request.htmx else "key_result"
        return _template(request, name, context, _status_for(request, status))

    # -- roll forward ----------------------------------------------------------------------------------

    @post("/roll-forward", name="goals.roll_forward", guards=[requires_goal_writer], status_code=200)
    async def roll_forward(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Response[Any]:
        """Copy the period's objectives and KRs (yours, for a leader) into the next period, then show it."""
        settings = app_settings(request)
        data = await request.form()
        quarter, _ = await _quarter(db_session, settings, _text(data, "period") or period)
        try:
            result = await goals.roll_forward(
                db_session, settings=settings, user=current_user(request), quarter=quarter
            )
        except (ValidationFailed, Conflict) as exc:
            await db_session.rollback()
            context = await self._goals_context(request, db_session, quarter, None, None, problem=exc.detail)
            return _template(request, "page", context, exc.status_code)
        target, quarters = await _quarter(db_session, settings, result.target.key)
        context = await self._goals_context(
            request, db_session, target, quarters, None, notice=result.message
        )
        return _template(request, "page", context)


def _form_status(form: ObjectiveForm | KeyResultForm) -> int:
    if "version" in form.errors:
        return 409
    if "form" in form.errors:
        return 409
    return 422


def _read_objective_form(data: FormMultiDict) -> tuple[ObjectiveForm, goals.ObjectiveFields | None]:
    """The form as typed, and its fields when every value could be read (else errors on the form)."""
    form = ObjectiveForm(
        title=_text(data, "title"),
        description=_text(data, "description"),
        team_ids=_texts(data, "team_ids"),
        owner_id=_text(data, "owner_id"),
        weight=_text(data, "weight").strip(),
        version=_text(data, "version"),
    )
    team_ids = [_int(t) for t in form.team_ids]
    if any(t is None for t in team_ids):
        form.errors["team_ids"] = "Choose teams from the list."
    owner = _int(form.owner_id) if form.owner_id.strip() else None
    if form.owner_id.strip() and owner is None:
        form.errors["owner_id"] = "Choose the owner from the list, or leave it empty."
    weight = _decimal(form.weight)
    if weight is None:
        form.errors["weight"] = "Enter a weight, such as 1 or 0.5."
    # What can be read is checked too, so every field's problem shows at once.
    for name, message in core.validate_objective(
        title=form.title, weight=weight or Decimal(1), team_ids=form.team_ids
    ).items():
        form.errors.setdefault(name, message)
    if form.errors or weight is None:
        return form, None
    fields = goals.ObjectiveFields(
        title=form.title,
        description=form.description.strip(),
        team_ids=tuple(t for t in team_ids if t is not None),
        owner_id=owner,
        weight=weight,
    )
    return form, fields


def _read_key_result_form(
    data: FormMultiDict, currency: str
) -> tuple[KeyResultForm, goals.KeyResultFields | None]:
    """The form as typed, and its fields when every value could be read (else errors on the form)."""
    form = KeyResultForm(
        title=_text(data, "title"),
        kind=_text(data, "kind"),
        unit=_text(data, "unit"),
        source=_text(data, "source") or "manual",
        metric=_text(data, "metric"),
        filters={name: _text(data, f"filter_{name}").strip() for name in FILTER_FIELDS},
        start_value=_text(data, "start_value").strip(),
        target=_text(data, "target").strip(),
        stretch=_text(data, "stretch").strip(),
        weight=_text(data, "weight").strip(),
        owner_ids=_texts(data, "owner_ids"),
        counts_toward_bonus=_text(data, "counts_toward_bonus") in ("1", "on", "true", "yes"),
        version=_text(data, "version"),
    )
    numbers: dict[str, Decimal | None] = {}
    for name in ("start_value", "target", "weight"):
        numbers[name] = _decimal(getattr(form, name))
        if numbers[name] is None:
            form.errors[name] = "Enter a number."
    stretch = None
    if form.stretch:
        stretch = _decimal(form.stretch)
        if stretch is None:
            form.errors["stretch"] = "Enter a number, or leave it empty."
    owners = [_int(p) for p in form.owner_ids]
    if any(p is None for p in owners):
        form.errors["owner_ids"] = "Choose the owners from the list."
    ids: dict[str, int | None] = {}
    for name in ("team", "person", "campaign"):
        text = form.filters.get(name, "")
        ids[name] = _int(text) if text else None
        if text and ids[name] is None:
            form.errors[f"filter_{name}"] = "Pick one from the list, or leave it empty for any."
    metric = form.metric if form.source == "metric" else None
    filters = KpiFilters(
        team_id=ids["team"],
        person_id=ids["person"],
        campaign_id=ids["campaign"],
        channel=form.filters.get("channel") or None,
        segment=form.filters.get("segment") or None,
    )
    if form.source != "metric":
        filters = KpiFilters()
    for name, message in core.validate_key_result(
        title=form.title,
        kind=form.kind,
        unit=goals.kpi_unit(KPIS[metric]) if metric and metric in KPIS else form.unit,
        start_value=numbers["start_value"],
        target=numbers["target"],
        stretch=stretch,
        weight=numbers["weight"],
        counts_toward_bonus=form.counts_toward_bonus,
        source=form.source,
        metric=metric,
        filters=None,
    ).items():
        form.errors.setdefault(name, message)
    start, target, weight = numbers["start_value"], numbers["target"], numbers["weight"]
    if form.errors or start is None or target is None or weight is None:
        return form, None
    fields = goals.KeyResultFields(
        title=form.title,
        kind=form.kind,
        unit=form.unit,
        start_value=start,
        target=target,
        stretch=stretch,
        weight=weight,
        owner_ids=tuple(p for p in owners if p is not None),
        counts_toward_bonus=form.counts_toward_bonus,
        source=form.source,
        metric=metric,
        filters=filters,
    )
    return form, fields


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=GoalsProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_R400 = _problem("The body or a parameter cannot be read (wrong type, unknown field).")
_R403 = _problem(
    "Not allowed: your role or team may not change this goal (leaders write their own team's objectives; "
    "KR owners check in), or the token lacks the scope."
)
_R404 = _problem("No such objective, key result or period.")
_R409 = _problem(
    "Conflict: `version` is not the current one (someone changed the record since you read it: read it "
    "again), the record is archived, the period is closed, or everything was rolled forward before."
)
_R422 = _problem("A field is not valid; `errors` names each field and why.")

_READ = [requires_scope("read")]
_WRITE = [requires_scope("import")]


def _actor(request: Request[Any, Any, Any]) -> tuple[CurrentUser, str | None]:
    return current_user(request), _via(request)


async def _api_quarter(
    db_session: AsyncSession, request: Request[Any, Any, Any], period: str | None
) -> Quarter:
    quarter, _ = await _quarter(db_session, app_settings(request), period)
    return quarter


class GoalsApiController(Controller):
    """`/api/v1/goals/...`: objectives, key results, check-ins and a KR's progress.

    Reading needs a login or a token with the `read` scope; changes need a token with the `import` scope
    (a session cookie may only read through the API) whose person may make the change.
    """

    path = "/api/v1/goals"
    tags = ("goals",)

    @get(
        "/objectives",
        name="api.goals.objectives",
        guards=_READ,
        summary="A period's objectives",
        description=(
            "The objectives of a period in their order, each with its key results, their values now, "
            "attainment, progress, pace and status, and the objective's score and band; plus the period's "
            "overall score. Example: `GET /api/v1/goals/objectives?period=2026-Q3&team=2`."
        ),
        responses={404: _R404, 422: _R422},
    )
    async def objectives(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        team: Annotated[int | None, QueryParameter(ge=1, description="Only this team's objectives.")] = None,
        include_archived: Annotated[bool, QueryParameter(description="Archived ones too.")] = False,
    ) -> ObjectiveListRead:
        """A period's objectives."""
        overview = await goals.goals_overview(
            db_session,
            settings=app_settings(request),
            quarter=await _api_quarter(db_session, request, period),
            user=current_user(request),
            team_id=team,
            include_archived=include_archived,
        )
        return ObjectiveListRead.of(overview)

    @get(
        "/objectives/{objective_id:int}",
        name="api.goals.objective",
        guards=_READ,
        summary="An objective",
        description="One objective (archived ones too) with its key results and score.",
        responses={404: _R404},
    )
    async def objective(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter(description="The objective's id.")],
    ) -> ObjectiveRead:
        """One objective."""
        view = await goals.objective_view(
            db_session, settings=app_settings(request), objective_id=objective_id, user=current_user(request)
        )
        return ObjectiveRead.of(view)

    @post(
        "/objectives",
        name="api.goals.objective_create",
        guards=_WRITE,
        summary="Create an objective",
        description=(
            "A new objective in a period, last in its order. A leader's objective must name their own "
            "team among `team_ids` (a joint objective names several). 409 when the period is closed."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def objective_create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[ObjectiveCreate],
    ) -> ObjectiveRead:
        """Create an objective."""
        settings = app_settings(request)
        user, via = _actor(request)
        quarter = await _api_quarter(db_session, request, data.period)
        o = await goals.create_objective(
            db_session, settings=settings, user=user, quarter=quarter, fields=data.fields(), via=via
        )
        return ObjectiveRead.of(
            await goals.objective_view(db_session, settings=settings, objective_id=o.id, user=user)
        )

    @patch(
        "/objectives/{objective_id:int}",
        name="api.goals.objective_update",
        guards=_WRITE,
        summary="Change an objective",
        description=(
            "Change the fields sent; `version` must be the one you read, else 409 (someone changed it "
            "since: read it again)."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def objective_update(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter(description="The objective's id.")],
        data: JSONBody[ObjectivePatch],
    ) -> ObjectiveRead:
        """Change an objective."""
        user, via = _actor(request)
        await goals.update_objective(
            db_session,
            user=user,
            objective_id=objective_id,
            version=data.version,
            changes=data.changes(),
            via=via,
        )
        return ObjectiveRead.of(
            await goals.objective_view(
                db_session, settings=app_settings(request), objective_id=objective_id, user=user
            )
        )

    @post(
        "/objectives/{objective_id:int}/archive",
        name="api.goals.objective_archive",
        guards=_WRITE,
        status_code=200,
        summary="Archive an objective",
        description="It leaves the period's scores and pages; archiving twice changes nothing.",
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409},
    )
    async def objective_archive(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        objective_id: Annotated[int, PathParameter(description="The objective's id.")],
        data: JSONBody[ArchiveBody],
    ) -> ObjectiveRead:
        """Archive an objective."""
        user, via = _actor(request)
        await goals.archive_objective(
            db_session, user=user, objective_id=objective_id, version=data.version, via=via
        )
        return ObjectiveRead.of(
            await goals.objective_view(
                db_session, settings=app_settings(request), objective_id=objective_id, user=user
            )
        )

    @get(
        "/key-results",
        name="api.goals.key_results",
        guards=_READ,
        summary="Key results",
        description="The key results of one objective (`objective_id`), or of every objective of a period.",
        responses={404: _R404, 422: _R422},
    )
    async def key_results(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        objective_id: Annotated[
            int | None, QueryParameter(ge=1, description="Only this objective's.")
        ] = None,
    ) -> list[KeyResultRead]:
        """Key results of an objective or a period."""
        settings = app_settings(request)
        user = current_user(request)
        if objective_id is not None:
            view = await goals.objective_view(
                db_session, settings=settings, objective_id=objective_id, user=user
            )
            return [KeyResultRead.of(kr) for kr in view.key_results]
        overview = await goals.goals_overview(
            db_session, settings=settings, quarter=await _api_quarter(db_session, request, period), user=user
        )
        return [KeyResultRead.of(kr) for kr in overview.key_results]

    @get(
        "/key-results/{key_result_id:int}",
        name="api.goals.key_result",
        guards=_READ,
        summary="A key result",
        description="One key result (archived ones too) with its value now and its scoring.",
        responses={404: _R404},
    )
    async def key_result(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
    ) -> KeyResultRead:
        """One key result."""
        view = await goals.key_result_view(
            db_session,
            settings=app_settings(request),
            key_result_id=key_result_id,
            user=current_user(request),
        )
        return KeyResultRead.of(view)

    @post(
        "/key-results",
        name="api.goals.key_result_create",
        guards=_WRITE,
        summary="Create a key result",
        description=(
            "A new key result of an objective: `source` metric (a KPI of the library in `metric`, narrowed "
            "by `filters`; its value is computed) or manual (its value comes from check-ins). Values are in "
            "the KR's unit: currency in major units of the organisation's currency, percent in percentage "
            "points. The answer's `sandbagged` says when the target asks no more than the trailing "
            "two-quarter actual."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def key_result_create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[KeyResultCreate],
    ) -> KeyResultRead:
        """Create a key result."""
        settings = app_settings(request)
        user, via = _actor(request)
        kr = await goals.create_key_result(
            db_session,
            settings=settings,
            user=user,
            objective_id=data.objective_id,
            fields=data.fields(),
            via=via,
        )
        return KeyResultRead.of(
            await goals.key_result_view(db_session, settings=settings, key_result_id=kr.id, user=user)
        )

    @patch(
        "/key-results/{key_result_id:int}",
        name="api.goals.key_result_update",
        guards=_WRITE,
        summary="Change a key result",
        description="Change the fields sent; `version` must be the one you read, else 409.",
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def key_result_update(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
        data: JSONBody[KeyResultPatch],
    ) -> KeyResultRead:
        """Change a key result."""
        settings = app_settings(request)
        user, via = _actor(request)
        await goals.update_key_result(
            db_session,
            settings=settings,
            user=user,
            key_result_id=key_result_id,
            version=data.version,
            changes=data.changes(),
            via=via,
        )
        return KeyResultRead.of(
            await goals.key_result_view(db_session, settings=settings, key_result_id=key_result_id, user=user)
        )

    @post(
        "/key-results/{key_result_id:int}/archive",
        name="api.goals.key_result_archive",
        guards=_WRITE,
        status_code=200,
        summary="Archive a key result",
        description="It leaves its objective's score; its check-ins stay. Archiving twice changes nothing.",
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409},
    )
    async def key_result_archive(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
        data: JSONBody[ArchiveBody],
    ) -> KeyResultRead:
        """Archive a key result."""
        user, via = _actor(request)
        await goals.archive_key_result(
            db_session, user=user, key_result_id=key_result_id, version=data.version, via=via
        )
        return KeyResultRead.of(
            await goals.key_result_view(
                db_session, settings=app_settings(request), key_result_id=key_result_id, user=user
            )
        )

    @get(
        "/key-results/{key_result_id:int}/check-ins",
        name="api.goals.check_ins",
        guards=_READ,
        summary="A key result's check-ins",
        description="Newest first: value (manual KRs), confidence, note, author, time.",
        responses={404: _R404},
    )
    async def check_ins(
        self,
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
    ) -> list[CheckInRead]:
        """A key result's check-ins."""
        return [CheckInRead.of(c) for c in await goals.check_ins(db_session, key_result_id=key_result_id)]

    @post(
        "/key-results/{key_result_id:int}/check-ins",
        name="api.goals.check_in",
        guards=_WRITE,
        summary="Check in on a key result",
        description=(
            "A value (manual KRs only: a metric KR's value is computed), a confidence and a note. The KR's "
            "owners, the leaders of its objective's teams and admins may check in."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def check_in(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
        data: JSONBody[CheckInCreate],
    ) -> CheckInRead:
        """Check in on a key result."""
        user, via = _actor(request)
        c = await goals.check_in(
            db_session,
            settings=app_settings(request),
            user=user,
            key_result_id=key_result_id,
            value=data.value,
            confidence=data.confidence,
            note=data.note,
            via=via,
        )
        found = await goals.check_ins(db_session, key_result_id=key_result_id)
        return CheckInRead.of(next(x for x in found if x.id == c.id))

    @get(
        "/key-results/{key_result_id:int}/progress",
        name="api.goals.progress",
        guards=_READ,
        summary="A key result's computed progress",
        description=(
            "Its value, attainment, progress, expected value today, pace and status; its value through the "
            "period (check-ins, or its KPI at weekly cutoffs); the linear forecast at period end and, for "
            "revenue KRs while the period runs, the forecast from open opportunities."
        ),
        responses={404: _R404},
    )
    async def progress(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        key_result_id: Annotated[int, PathParameter(description="The key result's id.")],
    ) -> ProgressRead:
        """A key result's progress."""
        detail = await goals.key_result_detail(
            db_session,
            settings=app_settings(request),
            key_result_id=key_result_id,
            user=current_user(request),
        )
        return ProgressRead.of(detail)

    @post(
        "/roll-forward",
        name="api.goals.roll_forward",
        guards=_WRITE,
        summary="Roll a period forward",
        description=(
            "Copy the period's objectives and key results (a leader: their team's) into the next period. "
            "Objectives copied before are not copied again (409 when nothing is left); a key result whose "
            "new start already reached its target is left out and named."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def roll_forward(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[RollForwardBody],
    ) -> RollForwardRead:
        """Roll a period forward."""
        user, via = _actor(request)
        result = await goals.roll_forward(
            db_session,
            settings=app_settings(request),
            user=user,
            quarter=await _api_quarter(db_session, request, data.period),
            via=via,
        )
        return RollForwardRead.of(result)


__all__ = ["GoalsApiController", "GoalsController", "format_kr_value"]
