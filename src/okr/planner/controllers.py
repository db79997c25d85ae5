"""Funnel planner pages and JSON API (DESIGN 5): parse -> planner services -> page, fragment or JSON.

`/planner?period=` recomputes the waterfall as the inputs change (htmx swaps `#planner-result`; without
JavaScript the form's button reloads the page); leaders and admins save a plan and make the period's
joint objective from it; everyone logged in reads saved plans and their plan-vs-actual page.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import credentials, current_user, requires_login, requires_scope
from okr.goals.controllers import goals_quarter
from okr.goals.guards import may_write_goals, requires_goal_writer
from okr.goals.services import period_window
from okr.lib.errors import Conflict, OkrError, ValidationFailed
from okr.lib.money import MoneyError, decimals, parse_decimal, to_major, to_minor
from okr.lib.periods import Quarter
from okr.lib.web import app_settings, wants_fragment
from okr.planner import core
from okr.planner import services as planner
from okr.planner.schemas import (
    ComputeBody,
    ObjectiveMadeRead,
    PlanCreate,
    PlanListRead,
    PlannerProblem,
    PlanRead,
    RatesBody,
    WaterfallRead,
    minor,
)
from okr.settings import Settings

_VARY = {"Vary": "HX-Request"}
_HUNDRED = Decimal(100)

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]

PlanId = Annotated[int, PathParameter(description="The plan's id.")]


def _via(request: Request[Any, Any, Any]) -> str | None:
    creds = credentials(request)
    return creds.token_name if creds.is_token else None


def _decimal(text: str) -> Decimal | None:
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "").rstrip("%")
    if not cleaned:
        return None
    try:
        return parse_decimal(cleaned)
    except MoneyError:
        return None


# -- the planner form ------------------------------------------------------------------------------------


class PlannerForm:
    """The planner's inputs as typed (money in major units, rates in percent), each field's error, and
    the waterfall they give when they are valid."""

    def __init__(self, values: dict[str, str], errors: dict[str, str]) -> None:
        self.values = values
        self.errors = errors
        self.plan: core.Waterfall | None = None


def _percent(rate: Decimal | None) -> str:
    if rate is None:
        return ""
    return format((rate * _HUNDRED).quantize(Decimal("0.01")).normalize(), "f")


def _read_form(data: dict[str, str], trail: planner.Trailing, currency: str) -> PlannerForm:
    """Inputs left empty take the trailing value; a typed value that is not a number is an error."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    target_text = data.get("revenue_target", "").strip()
    deal_text = data.get("avg_deal_size", "").strip()
    values["revenue_target"] = target_text
    values["avg_deal_size"] = (
        deal_text
        if deal_text or trail.avg_deal_size is None
        else str(to_major(trail.avg_deal_size, currency))
    )

    def money(name: str, text: str) -> int | None:
        if not text:
            return None
        value = _decimal(text)
        if value is None:
            errors[name] = "Enter a number, like 1,250,000."
            return None
        try:
            return to_minor(value, currency)
        except (MoneyError, ArithmeticError):
            errors[name] = f"Use at most {decimals(currency)} decimals for {currency}."
            return None

    target = money("revenue_target", target_text)
    deal = money("avg_deal_size", values["avg_deal_size"])
    rates: dict[str, Decimal | None] = {}
    for name in core.RATE_NAMES:
        text = data.get(name, "").strip()
        values[name] = text if text else _percent(trail.rates.get(name))
        if not values[name]:
            rates[name] = None
            continue
        value = _decimal(values[name])
        if value is None:
            errors[name] = "Enter a percentage, like 25."
            rates[name] = None
        else:
            rates[name] = value / _HUNDRED
    form = PlannerForm(values, errors)
    if not target_text:
        return form  # nothing to plan yet: the page asks for the target
    problems = core.validate(
        revenue_target=target,
        avg_deal_size=deal,
        rates=dict(rates),
    )
    for name, reason in problems.items():
        errors.setdefault(name, reason)
    if not errors and target is not None and deal is not None:
        form.plan = core.waterfall(
            core.PlanInputs(
                revenue_target=target,
                avg_deal_size=deal,
                rates={k: v for k, v in rates.items() if v is not None},
            )
        )
    return form


