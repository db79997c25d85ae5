"""The SLA between marketing and sales (DESIGN 5): each period's policy, the reject reasons, the SLA board
and the MQL records behind its figures.

Each MQL is judged under the rule of the period it arrived in (okr.sla.policy, okr.kpis.services.SlaRules,
the same code as the sla_compliance KPI). The campaign an MQL belongs to is the campaign of its last touch
at or before its `mql_at` (docs/sla.md). Board figures are cached like the KPI figures: while the data
version (the newest audit event, which a policy save writes) holds, for at most CACHE_SECONDS.
"""

import datetime as dt
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from okr.audit import services as audit
from okr.auth.schemas import CurrentUser
from okr.db.models import Account, Campaign, Lead, Person, Touchpoint
from okr.db.people import PeriodState
from okr.db.sla import RejectionReason, SlaPolicy
from okr.kpis.core import MICROS_PER_HOUR, SlaStatus, elapsed_share, median, ratio
from okr.kpis.queries import disposition, window
from okr.kpis.services import CACHE_SECONDS, Month, SlaRules, as_utc, data_version, quarter_months
from okr.lib.clock import utcnow
from okr.lib.errors import Conflict, NotFound, ValidationFailed
from okr.lib.periods import Quarter
from okr.periods.services import ensure_periods, get_period
from okr.settings import Settings
from okr.sla.guards import check_may_write_sla
from okr.sla.policy import Rule, ensure_reasons, rule_for_period
from okr.sla.schemas import PolicyFields, clock_text, percent_text, read_reason_name

STALE: Final = "was changed by someone else since you opened it: reload to see the current version."
NO_CAMPAIGN: Final = "No touch before the MQL"
UNASSIGNED: Final = "Unassigned"
NO_REASON: Final = "(no reason given)"


class EditConflict(Conflict):
    """The version the caller saw is not the stored one."""

    def __init__(self) -> None:
        super().__init__(
            f"This SLA policy {STALE}", errors=[{"field": "version", "message": f"the policy {STALE}"}]
        )


class PeriodClosed(Conflict):
    """A closed period's SLA policy is read-only."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} is closed: its SLA policy is read-only. An admin can reopen the period.")


def actor_of(user: CurrentUser) -> str:
    """The audit actor."""
    return user.email


# -- The policy ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A period's policy as the page shows it: the rule in force (stored or the defaults) and its record."""

    quarter: Quarter
    rule: Rule
    version: int  # 0: nothing stored
    updated_at: dt.datetime | None
    updated_by: str | None
    read_only: bool


