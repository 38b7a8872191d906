"""Audit log of security-relevant events (append-only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store.models import AuditEvent, utcnow

__all__ = ["list_events", "record_event"]


async def record_event(
    session: AsyncSession,
    *,
    tenant_id: str | None,
    actor_key_id: str | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event (e.g. ``action="key.revoke"``, ``target=<key id>``) and return it."""
    event = AuditEvent(
        tenant_id=tenant_id,
        actor_key_id=actor_key_id,
        action=action,
        target=target,
        details={} if details is None else details,
        created_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    return event


async def list_events(
    session: AsyncSession,
    *,
    tenant_id: str,
    action: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """The tenant's events, newest first; page with ``before_id`` = last id of a page."""
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    result = await session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit))
    return list(result)
