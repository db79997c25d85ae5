"""Bonus statements and inquiries (DESIGN 6.3, 8): what one person's statement shows, and the threads in
which they ask finance about a line. Services flush; the request commits.

Who sees what (docs/bonus-statements.md):

- A statement is the person's own; finance and admins see everyone's. Anybody else (a colleague, the
  person's leader) gets the same 404 as for a statement that does not exist: a leader sees their teams'
  totals on the run, never one person's statement.
- The person sees a run's statement once the run is `approved` or `locked`; finance and admins see every
  state, a draft clearly marked as such.
- An inquiry is the person's (who raises it, on their own line) and finance's (who answers). Admins read.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.db.attribution import STORED_MODELS, attribution_credit
from okr.db.bonus import (
    BonusLine,
    BonusRun,
    BonusTrace,
    Inquiry,
    InquiryMessage,
    InquiryStatus,
    LineKind,
    RunState,
    RunStatus,
)
from okr.db.people import Person, Role, Team
from okr.db.pipeline import Campaign, Touchpoint
from okr.lib.clock import utcnow
from okr.lib.errors import Forbidden, NotFound, ValidationFailed
from okr.lib.money import decimals

OWN_STATES: Final = frozenset({RunState.APPROVED, RunState.LOCKED})
"""The states in which a person sees their own statement (finance and admins see every state)."""
SUBJECT_MAX: Final = 200
BODY_MAX: Final = 5000
WEIGHT_PLACES: Final = 10


# -- who may see what ---------------------------------------------------------------------------------


def sees_all(user: CurrentUser) -> bool:
    """Finance and admins see every statement and every inquiry."""
    return user.is_admin or user.role == Role.FINANCE


def may_see_statement(user: CurrentUser, *, person_id: int) -> bool:
    """Yourself; finance and admins anyone. A leader is no exception (team totals only, on the run)."""
    return user.id == person_id or sees_all(user)


def no_statement(run_id: int, person_id: int) -> NotFound:
    """The one answer for a statement that does not exist and for one the caller may not see."""
    return NotFound(f"There is no statement of person {person_id} in bonus run {run_id} you can see.")


def no_inquiry(inquiry_id: int) -> NotFound:
    """The one answer for an inquiry that does not exist and for one the caller may not see."""
    return NotFound(f"There is no inquiry {inquiry_id} you can see.")


def no_run(run_id: int) -> NotFound:
    """A run's inquiry list for someone who may not see it, or a run that does not exist."""
    return NotFound(f"There is no bonus run {run_id} you can see.")


def run_visible(run: BonusRun, user: CurrentUser, person_id: int) -> bool:
    """Whether `user` may see `person_id`'s statement of this run (the person's line aside)."""
    if not may_see_statement(user, person_id=person_id) or run.status != RunStatus.DONE:
        return False
    return sees_all(user) or run.state in OWN_STATES


# -- pure formatting ----------------------------------------------------------------------------------


def money_exact(minor: int | Decimal | str, currency: str) -> str:
    """An amount in minor units, possibly fractional (`450000.5`), in major units: `USD 4,500.005`.

    Shows at least the currency's decimals and every further digit the exact value has: nothing is rounded.
    """
    places = decimals(currency)
    value = Decimal(minor).scaleb(-places)
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent > -places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{currency.upper()} {value:,}"


def rate_text(value: Any) -> str:
    """A rate or multiplier as text without trailing zeros: `0.0300000000` -> `0.03`."""
    return f"{Decimal(str(value)).normalize():f}"


def formula_text(pool: Mapping[str, Any], currency: str) -> str:
    """DESIGN 6.2's pool formula with the period's numbers filled in, amounts in the currency.

    The same steps as the stored `formula` (okr.bonus.core.pool), which shows minor units."""

    def m(value: Any) -> str:
        return money_exact(value, currency)

    mult, carried, total = rate_text(pool["multiplier"]), m(pool["carried_forward"]), m(pool["pool"])
    inner = (
        f"{mult} × ({rate_text(pool['funding_rate'])} × {m(pool['won_revenue'])}"
        f" + {rate_text(pool['pipeline_rate'])} × {m(pool['sourced_pipeline'])})"
    )
    funded, exact, rounded = m(pool["funded"]), m(pool["exact"]), m(pool["rounded"])
    if pool.get("pool_cap") is None:
        return (
            f"pool = R({inner}) + {carried} = R({mult} × {funded}) + {carried} = R({exact}) + {carried}"
            f" = {rounded} + {carried} = {total}"
        )
    cap = m(pool["pool_cap"])
    return (
        f"pool = min({cap}, R({inner})) + {carried} = min({cap}, R({mult} × {funded})) + {carried}"
        f" = min({cap}, R({exact})) + {carried} = min({cap}, {rounded}) + {carried} = {total}"
    )


