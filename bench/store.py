"""Storage: checkpoint format and checkpointing many sources, each against the old way.

Figure ``checkpoint_codec``: making and restoring the checkpoints of ``--sources`` engine
sources (default settings, a few points each), in checkpoint format 2 (what
:meth:`nqp.Platform.checkpoint` writes) against format 1, the ``.npz`` archive of one
member per array written here as the earlier code did and read back by the same
:meth:`~nqp.Platform.restore` (which still reads it). Milliseconds per source, medians over
``--repeats`` rounds, and the sizes.

Figure ``checkpoint_save``: ``--sources`` checkpoints of ``--bytes`` each (random bytes, the
size of a default engine state) saved in one transaction, alternately with
:func:`nqp.store.save_checkpoint` once per source (what the gateway did per source before)
and with one :func:`nqp.store.save_checkpoints` call (what its periodic and shutdown
checkpoints do now). Wall and CPU seconds of this process (the gateway's share: building
and sending statements; the database server's own work is outside it on PostgreSQL), medians
over ``--repeats`` rounds, and their ratios. Every round replaces the same rows, as a
periodic checkpoint does.

Figure ``prediction_insert`` (SQLite only): ``--insert-rounds`` rounds of 50,000 predictions
(the payload of a real one; 1,000 sources, new sequence numbers and timestamps, ids hashed
as the engine makes them) stored as the gateway's writer stores them
(:func:`nqp.store.insert_predictions`, 20,000 rows a transaction) into a fresh database,
once with SQLite's default page cache (2,000 KiB) and once with the one the service sets
(:data:`nqp.store.db.SQLITE_CACHE_KIB`). CPU µs a row of this process (SQLite runs in it)
in the first and the last round, and the rows then stored: the cost grows with the table
as index pages fall out of the cache.

Run: ``.venv/bin/python bench/store.py`` (SQLite in a temporary directory) or with
``--database-url postgresql://postgres@127.0.0.1:5432/DB`` (an existing database; its
tables are migrated to the current schema and a tenant ``bench-store`` is added).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np
from sqlalchemy import event
from threadpoolctl import threadpool_limits

from nqp import Platform
from nqp.engine.platform import ProcessItem
from nqp.store import (
    get_or_create_tenant,
    insert_predictions,
    make_engine,
    make_sessionmaker,
    migrate_sync,
    save_checkpoint,
    save_checkpoints,
)
from nqp.store.db import SQLITE_CACHE_KIB

INSERT_ROUND = 50_000
INSERT_TRANSACTION = 20_000  # the gateway writer's largest transaction (_WRITER_BATCH)


async def _rounds(url: str, sources: int, size: int, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    blobs = [
        (f"s{i}", rng.integers(0, 256, size, dtype=np.uint8).tobytes()) for i in range(sources)
    ]
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        tenant = (await get_or_create_tenant(session, name="bench-store")).id
        await session.commit()

    async def per_source() -> None:
        async with sessions() as session:
            for source, data in blobs:
                await save_checkpoint(session, tenant_id=tenant, source=source, data=data)
            await session.commit()

    async def many_rows() -> None:
        async with sessions() as session:
            await save_checkpoints(session, [(tenant, source, data) for source, data in blobs])
            await session.commit()

    times: dict[str, dict[str, list[float]]] = {
        "per_source": {"wall": [], "cpu": []},
        "many_rows": {"wall": [], "cpu": []},
    }
    await many_rows()  # rows exist from here on: every timed round replaces them
    for _ in range(repeats):
        for name, call in (("per_source", per_source), ("many_rows", many_rows)):
            cpu, wall = time.process_time(), time.perf_counter()
            await call()
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    await engine.dispose()
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in times.items()}
    return {
        "per_source_wall_s": round(med["per_source"]["wall"], 3),
        "per_source_cpu_s": round(med["per_source"]["cpu"], 3),
        "many_rows_wall_s": round(med["many_rows"]["wall"], 3),
        "many_rows_cpu_s": round(med["many_rows"]["cpu"], 3),
        "wall_ratio": round(med["per_source"]["wall"] / med["many_rows"]["wall"], 2),
        "cpu_ratio": round(med["per_source"]["cpu"] / med["many_rows"]["cpu"], 2),
    }


async def _insert_rounds(url: str, rounds: int, cache_kib: int | None) -> dict[str, object]:
    """CPU µs a row of the first and last of ``rounds`` rounds of predictions stored."""
    engine = make_engine(url)
    if cache_kib is not None:  # after the service's own pragmas: replaces its cache size

        def set_cache(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
            cursor.close()

        event.listen(engine.sync_engine, "connect", set_cache)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        tenant = (await get_or_create_tenant(session, name="bench-insert")).id
        await session.commit()
    platform = Platform()
    (pred,) = platform.process_many_json([ProcessItem("t/s", [1.0], [1.7e9], None)])[0]
    payload = json.dumps(pred, separators=(",", ":"))
    us: list[float] = []
    for r in range(rounds):
        rows = []
        for i in range(INSERT_ROUND):  # points of 1,000 sources, ids made as the engine does
            source, seq = f"s{i % 1000}", r * INSERT_ROUND + i
            ts = 1.7e9 + seq
            pid = hashlib.blake2b(f"{source}\x00{seq}\x00{ts!r}".encode(), digest_size=16)
            rows.append((source, pid.hexdigest(), seq, ts, "hold", 0.5, payload))
        cpu = time.process_time()
        for a in range(0, INSERT_ROUND, INSERT_TRANSACTION):
            async with sessions() as session:
                await insert_predictions(
                    session, tenant_id=tenant, rows=rows[a : a + INSERT_TRANSACTION]
                )
                await session.commit()
        us.append((time.process_time() - cpu) * 1e6 / INSERT_ROUND)
    await engine.dispose()
    return {
        "first_round_us_per_row": round(us[0], 2),
        "last_round_us_per_row": round(us[-1], 2),
        "rows": rounds * INSERT_ROUND,
        "payload_bytes": len(payload),
    }


def _format_1(platform: Platform, source: str) -> bytes:
    """The source's checkpoint as format 1 wrote it: an .npz archive, one member per array."""
    store = platform.store
    row = store.row(source)
    arrays = {
        f"{name}.{field}": value[row]
        for name, state in store.states.items()
        for field, value in state.arrays().items()
    }
    header = {"version": 1, "source": source, "fingerprint": store.fingerprint}
    buf = io.BytesIO()
    header_bytes = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buf, __header__=header_bytes, allow_pickle=True, **arrays)
    return buf.getvalue()


