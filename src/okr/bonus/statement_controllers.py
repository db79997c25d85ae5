"""Bonus statements and inquiries (DESIGN 6.3, 8): parse -> okr.bonus.statements -> page, fragment or JSON.

A statement is its person's, finance's and admins'; everyone else gets the same 404 as for a statement
that does not exist, on every page and API route (okr.bonus.statements says who sees what). An inquiry is
raised from a line of the statement (an htmx form on each line; a plain post without JavaScript) and
answered by finance in its thread; the run page includes the run's inquiries with hx-get.
"""

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login, requires_scope
from okr.bonus import statements as svc
from okr.bonus.plan_schemas import PlanProblem
from okr.lib.errors import OkrError, ValidationFailed
from okr.lib.web import wants_fragment

_VARY = {"Vary": "HX-Request"}
_ID = msgspec.Meta(ge=1, le=2**62)
PersonParam = Annotated[
    int | None,
    QueryParameter(ge=1, le=2**62, description="Finance and admins: whose statements (yours when left out)."),
]
RunId = Annotated[int, PathParameter(ge=1, le=2**62, description="The bonus run's id.")]
PersonId = Annotated[int, PathParameter(ge=1, le=2**62, description="The person's id.")]
InquiryId = Annotated[int, PathParameter(ge=1, le=2**62, description="The inquiry's id.")]

STATE_LABELS = {
    "draft": "Draft",
    "submitted": "Submitted for approval",
    "approved": "Approved, not locked yet",
    "locked": "Locked: final",
}


def _context(request: Request[Any, Any, Any], **more: Any) -> dict[str, Any]:
    return {
        "user": current_user(request),
        "kind_labels": svc.KIND_LABELS,
        "state_labels": STATE_LABELS,
        **more,
    }


def _template(request: Request[Any, Any, Any], name: str, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"bonus/{name}.html",
        context=_context(request, **context),
        headers=_VARY,
        status_code=status,
    )


def _errors_of(exc: OkrError) -> dict[str, str]:
    found: dict[str, str] = {} if exc.errors else {"form": exc.detail}
    for e in exc.errors:
        found.setdefault(str(e.get("field") or "form"), str(e.get("message") or exc.detail))
    return found


def _line_id(text: str) -> int | None:
    """The form's line: blank for the whole statement; anything else not a line id is refused."""
    value = text.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(
            "The inquiry was not sent.", errors=[{"field": "line_id", "message": "Choose one of your lines."}]
        )
    return int(value)


