"""Kafka plumbing shared by workers and gateways: client configs, topics, partitioning.

Clients are `confluent-kafka <https://github.com/confluentinc/confluent-kafka-python>`_
(librdkafka). Every client is built from :class:`~nqp.config.StreamSettings` plus
``options``, raw librdkafka properties that override the defaults below (a key prefixed
``producer.``, ``consumer.`` or ``admin.`` applies to that client kind only, prefix
stripped). Defaults and why:

* consumers: manual commits (``enable.auto.commit=false``): a worker commits only what it
  has checkpointed; ``cooperative-sticky`` assignment, so a rebalance moves only the
  partitions that change owner and the others keep their in-memory state;
  ``session.timeout.ms=10000`` (a dead worker's partitions move within ~10 s);
  ``fetch.wait.max.ms=10`` (tansu holds every fetch that long, real Kafka answers at once
  when data is there).
* all clients log through the ``nqp.kafka`` logger.
* producers: ``partitioner=murmur2_random``, Kafka's Java default, so external producers
  in any language put a key on the same partition as the gateway does (workers check it,
  :func:`partition_for`); ``acks=all``; ``enable.idempotence=false`` because tansu 0.6
  hides idempotently produced records (turn it on with real Kafka:
  ``producer.enable.idempotence=true``).

:func:`ensure_topics` creates the topics of the distributed mode when missing, with
``settings.stream.partitions`` partitions (existing topics are left as they are).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from nqp.config import Settings
from nqp.exceptions import NQPError

__all__ = [
    "StreamError",
    "StreamUnavailable",
    "admin_config",
    "consumer_config",
    "ensure_topics",
    "murmur2",
    "parse_options",
    "partition_for",
    "producer_config",
    "topic_names",
]

log = logging.getLogger("nqp.stream")
#: librdkafka's own log lines go to this logger (served by the clients' poll calls).
_KAFKA_LOG = logging.getLogger("nqp.kafka")

_CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 1_000,
    "max.poll.interval.ms": 120_000,
    "fetch.wait.max.ms": 10,
    "fetch.error.backoff.ms": 50,
}
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": False,
    "partitioner": "murmur2_random",
    "linger.ms": 2,
    "message.timeout.ms": 30_000,
    "queue.buffering.max.messages": 500_000,
}
_KINDS = ("producer", "consumer", "admin")


class StreamError(NQPError, RuntimeError):
    """A failure of the distributed transport (Kafka, Redis) rather than of the input."""


class StreamUnavailable(StreamError, ConnectionError):
    """Kafka could not take or deliver a message (broker down, queue full, closing).

    The API answers 503 with ``Retry-After``.
    """


def topic_names(settings: Settings) -> dict[str, str]:
    """The distributed mode's topics by role: input, predictions, neuromorphic, quantum,
    dead_letter."""
    s = settings.stream
    return {
        "input": s.input_topic,
        "predictions": s.predictions_topic,
        "neuromorphic": s.neuromorphic_topic,
        "quantum": s.quantum_topic,
        "dead_letter": s.dead_letter_topic,
    }


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """``["session.timeout.ms=3000", ...]`` -> ``{"session.timeout.ms": "3000", ...}``.

    Raises
    ------
    ValueError
        For an item without ``=`` or with an empty key.

    Examples
    --------
    >>> parse_options(["consumer.session.timeout.ms=3000", "linger.ms=5"])
    {'consumer.session.timeout.ms': '3000', 'linger.ms': '5'}
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"A Kafka option is KEY=VALUE, got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


def _client_config(
    kind: str, settings: Settings, defaults: Mapping[str, Any], options: Mapping[str, Any] | None
) -> dict[str, Any]:
    bootstrap = settings.stream.bootstrap_servers
    if not bootstrap:
        raise StreamError(
            "settings.stream.bootstrap_servers is not set (NQP_STREAM__BOOTSTRAP_SERVERS): "
            "the distributed mode needs a Kafka broker."
        )
    config = {"bootstrap.servers": bootstrap, "logger": _KAFKA_LOG, **defaults}
    for key, value in (options or {}).items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in _KINDS:
            if prefix == kind:
                config[rest] = value
        else:
            config[key] = value
    return config


def producer_config(settings: Settings, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka properties of a producer (see the module docstring for the defaults)."""
    return _client_config("producer", settings, _PRODUCER_DEFAULTS, options)


def consumer_config(
    settings: Settings, group_id: str, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka properties of a consumer in group ``group_id`` (manual commits)."""
    return _client_config(
        "consumer", settings, {**_CONSUMER_DEFAULTS, "group.id": group_id}, options
    )


def admin_config(settings: Settings, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka properties of an admin client."""
    return _client_config("admin", settings, {}, options)


def ensure_topics(
    settings: Settings,
    topics: Mapping[str, int] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create the missing topics; return the names created.

    Parameters
    ----------
    topics : mapping of str to int, optional
        Topic name -> partitions. Default: the five topics of :func:`topic_names`, each
        with ``settings.stream.partitions``.
    timeout_s : float, default=15.0
        For the metadata request and for each creation.

    Raises
    ------
    StreamUnavailable
        If the broker does not answer or refuses a creation (other than "exists").

    Notes
    -----
    An existing topic is never altered. If the input topic exists with another partition
    count than configured, a warning is logged: keys then map to other partitions than a
    freshly created topic would give, which is harmless as long as it never changes
    while workers run.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    s = settings.stream
    wanted = (
        dict(topics)
        if topics is not None
        else dict.fromkeys(topic_names(settings).values(), s.partitions)
    )
    admin = AdminClient(admin_config(settings, options))
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise StreamUnavailable(f"Kafka at {s.bootstrap_servers} did not answer: {exc}") from exc
    if s.input_topic in wanted and s.input_topic in existing:
        have = len(existing[s.input_topic].partitions)
        if have != wanted[s.input_topic]:
            log.warning(
                "topic %s has %d partitions, settings say %d; keeping %d",
                s.input_topic,
                have,
                wanted[s.input_topic],
                have,
            )
    missing = [
        NewTopic(name, num_partitions=n, replication_factor=s.replication_factor)
        for name, n in wanted.items()
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created concurrently by another process
            raise StreamUnavailable(f"Could not create topic {name!r}: {exc}") from exc
    if created:
        log.info("created topics %s", sorted(created))
    return created


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data`` (``org.apache.kafka.common.utils.Utils``).

    Returns the signed 32-bit value Java returns.

    Examples
    --------
    Test vectors of Kafka's ``UtilsTest.testMurmur2``:

    >>> murmur2(b"21"), murmur2(b"foobar"), murmur2(b"a-little-bit-long-string")
    (-973932308, -790332482, -985981536)
    """
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = data[4 * n4 :]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``.

    ``toPositive(murmur2(key)) % partitions``, as the Java client and librdkafka's
    ``murmur2_random`` partitioner compute it for a non-null key.

    Examples
    --------
    >>> partition_for(b"acme/BTC-USD", 8) == (murmur2(b"acme/BTC-USD") & 0x7FFFFFFF) % 8
    True
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}.")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
