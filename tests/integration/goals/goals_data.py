"""People and goals for the goals tests: who is who, and small helpers to build objectives and KRs.

The clock is pinned to 2026-08-15 16:00 UTC by the tests: in New York that is inside 2026-Q3, which runs
from 2026-07-01T04:00Z to 2026-10-01T04:00Z (92 days); 2026-Q2 is over (closed), 2026-Q4 is ahead.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import make_person

from okr.auth.schemas import CurrentUser
from okr.goals import services as goals
from okr.kpis.core import KpiFilters
from okr.lib.periods import Quarter
from okr.people.services import load_current_user
from okr.settings import Settings

D = Decimal
Q2, Q3, Q4 = Quarter(2026, 2), Quarter(2026, 3), Quarter(2026, 4)
NOW = dt.datetime(2026, 8, 15, 16, 0, tzinfo=dt.UTC)
Q3_START = dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
Q3_DAYS = 92


@dataclass
class Cast:
    """Everyone the tests log in as."""

    admin: CurrentUser
    sales_lead: CurrentUser
    marketing_lead: CurrentUser
    rep: CurrentUser
    marketer: CurrentUser
    finance: CurrentUser

    @property
    def sales(self) -> int:
        """The sales team's id."""
        return self.sales_lead.team_id

    @property
    def marketing(self) -> int:
        """The marketing team's id."""
        return self.marketing_lead.team_id


async def user(db: AsyncSession, email: str, role: str, team: str) -> CurrentUser:
    """A person who can log in (password tests.integration.conftest.PASSWORD), as the app sees them."""
    person = await make_person(db, email=email, role=role, team=team)
    found = await load_current_user(db, person.id)
    assert found is not None
    return found


async def cast(db: AsyncSession) -> Cast:
    """Create the cast and commit."""
    found = Cast(
        admin=await user(db, "admin@example.com", "admin", "revops"),
        sales_lead=await user(db, "vp.sales@example.com", "leader", "sales"),
        marketing_lead=await user(db, "vp.marketing@example.com", "leader", "marketing"),
        rep=await user(db, "seller@example.com", "member", "sales"),
        marketer=await user(db, "marketer@example.com", "member", "marketing"),
        finance=await user(db, "finance@example.com", "finance", "finance"),
    )
    await db.commit()  # end the read, so that what the app commits next is seen (SQLite snapshots)
    return found


async def objective(
    db: AsyncSession,
    settings: Settings,
    who: CurrentUser,
    title: str,
    teams: tuple[int, ...],
    *,
    quarter: Quarter = Q3,
    weight: str = "1",
    owner: CurrentUser | None = None,
) -> int:
    """Create an objective as `who` and commit; its id."""
    o = await goals.create_objective(
        db,
        settings=settings,
        user=who,
        quarter=quarter,
        fields=goals.ObjectiveFields(
            title=title, team_ids=teams, weight=D(weight), owner_id=None if owner is None else owner.id
        ),
    )
    await db.commit()
    return o.id


async def key_result(
    db: AsyncSession,
    settings: Settings,
    who: CurrentUser,
    objective_id: int,
    title: str,
    *,
    kind: str = "increase_to",
    unit: str = "count",
    start: str = "0",
    target: str = "100",
    stretch: str | None = None,
    weight: str = "1",
    owners: tuple[int, ...] = (),
    source: str = "manual",
    metric: str | None = None,
    filters: KpiFilters | None = None,
) -> int:
    """Create a KR as `who` and commit; its id."""
    kr = await goals.create_key_result(
        db,
        settings=settings,
        user=who,
        objective_id=objective_id,
        fields=goals.KeyResultFields(
            title=title,
            kind=kind,
            unit=unit,
            start_value=D(start),
            target=D(target),
            stretch=None if stretch is None else D(stretch),
            weight=D(weight),
            owner_ids=owners,
            source=source,
            metric=metric,
            filters=filters or KpiFilters(),
        ),
    )
    await db.commit()
    return kr.id


async def check_in(
    db: AsyncSession,
    settings: Settings,
    who: CurrentUser,
    key_result_id: int,
    value: str | None,
    confidence: str = "on_track",
    note: str = "",
) -> None:
    """Check in as `who` and commit."""
    await goals.check_in(
        db,
        settings=settings,
        user=who,
        key_result_id=key_result_id,
        value=None if value is None else D(value),
        confidence=confidence,
        note=note,
    )
    await db.commit()
