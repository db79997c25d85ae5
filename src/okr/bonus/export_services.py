"""Read a bonus run for its exports (DESIGN 6.5), say who may export, and write the audit event.

People are named as the run's stored inputs name them (the data the run read), so an export of a locked
run reads the same next year; a person outside the inputs (an adjustment for someone who left the plan's
teams) is named from the people table.
"""

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.bonus.exports import ExportData, LedgerRow, PersonRow, TeamRow, TraceRow
from okr.bonus.services import get_run, lines_of
from okr.db.bonus import BonusLine, BonusTrace, LineKind, RunStatus
from okr.db.people import Person, Role, Team
from okr.db.pipeline import Campaign
from okr.lib.errors import Conflict, Forbidden

FORMATS: Final = ("csv", "xlsx", "json")


def may_export(user: CurrentUser) -> bool:
    """DESIGN 8: finance exports runs; admins may only submit them, leaders and members nothing."""
    return user.role == Role.FINANCE


def check_may_export(user: CurrentUser) -> None:
    """Forbidden unless the user may export bonus runs."""
    if not may_export(user):
        raise Forbidden("Only finance may export bonus runs.")


def _who(person: Mapping[str, Any] | None, fallback: tuple[str, str, str, str] | None) -> tuple[str, ...]:
    """(employee id, name, email, team) of a person."""
    if person is not None:
        return (
            str(person.get("employee_id") or ""),
            str(person.get("name") or ""),
            str(person.get("email") or ""),
            str(person.get("team") or ""),
        )
    return fallback or ("", "", "", "")


