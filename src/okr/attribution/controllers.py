"""Attribution pages and JSON API (DESIGN 3): parse -> queries/services -> page, fragment or JSON.

Pages: the campaigns page (`/attribution`), a campaign's deals, an opportunity's journey, two models
compared, and the settings. Each page's figures sit in one fragment that htmx swaps in place when the
period, model or scope changes (the URL follows). The API answers the same figures as JSON.
"""

import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.htmx import ClientRedirect, ClientRefresh, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from okr.attribution import jobs, queries
from okr.attribution.core import Scope
from okr.attribution.schemas import (
    WEIGHT_FIELDS,
    AttributionProblem,
    CampaignDetailRead,
    CompareRead,
    FiguresRead,
    JourneyRead,
    SettingsForm,
)
from okr.attribution.services import (
    AttributionConfig,
    config_problems,
    load_config,
    save_config,
)
from okr.audit import services as audit
from okr.auth.controllers import safe_next
from okr.auth.guards import current_user, requires_leader, requires_login, requires_scope
from okr.db.attribution import STORED_MODELS
from okr.lib.clock import utcnow
from okr.lib.errors import NotFound, ValidationFailed
from okr.lib.periods import Quarter, quarter_of_instant
from okr.lib.web import app_settings, org_today, wants_fragment
from okr.periods.services import resolve_quarter
from okr.settings import Settings

_VARY = {"Vary": "HX-Request"}
_MODEL_ENUM = {"enum": list(STORED_MODELS)}
_SCOPE_ENUM = {"enum": [s.value for s in Scope]}
_NOT_COMPUTED = (
    "Attribution has not been computed yet: a leader or admin can recompute it on the Attribution page "
    "(or run `okr attribution recompute`)."
)

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
ModelParam = Annotated[
    str | None,
    QueryParameter(
        max_length=32,
        description=f"The attribution model; {queries.DEFAULT_MODEL} when left out.",
        schema_extra=_MODEL_ENUM,
    ),
]
ScopeParam = Annotated[
    str | None,
    QueryParameter(
        name="scope",
        max_length=16,
        description="pipeline (journeys up to creation, deals created in the period) or revenue (up to the "
        f"close, deals won in the period); {queries.DEFAULT_SCOPE.value} when left out.",
        schema_extra=_SCOPE_ENUM,
    ),
]
SortParam = Annotated[str | None, QueryParameter(max_length=16, description="The column to sort by.")]
OrderParam = Annotated[
    str | None,
    QueryParameter(max_length=16, description="asc or desc.", schema_extra={"enum": ["asc", "desc"]}),
]
PageParam = Annotated[
    int, QueryParameter(ge=1, le=1_000_000, description="The page, from 1 (50 rows a page).")
]


def _descending(order: str | None) -> bool | None:
    if order is None or order == "":
        return None
    if order not in ("asc", "desc"):
        raise ValidationFailed(
            f"“{order}” is not a sort order.", errors=[{"field": "order", "message": "use asc or desc"}]
        )
    return order == "desc"


async def _quarter(
    session: AsyncSession, settings: Settings, period: str | None
) -> tuple[Quarter, list[Quarter]]:
    return await resolve_quarter(session, settings=settings, key=period, today=org_today(settings))


def _render(
    request: HTMXRequest, settings: Settings, page: str, fragment: str, context: dict[str, Any]
) -> Template:
    """The whole page, or only its fragment for an htmx switch; every template gets `_common`, the
    `fragment` flag and `next` (this address, for the forms on it)."""
    partial = wants_fragment(request)
    here = str(request.url.path) + ("?" + request.url.query if request.url.query else "")
    full = {**_common(settings, request), **context, "fragment": partial, "next": here}
    name = f"attribution/{fragment if partial else page}.html"
    return Template(template_name=name, context=full, headers=_VARY)