def _form_data(data: FormMultiDict | Mapping[str, Any]) -> dict[str, str]:
    names = ("revenue_target", "avg_deal_size", "name", "note", *core.RATE_NAMES)
    return {name: str(data.get(name) or "") for name in names}


def _common(request: Request[Any, Any, Any]) -> dict[str, Any]:
    settings = app_settings(request)
    user = current_user(request)
    return {
        "user": user,
        "may_write": may_write_goals(user),
        "currency": settings.org_currency,
        "rates": core.RATES,
        "stage_defs": core.STAGES,
    }


def _template(
    request: Request[Any, Any, Any], name: str, context: dict[str, Any], status: int = 200
) -> Template:
    return Template(
        template_name=f"planner/{name}.html",
        context={**_common(request), **context},
        headers=_VARY,
        status_code=status,
    )


async def _planner_context(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    quarter: Quarter,
    quarters: list[Quarter],
    data: dict[str, str],
) -> dict[str, Any]:
    settings = app_settings(request)
    trail = await planner.trailing(db_session, settings=settings, quarter=quarter)
    form = _read_form(data, trail, settings.org_currency)
    window = await period_window(db_session, settings=settings, quarter=quarter)
    open_total = await planner.open_pipeline_total(db_session, settings=settings)
    found = [] if form.plan is None else planner.flags(form.plan, trail)
    return {
        "quarter": quarter,
        "quarters": quarters,
        "trail": trail,
        "form": form,
        "plan": form.plan,
        "flags": found,
        "flagged": {f.key for f in found},
        "open_pipeline": open_total,
        "open_coverage": None
        if form.plan is None
        else core.open_coverage(open_total, form.plan.inputs.revenue_target),
        "read_only": window.read_only,
        "plans": await planner.list_plans(db_session, quarter=quarter),
        "name": data.get("name", ""),
        "note": data.get("note", ""),
    }


def _plan_url(plan_id: int) -> str:
    return f"/planner/plans/{plan_id}"


class PlannerController(Controller):
    """`/planner`: the reverse waterfall for a period, saved plans, plan vs actual."""

    path = "/planner"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="planner.index")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
    ) -> Template:
        """The planner: inputs, the waterfall they give, flags, saved plans; htmx gets the result only."""
        settings = app_settings(request)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        context = await _planner_context(
            request, db_session, quarter, quarters, _form_data(request.query_params)
        )
        if wants_fragment(request):
            target = request.htmx.target if request.htmx else None
            return _template(request, "_result" if target == "planner-result" else "_planner", context)
        return _template(request, "page", context)

    @post("/plans", name="planner.save", guards=[requires_goal_writer], status_code=200)
    async def save(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Response[Any]:
        """Save the plan; the planner comes back with each field's error, else go to the saved plan."""
        settings = app_settings(request)
        quarter, quarters = await goals_quarter(db_session, settings, period)
        data = _form_data(await request.form())
        context = await _planner_context(request, db_session, quarter, quarters, data)
        form: PlannerForm = context["form"]
        if not data["revenue_target"].strip():
            form.errors["revenue_target"] = "Enter the revenue target."
        if form.plan is not None and not form.errors:
            try:
                row = await planner.save_plan(
                    db_session,
                    settings=settings,
                    user=current_user(request),
                    quarter=quarter,
                    name=data["name"],
                    note=data["note"],
                    plan=form.plan,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                _merge_errors(form.errors, exc)
            else:
                if request.htmx:
                    return ClientRedirect(_plan_url(row.id))
                return Redirect(_plan_url(row.id), status_code=HTTP_303_SEE_OTHER)
        if request.htmx:  # htmx swaps only 2xx answers: the planner comes back with its errors
            return _template(request, "_planner", context)
        return _template(request, "page", context, 422)

    async def _plan_page(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, plan_id: int, **more: Any
    ) -> dict[str, Any]:
        settings = app_settings(request)
        comparison = await planner.compare(db_session, settings=settings, plan_id=plan_id)
        view = comparison.plan
        made = (
            []
            if view.objective_id is None
            else await planner.objective_flags(db_session, settings=settings, objective_id=view.objective_id)
        )
        return {
            "comparison": comparison,
            "view": view,
            "plan": view.waterfall,
            "quarter": comparison.window.quarter,
            "made": made,
            "problem": None,
            **more,
        }

    @get("/plans/{plan_id:int}", name="planner.plan")
    async def plan(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], plan_id: PlanId
    ) -> Template:
        """A saved plan against the actuals of its period so far."""
        return _template(request, "plan", await self._plan_page(request, db_session, plan_id))

    @post(
        "/plans/{plan_id:int}/objective",
        name="planner.objective",
        guards=[requires_goal_writer],
        status_code=200,
    )
    async def objective(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], plan_id: PlanId
    ) -> Response[Any]:
        """Make the period's joint objective from the plan, then show the plan with its link."""
        settings = app_settings(request)
        try:
            await planner.create_objective(
                db_session, settings=settings, user=current_user(request), plan_id=plan_id
            )
        except (ValidationFailed, Conflict) as exc:
            await db_session.rollback()
            context = await self._plan_page(request, db_session, plan_id, problem=exc.detail)
            return _template(request, "plan", context, exc.status_code)
        return Redirect(_plan_url(plan_id) + "?made=1", status_code=HTTP_303_SEE_OTHER)


