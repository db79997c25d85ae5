"""Bonus runs: pages for finance (start, follow, check, submit, approve, lock, adjust) and the JSON API.

Who sees what (DESIGN 8): finance and admins see every line of a run; a leader sees the pool, the team
pools and their own team's total, never a person's line; members use their statements instead. Starting,
submitting: finance and admins; approving, locking, sending back, adjusting: finance only.
"""

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body, PathParameter, QueryParameter
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_201_CREATED, HTTP_303_SEE_OTHER
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.auth.guards import current_user, requires_login, requires_role, requires_scope
from okr.auth.schemas import CurrentUser
from okr.bonus import jobs, services
from okr.bonus.plans import approved_plan
from okr.db.bonus import BonusLine, BonusRun, LedgerEntry, RunState, RunStatus
from okr.db.people import Period, Person, Role, Team
from okr.lib.errors import ValidationFailed
from okr.lib.money import to_minor
from okr.lib.web import app_settings, org_today, wants_fragment
from okr.periods.services import resolve_quarter

_readers = requires_role(Role.LEADER, Role.FINANCE)
Action = Annotated[str, PathParameter(max_length=16, description="submit, approve or lock (reopen: pages)")]
RunId = Annotated[int, PathParameter(ge=1, le=2**62, description="The run's id.")]
PeriodParam = Annotated[
    str | None,
    QueryParameter(max_length=16, description="A fiscal quarter like 2026-Q3; today's by default."),
]


def _sees_lines(user: CurrentUser) -> bool:
    return user.role == Role.FINANCE or user.is_admin


def _require_lines(user: CurrentUser) -> None:
    if not _sees_lines(user):
        raise PermissionDeniedException("Only finance and admins see a run's lines.")