def _field(data: FormMultiDict, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


class StatementController(Controller):
    """`/bonus/statements`, a run's statements and inquiries, and inquiry threads."""

    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/bonus/statements", name="bonus.statements")
    async def statements(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], person: PersonParam = None
    ) -> Template:
        """Your statements, newest first (finance and admins: anyone's with ?person=)."""
        user = current_user(request)
        who, rows = await svc.my_statements(
            db_session, person_id=person if person is not None else user.id, user=user
        )
        return _template(request, "statements", person=who, rows=rows, own=who.id == user.id)

    async def _statement(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, run_id: int, person_id: int
    ) -> svc.Statement:
        return await svc.statement(db_session, run_id=run_id, person_id=person_id, user=current_user(request))

    @get("/bonus/runs/{run_id:int}/statements/{person_id:int}", name="bonus.statement")
    async def statement(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        run_id: RunId,
        person_id: PersonId,
    ) -> Template:
        """A person's statement: the pool formula, the team's rule, the line, the trace, the adjustments."""
        s = await self._statement(request, db_session, run_id, person_id)
        return _template(request, "statement", s=s, forms={})

    @get("/bonus/runs/{run_id:int}/statements/{person_id:int}/print", name="bonus.statement_print")
    async def printable(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        run_id: RunId,
        person_id: PersonId,
    ) -> Template:
        """The statement on a clean page for printing or saving as PDF."""
        s = await self._statement(request, db_session, run_id, person_id)
        return _template(request, "statement_print", s=s)

    @post("/bonus/runs/{run_id:int}/inquiries", name="bonus.inquiry_raise", status_code=200)
    async def raise_inquiry(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Response[Any]:
        """Ask finance about a line (htmx: the form becomes a note with the thread's link)."""
        user = current_user(request)
        data: FormMultiDict = await request.form()
        values = {k: _field(data, k) for k in ("line_id", "subject", "body")}
        try:
            line_id = _line_id(values["line_id"])
            found = await svc.raise_inquiry(
                db_session, run_id=run_id, line_id=line_id, subject=values["subject"],
                body=values["body"], user=user,
            )  # fmt: skip
        except ValidationFailed as exc:
            await db_session.rollback()
            form = {**values, "errors": _errors_of(exc)}
            if wants_fragment(request):
                s = await svc.statement(db_session, run_id=run_id, person_id=user.id, user=user)
                return _template(
                    request, "_inquiry_form", 422, s=s, line=_line_of(s, values["line_id"]), form=form
                )
            s = await svc.statement(db_session, run_id=run_id, person_id=user.id, user=user)
            return _template(request, "statement", 422, s=s, forms={values["line_id"]: form})
        if wants_fragment(request):
            s = await svc.statement(db_session, run_id=run_id, person_id=user.id, user=user)
            return _template(
                request, "_inquiry_raised", s=s, line=_line_of(s, values["line_id"]), inquiry_id=found.id
            )
        return Redirect(f"/bonus/inquiries/{found.id}?raised=1", status_code=HTTP_303_SEE_OTHER)

    @get("/bonus/inquiries/{inquiry_id:int}", name="bonus.inquiry")
    async def inquiry(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        inquiry_id: InquiryId,
        raised: Annotated[int | None, QueryParameter(ge=0, le=1)] = None,
    ) -> Template:
        """An inquiry's thread, with the reply form for the person and finance."""
        thread = await svc.inquiry(db_session, inquiry_id=inquiry_id, user=current_user(request))
        notice = "Sent to finance: you will see their answer here." if raised else None
        return _template(request, "_inquiry_page", t=thread, form=None, notice=notice)

    @post("/bonus/inquiries/{inquiry_id:int}/replies", name="bonus.inquiry_reply", status_code=200)
    async def reply(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], inquiry_id: InquiryId
    ) -> Response[Any]:
        """Add a reply (htmx: the thread comes back with it appended, the form emptied)."""
        user = current_user(request)
        data: FormMultiDict = await request.form()
        body = _field(data, "body")
        try:
            message = await svc.reply(db_session, inquiry_id=inquiry_id, body=body, user=user)
        except ValidationFailed as exc:
            await db_session.rollback()
            thread = await svc.inquiry(db_session, inquiry_id=inquiry_id, user=user)
            form = {"body": body, "errors": _errors_of(exc)}
            name = "_inquiry_thread" if wants_fragment(request) else "_inquiry_page"
            return _template(request, name, 422, t=thread, form=form, notice=None)
        thread = await svc.inquiry(db_session, inquiry_id=inquiry_id, user=user)
        if wants_fragment(request):
            return _template(request, "_inquiry_thread", t=thread, form=None, notice="Reply sent.")
        return Redirect(f"/bonus/inquiries/{inquiry_id}#message-{message.id}", status_code=HTTP_303_SEE_OTHER)

    @get("/bonus/runs/{run_id:int}/inquiries", name="bonus.run_inquiries")
    async def run_inquiries(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Template:
        """Finance and admins: a run's inquiries, open first (htmx: the list alone, for the run page)."""
        rows = await svc.inquiries_of_run(db_session, run_id=run_id, user=current_user(request))
        name = "_inquiry_list" if wants_fragment(request) else "_inquiry_list_page"
        return _template(request, name, rows=rows, run_id=run_id)


def _line_of(s: svc.Statement, text: str) -> tuple[int, str, int] | None:
    """The statement line a form was about (None: the whole statement)."""
    return next((line for line in s.lines if str(line[0]) == text.strip()), None)


# -- the API -----------------------------------------------------------------------------------------------


class InquiryCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A question to finance about one line of your statement of a run (`line_id` null: the whole)."""

    run_id: Annotated[int, _ID]
    subject: Annotated[str, msgspec.Meta(max_length=svc.SUBJECT_MAX)]
    body: Annotated[str, msgspec.Meta(max_length=svc.BODY_MAX)]
    line_id: Annotated[int, _ID] | None = None


class ReplyCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A reply in an inquiry's thread: finance's answers it, the person's reopens it."""

    body: Annotated[str, msgspec.Meta(max_length=svc.BODY_MAX)]


class StatementList(msgspec.Struct):
    """A person's statements, newest first."""

    person: svc.PersonRef
    statements: list[svc.StatementSummary]


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=PlanProblem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_R400 = _problem("The body or a parameter cannot be read (wrong type, unknown field).")
_R403 = _problem("The token lacks the scope, or the caller may not do this (admins read inquiries only).")
_R404 = _problem("No such statement or inquiry, or one the caller may not see (the same answer for both).")
_R422 = _problem("A field is not valid; `errors` names each field and why.")
_READ = [requires_scope("read")]
_WRITE = [requires_scope("import")]


class StatementApiController(Controller):
    """`/api/v1/bonus/...`: statements and inquiries as JSON. Amounts are integer minor units of the run's
    `currency`. Reading needs a login or a token with the `read` scope; writing one with `import`."""

    tags = ("bonus",)

    @get(
        "/api/v1/bonus/runs/{run_id:int}/statements/{person_id:int}",
        name="api.bonus.statement",
        guards=_READ,
        summary="A person's bonus statement",
        description=(
            "The pool formula with the numbers filled in, the team's pool and rule in words, the earning "
            "line (credit, proration, weight, share, cap), the trace deal by deal (per campaign with the "
            "touches for marketers), adjustments, clawbacks, the payable amount and the checksums. The "
            "person, finance and admins only: anyone else gets 404, as for a statement that does not exist."
        ),
        responses={400: _R400, 403: _R403, 404: _R404},
    )
    async def statement(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        run_id: RunId,
        person_id: PersonId,
    ) -> svc.Statement:
        """A statement."""
        return await svc.statement(db_session, run_id=run_id, person_id=person_id, user=current_user(request))

    @get(
        "/api/v1/bonus/statements/me",
        name="api.bonus.my_statements",
        guards=_READ,
        summary="Your bonus statements",
        description="The runs holding a line for you (approved and locked ones; finance and admins see all).",
        responses={403: _R403},
    )
    async def mine(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> StatementList:
        """Your statements."""
        user = current_user(request)
        person, rows = await svc.my_statements(db_session, person_id=user.id, user=user)
        return StatementList(person=person, statements=rows)

    @post(
        "/api/v1/bonus/inquiries",
        name="api.bonus.inquiry_raise",
        guards=_WRITE,
        summary="Raise an inquiry on a line of your statement",
        description="Only on your own lines; finance answers in the thread. 404 for a run or line not yours.",
        responses={400: _R400, 403: _R403, 404: _R404, 422: _R422},
    )
    async def raise_inquiry(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[InquiryCreate],
    ) -> svc.Thread:
        """Raise an inquiry."""
        user = current_user(request)
        found = await svc.raise_inquiry(
            db_session,
            run_id=data.run_id,
            line_id=data.line_id,
            subject=data.subject,
            body=data.body,
            user=user,
        )
        return await svc.inquiry(db_session, inquiry_id=found.id, user=user)

    @get(
        "/api/v1/bonus/inquiries/{inquiry_id:int}",
        name="api.bonus.inquiry",
        guards=_READ,
        summary="An inquiry and its thread",
        description="The person who raised it, finance and admins; anyone else gets 404.",
        responses={400: _R400, 403: _R403, 404: _R404},
    )
    async def inquiry(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        inquiry_id: InquiryId,
    ) -> svc.Thread:
        """An inquiry."""
        return await svc.inquiry(db_session, inquiry_id=inquiry_id, user=current_user(request))

    @post(
        "/api/v1/bonus/inquiries/{inquiry_id:int}/replies",
        name="api.bonus.inquiry_reply",
        guards=_WRITE,
        summary="Reply in an inquiry's thread",
        description="Finance's reply answers the inquiry; the person's reopens it. Admins may not reply.",
        responses={400: _R400, 403: _R403, 404: _R404, 422: _R422},
    )
    async def reply(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        inquiry_id: InquiryId,
        data: JSONBody[ReplyCreate],
    ) -> svc.Thread:
        """Reply to an inquiry."""
        user = current_user(request)
        await svc.reply(db_session, inquiry_id=inquiry_id, body=data.body, user=user)
        return await svc.inquiry(db_session, inquiry_id=inquiry_id, user=user)


__all__ = ["StatementApiController", "StatementController"]
