"""``nqp worker``: one member of the Kafka consumer group that runs the engine.

Workers share the partitions of ``realtime-data-input`` (key ``tenant/source``, so one
worker owns a source at a time) and hold the engine state of the sources on their
partitions. The consumer, the engine and the state live on one thread; two helper
threads take the database and Kafka writes off it::

    main thread: poll records (up to worker_batch_max, or worker_batch_wait_ms after
      the first; rebalance callbacks run here too, between batches)
      -> decode + validate each record; bad ones -> dead-letter topic (reason in headers)
      -> load the checkpoints of sources seen for the first time (lazily, see below)
      -> skip records already applied (replay after a crash) and producer retries
      -> one Platform.process_many call (a rejected item is isolated by bisection)
      -> hand the batch's outputs to the output thread (at most 2 batches ahead)
    output thread, batch after batch in order:
      store the predictions (one INSERT, idempotent by prediction_id), then produce
      predictions / neuromorphic-results / quantum-results, replies to gateways (after
      the INSERT: a reply means "stored") and the Redis messages for WebSockets
    every commit_interval_s (a "round"), on revoke and on shutdown:
      note the offsets -> snapshot the sources changed since the last checkpoint with
      their positions (main thread, between batches, ~10 ms at a time, so the engine
      never stalls long) -> checkpoint thread: wait for the outputs of every batch before
      the snapshot, flush the producer, store the snapshot in ONE database transaction,
      then commit the noted offsets (on revoke and shutdown all of it before returning)

Why this is exactly-once for state and stored predictions
---------------------------------------------------------
Offsets are committed only after every source touched by the committed records has been
checkpointed (a source snapshotted after the offsets were noted holds at least those
records), so the committed offset is never ahead of the stored state. A checkpoint is
stored together with its *position* (partition, offset of the last record applied,
:mod:`nqp.stream.positions`). After a crash (SIGKILL) the next owner re-reads from the
committed offset and, per source, skips the records at or before the checkpoint's
position: nothing is applied twice even if the crash fell between the database commit
and the Kafka commit. The records after the position are replayed from exactly the
checkpointed state; the engine is deterministic and a prediction's id is uuid5(source,
sequence, timestamp), so the replayed predictions carry the ids already stored and the
``INSERT ... ON CONFLICT DO NOTHING`` keeps one row each. Output topics are
at-least-once (a replay re-publishes): their consumers deduplicate by prediction_id.

Loading checkpoints lazily (on a source's first record after assignment) rather than
eagerly on assignment: a partition may hold many idle sources, and loading them all would
cost memory and a long pause in the rebalance callback; one query per batch that meets
new sources costs a few milliseconds. Checkpoints are saved eagerly on revoke (the next
owner loads them right after) and periodically.

Records without a ``timestamp`` get the record's Kafka timestamp (CreateTime), so a
replay computes the same prediction. A producer ``sequence`` at or below the last one
seen for the source is a retry: it is skipped (and answered with code ``duplicate`` when
it asked for a reply). A record whose tenant does not exist, whose key is not
``tenant/source`` or which sits on another partition than Kafka's default partitioner
gives its key (a misconfigured producer could otherwise split a source between two
workers) is dead-lettered, never dropped silently.

Failures are crash-only: if predictions cannot be stored or delivered, the worker exits
with status 1 without committing; its partitions move to the other workers, which replay
from the last commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nqp import store
from nqp.config import Settings
from nqp.engine import Platform, ProcessItem
from nqp.engine.threads import use_one_blas_thread
from nqp.exceptions import InvalidInputError
from nqp.store.models import Tenant
from nqp.stream import positions
from nqp.stream.health import HealthServer
from nqp.stream.kafka import (
    StreamError,
    admin_config,
    consumer_config,
    ensure_topics,
    parse_options,
    partition_for,
    producer_config,
)
from nqp.stream.messages import (
    DEFAULT_WS_CHANNEL_PREFIX,
    H_TENANT,
    H_WORKER,
    BadMessage,
    InputMessage,
    dead_letter_headers,
    decode_input,
    ws_channel,
)

__all__ = [
    "DEFAULT_WS_CHANNEL_PREFIX",
    "Worker",
    "WorkerError",
    "WorkerMetrics",
    "database_url",
    "main",
    "prediction_row",
    "run_worker",
]

log = logging.getLogger("nqp.worker")

_IDLE_POLL_S = 0.1
_LIVENESS_S = 60.0  # /healthz fails when the consume loop has not turned for this long
_FLUSH_TIMEOUT_S = 30.0
_DB_RETRIES = (0.2, 0.5, 1.0, 2.0)
_REDIS_BACKOFF_S = 5.0
_SNAPSHOT_SLICE_S = 0.01  # snapshot time between two batches during a checkpoint round
_IDLE_SNAPSHOT_S = 0.1
_MAX_INFLIGHT = 2  # batches whose outputs may be in flight behind the engine
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerError(StreamError):
    """A failure the worker cannot continue after (it exits without committing)."""


def database_url(settings: Settings) -> str:
    """The database the service uses: ``service.database_url`` or DATA_DIR/nqp.db."""
    url = settings.service.database_url
    return url or f"sqlite:///{(Path(settings.data_dir) / 'nqp.db').resolve()}"


def prediction_row(payload: Mapping[str, Any], text: str) -> store.PredictionRow:
    """The ``predictions`` table row of a prediction payload (``source`` = public name).

    ``text`` is the payload's JSON (``orjson.dumps(payload)``, made once for Kafka too).
    """
    return (
        payload["source"],
        payload["prediction_id"],
        payload["sequence"],
        payload["timestamp"],
        payload["direction"],
        payload["confidence"],
        text,
    )


class WorkerMetrics:
    """Prometheus metrics of one worker (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "nqp_worker_records",
            "Input records by outcome (processed, dead_letter, duplicate, replayed)",
            ["outcome"],
            registry=r,
        )
        self.points = Counter("nqp_worker_points", "Points processed", registry=r)
        self.dead_letters = Counter(
            "nqp_worker_dead_letters", "Records dead-lettered by reason", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "nqp_worker_batch_size",
            "Records per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
            registry=r,
        )
        self.stage = Histogram(
            "nqp_worker_stage_seconds",
            "Time per stage (load, engine, store, produce, checkpoint, commit)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "nqp_worker_lag",
            "Records behind the log end, per owned partition",
            ["partition"],
            registry=r,
        )
        self.up = Gauge("nqp_worker_up", "1 while the worker runs", registry=r)
        self.partitions = Gauge("nqp_worker_partitions", "Input partitions owned", registry=r)
        self.sources = Gauge("nqp_worker_sources", "Sources held in memory", registry=r)
        self.commits = Counter("nqp_worker_commits", "Offset commits", ["result"], registry=r)
        self.errors = Counter("nqp_worker_errors", "Errors by kind", ["kind"], registry=r)
        # the same series the embedded gateway exports (alert NQPLowRollingHitRate); a
        # worker exports it for the sources it holds and removes it when it lets one go
        self.hit_rate = Gauge(
            "nqp_source_rolling_hit_rate",
            "Exponentially weighted realised hit rate per source",
            ["tenant", "source"],
            registry=r,
        )

    def forget_source(self, tenant_id: str, source: str) -> None:
        """Drop a source's per-source series (released partition or erased source)."""
        with contextlib.suppress(KeyError):
            self.hit_rate.remove(tenant_id, source)


