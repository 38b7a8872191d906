"""The gateway side of the distributed mode: submit points through Kafka, await replies.

A stateless gateway (``nqp serve`` with ``NQP_STREAM__BOOTSTRAP_SERVERS`` set) does not run
the engine. :class:`KafkaSubmitter` turns a realtime call into one record on
``realtime-data-input`` (key ``tenant/source``; Kafka's default partitioner sends it to
the worker that owns the source) naming this gateway's reply topic
``{reply_topic_prefix}.{gateway_id}`` (one partition, created when missing) and a fresh
``request_id``; a worker processes it, stores the predictions, then produces the reply,
which resolves the waiting call. No reply within ``stream.reply_timeout_s`` raises
:class:`ReplyTimeout` (the API answers 503 with ``Retry-After``; the point may still be
applied later: it is in Kafka). The gateway reads its reply topic with a plain partition
assignment (no consumer group: no join delay), starting at its end, so a restarted
gateway ignores replies meant for its previous life. Two gateways with the same id both
read all replies and each resolves only its own requests, so an id collision costs
traffic, not correctness.

Producer deliveries and reply reads run on one background thread; the event loop only
calls the non-blocking ``produce`` and resolves futures.

:class:`WsFanout` feeds the live predictions that workers publish on Redis
(``PREFIX<tenant_id>``, a JSON array per batch) into this gateway's
:class:`~nqp.service.hub.PredictionHub`, so WebSocket clients of every gateway see every
prediction of their tenant, whichever gateway or external producer sent the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from nqp.config import Settings
from nqp.engine import ProcessItem
from nqp.exceptions import InvalidInputError
from nqp.service.hub import PredictionHub
from nqp.stream.kafka import (
    StreamError,
    StreamUnavailable,
    consumer_config,
    ensure_topics,
    producer_config,
    topic_names,
)
from nqp.stream.messages import DEFAULT_WS_CHANNEL_PREFIX, message_key
from nqp.types import Prediction, ProcessConfig

__all__ = ["KafkaSubmitter", "ReplyTimeout", "StreamGateway", "WsFanout", "default_gateway_id"]

log = logging.getLogger("nqp.service.remote")

_INPUT_ERRORS = frozenset({"invalid_data", "invalid_schema", "too_large", "key_mismatch"})
_PUMP_POLL_S = 0.02


class ReplyTimeout(StreamError, TimeoutError):
    """No worker answered within ``stream.reply_timeout_s`` (API: 503 + ``Retry-After``).

    Attributes
    ----------
    retry_after_s : float
        Suggested wait before retrying.
    """

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def default_gateway_id() -> str:
    """``host-pid`` with characters a topic name cannot hold replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{socket.gethostname()}-{os.getpid()}")[:200]


