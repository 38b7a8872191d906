"""Versioned service configuration: every ``put`` appends version ``previous + 1``.

Rollback is a new version carrying an old version's data (:func:`rollback_config`), so
history is never rewritten.

Concurrency: the new version is computed and inserted by one ``INSERT ... SELECT
COALESCE(MAX(version), 0) + 1`` statement. SQLite takes its write lock before the
statement reads, so that is atomic there; on PostgreSQL (READ COMMITTED) two such
statements could read the same maximum, so a transaction-scoped advisory lock on
(tenant, service) serialises them first. The unique constraint on
``(tenant_id, service, version)`` stays as the backstop.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String, func, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store._dialect import dialect_name
from nqp.store.models import Config, UTCDateTime, utcnow

__all__ = ["config_history", "get_config", "put_config", "rollback_config"]


async def get_config(
    session: AsyncSession, *, tenant_id: str, service: str, version: int | None = None
) -> Config | None:
    """Version ``version`` of the tenant's ``service`` config (latest if ``None``), or ``None``."""
    stmt = select(Config).where(Config.tenant_id == tenant_id, Config.service == service)
    if version is None:
        stmt = stmt.order_by(Config.version.desc()).limit(1)
    else:
        stmt = stmt.where(Config.version == version)
    return await session.scalar(stmt)


async def put_config(
    session: AsyncSession,
    *,
    tenant_id: str,
    service: str,
    data: dict[str, Any],
    created_by: str | None,
) -> int:
    """Append a new version of the tenant's ``service`` config; return its version number.

    Versions are 1, 2, 3, ... per (tenant, service), without gaps or duplicates even when
    several transactions put at once (see the module notes). ``created_by`` is the acting
    key's id (``None`` for the system).
    """
    if dialect_name(session) == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"nqp.configs:{tenant_id}:{service}"},
        )
    next_version = select(
        literal(tenant_id, String()),
        literal(service, String()),
        func.coalesce(func.max(Config.version), 0) + literal(1, Integer()),
        literal(data, JSON()),
        literal(utcnow(), UTCDateTime()),
        literal(created_by, String()),
    ).where(Config.tenant_id == tenant_id, Config.service == service)
    columns = ["tenant_id", "service", "version", "data", "created_at", "created_by"]
    stmt = insert(Config).from_select(columns, next_version).returning(Config.version)
    version = (await session.execute(stmt)).scalar_one()
    return int(version)


async def config_history(
    session: AsyncSession, *, tenant_id: str, service: str, limit: int = 100
) -> list[Config]:
    """The tenant's versions of ``service`` config, newest first (at most ``limit``)."""
    result = await session.scalars(
        select(Config)
        .where(Config.tenant_id == tenant_id, Config.service == service)
        .order_by(Config.version.desc())
        .limit(limit)
    )
    return list(result)


async def rollback_config(
    session: AsyncSession,
    *,
    tenant_id: str,
    service: str,
    version: int,
    created_by: str | None,
) -> int | None:
    """Put version ``version``'s data again as a new version; ``None`` if it does not exist."""
    old = await get_config(session, tenant_id=tenant_id, service=service, version=version)
    if old is None:
        return None
    return await put_config(
        session, tenant_id=tenant_id, service=service, data=old.data, created_by=created_by
    )