def _merge_errors(errors: dict[str, str], exc: OkrError) -> None:
    if not exc.errors:
        errors.setdefault("form", exc.detail)
    for e in exc.errors:
        errors.setdefault(str(e.get("field") or "form"), str(e.get("message") or exc.detail))


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=PlannerProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_R400 = _problem("The body or a parameter cannot be read (wrong type, unknown field).")
_R403 = _problem("Not allowed: only leaders and admins plan, or the token lacks the scope.")
_R404 = _problem("No such plan or period.")
_R409 = _problem("Conflict: the period is closed, or the plan already made its objective.")
_R422 = _problem("A field is not valid; `errors` names each field and why.")

_READ = [requires_scope("read")]
_WRITE = [requires_scope("import"), requires_goal_writer]


async def _inputs(
    db_session: AsyncSession,
    settings: Settings,
    quarter: Quarter,
    target: Decimal,
    deal: Decimal | None,
    rates: RatesBody | None,
) -> tuple[core.Waterfall, planner.Trailing]:
    """The waterfall of what the caller sent, the rest from the trailing quarters."""
    currency = settings.org_currency
    trail = await planner.trailing(db_session, settings=settings, quarter=quarter)
    given = (rates or RatesBody()).given()
    chosen = {k: given[k] if given[k] is not None else trail.rates.get(k) for k in core.RATE_NAMES}
    deal_minor = minor(deal, currency, "avg_deal_size")
    plan = planner.compute(
        revenue_target=minor(target, currency, "revenue_target"),
        avg_deal_size=deal_minor if deal_minor is not None else trail.avg_deal_size,
        rates=chosen,
    )
    return plan, trail


