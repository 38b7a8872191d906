"""The gateway side: realtime calls through Kafka, timeouts, restarts, Redis fan-out."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from nqp.engine import ProcessItem
from nqp.exceptions import InvalidInputError
from nqp.service.hub import PredictionHub
from nqp.service.remote import KafkaSubmitter, ReplyTimeout, StreamGateway, WsFanout
from nqp.stream.kafka import StreamUnavailable

from .conftest import (
    KAFKA_OPTIONS,
    acreate_tenant,
    astored_predictions,
    await_for,
    produce,
    stream_settings,
    worker_thread,
)
from .test_kafka_worker import assert_same_prediction, reference

pytestmark = pytest.mark.services


def _submitter(settings, gateway_id: str = "gw-1") -> KafkaSubmitter:
    return KafkaSubmitter(settings, gateway_id=gateway_id, kafka_options=KAFKA_OPTIONS)


async def test_realtime_calls_round_trip_and_a_gateway_restart_loses_nothing(
    kafka_bootstrap, stream_db
):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    sources = ["a", "b", "c"]
    points = {src: [(float(i + j), 500.0 + i) for i in range(12)] for j, src in enumerate(sources)}
    returned: dict[str, list] = {}

    async def send(sub, src, i):
        value, ts = points[src][i]
        data = [value, value + 0.5] if i == 0 else value  # a multi-point first request
        stamp = [ts - 0.5, ts] if i == 0 else ts
        preds = await sub.submit(tid, ProcessItem(src, data, stamp))
        returned.setdefault(src, []).extend(p.model_dump(mode="json") for p in preds)

    async def per_source(sub, src, indices):
        for i in indices:
            await send(sub, src, i)

    with worker_thread(settings):
        first = _submitter(settings)
        await first.start()
        await asyncio.gather(*(per_source(first, src, range(6)) for src in sources))
        # requests in flight when the gateway is told to stop: stop() waits for them
        in_flight = [asyncio.create_task(send(first, src, 6)) for src in sources]
        await asyncio.sleep(0)
        await first.stop()
        assert all(t.done() and t.exception() is None for t in in_flight)
        with pytest.raises(StreamUnavailable, match="draining"):
            await first.submit(tid, ProcessItem("a", 1.0, 999.0))
        # a new gateway process with the same id: replies meant for the old one are ignored
        second = _submitter(settings)
        await second.start()
        await asyncio.gather(*(per_source(second, src, range(7, 12)) for src in sources))
        now = time.time()
        preds = await second.submit(tid, ProcessItem("d", 1.0))  # timestamp: now
        assert abs(preds[0].timestamp - now) < 60
        assert preds[0].source == "d"
        await second.stop()
    stored = {p["prediction_id"]: p for p in await astored_predictions(url, tid)}
    feed = []
    for src in sources:
        for i, (value, ts) in enumerate(points[src]):
            if i == 0:
                feed.append((src, [value, value + 0.5], [ts - 0.5, ts], None))
            else:
                feed.append((src, value, ts, None))
    want = reference(settings, tid, feed)
    for src in sources:
        got = returned[src]
        assert [p["sequence"] for p in got] == list(range(1, 14))  # 2 + 11 points, in order
        for payload in got:
            assert payload["source"] == src
            assert_same_prediction(payload, want[payload["prediction_id"]])
            assert_same_prediction(stored[payload["prediction_id"]], payload)  # stored first
    assert len(stored) == len(want) + 1


async def test_without_workers_a_call_times_out_and_the_point_is_kept(kafka_bootstrap, stream_db):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url, reply_timeout_s=0.5)
    sub = _submitter(settings)
    await sub.start()
    started = time.monotonic()
    with pytest.raises(ReplyTimeout) as info:
        await sub.submit(tid, ProcessItem("s", [1.0, 2.0], [10.0, 11.0]))
    assert time.monotonic() - started < 10  # it answered instead of hanging
    assert info.value.retry_after_s >= 1.0
    assert isinstance(info.value, TimeoutError)
    assert sub.timeouts == 1
    assert sub.in_flight == 0
    await sub.stop()
    # the point is in Kafka: a worker started later applies and stores it
    with worker_thread(settings):
        rows = await await_for(lambda: astored_predictions(url, tid), 30, "the late prediction")
    assert [(r["sequence"], r["timestamp"]) for r in rows] == [(1, 10.0), (2, 11.0)]


async def test_rejected_points_raise_the_engine_error_and_erase_works(kafka_bootstrap, stream_db):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    with worker_thread(settings):
        sub = _submitter(settings)
        await sub.start()
        try:
            await sub.submit(tid, ProcessItem("s", 1.0, 100.0))
            with pytest.raises(InvalidInputError, match="2 channel\\(s\\) but source 's' has 1"):
                await sub.submit(tid, ProcessItem("s", [[1.0, 2.0]], 101.0))
            with pytest.raises(InvalidInputError, match="earlier than"):
                await sub.submit(tid, ProcessItem("s", 1.0, 50.0))
            with pytest.raises(InvalidInputError, match=r"non-finite value .* point 1, channel 0"):
                await sub.submit(tid, ProcessItem("s", [1.0, float("nan")], 102.0))
            preds = await sub.submit(tid, ProcessItem("s", 2.0, 103.0))
            assert preds[0].sequence == 2  # nothing rejected was applied
            assert await sub.erase(tid, "s") is True
            assert await sub.erase(tid, "s") is False
            preds = await sub.submit(tid, ProcessItem("s", 5.0, 1.0))  # a fresh source
            assert preds[0].sequence == 1
        finally:
            await sub.stop()
    rows = await astored_predictions(url, tid)
    assert [(r["sequence"], r["value"]) for r in rows] == [(1, 5.0)]


async def test_live_predictions_reach_every_gateway_hub_through_redis(
    kafka_bootstrap, stream_db, redis_url, redis_prefix
):
    url, tid = stream_db
    other = await acreate_tenant(url, "other")
    prefix = f"{redis_prefix}ws:"
    settings = stream_settings(kafka_bootstrap, url, redis_url=redis_url)
    hubs = [PredictionHub(), PredictionHub()]
    fanouts = [WsFanout(redis_url, hub, channel_prefix=prefix) for hub in hubs]
    for f in fanouts:
        await f.start()
    everything = hubs[0].subscribe(tid)
    only_a = hubs[1].subscribe(tid, sources={"a"})
    others = hubs[1].subscribe(other)
    records = []
    for i in range(5):
        for tenant, src in ((tid, "a"), (tid, "b"), (other, "a")):
            value = {"tenant_id": tenant, "source": src, "data": float(i), "timestamp": 10.0 + i}
            records.append({"key": f"{tenant}/{src}".encode(), "value": orjson.dumps(value)})
    try:
        with worker_thread(settings, ws_channel_prefix=prefix):
            produce(kafka_bootstrap, settings.stream.input_topic, records)
            await await_for(lambda: everything.backlog >= 10, 30, "live predictions")
            await await_for(lambda: others.backlog >= 5 and only_a.backlog >= 5, 30, "fan-out")
    finally:
        for f in fanouts:
            await f.stop()
    live = [everything._queue.get_nowait() for _ in range(everything.backlog)]
    stored = {p["prediction_id"]: p for p in await astored_predictions(url, tid)}
    assert len(live) == 10
    assert {p["prediction_id"] for p in live} == set(stored)
    for payload in live:
        assert_same_prediction(payload, stored[payload["prediction_id"]])
    got_a = [only_a._queue.get_nowait() for _ in range(only_a.backlog)]
    assert {p["source"] for p in got_a} == {"a"}
    assert len(got_a) == 5
    theirs = [others._queue.get_nowait() for _ in range(others.backlog)]
    assert {p["prediction_id"] for p in theirs}.isdisjoint(stored)  # tenants stay apart
    assert fanouts[0].received == fanouts[1].received == 15  # every gateway gets all


@pytest.mark.parametrize("with_redis", [False, True])
async def test_stream_gateway_feeds_its_hub_once_with_or_without_redis(
    kafka_bootstrap, stream_db, request, with_redis
):
    url, tid = stream_db
    redis = request.getfixturevalue("redis_url") if with_redis else None
    prefix = request.getfixturevalue("redis_prefix") + "ws:"
    settings = stream_settings(kafka_bootstrap, url, redis_url=redis)
    hub = PredictionHub()
    sub = hub.subscribe(tid)
    gateway = StreamGateway(
        settings, hub, gateway_id="gw-9", kafka_options=KAFKA_OPTIONS, ws_channel_prefix=prefix
    )
    assert (gateway.fanout is not None) == with_redis
    with worker_thread(settings, ws_channel_prefix=prefix):
        await gateway.start()
        try:
            preds = await gateway.submit(tid, ProcessItem("s", [1.0, 2.0], [5.0, 6.0]))
            await await_for(lambda: sub.backlog >= 2, 15, "live predictions in the hub")
        finally:
            await gateway.stop()
    live = [sub._queue.get_nowait() for _ in range(sub.backlog)]
    assert [p["prediction_id"] for p in live] == [p.prediction_id for p in preds]  # once each
    assert all(p["source"] == "s" for p in live)