async def _outsiders(session: AsyncSession, ids: set[int]) -> dict[int, tuple[str, str, str, str]]:
    """(employee id, name, email, team) of people the run's inputs do not name."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Person.id, Person.employee_id, Person.name, Person.email, Team.name)
        .outerjoin(Team, Team.id == Person.team_id)
        .where(Person.id.in_(sorted(ids)))
    )
    return {pid: (emp or "", name or "", email or "", team or "") for pid, emp, name, email, team in rows}


async def _traces(session: AsyncSession, run_id: int) -> list[BonusTrace]:
    return list(
        (
            await session.scalars(
                select(BonusTrace)
                .where(BonusTrace.run_id == run_id)
                .order_by(BonusTrace.person_id, BonusTrace.opportunity_id, BonusTrace.campaign_id)
            )
        ).all()
    )


async def _campaign_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(sorted(ids))))
    return {cid: name for cid, name in rows}


async def export_data(session: AsyncSession, *, run_id: int) -> ExportData:
    """The run, its lines and traces as the exports show them; NotFound, or Conflict when not computed."""
    run = await get_run(session, run_id)
    if run.status != RunStatus.DONE or run.summary is None or run.inputs is None:
        raise Conflict(f"Run {run.id} has not finished computing; export it once it has.")
    inputs, summary, cur = run.inputs, run.summary, run.currency
    known = {int(p["id"]): p for p in inputs.get("people", [])}
    payable = {int(p["person_id"]): p for p in summary.get("payable", [])}
    lines = await lines_of(session, run_id=run.id)
    traces = await _traces(session, run.id)
    outsiders = await _outsiders(
        session,
        (set(payable) | {line.person_id for line in lines} | {t.person_id for t in traces}) - set(known),
    )

    def who(person_id: int) -> tuple[str, ...]:
        return _who(known.get(person_id), outsiders.get(person_id))

    earnings: dict[int, BonusLine] = {line.person_id: line for line in lines if line.kind == LineKind.EARNING}
    team_order = {t["team"]: i for i, t in enumerate(summary.get("teams", []))}

    def person_row(person_id: int, p: Mapping[str, Any]) -> PersonRow:
        employee_id, name, email, team = who(person_id)
        line = earnings.get(person_id)
        return PersonRow(
            person_id=person_id,
            employee_id=employee_id,
            name=name,
            email=email,
            team=(line.team if line is not None and line.team else team),
            credit=None if line is None else line.credit,
            proration=None if line is None else line.proration,
            cap=None if line is None else line.cap,
            capped=False if line is None else line.capped,
            earning=int(p["earning"]),
            adjustment=int(p["adjustment"]),
            clawback=int(p["clawback"]),
            carried_in=int(p["carried_in"]),
            total=int(p["total"]),
            payable=int(p["payable"]),
            carried_out=int(p["carried_out"]),
        )

    people = sorted(
        (person_row(pid, p) for pid, p in payable.items()),
        key=lambda r: (team_order.get(r.team, len(team_order)), r.team, r.name.casefold(), r.person_id),
    )
    order = {r.person_id: i for i, r in enumerate(people)}
    deals: dict[str, list[Any]] = inputs.get("deals", {})

    def deal(opportunity_id: int | None) -> tuple[str, str]:
        found = deals.get(str(opportunity_id)) if opportunity_id is not None else None
        if not found:
            return ("" if opportunity_id is None else str(opportunity_id), "")
        return str(found[0] or ""), str(found[1] or "")

    campaigns = await _campaign_names(session, {t.campaign_id for t in traces if t.campaign_id is not None})
    trace_rows = []
    for t in sorted(
        traces, key=lambda t: (order.get(t.person_id, len(order)), t.opportunity_id, t.campaign_id or 0)
    ):
        _, name, email, _ = who(t.person_id)
        external_id, deal_name = deal(t.opportunity_id)
        trace_rows.append(
            TraceRow(
                person_id=t.person_id,
                name=name,
                email=email,
                opportunity_id=t.opportunity_id,
                deal_external_id=external_id,
                deal_name=deal_name,
                campaign_id=t.campaign_id,
                campaign_name=campaigns.get(t.campaign_id, "") if t.campaign_id is not None else "",
                credit=t.credit,
                amount=t.amount,
            )
        )

    ledger: list[LedgerRow] = []
    for line in lines:
        if line.kind == LineKind.EARNING:
            continue
        _, name, email, _ = who(line.person_id)
        ledger.append(
            LedgerRow(
                person_id=line.person_id,
                name=name,
                email=email,
                kind=line.kind,
                amount=line.amount,
                reason=line.reason or "",
                deal_external_id=deal(line.opportunity_id)[0] if line.opportunity_id else "",
            )
        )
    for r in people:
        if r.carried_out:
            ledger.append(
                LedgerRow(
                    person_id=r.person_id,
                    name=r.name,
                    email=r.email,
                    kind="carried_out",
                    amount=r.carried_out,
                    reason="negative total carried to the person's next run",
                    deal_external_id="",
                )
            )
    ledger.sort(key=lambda e: (order.get(e.person_id, len(order)), e.kind))

    pool: Mapping[str, Any] = summary.get("pool", {})
    leftover: Mapping[str, Any] = summary.get("leftover", {})
    return ExportData(
        run_id=run.id,
        run_number=run.number,
        period=str(inputs.get("period", {}).get("key", "")),
        state=run.state,
        currency=cur,
        as_of=run.as_of,
        computed_at=run.computed_at,
        locked_at=run.locked_at,
        inputs_checksum=run.inputs_checksum or "",
        results_checksum=run.results_checksum or "",
        joint_score=str(pool.get("joint_score", "0")),
        multiplier=str(pool.get("multiplier", "0")),
        won_revenue=int(pool.get("won_revenue", 0)),
        sourced_pipeline=int(pool.get("sourced_pipeline", 0)),
        formula=str(pool.get("formula", "")),
        carried_forward=int(pool.get("carried_forward", 0)),
        pool=int(pool.get("pool", run.pool or 0)),
        paid=int(summary.get("paid", run.paid or 0)),
        leftover=int(leftover.get("amount", run.leftover or 0)),
        leftover_policy=str(leftover.get("policy", "")),
        teams=tuple(
            TeamRow(
                team=str(t["team"]),
                share=str(t["share"]),
                rule=str(t["rule"]),
                pool=int(t["pool"]),
                paid=int(t["paid"]),
                leftover=int(t["leftover"]),
                people=int(t["people"]),
            )
            for t in summary.get("teams", [])
        ),
        people=tuple(people),
        traces=tuple(trace_rows),
        ledger=tuple(ledger),
    )


async def record_export(
    session: AsyncSession, *, data: ExportData, fmt: str, user: CurrentUser, via: str | None = None
) -> None:
    """Write the `bonus_run.export` audit event: who exported which run, in which format, as what."""
    await audit.record(
        session,
        actor=user.email if via is None else f"{user.email} (token {via})",
        actor_id=user.id,
        action="bonus_run.export",
        entity="bonus_run",
        entity_id=data.run_id,
        after={
            "format": fmt,
            "run_id": data.run_id,
            "state": data.state,
            "status": data.status,
            "inputs_checksum": data.inputs_checksum,
            "people": len(data.people),
            "paid": data.paid,
        },
    )


async def export_run(
    session: AsyncSession, *, run_id: int, fmt: str, user: CurrentUser, via: str | None = None
) -> ExportData:
    """Check the user may export, read the run, and record the export in the audit log."""
    check_may_export(user)
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    data = await export_data(session, run_id=run_id)
    await record_export(session, data=data, fmt=fmt, user=user, via=via)
    return data
