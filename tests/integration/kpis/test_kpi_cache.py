"""Cached KPI figures: goals work leaves them in place; data changes make them stale."""

from sqlalchemy.ext.asyncio import AsyncSession

from okr.audit import services as audit
from okr.kpis.services import data_version


async def test_goals_and_tokens_do_not_make_figures_stale_but_imports_and_people_do(db: AsyncSession) -> None:
    assert await data_version(db) is None  # nothing audited yet: nothing is cached
    await audit.record(db, actor="admin", action="import", entity="opportunity")
    await db.flush()
    first = await data_version(db)
    assert first is not None
    for action in ("objective.create", "key_result.update", "check_in.create", "api_token.create"):
        await audit.record(db, actor="vp", action=action, entity=action.split(".")[0])
        await db.flush()
        assert await data_version(db) == first, action
    for action in ("person.create", "team.create", "import"):
        await audit.record(db, actor="admin", action=action, entity=action.split(".")[0])
        await db.flush()
        changed = await data_version(db)
        assert changed is not None and changed != first, action
        first = changed