class KafkaSubmitter:
    """Realtime calls through Kafka: produce the points, await the worker's reply.

    Parameters
    ----------
    settings : Settings
        ``stream.*`` (bootstrap servers, topics, reply_timeout_s, reply_topic_prefix).
    gateway_id : str, optional
        Names the reply topic; default :func:`default_gateway_id`.
    kafka_options : mapping, optional
        librdkafka overrides (see :mod:`nqp.stream.kafka`).

    Examples
    --------
    ``await submitter.start()`` once, then ``await submitter.submit(tenant_id,
    ProcessItem("BTC", [1.0], 1700000000.0))`` returns the predictions (``source`` is the
    tenant's own name), and ``await submitter.stop()`` drains.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        gateway_id: str | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.gateway_id = gateway_id
        self.kafka_options = kafka_options
        self._started = False
        self._closing = False
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._producer: Any = None
        self._consumer: Any = None
        self.timeouts = 0

    @property
    def reply_topic(self) -> str:
        """``{reply_topic_prefix}.{gateway_id}``."""
        gid = self.gateway_id or default_gateway_id()
        return f"{self.settings.stream.reply_topic_prefix}.{gid}"

    @property
    def in_flight(self) -> int:
        """Requests waiting for their reply."""
        return len(self._waiting)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Create missing topics, open the clients and start reading replies.

        Raises
        ------
        StreamUnavailable
            If Kafka does not answer.
        """
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._topic = self.reply_topic
        await asyncio.to_thread(self._open)
        self._stop_pump = threading.Event()
        self._pump_thread = threading.Thread(target=self._pump, name="nqp-kafka-replies")
        self._pump_thread.daemon = True
        self._pump_thread.start()
        self._started = True
        self._closing = False

    def _open(self) -> None:
        from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

        s = self.settings.stream
        wanted = dict.fromkeys(topic_names(self.settings).values(), s.partitions)
        wanted[self._topic] = 1
        ensure_topics(self.settings, wanted, options=self.kafka_options)
        self._producer = Producer(producer_config(self.settings, self.kafka_options))
        self._consumer = Consumer(
            consumer_config(self.settings, f"{self._topic}.reader", self.kafka_options)
        )
        try:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, 0), timeout=10.0
            )
        except KafkaException as exc:
            raise StreamUnavailable(f"cannot read topic {self._topic!r}: {exc}") from exc
        self._consumer.assign([TopicPartition(self._topic, 0, max(0, high))])

    def _pump(self) -> None:
        """Background thread: serve delivery reports and hand replies to the event loop."""
        while not self._stop_pump.is_set():
            msg = self._consumer.poll(_PUMP_POLL_S)
            self._producer.poll(0)
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("reply consumer: %s", msg.error())
                continue
            key = msg.key()
            if key is None:
                continue
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                self._loop.call_soon_threadsafe(self._on_reply, key.decode(), msg.value())

    def _on_reply(self, request_id: str, value: bytes | None) -> None:
        future = self._waiting.get(request_id)
        if future is None or future.done():
            return  # someone else's request, or one that timed out
        try:
            reply = orjson.loads(value or b"null")
            if not isinstance(reply, dict) or "ok" not in reply:
                raise ValueError("not a reply object")
        except ValueError as exc:
            future.set_exception(StreamError(f"malformed reply for {request_id}: {exc}"))
            return
        future.set_result(reply)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, wait up to ``timeout_s`` for in-flight replies, close clients."""
        if not self._started:
            return
        self._closing = True
        pending = [f for f in self._waiting.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(StreamUnavailable("the gateway is shutting down"))
        self._stop_pump.set()
        await asyncio.to_thread(self._pump_thread.join, 5.0)
        await asyncio.to_thread(self._close_clients)
        self._started = False

    def _close_clients(self) -> None:
        self._producer.flush(5.0)
        self._consumer.close()
        self._producer = self._consumer = None

    # ------------------------------------------------------------------ requests
    async def submit(self, tenant_id: str, item: ProcessItem) -> list[Prediction]:
        """Process one request's points on a worker and return their predictions.

        Parameters
        ----------
        tenant_id : str
        item : ProcessItem
            ``source`` is the tenant's own name; ``timestamp`` defaults to now (fixed here,
            so a replay after a worker crash computes the same prediction).

        Returns
        -------
        list of Prediction
            One per point, in order, already stored; ``source`` is the tenant's name.

        Raises
        ------
        InvalidInputError
            The worker rejected the points (message as in embedded mode; the record is on
            the dead-letter topic).
        ReplyTimeout
            No reply in ``stream.reply_timeout_s``.
        StreamUnavailable
            Kafka refused the record, or the gateway is shutting down.
        """
        message = {
            "tenant_id": tenant_id,
            "source": item.source,
            "data": _finite("data", item.data),
            "timestamp": _finite(
                "timestamp", item.timestamp if item.timestamp is not None else time.time()
            ),
        }
        if item.config is not None:
            config = item.config
            if isinstance(config, ProcessConfig):
                message["config"] = config.model_dump(exclude_none=True)
            else:
                message["config"] = dict(config)
        reply = await self._request(message, message_key(tenant_id, item.source))
        return [Prediction.model_validate(p) for p in reply.get("predictions", [])]

    async def erase(self, tenant_id: str, source: str) -> bool:
        """Erase a source on its worker (state, checkpoint, position, predictions).

        Ordered after the source's points already in Kafka. Returns whether it existed.
        """
        message = {"tenant_id": tenant_id, "source": source, "op": "erase"}
        reply = await self._request(message, message_key(tenant_id, source))
        return bool(reply.get("erased"))

    async def _request(self, message: dict[str, Any], key: bytes) -> dict[str, Any]:
        if not self._started or self._closing:
            raise StreamUnavailable("the gateway is not accepting requests (draining)")
        request_id = uuid.uuid4().hex
        message["reply_to"] = self._topic
        message["request_id"] = request_id
        value = orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY)
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._waiting[request_id] = future

        def delivered(err: Any, msg: Any) -> None:  # on the pump thread
            if err is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(
                        _fail, future, StreamUnavailable(f"Kafka did not take the point: {err}")
                    )

        try:
            try:
                self._producer.produce(
                    self.settings.stream.input_topic, value=value, key=key, on_delivery=delivered
                )
            except BufferError:
                raise StreamUnavailable("the Kafka producer queue is full") from None
            except Exception as exc:  # KafkaException: broker unknown, message too large
                raise StreamUnavailable(f"Kafka refused the point: {exc}") from exc
            timeout = self.settings.stream.reply_timeout_s
            try:
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                self.timeouts += 1
                raise ReplyTimeout(
                    f"No worker answered within {timeout:g} s; the point may still be processed.",
                    retry_after_s=max(1.0, timeout / 2),
                ) from None
        finally:
            self._waiting.pop(request_id, None)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            code, text = error.get("code", "error"), error.get("message", "request failed")
            if code in _INPUT_ERRORS:
                raise InvalidInputError(text)
            raise StreamError(f"the worker refused the request ({code}): {text}")
        return reply


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _finite(name: str, value: Any) -> Any:
    """``value`` unchanged, or InvalidInputError (worded as the engine does) if non-finite.

    JSON has no NaN, so this is checked before encoding; every other check is the
    worker's.
    """
    if isinstance(value, bool | str | bytes) or value is None:
        return value
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value  # ragged or not numeric: the worker names the problem
    if np.isfinite(arr).all():
        return value
    if name == "timestamp":
        raise InvalidInputError("items[0].timestamp must be finite.")
    grid = arr.reshape(arr.shape[0] if arr.ndim else 1, -1)
    i, j = (int(v) for v in np.argwhere(~np.isfinite(grid))[0])
    raise InvalidInputError(
        f"items[0].data contains a non-finite value (NaN or inf) at point {i}, channel {j}."
    )


class WsFanout:
    """Redis pub/sub -> this gateway's WebSocket hub (live predictions of all workers).

    Parameters
    ----------
    redis_url : str
    hub : PredictionHub
    channel_prefix : str, default="nqp:ws:"
        Must equal the workers' ``ws_channel_prefix``.

    Attributes
    ----------
    received : int
        Predictions handed to the hub.
    errors : int
        Redis failures (each followed by a reconnect after a pause).
    """

    def __init__(
        self,
        redis_url: str,
        hub: PredictionHub,
        *,
        channel_prefix: str = DEFAULT_WS_CHANNEL_PREFIX,
    ) -> None:
        self.redis_url = redis_url
        self.hub = hub
        self.channel_prefix = channel_prefix
        self.received = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 5.0) -> None:
        """Subscribe (waits for Redis to confirm) and start forwarding."""
        await self._subscribe(timeout_s)
        self._task = asyncio.create_task(self._listen(), name="nqp-ws-fanout")

    async def _subscribe(self, timeout_s: float) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=1.0)
        self._pubsub = self._client.pubsub()
        await self._pubsub.psubscribe(_glob_escape(self.channel_prefix) + "*")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = await self._pubsub.get_message(timeout=0.1)
            if msg is not None and msg.get("type") == "psubscribe":
                return
        raise StreamUnavailable(f"Redis at {self.redis_url} did not confirm the subscription")

    async def _listen(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None and msg.get("type") == "pmessage":
                    self._forward(msg["channel"], msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: reconnect after a pause, never give up
                self.errors += 1
                log.warning("WebSocket fan-out lost Redis (%s); reconnecting", exc)
                await self._close_client()
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self._subscribe(5.0)

    def _forward(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        tenant_id = name[len(self.channel_prefix) :]
        try:
            payloads = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("ignoring a malformed live message on %s", name)
            return
        for payload in payloads if isinstance(payloads, list) else [payloads]:
            if isinstance(payload, dict):
                self.hub.publish(tenant_id, payload)
                self.received += 1

    async def _close_client(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def stop(self) -> None:
        """Stop forwarding and close the Redis connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_client()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class StreamGateway:
    """Everything a gateway runs in distributed mode, behind four calls.

    A :class:`KafkaSubmitter`, plus a :class:`WsFanout` into ``hub`` when
    ``settings.service.redis_url`` is set. Without Redis, the predictions of this
    gateway's own requests are published to ``hub`` directly (WebSocket clients then see
    only those, not other gateways' or external producers').

    Parameters
    ----------
    settings : Settings
    hub : PredictionHub
        The gateway's WebSocket hub.
    gateway_id : str, optional
        Names the reply topic (default :func:`default_gateway_id`); give a stable one
        (the pod name) so restarts reuse one topic instead of leaving one per process.
    kafka_options : mapping, optional
        librdkafka overrides.
    ws_channel_prefix : str, default="nqp:ws:"
    """

    def __init__(
        self,
        settings: Settings,
        hub: PredictionHub,
        *,
        gateway_id: str | None = None,
        kafka_options: Mapping[str, Any] | None = None,
        ws_channel_prefix: str = DEFAULT_WS_CHANNEL_PREFIX,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.submitter = KafkaSubmitter(
            settings, gateway_id=gateway_id, kafka_options=kafka_options
        )
        redis_url = settings.service.redis_url
        self.fanout = (
            WsFanout(redis_url, hub, channel_prefix=ws_channel_prefix) if redis_url else None
        )

    async def start(self) -> None:
        """Connect to Kafka (and Redis); raises :class:`StreamUnavailable` if unreachable."""
        await self.submitter.start()
        if self.fanout is not None:
            await self.fanout.start()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Drain in-flight requests (up to ``timeout_s``), then disconnect."""
        await self.submitter.stop(timeout_s)
        if self.fanout is not None:
            await self.fanout.stop()

    async def submit(self, tenant_id: str, item: ProcessItem) -> list[Prediction]:
        """:meth:`KafkaSubmitter.submit` (see there for the exceptions)."""
        preds = await self.submitter.submit(tenant_id, item)
        if self.fanout is None:
            for p in preds:
                self.hub.publish(tenant_id, p.model_dump(mode="json"))
        return preds

    async def erase(self, tenant_id: str, source: str) -> bool:
        """:meth:`KafkaSubmitter.erase`."""
        return await self.submitter.erase(tenant_id, source)
