"""Tenants and API keys on both backends: creation, lookup, tenant-scoped revoke, use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from nqp.store import (
    Tenant,
    create_key,
    get_key,
    get_key_by_hash,
    get_or_create_tenant,
    get_tenant,
    list_keys,
    revoke_key,
    touch_key,
)


async def test_get_or_create_tenant_is_idempotent(session):
    a = await get_or_create_tenant(session, name="acme")
    again = await get_or_create_tenant(session, name="acme")
    other = await get_or_create_tenant(session, name="globex")
    await session.commit()
    assert a.id == again.id != other.id
    assert len(a.id) == 32
    assert a.created_at.tzinfo is not None
    assert a.created_at.utcoffset() == timedelta(0)
    fetched = await get_tenant(session, tenant_id=a.id)
    assert fetched is not None
    assert fetched.name == "acme"
    assert await get_tenant(session, tenant_id="0" * 32) is None


async def test_get_or_create_tenant_concurrently_makes_one_row(sessionmaker):
    async def create() -> str:
        async with sessionmaker.begin() as s:
            return (await get_or_create_tenant(s, name="racy")).id

    ids = await asyncio.gather(*(create() for _ in range(5)))
    assert len(set(ids)) == 1
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Tenant)) == 1


async def _key(session, tenant_id, name, role="developer", **kw):
    return await create_key(
        session,
        tenant_id=tenant_id,
        name=name,
        role=role,
        key_hash=f"{tenant_id[:8]}{name}".ljust(64, "0"),
        prefix=name[:8],
        **kw,
    )


async def test_create_and_look_up_keys(session, sessionmaker, tenants):
    a, b = tenants
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    k1 = await _key(session, a, "first", role="admin", expires_at=expires, daily_quota=500)
    k2 = await _key(session, a, "second", rate_limit_per_s=12.5)
    await _key(session, b, "theirs")
    await session.commit()

    async with sessionmaker() as fresh:  # read back through a new session: from the database
        got = await get_key_by_hash(fresh, key_hash=k1.key_hash)
        assert got is not None
        assert (got.id, got.tenant_id, got.name, got.role, got.prefix) == (
            k1.id,
            a,
            "first",
            "admin",
            "first",
        )
        assert got.expires_at == expires
        assert got.expires_at.tzinfo is not None
        assert (got.daily_quota, got.rate_limit_per_s, got.revoked_at) == (500, None, None)
        assert (await get_key_by_hash(fresh, key_hash=k2.key_hash)).rate_limit_per_s == 12.5
        assert await get_key_by_hash(fresh, key_hash="f" * 64) is None
        assert [k.name for k in await list_keys(fresh, tenant_id=a)] == ["first", "second"]
        assert [k.name for k in await list_keys(fresh, tenant_id=b)] == ["theirs"]
        assert await get_key(fresh, tenant_id=b, key_id=k1.id) is None
        assert (await get_key(fresh, tenant_id=a, key_id=k1.id)).name == "first"


async def test_create_key_rejects_unknown_role(session, tenants):
    with pytest.raises(ValueError, match="'owner'"):
        await _key(session, tenants[0], "bad", role="owner")


async def test_revoke_key_is_tenant_scoped(session, tenants):
    a, b = tenants
    key = await _key(session, a, "k")
    await session.commit()
    assert await revoke_key(session, tenant_id=b, key_id=key.id) is False  # B: not found
    assert await revoke_key(session, tenant_id=a, key_id="nope") is False
    await session.commit()
    assert (await get_key_by_hash(session, key_hash=key.key_hash)).revoked_at is None

    assert await revoke_key(session, tenant_id=a, key_id=key.id) is True
    await session.commit()
    first = (await get_key_by_hash(session, key_hash=key.key_hash)).revoked_at
    assert first is not None
    assert await revoke_key(session, tenant_id=a, key_id=key.id) is True  # again: unchanged
    await session.commit()
    key_hash = key.key_hash
    session.expire_all()
    stored = await get_key_by_hash(session, key_hash=key_hash)
    assert stored.revoked_at == first
    assert not stored.is_active()
    assert [k.name for k in await list_keys(session, tenant_id=a, include_revoked=False)] == []
    assert [k.name for k in await list_keys(session, tenant_id=a)] == ["k"]


async def test_is_active_honours_expiry(session, tenants):
    now = datetime(2030, 1, 1, tzinfo=UTC)
    key = await _key(session, tenants[0], "exp", expires_at=now + timedelta(seconds=1))
    assert key.is_active(now)
    assert not key.is_active(now + timedelta(seconds=1))


async def test_touch_key_records_last_use(session, sessionmaker, tenants):
    key = await _key(session, tenants[0], "used")
    key_id = key.id
    await session.commit()
    at = datetime(2030, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    await touch_key(session, key_id=key.id, at=at)
    await session.commit()
    async with sessionmaker() as fresh:
        assert (await get_key(fresh, tenant_id=tenants[0], key_id=key.id)).last_used_at == at
    before = datetime.now(UTC)
    await touch_key(session, key_id=key_id)
    await session.commit()
    session.expire_all()
    assert (await get_key(session, tenant_id=tenants[0], key_id=key_id)).last_used_at >= before


async def test_naive_datetimes_are_rejected(session, tenants):
    with pytest.raises(Exception, match="naive datetime"):
        await _key(session, tenants[0], "naive", expires_at=datetime(2030, 1, 1))
