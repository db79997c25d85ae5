"""A small cast and queue for the lead queue tests, at a pinned Monday 10:00 in New York.

Default SLA: 24 business hours, Monday to Friday 09:00-17:00 New York. The rep's open MQLs, by deadline:

- L-OLD: MQL Mon 16 Nov 10:20 -> due Thu 19 Nov 10:20; now overdue by 6 h 40 + 8 h + 1 h = 15 h 40 min.
- L-SOON: MQL Wed 18 Nov 12:00 -> due Mon 23 Nov 12:00; 2 h left (due soon: under 6 h).
- L-WEEKEND: MQL Fri 20 Nov 16:40 -> 20 min Friday, the weekend does not count, due Wed 25 Nov 16:40;
  22 h 40 min left. Touched by campaign "Campaign WEB" before its MQL and "Campaign LATE" after.

Not in the rep's queue: an accepted lead, an SQL, a lead that is not an MQL, another rep's open MQL.
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.conftest import make_person
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.auth.schemas import CurrentUser
from okr.db.people import Person
from okr.db.pipeline import Lead
from okr.people.services import load_current_user

NOW = at("2026-11-23T15:00Z")  # Monday 10:00 in New York


@dataclass
class Cast:
    """People (as the app sees them) and the leads by external id."""

    rep: CurrentUser
    rep2: CurrentUser
    leader: CurrentUser
    other_leader: CurrentUser
    admin: CurrentUser
    leads: dict[str, int]


async def _user(db: AsyncSession, email: str, role: str, team: str) -> CurrentUser:
    person = await make_person(db, email=email, role=role, team=team)
    found = await load_current_user(db, person.id)
    assert found is not None
    return found


async def cast(db: AsyncSession) -> Cast:
    """The cast and the rep's queue (committed)."""
    rep = await _user(db, "rep@example.com", "member", "sales")
    rep2 = await _user(db, "rep2@example.com", "member", "sales")
    leader = await _user(db, "lead@example.com", "leader", "sales")
    other_leader = await _user(db, "mlead@example.com", "leader", "marketing")
    admin = await _user(db, "admin@example.com", "admin", "ops")
    p = PipelineData(db)
    owner = await db.get_one(Person, rep.id)
    owner2 = await db.get_one(Person, rep2.id)
    made: list[Lead] = [
        await p.lead("L-OLD", "ACME", mql_at="2026-11-16T15:20Z", owner=owner),
        await p.lead("L-SOON", "ACME", mql_at="2026-11-18T17:00Z", owner=owner),
        await p.lead("L-WEEKEND", "GLOBEX", mql_at="2026-11-20T21:40Z", owner=owner),
        await p.lead(
            "L-DONE", "ACME", mql_at="2026-11-19T15:00Z", accepted_at="2026-11-19T16:00Z", owner=owner
        ),
        await p.lead("L-SQL", "ACME", mql_at="2026-11-19T15:00Z", sql_at="2026-11-20T15:00Z", owner=owner),
        await p.lead("L-RAW", "ACME", owner=owner),
        await p.lead("L-REP2", "ACME", mql_at="2026-11-20T15:00Z", owner=owner2),
    ]
    web = await p.campaign("WEB", None)
    late = await p.campaign("LATE", None)
    await p.touch("T-1", made[2], web, at("2026-11-20T15:00Z"))
    await p.touch("T-2", made[2], late, at("2026-11-20T23:00Z"))
    await db.commit()
    return Cast(rep, rep2, leader, other_leader, admin, {lead.external_id: lead.id for lead in made})
