"""SLA pages (DESIGN 5): the board `/sla?period=`, the MQL records behind its figures `/sla/records`, the
period's policy `/sla/policy?period=` and the reject reasons `/sla/reasons`.

Everyone logged in reads; leaders and admins change the policy and the reasons (okr.sla.guards). Forms
are plain posts that come back with each field's error (422, or 409 on a stale version or a closed
period); the period switcher swaps the board in place with htmx.
"""

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login
from okr.goals.controllers import goals_quarter
from okr.lib.errors import Conflict, OkrError, ValidationFailed
from okr.lib.periods import Quarter
from okr.lib.web import app_settings, wants_fragment
from okr.settings import Settings
from okr.sla import services as sla
from okr.sla.guards import may_write_sla, requires_sla_writer
from okr.sla.schemas import WEEKDAY_NAMES, PolicyForm, clock_text, percent_text, read_policy

_VARY = {"Vary": "HX-Request"}

PeriodParam = Annotated[
    str | None,
    QueryParameter(
        max_length=16, description="A fiscal quarter like 2026-Q3; today's quarter when left out."
    ),
]
TextParam = Annotated[str | None, QueryParameter(max_length=100)]


def _int_or_none(text: str | None, name: str) -> int | None:
    if text is None or text.strip() == "":
        return None
    s = text.strip()
    if not s.isdigit() or len(s) > 18:
        raise ValidationFailed(
            f"The {name} filter must be an id.",
            errors=[{"field": name, "message": "pick one from the board"}],
        )
    return int(s)


def _errors_of(exc: OkrError) -> dict[str, str]:
    found: dict[str, str] = {} if exc.errors else {"form": exc.detail}
    for e in exc.errors:
        found.setdefault(str(e.get("field") or "form"), str(e.get("message") or exc.detail))
    return found


async def _quarter(
    session: AsyncSession, settings: Settings, period: str | None
) -> tuple[Quarter, list[Quarter]]:
    return await goals_quarter(session, settings, period)


def _template(
    request: Request[Any, Any, Any], name: str, context: dict[str, Any], status: int = 200
) -> Template:
    user = current_user(request)
    full = {
        "user": user,
        "may_write": may_write_sla(user),
        "start_month": app_settings(request).fiscal_year_start_month,
        **context,
    }
    return Template(template_name=f"sla/{name}.html", context=full, headers=_VARY, status_code=status)


def _policy_form(view: sla.PolicyView) -> PolicyForm:
    rule = view.rule
    return PolicyForm(
        follow_up_hours=str(rule.hours),
        weekdays=[str(d) for d in rule.calendar.weekdays],
        day_start=clock_text(rule.calendar.start_minute),
        day_end=clock_text(rule.calendar.end_minute % 1440),  # midnight reads 00:00 in a time picker
        acceptance_target=percent_text(rule.acceptance_target),
        mql_commitment=str(rule.mql_commitment),
        version=str(view.version),
    )