async def _people(session: AsyncSession, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = await session.execute(select(Person.id, Person.name, Person.email).where(Person.id.in_(ids)))
    return {int(i): (name, email) for i, name, email in rows}


async def run_context(session: AsyncSession, run: BonusRun, user: CurrentUser) -> dict[str, Any]:
    """Everything the run page shows the caller (lines only for finance and admins)."""
    period = await session.get_one(Period, run.period_id)
    summary = run.summary or {}
    payable = {p["person_id"]: p for p in summary.get("payable", [])}
    lines: list[dict[str, Any]] = []
    if run.status == RunStatus.DONE and _sees_lines(user):
        earnings = await services.lines_of(session, run_id=run.id)
        names = await _people(session, {line.person_id for line in earnings})
        by_person: dict[int, list[BonusLine]] = {}
        for line in earnings:
            by_person.setdefault(line.person_id, []).append(line)
        for person_id, mine in by_person.items():
            earning = next((line for line in mine if line.kind == "earning"), None)
            team = earning.team if earning is not None else None
            pay = payable.get(person_id, {})
            lines.append(
                {
                    "person_id": person_id,
                    "name": names.get(person_id, (f"Person {person_id}", ""))[0],
                    "email": names.get(person_id, ("", ""))[1],
                    "team": team,
                    "earning": earning,
                    "others": [line for line in mine if line.kind != "earning"],
                    "pay": pay,
                }
            )
        lines.sort(key=lambda r: (r["team"] or "~", -int(r["pay"].get("payable", 0)), r["name"]))
    own_team = None
    if not _sees_lines(user) and user.team_id is not None:
        own_team = await session.scalar(select(Team.name).where(Team.id == user.team_id))
    names_of = await _people(
        session,
        {i for i in (run.created_by_id, run.submitted_by_id, run.approved_by_id, run.locked_by_id) if i},
    )
    pending = []
    if _sees_lines(user):
        pending = list(
            (
                await session.scalars(
                    select(LedgerEntry)
                    .where(LedgerEntry.kind == "adjustment", LedgerEntry.run_id.is_(None))
                    .order_by(LedgerEntry.id)
                )
            ).all()
        )
    in_run = {line.entry_id for r in lines for line in r["others"] if line.entry_id}
    return {
        "run": run,
        "period": period,
        "summary": summary,
        "inputs": run.inputs or {},
        "lines": lines,
        "own_team": own_team,
        "sees_lines": _sees_lines(user),
        "actors": names_of,
        "pending": pending,
        "pending_people": await _people(session, {e.person_id for e in pending}),
        "in_run": in_run,
        "running": run.status == RunStatus.RUNNING,
        "can": {
            "submit": run.state == RunState.DRAFT and run.status == RunStatus.DONE and _sees_lines(user),
            "approve": run.state == RunState.SUBMITTED
            and user.role == Role.FINANCE
            and run.submitted_by_id != user.id,
            "lock": run.state == RunState.APPROVED and user.role == Role.FINANCE,
            "reopen": run.state in (RunState.SUBMITTED, RunState.APPROVED) and user.role == Role.FINANCE,
            "recompute": run.state == RunState.DRAFT and _sees_lines(user),
            "adjust": user.role == Role.FINANCE,
            "export": user.role == Role.FINANCE and run.status == RunStatus.DONE,
        },
    }


class BonusController(Controller):
    """`/bonus`: the period's runs; a run's page; the lifecycle; adjustments."""

    path = "/bonus"
    guards = [requires_login]  # noqa: RUF012
    include_in_schema = False

    @get("/", name="bonus.index")
    async def index(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Template:
        """The period's plan and runs, and where to read your own statements."""
        settings = app_settings(request)
        user = current_user(request)
        quarter, quarters = await resolve_quarter(
            db_session, settings=settings, key=period, today=org_today(settings)
        )
        row = await db_session.scalar(select(Period).where(Period.key == quarter.key))
        plan = None if row is None else await approved_plan(db_session, period_id=row.id)
        runs = (
            []
            if row is None or user.role == Role.MEMBER
            else await services.runs_of(db_session, period_id=row.id)
        )
        context = {
            "quarter": quarter,
            "quarters": quarters,
            "period": row,
            "plan": plan,
            "runs": runs,
            "can_start": _sees_lines(user)
            and plan is not None
            and not any(r.state == RunState.LOCKED for r in runs),
            "sees_lines": _sees_lines(user),
            "is_member": user.role == Role.MEMBER,
        }
        name = "bonus/_runs.html" if wants_fragment(request) else "bonus/runs.html"
        return Template(template_name=name, context=context)

    @post("/runs", name="bonus.start", status_code=HTTP_303_SEE_OTHER)
    async def start(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], period: PeriodParam = None
    ) -> Redirect | ClientRedirect:
        """Start a run of the period (finance, admins): it computes in the background."""
        settings = app_settings(request)
        user = current_user(request)
        _require_lines(user)
        form = await request.form()
        key = str(form.get("period") or period or "")
        run = await services.create_run(db_session, settings=settings, period_key=key, user=user)
        await db_session.commit()
        task = jobs.start(settings, run.id)
        await jobs.settle(task)
        return _to(request, f"/bonus/runs/{run.id}")

    @get("/runs/{run_id:int}", name="bonus.run")
    async def run(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Template:
        """A run: its pool formula, team pools, lines (finance, admins), lifecycle and adjustments."""
        user = current_user(request)
        if not user.has_role(Role.LEADER, Role.FINANCE):
            raise PermissionDeniedException("Your statements are under Bonus > My statements.")
        run = await services.get_run(db_session, run_id)
        return Template(template_name="bonus/run.html", context=await run_context(db_session, run, user))

    @get("/runs/{run_id:int}/status", name="bonus.run_status")
    async def status(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Any:
        """The progress line while the run computes; a refresh of the page once it is done."""
        run = await services.get_run(db_session, run_id)
        if run.status != RunStatus.RUNNING:
            return ClientRedirect(f"/bonus/runs/{run.id}")
        return Template(template_name="bonus/_run_progress.html", context={"run": run})

    @post("/runs/{run_id:int}/compute", name="bonus.compute", status_code=HTTP_303_SEE_OTHER)
    async def compute(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Redirect | ClientRedirect:
        """Compute a draft run again on the data as it is now."""
        user = current_user(request)
        _require_lines(user)
        run = await services.get_run(db_session, run_id)
        services.require_draft(run)
        await services.mark_computing(db_session, run=run, user=user)
        await db_session.commit()
        await jobs.settle(jobs.start(app_settings(request), run.id))
        return _to(request, f"/bonus/runs/{run.id}")

    @post("/runs/{run_id:int}/verify", name="bonus.verify")
    async def verify(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId
    ) -> Template:
        """Compute the stored inputs again and compare the results byte for byte."""
        _require_lines(current_user(request))
        run = await services.get_run(db_session, run_id)
        same = await services.verify_run(db_session, run_id=run_id)
        return Template(template_name="bonus/_run_verify.html", context={"run": run, "same": same})

    @post("/runs/{run_id:int}/{action:str}", name="bonus.transition", status_code=HTTP_303_SEE_OTHER)
    async def transition(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession], run_id: RunId, action: Action
    ) -> Redirect | ClientRedirect:
        """submit, approve, lock, or reopen (with a reason)."""
        user = current_user(request)
        form = await request.form()
        if action == "submit":
            await services.submit_run(db_session, run_id=run_id, user=user)
        elif action == "approve":
            await services.approve_run(db_session, run_id=run_id, user=user)
        elif action == "lock":
            await services.lock_run(db_session, run_id=run_id, user=user)
        elif action == "reopen":
            await services.reopen_run(
                db_session, run_id=run_id, user=user, reason=str(form.get("reason") or "")
            )
        else:
            raise ValidationFailed(f"“{action}” is not something a run can do.")
        return _to(request, f"/bonus/runs/{run_id}")

    @post("/adjustments", name="bonus.adjust", status_code=HTTP_303_SEE_OTHER)
    async def adjust(
        self, request: HTMXRequest, db_session: NamedDependency[AsyncSession]
    ) -> Redirect | ClientRedirect | Template:
        """A manual adjustment (finance): person, amount in major units, reason; the next run pays it."""
        settings = app_settings(request)
        user = current_user(request)
        form = await request.form()
        back = str(form.get("next") or "/bonus")
        if not back.startswith("/bonus"):
            back = "/bonus"
        values = {k: str(form.get(k) or "") for k in ("person", "amount", "reason")}
        errors: dict[str, str] = {}
        person_id = await _person_id(db_session, values["person"])
        if person_id is None:
            errors["person"] = "Choose a person by email."
        amount = 0
        try:
            amount = to_minor(Decimal(values["amount"].replace(",", "").strip()), settings.org_currency)
        except (InvalidOperation, ValueError):
            errors["amount"] = f"Enter an amount in {settings.org_currency}, like 250.00 or -120.50."
        if not errors and person_id is not None:
            try:
                await services.add_adjustment(
                    db_session, person_id=person_id, amount=amount, reason=values["reason"],
                    currency=settings.org_currency, user=user,
                )  # fmt: skip
            except ValidationFailed as refused:
                errors = {e["field"]: e["message"] for e in refused.errors}
                errors["person"] = errors.pop("person_id", errors.get("person", ""))
                errors = {k: v for k, v in errors.items() if v}
        if errors:
            return Template(
                template_name="bonus/_adjust_form.html",
                context={"values": values, "errors": errors, "next": back, "currency": settings.org_currency},
                status_code=422,
            )
        return _to(request, back)


async def _person_id(session: AsyncSession, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return await session.scalar(select(Person.id).where(Person.id == int(text)))
    return await session.scalar(select(Person.id).where(Person.email == text.lower()))


def _to(request: HTMXRequest, url: str) -> Redirect | ClientRedirect:
    return ClientRedirect(url) if request.htmx else Redirect(url, status_code=HTTP_303_SEE_OTHER)


# -- API -------------------------------------------------------------------------------------------------


class RunStart(Struct, forbid_unknown_fields=True):
    """Start a run of a period."""

    period: str


class RunRead(Struct):
    """A run: where it stands, its pool and checksums (no person's line: see the statements and exports)."""

    id: int
    period: str
    number: int
    state: str
    status: str
    progress: str | None
    error: str | None
    currency: str
    as_of: str
    pool: int | None
    paid: int | None
    leftover: int | None
    formula: str | None
    teams: list[dict[str, Any]]
    inputs_checksum: str | None
    results_checksum: str | None
    url: str


async def _read(session: AsyncSession, run: BonusRun) -> RunRead:
    period = await session.get_one(Period, run.period_id)
    summary = run.summary or {}
    return RunRead(
        id=run.id,
        period=period.key,
        number=run.number,
        state=run.state,
        status=run.status,
        progress=run.progress,
        error=run.error,
        currency=run.currency,
        as_of=run.as_of.isoformat(),
        pool=run.pool,
        paid=run.paid,
        leftover=run.leftover,
        formula=summary.get("pool", {}).get("formula"),
        teams=[
            {k: t[k] for k in ("team", "share", "rule", "pool", "paid", "leftover")}
            for t in summary.get("teams", [])
        ],
        inputs_checksum=run.inputs_checksum,
        results_checksum=run.results_checksum,
        url=f"/bonus/runs/{run.id}",
    )


class BonusApiController(Controller):
    """`/api/v1/bonus/runs`: start, read, and move runs through their lifecycle."""

    path = "/api/v1/bonus/runs"
    tags = ["bonus"]  # noqa: RUF012

    @get("/", guards=[_readers, requires_scope("read")], name="api.bonus.runs")
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        period: PeriodParam = None,
    ) -> list[RunRead]:
        """Runs, newest first (of one period when given)."""
        period_id = None
        if period:
            period_id = (await services.period_by_key(db_session, period)).id
        return [await _read(db_session, r) for r in await services.runs_of(db_session, period_id=period_id)]

    @get("/{run_id:int}", guards=[_readers, requires_scope("read")], name="api.bonus.run")
    async def get_run(self, db_session: NamedDependency[AsyncSession], run_id: RunId) -> RunRead:
        """One run."""
        return await _read(db_session, await services.get_run(db_session, run_id))

    @post("/", guards=[requires_scope("export")], status_code=HTTP_201_CREATED, name="api.bonus.start")
    async def start_run(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        data: Annotated[RunStart, Body()],
    ) -> RunRead:
        """Start a run (finance, admins); it computes in the background: poll the run until status is done."""
        settings = app_settings(request)
        user = current_user(request)
        _require_lines(user)
        run = await services.create_run(db_session, settings=settings, period_key=data.period, user=user)
        await db_session.commit()
        await jobs.settle(jobs.start(settings, run.id), seconds=0)
        return await _read(db_session, run)

    @post("/{run_id:int}/{action:str}", guards=[requires_scope("export")], name="api.bonus.transition")
    async def transition(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        run_id: RunId,
        action: Action,
    ) -> RunRead:
        """submit, approve (another finance user than the submitter), lock."""
        user = current_user(request)
        if action == "submit":
            run = await services.submit_run(db_session, run_id=run_id, user=user)
        elif action == "approve":
            run = await services.approve_run(db_session, run_id=run_id, user=user)
        elif action == "lock":
            run = await services.lock_run(db_session, run_id=run_id, user=user)
        else:
            raise ValidationFailed(f"“{action}” is not submit, approve or lock.")
        return await _read(db_session, run)
