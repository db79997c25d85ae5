"""Which SLA rule applies to an MQL, and the reject reasons: shared by the lead queue, the SLA board and the
KPI library.

The rule of an MQL is the policy of the period its `mql_at` falls in (organisation time zone, fiscal
year); a period without a policy uses DESIGN 5's defaults: 24 business hours, Monday to Friday 09:00 to
17:00, a 90 % acceptance target, no MQL commitment.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.people import Period
from okr.db.sla import DEFAULT_REASONS, RejectionReason, SlaPolicy
from okr.lib.periods import Quarter, quarter_of_instant
from okr.settings import Settings
from okr.sla import core

DEFAULT_ACCEPTANCE: Final = Decimal("0.9")


@dataclass(frozen=True, slots=True)
class Rule:
    """The SLA in force for one period: follow-up hours on a business calendar, and the two targets."""

    period: str
    hours: int
    calendar: core.BusinessCalendar
    acceptance_target: Decimal
    mql_commitment: int
    stored: bool  # False: the defaults, no policy saved for the period

    def due(self, mql_at: dt.datetime) -> dt.datetime:
        """When an MQL that arrived at `mql_at` must be accepted or rejected."""
        return core.deadline(mql_at, self.hours, self.calendar)

    def describe(self) -> str:
        """The rule in words, e.g. "24 business hours (Mon-Fri 09:00-17:00, America/New_York)"."""
        days = _days(self.calendar.weekdays)
        start, end = _clock(self.calendar.start_minute), _clock(self.calendar.end_minute)
        return f"{self.hours} business hours ({days} {start}-{end}, {self.calendar.tz.key})"


_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _days(weekdays: Iterable[int]) -> str:
    days = sorted(set(weekdays))
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{_NAMES[days[0]]}-{_NAMES[days[-1]]}"
    return ", ".join(_NAMES[d] for d in days)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def default_rule(settings: Settings, period: str) -> Rule:
    """DESIGN 5's defaults in the organisation's time zone."""
    return Rule(
        period, core.DEFAULT_HOURS, core.BusinessCalendar(tz=settings.tz), DEFAULT_ACCEPTANCE, 0, False
    )


def rule_of(policy: SlaPolicy, settings: Settings, period: str) -> Rule:
    """A stored policy as a rule."""
    calendar = core.BusinessCalendar(
        tz=settings.tz,
        weekdays=tuple(sorted(policy.weekdays)),
        start_minute=policy.day_start_minute,
        end_minute=policy.day_end_minute,
    )
    return Rule(
        period, policy.follow_up_hours, calendar, policy.acceptance_target, policy.mql_commitment, True
    )


async def rules(session: AsyncSession, *, settings: Settings) -> dict[str, Rule]:
    """The stored policies by period key (periods without one are not listed: use `rule_for`)."""
    rows = await session.execute(select(SlaPolicy, Period.key).join(Period, Period.id == SlaPolicy.period_id))
    return {key: rule_of(policy, settings, key) for policy, key in rows}


async def rule_for_period(session: AsyncSession, *, settings: Settings, quarter: Quarter) -> Rule:
    """The period's rule (its policy, or the defaults)."""
    row = await session.scalar(
        select(SlaPolicy).join(Period, Period.id == SlaPolicy.period_id).where(Period.key == quarter.key)
    )
    return default_rule(settings, quarter.key) if row is None else rule_of(row, settings, quarter.key)


class RuleBook:
    """Every period's rule, read once; `for_mql` picks the one an MQL falls under."""

    def __init__(self, settings: Settings, stored: dict[str, Rule]) -> None:
        self._settings = settings
        self._stored = stored

    @classmethod
    async def load(cls, session: AsyncSession, *, settings: Settings) -> "RuleBook":
        """Read every stored policy."""
        return cls(settings, await rules(session, settings=settings))

    def for_mql(self, mql_at: dt.datetime) -> Rule:
        """The rule of the period `mql_at` falls in."""
        key = quarter_of_instant(mql_at, self._settings.tz, self._settings.fiscal_year_start_month).key
        return self._stored.get(key) or default_rule(self._settings, key)

    def due(self, mql_at: dt.datetime) -> dt.datetime:
        """An MQL's deadline under its period's rule."""
        return self.for_mql(mql_at).due(mql_at)


async def ensure_reasons(session: AsyncSession) -> None:
    """Seed DESIGN 5's reject reasons when the list is empty (a new database has them from its migration)."""
    if await session.scalar(select(func.count()).select_from(RejectionReason)):
        return
    await session.execute(
        insert(RejectionReason),
        [{"name": n, "position": i, "active": True} for i, n in enumerate(DEFAULT_REASONS)],
    )
    await session.flush()


async def active_reasons(session: AsyncSession) -> list[str]:
    """The reasons a rep may pick, in order (DESIGN 5's list until a leader edits it)."""
    names = list(
        (
            await session.scalars(
                select(RejectionReason.name)
                .where(RejectionReason.active.is_(True))
                .order_by(RejectionReason.position, RejectionReason.id)
            )
        ).all()
    )
    if names or await session.scalar(select(func.count()).select_from(RejectionReason)):
        return names
    return list(DEFAULT_REASONS)
