"""The bonus plan editor (DESIGN 6.1) and its JSON API: parse -> okr.bonus.plans -> page, fragment or JSON.

`/bonus/plan?period=` shows the version in force, the gate curve with today's joint score on it, the
editor (leaders and admins, while the period is open) or the plan in words (everyone else), and the
version history with an approve button for admins. Adding or removing a curve point or a team row and
redrawing the curve are htmx posts to `/bonus/plan/preview`; without JavaScript the same buttons post the
whole form, which comes back changed and unsaved.
"""

from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import credentials, current_user, requires_login, requires_scope
from okr.bonus import plans as plan_service
from okr.bonus import services as bonus
from okr.bonus.plan_schemas import (
    CAP_KINDS,
    PlanCreate,
    PlanForm,
    PlanListRead,
    PlanProblem,
    PlanRead,
    check_plan_form,
    preview_curve,
    read_decimal,
    read_plan_form,
)
from okr.db.people import Period, PeriodState
from okr.goals.controllers import goals_quarter
from okr.goals.core import DEFAULT_KR_CAP
from okr.lib.errors import Conflict, NotFound, OkrError, ValidationFailed
from okr.lib.periods import Quarter, parse_key
from okr.lib.web import app_settings, wants_fragment
from okr.settings import Settings

_VARY = {"Vary": "HX-Request"}

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q4; today's quarter when left out."
    ),
]

RULE_LABELS = {
    "by_credit": "By credit (each person's share of the team's credit)",
    "equal": "Equal (prorated by days employed)",
    "by_target_bonus": "By target bonus",
}
SCOPE_LABELS = {"revenue": "Revenue (won deals)", "pipeline": "Pipeline (opportunities created)"}
LEFTOVER_LABELS = {"carry_forward": "Carry forward", "return": "Return to the company"}
MODEL_LABELS = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "u_shaped": "U-shaped",
    "w_shaped": "W-shaped",
    "full_path": "Full path",
    "custom": "Custom",
    "data_driven": "Data-driven",
}
CAP_LABELS = {"none": "No cap", "amount": "An amount", "multiple": "× target bonus"}


