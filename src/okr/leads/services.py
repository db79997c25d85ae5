"""The lead queue (DESIGN 5, 8): a rep's open MQLs against their SLA deadline, and the dispositions
(accept, reject with a reason, recycle to nurture), one lead or many at once, from the web and the API.

An open MQL has `mql_at` and none of `accepted_at`, `rejected_at`, `recycled_at`, `sql_at` (an SQL has
been worked already: the CRM converted it, so it is nobody's follow-up any more). The campaign shown is
the one of the lead's last touch at or before `mql_at` (the touch that made it an MQL). Deadlines and
the rule come from okr.sla.policy; business time from okr.sla.core.

Who may do what (plain functions, the same for web and API): a person works their own leads; an admin
works anyone's; a leader sees the queues of their team but works only the leads they own (403 on the
others); anyone else's lead does not exist for the caller (404). A batch is all-or-nothing: every lead is
checked before any is changed, and the error names the leads at fault.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.db.people import Person, Role, Team
from okr.db.pipeline import Account, Campaign, Lead, Touchpoint
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, Forbidden, NotFound, ValidationFailed
from okr.settings import Settings
from okr.sla import core
from okr.sla.policy import RuleBook, active_reasons

Action = Literal["accept", "reject", "recycle"]
State = Literal["pending", "due_soon", "breached"]

ACTIONS: Final[tuple[Action, ...]] = ("accept", "reject", "recycle")
STAMP: Final[dict[str, str]] = {"accept": "accepted_at", "reject": "rejected_at", "recycle": "recycled_at"}
DONE: Final[dict[str, str]] = {"accept": "accepted", "reject": "rejected", "recycle": "recycled to nurture"}
DUE_SOON_SHARE: Final = 4
"""A lead is due soon when less than 1/4 of its rule's follow-up time is left (6 business hours of 24)."""
MAX_BATCH: Final = 500
UNDO_SECONDS: Final = 60
"""A disposition made on the page may be undone this long after it was stamped."""

OPEN_MQL: Final = and_(
    Lead.mql_at.is_not(None),
    Lead.accepted_at.is_(None),
    Lead.rejected_at.is_(None),
    Lead.recycled_at.is_(None),
    Lead.sql_at.is_(None),
)


@dataclass(frozen=True, slots=True)
class QueueOwner:
    """Whose queue it is."""

    id: int
    name: str
    team: str


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One open MQL with its deadline and the business time left."""

    id: int
    external_id: str
    email: str | None
    account: str
    campaign: str | None
    channel: str | None
    mql_at: dt.datetime
    due: dt.datetime
    left: dt.timedelta
    state: State
    rule: str

    @property
    def left_text(self) -> str:
        """`3 h 20 min left` or `overdue by 1 h 5 min` (business time)."""
        return format_left(self.left)


@dataclass(frozen=True, slots=True)
class LeadQueue:
    """A person's open MQLs, most urgent first, and whether the caller may work them."""

    owner: QueueOwner
    items: list[QueueItem]
    may_work: bool
    own: bool
    now: dt.datetime
    rules: list[str]

    def count(self, state: State) -> int:
        """How many leads are in `state`."""
        return sum(1 for i in self.items if i.state == state)


@dataclass(frozen=True, slots=True)
class Disposed:
    """A lead as it was dispositioned."""

    id: int
    external_id: str
    email: str | None
    account: str
    action: Action
    at: dt.datetime
    reason: str | None


