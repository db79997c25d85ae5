"""A small organisation whose Q3 2026 bonus is worked out by hand (the figures below are the tests').

Organisation: America/New_York, USD (tests/conftest.py). The clock is pinned to 2026-09-20 16:00 UTC,
inside 2026-Q3 (2026-07-01 to 2026-09-30, 92 days).

| deal | amount (USD) | won | splits | journey (account touches, campaign owner) |
| --- | --- | --- | --- | --- |
| W1 | 100,000.00 | 2026-07-15 | Rita 60 %, Sue 40 % | MK1 (Mia) 05-01, MK2 (Max) 06-01 |
| W2 | 50,000.00 | 2026-08-20 | none: owner Sue | MK1 (Mia) 07-01 |
| W0 | 70,000.00 | 2026-06-10 (Q2: not counted) | owner Rita | MK1 (Mia) 05-15 |
| L1 | 9,999.00 | lost 2026-08-01 | owner Rita | MK2 (Max) 07-02 |

Plan (approved, version 1): funding 0.03 of won revenue, no pipeline rate, no pool cap; gate curve
(0.5, 0), (0.5, 0.5), (1.0, 1.0), (1.5, 2.0); sales 0.6 by_credit, marketing 0.4 by_credit; marketers'
credit under `linear`, revenue scope; no overlay; no person cap; leftover carried forward; clawback
window 90 days. One KR counts toward the bonus: target 100, checked in at 100 -> joint score 1,
multiplier 1.

By hand: won revenue = 10,000,000 + 5,000,000 = 15,000,000 cents; pool = R(1 x 0.03 x 15,000,000) =
450,000. Sales 0.6 -> 270,000; marketing 0.4 -> 180,000.
- Sales credit: Rita 6,000,000 (W1); Sue 4,000,000 (W1) + 5,000,000 (W2) = 9,000,000. Rita 270,000 x
  6/15 = 108,000; Sue 162,000, traced W1 72,000 (4/9) and W2 90,000 (5/9). Vic (sales leader, no credit)
  gets a line of 0.
- Marketing credit (linear): W1 5,000,000 to MK1 (Mia) and 5,000,000 to MK2 (Max); W2 5,000,000 to MK1
  (Mia). Mia 10,000,000 -> 120,000 (W1/MK1 60,000, W2/MK1 60,000); Max 5,000,000 -> 60,000 (W1/MK2).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import PASSWORD
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.attribution.services import recompute_all
from okr.auth.schemas import CurrentUser
from okr.db.bonus import BonusPlan, PlanStatus
from okr.db.models import Opportunity, OpportunitySplit, Period, Person
from okr.goals import services as goals
from okr.kpis.core import KpiFilters
from okr.lib.clock import set_clock
from okr.lib.periods import Quarter
from okr.people.services import load_current_user, set_password
from okr.periods.services import ensure_periods
from okr.settings import Settings

Q3 = Quarter(2026, 3)
NOW = dt.datetime(2026, 9, 20, 16, 0, tzinfo=dt.UTC)
POOL = 450_000
LINES = {"rita": 108_000, "sue": 162_000, "vic": 0, "mia": 120_000, "max": 60_000}


@dataclass
class Org:
    """Who and what the tests refer to by name."""

    people: dict[str, Person]
    users: dict[str, CurrentUser]
    deals: dict[str, Opportunity]
    period: Period
    plan: BonusPlan

    def id(self, name: str) -> int:
        """A person's id by first name."""
        return self.people[name].id


def pin_clock(moment: dt.datetime = NOW) -> None:
    """Pin okr's clock (tests restore it with set_clock(None))."""
    set_clock(lambda: moment)


def plan_row(period_id: int, **changes: object) -> BonusPlan:
    """The plan of the table above as an approved version 1 (`changes` override fields)."""
    values: dict[str, object] = {
        "period_id": period_id,
        "version": 1,
        "status": PlanStatus.APPROVED,
        "funding_rate": Decimal("0.03"),
        "pipeline_rate": Decimal(0),
        "pool_cap": None,
        "kr_cap": Decimal("1.5"),
        "gate_curve": [["0.5", "0"], ["0.5", "0.5"], ["1.0", "1.0"], ["1.5", "2.0"]],
        "teams": [
            {"team": "sales", "share": "0.6", "rule": "by_credit"},
            {"team": "marketing", "share": "0.4", "rule": "by_credit"},
        ],
        "model": "linear",
        "scope": "revenue",
        "count_overlay": False,
        "cap_amount": None,
        "cap_multiple": None,
        "prorate": True,
        "leftover_policy": "carry_forward",
        "clawback_days": 90,
        "created_at": NOW,
        "approved_at": NOW,
    }
    values.update(changes)
    return BonusPlan(**values)


