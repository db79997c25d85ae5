"""Write audit events: who changed what, when, with before and after. Append-only."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.audit import AuditEvent
from okr.lib.clock import utcnow


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> AuditEvent:
    """Append one audit event to the session (flushed with the caller's unit of work)."""
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor_id,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )
    session.add(event)
    await session.flush()
    return event
