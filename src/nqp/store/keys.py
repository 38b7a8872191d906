"""API keys: create, look up by hash, list, revoke (tenant-scoped), record use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store.models import KEY_ROLES, ApiKey, utcnow

__all__ = ["create_key", "get_key", "get_key_by_hash", "list_keys", "revoke_key", "touch_key"]


async def create_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    role: str,
    key_hash: str,
    prefix: str,
    expires_at: datetime | None = None,
    rate_limit_per_s: float | None = None,
    daily_quota: int | None = None,
) -> ApiKey:
    """Store a new key (its SHA-256 hex ``key_hash``, never the key) and return it.

    Raises
    ------
    ValueError
        If ``role`` is not one of ``admin``, ``developer``, ``viewer``.
    """
    if role not in KEY_ROLES:
        raise ValueError(f"role must be one of {', '.join(KEY_ROLES)}; got {role!r}")
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        role=role,
        key_hash=key_hash,
        prefix=prefix,
        created_at=utcnow(),
        expires_at=expires_at,
        rate_limit_per_s=rate_limit_per_s,
        daily_quota=daily_quota,
    )
    session.add(key)
    await session.flush()
    return key


async def get_key_by_hash(session: AsyncSession, *, key_hash: str) -> ApiKey | None:
    """The key whose hash is ``key_hash`` (revoked and expired ones included), or ``None``.

    Authentication then checks :meth:`ApiKey.is_active`.
    """
    return await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


async def get_key(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKey | None:
    """The key ``key_id`` if it belongs to ``tenant_id``, else ``None``."""
    return await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
    )


async def list_keys(
    session: AsyncSession, *, tenant_id: str, include_revoked: bool = True
) -> list[ApiKey]:
    """The tenant's keys, oldest first."""
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    result = await session.scalars(stmt.order_by(ApiKey.created_at, ApiKey.id))
    return list(result)


async def revoke_key(session: AsyncSession, *, tenant_id: str, key_id: str) -> bool:
    """Revoke ``key_id``; ``False`` if the tenant has no such key (another tenant's key included).

    Revoking twice keeps the first ``revoked_at`` and returns ``True``.
    """
    key = await get_key(session, tenant_id=tenant_id, key_id=key_id)
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return True


async def touch_key(session: AsyncSession, *, key_id: str, at: datetime | None = None) -> None:
    """Set the key's ``last_used_at`` to ``at`` (default: now).

    One ``UPDATE`` and no ``SELECT`` (it runs on every authenticated request); an
    :class:`ApiKey` already loaded in this session is not refreshed.
    """
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(last_used_at=utcnow() if at is None else at)
        .execution_options(synchronize_session=False)
    )
