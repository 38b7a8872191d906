"""Stored predictions on both backends: bulk insert, keyset paging, scoping, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import select, text

from nqp.store import (
    Prediction,
    PredictionRow,
    delete_predictions,
    delete_predictions_before,
    insert_predictions,
    query_predictions,
)
from nqp.store.predictions import decode_cursor, encode_cursor


def _rows(rng, n, sources=("s0", "s1", "s2"), prefix="p"):
    # few distinct timestamps, so many rows tie on ts and the id breaks the tie
    ts = rng.integers(0, 40, size=n) * 0.25 + 1.7e9
    return [
        {
            "source": sources[i % len(sources)],
            "prediction_id": f"{prefix}{i:05d}",
            "sequence": i,
            "ts": float(ts[i]),
            "direction": ("up", "down", "hold")[i % 3],
            "confidence": float(rng.random()),
            "payload": {"i": i, "magnitude": float(rng.normal())},
        }
        for i in range(n)
    ]


def _tuples(rows) -> list[PredictionRow]:
    """The dict rows above as insert_predictions takes them (payload as JSON text)."""
    return [
        (
            r["source"],
            r["prediction_id"],
            r["sequence"],
            r["ts"],
            r["direction"],
            r["confidence"],
            orjson.dumps(r["payload"]).decode(),
        )
        for r in rows
    ]


async def _page_all(session, **kw):
    rows, cursor, pages = [], None, 0
    while True:
        page, cursor = await query_predictions(session, cursor=cursor, **kw)
        rows += page
        pages += 1
        assert pages < 1000
        if cursor is None:
            return rows, pages


@pytest.mark.parametrize("limit", [3, 7, 125, 250, 1000])
async def test_keyset_paging_returns_every_row_once_in_order(session, tenants, rng, limit):
    a, b = tenants
    rows = _rows(rng, 250)
    assert await insert_predictions(session, tenant_id=a, rows=_tuples(rows)) == 250
    await insert_predictions(session, tenant_id=b, rows=_tuples(_rows(rng, 20, prefix="b")))
    await session.commit()

    got, pages = await _page_all(session, tenant_id=a, limit=limit)
    assert pages == -(-250 // limit)  # ceil: a last page that is exactly full ends the run
    assert sorted(p.prediction_id for p in got) == sorted(r["prediction_id"] for r in rows)
    assert len({p.id for p in got}) == 250
    keys = [(p.ts, p.id) for p in got]
    assert keys == sorted(keys)
    # brute force reference: the inserted rows sorted by ts, ties in insertion (id) order
    by_pid = {r["prediction_id"]: r for r in rows}
    assert [p.prediction_id for p in got] == [
        r["prediction_id"] for r in sorted(rows, key=lambda r: (r["ts"], r["sequence"]))
    ]
    first = got[0]
    expected = by_pid[first.prediction_id]
    assert (first.source, first.sequence, first.ts, first.direction, first.payload) == (
        expected["source"],
        expected["sequence"],
        expected["ts"],
        expected["direction"],
        expected["payload"],
    )
    assert first.confidence == expected["confidence"]  # float64 round-trips exactly
    assert first.tenant_id == a
    assert first.created_at.tzinfo is not None

    desc, _ = await _page_all(session, tenant_id=a, limit=limit, descending=True)
    assert [p.id for p in desc] == [p.id for p in reversed(got)]


async def test_filters_by_source_and_half_open_time_range(session, tenants, rng):
    a, b = tenants
    rows = _rows(rng, 120)
    await insert_predictions(session, tenant_id=a, rows=_tuples(rows))
    await session.commit()
    start, end = 1.7e9 + 2.5, 1.7e9 + 7.0
    got, _ = await _page_all(session, tenant_id=a, source="s1", start=start, end=end, limit=5)
    expected = sorted(
        (r for r in rows if r["source"] == "s1" and start <= r["ts"] < end),
        key=lambda r: (r["ts"], r["sequence"]),
    )
    assert len(expected) > 5
    assert [p.prediction_id for p in got] == [r["prediction_id"] for r in expected]
    assert await query_predictions(session, tenant_id=b, limit=10) == ([], None)
    assert await query_predictions(session, tenant_id=b, source="s1", limit=10) == ([], None)


async def test_paging_is_stable_when_rows_arrive_between_pages(session, tenants, rng):
    a, _ = tenants
    rows = _rows(rng, 30, sources=("s",))
    await insert_predictions(session, tenant_id=a, rows=_tuples(rows))
    await session.commit()
    page, cursor = await query_predictions(session, tenant_id=a, limit=10)
    last_ts = page[-1].ts
    late = [
        dict(rows[0], prediction_id="late-before", ts=last_ts - 1.0),
        dict(rows[0], prediction_id="late-after", ts=last_ts + 100.0),
    ]
    await insert_predictions(session, tenant_id=a, rows=_tuples(late))
    await session.commit()
    rest = []
    while cursor is not None:
        more, cursor = await query_predictions(session, tenant_id=a, limit=10, cursor=cursor)
        rest += more
    seen = [p.prediction_id for p in page + rest]
    assert len(seen) == len(set(seen)) == 31
    assert "late-after" in seen
    assert "late-before" not in seen  # behind the cursor: not revisited


async def test_duplicate_prediction_ids_are_stored_once(session, tenants, rng):
    a, _ = tenants
    rows = _rows(rng, 10)
    assert await insert_predictions(session, tenant_id=a, rows=_tuples(rows)) == 10
    assert (
        await insert_predictions(
            session, tenant_id=a, rows=_tuples(rows[5:] + _rows(rng, 3, prefix="n"))
        )
        == 3
    )
    assert await insert_predictions(session, tenant_id=a, rows=[]) == 0
    await session.commit()
    got, _ = await query_predictions(session, tenant_id=a, limit=100)
    assert len(got) == 13


async def test_invalid_cursor_and_limit(session, tenants):
    with pytest.raises(ValueError, match="invalid predictions cursor"):
        await query_predictions(session, tenant_id=tenants[0], limit=5, cursor="garbage")
    with pytest.raises(ValueError, match="limit"):
        await query_predictions(session, tenant_id=tenants[0], limit=0)
    assert decode_cursor(encode_cursor(0.1 + 0.2, 7)) == (0.1 + 0.2, 7)  # exact float


async def test_delete_predictions_of_one_source_and_tenant(session, tenants, rng):
    a, b = tenants
    await insert_predictions(session, tenant_id=a, rows=_tuples(_rows(rng, 30)))
    await insert_predictions(session, tenant_id=b, rows=_tuples(_rows(rng, 30, prefix="b")))
    await session.commit()
    assert await delete_predictions(session, tenant_id=a, source="s0") == 10
    assert await delete_predictions(session, tenant_id=a, source="s0") == 0
    await session.commit()
    left, _ = await query_predictions(session, tenant_id=a, limit=100)
    assert sorted({p.source for p in left}) == ["s1", "s2"]
    assert len(left) == 20
    theirs, _ = await query_predictions(session, tenant_id=b, source="s0", limit=100)
    assert len(theirs) == 10


async def test_retention_deletes_rows_stored_before_the_cutoff(session, tenants, rng):
    """Retention goes by storage time (created_at), whatever the points' own timestamps."""
    a, b = tenants
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows_a, rows_b = _rows(rng, 60), _rows(rng, 40, prefix="b")
    for k, r in enumerate(rows_a + rows_b):
        r["created_at"] = base + timedelta(seconds=k % 10)
    for tenant, rows in ((a, rows_a), (b, rows_b)):
        for k in range(10):
            stored_at = base + timedelta(seconds=k)
            group = [r for r in rows if r["created_at"] == stored_at]
            await insert_predictions(
                session, tenant_id=tenant, rows=_tuples(group), created_at=stored_at
            )
    await session.commit()
    cutoff = base + timedelta(seconds=5)  # rows stored exactly at the cutoff are kept
    older = sum(r["created_at"] < cutoff for r in rows_a + rows_b)
    assert 0 < older < 100
    assert await delete_predictions_before(session, cutoff=cutoff) == older
    await session.commit()
    for tenant, rows in ((a, rows_a), (b, rows_b)):
        left, _ = await query_predictions(session, tenant_id=tenant, limit=1000)
        assert sorted(p.prediction_id for p in left) == sorted(
            r["prediction_id"] for r in rows if r["created_at"] >= cutoff
        )
    assert await delete_predictions_before(session, cutoff=cutoff) == 0