def _common(settings: Settings, request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What every attribution template uses: labels, the caller's rights, the quarter of an instant."""
    user = current_user(request)

    def quarter_key(moment: dt.datetime | None) -> str | None:
        if moment is None:
            return None
        return quarter_of_instant(moment, settings.tz, settings.fiscal_year_start_month).key

    return {
        "models": STORED_MODELS,
        "model_labels": queries.MODEL_LABELS,
        "model_definitions": queries.MODEL_DEFINITIONS,
        "scope_labels": {s.value: label for s, label in queries.SCOPE_LABELS.items()},
        "can_edit": user.has_role("leader"),
        "quarter_key": quarter_key,
        "start_month": settings.fiscal_year_start_month,
    }


# -- pages -------------------------------------------------------------------------------------------------


def _progress(job: jobs.RecomputeJob, next_url: str) -> Template:
    context = {"job": job, "next": next_url, "now": utcnow()}
    return Template(template_name="attribution/_recompute_status.html", context=context)


class AttributionController(Controller):
    """`/attribution`: campaign figures, a campaign's deals, a deal's journey, models compared, settings."""

    path = "/attribution"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="attribution.index")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        channel: Annotated[str | None, QueryParameter(max_length=50)] = None,
        sort: SortParam = None,
        order: OrderParam = None,
        page: PageParam = 1,
    ) -> Template:
        """Per channel and campaign: attributed amount, deals, cost, ROI; sourced and influenced pipeline."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        chosen_model, chosen_scope = queries.check_model(model), queries.check_scope(scope_name)
        key = queries.check_sort(sort, queries.CAMPAIGN_SORTS, "amount")
        descending = _descending(order)
        if descending is None:
            descending = key not in ("name", "channel")
        figures = await queries.campaign_figures(
            db_session, settings=settings, quarter=quarter, model=chosen_model, scope=chosen_scope
        )
        rows = []
        if figures is not None:
            rows = [
                f
                for f in figures.sorted_campaigns(key, descending)
                if not channel or f.campaign.channel == channel
            ]
        params = {"period": quarter.key, "model": chosen_model, "scope": chosen_scope.value}
        pages = max(1, math.ceil(len(rows) / queries.PAGE_SIZE))
        page = min(page, pages)
        first = (page - 1) * queries.PAGE_SIZE
        context = {
            "figures": figures,
            "rows": rows[first : first + queries.PAGE_SIZE],
            "paging": {
                "page": page,
                "pages": pages,
                "total": len(rows),
                "first": first + 1 if rows else 0,
                "last": min(first + queries.PAGE_SIZE, len(rows)),
            },
            "quarter": quarter,
            "quarters": quarters,
            "model": chosen_model,
            "scope": chosen_scope.value,
            "channel": channel or None,
            "sort": key,
            "descending": descending,
            "params": params,
        }
        return _render(request, settings, "index", "_figures", context)

    @get("/campaigns/{campaign_id:int}", name="attribution.campaign")
    async def campaign(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        campaign_id: Annotated[int, PathParameter()],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> Template:
        """One campaign in a period: its figures and the deals it touched, with its credit on each."""
        return await self._campaign(
            request, db_session, campaign_id, period, model, scope_name, page, sort, order
        )

    @get("/campaigns/unattributed", name="attribution.unattributed")
    async def unattributed(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> Template:
        """The unattributed bucket in a period: the deals without a touch in their window."""
        return await self._campaign(request, db_session, None, period, model, scope_name, page, sort, order)

    async def _campaign(
        self,
        request: HTMXRequest,
        db_session: AsyncSession,
        campaign_id: int | None,
        period: str | None,
        model: str | None,
        scope_name: str | None,
        page: int,
        sort: str | None,
        order: str | None,
    ) -> Template:
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        chosen_model, chosen_scope = queries.check_model(model), queries.check_scope(scope_name)
        detail = await queries.campaign_detail(
            db_session,
            settings=settings,
            campaign_id=campaign_id,
            quarter=quarter,
            model=chosen_model,
            scope=chosen_scope,
            page=page,
            sort=sort,
            descending=_descending(order),
        )
        path = "/attribution/campaigns/" + ("unattributed" if campaign_id is None else str(campaign_id))
        params = {"period": quarter.key, "model": chosen_model, "scope": chosen_scope.value}
        context = {
            "d": detail,
            "quarter": quarter,
            "quarters": quarters,
            "model": chosen_model,
            "scope": chosen_scope.value,
            "params": params,
            "path": path,
        }
        return _render(request, settings, "campaign", "_campaign", context)

    @get("/opportunities/{opportunity_id:int}", name="attribution.journey")
    async def journey(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        opportunity_id: Annotated[int, PathParameter()],
        model: ModelParam = None,
        period: PeriodParam = None,
        scope_name: ScopeParam = None,
    ) -> Template:
        """An opportunity's journey in both scopes under a model: steps, roles, weights, people credit."""
        settings = app_settings(request)
        chosen_model = queries.check_model(model)
        found = await queries.journey(
            db_session, settings=settings, opportunity_id=opportunity_id, model=chosen_model
        )
        back_scope = queries.check_scope(scope_name).value
        context = {
            "j": found,
            "model": chosen_model,
            "back": {"period": period or None, "model": chosen_model, "scope": back_scope},
        }
        return _render(request, settings, "journey", "_journey", context)

    @get("/compare", name="attribution.compare")
    async def compare(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        scope_name: ScopeParam = None,
        model_a: ModelParam = None,
        model_b: ModelParam = None,
        sort: SortParam = None,
    ) -> Template:
        """Two models side by side for a period and scope, per channel and per campaign."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        chosen_scope = queries.check_scope(scope_name)
        a = queries.check_model(model_a or "first_touch", field_name="model_a")
        b = queries.check_model(model_b or "data_driven", field_name="model_b")
        comparison = await queries.compare(
            db_session,
            settings=settings,
            quarter=quarter,
            scope=chosen_scope,
            model_a=a,
            model_b=b,
            sort=sort,
        )
        params = {"period": quarter.key, "scope": chosen_scope.value, "model_a": a, "model_b": b}
        context = {
            "c": comparison,
            "quarter": quarter,
            "quarters": quarters,
            "scope": chosen_scope.value,
            "model_a": a,
            "model_b": b,
            "params": params,
        }
        return _render(request, settings, "compare", "_compare", context)

    @get("/settings", name="attribution.settings")
    async def settings_page(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        saved: Annotated[str | None, QueryParameter(max_length=8)] = None,
    ) -> Template:
        """The lookback, half life and custom milestone weights; leaders and admins may change them."""
        view = await queries.settings_view(db_session)
        form = SettingsForm.of(view.config)
        if saved:
            form.notice = "Saved; both scopes were recomputed with these settings."
        return self._settings_template(request, view, form)

    def _settings_template(
        self,
        request: HTMXRequest,
        view: queries.SettingsView,
        form: SettingsForm,
        *,
        fragment: bool = False,
        status_code: int = 200,
    ) -> Template:
        context = {
            **_common(app_settings(request), request),
            "view": view,
            "form": form,
            "weight_fields": WEIGHT_FIELDS,
        }
        name = "attribution/_settings_form.html" if fragment else "attribution/settings.html"
        return Template(template_name=name, context=context, headers=_VARY, status_code=status_code)

    @post("/settings", name="attribution.settings_save", guards=[requires_leader], status_code=200)
    async def save_settings(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Validate and save the settings, recompute both scopes, record who did it; errors beside fields."""
        settings = app_settings(request)
        user = current_user(request)
        data = await request.form()
        form = SettingsForm(
            lookback_days=str(data.get("lookback_days", "")).strip(),
            half_life_days=str(data.get("half_life_days", "")).strip(),
            weights={name: str(data.get(name, "")).strip() for name, _ in WEIGHT_FIELDS},
        )
        lookback, half_life, weights = _parse_settings(form)
        unreadable = set(form.errors)
        # What can be read is checked as well, so every field's problem shows at once.
        for error in config_problems(lookback_days=lookback, half_life_days=half_life, weights=weights):
            name = str(error["field"])
            if name not in unreadable and not (name == "weights" and unreadable):
                form.errors.setdefault(name, str(error["message"]))
        before = await load_config(db_session)
        config: AttributionConfig | None = None
        if not form.errors:
            try:
                config = await save_config(
                    db_session, lookback_days=lookback, half_life_days=half_life, weights=weights, by=user.id
                )
            except ValidationFailed as exc:
                for error in exc.errors:
                    form.errors.setdefault(str(error.get("field", "weights")), str(error.get("message", "")))
        if form.errors or config is None:
            # htmx swaps only 2xx answers: the form with its errors comes back as 200 to htmx, and with
            # 422 to a plain form post (which then shows the whole page again).
            view = await queries.settings_view(db_session)
            if request.htmx:
                return self._settings_template(request, view, form, fragment=True)
            return self._settings_template(request, view, form, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        await audit.record(
            db_session,
            actor=user.email,
            actor_id=user.id,
            action="attribution_settings.update",
            entity="attribution_setting",
            before=_config_dict(before),
            after=_config_dict(config),
        )
        # The settings are committed first: the recompute reads them, and its runs (in worker processes
        # on big data) commit on their own, each scope switching whole.
        await db_session.commit()
        job = jobs.start(settings, action="attribution.recompute", actor=user.email, actor_id=user.id)
        runs = await jobs.settle(job)
        if not request.htmx:
            return Redirect("/attribution/settings?saved=1", status_code=HTTP_303_SEE_OTHER)
        form = SettingsForm.of(config)
        if runs is None:
            form.notice = "Saved. Both scopes are being recomputed with these settings."
            form.job = job
        else:
            deals = max((r.opportunities for r in runs), default=0)
            form.notice = f"Saved; both scopes were recomputed ({deals:,} opportunities)."
        return self._settings_template(request, await queries.settings_view(db_session), form, fragment=True)

    @post("/recompute", name="attribution.recompute", guards=[requires_leader], status_code=200)
    async def recompute(self, request: HTMXRequest) -> Response[Any]:
        """Recompute every model for both scopes from the data in the database; then show the page again.

        The page comes back once the runs are in; on big data the request answers before, with a
        progress indicator that polls `recompute_status` (the recompute goes on in the background)."""
        user = current_user(request)
        data = await request.form()
        next_url = safe_next(str(data.get("next", "")) or "/attribution")
        job = jobs.start(
            app_settings(request), action="attribution.recompute", actor=user.email, actor_id=user.id
        )
        if await jobs.settle(job) is None and request.htmx:
            return _progress(job, next_url)
        if request.htmx:
            return ClientRefresh()
        return Redirect(next_url, status_code=HTTP_303_SEE_OTHER)

    @get("/recompute/status", name="attribution.recompute_status", guards=[requires_leader])
    async def recompute_status(
        self, next: Annotated[str | None, QueryParameter(max_length=500)] = None
    ) -> Response[Any]:
        """The recompute under way (htmx polls it): its progress, its error, or a reload once done."""
        next_url = safe_next(next or "/attribution")
        job = jobs.current()
        if job is not None and (job.running or job.failure):
            return _progress(job, next_url)
        return ClientRedirect(next_url)


def _config_dict(config: AttributionConfig) -> dict[str, Any]:
    w = config.custom
    return {
        "lookback_days": config.lookback_days,
        "half_life_days": str(config.half_life_days),
        "custom": {
            "first": str(w.first),
            "lead_creation": str(w.lead_creation),
            "opportunity_creation": str(w.opportunity_creation),
            "closed_won": str(w.closed_won),
            "middle": str(w.middle),
        },
    }


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _parse_settings(form: SettingsForm) -> tuple[int, Decimal, dict[str, Decimal]]:
    """The typed values; each one that cannot be read gets its error on the form."""
    # Placeholders stand in for what cannot be read, so the other fields can still be checked.
    lookback = 365
    if form.lookback_days.isdigit() and len(form.lookback_days) <= 6:
        lookback = int(form.lookback_days)
    else:
        form.errors["lookback_days"] = "Enter a whole number of days, such as 365."
    half_life = _decimal(form.half_life_days)
    if half_life is None:
        form.errors["half_life_days"] = "Enter a number of days, such as 7 or 3.5."
        half_life = Decimal(7)
    weights: dict[str, Decimal] = {}
    for name, _ in WEIGHT_FIELDS:
        value = _decimal(form.weights.get(name, ""))
        if value is None:
            form.errors[name] = "Enter a decimal weight, such as 0.25 (0 for none)."
            value = Decimal(0)
        weights[name] = value
    return lookback, half_life, weights


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=AttributionProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_BAD_PARAMS = _problem(
    "A parameter is not valid (unknown model, scope, grouping or order); `errors` names it."
)
_NO_PERIOD = "No such period, or attribution has not been computed yet."


class AttributionApiController(Controller):
    """`/api/v1/attribution/...`: figures, campaign detail, journey, comparison (read scope)."""

    path = "/api/v1/attribution"
    tags = ("attribution",)
    guards = [requires_scope("read")]  # noqa: RUF012

    @get(
        "/figures",
        name="api.attribution.figures",
        summary="Attribution figures for a period",
        description=(
            "The attributed amount (minor units of the organisation's currency), deals credited, cost and "
            "ROI of a period under a model and scope, grouped by channel, campaign or person (marketers: "
            "their campaigns' credit; reps: the period's deals split by their revenue splits, overlay "
            "apart). `total` = `attributed` + `unattributed` = the dashboard's pipeline created (pipeline "
            "scope) or revenue won (revenue scope). Example: "
            "`GET /api/v1/attribution/figures?period=2026-Q3&model=w_shaped&scope=revenue&group_by=channel`."
        ),
        responses={404: _problem(_NO_PERIOD), 422: _BAD_PARAMS},
    )
    async def figures(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        group_by: Annotated[
            str | None,
            QueryParameter(
                max_length=16,
                description="channel, campaign (the default) or person.",
                schema_extra={"enum": list(queries.GROUPS)},
            ),
        ] = None,
        channel: Annotated[
            str | None,
            QueryParameter(max_length=50, description="With group_by=campaign: one channel's campaigns."),
        ] = None,
    ) -> FiguresRead:
        """Figures of a period under a model and scope."""
        settings = app_settings(request)
        chosen_model, chosen_scope = queries.check_model(model), queries.check_scope(scope_name)
        group = queries.check_group(group_by)
        quarter, _ = await _quarter(db_session, settings, period)
        people = None
        if group == "person":
            people = await queries.people_credit(
                db_session, settings=settings, quarter=quarter, model=chosen_model, scope=chosen_scope
            )
            found = None if people is None else people.figures
        else:
            found = await queries.campaign_figures(
                db_session, settings=settings, quarter=quarter, model=chosen_model, scope=chosen_scope
            )
        if found is None:
            raise NotFound(_NOT_COMPUTED)
        return FiguresRead.of(
            found, settings=settings, group_by=group, channel=channel or None, people=people
        )

    @get(
        "/campaigns/{campaign_id:int}",
        name="api.attribution.campaign",
        summary="A campaign's deals and credit",
        description=(
            "One campaign in a period under a model and scope: its figures, and the opportunities it touched "
            "with its weight and credit on each, 50 a page. Sort by credit (default), weight, date, name or "
            "account. The credit of all pages adds up to the campaign's amount."
        ),
        responses={404: _problem("No such campaign or period, or nothing computed yet."), 422: _BAD_PARAMS},
    )
    async def campaign(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        campaign_id: Annotated[int, PathParameter(description="The campaign's id.")],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> CampaignDetailRead:
        """A campaign's deals in a period."""
        return await self._detail(
            request, db_session, campaign_id, period, model, scope_name, page, sort, order
        )

    @get(
        "/campaigns/unattributed",
        name="api.attribution.unattributed",
        summary="The unattributed bucket's deals",
        description="The deals of a period without a touch in their lookback window, paged like a campaign.",
        responses={404: _problem(_NO_PERIOD), 422: _BAD_PARAMS},
    )
    async def unattributed(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        model: ModelParam = None,
        scope_name: ScopeParam = None,
        page: PageParam = 1,
        sort: SortParam = None,
        order: OrderParam = None,
    ) -> CampaignDetailRead:
        """The unattributed deals of a period."""
        return await self._detail(request, db_session, None, period, model, scope_name, page, sort, order)

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        campaign_id: int | None,
        period: str | None,
        model: str | None,
        scope_name: str | None,
        page: int,
        sort: str | None,
        order: str | None,
    ) -> CampaignDetailRead:
        settings = app_settings(request)
        chosen_model, chosen_scope = queries.check_model(model), queries.check_scope(scope_name)
        descending = _descending(order)
        quarter, _ = await _quarter(db_session, settings, period)
        detail = await queries.campaign_detail(
            db_session,
            settings=settings,
            campaign_id=campaign_id,
            quarter=quarter,
            model=chosen_model,
            scope=chosen_scope,
            page=page,
            sort=sort,
            descending=descending,
        )
        return CampaignDetailRead.of(detail)

    @get(
        "/opportunities/{opportunity_id:int}",
        name="api.attribution.journey",
        summary="An opportunity's journey",
        description=(
            "The steps of one opportunity's journey under a model, in each scope (revenue: won deals only): "
            "time, campaign, channel, roles, weight (10 decimals, summing to 1) and credit in the deal's "
            "currency (`amount`, summing to the deal) and in the organisation's (`base`); plus rep credit "
            "from its revenue splits, overlay apart, and marketer credit (owners of the campaigns on it)."
        ),
        responses={404: _problem("No such opportunity."), 422: _BAD_PARAMS},
    )
    async def journey(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        opportunity_id: Annotated[int, PathParameter(description="The opportunity's id.")],
        model: ModelParam = None,
    ) -> JourneyRead:
        """An opportunity's journey."""
        found = await queries.journey(
            db_session,
            settings=app_settings(request),
            opportunity_id=opportunity_id,
            model=queries.check_model(model),
        )
        return JourneyRead.of(found)

    @get(
        "/compare",
        name="api.attribution.compare",
        summary="Two models compared",
        description=(
            "Per channel and per campaign, the attributed amount under model A and model B and the "
            "difference (B − A), for a period and scope. Example: "
            "`GET /api/v1/attribution/compare?period=2026-Q3&scope=pipeline&model_a=first_touch"
            "&model_b=data_driven`."
        ),
        responses={404: _problem(_NO_PERIOD), 422: _BAD_PARAMS},
    )
    async def compare(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        model_a: Annotated[
            str | None,
            QueryParameter(
                max_length=32, description="The first model (required).", schema_extra=_MODEL_ENUM
            ),
        ] = None,
        model_b: Annotated[
            str | None,
            QueryParameter(
                max_length=32, description="The second model (required).", schema_extra=_MODEL_ENUM
            ),
        ] = None,
        period: PeriodParam = None,
        scope_name: ScopeParam = None,
    ) -> CompareRead:
        """Two models side by side."""
        settings = app_settings(request)
        missing = [
            {"field": n, "message": "required"}
            for n, v in (("model_a", model_a), ("model_b", model_b))
            if not v
        ]
        if missing:
            raise ValidationFailed("Name the two models to compare: model_a and model_b.", errors=missing)
        a = queries.check_model(model_a, field_name="model_a")
        b = queries.check_model(model_b, field_name="model_b")
        chosen_scope = queries.check_scope(scope_name)
        quarter, _ = await _quarter(db_session, settings, period)
        found = await queries.compare(
            db_session, settings=settings, quarter=quarter, scope=chosen_scope, model_a=a, model_b=b
        )
        if found is None:
            raise NotFound(_NOT_COMPUTED)
        return CompareRead.of(found)
