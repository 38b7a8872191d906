"""Everything one gateway process holds: database, platform, batcher, hub, limits, metrics.

Embedded mode keeps it all in one process: SQLite (or PostgreSQL), the engine behind a
micro-batcher, the WebSocket hub fed directly, an in-process rate limiter (Redis-shared
when ``NQP_SERVICE__REDIS_URL`` is set). Source state lives in the platform; it is
checkpointed to the database periodically, after erasure requests and on shutdown, and
restored from there the first time a source is seen after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from nqp import store
from nqp.cache import TieredCache, TTLCache
from nqp.config import Settings
from nqp.engine import ProcessItem
from nqp.engine.process import EngineHost, PredictionBatch, shard_of
from nqp.exceptions import InvalidParameterError
from nqp.service.batcher import ShardedBatcher
from nqp.service.breaker import CircuitBreaker
from nqp.service.hub import PredictionHub
from nqp.service.metrics import Metrics
from nqp.service.remote import StreamGateway
from nqp.service.security import Principal, Role, generate_key, hash_key
from nqp.service.waits import Ends

__all__ = ["Runtime", "internal_source", "public_source"]

log = logging.getLogger("nqp.service")

#: Sources checkpointed per engine call and transaction (about 135 KB each by default).
CHECKPOINT_CHUNK = 500

_RETENTION_EVERY_S = 3600.0
_GC_YOUNG = 20_000  # allocations between young-generation collections (CPython: 700)
# The writer stores what arrived in _WRITER_FLUSH_S (or while it was storing) in one
# transaction of up to _WRITER_BATCH predictions (at least one whole request): on SQLite a
# transaction rewrites every index page it touches, so fewer, larger ones cost less CPU a row
# (a batch job: 0.02 s / 1,000 rows took 1.75 s of gateway CPU, 0.1 s / 20,000 took 1.6 s).
_WRITER_FLUSH_S = 0.1
_WRITER_BATCH = 20_000
_WRITER_MAX_ROWS = 100_000  # predictions waiting to be stored, at most (more are dropped)


def internal_source(tenant_id: str, source: str) -> str:
    """The platform's name of a tenant's source (tenants never share engine state)."""
    return f"{tenant_id}/{source}"


def public_source(internal: str) -> tuple[str, str]:
    tenant, _, source = internal.partition("/")
    return tenant, source


@dataclass
class _Writer:
    """Buffers predictions and inserts them in batches off the request path.

    The queue holds one ``(tenant_id, PredictionBatch)`` per request (or a future: a flush
    point); ``rows`` counts the predictions in it, bounded by :data:`_WRITER_MAX_ROWS`.
    ``flushes`` counts the flush points queued and not yet reached: while there are any the
    writer stores at once instead of first gathering rows for :data:`_WRITER_FLUSH_S`
    (``flush_wanted`` wakes it from that wait).
    """

    queue: asyncio.Queue[tuple[str, PredictionBatch] | asyncio.Future[None]] = field(
        default_factory=asyncio.Queue
    )
    rows: int = 0
    task: asyncio.Task[None] | None = None
    flushes: int = 0
    flush_wanted: asyncio.Event = field(default_factory=asyncio.Event)


class Runtime:
    """The process-wide state of the gateway (``app.state.runtime``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        svc = settings.service
        self.database_url = svc.database_url or f"sqlite:///{(self.data_dir / 'nqp.db').resolve()}"
        self.metrics = Metrics()
        # labelled children looked up once: a lookup per request cost more than the update
        self._request_stage = self.metrics.stage.labels("request")
        self._by_direction = {d: self.metrics.predictions.labels(d) for d in ("up", "down", "hold")}
        self.hub = PredictionHub()
        # distributed mode: workers own the engine state; this gateway relays over Kafka and
        # keeps an idle in-process platform only to read checkpoints (source summaries)
        self.distributed = svc.mode == "distributed"
        self.stream: StreamGateway | None = None
        if self.distributed:
            if not settings.stream.bootstrap_servers:
                raise InvalidParameterError(
                    "service.mode='distributed' needs stream.bootstrap_servers "
                    "(NQP_STREAM__BOOTSTRAP_SERVERS)."
                )
            self.stream = StreamGateway(
                settings,
                self.hub,
                gateway_id=settings.stream.gateway_id,
                kafka_options=settings.stream.kafka_options,
            )
        self.platform = EngineHost(
            settings,
            in_process=self.distributed or not svc.engine_process,
            processes=svc.engine_process_count,
        )
        # one batcher per engine process: each steps its own sources' batches, unblocked
        self.batcher: ShardedBatcher[ProcessItem, PredictionBatch] = ShardedBatcher(
            self._process,
            shard_of=lambda item: self.engine_shard(item.source),
            shards=self.platform.processes,
            max_batch_size=svc.batch_max_size,
            max_wait_ms=svc.batch_max_wait_ms,
            max_queue=svc.queue_max,
        )
        # read when scraped: no gauge update per request
        self.metrics.queue_depth.set_function(lambda: self.batcher.queue_depth)
        self.started_at = time.time()
        self.jwt_secret = ""
        self._writer = _Writer()
        self._dirty: set[str] = set()
        self._known: set[str] = set()
        self._source_locks: dict[str, asyncio.Lock] = {}
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._principal_cache: dict[str, tuple[float, Principal | None]] = {}
        self._principal_pending: dict[str, asyncio.Future[Principal | None]] = {}
        # Rate limits and quotas: in process, or shared through Redis when configured, with a
        # circuit breaker; while Redis is unreachable each process limits on its own. Sliding
        # window counters: O(1) a hit (a moving window keeps one entry per request).
        self._limit_pool: Any = None
        local = MemoryStorage()
        self._local_rate = SlidingWindowCounterRateLimiter(local)
        self._local_quota = FixedWindowRateLimiter(local)
        if svc.redis_url:
            import redis.asyncio as aioredis

            self._limit_pool = aioredis.ConnectionPool.from_url(
                svc.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5
            )
            shared = RedisStorage(
                "async+" + svc.redis_url,
                implementation="redispy",
                key_prefix="nqp-limits",
                wrap_exceptions=True,
                connection_pool=self._limit_pool,
            )
            self.rate_limiter = SlidingWindowCounterRateLimiter(shared)
            self.quota_limiter = FixedWindowRateLimiter(shared)
        else:
            self.rate_limiter, self.quota_limiter = self._local_rate, self._local_quota
        self._limits_breaker = CircuitBreaker(
            failure_threshold=3, reset_timeout_s=10.0, name="redis-limits"
        )
        self.ends = Ends()  # wakes requests waiting for a batch job or validation run
        self.cache = TieredCache(
            TTLCache(maxsize=1024, ttl_s=300.0),
            svc.redis_url,
            prefix="nqp:cache:",
            ttl_s=300.0,
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._leases: set[tuple[str, str, str]] = set()  # ("job" | "run", tenant, id)
        self.engine: Any = None
        self.sessions: Any = None
        self.ready = False

    @property
    def store_backlog(self) -> int:
        """Predictions made but not yet stored (the writer's queue)."""
        return self._writer.rows

    def spawn(
        self, coro: Any, *, name: str | None = None, lease: tuple[str, str, str] | None = None
    ) -> asyncio.Task[Any]:
        """Run a background coroutine owned by the runtime (awaited on shutdown).

        ``lease=("job" | "run", tenant_id, id)``: the batch job or validation run it works
        on, whose lease this runtime renews while the task runs (see :meth:`_lease_loop`).
        """
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if lease is not None:
            self._leases.add(lease)
            task.add_done_callback(lambda _: self._leases.discard(lease))
        return task

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.platform.start)  # distributed: the summary reader
        if self.platform.in_process and not self.distributed:
            log.info("engine: in the gateway process")
        elif not self.distributed:
            log.info(
                "engine: %d child process(es), one batcher each, BLAS threads %s",
                self.platform.processes,
                await asyncio.to_thread(self.platform.blas_threads),
            )
        await store.migrate(self.database_url, newer_ok=True)  # a rollback runs on it
        self.engine = store.make_engine(self.database_url)
        self.sessions = store.make_sessionmaker(self.engine)
        self.jwt_secret = self._load_secret()
        await self._bootstrap_admin()
        if self.stream is not None:
            await self.stream.start()
        else:
            await self._close_interrupted()
        self.batcher.start()
        self._writer.task = asyncio.create_task(self._write_loop(), name="nqp-prediction-writer")
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="nqp-checkpoints")
        self._lease_task = asyncio.create_task(self._lease_loop(), name="nqp-leases")
        # What exists now (modules, engine, tables: ~10^5-10^6 objects) lives as long as the
        # process: out of the collector's scans, so a full collection pauses requests for a few
        # ms instead of ~100 ms (measured with bench/load.py).
        gc.collect()
        gc.freeze()
        # Young collections every _GC_YOUNG allocations instead of 700: a batch request's
        # parse builds ~10^5 objects at once, and with the heap frozen each older-generation
        # pass then rescans all of them (validating 50,000 points took 4.6 µs a point with
        # the default, 3.5 with this; cyclic garbage waits a few ms longer to be freed).
        gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
        self.ready = True

    async def _close_interrupted(self) -> None:
        """Embedded mode: this process is the only gateway, so unfinished work is orphaned."""
        async with self.sessions() as session:
            jobs, runs = await store.fail_unfinished(
                session,
                started_before=datetime.fromtimestamp(self.started_at, tz=UTC),
                error="interrupted: the server stopped before it finished",
            )
            await session.commit()
        if jobs or runs:
            log.info("closed %d interrupted job(s) and %d validation run(s)", jobs, runs)

    async def renew_leases(self) -> tuple[int, int]:
        """Renew the leases of the work this runtime runs, then close orphaned work.

        Orphaned: queued or running jobs and validation runs whose lease no gateway renewed
        for ``service.job_lease_s`` (their gateway died). Returns (jobs, runs) closed.
        """
        leases = list(self._leases)
        async with self.sessions() as session:
            await store.renew_leases(
                session,
                jobs=[(t, i) for kind, t, i in leases if kind == "job"],
                runs=[(t, i) for kind, t, i in leases if kind == "run"],
            )
            stale = datetime.now(UTC) - timedelta(seconds=self.settings.service.job_lease_s)
            closed = await store.fail_unfinished(
                session,
                stale_before=stale,
                error="interrupted: the gateway running it stopped before it finished",
            )
            await session.commit()
        if any(closed):
            log.info("closed %d orphaned job(s) and %d validation run(s)", *closed)
        return closed

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.service.job_lease_s / 6.0)
            try:
                await self.renew_leases()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away: try again next time
                log.exception("renewing job leases failed")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Drain: stop accepting, finish in-flight work, flush predictions, checkpoint."""
        self.ready = False
        if self._background:  # running jobs first: they still need the batcher
            _, pending = await asyncio.wait(set(self._background), timeout=timeout_s)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.batcher.drain(timeout_s)
        if self.stream is not None:
            await self.stream.stop(timeout_s)
        for loop_task in (self._checkpoint_task, self._retention_task, self._lease_task):
            if loop_task is not None:
                loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task
        await self._flush_writer()
        if self._writer.task is not None:
            self._writer.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer.task
        await self.checkpoint_all()
        await asyncio.to_thread(self.platform.close)
        await self.cache.aclose()
        if self._limit_pool is not None:
            await self._limit_pool.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    def _load_secret(self) -> str:
        if self.settings.service.jwt_secret:
            return self.settings.service.jwt_secret
        path = self.data_dir / "jwt.secret"
        if path.exists():
            return path.read_text().strip()
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret)
        return secret

    async def _bootstrap_admin(self) -> None:
        """On first start: a 'default' tenant and an admin key written to DATA_DIR/admin.key."""
        path = self.data_dir / "admin.key"
        async with self.sessions() as session:
            tenant = await store.get_or_create_tenant(session, name="default")
            keys = await store.list_keys(session, tenant_id=tenant.id)
            if keys:
                await session.commit()
                return
            key = generate_key()
            row = await store.create_key(
                session,
                tenant_id=tenant.id,
                name="bootstrap-admin",
                role=Role.ADMIN.value,
                key_hash=hash_key(key),
                prefix=key[:8],
                expires_at=None,
                rate_limit_per_s=None,
                daily_quota=None,
            )
            await store.record_event(
                session,
                tenant_id=tenant.id,
                actor_key_id=None,
                action="key.bootstrap",
                target=row.id,
                details={"path": str(path)},
            )
            await session.commit()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        log.info("bootstrap admin key written to %s (mode 0600)", path)

    # ------------------------------------------------------------------ auth
    async def principal_for_key(self, key: str) -> Principal | None:
        """The principal of an API key, or None (unknown, revoked or expired)."""
        digest = hash_key(key)
        return await self._principal(digest, by_hash=True)

    async def principal_for_key_id(self, key_id: str, tenant_id: str) -> Principal | None:
        """The principal of a key named by a token (checked against the token's tenant)."""
        return await self._principal(key_id, by_hash=False, tenant_id=tenant_id)

    async def _principal(
        self, ident: str, *, by_hash: bool, tenant_id: str | None = None
    ) -> Principal | None:
        now = time.monotonic()
        cached = self._principal_cache.get(ident)
        if cached is not None and cached[0] > now:
            return cached[1]
        # single flight: concurrent requests of one key share one database lookup
        pending = self._principal_pending.get(ident)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup_principal(ident, by_hash, tenant_id))
            self._principal_pending[ident] = pending
            pending.add_done_callback(lambda _: self._principal_pending.pop(ident, None))
        return await asyncio.shield(pending)

    async def _lookup_principal(
        self, ident: str, by_hash: bool, tenant_id: str | None
    ) -> Principal | None:
        async with self.sessions() as session:
            row = (
                await store.get_key_by_hash(session, key_hash=ident)
                if by_hash
                else await store.get_key(session, tenant_id=tenant_id or "", key_id=ident)
            )
        principal = None
        if row is not None and row.revoked_at is None:
            expires = row.expires_at
            if expires is None or expires.timestamp() > time.time():
                principal = Principal(
                    key_id=row.id,
                    tenant_id=row.tenant_id,
                    role=Role(row.role),
                    rate_limit_per_s=row.rate_limit_per_s,
                    daily_quota=row.daily_quota,
                )
        self._principal_cache[ident] = (time.monotonic() + 5.0, principal)
        return principal

    def forget_principal(self, key_id: str) -> None:
        """Drop cached lookups of a key (after revocation)."""
        self._principal_cache = {
            k: v for k, v in self._principal_cache.items() if v[1] is None or v[1].key_id != key_id
        }

    async def _hit(self, shared: Any, local: Any, item: Any, key: str) -> tuple[bool, float]:
        """One hit on the shared limiter (or the local one while Redis is down)."""
        if shared is not local:
            try:
                allowed = await self._limits_breaker.call(shared.hit, item, key, timeout_s=1.0)
                if allowed:
                    return True, 0.0
                stats = await self._limits_breaker.call(
                    shared.get_window_stats, item, key, timeout_s=1.0
                )
                return False, stats.reset_time - time.time()
            except Exception:  # Redis unreachable or breaker open: limit locally meanwhile
                self.metrics.errors.labels("limits_redis").inc()
        if await local.hit(item, key):
            return True, 0.0
        stats = await local.get_window_stats(item, key)
        return False, stats.reset_time - time.time()

    async def check_limits(self, principal: Principal) -> tuple[bool, float]:
        """(allowed, retry_after_s) under the key's rate limit and daily quota."""
        svc = self.settings.service
        rate = principal.rate_limit_per_s or svc.default_rate_limit_per_s
        item = RateLimitItemPerSecond(max(1, round(rate)))
        ok, wait = await self._hit(self.rate_limiter, self._local_rate, item, principal.key_id)
        if not ok:
            return False, max(0.01, wait)
        quota = principal.daily_quota or svc.default_daily_quota
        if quota:
            day = RateLimitItemPerDay(quota)
            ok, wait = await self._hit(self.quota_limiter, self._local_quota, day, principal.key_id)
            if not ok:
                return False, max(1.0, wait)
        return True, 0.0

    # ------------------------------------------------------------------ processing
    def engine_shard(self, internal: str) -> int:
        """The engine process (and batcher) that steps the source named ``internal``."""
        return shard_of(internal, self.platform.processes)

    def _process(self, items: list[ProcessItem]) -> list[PredictionBatch]:
        """Runs in a batcher's worker thread (waiting on its engine process)."""
        start = time.perf_counter()
        out = self.platform.process_json(items)
        metrics = self.metrics
        metrics.child(metrics.stage, "engine").observe(time.perf_counter() - start)
        metrics.batch_size.observe(len(items))
        rates = {item.source: batch.hit_rate for item, batch in zip(items, out, strict=True)}
        for internal, rate in rates.items():
            if rate is not None:
                metrics.child(metrics.hit_rate, *public_source(internal)).set(rate)
        return out

    async def ensure_restored(self, internal: str) -> None:
        """Load a source's checkpoint from the database the first time it is seen."""
        if internal not in self._known and not self.distributed:
            await self.ensure_restored_many([internal])

    async def ensure_restored_many(self, internals: list[str]) -> None:
        """:meth:`ensure_restored` for many sources: one engine call, one query per tenant.

        A batch job's chunk of new sources would otherwise cost an engine round trip and a
        query each. Per-source locks (taken in sorted order) keep a concurrent request for
        the same source from restoring it twice.
        """
        if self.distributed:  # the workers load checkpoints
            return
        todo = sorted({s for s in internals if s not in self._known})
        if not todo:
            return
        async with contextlib.AsyncExitStack() as held:
            for internal in todo:
                lock = self._source_locks.setdefault(internal, asyncio.Lock())
                await held.enter_async_context(lock)
            todo = [s for s in todo if s not in self._known]  # restored while we waited
            if todo:
                in_memory = set(await asyncio.to_thread(self.platform.known_of, todo))
                by_tenant: dict[str, list[str]] = {}
                for internal in todo:
                    if internal not in in_memory:
                        tenant_id, source = public_source(internal)
                        by_tenant.setdefault(tenant_id, []).append(source)
                found: dict[str, bytes] = {}
                if by_tenant:
                    async with self.sessions() as session:
                        for tenant_id, sources in by_tenant.items():
                            stored = await store.load_checkpoints(
                                session, tenant_id=tenant_id, sources=sources
                            )
                            found |= {internal_source(tenant_id, s): d for s, d in stored.items()}
                for internal, data in found.items():
                    await asyncio.to_thread(self.platform.restore, internal, data)
                self._known.update(todo)
        for internal in todo:
            self._source_locks.pop(internal, None)

    async def count_new_sources(self, internals: list[str]) -> int:
        """How many of ``internals`` the platform and this process have never seen."""
        unseen = [s for s in internals if s not in self._known]
        if not unseen:
            return 0
        if self.distributed:
            return len(await self._not_stored(unseen))
        return len(unseen) - len(await asyncio.to_thread(self.platform.known_of, unseen))

    async def is_new_source(self, internal: str) -> bool:
        """Whether the platform and this process have never seen the source."""
        if internal in self._known:
            return False
        if self.distributed:
            return bool(await self._not_stored([internal]))
        return not await asyncio.to_thread(self.platform.known, internal)

    async def _not_stored(self, internals: list[str]) -> list[str]:
        """Those of ``internals`` without a stored checkpoint (distributed mode)."""
        by_tenant: dict[str, set[str]] = {}
        async with self.sessions() as session:
            for internal in internals:
                tenant_id, _ = public_source(internal)
                if tenant_id not in by_tenant:
                    by_tenant[tenant_id] = set(
                        await store.list_sources(session, tenant_id=tenant_id)
                    )
        return [s for s in internals if public_source(s)[1] not in by_tenant[public_source(s)[0]]]

    async def live_sources(self) -> list[str]:
        """Engine names of the sources in this gateway's memory (none in distributed mode)."""
        if self.distributed:
            return []
        return await asyncio.to_thread(self.platform.sources)

    async def source_summary(self, tenant_id: str, source: str) -> Any:
        """A source's :class:`~nqp.engine.SourceSummary`, or None if there is no such source.

        Distributed mode reads the workers' last checkpoint (up to one commit interval old).
        """
        internal = internal_source(tenant_id, source)
        if not self.distributed:
            await self.ensure_restored(internal)
            if not await asyncio.to_thread(self.platform.known, internal):
                return None
            return await asyncio.to_thread(self.platform.summary, internal)
        async with self.sessions() as session:
            data = await store.load_checkpoint(session, tenant_id=tenant_id, source=source)
        if data is None:
            return None

        def read() -> Any:
            self.platform.restore(internal, data)
            try:
                return self.platform.summary(internal)
            finally:
                self.platform.forget(internal)

        return await asyncio.to_thread(read)

    async def count_sources(self, tenant_id: str) -> int:
        prefix = f"{tenant_id}/"
        in_memory = {s for s in self._known if s.startswith(prefix)}
        async with self.sessions() as session:
            stored = await store.list_sources(session, tenant_id=tenant_id)
        return len(in_memory | {internal_source(tenant_id, s) for s in stored})

    async def submit(self, tenant_id: str, item: ProcessItem) -> PredictionBatch:
        """Process one request's points, publish and store the predictions.

        Returns the predictions naming the public source (``item.source``): what is
        stored, published to WebSocket subscribers and answered.
        """
        internal = internal_source(tenant_id, item.source)
        if self.stream is not None:
            start = time.perf_counter()
            preds = await self.stream.submit(tenant_id, item)  # stored and published there
            self._request_stage.observe(time.perf_counter() - start)
            self._known.add(internal)
            batch = PredictionBatch.from_dicts(
                item.source, [p.model_dump(mode="json") for p in preds]
            )
            self._count_directions(batch.directions)
            return batch
        await self.ensure_restored(internal)
        wait_start = time.perf_counter()
        made = await self.batcher.submit(
            ProcessItem(internal, item.data, item.timestamp, item.config)
        )
        self._request_stage.observe(time.perf_counter() - wait_start)
        batch = self._deliver(tenant_id, internal, item.source, made)
        self._count_directions(batch.directions)
        return batch

    async def submit_many(
        self, tenant_id: str, items: Sequence[ProcessItem]
    ) -> list[PredictionBatch | BaseException]:
        """:meth:`submit` of many items of distinct sources at once (a batch job's round).

        The items are queued together (:meth:`ShardedBatcher.submit_many`), without a task
        per item; an item's own failure (e.g. ``InvalidInputError``) is returned in its
        place. The engine stage is observed once for the call. Raises ``QueueFullError``
        (nothing queued) or ``ShuttingDownError`` as :meth:`submit` does.
        """
        if self.stream is not None:
            return await asyncio.gather(
                *(self.submit(tenant_id, item) for item in items), return_exceptions=True
            )
        internals = [internal_source(tenant_id, item.source) for item in items]
        await self.ensure_restored_many(internals)
        wait_start = time.perf_counter()
        made = await self.batcher.submit_many(
            [
                ProcessItem(internal, item.data, item.timestamp, item.config)
                for internal, item in zip(internals, items, strict=True)
            ]
        )
        self._request_stage.observe(time.perf_counter() - wait_start)
        out: list[PredictionBatch | BaseException] = []
        directions: list[str] = []
        for internal, item, result in zip(internals, items, made, strict=True):
            if isinstance(result, BaseException):
                out.append(result)
                continue
            batch = self._deliver(tenant_id, internal, item.source, result)
            directions += batch.directions
            out.append(batch)
        self._count_directions(directions)
        return out

    def _deliver(
        self, tenant_id: str, internal: str, source: str, made: PredictionBatch
    ) -> PredictionBatch:
        """The engine's predictions of one item renamed ``source``, published and queued
        for storage."""
        self._dirty.add(internal)
        batch = made.renamed(source)
        if self.hub.subscriber_count(tenant_id):  # parsed only when someone listens
            for payload in batch.dicts():
                self.hub.publish(tenant_id, payload)
        writer = self._writer
        if writer.rows + len(batch) <= _WRITER_MAX_ROWS:
            writer.rows += len(batch)
            writer.queue.put_nowait((tenant_id, batch))
        else:
            self.metrics.errors.labels("prediction_store_backlog").inc(len(batch))
        return batch

    def _count_directions(self, directions: list[str]) -> None:
        """``nqp_predictions`` by direction: one increment per direction and call, not point."""
        for direction, counter in self._by_direction.items():
            n = directions.count(direction)
            if n:
                counter.inc(n)

    async def _write_loop(self) -> None:
        """Insert queued predictions in batches; a queued future marks a flush point."""
        writer = self._writer
        queue = writer.queue
        while True:
            first = await queue.get()
            items: list[Any] = [first]
            if not isinstance(first, asyncio.Future):
                if not writer.flushes:  # gather more rows for a while, or until a flush point
                    writer.flush_wanted.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(writer.flush_wanted.wait(), _WRITER_FLUSH_S)
                n = len(first[1])
                while n < _WRITER_BATCH and not queue.empty():
                    items.append(queue.get_nowait())
                    if isinstance(items[-1], asyncio.Future):
                        break
                    n += len(items[-1][1])
            batches = [i for i in items if not isinstance(i, asyncio.Future)]
            if batches:
                await self._insert(batches)
            for i in items:
                if isinstance(i, asyncio.Future):
                    writer.flushes -= 1
                    if not i.done():
                        i.set_result(None)

    async def _flush_writer(self) -> None:
        """Wait until every row queued so far is stored (inline when the writer is gone)."""
        task = self._writer.task
        if task is not None and not task.done():
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._writer.flushes += 1
            await self._writer.queue.put(done)
            self._writer.flush_wanted.set()
            await done
            return
        batches: list[tuple[str, PredictionBatch]] = []
        waiting: list[asyncio.Future[None]] = []
        while not self._writer.queue.empty():
            item = self._writer.queue.get_nowait()
            if isinstance(item, asyncio.Future):  # queued before the writer stopped
                waiting.append(item)
            else:
                batches.append(item)
        if batches:
            await self._insert(batches)
        for future in waiting:
            self._writer.flushes -= 1
            if not future.done():
                future.set_result(None)

    async def _insert(self, batches: list[tuple[str, PredictionBatch]]) -> None:
        """Store queued predictions in one transaction (one statement per tenant)."""
        start = time.perf_counter()
        by_tenant: dict[str, list[store.PredictionRow]] = {}
        n = 0
        for tenant_id, batch in batches:
            n += len(batch)
            by_tenant.setdefault(tenant_id, []).extend(
                zip(
                    repeat(batch.source),
                    batch.prediction_ids,
                    batch.sequences,
                    batch.timestamps,
                    batch.directions,
                    batch.confidences,
                    batch.payloads(),
                )
            )
        try:
            async with self.sessions() as session:
                for tenant_id, rows in by_tenant.items():
                    await store.insert_predictions(session, tenant_id=tenant_id, rows=rows)
                await session.commit()
        except Exception:  # storage trouble must not kill the writer: count and log it
            self.metrics.errors.labels("prediction_store").inc()
            log.exception("storing %d predictions failed", n)
        finally:
            self._writer.rows -= n
        self.metrics.stage.labels("storage").observe(time.perf_counter() - start)

    async def flush(self) -> None:
        """Store every prediction made so far (used by tests and before erasure)."""
        await self._flush_writer()

    # ------------------------------------------------------------------ retention
    async def apply_retention(self, now: float | None = None) -> tuple[int, int]:
        """Delete predictions and jobs stored more than ``retention_days`` before ``now``.

        Returns (predictions deleted, jobs deleted); (0, 0) when retention is off.
        """
        days = self.settings.service.retention_days
        if days is None:
            return 0, 0
        cutoff = datetime.fromtimestamp(
            (time.time() if now is None else now) - days * 86_400.0, tz=UTC
        )
        async with self.sessions() as session:
            n_pred = await store.delete_predictions_before(session, cutoff=cutoff)
            n_jobs = await store.delete_jobs_before(session, cutoff=cutoff)
            await session.commit()
        return n_pred, n_jobs

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.apply_retention()
            except Exception:  # retention trouble must not stop the loop: log, retry later
                self.metrics.errors.labels("retention").inc()
                log.exception("retention pass failed")
            await asyncio.sleep(_RETENTION_EVERY_S)

    # ------------------------------------------------------------------ checkpoints
    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.service.checkpoint_interval_s)
            try:
                await self.checkpoint_all(only_dirty=True)
            except Exception:  # storage trouble must not stop the loop: log, retry later
                self.metrics.errors.labels("checkpoint").inc()
                log.exception("periodic checkpoint failed")

    async def checkpoint_all(self, *, only_dirty: bool = False) -> int:
        """Save the platform state of (dirty) sources to the database; returns how many.

        In chunks of :data:`CHECKPOINT_CHUNK` sources, each made in one engine call and
        stored in one transaction: realtime calls reach the engine between chunks, and only
        one chunk's checkpoints are held in memory at a time. Sources not saved when a chunk
        fails are marked dirty again (saved next time) and the error is raised.
        """
        if only_dirty:
            sources = list(self._dirty)
        else:
            sources = await asyncio.to_thread(self.platform.sources)
        self._dirty.difference_update(sources)  # points arriving meanwhile re-mark them
        saved = 0
        for start in range(0, len(sources), CHECKPOINT_CHUNK):
            chunk = sources[start : start + CHECKPOINT_CHUNK]
            try:
                blobs = await asyncio.to_thread(self.platform.checkpoints, chunk)  # erased: skipped
                async with self.sessions() as session:
                    await store.save_checkpoints(
                        session,
                        ((*public_source(internal), data) for internal, data in blobs.items()),
                    )
                    await session.commit()
            except BaseException:
                self._dirty.update(sources[start:])  # try again next time
                raise
            saved += len(blobs)
        return saved

    async def erase_source(self, tenant_id: str, source: str) -> bool:
        """Erase a source's state, predictions, checkpoint and jobs."""
        internal = internal_source(tenant_id, source)
        if self.stream is not None:  # the owning worker erases state, predictions, checkpoint
            existed = await self.stream.erase(tenant_id, source)
            self._known.discard(internal)
            async with self.sessions() as session:
                await store.delete_jobs_for_source(session, tenant_id=tenant_id, source=source)
                await session.commit()
            self.metrics.remove(self.metrics.hit_rate, tenant_id, source)
            return existed
        await self._flush_writer()
        existed = await asyncio.to_thread(self.platform.forget, internal)
        self._known.discard(internal)
        self._dirty.discard(internal)
        self.metrics.remove(self.metrics.hit_rate, tenant_id, source)
        async with self.sessions() as session:
            n_pred = await store.delete_predictions(session, tenant_id=tenant_id, source=source)
            had_ckpt = await store.delete_checkpoint(session, tenant_id=tenant_id, source=source)
            await store.delete_jobs_for_source(session, tenant_id=tenant_id, source=source)
            await session.commit()
        return bool(existed or n_pred or had_ckpt)
