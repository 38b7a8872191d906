"""Versioned configs on both backends: increments, history, rollback, scoping, concurrency."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from nqp.store import (
    Config,
    config_history,
    create_key,
    get_config,
    put_config,
    rollback_config,
)


async def test_versions_increment_and_history_is_newest_first(session, tenants):
    a, _ = tenants
    key = await create_key(
        session, tenant_id=a, name="ops", role="admin", key_hash="a" * 64, prefix="aaaaaaaa"
    )
    assert await get_config(session, tenant_id=a, service="engine") is None
    for i in range(1, 4):
        version = await put_config(
            session, tenant_id=a, service="engine", data={"horizon": i}, created_by=key.id
        )
        assert version == i
    assert (
        await put_config(session, tenant_id=a, service="limits", data={"rps": 5}, created_by=None)
        == 1
    )  # versions count per service
    await session.commit()

    latest = await get_config(session, tenant_id=a, service="engine")
    assert (latest.version, latest.data, latest.created_by) == (3, {"horizon": 3}, key.id)
    assert latest.created_at.tzinfo is not None
    assert (await get_config(session, tenant_id=a, service="engine", version=2)).data == {
        "horizon": 2
    }
    assert await get_config(session, tenant_id=a, service="engine", version=9) is None
    history = await config_history(session, tenant_id=a, service="engine")
    assert [(c.version, c.data["horizon"]) for c in history] == [(3, 3), (2, 2), (1, 1)]
    assert [
        c.version for c in await config_history(session, tenant_id=a, service="engine", limit=2)
    ] == [3, 2]


async def test_rollback_puts_an_old_version_again(session, tenants):
    a, _ = tenants
    for data in ({"x": 1}, {"x": 2, "nested": {"y": [1, 2]}}, {"x": 3}):
        await put_config(session, tenant_id=a, service="s", data=data, created_by=None)
    assert await rollback_config(session, tenant_id=a, service="s", version=2, created_by=None) == 4
    assert (
        await rollback_config(session, tenant_id=a, service="s", version=7, created_by=None) is None
    )
    await session.commit()
    latest = await get_config(session, tenant_id=a, service="s")
    assert (latest.version, latest.data) == (4, {"x": 2, "nested": {"y": [1, 2]}})
    history = await config_history(session, tenant_id=a, service="s")
    assert [c.data["x"] for c in history] == [2, 3, 2, 1]  # history is never rewritten


async def test_configs_are_tenant_scoped(session, tenants):
    a, b = tenants
    await put_config(session, tenant_id=a, service="engine", data={"who": "a"}, created_by=None)
    await put_config(session, tenant_id=a, service="engine", data={"who": "a2"}, created_by=None)
    assert await get_config(session, tenant_id=b, service="engine") is None
    assert await get_config(session, tenant_id=b, service="engine", version=1) is None
    assert await config_history(session, tenant_id=b, service="engine") == []
    assert (
        await rollback_config(session, tenant_id=b, service="engine", version=1, created_by=None)
        is None
    )
    assert (
        await put_config(session, tenant_id=b, service="engine", data={"who": "b"}, created_by=None)
        == 1
    )
    await session.commit()
    assert (await get_config(session, tenant_id=a, service="engine")).data == {"who": "a2"}
    assert (await get_config(session, tenant_id=b, service="engine")).data == {"who": "b"}


async def test_concurrent_puts_get_distinct_consecutive_versions(sessionmaker, tenants):
    a, _ = tenants

    async def put(i: int) -> int:
        async with sessionmaker() as s:
            version = await put_config(
                s, tenant_id=a, service="hot", data={"i": i}, created_by=None
            )
            await asyncio.sleep(0.005)  # hold the transaction open a little: force overlap
            await s.commit()
            return version

    versions = await asyncio.gather(*(put(i) for i in range(10)))
    assert sorted(versions) == list(range(1, 11))
    async with sessionmaker() as s:
        rows = (
            await s.execute(
                select(Config.version, Config.data).where(
                    Config.tenant_id == a, Config.service == "hot"
                )
            )
        ).all()
    assert sorted(v for v, _ in rows) == list(range(1, 11))
    by_version = dict(zip(versions, range(10), strict=True))
    assert all(data == {"i": by_version[v]} for v, data in rows)  # each caller got its own row