@dataclass
class _Source:
    """What the worker knows about one source it holds."""

    tenant_id: str
    source: str
    home: int  # input partition its records arrive on
    partition: int | None = None  # position of the last record applied to the state
    offset: int | None = None
    producer_sequence: int | None = None
    topic_id: str = ""

    def position(self) -> positions.Position:
        if self.partition is None or self.offset is None:
            raise RuntimeError(f"source {self.source!r} has no applied record yet")
        return positions.Position(
            self.partition, self.offset, self.producer_sequence, self.topic_id
        )


@dataclass
class _Round:
    """A periodic checkpoint in progress (see :meth:`Worker._commit`)."""

    offsets: dict[int, int]  # partition -> next offset when the round began
    remaining: list[str]  # sources dirty when it began, not yet snapshotted
    states: dict[tuple[str, str], tuple[bytes, positions.Position]] = field(default_factory=dict)


@dataclass
class _Entry:
    """One decoded record of a batch."""

    msg: Any
    message: InputMessage
    internal: str


@dataclass
class _Outputs:
    """What one segment of a batch produces."""

    rows: dict[str, list[store.PredictionRow]] = field(default_factory=dict)
    records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    replies: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class Worker:
    """A Kafka consumer-group member that turns input records into stored predictions.

    Parameters
    ----------
    settings : Settings
        ``stream`` (topics, group, batching, commit interval), ``service.database_url``
        (checkpoints, predictions), ``service.redis_url`` (WebSocket fan-out; skipped when
        ``None``) and the engine sections (must equal the gateways' and other workers').
    worker_id : str, optional
        Names this worker in logs and the ``nqp-worker`` header; default ``host-pid``.
    kafka_options : mapping, optional
        librdkafka properties overriding the defaults (:mod:`nqp.stream.kafka`), e.g.
        ``{"consumer.session.timeout.ms": "3000"}``.
    ws_channel_prefix : str, default="nqp:ws:"
        Redis channel prefix of live predictions (channel = prefix + tenant id).
    metrics_port : int, optional
        Serve ``/metrics`` (Prometheus) and the probes ``/healthz`` (the consume loop turns)
        and ``/readyz`` (set up and not draining) on this port (0.0.0.0) while running;
        see :mod:`nqp.stream.health`.

    Notes
    -----
    :meth:`run` blocks the calling thread until :meth:`stop` (thread- and signal-safe)
    and then drains: the batch in hand is finished, dirty sources are checkpointed,
    offsets committed and the group left, so the partitions move at once.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        kafka_options: Mapping[str, Any] | None = None,
        ws_channel_prefix: str = DEFAULT_WS_CHANNEL_PREFIX,
        metrics_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.kafka_options = kafka_options
        self.ws_channel_prefix = ws_channel_prefix
        self.metrics_port = metrics_port

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Ask :meth:`run` to drain and return (safe from signal handlers and threads)."""
        self._stopping().set()

    @property
    def assigned(self) -> list[int]:
        """Input partitions this worker owns now."""
        return sorted(getattr(self, "_owned", ()))

    @property
    def counts(self) -> dict[str, int]:
        """Records by outcome so far: processed, dead_letter, duplicate, replayed."""
        return dict(getattr(self, "_counts", {}))

    def run(self) -> None:
        """Consume, process and commit until :meth:`stop`; raises :class:`WorkerError`."""
        try:
            self._setup()
            while not self._stop_event.is_set():
                self._step()
            self._process_pending()
            self._commit(wait=True)
        except BaseException:
            self._failed = True  # leave the group without committing anything more
            raise
        finally:
            self._shutdown()

    def _liveness(self) -> str | None:
        """``/healthz``: the consume loop turned within :data:`_LIVENESS_S` (any thread)."""
        stalled = time.monotonic() - self._last_loop
        if stalled > _LIVENESS_S:
            return f"the consume loop has not turned for {stalled:.0f} s"
        return None

    def _readiness(self) -> str | None:
        """``/readyz``: set up, not draining and alive (any thread)."""
        if not getattr(self, "_setup_done", False):
            return "starting"
        if self._stopping().is_set():
            return "draining"
        if getattr(self, "_failed", False):
            return "failed"
        return self._liveness()

    # ------------------------------------------------------------------ setup
    def _stopping(self) -> threading.Event:
        event = getattr(self, "_stop_event", None)
        if event is None:
            event = self._stop_event = threading.Event()
        return event

    def _setup(self) -> None:
        from confluent_kafka import Consumer, Producer

        s = self.settings.stream
        self._stopping()
        self.worker_id_ = self.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = WorkerMetrics()
        self._counts = {"processed": 0, "dead_letter": 0, "duplicate": 0, "replayed": 0}
        self._failed = False
        self._setup_done = False
        self._owned: set[int] = set()
        self._next: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._pending: list[Any] = []
        self._sources: dict[str, _Source] = {}
        self._dirty: set[str] = set()
        self._tenants: set[str] = set()
        self._delivery_errors: list[str] = []
        self._redis: Any = None
        self._redis_down_until = 0.0
        self._metrics_server: HealthServer | None = None
        self._last_loop = time.monotonic()  # the consume loop's heartbeat (/healthz)
        self._runner = asyncio.Runner()
        self._db: Any = None
        # outputs (insert, produce, publish) and checkpoint writes each on their own thread,
        # so a large checkpoint never holds up the replies of the batches behind it
        self._outputs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nqp-outputs")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nqp-checkpoints")
        self._thread_db = threading.local()
        self._job: Future[list[Any]] | None = None
        self._inflight: deque[Future[None]] = deque()
        self._emit_failed = False
        self._round: _Round | None = None
        self._admin: Any = None
        self._consumer: Any = None
        self._producer: Any = None
        self._reply_producer: Any = None
        self.platform = Platform(self.settings)
        self.platform.warm_up()  # kernels loaded before the first batch, not during it
        url = database_url(self.settings)
        self._runner.run(store.migrate(url, newer_ok=True))  # a rollback runs on it
        self._db = store.make_engine(url)
        self._sessions = store.make_sessionmaker(self._db)
        ensure_topics(self.settings, options=self.kafka_options)
        self._topic_id = self._input_topic_id()
        opts = self.kafka_options
        self._producer = Producer(producer_config(self.settings, opts))
        reply_timeout_ms = int(s.reply_timeout_s * 1000) + 1000
        self._reply_producer = Producer(
            {
                **producer_config(self.settings, opts),
                "message.timeout.ms": reply_timeout_ms,
                "linger.ms": 0,
            }
        )
        self._consumer = Consumer(consumer_config(self.settings, s.group_id, opts))
        self._partition_count = self._input_partitions()
        if self.settings.service.redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                self.settings.service.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5
            )
        if self.metrics_port is not None:
            self._metrics_server = HealthServer(
                self.metrics_port,
                self.metrics.registry,
                alive=self._liveness,
                ready=self._readiness,
            )
        self._consumer.subscribe(
            [s.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._last_commit = time.monotonic()
        # Out of the collector's scans from now on (see nqp.engine.process._serve).
        gc.collect()
        gc.freeze()
        self._setup_done = True
        self.metrics.up.set(1)
        log.info("worker %s started (group %s)", self.worker_id_, s.group_id)

    def _input_topic_id(self) -> str:
        """The input topic's id (changes when the topic is re-created), "" if unknown."""
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import AdminClient

        topic = self.settings.stream.input_topic
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.settings, self.kafka_options))
        try:
            found = self._admin.describe_topics(TopicCollection([topic]), request_timeout=10)
            topic_id = found[topic].result(10).topic_id
        except Exception as exc:  # brokers before Kafka 2.8 have no topic ids
            log.warning("no id for topic %s (%s): positions rely on its name", topic, exc)
            return ""
        return str(topic_id) if topic_id is not None else ""

    def _input_partitions(self) -> int:
        topic = self.settings.stream.input_topic
        meta = self._consumer.list_topics(topic, timeout=10.0)
        parts = meta.topics[topic].partitions
        if not parts:
            raise WorkerError(f"topic {topic!r} has no partitions")
        return len(parts)

    def _shutdown(self) -> None:
        if not hasattr(self, "_runner"):  # setup failed before anything was opened
            return
        self.metrics.up.set(0)
        if self._consumer is not None:
            try:
                self._consumer.close()  # revoke callbacks checkpoint and commit (unless failed)
            except Exception:
                log.exception("closing the consumer failed")
        for producer in (self._producer, self._reply_producer):
            if producer is not None and not self._failed:
                producer.flush(5.0)
        self._consumer = self._producer = self._reply_producer = self._admin = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        with contextlib.suppress(Exception):
            self._outputs.submit(self._close_thread_db).result(30)
        with contextlib.suppress(Exception):
            self._writer.submit(self._close_thread_db).result(30)
        self._outputs.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        if self._db is not None:
            self._runner.run(self._db.dispose())
        self._runner.close()
        log.info(
            "worker %s stopped; records: %s",
            self.worker_id_,
            ", ".join(f"{k}={v}" for k, v in self._counts.items()),
        )

    # ------------------------------------------------------------------ loop
    def _step(self) -> None:
        s = self.settings.stream
        self._last_loop = time.monotonic()
        msg = self._consumer.poll(_IDLE_POLL_S)
        if msg is not None:
            self._accept(msg)
        busy = bool(self._pending)
        if busy:
            deadline = time.monotonic() + s.worker_batch_wait_ms / 1000.0
            while len(self._pending) < s.worker_batch_max:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                msg = self._consumer.poll(remaining)
                if msg is None:
                    break
                self._accept(msg)
            self._process_pending()
        self._producer.poll(0)
        self._reply_producer.poll(0)
        self._reap()
        if self._job is not None and self._job.done():
            self._collect_job()
        if self._round is not None:
            self._advance_round(_SNAPSHOT_SLICE_S if busy else _IDLE_SNAPSHOT_S)
        elif time.monotonic() - self._last_commit >= s.commit_interval_s:
            self._commit(wait=False)

    def _accept(self, msg: Any) -> None:
        from confluent_kafka import KafkaError

        err = msg.error()
        if err is None:
            self._pending.append(msg)
            return
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.metrics.errors.labels("consume").inc()
        if err.fatal():
            raise WorkerError(f"fatal consumer error: {err}")
        log.warning("consumer error: %s", err)

    # ------------------------------------------------------------------ rebalance callbacks
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        topic = self.settings.stream.input_topic
        got = {tp.partition for tp in partitions if tp.topic == topic}
        self._owned |= got
        for p in got:
            self._next.pop(p, None)
            self._committed.pop(p, None)
        if got:
            self._partition_count = self._input_partitions()
            self._topic_id = self._input_topic_id()
        self.metrics.partitions.set(len(self._owned))
        log.info("worker %s assigned partitions %s", self.worker_id_, sorted(got))

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        topic = self.settings.stream.input_topic
        gone = {tp.partition for tp in partitions if tp.topic == topic}
        log.info("worker %s revoking partitions %s", self.worker_id_, sorted(gone))
        if self._failed:
            self._abandon_job()
            self._release(gone)
            return
        self._process_pending()  # polled records are still ours until this returns
        self._commit(wait=True)
        self._release(gone)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        topic = self.settings.stream.input_topic
        gone = {tp.partition for tp in partitions if tp.topic == topic}
        log.warning("worker %s lost partitions %s", self.worker_id_, sorted(gone))
        self._pending = [m for m in self._pending if m.partition() not in gone]
        self._abandon_job()  # its checkpoints are harmless (monotonic), its commit fails
        self._release(gone)

    def _release(self, partitions: set[int]) -> None:
        """Forget the sources of ``partitions`` (their state is saved, or the partition was
        lost and the next owner replays it)."""
        for internal, src in list(self._sources.items()):
            if src.home in partitions:
                self.platform.forget(internal)
                self.metrics.forget_source(src.tenant_id, src.source)
                del self._sources[internal]
                self._dirty.discard(internal)
                if self._round is not None:
                    self._round.states.pop((src.tenant_id, src.source), None)
        for p in partitions:
            self._owned.discard(p)
            self._next.pop(p, None)
            self._committed.pop(p, None)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(str(p))
        self.metrics.partitions.set(len(self._owned))
        self.metrics.sources.set(len(self._sources))

    # ------------------------------------------------------------------ batches
    def _process_pending(self) -> None:
        msgs, self._pending = self._pending, []
        msgs = [m for m in msgs if m.partition() in self._owned]
        if not msgs:
            return
        self.metrics.batch_size.observe(len(msgs))
        max_points = self.settings.service.max_points_per_request
        decoded: list[tuple[Any, InputMessage]] = []
        for m in msgs:
            p = m.partition()
            self._next[p] = max(self._next.get(p, 0), m.offset() + 1)
            try:
                message = decode_input(m.key(), m.value(), max_points=max_points)
                expected = partition_for(m.key(), self._partition_count)
                if expected != p:
                    raise BadMessage(
                        "wrong_partition",
                        f"Key {message.key.decode()!r} belongs on partition {expected} of "
                        f"{self._partition_count} (Kafka's default murmur2 partitioner), not "
                        f"{p}; set partitioner=murmur2_random in librdkafka clients.",
                    )
            except BadMessage as exc:
                self._dead_letter(m, exc.reason, str(exc))
                continue
            decoded.append((m, message))
        if not decoded:
            return
        start = time.perf_counter()
        self._load(decoded)
        self.metrics.stage.labels("load").observe(time.perf_counter() - start)
        segment: list[_Entry] = []
        for m, message in decoded:
            entry = self._admit(m, message)
            if entry is None:
                continue
            if message.op == "erase":
                self._run_segment(segment)
                segment = []
                self._erase(entry)
            else:
                segment.append(entry)
        self._run_segment(segment)
        self.metrics.sources.set(len(self._sources))

    def _load(self, decoded: list[tuple[Any, InputMessage]]) -> None:
        """Check tenants and restore the checkpoints of sources met for the first time."""
        new: dict[str, tuple[str, str, int]] = {}
        for m, message in decoded:
            internal = f"{message.tenant_id}/{message.source}"
            if internal not in self._sources and internal not in new:
                new[internal] = (message.tenant_id, message.source, m.partition())
        if not new:
            return
        unknown = {t for t, _, _ in new.values()} - self._tenants

        async def fetch() -> tuple[set[str], dict[tuple[str, str], bytes], dict[Any, Any]]:
            from sqlalchemy import select

            async with self._sessions() as session:
                found: set[str] = set()
                if unknown:
                    rows = await session.scalars(select(Tenant.id).where(Tenant.id.in_(unknown)))
                    found = set(rows)
                ok = self._tenants | found
                keys = [(t, s) for t, s, _ in new.values() if t in ok]
                by_tenant: dict[str, list[str]] = {}
                for t, s in keys:
                    by_tenant.setdefault(t, []).append(s)
                blobs: dict[tuple[str, str], bytes] = {}
                for t, sources in by_tenant.items():
                    got = await store.load_checkpoints(session, tenant_id=t, sources=sources)
                    blobs.update(((t, s), data) for s, data in got.items())
                pos = await positions.load_positions(session, keys=keys)
            return found, blobs, pos

        found, blobs, pos = self._db_call(fetch)
        self._tenants |= found
        for internal, (tenant_id, source, home) in new.items():
            if tenant_id not in self._tenants:
                continue
            data = blobs.get((tenant_id, source))
            if data is not None:
                try:
                    self.platform.restore(internal, data)
                except InvalidInputError as exc:
                    raise WorkerError(
                        f"cannot restore the checkpoint of {internal!r}: {exc} (do all "
                        "gateways and workers run the same engine settings?)"
                    ) from exc
            p = pos.get((tenant_id, source))
            self._sources[internal] = _Source(
                tenant_id,
                source,
                home,
                p.partition if p else None,
                p.offset if p else None,
                p.producer_sequence if p else None,
                p.topic_id if p else "",
            )

    def _admit(self, m: Any, message: InputMessage) -> _Entry | None:
        """The record as work, or None (dead-lettered, replayed or a producer retry)."""
        internal = f"{message.tenant_id}/{message.source}"
        src = self._sources.get(internal)
        if src is None:
            self._dead_letter(
                m, "unknown_tenant", f"No tenant with id {message.tenant_id!r}.", message
            )
            return None
        p, off = m.partition(), m.offset()
        src.home = p
        if (
            src.topic_id == self._topic_id
            and src.partition == p
            and src.offset is not None
            and off <= src.offset
        ):
            self._count("replayed")  # already in the checkpointed state
            return None
        if message.sequence is not None:
            if src.producer_sequence is not None and message.sequence <= src.producer_sequence:
                self._count("duplicate")
                self._reply_error(
                    message,
                    "duplicate",
                    f"sequence {message.sequence} was already applied to source "
                    f"{message.source!r} (last: {src.producer_sequence}).",
                )
                return None
            src.producer_sequence = message.sequence
        return _Entry(m, message, internal)

    def _run_segment(self, entries: Sequence[_Entry]) -> None:
        if not entries:
            return
        items = [
            ProcessItem(
                e.internal,
                e.message.data,
                e.message.timestamp if e.message.timestamp is not None else _record_time(e.msg),
                e.message.config,
            )
            for e in entries
        ]
        start = time.perf_counter()
        results = self._process_items(items)
        self.metrics.stage.labels("engine").observe(time.perf_counter() - start)
        for internal, rate in self.platform.rolling_hit_rates({i.source for i in items}).items():
            src = self._sources[internal]
            self.metrics.hit_rate.labels(src.tenant_id, src.source).set(rate)
        out = _Outputs()
        s = self.settings.stream
        headers_base = [(H_WORKER, self.worker_id_.encode())]
        for entry, result in zip(entries, results, strict=True):
            message = entry.message
            if isinstance(result, InvalidInputError):
                # the engine names the source by its internal tenant/source name
                text = str(result).replace(f"'{entry.internal}'", repr(message.source))
                self._dead_letter(entry.msg, "invalid_data", text, message)
                continue
            src = self._sources[entry.internal]
            src.partition, src.offset = entry.msg.partition(), entry.msg.offset()
            src.topic_id = self._topic_id
            self._dirty.add(entry.internal)
            self._count("processed")
            self.metrics.points.inc(len(result))
            key = message.key
            headers = [(H_TENANT, message.tenant_id.encode()), *headers_base]
            payloads = []
            for payload in result:
                payload["source"] = message.source  # the engine names it tenant/source
                payloads.append(payload)
                data = orjson.dumps(payload)
                row = prediction_row(payload, data.decode())
                out.rows.setdefault(message.tenant_id, []).append(row)
                out.live.setdefault(message.tenant_id, []).append(payload)
                out.records.append((s.predictions_topic, key, data, headers))
                for topic, part in (
                    (s.neuromorphic_topic, "neuromorphic_results"),
                    (s.quantum_topic, "quantum_results"),
                ):
                    if payload[part] is not None:
                        value = {
                            "tenant_id": message.tenant_id,
                            "source": message.source,
                            "prediction_id": payload["prediction_id"],
                            "sequence": payload["sequence"],
                            "timestamp": payload["timestamp"],
                            part: payload[part],
                        }
                        out.records.append((topic, key, orjson.dumps(value), headers))
            if message.reply_to is not None and message.request_id is not None:
                reply = {"request_id": message.request_id, "ok": True, "predictions": payloads}
                out.replies.append(
                    (message.reply_to, message.request_id.encode(), orjson.dumps(reply))
                )
        self._emit(out)

    def _process_items(self, items: list[ProcessItem]) -> list[Any]:
        """Predictions per item; an item the engine rejects gets its InvalidInputError.

        The engine validates a whole call before changing any state, so a rejected call is
        split in halves until the offending items are alone (the others run normally, in
        order).
        """
        try:
            return list(self.platform.process_many_json(items))
        except InvalidInputError as exc:
            if len(items) == 1:
                return [exc]
        mid = len(items) // 2
        return self._process_items(items[:mid]) + self._process_items(items[mid:])

    def _emit(self, out: _Outputs) -> None:
        """Hand a batch's outputs to the output thread (FIFO), at most a few ahead."""
        self._inflight.append(self._outputs.submit(self._emit_job, out))
        while len(self._inflight) > _MAX_INFLIGHT:
            self._inflight.popleft().result()

    def _reap(self) -> None:
        """Surface the failures of finished output jobs (they stop the worker)."""
        while self._inflight and self._inflight[0].done():
            self._inflight.popleft().result()

    def _drain_outputs(self) -> None:
        """Wait until every output job and the checkpoint write in flight are done."""
        while self._inflight:
            self._inflight.popleft().result()
        self._collect_job()

    def _thread_sessions(self) -> tuple[asyncio.Runner, Any]:
        """This helper thread's own event loop and session factory (made on first use)."""
        tls = self._thread_db
        if getattr(tls, "runner", None) is None:
            tls.runner = asyncio.Runner()
            tls.engine = store.make_engine(database_url(self.settings))
            tls.sessions = store.make_sessionmaker(tls.engine)
        return tls.runner, tls.sessions

    def _close_thread_db(self) -> None:
        tls = self._thread_db
        if getattr(tls, "runner", None) is not None:
            tls.runner.run(tls.engine.dispose())
            tls.runner.close()
            tls.runner = None

    def _emit_job(self, out: _Outputs) -> None:
        """On the output thread: store the predictions, then produce and publish them.

        A failure marks the thread failed: no later checkpoint may then commit offsets
        past records whose predictions were not stored.
        """
        try:
            self._emit_now(out)
        except BaseException:
            self._emit_failed = True
            raise

    def _emit_now(self, out: _Outputs) -> None:
        if out.rows:
            start = time.perf_counter()
            runner, sessions = self._thread_sessions()

            async def insert() -> None:
                async with sessions() as session:
                    for tenant_id, rows in out.rows.items():
                        await store.insert_predictions(session, tenant_id=tenant_id, rows=rows)
                    await session.commit()

            self._db_call(insert, runner)
            self.metrics.stage.labels("store").observe(time.perf_counter() - start)
        start = time.perf_counter()
        for topic, key, value, headers in out.records:
            self._produce(self._producer, topic, key, value, headers, self._on_delivery)
        for topic, key, value in out.replies:
            self._produce(self._reply_producer, topic, key, value, None, self._on_reply_delivery)
        self._producer.poll(0)
        self._reply_producer.poll(0)
        self.metrics.stage.labels("produce").observe(time.perf_counter() - start)
        if out.live:
            self._publish_live(out.live)

    def _erase(self, entry: _Entry) -> None:
        message = entry.message
        tenant_id, source = message.tenant_id, message.source
        self._drain_outputs()  # earlier predictions stored, no checkpoint write outlives this
        if self._round is not None:
            self._round.states.pop((tenant_id, source), None)
        in_memory = self.platform.forget(entry.internal)
        self.metrics.forget_source(tenant_id, source)
        self._dirty.discard(entry.internal)

        async def delete() -> bool:
            async with self._sessions() as session:
                n_pred = await store.delete_predictions(session, tenant_id=tenant_id, source=source)
                had = await store.delete_checkpoint(session, tenant_id=tenant_id, source=source)
                await positions.delete_position(session, tenant_id=tenant_id, source=source)
                await session.commit()
            return bool(n_pred or had)

        existed = self._db_call(delete) or in_memory
        src = self._sources[entry.internal]
        src.partition, src.offset = entry.msg.partition(), entry.msg.offset()
        src.topic_id = self._topic_id
        src.producer_sequence = None
        self._count("processed")
        if message.reply_to is not None and message.request_id is not None:
            reply = {"request_id": message.request_id, "ok": True, "erased": existed}
            self._produce(
                self._reply_producer,
                message.reply_to,
                message.request_id.encode(),
                orjson.dumps(reply),
                None,
                self._on_reply_delivery,
            )
        log.info("erased source %s of tenant %s", source, tenant_id)

    # ------------------------------------------------------------------ outputs
    def _produce(
        self,
        producer: Any,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        callback: Callable[[Any, Any], None],
    ) -> None:
        deadline = time.monotonic() + _FLUSH_TIMEOUT_S
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=callback)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                if time.monotonic() > deadline:
                    raise WorkerError("the producer queue stayed full for 30 s") from None
                producer.poll(0.05)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.metrics.errors.labels("delivery").inc()
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def _on_reply_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:  # the gateway is gone or its topic deleted: the reply is moot
            self.metrics.errors.labels("reply_delivery").inc()
            log.warning("reply to %s not delivered: %s", msg.topic(), err)

    def _dead_letter(
        self, m: Any, reason: str, error: str, message: InputMessage | None = None
    ) -> None:
        ts_type, ts = m.timestamp()
        headers = dead_letter_headers(
            reason=reason,
            error=error,
            topic=m.topic(),
            partition=m.partition(),
            offset=m.offset(),
            timestamp_ms=ts if ts_type else None,
            worker_id=self.worker_id_,
            original=m.headers(),
        )
        self._produce(
            self._producer,
            self.settings.stream.dead_letter_topic,
            m.key(),
            m.value(),
            headers,
            self._on_delivery,
        )
        self._count("dead_letter")
        self.metrics.dead_letters.labels(reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d (%s): %s", m.topic(), m.partition(), m.offset(), reason, error
        )
        if message is not None:
            self._reply_error(message, reason, error)

    def _reply_error(self, message: InputMessage, code: str, error: str) -> None:
        if message.reply_to is None or message.request_id is None:
            return
        reply = {
            "request_id": message.request_id,
            "ok": False,
            "error": {"code": code, "message": error},
        }
        self._produce(
            self._reply_producer,
            message.reply_to,
            message.request_id.encode(),
            orjson.dumps(reply),
            None,
            self._on_reply_delivery,
        )

    def _publish_live(self, live: dict[str, list[dict[str, Any]]]) -> None:
        """Live predictions to Redis (best effort: WebSocket views, not the record)."""
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for tenant_id, payloads in live.items():
                pipe.publish(ws_channel(self.ws_channel_prefix, tenant_id), orjson.dumps(payloads))
            pipe.execute()
        except Exception as exc:  # Redis down: skip live updates for a while, never block
            self.metrics.errors.labels("redis").inc()
            self._redis_down_until = time.monotonic() + _REDIS_BACKOFF_S
            log.warning("Redis publish failed (%s); retrying in %.0f s", exc, _REDIS_BACKOFF_S)

    # ------------------------------------------------------------------ commits
    def _commit(self, *, wait: bool) -> None:
        """Checkpoint the sources changed since the last checkpoint, then commit offsets.

        ``wait=True`` (revoke, shutdown): snapshot every dirty source now, store the
        snapshot and commit the current offsets before returning.

        ``wait=False`` (periodic): start a *round*: remember the current offsets and the
        dirty sources; :meth:`_advance_round` then snapshots them a few milliseconds at a
        time between batches, so the engine never pauses for long; when all are taken,
        the snapshot is stored and the remembered offsets committed on the checkpoint
        thread. Correct because a source snapshotted after the round began holds at
        least every record before the remembered offsets (its position says which).
        Nothing starts while the previous write is still running.
        """
        if self._failed:
            return
        if wait:
            self._drain_outputs()
            states = self._round.states if self._round is not None else {}
            self._round = None
            self._snapshot(list(self._dirty), states)
            self._submit(states, dict(self._next), wait=True)
            return
        if self._round is None:
            if self._job is not None:
                if not self._job.done():
                    return
                self._collect_job()
            self._last_commit = time.monotonic()
            self._round = _Round(dict(self._next), list(self._dirty))
        self._advance_round(_SNAPSHOT_SLICE_S)

    def _advance_round(self, budget_s: float) -> None:
        """Snapshot the round's sources for up to ``budget_s``; submit when done."""
        r = self._round
        if r is None:
            return
        start = time.perf_counter()
        while r.remaining and time.perf_counter() - start < budget_s:
            internal = r.remaining.pop()
            if internal in self._dirty:  # else released, erased or snapshotted since
                self._snapshot([internal], r.states)
        self.metrics.stage.labels("snapshot").observe(time.perf_counter() - start)
        if not r.remaining:
            self._round = None
            self._submit(r.states, r.offsets, wait=False)

    def _snapshot(self, internals: list[str], into: dict[Any, Any]) -> None:
        """Checkpoint bytes + position of ``internals`` into ``into``; they are clean."""
        for internal in internals:
            src = self._sources[internal]
            into[(src.tenant_id, src.source)] = (
                self.platform.checkpoint(internal),
                src.position(),
            )
        self._dirty.difference_update(internals)

    def _submit(self, states: dict[Any, Any], offsets: dict[int, int], *, wait: bool) -> None:
        """Queue the checkpoint job (flush, store ``states``, commit ``offsets``) behind
        the output jobs; with ``wait``, until it and they are done."""
        from confluent_kafka import TopicPartition

        topic = self.settings.stream.input_topic
        tps = [
            TopicPartition(topic, p, n)
            for p, n in offsets.items()
            if p in self._owned and self._committed.get(p) != n
        ]
        if states or tps:
            earlier = list(self._inflight)  # the outputs this snapshot's records made
            self._job = self._writer.submit(self._write, states, tps, earlier)
        if wait:
            self._drain_outputs()
        self._update_lag()

    def _write(
        self, states: dict[Any, Any], offsets: list[Any], earlier: list[Future[None]]
    ) -> list[Any]:
        """On the checkpoint thread, once the outputs of every earlier batch are stored
        and produced: flush them, store the snapshot, then commit its offsets."""
        from confluent_kafka import KafkaException

        futures_wait(earlier)
        if self._emit_failed:
            raise WorkerError("an earlier batch's outputs failed; not checkpointing past it")
        start = time.perf_counter()
        left = self._producer.flush(_FLUSH_TIMEOUT_S)
        if left or self._delivery_errors:
            raise WorkerError(
                f"{left} output record(s) undelivered, errors: {self._delivery_errors[:3]}"
            )
        self.metrics.stage.labels("flush").observe(time.perf_counter() - start)
        runner, sessions = self._thread_sessions()
        if states:
            start = time.perf_counter()

            async def save() -> None:
                async with sessions() as session:
                    await positions.save_states(session, states=states)
                    await session.commit()

            self._db_call(save, runner)
            self.metrics.stage.labels("checkpoint").observe(time.perf_counter() - start)
        if not offsets:
            return []
        start = time.perf_counter()
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. fenced by a rebalance: the state is saved anyway
            self.metrics.commits.labels("failed").inc()
            log.warning("offset commit failed: %s", exc)
            return []
        self.metrics.commits.labels("ok").inc()
        self.metrics.stage.labels("commit").observe(time.perf_counter() - start)
        return offsets

    def _collect_job(self) -> None:
        """Wait for the checkpoint write in flight; its failure stops the worker."""
        job, self._job = self._job, None
        if job is None:
            return
        for tp in job.result():
            self._committed[tp.partition] = tp.offset

    def _abandon_job(self) -> None:
        """Wait for the output jobs and the write in flight, logging their failures."""
        while self._inflight or self._job is not None:
            try:
                if self._inflight:
                    self._inflight.popleft().result()
                else:
                    self._collect_job()
            except Exception:
                log.exception("an output or checkpoint job failed")

    def _update_lag(self) -> None:
        from confluent_kafka import TopicPartition

        topic = self.settings.stream.input_topic
        for p in self._owned:
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), cached=True
                )
            except Exception:  # no fetch response cached yet
                continue
            pos = self._next.get(p)
            if high is not None and high >= 0 and pos is not None:
                self.metrics.lag.labels(str(p)).set(max(0, high - pos))

    # ------------------------------------------------------------------ helpers
    def _count(self, outcome: str) -> None:
        self._counts[outcome] += 1
        self.metrics.records.labels(outcome).inc()

    def _db_call(self, make: Callable[[], Any], runner: asyncio.Runner | None = None) -> Any:
        """Run a database coroutine on the worker's loop, retrying connection trouble.

        Anything else (a constraint violation, ...) and trouble that outlasts the retries
        raise :class:`WorkerError`: the worker stops without committing.
        """
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        for attempt, pause in enumerate((*_DB_RETRIES, None)):
            try:
                return (runner or self._runner).run(make())
            except (DBAPIError, OSError) as exc:
                transient = isinstance(exc, OSError | OperationalError | InterfaceError) or bool(
                    getattr(exc, "connection_invalidated", False)
                )
                if pause is None or not transient:
                    raise WorkerError(f"database call failed: {exc}") from exc
                self.metrics.errors.labels("database").inc()
                log.warning("database call failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def _record_time(msg: Any) -> float:
    """The record's Kafka timestamp in seconds (deterministic on replay)."""
    ts_type, ts = msg.timestamp()
    if ts_type == 0 or ts is None or ts < 0:  # TIMESTAMP_NOT_AVAILABLE (pre-0.10 records)
        return time.time()
    return ts / 1000.0


def run_worker(
    settings: Settings,
    *,
    metrics_port: int | None = None,
    kafka_options: Mapping[str, Any] | None = None,
    worker_id: str | None = None,
    ws_channel_prefix: str = DEFAULT_WS_CHANNEL_PREFIX,
) -> int:
    """Run a worker in this thread until SIGTERM/SIGINT; return the exit status.

    0 after a clean drain, 1 after a failure (logged). Used by ``nqp worker`` and
    ``python -m nqp.stream.worker``. Limits this process to one BLAS thread
    (:func:`nqp.engine.threads.use_one_blas_thread`).
    """
    use_one_blas_thread()
    worker = Worker(
        settings,
        worker_id=worker_id,
        kafka_options=kafka_options,
        ws_channel_prefix=ws_channel_prefix,
        metrics_port=metrics_port,
    )
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: worker.stop())
    try:
        worker.run()
    except Exception:
        log.exception("worker failed")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nqp.stream.worker [--metrics-port N] [--kafka-option K=V ...]``."""
    parser = argparse.ArgumentParser(
        prog="nqp worker", description="Run one NQP stream worker (settings from NQP_* env)."
    )
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--worker-id", default=None)
    parser.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="librdkafka property (prefix consumer./producer./admin. for one client kind)",
    )
    parser.add_argument("--ws-channel-prefix", default=DEFAULT_WS_CHANNEL_PREFIX)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return run_worker(
        Settings(),
        metrics_port=args.metrics_port,
        kafka_options=parse_options(args.kafka_option),
        worker_id=args.worker_id,
        ws_channel_prefix=args.ws_channel_prefix,
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
