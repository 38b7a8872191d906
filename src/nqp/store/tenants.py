"""Tenants: created on first use by name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store._dialect import upsert_insert
from nqp.store.models import Tenant, new_id, utcnow

__all__ = ["get_or_create_tenant", "get_tenant"]


async def get_or_create_tenant(session: AsyncSession, *, name: str) -> Tenant:
    """Return the tenant called ``name``, creating it if needed.

    Safe under concurrency: ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT``, so two
    callers racing on a new name both get the same row.
    """
    stmt = (
        upsert_insert(session, Tenant)
        .values(id=new_id(), name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await session.execute(stmt)
    tenant = await session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:  # pragma: no cover - inserted above or by a concurrent winner
        raise RuntimeError(f"tenant {name!r} vanished right after its insert")
    return tenant


async def get_tenant(session: AsyncSession, *, tenant_id: str) -> Tenant | None:
    """The tenant with id ``tenant_id``, or ``None``."""
    return await session.get(Tenant, tenant_id)