def journey_url(opportunity_id: int, *, model: str, scope: str, period: str) -> str:
    """The attribution journey page of a deal under the plan's model and scope."""
    return f"/attribution/opportunities/{opportunity_id}?model={model}&scope={scope}&period={period}"


def weight_of(units: int) -> Decimal:
    """A stored touch weight (units of 10^-10) as a Decimal."""
    return Decimal(units).scaleb(-WEIGHT_PLACES)


# -- the statement ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """The run's pool and how it was worked out (amounts in minor units; rates as text)."""

    joint_score: str
    multiplier: str
    won_revenue: int
    sourced_pipeline: int
    funding_rate: str
    pipeline_rate: str
    funded: str
    exact: str
    rounded: int
    pool_cap: int | None
    capped: bool
    carried_forward: int
    pool: int
    formula: str
    formula_text: str

    @classmethod
    def of(cls, pool: Mapping[str, Any], currency: str) -> "PoolFigures":
        """From a run's summary["pool"]."""
        return cls(
            joint_score=rate_text(pool["joint_score"]),
            multiplier=rate_text(pool["multiplier"]),
            won_revenue=int(pool["won_revenue"]),
            sourced_pipeline=int(pool["sourced_pipeline"]),
            funding_rate=rate_text(pool["funding_rate"]),
            pipeline_rate=rate_text(pool["pipeline_rate"]),
            funded=str(pool["funded"]),
            exact=str(pool["exact"]),
            rounded=int(pool["rounded"]),
            pool_cap=None if pool.get("pool_cap") is None else int(pool["pool_cap"]),
            capped=bool(pool.get("capped")),
            carried_forward=int(pool["carried_forward"]),
            pool=int(pool["pool"]),
            formula=str(pool["formula"]),
            formula_text=formula_text(pool, currency),
        )


@dataclass(frozen=True, slots=True)
class TeamPool:
    """The person's team in the run: its share of the pool, its pool and its rule in words."""

    team: str
    share: str
    rule: str
    pool: int
    paid: int
    leftover: int
    people: int
    rule_text: str

    @property
    def share_percent(self) -> str:
        """The team's share of the pool as an exact percent: `60 %`, `33.5 %`."""
        return f"{(Decimal(self.share) * 100).normalize():f} %"


@dataclass(frozen=True, slots=True)
class Earning:
    """The earning line: the person's credit, proration, weight and exact share, the cap."""

    id: int
    team: str | None
    amount: int
    credit: int | None
    proration: Decimal | None
    weight: str | None
    share: str | None
    cap: int | None
    capped: bool

    @property
    def share_decimal(self) -> Decimal | None:
        """The exact share as a Decimal, for display."""
        return None if self.share is None else Decimal(self.share)


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal as the run read it."""

    id: int
    external_id: str
    name: str
    status: str
    closed_on: str | None
    journey_url: str


@dataclass(frozen=True, slots=True)
class Touch:
    """One touch of a marketer's campaign on a deal, with its weight and credit under the plan's model."""

    touchpoint: str | None
    occurred_at: dt.datetime | None
    channel: str
    weight: Decimal
    credit: int | None


@dataclass(frozen=True, slots=True)
class DealCredit:
    """The person's credit on one deal (and campaign, for a marketer) and what it earned."""

    deal: Deal
    credit: int
    amount: int
    touches: tuple[Touch, ...] = ()


@dataclass(frozen=True, slots=True)
class CampaignCredit:
    """A marketer's campaign: its credit on each deal, with the touches."""

    id: int
    name: str
    channel: str
    credit: int
    amount: int
    deals: tuple[DealCredit, ...]


@dataclass(frozen=True, slots=True)
class OtherLine:
    """An adjustment, clawback or balance carried in, with its reason."""

    id: int
    kind: str
    amount: int
    reason: str | None
    deal: Deal | None


