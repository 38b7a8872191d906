"""Storage and memory per source and per prediction, measured (docs/operations.md, sizing).

Streams a few points through :class:`nqp.Platform` for ``--sources`` sources, stores the
resulting predictions (as the gateway stores them: the whole prediction as JSON plus the
indexed columns) and one checkpoint per source through :mod:`nqp.store`, then reports the
bytes the database uses per row, the checkpoint size and the engine's memory per source.
One JSON line per figure.

    python deploy/tools/measure_storage.py --database-url postgresql://postgres@127.0.0.1/nqp_size
    python deploy/tools/measure_storage.py               # SQLite in a temporary directory
    python deploy/tools/measure_storage.py --sources 5000 --points 3 --memory-only

The PostgreSQL database must exist and be empty (the script migrates it; it does not drop
anything). Engine settings are the defaults (``NQP_*`` environment variables apply).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from nqp import Platform, store
from nqp.config import Settings


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _emit(figure: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"figure": figure, "value": round(value, 1), "unit": unit, **extra}))


def make_rows(
    n_sources: int, points: int, seed: int
) -> tuple[list[store.PredictionRow], dict[str, bytes], float]:
    """Predictions (the rows the gateway stores), one checkpoint per source, RSS growth in MiB."""
    rng = np.random.default_rng(seed)
    platform = Platform(Settings())
    platform.process("warm-up", [1.0])  # compile before measuring memory
    start_rss = _rss_mib()
    rows: list[store.PredictionRow] = []
    walks = np.cumsum(rng.normal(size=(n_sources, points)), axis=1)
    for k in range(points):
        items = [{"source": f"s{i}", "data": [float(walks[i, k])]} for i in range(n_sources)]
        for item, preds in zip(items, platform.process_many_json(items), strict=True):
            for p in preds:
                payload = p | {"source": item["source"]}
                rows.append(
                    (
                        item["source"],
                        payload["prediction_id"],
                        payload["sequence"],
                        payload["timestamp"],
                        payload["direction"],
                        payload["confidence"],
                        orjson.dumps(payload).decode(),  # the gateway's payload text
                    )
                )
    grown = _rss_mib() - start_rss
    state = sum(v[0].nbytes for st in platform.store.states.values() for v in st.arrays().values())
    _emit("engine state arrays per source", state / 1024, "KiB")
    checkpoints = {f"s{i}": platform.checkpoint(f"s{i}") for i in range(n_sources)}
    return rows, checkpoints, grown


async def store_rows(
    url: str, rows: list[store.PredictionRow], checkpoints: dict[str, bytes] | None = None
) -> None:
    """Store predictions, or (when ``checkpoints`` is given) only the checkpoints."""
    await store.migrate(url)
    engine = store.make_engine(url)
    try:
        async with store.make_sessionmaker(engine)() as session:
            tenant = await store.get_or_create_tenant(session, name="sizing")
            if checkpoints is None:
                for i in range(0, len(rows), 1000):
                    await store.insert_predictions(
                        session, tenant_id=tenant.id, rows=rows[i : i + 1000]
                    )
            else:
                await store.save_checkpoints(
                    session, [(tenant.id, source, data) for source, data in checkpoints.items()]
                )
            await session.commit()
    finally:
        await engine.dispose()


async def postgres_sizes(url: str) -> dict[str, int]:
    from sqlalchemy import text

    engine = store.make_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for table in ("predictions", "source_checkpoints"):
                size = await conn.scalar(text(f"SELECT pg_total_relation_size('{table}')"))
                out[table] = int(size)
            return out
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--memory-only", action="store_true", help="Measure the engine only; store nothing."
    )
    args = parser.parse_args()
    with threadpool_limits(1):
        rows, checkpoints, grown = make_rows(args.sources, args.points, args.seed)
    _emit("engine RSS growth per source", grown * 1024 / args.sources, "KiB", sources=args.sources)
    sizes = [len(c) for c in checkpoints.values()]
    _emit("checkpoint size", float(np.median(sizes)), "bytes", sources=len(sizes))
    payload = [len(r[6].encode()) for r in rows]
    _emit("prediction payload JSON", float(np.median(payload)), "bytes", rows=len(rows))
    if args.memory_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'nqp.db'}"
        if url.startswith("sqlite"):
            db = Path(tmp) / "nqp.db"
            asyncio.run(store_rows(url, []))
            empty = os.path.getsize(db)
            asyncio.run(store_rows(url, rows))
            with_rows = os.path.getsize(db)
            asyncio.run(store_rows(url, [], checkpoints))
            _emit("SQLite bytes per prediction row", (with_rows - empty) / len(rows), "bytes")
            _emit("SQLite bytes per checkpoint row",
                  (os.path.getsize(db) - with_rows) / len(checkpoints), "bytes")  # fmt: skip
        else:
            asyncio.run(store_rows(url, rows))
            asyncio.run(store_rows(url, [], checkpoints))
            sizes_pg = asyncio.run(postgres_sizes(url))
            _emit("PostgreSQL bytes per prediction row (table + indexes + TOAST)",
                  sizes_pg["predictions"] / len(rows), "bytes", rows=len(rows))  # fmt: skip
            _emit("PostgreSQL bytes per checkpoint row",
                  sizes_pg["source_checkpoints"] / len(checkpoints), "bytes")  # fmt: skip


if __name__ == "__main__":
    main()