class PlannerApiController(Controller):
    """`/api/v1/planner/...`: compute a waterfall, save and read plans, make the joint objective.

    Reading and computing need a login or a token with the `read` scope; saving and making the objective
    need a token with the `import` scope whose person is a leader or an admin.
    """

    path = "/api/v1/planner"
    tags = ("planner",)

    @post(
        "/compute",
        name="api.planner.compute",
        guards=_READ,
        status_code=200,
        summary="Compute a reverse waterfall",
        description=(
            "Stateless: a revenue target (major units) and optional average deal size and rates (fractions "
            "in (0, 1]) give the deals, opportunities, SQLs, accepted leads, MQLs and leads needed (each "
            "rounded up to a whole record), the pipeline needed and its coverage, and the figures at or "
            "below the trailing two-quarter actual. Inputs left out come from the two quarters before "
            '`period`. Example body: `{"period": "2026-Q3", "revenue_target": "1000000", '
            '"rates": {"win_rate": "0.25"}}`.'
        ),
        responses={400: _R400, 404: _R404, 422: _R422},
    )
    async def compute(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[ComputeBody],
    ) -> WaterfallRead:
        """Compute a waterfall."""
        settings = app_settings(request)
        quarter, _ = await goals_quarter(db_session, settings, data.period)
        plan, trail = await _inputs(
            db_session, settings, quarter, data.revenue_target, data.avg_deal_size, data.rates
        )
        return WaterfallRead.of(
            plan,
            period=quarter.key,
            currency=settings.org_currency,
            trail=trail,
            found=planner.flags(plan, trail),
            open_pipeline=await planner.open_pipeline_total(db_session, settings=settings),
        )

    @get(
        "/plans",
        name="api.planner.plans",
        guards=_READ,
        summary="A period's saved plans",
        description=(
            "The saved plans of a period, newest first. Example: `GET /api/v1/planner/plans?period=2026-Q3`."
        ),
        responses={404: _R404},
    )
    async def plans(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
    ) -> PlanListRead:
        """A period's saved plans."""
        settings = app_settings(request)
        quarter, _ = await goals_quarter(db_session, settings, period)
        views = await planner.list_plans(db_session, quarter=quarter)
        return PlanListRead(period=quarter.key, plans=[PlanRead.of(v, settings.org_currency) for v in views])

    @post(
        "/plans",
        name="api.planner.save",
        guards=_WRITE,
        status_code=201,
        summary="Save a plan",
        description=(
            "Compute and save a plan for a period (inputs left out come from the trailing quarters). "
            "Leaders and admins, with a token holding the `import` scope. 409 when the period is closed."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def save(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[PlanCreate],
    ) -> PlanRead:
        """Save a plan."""
        settings = app_settings(request)
        quarter, _ = await goals_quarter(db_session, settings, data.period)
        plan, _ = await _inputs(
            db_session, settings, quarter, data.revenue_target, data.avg_deal_size, data.rates
        )
        row = await planner.save_plan(
            db_session,
            settings=settings,
            user=current_user(request),
            quarter=quarter,
            name=data.name,
            note=data.note,
            plan=plan,
            via=_via(request),
        )
        return PlanRead.of(await planner.plan_view(db_session, plan_id=row.id), settings.org_currency)

    @get(
        "/plans/{plan_id:int}",
        name="api.planner.plan",
        guards=_READ,
        summary="A saved plan with its actuals",
        description=(
            "One saved plan and, for each stage, revenue and pipeline, the actual of its period so far, "
            "the value expected by today (target x share of the period gone by), the pace and its status."
        ),
        responses={404: _R404},
    )
    async def plan(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        plan_id: PlanId,
    ) -> PlanRead:
        """A saved plan with its actuals."""
        settings = app_settings(request)
        comparison = await planner.compare(db_session, settings=settings, plan_id=plan_id)
        return PlanRead.of(comparison.plan, settings.org_currency, comparison)

    @post(
        "/plans/{plan_id:int}/objective",
        name="api.planner.objective",
        guards=_WRITE,
        status_code=201,
        summary="Make the period's joint objective from a plan",
        description=(
            "One objective owned by sales, marketing (and sdr when that team exists) with metric key "
            "results: revenue won, deals won and pipeline created (sales), MQLs (marketing), SQLs (sdr, "
            "else sales). Each KR says whether its target is at or below its trailing two-quarter actual. "
            "409 when the plan already made one or the period is closed."
        ),
        responses={403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def objective(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        plan_id: PlanId,
    ) -> ObjectiveMadeRead:
        """Make the joint objective."""
        made = await planner.create_objective(
            db_session,
            settings=app_settings(request),
            user=current_user(request),
            plan_id=plan_id,
            via=_via(request),
        )
        return ObjectiveMadeRead.of(made)