async def test_insert_stores_what_the_orm_stores(session, tenants, rng):
    """The driver-level insert writes the same column values (datetime text on SQLite,
    JSON text) as an ORM insert of the same prediction, and reads back equal."""
    a, b = tenants
    stored_at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2)))
    (row,) = _rows(rng, 1)
    row["payload"] = {"prediction_id": "x", "value": 0.1 + 0.2, "nested": {"n": [1, None]}}
    assert (
        await insert_predictions(session, tenant_id=a, rows=_tuples([row]), created_at=stored_at)
        == 1
    )
    orm = row | {"prediction_id": "orm-twin"}
    # the other tenant's: a point (source, sequence, timestamp) is stored once per tenant
    session.add(Prediction(tenant_id=b, created_at=stored_at, **orm))
    await session.commit()
    raw = (
        await session.execute(
            text(
                "SELECT prediction_id, source, sequence, ts, created_at, direction, confidence, "
                "CAST(payload AS TEXT) FROM predictions ORDER BY id"
            )
        )
    ).all()
    assert [r[0] for r in raw] == [row["prediction_id"], "orm-twin"]
    assert raw[0][1:] == raw[1][1:]  # every stored value, in the driver's own form
    got = (await session.scalars(select(Prediction).order_by(Prediction.id))).all()
    assert got[0].created_at == stored_at
    assert got[0].created_at.tzinfo is not None
    assert got[0].payload == row["payload"]
    assert (got[0].source, got[0].sequence, got[0].ts, got[0].direction) == (
        row["source"],
        row["sequence"],
        row["ts"],
        row["direction"],
    )
    assert got[0].confidence == row["confidence"]


