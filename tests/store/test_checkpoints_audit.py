"""Source checkpoints (upsert, bulk load, scoping) and the audit log, on both backends."""

from __future__ import annotations

import asyncio

from nqp.store import (
    create_key,
    delete_checkpoint,
    list_events,
    list_sources,
    load_checkpoint,
    load_checkpoints,
    record_event,
    save_checkpoint,
    save_checkpoints,
)


async def test_checkpoint_upsert_load_delete(session, tenants, rng):
    a, b = tenants
    blob = rng.integers(0, 256, size=1 << 20, dtype="uint8").tobytes()  # 1 MiB, with NULs
    assert await load_checkpoint(session, tenant_id=a, source="s") is None
    await save_checkpoint(session, tenant_id=a, source="s", data=b"v1")
    await save_checkpoint(session, tenant_id=a, source="t", data=blob)
    await session.commit()
    assert await load_checkpoint(session, tenant_id=a, source="s") == b"v1"
    await save_checkpoint(session, tenant_id=a, source="s", data=b"v2\x00")  # replaces
    await session.commit()
    assert await load_checkpoint(session, tenant_id=a, source="s") == b"v2\x00"
    assert await load_checkpoint(session, tenant_id=a, source="t") == blob
    assert await list_sources(session, tenant_id=a) == ["s", "t"]

    assert await load_checkpoint(session, tenant_id=b, source="s") is None
    assert await list_sources(session, tenant_id=b) == []
    assert await delete_checkpoint(session, tenant_id=b, source="s") is False
    await save_checkpoint(session, tenant_id=b, source="s", data=b"theirs")
    await session.commit()
    assert await load_checkpoint(session, tenant_id=a, source="s") == b"v2\x00"

    assert await delete_checkpoint(session, tenant_id=a, source="s") is True
    assert await delete_checkpoint(session, tenant_id=a, source="s") is False
    await session.commit()
    assert await list_sources(session, tenant_id=a) == ["t"]
    assert await load_checkpoint(session, tenant_id=b, source="s") == b"theirs"


async def test_load_checkpoints_in_bulk(session, tenants):
    a, b = tenants
    for i in range(5):
        await save_checkpoint(session, tenant_id=a, source=f"s{i}", data=bytes([i]))
    await save_checkpoint(session, tenant_id=b, source="s0", data=b"b")
    await session.commit()
    assert await load_checkpoints(session, tenant_id=a) == {f"s{i}": bytes([i]) for i in range(5)}
    assert await load_checkpoints(session, tenant_id=a, sources=["s3", "s1", "nope", "s3"]) == {
        "s3": b"\x03",
        "s1": b"\x01",
    }
    many = [f"x{i}" for i in range(1200)] + ["s4"]  # more than one IN (...) chunk
    assert await load_checkpoints(session, tenant_id=a, sources=many) == {"s4": b"\x04"}
    assert await load_checkpoints(session, tenant_id=b) == {"s0": b"b"}


async def test_save_checkpoints_many_rows_in_one_call(session, tenants, rng):
    a, b = tenants
    assert await save_checkpoints(session, []) == 0
    await save_checkpoint(session, tenant_id=a, source="s1", data=b"old")
    await session.commit()
    blob = rng.integers(0, 256, size=150_000, dtype="uint8").tobytes()  # an engine state's size
    rows = [(a, f"s{i}", bytes([i % 256]) * (i + 1)) for i in range(700)]  # replaces s1, adds more
    rows += [(a, "big", blob), (b, "s1", b"theirs")]  # another tenant's row in the same call
    assert await save_checkpoints(session, iter(rows)) == len(rows)
    await session.commit()
    mine = await load_checkpoints(session, tenant_id=a)
    assert mine == {src: data for tenant, src, data in rows if tenant == a}
    assert mine["s1"] == b"\x01\x01"
    assert await load_checkpoints(session, tenant_id=b) == {"s1": b"theirs"}
    # a second call replaces every row it names and leaves the others as they were
    assert await save_checkpoints(session, [(a, "s5", b"new"), (a, "big", b"small")]) == 2
    await session.commit()
    got = await load_checkpoints(session, tenant_id=a, sources=["s5", "big", "s6"])
    assert got == {"s5": b"new", "big": b"small", "s6": bytes([6]) * 7}


async def test_concurrent_saves_of_one_source_never_fail(sessionmaker, tenants):
    a, _ = tenants

    async def save(i: int) -> None:
        async with sessionmaker.begin() as s:
            await save_checkpoint(s, tenant_id=a, source="hot", data=bytes([i]))

    await asyncio.gather(*(save(i) for i in range(8)))
    async with sessionmaker() as s:
        assert await list_sources(s, tenant_id=a) == ["hot"]
        assert (await load_checkpoint(s, tenant_id=a, source="hot"))[0] in range(8)


async def test_audit_events_newest_first_filtered_and_scoped(session, tenants):
    a, b = tenants
    key = await create_key(
        session, tenant_id=a, name="adm", role="admin", key_hash="c" * 64, prefix="cccccccc"
    )
    for i in range(5):
        await record_event(
            session,
            tenant_id=a,
            actor_key_id=key.id,
            action=("key.create", "config.put")[i % 2],
            target=f"t{i}",
            details={"i": i},
        )
    await record_event(session, tenant_id=b, actor_key_id=None, action="key.create")
    system = await record_event(session, tenant_id=None, actor_key_id=None, action="boot")
    await session.commit()
    assert system.details == {}
    assert system.created_at.tzinfo is not None

    events = await list_events(session, tenant_id=a)
    assert [e.target for e in events] == ["t4", "t3", "t2", "t1", "t0"]
    assert [e.details["i"] for e in events] == [4, 3, 2, 1, 0]
    assert all(e.actor_key_id == key.id for e in events)
    puts = await list_events(session, tenant_id=a, action="config.put")
    assert [e.target for e in puts] == ["t3", "t1"]
    page1 = await list_events(session, tenant_id=a, limit=2)
    page2 = await list_events(session, tenant_id=a, limit=2, before_id=page1[-1].id)
    assert [e.target for e in page1 + page2] == ["t4", "t3", "t2", "t1"]
    theirs = await list_events(session, tenant_id=b)
    assert [(e.action, e.target, e.actor_key_id) for e in theirs] == [("key.create", None, None)]