async def bonus_org(db: AsyncSession, settings: Settings, *, attainment: str = "100") -> Org:
    """Build the organisation, its Q3 goals and approved plan, recompute attribution, commit."""
    pin_clock()
    d = PipelineData(db)
    people = {
        "rita": await d.person("rita@example.com", "sales", "Rita Rep"),
        "sue": await d.person("sue@example.com", "sales", "Sue Seller"),
        "vic": await d.person("vic@example.com", "sales", "Vic Leader"),
        "mia": await d.person("mia@example.com", "marketing", "Mia Marketer"),
        "max": await d.person("max@example.com", "marketing", "Max Marketer"),
        "fay": await d.person("fay@example.com", "finance", "Fay Finance"),
        "fin": await d.person("fin@example.com", "finance", "Fin Finance"),
        "ada": await d.person("ada@example.com", "revops", "Ada Admin"),
    }
    d._owner = people["rita"]
    roles = {"vic": "leader", "fay": "finance", "fin": "finance", "ada": "admin"}
    for name, person in people.items():
        person.role = roles.get(name, "member")
        person.employee_id = f"E-{name.upper()}"
    people["sue"].target_bonus = 1_000_000
    people["rita"].target_bonus = 1_000_000
    await db.flush()
    for person in people.values():
        await set_password(db, email=person.email, password=PASSWORD)

    mk1 = await d.campaign("MK1", people["mia"], "webinar")
    mk2 = await d.campaign("MK2", people["max"], "event")
    l1 = await d.lead("LA1", "A1", created_at="2026-04-01T12:00Z")
    await d.touch("T1", l1, mk1, at("2026-05-01T12:00Z"))
    await d.touch("T2", l1, mk2, at("2026-06-01T12:00Z"))
    w1 = await d.opportunity(
        "W1", amount=10_000_000, account="A1", created_at="2026-06-15T12:00Z",
        closed_at="2026-07-15T16:00Z", status="won", owner=people["rita"],
    )  # fmt: skip
    l2 = await d.lead("LA2", "A2", created_at="2026-06-01T12:00Z")
    await d.touch("T3", l2, mk1, at("2026-07-01T12:00Z"))
    w2 = await d.opportunity(
        "W2", amount=5_000_000, account="A2", created_at="2026-07-05T12:00Z",
        closed_at="2026-08-20T16:00Z", status="won", owner=people["sue"],
    )  # fmt: skip
    l3 = await d.lead("LA3", "A3", created_at="2026-04-01T12:00Z")
    await d.touch("T4", l3, mk1, at("2026-05-15T12:00Z"))
    w0 = await d.opportunity(
        "W0", amount=7_000_000, account="A3", created_at="2026-05-20T12:00Z",
        closed_at="2026-06-10T16:00Z", status="won", owner=people["rita"],
    )  # fmt: skip
    l4 = await d.lead("LA4", "A4", created_at="2026-06-01T12:00Z")
    await d.touch("T5", l4, mk2, at("2026-07-02T12:00Z"))
    lost = await d.opportunity(
        "L1", amount=999_900, account="A4", created_at="2026-07-10T12:00Z",
        closed_at="2026-08-01T16:00Z", status="lost", owner=people["rita"],
    )  # fmt: skip
    for person, percent in ((people["rita"], "60"), (people["sue"], "40")):
        db.add(
            OpportunitySplit(
                opportunity_id=w1.id, person_id=person.id, kind="revenue", percent=Decimal(percent)
            )
        )
    await db.flush()

    periods = await ensure_periods(
        db, settings=settings, first=dt.date(2026, 4, 1), last=dt.date(2026, 12, 31), today=NOW.date()
    )
    period = next(p for p in periods if p.key == Q3.key)
    plan = plan_row(period.id)
    db.add(plan)
    await recompute_all(db, settings=settings)
    await db.commit()

    users = {}
    for name, person in people.items():
        found = await load_current_user(db, person.id)
        assert found is not None
        users[name] = found
    objective = await goals.create_objective(
        db, settings=settings, user=users["ada"], quarter=Q3,
        fields=goals.ObjectiveFields(title="One revenue team", team_ids=(users["vic"].team_id, users["mia"].team_id)),
    )  # fmt: skip
    kr = await goals.create_key_result(
        db, settings=settings, user=users["ada"], objective_id=objective.id,
        fields=goals.KeyResultFields(
            title="Joint deals", kind="increase_to", unit="count", start_value=Decimal(0), target=Decimal(100),
            stretch=None, weight=Decimal(1), owner_ids=(), source="manual", metric=None, filters=KpiFilters(),
            counts_toward_bonus=True,
        ),
    )  # fmt: skip
    await goals.check_in(
        db, settings=settings, user=users["ada"], key_result_id=kr.id, value=Decimal(attainment),
        confidence="on_track", note="",
    )  # fmt: skip
    await db.commit()
    return Org(
        people=people, users=users, deals={"W1": w1, "W2": w2, "W0": w0, "L1": lost}, period=period, plan=plan
    )
