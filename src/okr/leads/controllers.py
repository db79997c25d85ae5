"""The lead queue page and its JSON API (DESIGN 5, 8): parse -> leads services -> page, fragment or JSON.

`/leads` is the caller's queue (`?person=` another's: a leader's team, read-only; an admin, anyone's).
Each row's buttons post with htmx and get the row back as a short confirmation with an Undo (or the row
with its error, 409 or 422, shown in place); the bulk bar posts the selected rows and gets the whole queue
back. Without JavaScript the same forms post and come back to the page. The list polls itself every
60 s (unless something is selected) so the time left stays current.
"""

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
from okr.leads import services as leads
from okr.leads.schemas import (
    BulkDispositionBody,
    BulkDispositionRead,
    DispositionBody,
    DispositionRead,
    LeadsProblem,
    QueueRead,
)
from okr.lib.errors import Conflict, Forbidden, NotFound, ValidationFailed
from okr.lib.web import app_settings, wants_fragment
from okr.sla.policy import active_reasons

_VARY = {"Vary": "HX-Request"}
STATE_LABELS = {"pending": "Pending", "due_soon": "Due soon", "breached": "Breached"}
STATE_TONES = {"pending": "info", "due_soon": "warn", "breached": "bad"}
STATE_ICONS = {"pending": "◷", "due_soon": "⚠", "breached": "✕"}

PersonParam = Annotated[
    int | None, QueryParameter(ge=1, description="Whose queue (a person id); the caller's when left out.")
]


def _via(request: Request[Any, Any, Any]) -> str | None:
    creds = credentials(request)
    return creds.token_name if creds.is_token else None


def _text(data: FormMultiDict, name: str) -> str:
    return str(data.get(name, "") or "")


def _person(data: FormMultiDict) -> int | None:
    text = _text(data, "person").strip()
    return int(text) if text.isdigit() and len(text) < 18 else None


def _queue_url(person: int | None) -> str:
    return "/leads" + (f"?person={person}" if person else "")


def _template(name: str, context: dict[str, Any], status: int = 200) -> Template:
    common = {"state_labels": STATE_LABELS, "state_tones": STATE_TONES, "state_icons": STATE_ICONS}
    # htmx swaps only 2xx answers; the page swaps a 4xx that carries this header (the row or the queue
    # with its message in place), and leaves the app's other error answers alone.
    headers = _VARY if status < 400 else {**_VARY, "X-Leads-Swap": "1"}
    return Template(
        template_name=f"leads/{name}.html", context={**common, **context}, headers=headers, status_code=status
    )