@dataclass(frozen=True, slots=True)
class Payable:
    """The person's total for the run and what is paid or carried to their next run."""

    earning: int
    adjustment: int
    clawback: int
    carried_in: int
    total: int
    payable: int
    carried_out: int


@dataclass(frozen=True, slots=True)
class InquiryRow:
    """An inquiry in a list: about which line, its subject and status, how many messages."""

    id: int
    run_id: int
    person_id: int
    person: str
    line_id: int | None
    line_kind: str | None
    line_amount: int | None
    subject: str
    status: str
    messages: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PersonRef:
    """Whose statement it is."""

    id: int
    name: str
    email: str
    team: str
    employee_id: str | None


@dataclass(frozen=True, slots=True)
class Statement:
    """Everything a statement page shows."""

    run_id: int
    run_number: int
    period: str
    period_start: str
    period_end: str
    period_days: int
    state: str
    draft: bool
    currency: str
    as_of: dt.datetime
    locked_at: dt.datetime | None
    inputs_checksum: str | None
    results_checksum: str | None
    model: str
    scope: str
    count_overlay: bool
    person: PersonRef
    pool: PoolFigures
    team: TeamPool | None
    earning: Earning | None
    deals: tuple[DealCredit, ...]
    campaigns: tuple[CampaignCredit, ...]
    other_lines: tuple[OtherLine, ...]
    payable: Payable
    inquiries: tuple[InquiryRow, ...]
    own: bool
    touches_missing: bool

    @property
    def traced(self) -> int:
        """The sum of the trace: equals the earning line."""
        return sum(d.amount for d in self.deals) + sum(c.amount for c in self.campaigns)

    @property
    def marketer(self) -> bool:
        """Whether the credit came from campaigns (a marketer) rather than revenue splits."""
        return bool(self.campaigns)

    @property
    def lines(self) -> tuple[tuple[int, str, int], ...]:
        """(id, label, amount) of every line, to choose from when raising an inquiry."""
        found: list[tuple[int, str, int]] = []
        if self.earning is not None:
            found.append((self.earning.id, "Earning", self.earning.amount))
        found += [(line.id, KIND_LABELS.get(line.kind, line.kind), line.amount) for line in self.other_lines]
        return tuple(found)


KIND_LABELS: Final[dict[str, str]] = {
    LineKind.EARNING: "Earning",
    LineKind.ADJUSTMENT: "Adjustment",
    LineKind.CLAWBACK: "Clawback",
    LineKind.CARRY_FORWARD: "Balance carried in",
}


def _deal(inputs: Mapping[str, Any], opportunity_id: int, period: str) -> Deal:
    row = (inputs.get("deals") or {}).get(str(opportunity_id))
    plan = inputs.get("plan") or {}
    url = journey_url(
        opportunity_id, model=str(plan.get("model", "")), scope=str(plan.get("scope", "")), period=period
    )
    if row is None:
        return Deal(opportunity_id, str(opportunity_id), "(not in the run's inputs)", "", None, url)
    external_id, name, status, closed_on = row
    return Deal(opportunity_id, str(external_id), str(name), str(status), closed_on, url)