def checkpoint_codec(sources: int, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    platform = Platform()
    names = [f"t/s{i}" for i in range(sources)]
    for k in range(5):
        items = [ProcessItem(s, [float(rng.standard_normal())], [1.7e9 + k], None) for s in names]
        platform.process_many_json(items)
    makers = {
        "format_2": lambda s: platform.checkpoint(s),
        "format_1": lambda s: _format_1(platform, s),
    }
    ms: dict[str, list[float]] = {f"{f}_{op}": [] for f in makers for op in ("make", "restore")}
    size: dict[str, int] = {}
    target = Platform()
    for _ in range(repeats):
        for fmt, make in makers.items():
            start = time.perf_counter()
            blobs = [make(s) for s in names]
            ms[f"{fmt}_make"].append((time.perf_counter() - start) * 1e3 / sources)
            start = time.perf_counter()
            for s, data in zip(names, blobs, strict=True):
                target.restore(s, data)
            ms[f"{fmt}_restore"].append((time.perf_counter() - start) * 1e3 / sources)
            size[fmt] = len(blobs[0])
    med = {k: statistics.median(v) for k, v in ms.items()}
    return {f"{k}_ms": round(v, 4) for k, v in med.items()} | {
        "format_2_bytes": size["format_2"],
        "format_1_bytes": size["format_1"],
        "make_ratio": round(med["format_1_make"] / med["format_2_make"], 1),
        "restore_ratio": round(med["format_1_restore"] / med["format_2_restore"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--bytes", type=int, default=135_000, help="Checkpoint size.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    parser.add_argument("--insert-rounds", type=int, default=12, help="0: no prediction_insert.")
    args = parser.parse_args()
    with threadpool_limits(1):
        codec = checkpoint_codec(min(args.sources, 500), args.repeats)
    print(
        json.dumps(
            {"figure": "checkpoint_codec", "sources": min(args.sources, 500)}
            | codec
            | {"loadavg_1m": round(os.getloadavg()[0], 2)}
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        migrate_sync(url)
        line = asyncio.run(_rounds(url, args.sources, args.bytes, args.repeats))
    backend = url.split(":", 1)[0].split("+", 1)[0]
    print(
        json.dumps(
            {"figure": "checkpoint_save", "backend": backend, "sources": args.sources}
            | {"bytes_each": args.bytes}
            | line
            | {"loadavg_1m": round(os.getloadavg()[0], 2)}
        ),
        flush=True,
    )
    if args.insert_rounds <= 0:
        return
    out: dict[str, object] = {}
    for name, cache in (("sqlite_default", 2000), ("service", None)):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/insert.db"
            migrate_sync(url)
            line = asyncio.run(_insert_rounds(url, args.insert_rounds, cache))
        out |= {f"{name}_{k}": v for k, v in line.items() if k not in ("rows", "payload_bytes")}
        out |= {"rows": line["rows"], "payload_bytes": line["payload_bytes"]}
    print(
        json.dumps(
            {"figure": "prediction_insert", "cache_kib": SQLITE_CACHE_KIB}
            | out
            | {
                "last_round_ratio": round(
                    out["sqlite_default_last_round_us_per_row"]  # type: ignore[operator]
                    / out["service_last_round_us_per_row"],
                    2,
                )
            }
            | {"loadavg_1m": round(os.getloadavg()[0], 2)}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