def _plan_url(period: str, anchor: str = "", **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"/bonus/plan?period={period}{extra}{anchor}"


def _via(request: Request[Any, Any, Any]) -> str | None:
    creds = credentials(request)
    return creds.token_name if creds.is_token else None


def _errors_of(exc: OkrError) -> dict[str, str]:
    found: dict[str, str] = {} if exc.errors else {"form": exc.detail}
    for e in exc.errors:
        found.setdefault(str(e.get("field") or "form"), str(e.get("message") or exc.detail))
    return found


def _common(request: Request[Any, Any, Any]) -> dict[str, Any]:
    settings = app_settings(request)
    return {
        "user": current_user(request),
        "currency": settings.org_currency,
        "rule_labels": RULE_LABELS,
        "scope_labels": SCOPE_LABELS,
        "leftover_labels": LEFTOVER_LABELS,
        "model_labels": MODEL_LABELS,
        "cap_labels": CAP_LABELS,
        "cap_kinds": CAP_KINDS,
        "models": plan_service.MODELS,
        "scopes": plan_service.SCOPES,
        "rules": plan_service.RULES,
        "leftover_policies": plan_service.LEFTOVER_POLICIES,
    }


def _template(
    request: Request[Any, Any, Any], name: str, context: dict[str, Any], status: int = 200
) -> Template:
    return Template(
        template_name=f"bonus/{name}.html",
        context={**_common(request), **context},
        headers=_VARY,
        status_code=status,
    )


async def _joint(
    db_session: AsyncSession, settings: Settings, quarter: Quarter, kr_cap: Decimal | None
) -> bonus.JointScore:
    cap = kr_cap if kr_cap is not None and kr_cap > 0 else DEFAULT_KR_CAP
    return await bonus.joint_score(db_session, settings=settings, quarter=quarter, kr_cap=cap)


def _chart_of_form(form: PlanForm, score: Decimal) -> plan_service.GateChart:
    curve, problem = preview_curve(form)
    return plan_service.gate_chart(curve, score, problem=problem)


class PlanController(Controller):
    """`/bonus/plan`: a period's bonus plan, its editor, its versions."""

    path = "/bonus/plan"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        quarter: Quarter,
        quarters: list[Quarter],
        *,
        form: PlanForm | None = None,
        status: int = 200,
        fragment: bool = False,
        **more: Any,
    ) -> Template:
        settings = app_settings(request)
        user = current_user(request)
        period = await plan_service.period_of(db_session, settings=settings, quarter=quarter)
        versions = await plan_service.plan_versions(db_session, period.id) if period is not None else []
        approved = next((v for v in versions if v.plan.status == "approved"), None)
        latest = versions[0] if versions else None
        closed = period is not None and period.state == PeriodState.CLOSED
        may_write = plan_service.may_write_plan(user) and not closed
        if form is None:
            base = (
                plan_service.fields_of(latest.plan)
                if latest is not None
                else await plan_service.default_fields(db_session, period=period, settings=settings)
            )
            form = PlanForm.of(base, settings.org_currency)
        shown = approved or latest
        kr_cap = shown.plan.kr_cap if shown is not None else None
        if may_write:
            kr_cap = read_decimal(form.kr_cap)
        joint = await _joint(db_session, settings, quarter, kr_cap)
        if may_write:
            chart = _chart_of_form(form, joint.score)
        elif shown is not None:
            chart = plan_service.gate_chart(plan_service.fields_of(shown.plan).gate_curve, joint.score)
        else:
            chart = None
        context = {
            "quarter": quarter,
            "quarters": quarters,
            "period": period,
            "closed": closed,
            "versions": versions,
            "approved": approved,
            "latest": latest,
            "shown": shown,
            "shown_fields": plan_service.fields_of(shown.plan) if shown is not None else None,
            "form": form,
            "may_write": may_write,
            "may_approve": plan_service.may_approve_plan(user) and not closed,
            "joint": joint,
            "chart": chart,
            "action": _plan_url(quarter.key),
            **more,
        }
        return _template(request, "_plan_page" if fragment else "plan", context, status)

    @get("/", name="bonus.plan")
    async def plan(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        saved: Annotated[int | None, QueryParameter(ge=1, description="Version just saved.")] = None,
        approved: Annotated[int | None, QueryParameter(ge=1, description="Version just approved.")] = None,
    ) -> Template:
        """The period's plan: in force, the editor or the plan in words, the curve, the versions."""
        quarter, quarters = await goals_quarter(db_session, app_settings(request), period)
        notice = None
        if saved:
            notice = f"Saved as version {saved}, a draft: an admin approves it to put it in force."
        elif approved:
            notice = f"Version {approved} approved: it is the plan in force now."
        return await self._page(
            request, db_session, quarter, quarters, notice=notice, fragment=wants_fragment(request)
        )

    @post("/", name="bonus.plan_save", status_code=200)
    async def save(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Response[Any]:
        """Save the editor as a new draft version; the form comes back with each field's error. The row
        buttons (add or remove a point or a team) post here too without JavaScript: nothing is saved then."""
        settings = app_settings(request)
        user = current_user(request)
        plan_service.check_may_write_plan(user)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        data: FormMultiDict = await request.form()
        form = read_plan_form(data)
        action = str(data.get("action", "") or "")
        if action and form.apply(action):
            return await self._page(request, db_session, quarter, quarters, form=form)
        fields = check_plan_form(form, settings.org_currency)
        if fields is not None:
            try:
                stored = await plan_service.period_of(
                    db_session, settings=settings, quarter=quarter, create=True
                )
                assert stored is not None  # created when missing
                plan = await plan_service.save_plan(db_session, period=stored, fields=fields, user=user)
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
            else:
                return Redirect(
                    _plan_url(quarter.key, "#versions", saved=str(plan.version)),
                    status_code=HTTP_303_SEE_OTHER,
                )
        status = 409 if "form" in form.errors else 422
        return await self._page(request, db_session, quarter, quarters, form=form, status=status)

    @post("/preview", name="bonus.plan_preview", status_code=200)
    async def preview(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """htmx: the editor with a row added or removed (`action`), or the curve redrawn from the rows."""
        settings = app_settings(request)
        plan_service.check_may_write_plan(current_user(request))
        quarter, _ = await goals_quarter(db_session, settings, period)
        data: FormMultiDict = await request.form()
        form = read_plan_form(data)
        action = str(data.get("action", "") or "")
        joint = await _joint(db_session, settings, quarter, read_decimal(form.kr_cap))
        chart = _chart_of_form(form, joint.score)
        context = {"quarter": quarter, "form": form, "joint": joint, "chart": chart, "may_write": True,
                   "action": _plan_url(quarter.key)}  # fmt: skip
        if action and form.apply(action):
            context["chart"] = _chart_of_form(form, joint.score)
            return _template(request, "_plan_form", context)
        return _template(request, "_gate_curve", context)

    @post("/versions/{plan_id:int}/approve", name="bonus.plan_approve", status_code=200)
    async def approve(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        plan_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Approve a draft (admins): the version in force before it becomes superseded."""
        plan = await plan_service.approve_plan(db_session, plan_id=plan_id, user=current_user(request))
        period = await db_session.get(Period, plan.period_id)
        key = period.key if period is not None else ""
        return Redirect(
            _plan_url(key, "#versions", approved=str(plan.version)), status_code=HTTP_303_SEE_OTHER
        )

    @get("/versions/{plan_id:int}", name="bonus.plan_version")
    async def version(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        plan_id: Annotated[int, PathParameter()],
    ) -> Template:
        """One version of a plan, as it was saved, with its curve."""
        settings = app_settings(request)
        v = await plan_service.plan_version(db_session, plan_id=plan_id)
        period = await db_session.get(Period, v.plan.period_id)
        if period is None:
            raise NotFound(f"There is no bonus plan version {plan_id}.")
        quarter = parse_key(period.key)
        fields = plan_service.fields_of(v.plan)
        joint = await _joint(db_session, settings, quarter, fields.kr_cap)
        context = {
            "quarter": quarter,
            "period": period,
            "v": v,
            "fields": fields,
            "joint": joint,
            "chart": plan_service.gate_chart(fields.gate_curve, joint.score),
            "may_approve": plan_service.may_approve_plan(current_user(request))
            and period.state != PeriodState.CLOSED,
        }
        return _template(request, "plan_version", context)


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=PlanProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_R400 = _problem("The body or a parameter cannot be read (wrong type, unknown field).")
_R403 = _problem("Not allowed: leaders and admins draft, admins approve; or the token lacks the scope.")
_R404 = _problem("No such plan version or period.")
_R409 = _problem(
    "Conflict: the period is closed, or the version is not a draft (or a newer one is approved)."
)
_R422 = _problem("A field is not valid; `errors` names each field and why.")
_READ = [requires_scope("read")]
_WRITE = [requires_scope("import")]


class PlanApiController(Controller):
    """`/api/v1/bonus/plans`: a period's plan versions; draft one (leaders, admins) and approve (admins).

    Reading needs a login or a token with the `read` scope; changes need a token with the `import` scope.
    """

    path = "/api/v1/bonus/plans"
    tags = ("bonus",)

    @get(
        "/",
        name="api.bonus.plans",
        guards=_READ,
        summary="A period's bonus plan versions",
        description="Every version, newest first, and which one is in force. Example: `?period=2026-Q4`.",
        responses={404: _R404},
    )
    async def plans(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
    ) -> PlanListRead:
        """A period's plan versions."""
        settings = app_settings(request)
        quarter, _ = await goals_quarter(db_session, settings, period)
        stored = await plan_service.period_of(db_session, settings=settings, quarter=quarter)
        versions = await plan_service.plan_versions(db_session, stored.id) if stored is not None else []
        return PlanListRead.of(quarter.key, versions, settings.org_currency)

    @get(
        "/{plan_id:int}",
        name="api.bonus.plan",
        guards=_READ,
        summary="A bonus plan version",
        responses={404: _R404},
    )
    async def plan(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        plan_id: Annotated[int, PathParameter(description="The version's id.")],
    ) -> PlanRead:
        """One plan version."""
        v = await plan_service.plan_version(db_session, plan_id=plan_id)
        period = await db_session.get(Period, v.plan.period_id)
        return PlanRead.of(v, period.key if period else "", app_settings(request).org_currency)

    @post(
        "/",
        name="api.bonus.plan_create",
        guards=_WRITE,
        summary="Draft a new plan version",
        description=(
            "A new draft version (max + 1) of the period's plan; the history is kept. Refused with 422 and "
            "each field's reason when the plan is invalid (shares not summing to 1, a decreasing curve, a "
            "negative rate, ...); 409 when the period is closed."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[PlanCreate],
    ) -> PlanRead:
        """Draft a plan version."""
        settings = app_settings(request)
        user = current_user(request)
        plan_service.check_may_write_plan(user)
        quarter, _ = await goals_quarter(db_session, settings, data.period)
        fields = data.fields(settings.org_currency)
        stored = await plan_service.period_of(db_session, settings=settings, quarter=quarter, create=True)
        assert stored is not None  # created when missing
        plan = await plan_service.save_plan(
            db_session, period=stored, fields=fields, user=user, via=_via(request)
        )
        v = await plan_service.plan_version(db_session, plan_id=plan.id)
        return PlanRead.of(v, quarter.key, settings.org_currency)

    @post(
        "/{plan_id:int}/approve",
        name="api.bonus.plan_approve",
        guards=_WRITE,
        status_code=200,
        summary="Approve a draft plan version",
        description="Admins only; the version in force before becomes `superseded`.",
        responses={403: _R403, 404: _R404, 409: _R409},
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        plan_id: Annotated[int, PathParameter(description="The version's id.")],
    ) -> PlanRead:
        """Approve a plan version."""
        plan = await plan_service.approve_plan(
            db_session, plan_id=plan_id, user=current_user(request), via=_via(request)
        )
        v = await plan_service.plan_version(db_session, plan_id=plan.id)
        period = await db_session.get(Period, plan.period_id)
        return PlanRead.of(v, period.key if period else "", app_settings(request).org_currency)


__all__ = ["PlanApiController", "PlanController"]