async def _person(session: AsyncSession, person_id: int) -> PersonRef | None:
    row = (
        await session.execute(
            select(Person.id, Person.name, Person.email, Team.name, Person.employee_id)
            .join(Team, Team.id == Person.team_id)
            .where(Person.id == person_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return PersonRef(int(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4])


async def _touches(
    session: AsyncSession,
    *,
    attribution_run_id: int | None,
    model: str,
    pairs: Sequence[tuple[int, int]],
) -> dict[tuple[int, int], list[Touch]] | None:
    """The touches behind (deal, campaign) pairs in the attribution run the bonus run read; None when that
    run's credit rows are gone (a later recompute replaced them)."""
    if not pairs:
        return {}
    if attribution_run_id is None or model not in STORED_MODELS:
        return None
    c = attribution_credit.c
    deals = sorted({d for d, _ in pairs})
    campaigns = sorted({k for _, k in pairs})
    rows = (
        await session.execute(
            select(
                c.opportunity_id, c.campaign_id, c.position, Touchpoint.external_id, c.occurred_at, c.channel,
                c[f"{model}_units"], c[f"{model}_base"],
            )
            .outerjoin(Touchpoint, Touchpoint.id == c.touchpoint_id)
            .where(
                c.run_id == attribution_run_id,
                c.opportunity_id.in_(deals),
                c.campaign_id.in_(campaigns),
            )
            .order_by(c.opportunity_id, c.position)
        )
    ).all()  # fmt: skip
    if not rows:
        return None
    wanted = set(pairs)
    found: dict[tuple[int, int], list[Touch]] = defaultdict(list)
    for deal_id, campaign_id, _, external_id, occurred_at, channel, units, base in rows:
        key = (int(deal_id), int(campaign_id))
        if key in wanted:
            found[key].append(
                Touch(
                    touchpoint=external_id,
                    occurred_at=occurred_at,
                    channel=str(channel),
                    weight=weight_of(int(units)),
                    credit=None if base is None else int(base),
                )
            )
    return found


async def _inquiry_rows(
    session: AsyncSession, *, run_id: int | None = None, person_id: int | None = None
) -> list[InquiryRow]:
    """Inquiries with their line and message count: open first, newest activity first."""
    counts = (
        select(InquiryMessage.inquiry_id, func.count().label("n"))
        .group_by(InquiryMessage.inquiry_id)
        .subquery()
    )
    stmt = (
        select(Inquiry, Person.name, BonusLine.kind, BonusLine.amount, counts.c.n)
        .join(Person, Person.id == Inquiry.person_id)
        .outerjoin(BonusLine, BonusLine.id == Inquiry.line_id)
        .outerjoin(counts, counts.c.inquiry_id == Inquiry.id)
    )
    if run_id is not None:
        stmt = stmt.where(Inquiry.run_id == run_id)
    if person_id is not None:
        stmt = stmt.where(Inquiry.person_id == person_id)
    stmt = stmt.order_by(Inquiry.status != InquiryStatus.OPEN, Inquiry.updated_at.desc(), Inquiry.id.desc())
    return [
        InquiryRow(
            id=i.id,
            run_id=i.run_id,
            person_id=i.person_id,
            person=str(name),
            line_id=i.line_id,
            line_kind=kind,
            line_amount=None if amount is None else int(amount),
            subject=i.subject,
            status=i.status,
            messages=int(n or 0),
            created_at=i.created_at,
            updated_at=i.updated_at,
        )
        for i, name, kind, amount, n in await session.execute(stmt)
    ]


async def statement(session: AsyncSession, *, run_id: int, person_id: int, user: CurrentUser) -> Statement:
    """One person's statement of a run; NotFound alike when it is missing and when `user` may not see it."""
    if not may_see_statement(user, person_id=person_id):
        raise no_statement(run_id, person_id)
    run = await session.get(BonusRun, run_id)
    if run is None or not run_visible(run, user, person_id) or run.summary is None or run.inputs is None:
        raise no_statement(run_id, person_id)
    lines = list(
        (
            await session.scalars(
                select(BonusLine)
                .where(BonusLine.run_id == run_id, BonusLine.person_id == person_id)
                .order_by(BonusLine.id)
            )
        ).all()
    )
    person = await _person(session, person_id)
    if not lines or person is None:
        raise no_statement(run_id, person_id)
    inputs, summary, currency = run.inputs, run.summary, run.currency
    period = inputs["period"]
    plan = inputs["plan"]
    earning_line = next((line for line in lines if line.kind == LineKind.EARNING), None)
    earning = None
    team = None
    if earning_line is not None:
        earning = Earning(
            id=earning_line.id, team=earning_line.team, amount=earning_line.amount,
            credit=earning_line.credit, proration=earning_line.proration, weight=earning_line.weight,
            share=earning_line.share,
            cap=earning_line.cap, capped=earning_line.capped,
        )  # fmt: skip
        found = next((t for t in summary.get("teams", []) if t["team"] == earning_line.team), None)
        if found is not None:
            team = TeamPool(
                team=str(found["team"]), share=str(found["share"]), rule=str(found["rule"]),
                pool=int(found["pool"]), paid=int(found["paid"]), leftover=int(found["leftover"]),
                people=int(found["people"]), rule_text=str(found["rule_text"]),
            )  # fmt: skip

    traces = list(
        (
            await session.scalars(
                select(BonusTrace)
                .where(BonusTrace.run_id == run_id, BonusTrace.person_id == person_id)
                .order_by(BonusTrace.opportunity_id, BonusTrace.campaign_id)
            )
        ).all()
    )
    deals = tuple(
        DealCredit(_deal(inputs, t.opportunity_id, period["key"]), t.credit, t.amount)
        for t in traces
        if t.campaign_id is None
    )
    by_campaign = [t for t in traces if t.campaign_id is not None]
    pairs = [(t.opportunity_id, int(t.campaign_id)) for t in by_campaign if t.campaign_id is not None]
    touches = await _touches(
        session, attribution_run_id=inputs.get("attribution_run_id"), model=str(plan["model"]), pairs=pairs
    )
    names: dict[int, tuple[str, str]] = {}
    if pairs:
        names = {
            int(i): (str(n), str(ch))
            for i, n, ch in await session.execute(
                select(Campaign.id, Campaign.name, Campaign.channel).where(
                    Campaign.id.in_(sorted({k for _, k in pairs}))
                )
            )
        }
    grouped: dict[int, list[DealCredit]] = defaultdict(list)
    for t in by_campaign:
        campaign_id = int(t.campaign_id or 0)
        mine = tuple((touches or {}).get((t.opportunity_id, campaign_id), ()))
        grouped[campaign_id].append(
            DealCredit(_deal(inputs, t.opportunity_id, period["key"]), t.credit, t.amount, mine)
        )
    campaigns = tuple(
        sorted(
            (
                CampaignCredit(
                    id=campaign_id,
                    name=names.get(campaign_id, (f"Campaign {campaign_id}", ""))[0],
                    channel=names.get(campaign_id, ("", "unknown"))[1],
                    credit=sum(d.credit for d in rows),
                    amount=sum(d.amount for d in rows),
                    deals=tuple(rows),
                )
                for campaign_id, rows in grouped.items()
            ),
            key=lambda c: (-c.amount, c.name, c.id),
        )
    )
    others = tuple(
        OtherLine(
            id=line.id,
            kind=line.kind,
            amount=line.amount,
            reason=line.reason,
            deal=None if line.opportunity_id is None else _deal(inputs, line.opportunity_id, period["key"]),
        )
        for line in lines
        if line.kind != LineKind.EARNING
    )
    pay = next((p for p in summary.get("payable", []) if int(p["person_id"]) == person_id), None)
    payable = _payable_of(lines) if pay is None else Payable(**{k: int(pay[k]) for k in _PAYABLE_KEYS})
    return Statement(
        run_id=run.id,
        run_number=run.number,
        period=str(period["key"]),
        period_start=str(period["start"]),
        period_end=str(period["end"]),
        period_days=int(period.get("days") or 0),
        state=run.state,
        draft=run.state != RunState.LOCKED,
        currency=currency,
        as_of=run.as_of,
        locked_at=run.locked_at,
        inputs_checksum=run.inputs_checksum,
        results_checksum=run.results_checksum,
        model=str(plan["model"]),
        scope=str(plan["scope"]),
        count_overlay=bool(plan.get("count_overlay")),
        person=person,
        pool=PoolFigures.of(summary["pool"], currency),
        team=team,
        earning=earning,
        deals=deals,
        campaigns=campaigns,
        other_lines=others,
        payable=payable,
        inquiries=tuple(await _inquiry_rows(session, run_id=run_id, person_id=person_id)),
        own=user.id == person_id,
        touches_missing=bool(pairs) and touches is None,
    )


_PAYABLE_KEYS: Final = ("earning", "adjustment", "clawback", "carried_in", "total", "payable", "carried_out")


def _payable_of(lines: Sequence[BonusLine]) -> Payable:
    """The payable figures from the lines (a run stored before `payable` was in its summary)."""
    by_kind: dict[str, int] = defaultdict(int)
    for line in lines:
        by_kind[line.kind] += line.amount
    total = sum(by_kind.values())
    return Payable(
        earning=by_kind[LineKind.EARNING], adjustment=by_kind[LineKind.ADJUSTMENT],
        clawback=by_kind[LineKind.CLAWBACK], carried_in=by_kind[LineKind.CARRY_FORWARD], total=total,
        payable=max(total, 0), carried_out=min(total, 0),
    )  # fmt: skip


# -- the list of statements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """One run in a person's list of statements."""

    run_id: int
    run_number: int
    period: str
    state: str
    draft: bool
    as_of: dt.datetime
    locked_at: dt.datetime | None
    earning: int
    total: int
    payable: int
    carried_out: int
    open_inquiries: int


async def my_statements(
    session: AsyncSession, *, person_id: int, user: CurrentUser
) -> tuple[PersonRef, list[StatementSummary]]:
    """The runs that hold a line for the person, newest first: approved and locked ones for the person
    themselves, every computed run for finance and admins; NotFound for anyone else."""
    if not may_see_statement(user, person_id=person_id):
        raise NotFound(f"There is no person {person_id} you can see.")
    person = await _person(session, person_id)
    if person is None:
        raise NotFound(f"There is no person {person_id} you can see.")
    stmt = (
        select(BonusRun)
        .where(
            BonusRun.id.in_(select(BonusLine.run_id).where(BonusLine.person_id == person_id)),
            BonusRun.status == RunStatus.DONE,
        )
        .order_by(BonusRun.as_of.desc(), BonusRun.id.desc())
    )
    if not sees_all(user):
        stmt = stmt.where(BonusRun.state.in_(sorted(OWN_STATES)))
    runs = list((await session.scalars(stmt)).all())
    open_counts: dict[int, int] = {}
    if runs:
        open_counts = {
            int(r): int(n)
            for r, n in await session.execute(
                select(Inquiry.run_id, func.count())
                .where(
                    Inquiry.person_id == person_id,
                    Inquiry.status == InquiryStatus.OPEN,
                    Inquiry.run_id.in_([r.id for r in runs]),
                )
                .group_by(Inquiry.run_id)
            )
        }
    found = []
    for run in runs:
        pay = next(
            (p for p in (run.summary or {}).get("payable", []) if int(p["person_id"]) == person_id), None
        )
        found.append(
            StatementSummary(
                run_id=run.id,
                run_number=run.number,
                period=str((run.inputs or {}).get("period", {}).get("key", "")),
                state=run.state,
                draft=run.state != RunState.LOCKED,
                as_of=run.as_of,
                locked_at=run.locked_at,
                earning=int(pay["earning"]) if pay else 0,
                total=int(pay["total"]) if pay else 0,
                payable=int(pay["payable"]) if pay else 0,
                carried_out=int(pay["carried_out"]) if pay else 0,
                open_inquiries=open_counts.get(run.id, 0),
            )
        )
    return person, found


# -- inquiries ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One message of an inquiry's thread."""

    id: int
    author_id: int | None
    author: str
    finance: bool
    body: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Thread:
    """An inquiry with its line and messages, and what the caller may do with it."""

    inquiry: InquiryRow
    period: str
    run_number: int
    run_state: str
    line_reason: str | None
    messages: tuple[Message, ...]
    may_reply: bool
    own: bool


def _text(value: str | None, field: str, limit: int, label: str) -> tuple[str, dict[str, str] | None]:
    text = (value or "").strip()
    if not text:
        return text, {"field": field, "message": f"Write the {label}."}
    if len(text) > limit:
        return text, {"field": field, "message": f"Keep the {label} to {limit} characters ({len(text)} now)."}
    return text, None


async def raise_inquiry(
    session: AsyncSession,
    *,
    run_id: int,
    line_id: int | None,
    subject: str,
    body: str,
    user: CurrentUser,
) -> Inquiry:
    """The person asks finance about one of their lines (or their whole statement when `line_id` is None)."""
    run = await session.get(BonusRun, run_id)
    if run is None or not run_visible(run, user, user.id):
        raise no_statement(run_id, user.id)
    mine = {
        int(i)
        for i in await session.scalars(
            select(BonusLine.id).where(BonusLine.run_id == run_id, BonusLine.person_id == user.id)
        )
    }
    if not mine:
        raise no_statement(run_id, user.id)
    if line_id is not None and line_id not in mine:
        raise NotFound(f"There is no line {line_id} of yours in bonus run {run_id}.")
    subject_text, subject_error = _text(subject, "subject", SUBJECT_MAX, "subject")
    body_text, body_error = _text(body, "body", BODY_MAX, "question")
    errors = [e for e in (subject_error, body_error) if e is not None]
    if errors:
        raise ValidationFailed("The inquiry was not sent.", errors=errors)
    now = utcnow()
    inquiry = Inquiry(
        run_id=run_id,
        person_id=user.id,
        line_id=line_id,
        subject=subject_text,
        status=InquiryStatus.OPEN,
        created_at=now,
        updated_at=now,
    )
    session.add(inquiry)
    await session.flush()
    session.add(InquiryMessage(inquiry_id=inquiry.id, author_id=user.id, body=body_text, created_at=now))
    await session.flush()
    await audit.record(
        session, actor=user.email, actor_id=user.id, action="bonus_inquiry.raise", entity="inquiry",
        entity_id=inquiry.id, after={"run_id": run_id, "line_id": line_id, "subject": subject_text},
    )  # fmt: skip
    return inquiry


async def _visible_inquiry(session: AsyncSession, inquiry_id: int, user: CurrentUser) -> Inquiry:
    inquiry = await session.get(Inquiry, inquiry_id)
    if inquiry is None or not (inquiry.person_id == user.id or sees_all(user)):
        raise no_inquiry(inquiry_id)
    return inquiry


def may_reply(inquiry: Inquiry, user: CurrentUser) -> bool:
    """The person who raised it, and finance."""
    return inquiry.person_id == user.id or user.role == Role.FINANCE


async def reply(session: AsyncSession, *, inquiry_id: int, body: str, user: CurrentUser) -> InquiryMessage:
    """Add a message: finance's answers the inquiry, the person's (re)opens it."""
    inquiry = await _visible_inquiry(session, inquiry_id, user)
    if not may_reply(inquiry, user):
        raise Forbidden("Finance answers inquiries; admins can read them but not reply.")
    text, error = _text(body, "body", BODY_MAX, "reply")
    if error is not None:
        raise ValidationFailed("The reply was not sent.", errors=[error])
    before = inquiry.status
    now = utcnow()
    inquiry.status = InquiryStatus.OPEN if inquiry.person_id == user.id else InquiryStatus.ANSWERED
    inquiry.updated_at = now
    message = InquiryMessage(inquiry_id=inquiry.id, author_id=user.id, body=text, created_at=now)
    session.add(message)
    await session.flush()
    await audit.record(
        session, actor=user.email, actor_id=user.id, action="bonus_inquiry.reply", entity="inquiry",
        entity_id=inquiry.id, before={"status": before},
        after={"status": inquiry.status, "message_id": message.id},
    )  # fmt: skip
    return message


async def inquiries_of_run(session: AsyncSession, *, run_id: int, user: CurrentUser) -> list[InquiryRow]:
    """A run's inquiries, open ones first (finance and admins; NotFound for anyone else)."""
    if not sees_all(user) or await session.get(BonusRun, run_id) is None:
        raise no_run(run_id)
    return await _inquiry_rows(session, run_id=run_id)


async def inquiry(session: AsyncSession, *, inquiry_id: int, user: CurrentUser) -> Thread:
    """An inquiry's thread; NotFound alike when it does not exist and when `user` may not see it."""
    found = await _visible_inquiry(session, inquiry_id, user)
    rows = await _inquiry_rows(session, run_id=found.run_id, person_id=found.person_id)
    row = next(r for r in rows if r.id == found.id)
    run = await session.get_one(BonusRun, found.run_id)
    reason = None
    if found.line_id is not None:
        reason = await session.scalar(select(BonusLine.reason).where(BonusLine.id == found.line_id))
    messages = (
        await session.execute(
            select(InquiryMessage, Person.name, Person.role)
            .outerjoin(Person, Person.id == InquiryMessage.author_id)
            .where(InquiryMessage.inquiry_id == found.id)
            .order_by(InquiryMessage.created_at, InquiryMessage.id)
        )
    ).all()
    return Thread(
        inquiry=row,
        period=str((run.inputs or {}).get("period", {}).get("key", "")),
        run_number=run.number,
        run_state=run.state,
        line_reason=reason,
        messages=tuple(
            Message(
                id=m.id,
                author_id=m.author_id,
                author=str(name) if name is not None else "(a former user)",
                finance=role == Role.FINANCE and m.author_id != found.person_id,
                body=m.body,
                created_at=m.created_at,
            )
            for m, name, role in messages
        ),
        may_reply=may_reply(found, user),
        own=found.person_id == user.id,
    )