class SlaController(Controller):
    """`/sla`: the board, its records, the policy and the reject reasons."""

    path = "/sla"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="sla.board")
    async def board_page(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        saved: Annotated[str | None, QueryParameter(max_length=1)] = None,
    ) -> Template:
        """Compliance both ways for the period; htmx gets the board alone."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        data = await sla.board(db_session, settings=settings, quarter=quarter)
        fragment = wants_fragment(request)
        context = {
            "quarter": quarter,
            "quarters": quarters,
            "b": data,
            "saved": bool(saved),
            "fragment": fragment,
            "org_tz": settings.org_timezone,
        }
        return _template(request, "_board" if fragment else "board", context)

    @get("/records", name="sla.records")
    async def records_page(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
        rep: TextParam = None,
        status: TextParam = None,
        campaign: TextParam = None,
        channel: TextParam = None,
        reason: TextParam = None,
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    ) -> Template:
        """The MQLs behind a board figure."""
        settings = app_settings(request)
        quarter, _ = await _quarter(db_session, settings, period)
        if status not in (None, "", *sla.RECORD_STATUSES):
            raise ValidationFailed(
                "Unknown status.", errors=[{"field": "status", "message": ", ".join(sla.RECORD_STATUSES)}]
            )
        filters = sla.RecordFilters(
            rep=_int_or_none(rep, "rep"),
            status=status or None,
            campaign=_int_or_none(campaign, "campaign"),
            channel=channel or None,
            reason=reason or None,
        )
        found = await sla.records(db_session, settings=settings, quarter=quarter, filters=filters, page=page)
        data = await sla.board(db_session, settings=settings, quarter=quarter)
        rep_name = None
        if filters.rep is not None:
            rep_name = next(
                (r.name for r in data.reps if (r.owner_id or 0) == filters.rep), f"#{filters.rep}"
            )
        campaign_name = None
        if filters.campaign is not None:
            campaign_name = data.names.get(str(filters.campaign), sla.NO_CAMPAIGN)
        context = {
            "quarter": quarter,
            "r": found,
            "rep_name": rep_name,
            "campaign_name": campaign_name,
            "params": {"period": quarter.key, **filters.params},
        }
        return _template(request, "records", context)

    # -- the policy ------------------------------------------------------------------------------------

    async def _policy_page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        quarter: Quarter,
        quarters: list[Quarter],
        form: PolicyForm | None,
        status: int = 200,
    ) -> Template:
        settings = app_settings(request)
        view = await sla.policy_view(db_session, settings=settings, quarter=quarter)
        context = {
            "quarter": quarter,
            "quarters": quarters,
            "view": view,
            "form": form or _policy_form(view),
            "weekday_names": WEEKDAY_NAMES,
            "org_tz": settings.org_timezone,
        }
        return _template(request, "policy", context, status)

    @get("/policy", name="sla.policy")
    async def policy_page(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """The period's SLA policy: a form for leaders and admins, read-only for others and closed periods."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        return await self._policy_page(request, db_session, quarter, quarters, None)

    @post("/policy", name="sla.policy_save", guards=[requires_sla_writer], status_code=200)
    async def policy_save(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Response[Any]:
        """Save the policy; the form comes back with its errors (422) or a conflict (409)."""
        settings = app_settings(request)
        quarter, quarters = await _quarter(db_session, settings, period)
        data = await request.form()

        def text(name: str) -> str:
            return str(data.get(name, "") or "")

        form = PolicyForm(
            follow_up_hours=text("follow_up_hours"),
            weekdays=[str(v) for v in data.getall("weekdays", [])],
            day_start=text("day_start"),
            day_end=text("day_end"),
            acceptance_target=text("acceptance_target"),
            mql_commitment=text("mql_commitment"),
            version=text("version") or "0",
        )
        fields = read_policy(form)
        status = 422
        if fields is not None:
            version = int(form.version) if form.version.isdigit() and len(form.version) < 10 else -1
            try:
                await sla.save_policy(
                    db_session,
                    settings=settings,
                    user=current_user(request),
                    quarter=quarter,
                    fields=fields,
                    version=version,
                )
            except (ValidationFailed, Conflict) as exc:
                await db_session.rollback()
                form.errors.update(_errors_of(exc))
                status = exc.status_code
            else:
                return Redirect(f"/sla?period={quarter.key}&saved=1", status_code=HTTP_303_SEE_OTHER)
        return await self._policy_page(request, db_session, quarter, quarters, form, status)

    # -- reject reasons --------------------------------------------------------------------------------

    async def _reasons_page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        errors: dict[str, str] | None = None,
        typed: str = "",
        status: int = 200,
        failed_id: int | None = None,
    ) -> Template:
        context = {
            "reasons": await sla.reasons(db_session),
            "errors": errors or {},
            "typed": typed,
            "failed_id": failed_id,
        }
        return _template(request, "reasons", context, status)

    @get("/reasons", name="sla.reasons")
    async def reasons_page(self, request: HTMXRequest, db_session: NamedDependency[AsyncSession]) -> Template:
        """The reject reasons: active ones in the order reps see them, then retired ones."""
        return await self._reasons_page(request, db_session)

    async def _reason_change(
        self, request: HTMXRequest, db_session: AsyncSession, reason_id: int | None, action: str
    ) -> Response[Any]:
        data = await request.form()
        name = str(data.get("name", "") or "")
        user = current_user(request)
        try:
            if action == "add":
                await sla.add_reason(db_session, user=user, name=name)
            elif action == "rename" and reason_id is not None:
                await sla.rename_reason(db_session, user=user, reason_id=reason_id, name=name)
            elif action == "active" and reason_id is not None:
                active = str(data.get("active", "")) == "1"
                await sla.set_reason_active(db_session, user=user, reason_id=reason_id, active=active)
            elif reason_id is not None:
                up = str(data.get("direction", "")) == "up"
                await sla.move_reason(db_session, user=user, reason_id=reason_id, up=up)
        except (ValidationFailed, Conflict) as exc:
            await db_session.rollback()
            return await self._reasons_page(
                request, db_session, _errors_of(exc), name, exc.status_code, failed_id=reason_id
            )
        anchor = f"#reason-{reason_id}" if reason_id is not None else ""
        return Redirect(f"/sla/reasons{anchor}", status_code=HTTP_303_SEE_OTHER)

    @post("/reasons", name="sla.reason_add", guards=[requires_sla_writer], status_code=200)
    async def reason_add(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Add a reason at the end of the list."""
        return await self._reason_change(request, db_session, None, "add")

    @post("/reasons/{reason_id:int}", name="sla.reason_rename", guards=[requires_sla_writer], status_code=200)
    async def reason_rename(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        reason_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Rename a reason (the leads rejected with it keep their text)."""
        return await self._reason_change(request, db_session, reason_id, "rename")

    @post(
        "/reasons/{reason_id:int}/active",
        name="sla.reason_active",
        guards=[requires_sla_writer],
        status_code=200,
    )
    async def reason_active(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        reason_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Retire a reason, or bring it back (active=1)."""
        return await self._reason_change(request, db_session, reason_id, "active")

    @post(
        "/reasons/{reason_id:int}/move", name="sla.reason_move", guards=[requires_sla_writer], status_code=200
    )
    async def reason_move(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        reason_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Move a reason one place up (direction=up) or down."""
        return await self._reason_change(request, db_session, reason_id, "move")