def format_left(left: dt.timedelta) -> str:
    """Business time left as people read it, in hours and minutes."""
    minutes = int(abs(left).total_seconds() // 60)
    if minutes == 0:
        return "due now" if left <= dt.timedelta(0) else "less than 1 min left"
    hours, mins = divmod(minutes, 60)
    if hours >= 24:  # a day and more: minutes are noise, and "h" alone reads like wall-clock hours
        text = f"{hours:,} business hours"
    else:
        text = " ".join(p for p in (f"{hours} h" if hours else "", f"{mins} min" if mins else "") if p)
    return f"overdue by {text}" if left < dt.timedelta(0) else f"{text} left"


def state_of(due: dt.datetime, left: dt.timedelta, hours: int, now: dt.datetime) -> State:
    """breached past the deadline; due soon in its last quarter; pending before."""
    if due < now:
        return "breached"
    return "due_soon" if left * DUE_SOON_SHARE < dt.timedelta(hours=hours) else "pending"


# -- who may see and work which queue ----------------------------------------------------------------------


async def _person(session: AsyncSession, person_id: int) -> QueueOwner | None:
    row = (
        await session.execute(
            select(Person.id, Person.name, Person.team_id, Team.name)
            .join(Team, Team.id == Person.team_id)
            .where(Person.id == person_id)
        )
    ).one_or_none()
    return None if row is None else QueueOwner(id=row[0], name=row[1], team=row[3])


async def queue_owner(
    session: AsyncSession, *, user: CurrentUser, person_id: int | None
) -> tuple[QueueOwner, bool]:
    """Whose queue the caller asks for and whether they may work it; NotFound when they may not see it."""
    if person_id is None or person_id == user.id:
        return QueueOwner(id=user.id, name=user.name, team=user.team), True
    missing = NotFound("No such person, or their lead queue is not yours to see.")
    if user.is_admin:
        owner = await _person(session, person_id)
        if owner is None:
            raise missing
        return owner, True
    if user.role == Role.LEADER:
        team_id = await session.scalar(select(Person.team_id).where(Person.id == person_id))
        if team_id == user.team_id:
            owner = await _person(session, person_id)
            if owner is not None:
                return owner, False
    raise missing


def _refusal(user: CurrentUser, owner_id: int | None, owner_team_id: int | None) -> str | None:
    """None when the caller may work a lead of `owner_id`; "403" or "404" otherwise."""
    if owner_id == user.id or user.is_admin:
        return None
    if user.role == Role.LEADER and owner_team_id == user.team_id:
        return "403"
    return "404"


# -- the queue ---------------------------------------------------------------------------------------------


async def _campaigns(session: AsyncSession, lead_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(name, channel) of each lead's last touch at or before its MQL time."""
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(lead_ids), 900):  # stay under SQLite's bound-parameter limit
        rows = await session.execute(
            select(Touchpoint.lead_id, Campaign.name, Campaign.channel)
            .join(Lead, Lead.id == Touchpoint.lead_id)
            .join(Campaign, Campaign.id == Touchpoint.campaign_id)
            .where(
                Touchpoint.lead_id.in_(lead_ids[start : start + 900]), Touchpoint.occurred_at <= Lead.mql_at
            )
            .order_by(Touchpoint.lead_id, Touchpoint.occurred_at, Touchpoint.id)
        )
        for lead_id, name, channel in rows:
            found[lead_id] = (name, channel)  # ordered: the last one wins
    return found


async def lead_queue(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    person_id: int | None = None,
    now: dt.datetime | None = None,
) -> LeadQueue:
    """A person's open MQLs sorted by deadline (the caller's own by default), with business time left."""
    owner, may_work = await queue_owner(session, user=user, person_id=person_id)
    now = now or utcnow()
    rows = (
        await session.execute(
            select(Lead.id, Lead.external_id, Lead.email, Lead.mql_at, Account.name)
            .join(Account, Account.id == Lead.account_id)
            .where(Lead.owner_id == owner.id, OPEN_MQL)
        )
    ).all()
    campaigns = await _campaigns(session, [r[0] for r in rows])
    book = await RuleBook.load(session, settings=settings)
    items: list[QueueItem] = []
    rules: dict[str, None] = {}
    for lead_id, external_id, email, mql_at, account in rows:
        if mql_at is None:  # excluded by OPEN_MQL; says so to the type checker
            continue
        rule = book.for_mql(mql_at)
        due = rule.due(mql_at)
        left = core.time_left(due, now, rule.calendar)
        campaign = campaigns.get(lead_id)
        text = rule.describe()
        rules[text] = None
        items.append(
            QueueItem(
                id=lead_id,
                external_id=external_id,
                email=email,
                account=account,
                campaign=campaign[0] if campaign else None,
                channel=campaign[1] if campaign else None,
                mql_at=mql_at,
                due=due,
                left=left,
                state=state_of(due, left, rule.hours, now),
                rule=text,
            )
        )
    items.sort(key=lambda i: (i.due, i.mql_at, i.id))
    if not rules:
        rules[book.for_mql(now).describe()] = None
    return LeadQueue(owner, items, may_work, owner.id == user.id, now, list(rules))


# -- dispositions ------------------------------------------------------------------------------------------


def parse_instant(text: str | None, *, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 instant with its offset (`2026-11-20T15:04:00Z`), not in the future; now when empty."""
    if text is None or not text.strip():
        return now
    try:
        at = dt.datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValidationFailed(
            "`at` must be an ISO 8601 instant with its offset.",
            errors=[{"field": "at", "message": "use an instant like 2026-11-20T15:04:00Z"}],
        )
    if at > now:
        raise ValidationFailed(
            "A disposition cannot be dated in the future.",
            errors=[{"field": "at", "message": f"must not be after now ({now.isoformat()})"}],
        )
    return at.astimezone(dt.UTC)


async def check_reason(session: AsyncSession, action: str, reason: str | None) -> str | None:
    """The reason as the list names it (reject), None (accept, recycle); ValidationFailed otherwise."""
    text = (reason or "").strip()
    if action not in ACTIONS:
        raise ValidationFailed(
            f"“{action}” is not an action.",
            errors=[{"field": "action", "message": "use accept, reject or recycle"}],
        )
    if action != "reject":
        if text:
            raise ValidationFailed(
                "Only a rejection takes a reason.",
                errors=[{"field": "reason", "message": "leave it out unless the action is reject"}],
            )
        return None
    reasons = await active_reasons(session)
    if not text:
        raise ValidationFailed(
            "Pick a reason to reject the lead.",
            errors=[{"field": "reason", "message": "pick one: " + ", ".join(reasons)}],
        )
    for name in reasons:
        if name.casefold() == text.casefold():
            return name
    raise ValidationFailed(
        f"“{text}” is not one of the reject reasons.",
        errors=[{"field": "reason", "message": "pick one: " + ", ".join(reasons)}],
    )


def _label(lead: Lead) -> str:
    return lead.external_id + (f" ({lead.email})" if lead.email else "")


def _why_closed(lead: Lead) -> str:
    for name, stamp in (
        ("accepted", lead.accepted_at),
        ("rejected", lead.rejected_at),
        ("recycled", lead.recycled_at),
        ("already an SQL", lead.sql_at),
    ):
        if stamp is not None:
            return f"{_label(lead)} was {name} at {stamp.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return f"{_label(lead)} is not an MQL yet"


async def _load(
    session: AsyncSession, *, ids: Sequence[int], external_ids: Sequence[str]
) -> tuple[list[tuple[Lead, int | None, str]], list[str]]:
    """The leads asked for (with their owner's team and account name), in the order asked, and the keys
    that match none. Rows are locked for the change (PostgreSQL; SQLite writers hold the database)."""
    keys: list[int | str] = list(dict.fromkeys([*ids, *external_ids]))
    column = Lead.id if ids else Lead.external_id
    rows = (
        await session.execute(
            select(Lead, Person.team_id, Account.name)
            .outerjoin(Person, Person.id == Lead.owner_id)
            .join(Account, Account.id == Lead.account_id)
            .where(column.in_(keys))
            .with_for_update(of=Lead)
        )
    ).all()
    by_key: dict[int | str, tuple[Lead, int | None, str]] = {}
    for lead, team_id, account in rows:
        by_key[lead.id if ids else lead.external_id] = (lead, team_id, account)
    found = [by_key[k] for k in keys if k in by_key]
    return found, [str(k) for k in keys if k not in by_key]


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:10])
    return shown + (f" and {len(items) - 10} more" if len(items) > 10 else "")


async def dispose(
    session: AsyncSession,
    *,
    user: CurrentUser,
    action: str,
    ids: Sequence[int] = (),
    external_ids: Sequence[str] = (),
    reason: str | None = None,
    at: str | dt.datetime | None = None,
    via: str | None = None,
) -> list[Disposed]:
    """Accept, reject (with a reason) or recycle leads, all or none; stamps each and audits each."""
    now = utcnow()
    canonical = await check_reason(session, action, reason)
    when = at if isinstance(at, dt.datetime) else parse_instant(at, now=now)
    if not ids and not external_ids:
        raise ValidationFailed(
            "Select at least one lead.", errors=[{"field": "leads", "message": "select at least one lead"}]
        )
    if len(ids) + len(external_ids) > MAX_BATCH:
        raise ValidationFailed(
            f"At most {MAX_BATCH} leads at once.",
            errors=[{"field": "leads", "message": f"send at most {MAX_BATCH} leads per request"}],
        )
    found, missing = await _load(session, ids=ids, external_ids=external_ids)
    hidden = [_label(lead) for lead, team, _ in found if _refusal(user, lead.owner_id, team) == "404"]
    if missing or hidden:
        raise NotFound(f"No such lead in your queue: {_names(missing + hidden)}. Nothing was changed.")
    theirs = [_label(lead) for lead, team, _ in found if _refusal(user, lead.owner_id, team) == "403"]
    if theirs:
        raise Forbidden(
            f"You can see your team's queues but work only your own leads: {_names(theirs)} "
            "belong to someone else. Nothing was changed."
        )
    closed = [_why_closed(lead) for lead, _, _ in found if not _is_open(lead)]
    if closed:
        raise Conflict(f"Not open any more: {_names(closed)}. Nothing was changed; reload the queue.")
    early = [_label(lead) for lead, _, _ in found if lead.mql_at is not None and when < lead.mql_at]
    if early:
        raise ValidationFailed(
            f"A disposition cannot be dated before the lead became an MQL: {_names(early)}.",
            errors=[{"field": "at", "message": "must not be before the lead's mql_at"}],
        )
    act: Action = action  # type: ignore[assignment]  # checked by check_reason
    done: list[Disposed] = []
    for lead, _, account in found:
        stamp = STAMP[act]
        before: dict[str, Any] = {"external_id": lead.external_id, stamp: None}
        after: dict[str, Any] = {"external_id": lead.external_id, stamp: when.isoformat()}
        setattr(lead, stamp, when)
        if act == "reject":
            before["rejection_reason"] = lead.rejection_reason
            after["rejection_reason"] = canonical
            lead.rejection_reason = canonical
        await audit.record(
            session,
            actor=_actor(user, via),
            actor_id=user.id,
            action=f"lead.{act}",
            entity="lead",
            entity_id=lead.id,
            before=before,
            after=after,
        )
        done.append(Disposed(lead.id, lead.external_id, lead.email, account, act, when, canonical))
    await session.flush()
    return done


def _is_open(lead: Lead) -> bool:
    return lead.mql_at is not None and all(
        s is None for s in (lead.accepted_at, lead.rejected_at, lead.recycled_at, lead.sql_at)
    )


def _actor(user: CurrentUser, via: str | None) -> str:
    return user.email if via is None else f"{user.email} (token {via})"


async def undo(session: AsyncSession, *, user: CurrentUser, lead_id: int, via: str | None = None) -> None:
    """Take back a disposition made in the last UNDO_SECONDS (the lead is open again); audited."""
    found, _ = await _load(session, ids=[lead_id], external_ids=())
    if not found or _refusal(user, found[0][0].owner_id, found[0][1]) is not None:
        raise NotFound("No such lead in your queue.")
    lead = found[0][0]
    stamps = [(a, getattr(lead, STAMP[a])) for a in ACTIONS if getattr(lead, STAMP[a]) is not None]
    now = utcnow()
    if len(stamps) != 1 or lead.sql_at is not None or now - stamps[0][1] > dt.timedelta(seconds=UNDO_SECONDS):
        raise Conflict(
            f"Too late to undo {_label(lead)}: undo works for {UNDO_SECONDS} seconds after the click."
        )
    act, stamp = stamps[0]
    before: dict[str, Any] = {"external_id": lead.external_id, STAMP[act]: stamp.isoformat()}
    after: dict[str, Any] = {"external_id": lead.external_id, STAMP[act]: None}
    setattr(lead, STAMP[act], None)
    if act == "reject":
        before["rejection_reason"], after["rejection_reason"] = lead.rejection_reason, None
        lead.rejection_reason = None
    await audit.record(
        session,
        actor=_actor(user, via),
        actor_id=user.id,
        action="lead.undo",
        entity="lead",
        entity_id=lead.id,
        before=before,
        after=after,
    )
    await session.flush()