class LeadsController(Controller):
    """`/leads`: a person's open MQLs, one-click and bulk dispositions, undo."""

    path = "/leads"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    async def _context(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, person: int | None, **more: Any
    ) -> dict[str, Any]:
        queue = await leads.lead_queue(
            db_session, settings=app_settings(request), user=current_user(request), person_id=person
        )
        return {
            "queue": queue,
            "reasons": await active_reasons(db_session),
            "person": None if queue.own else queue.owner.id,
            "selected": set(),
            "notice": None,
            "problem": None,
            **more,
        }

    @get("/", name="leads.index")
    async def index(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], person: PersonParam = None
    ) -> Template:
        """The queue, most urgent first; htmx (the 60 s poll) gets the list only."""
        context = await self._context(request, db_session, person)
        return _template("_queue" if wants_fragment(request) else "page", context)

    @get("/dismiss", name="leads.dismiss")
    async def dismiss(self) -> Response[str]:
        """Nothing: a confirmation row asks for it to remove itself after a few seconds."""
        return Response("", media_type="text/html", headers=_VARY)

    @post("/{lead_id:int}/undo", name="leads.undo", status_code=200)
    async def undo(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        lead_id: Annotated[int, PathParameter()],
    ) -> Response[Any]:
        """Take back the last disposition (within a minute); htmx gets the row back."""
        data = await request.form()
        person = _person(data)
        try:
            await leads.undo(db_session, user=current_user(request), lead_id=lead_id, via=_via(request))
        except Conflict as exc:
            await db_session.rollback()
            if not request.htmx:
                raise
            return _template("_gone", {"lead_id": lead_id, "message": exc.detail}, 409)
        if not request.htmx:
            return Redirect(_queue_url(person), status_code=HTTP_303_SEE_OTHER)
        context = await self._context(request, db_session, person)
        item = next((i for i in context["queue"].items if i.id == lead_id), None)
        if item is None:
            return _template("_gone", {"lead_id": lead_id, "message": "Restored; it is not in this queue."})
        return _template("_row", {**context, "item": item, "restored": True})

    @post("/bulk", name="leads.bulk", status_code=200)
    async def bulk(self, request: HTMXRequest, db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """The same action for the selected leads, all or none; htmx gets the queue back."""
        data = await request.form()
        person = _person(data)
        action = _text(data, "action")
        picked = [int(v) for v in data.getall("lead", []) if str(v).isdigit() and len(str(v)) < 18]
        try:
            done = await leads.dispose(
                db_session,
                user=current_user(request),
                action=action,
                ids=picked,
                reason=_text(data, "reason") or None,
                via=_via(request),
            )
        except (ValidationFailed, NotFound, Forbidden, Conflict) as exc:
            await db_session.rollback()
            context = await self._context(request, db_session, person, selected=set(picked), problem=exc)
            return _template("_queue" if request.htmx else "page", context, exc.status_code)
        if not request.htmx:
            return Redirect(_queue_url(person), status_code=HTTP_303_SEE_OTHER)
        word = leads.DONE[done[0].action]
        notice = f"{word.capitalize()} {len(done)} lead{'s' if len(done) != 1 else ''}" + (
            f" (reason: {done[0].reason})." if done[0].reason else "."
        )
        return _template("_queue", await self._context(request, db_session, person, notice=notice))

    @post("/{lead_id:int}/{action:str}", name="leads.act", status_code=200)
    async def act(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        lead_id: Annotated[int, PathParameter()],
        action: Annotated[str, PathParameter(description="accept, reject or recycle")],
    ) -> Response[Any]:
        """Accept, reject (with the reason picked in the row) or recycle one lead."""
        if action not in leads.ACTIONS:
            raise NotFound("No such action: use accept, reject or recycle.")
        data = await request.form()
        person = _person(data)
        try:
            [done] = await leads.dispose(
                db_session,
                user=current_user(request),
                action=action,
                ids=[lead_id],
                reason=_text(data, "reason") or None,
                via=_via(request),
            )
        except (ValidationFailed, Conflict) as exc:
            await db_session.rollback()
            if not request.htmx:
                raise
            if isinstance(exc, Conflict):
                return _template("_gone", {"lead_id": lead_id, "message": exc.detail}, 409)
            context = await self._context(request, db_session, person)
            item = next((i for i in context["queue"].items if i.id == lead_id), None)
            if item is None:
                raise
            return _template("_row", {**context, "item": item, "row_error": exc.detail}, 422)
        if not request.htmx:
            return Redirect(_queue_url(person), status_code=HTTP_303_SEE_OTHER)
        return _template("_done", {"done": done, "word": leads.DONE[done.action], "person": person})


# -- the API -----------------------------------------------------------------------------------------------


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=LeadsProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_R400 = _problem("The body cannot be read (not JSON, wrong type, unknown field).")
_R403 = _problem(
    "The token lacks the scope, or the lead is in your team's queue but not yours (a leader sees the "
    "team's queues and works only their own leads)."
)
_R404 = _problem("No such lead (or person), or not one you may see. A batch names the leads.")
_R409 = _problem("The lead is not open any more (accepted, rejected, recycled or an SQL already).")
_R422 = _problem("A field is not valid (action, reason, at, leads); `errors` names it and why.")


class LeadsApiController(Controller):
    """`/api/v1/leads/...`: the queue, and dispositions a CRM pushes.

    Reading needs a login or a token with the `read` scope; dispositions need a token with the `import`
    scope. The token acts as its creator: a rep's token works that rep's leads, an admin's any lead.
    """

    path = "/api/v1/leads"
    tags = ("leads",)

    @get(
        "/queue",
        name="api.leads.queue",
        guards=[requires_scope("read")],
        summary="A lead queue",
        description=(
            "A person's open MQLs (mql_at set; not accepted, rejected, recycled or an SQL), most urgent "
            "first, with the deadline under the SLA rule of the MQL's period, the business time left "
            "(negative when overdue) and the status (pending, due_soon, breached). `person` defaults to "
            "the caller; a leader may ask for someone in their team, an admin for anyone."
        ),
        responses={403: _R403, 404: _R404},
    )
    async def queue(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        person: PersonParam = None,
    ) -> QueueRead:
        """A person's open MQLs."""
        queue = await leads.lead_queue(
            db_session, settings=app_settings(request), user=current_user(request), person_id=person
        )
        return QueueRead.of(queue)

    @post(
        "/{external_id:str}/disposition",
        name="api.leads.disposition",
        guards=[requires_scope("import")],
        status_code=200,
        summary="Disposition a lead",
        description=(
            "Accept, reject (with one of the active reject reasons) or recycle an open MQL, by its CRM id. "
            "`at` dates a disposition made earlier in the CRM (not in the future, not before mql_at). "
            "Stamped and audited as `lead.accept`, `lead.reject` or `lead.recycle`."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def disposition(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        external_id: Annotated[str, PathParameter(max_length=100, description="The lead's CRM id.")],
        data: JSONBody[DispositionBody],
    ) -> DispositionRead:
        """Disposition one lead."""
        [done] = await leads.dispose(
            db_session,
            user=current_user(request),
            action=data.action,
            external_ids=[external_id],
            reason=data.reason,
            at=data.at,
            via=_via(request),
        )
        return DispositionRead.of(done)

    @post(
        "/dispositions",
        name="api.leads.dispositions",
        guards=[requires_scope("import")],
        status_code=200,
        summary="Disposition many leads",
        description=(
            f"The same disposition for up to {leads.MAX_BATCH} leads by CRM id, all or none: when any lead "
            "is unknown, not yours or not open, nothing changes and the problem names those leads."
        ),
        responses={400: _R400, 403: _R403, 404: _R404, 409: _R409, 422: _R422},
    )
    async def dispositions(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[BulkDispositionBody],
    ) -> BulkDispositionRead:
        """Disposition many leads."""
        if any(not e.strip() or len(e) > 100 for e in data.leads):
            raise ValidationFailed(
                "Each lead is a CRM id of 1 to 100 characters.",
                errors=[{"field": "leads", "message": "each lead is a CRM id of 1 to 100 characters"}],
            )
        done = await leads.dispose(
            db_session,
            user=current_user(request),
            action=data.action,
            external_ids=data.leads,
            reason=data.reason,
            at=data.at,
            via=_via(request),
        )
        return BulkDispositionRead([DispositionRead.of(d) for d in done])