async def test_duplicates_within_one_call_are_stored_once(session, tenants, rng):
    a, _ = tenants
    rows = _tuples(_rows(rng, 4))
    assert await insert_predictions(session, tenant_id=a, rows=rows + rows[1:3]) == 4
    await session.commit()
    got, _ = await query_predictions(session, tenant_id=a, limit=100)
    assert sorted(p.prediction_id for p in got) == sorted(r[1] for r in rows)


async def test_a_point_is_stored_once_per_tenant(session, tenants, rng):
    """The key is (tenant, source, timestamp, sequence), of which prediction_id is a hash: a
    row with a stored key is skipped (whatever its id); another tenant, source, sequence or
    time is new. A row equal in both key and id is skipped too (the test above)."""
    a, b = tenants
    (first,) = _tuples(_rows(rng, 1))
    source, pid, seq, ts, *rest = first
    assert await insert_predictions(session, tenant_id=a, rows=[first]) == 1
    assert (
        await insert_predictions(session, tenant_id=a, rows=[(source, "other", seq, ts, *rest)])
        == 0
    )
    variants = [
        ("s9", "v1", seq, ts, *rest),
        (source, "v2", seq + 1, ts, *rest),
        (source, "v3", seq, ts + 0.25, *rest),
    ]
    assert await insert_predictions(session, tenant_id=a, rows=variants) == 3
    # another tenant's same point (its id differs: the id hashes the tenant's source)
    assert await insert_predictions(session, tenant_id=b, rows=[(source, "b", seq, ts, *rest)]) == 1
    await session.commit()
    got, _ = await query_predictions(session, tenant_id=a, limit=10)
    assert sorted(p.prediction_id for p in got) == sorted([pid, "v1", "v2", "v3"])


async def test_insert_is_part_of_the_callers_transaction(session, tenants, rng):
    a, _ = tenants
    assert await insert_predictions(session, tenant_id=a, rows=_tuples(_rows(rng, 5))) == 5
    await session.rollback()
    assert await query_predictions(session, tenant_id=a, limit=10) == ([], None)


async def test_large_inserts_count_and_keep_the_rows_order(session, tenants, rng):
    """More rows than one SQLite statement holds (2,048): every statement's new rows are
    counted, duplicates across statements skipped, ids follow the rows' order."""
    a, _ = tenants
    rows = _tuples(_rows(rng, 2300, sources=("s",)))
    assert await insert_predictions(session, tenant_id=a, rows=rows[:100]) == 100
    again = rows[50:] + rows[2290:]  # 50 stored before, 10 twice within this call
    assert await insert_predictions(session, tenant_id=a, rows=again) == 2200
    await session.commit()
    stored = (await session.scalars(select(Prediction).order_by(Prediction.id))).all()
    assert [p.prediction_id for p in stored] == [r[1] for r in rows]