async def policy_view(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> PolicyView:
    """The period's rule and who saved it last; read-only when the period is closed."""
    period = await get_period(session, key=quarter.key)
    rule = await rule_for_period(session, settings=settings, quarter=quarter)
    stored = None
    if period is not None:
        stored = await session.scalar(select(SlaPolicy).where(SlaPolicy.period_id == period.id))
    by = None
    if stored is not None and stored.updated_by_id is not None:
        by = await session.scalar(select(Person.name).where(Person.id == stored.updated_by_id))
    return PolicyView(
        quarter=quarter,
        rule=rule,
        version=0 if stored is None else stored.version,
        updated_at=None if stored is None else stored.updated_at,
        updated_by=by,
        read_only=period is not None and period.state == PeriodState.CLOSED,
    )


def _snapshot(p: SlaPolicy | PolicyFields) -> dict[str, Any]:
    start = p.day_start_minute
    end = p.day_end_minute
    return {
        "follow_up_hours": p.follow_up_hours,
        "weekdays": sorted(p.weekdays),
        "day_start": clock_text(start),
        "day_end": clock_text(end),
        "acceptance_target": str(p.acceptance_target),
        "mql_commitment": p.mql_commitment,
    }


async def save_policy(
    session: AsyncSession,
    *,
    settings: Settings,
    user: CurrentUser,
    quarter: Quarter,
    fields: PolicyFields,
    version: int,
) -> SlaPolicy:
    """Store the period's policy (a new one when `version` is 0); EditConflict when someone saved
    meanwhile, PeriodClosed for a closed period, NotAllowed unless a leader or an admin. Audited."""
    check_may_write_sla(user)
    today = utcnow().astimezone(settings.tz).date()
    first, _ = quarter.dates(settings.fiscal_year_start_month)
    [period] = await ensure_periods(session, settings=settings, first=first, last=first, today=today)
    if period.state == PeriodState.CLOSED:
        raise PeriodClosed(quarter.key)
    stored = await session.scalar(select(SlaPolicy).where(SlaPolicy.period_id == period.id))
    now = utcnow()
    values = {
        "follow_up_hours": fields.follow_up_hours,
        "weekdays": list(fields.weekdays),
        "day_start_minute": fields.day_start_minute,
        "day_end_minute": fields.day_end_minute,
        "acceptance_target": fields.acceptance_target,
        "mql_commitment": fields.mql_commitment,
        "updated_at": now,
        "updated_by_id": user.id,
    }
    if stored is None:
        if version != 0:
            raise EditConflict()
        policy = SlaPolicy(period_id=period.id, version=1, **values)
        try:
            async with session.begin_nested():
                session.add(policy)
        except IntegrityError:  # another leader created it between our read and our write
            raise EditConflict() from None
        before = None
    else:
        if version != stored.version:
            raise EditConflict()
        before = _snapshot(stored)
        done = await session.execute(
            update(SlaPolicy)
            .where(SlaPolicy.id == stored.id, SlaPolicy.version == version)
            .values(version=version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 1) != 1:
            raise EditConflict()
        await session.refresh(stored)
        policy = stored
    after = {**_snapshot(fields), "period": quarter.key}
    await audit.record(
        session,
        actor=actor_of(user),
        actor_id=user.id,
        action="sla_policy.save",
        entity="sla_policy",
        entity_id=policy.id,
        before=before,
        after=after,
    )
    return policy


# -- Reject reasons --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReasonView:
    """A reject reason, with how many leads carry it."""

    id: int
    name: str
    position: int
    active: bool
    leads: int


async def reasons(session: AsyncSession) -> list[ReasonView]:
    """Every reason, active first in their order, then the retired ones."""
    await ensure_reasons(session)
    rows = await session.execute(
        select(RejectionReason).order_by(
            RejectionReason.active.desc(), RejectionReason.position, RejectionReason.id
        )
    )
    counts = dict(
        (
            await session.execute(
                select(Lead.rejection_reason, func.count())
                .where(Lead.rejection_reason.is_not(None))
                .group_by(Lead.rejection_reason)
            )
        ).all()
    )
    return [
        ReasonView(r.id, r.name, r.position, r.active, int(counts.get(r.name, 0))) for r in rows.scalars()
    ]


async def _reason(session: AsyncSession, reason_id: int) -> RejectionReason:
    found = await session.get(RejectionReason, reason_id)
    if found is None:
        raise NotFound("There is no such reject reason: it may have been removed. Reload the list.")
    return found


async def _unique(session: AsyncSession, name: str, reason_id: int | None = None) -> None:
    clash = await session.scalar(
        select(RejectionReason.id).where(func.lower(RejectionReason.name) == name.lower())
    )
    if clash is not None and clash != reason_id:
        raise ValidationFailed(
            f"“{name}” is already on the list.",
            errors=[{"field": "name", "message": f"“{name}” is already on the list (retired ones too)."}],
        )


async def _record_reason(
    session: AsyncSession, user: CurrentUser, action: str, reason: RejectionReason, before: Any, after: Any
) -> None:
    await audit.record(
        session,
        actor=actor_of(user),
        actor_id=user.id,
        action=f"sla_reason.{action}",
        entity="rejection_reason",
        entity_id=reason.id,
        before=before,
        after=after,
    )


async def add_reason(session: AsyncSession, *, user: CurrentUser, name: str) -> RejectionReason:
    """Append a reason to the active list. Audited `sla_reason.add`."""
    check_may_write_sla(user)
    await ensure_reasons(session)
    clean, problem = read_reason_name(name)
    if clean is None:
        raise ValidationFailed(problem or "", errors=[{"field": "name", "message": problem}])
    await _unique(session, clean)
    last = await session.scalar(select(func.max(RejectionReason.position)))
    reason = RejectionReason(name=clean, position=(last or 0) + 1, active=True)
    session.add(reason)
    await session.flush()
    await _record_reason(session, user, "add", reason, None, {"name": clean})
    return reason


async def rename_reason(
    session: AsyncSession, *, user: CurrentUser, reason_id: int, name: str
) -> RejectionReason:
    """Rename a reason from now on (leads keep the text they were rejected with). Audited."""
    check_may_write_sla(user)
    reason = await _reason(session, reason_id)
    clean, problem = read_reason_name(name)
    if clean is None:
        raise ValidationFailed(problem or "", errors=[{"field": "name", "message": problem}])
    if clean == reason.name:
        return reason
    await _unique(session, clean, reason.id)
    before = reason.name
    reason.name = clean
    await session.flush()
    await _record_reason(session, user, "rename", reason, {"name": before}, {"name": clean})
    return reason


async def set_reason_active(
    session: AsyncSession, *, user: CurrentUser, reason_id: int, active: bool
) -> RejectionReason:
    """Retire a reason (reps no longer see it; the leads that carry it keep it) or bring it back."""
    check_may_write_sla(user)
    reason = await _reason(session, reason_id)
    if reason.active == active:
        return reason
    if not active:
        left = await session.scalar(
            select(func.count()).select_from(RejectionReason).where(RejectionReason.active.is_(True))
        )
        if (left or 0) <= 1:
            raise Conflict("Keep at least one active reason: a rep must be able to say why they reject.")
    else:
        last = await session.scalar(
            select(func.max(RejectionReason.position)).where(RejectionReason.active.is_(True))
        )
        reason.position = (last or 0) + 1
    reason.active = active
    await session.flush()
    await _record_reason(
        session, user, "restore" if active else "retire", reason, {"active": not active}, {"active": active}
    )
    return reason


async def move_reason(
    session: AsyncSession, *, user: CurrentUser, reason_id: int, up: bool
) -> RejectionReason:
    """Move an active reason one place up or down the list reps pick from. Audited."""
    check_may_write_sla(user)
    reason = await _reason(session, reason_id)
    ordered = list(
        (
            await session.scalars(
                select(RejectionReason)
                .where(RejectionReason.active.is_(True))
                .order_by(RejectionReason.position, RejectionReason.id)
            )
        ).all()
    )
    if reason not in ordered:
        raise Conflict(f"“{reason.name}” is retired: bring it back before moving it.")
    i = ordered.index(reason)
    j = i - 1 if up else i + 1
    if not 0 <= j < len(ordered):
        return reason
    ordered[i], ordered[j] = ordered[j], ordered[i]
    for position, r in enumerate(ordered):
        r.position = position
    await session.flush()
    await _record_reason(session, user, "move", reason, {"position": i}, {"position": j})
    return reason


# -- The board -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JudgedMql:
    """One MQL of the period, judged: the rows behind every board figure."""

    id: int
    owner_id: int | None
    mql_at: dt.datetime
    status: SlaStatus
    outcome: str | None  # accepted, rejected; None while open
    reason: str | None
    campaign_id: int | None
    channel: str | None
    response: int | None  # business microseconds to disposition


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """Marketing's delivery in one month of the period."""

    month: Month
    committed: int
    delivered: int
    committed_to_date: Decimal
    state: str  # done, under_way, ahead

    @property
    def attainment(self) -> Decimal | None:
        """Delivered / committed for the whole month."""
        return ratio(self.delivered, self.committed) if self.committed else None


@dataclass(frozen=True, slots=True)
class Tally:
    """MQLs by SLA status and outcome."""

    mqls: int = 0
    met: int = 0
    breached: int = 0
    pending: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def compliance(self) -> Decimal | None:
        """met / (met + breached): pending MQLs are not judged yet."""
        return ratio(self.met, self.met + self.breached)

    @property
    def acceptance(self) -> Decimal | None:
        """accepted / (accepted + rejected), by each MQL's first disposition."""
        return ratio(self.accepted, self.accepted + self.rejected)


@dataclass(frozen=True, slots=True)
class RepRow:
    """One rep's follow-up of the period's MQLs."""

    owner_id: int | None
    name: str
    tally: Tally


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A campaign or channel: its MQLs, how many sales rejected, and why."""

    key: str  # campaign id ("none" without one) or channel
    name: str
    channel: str | None
    mqls: int
    rejected: int
    reasons: dict[str, int]

    @property
    def rejection_rate(self) -> Decimal | None:
        """rejected / MQLs."""
        return ratio(self.rejected, self.mqls)


@dataclass(frozen=True, slots=True)
class Bar:
    """One month in the delivery chart (SVG user units)."""

    label: str
    x: int
    width: int
    y: int
    height: int
    value: int
    committed_y: int | None


@dataclass(frozen=True, slots=True)
class Chart:
    """MQLs delivered by month against the commitment, as SVG geometry, with its text alternative."""

    width: int
    height: int
    bottom: int
    left: int
    right: int
    bars: list[Bar]
    ticks: list[tuple[int, int]]  # (y, value)
    text: str


@dataclass(frozen=True, slots=True)
class BoardData:
    """What the board computes once per period and data version (the per-MQL rows included)."""

    quarter: Quarter
    rule: Rule
    now: dt.datetime
    mqls: list[JudgedMql]
    months: list[MonthFigures]
    total: Tally
    median_hours: Decimal | None
    reps: list[RepRow]
    campaigns: list[SourceRow]
    channels: list[SourceRow]
    names: dict[str, str] = field(default_factory=dict)  # campaign id -> name

    @property
    def delivered(self) -> int:
        """MQLs delivered in the period."""
        return self.total.mqls

    @property
    def committed(self) -> int:
        """MQLs committed for the whole period."""
        return sum(m.committed for m in self.months)

    @property
    def committed_to_date(self) -> Decimal:
        """MQLs committed up to now (pro rata in the month under way)."""
        return sum((m.committed_to_date for m in self.months), Decimal(0))

    @property
    def reason_columns(self) -> list[str]:
        """The reasons given this period, most frequent first (the matrix's columns)."""
        counted: Counter[str] = Counter()
        for s in self.channels:
            counted.update(s.reasons)
        return [name for name, _ in counted.most_common()]

    @property
    def attainment(self) -> Decimal | None:
        """Delivered / committed for the whole period."""
        return ratio(self.delivered, self.committed) if self.committed else None

    @property
    def pace(self) -> Decimal | None:
        """Delivered / committed to date; None without a commitment."""
        due = self.committed_to_date
        return ratio(self.delivered, due) if due else None

    @property
    def pace_state(self) -> str | None:
        """DESIGN 4's pace words: on track (>= 0.95), lagging (>= 0.75), at risk."""
        pace = self.pace
        if pace is None:
            return None
        return "on track" if pace >= Decimal("0.95") else "lagging" if pace >= Decimal("0.75") else "at risk"

    @property
    def acceptance_met(self) -> bool | None:
        """Whether the acceptance rate reaches the period's target."""
        rate = self.total.acceptance
        return None if rate is None else rate >= self.rule.acceptance_target

    @property
    def chart(self) -> Chart:
        """The delivery chart."""
        return delivery_chart(self.months)


_board_cache: "weakref.WeakKeyDictionary[Engine, dict[Any, Any]]" = weakref.WeakKeyDictionary()
_BOARD_CACHE_SIZE = 16


def clear_cache() -> None:
    """Forget every cached board."""
    _board_cache.clear()


async def board(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> BoardData:
    """The SLA board of `quarter`, cached while the data version holds (CACHE_SECONDS at most)."""
    version = await data_version(session)
    engine = session.get_bind()
    entries = _board_cache.setdefault(engine, {}) if isinstance(engine, Engine) and version else None
    key = (quarter.key, settings.org_timezone, settings.fiscal_year_start_month)
    if entries is not None:
        hit = entries.get(key)
        if hit is not None and hit[0] == version and time.monotonic() - hit[1] < CACHE_SECONDS:
            found: BoardData = hit[2]
            return found
    data = await _compute_board(session, settings=settings, quarter=quarter)
    if entries is not None:
        if len(entries) >= _BOARD_CACHE_SIZE:
            entries.clear()
        entries[key] = (version, time.monotonic(), data)
    return data


async def _compute_board(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> BoardData:
    win = window(settings, [quarter])
    rules = await SlaRules.load(session, settings=settings, win=win)
    rule = rules.rules[0]
    now = win.now
    disposed = disposition(Lead, None)
    t = aliased(Touchpoint)
    # The campaign an MQL belongs to: that of its last touch at or before the MQL.
    last_touch = (
        select(t.campaign_id)
        .where(t.lead_id == Lead.id, t.occurred_at <= Lead.mql_at)
        .order_by(t.occurred_at.desc(), t.id.desc())
        .limit(1)
        .correlate(Lead)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Lead.id, Lead.owner_id, Lead.mql_at, Lead.accepted_at, Lead.rejection_reason, disposed, last_touch
        ).where(Lead.mql_at >= win.start, Lead.mql_at < win.end)
    )
    campaigns = {
        int(i): (str(n), str(c))
        for i, n, c in await session.execute(select(Campaign.id, Campaign.name, Campaign.channel))
    }
    judged: list[JudgedMql] = []
    for lead_id, owner_id, mql_raw, accepted_raw, reason, disposed_raw, campaign_id in rows:
        mql_at = as_utc(mql_raw) or now
        disposed_at = as_utc(disposed_raw)
        verdict = rules.judge(mql_at, disposed_at, now=now)
        outcome = None
        if disposed_at is not None:
            outcome = "accepted" if disposed_at == as_utc(accepted_raw) else "rejected"
        known = campaigns.get(campaign_id) if campaign_id is not None else None
        judged.append(
            JudgedMql(
                id=int(lead_id),
                owner_id=owner_id,
                mql_at=mql_at,
                status=verdict.status,
                outcome=outcome,
                reason=(reason or NO_REASON) if outcome == "rejected" else None,
                campaign_id=None if known is None else int(campaign_id),
                channel=None if known is None else known[1],
                response=verdict.response,
            )
        )
    judged.sort(key=lambda m: (m.mql_at, m.id), reverse=True)
    months = _months(settings, quarter, rule, judged, now)
    owners = {m.owner_id for m in judged if m.owner_id is not None}
    people = {
        int(i): str(n)
        for i, n in (
            await session.execute(select(Person.id, Person.name).where(Person.id.in_(owners)))
            if owners
            else []
        )
    }
    by_rep: dict[int | None, list[JudgedMql]] = defaultdict(list)
    for m in judged:
        by_rep[m.owner_id].append(m)
    reps = [
        RepRow(owner, UNASSIGNED if owner is None else people.get(owner, f"#{owner}"), tally(items))
        for owner, items in by_rep.items()
    ]
    reps.sort(key=lambda r: (-r.tally.breached, -r.tally.mqls, r.name.casefold()))
    responses = [m.response for m in judged if m.response is not None]
    middle = median(responses)
    return BoardData(
        quarter=quarter,
        rule=rule,
        now=now,
        mqls=judged,
        months=months,
        total=tally(judged),
        median_hours=None if middle is None else middle / MICROS_PER_HOUR,
        reps=reps,
        campaigns=_sources(judged, campaigns, by="campaign"),
        channels=_sources(judged, campaigns, by="channel"),
        names={str(i): n for i, (n, _) in campaigns.items()},
    )


def tally(items: Sequence[JudgedMql]) -> Tally:
    """Count MQLs by status and outcome."""
    status = Counter(m.status for m in items)
    outcome = Counter(m.outcome for m in items)
    return Tally(
        mqls=len(items),
        met=status["met"],
        breached=status["breached"],
        pending=status["pending"],
        accepted=outcome["accepted"],
        rejected=outcome["rejected"],
    )


def _months(
    settings: Settings, quarter: Quarter, rule: Rule, judged: Sequence[JudgedMql], now: dt.datetime
) -> list[MonthFigures]:
    found = []
    for m in quarter_months(settings, quarter):
        delivered = sum(1 for j in judged if m.start <= j.mql_at < m.end)
        state = "done" if now >= m.end else "ahead" if now < m.start else "under_way"
        committed_to_date = rule.mql_commitment * elapsed_share(m.start, m.end, now)
        found.append(MonthFigures(m, rule.mql_commitment, delivered, committed_to_date, state))
    return found


def _sources(
    judged: Sequence[JudgedMql], campaigns: dict[int, tuple[str, str]], *, by: str
) -> list[SourceRow]:
    mqls: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for m in judged:
        if by == "campaign":
            key = "none" if m.campaign_id is None else str(m.campaign_id)
        else:
            key = m.channel or "none"
        mqls[key] += 1
        if m.outcome == "rejected":
            reasons[key][m.reason or NO_REASON] += 1
    rows = []
    for key, n in mqls.items():
        if by == "campaign":
            name, channel = (
                campaigns.get(int(key), (NO_CAMPAIGN, None)) if key != "none" else (NO_CAMPAIGN, None)
            )
        else:
            name, channel = (key if key != "none" else NO_CAMPAIGN), None
        counted = reasons.get(key, Counter())
        rows.append(SourceRow(key, name, channel, n, sum(counted.values()), dict(counted.most_common())))
    rows.sort(key=lambda r: (-r.rejected, -(r.rejection_rate or 0), r.name.casefold()))
    return rows


def delivery_chart(months: Sequence[MonthFigures]) -> Chart:
    """Bars of MQLs delivered per month with the commitment as a marker; integer SVG geometry."""
    width, height, left, right, top, bottom = 480, 220, 48, 464, 16, 188
    peak = max([1, *(m.delivered for m in months), *(m.committed for m in months)])
    step = _nice_step(peak)
    top_value = step * -(-peak // step)
    span = bottom - top

    def y_of(value: int) -> int:
        return bottom - (value * span) // top_value

    slot = (right - left) // max(1, len(months))
    bars = []
    for i, m in enumerate(months):
        x = left + i * slot + slot // 5
        w = slot - 2 * (slot // 5)
        y = y_of(m.delivered)
        bars.append(
            Bar(m.month.label, x, w, y, bottom - y, m.delivered, y_of(m.committed) if m.committed else None)
        )
    ticks = [(y_of(v), v) for v in range(0, top_value + 1, step)]
    parts = [
        f"{m.month.label}: {m.delivered:,} delivered"
        + (f" of {m.committed:,} committed" if m.committed else "")
        + (" (under way)" if m.state == "under_way" else "")
        for m in months
    ]
    return Chart(width, height, bottom, left, right, bars, ticks, "; ".join(parts) + ".")


def _nice_step(peak: int) -> int:
    """A round tick step giving 2 to 5 ticks up to `peak`."""
    step = 1
    while True:
        for k in (1, 2, 5):
            if peak / (step * k) <= 4:
                return step * k
        step *= 10


# -- Records behind the board's figures ------------------------------------------------------------------

RECORD_STATUSES: Final = ("met", "breached", "pending", "accepted", "rejected")
PAGE_SIZE: Final = 50


@dataclass(frozen=True, slots=True)
class RecordFilters:
    """What narrows the board's records: rep (a person id, or 0 for unassigned), status, campaign
    (an id, or 0 for none), channel, reason."""

    rep: int | None = None
    status: str | None = None
    campaign: int | None = None
    channel: str | None = None
    reason: str | None = None

    def keep(self, m: JudgedMql) -> bool:
        """Whether MQL `m` is one of the records."""
        if self.rep is not None and (m.owner_id or 0) != self.rep:
            return False
        if self.status in ("met", "breached", "pending") and m.status != self.status:
            return False
        if self.status in ("accepted", "rejected") and m.outcome != self.status:
            return False
        if self.campaign is not None and (m.campaign_id or 0) != self.campaign:
            return False
        if self.channel is not None and (m.channel or "none") != self.channel:
            return False
        return self.reason is None or m.reason == self.reason

    @property
    def params(self) -> dict[str, Any]:
        """As URL parameters."""
        return {
            "rep": self.rep,
            "status": self.status,
            "campaign": self.campaign,
            "channel": self.channel,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One MQL behind a board figure."""

    id: int
    external_id: str
    email: str | None
    account: str
    owner: str | None
    mql_at: dt.datetime
    due: dt.datetime
    status: SlaStatus
    outcome: str | None
    reason: str | None
    campaign: str | None
    response_hours: Decimal | None


@dataclass(frozen=True, slots=True)
class RecordsPage:
    """A page of the MQLs behind a board figure, newest MQL first."""

    quarter: Quarter
    filters: RecordFilters
    rows: list[RecordRow]
    total: int
    page: int
    pages: int
    rule: Rule

    @property
    def first_index(self) -> int:
        """1-based index of the first row shown."""
        return 0 if not self.total else (self.page - 1) * PAGE_SIZE + 1

    @property
    def last_index(self) -> int:
        """1-based index of the last row shown."""
        return (self.page - 1) * PAGE_SIZE + len(self.rows)


async def records(
    session: AsyncSession, *, settings: Settings, quarter: Quarter, filters: RecordFilters, page: int = 1
) -> RecordsPage:
    """The period's MQLs that `filters` keep, 50 a page: the rows add up to the board's figure."""
    data = await board(session, settings=settings, quarter=quarter)
    kept = [m for m in data.mqls if filters.keep(m)]
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ids = [m.id for m in shown]
    details: dict[int, tuple[str, str | None, str, str | None]] = {}
    if ids:
        for i, ext, mail, account_name, owner_name in await session.execute(
            select(Lead.id, Lead.external_id, Lead.email, Account.name, Person.name)
            .join(Account, Account.id == Lead.account_id)
            .outerjoin(Person, Person.id == Lead.owner_id)
            .where(Lead.id.in_(ids))
        ):
            details[int(i)] = (str(ext), mail, str(account_name), owner_name)
    win = window(settings, [quarter])
    rules = await SlaRules.load(session, settings=settings, win=win)
    rows = []
    for m in shown:
        ext, email, account, owner = details.get(m.id, ("?", None, "?", None))
        rows.append(
            RecordRow(
                id=m.id,
                external_id=ext,
                email=email,
                account=account,
                owner=owner,
                mql_at=m.mql_at,
                due=rules.rule(m.mql_at).due(m.mql_at),
                status=m.status,
                outcome=m.outcome,
                reason=m.reason,
                campaign=None if m.campaign_id is None else data.names.get(str(m.campaign_id)),
                response_hours=None if m.response is None else Decimal(m.response) / MICROS_PER_HOUR,
            )
        )
    return RecordsPage(quarter, filters, rows, len(kept), page, pages, data.rule)


__all__ = [
    "PAGE_SIZE",
    "RECORD_STATUSES",
    "BoardData",
    "EditConflict",
    "PeriodClosed",
    "PolicyView",
    "ReasonView",
    "RecordFilters",
    "RecordsPage",
    "add_reason",
    "board",
    "clear_cache",
    "move_reason",
    "percent_text",
    "policy_view",
    "reasons",
    "records",
    "rename_reason",
    "save_policy",
    "set_reason_active",
]
