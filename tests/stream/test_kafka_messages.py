"""Wire format, partitioning, client configs and stream positions (no broker needed)."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from nqp import store
from nqp.config import Settings
from nqp.stream import positions
from nqp.stream.kafka import (
    StreamError,
    consumer_config,
    murmur2,
    parse_options,
    partition_for,
    producer_config,
)
from nqp.stream.messages import (
    DEAD_LETTER_REASONS,
    BadMessage,
    DeadLetter,
    InputMessage,
    dead_letter_headers,
    decode_input,
    encode_input,
)


def _value(**fields) -> bytes:
    return orjson.dumps({"tenant_id": "acme", "source": "BTC", "data": [1.0], **fields})


def test_a_valid_message_round_trips():
    message = InputMessage(
        tenant_id="acme",
        source="BTC",
        data=[[1.0, 2.0], [3.0, 4.0]],
        timestamp=[10.0, 11.0],
        config={"quantum_enabled": False, "horizon": 3},
        sequence=7,
        reply_to="nqp-replies.gw-1",
        request_id="r1",
    )
    back = decode_input(message.key, encode_input(message), max_points=10)
    assert back == message
    assert back.config.horizon == 3
    assert message.key == b"acme/BTC"


@pytest.mark.parametrize(
    ("key", "value", "reason", "fragment"),
    [
        (b"acme/BTC", b"{not json", "invalid_json", "not UTF-8 JSON"),
        (b"acme/BTC", b"\xff\xfe", "invalid_json", "not UTF-8 JSON"),
        (b"acme/BTC", None, "invalid_json", "no value"),
        (b"acme/BTC", b"[1, 2]", "invalid_schema", "JSON object"),
        (
            b"acme/BTC",
            b'{"tenant_id": "acme", "source": "BTC", "data": NaN}',
            "invalid_data",
            "NaN or Infinity",
        ),
        (
            b"acme/BTC",
            b'{"tenant_id": "acme", "source": "BTC", "data": [1, 1e400]}',
            "invalid_data",
            "NaN or Infinity",
        ),
        (b"acme/BTC", _value(data="1.5"), "invalid_schema", "data"),
        (b"acme/BTC", _value(data=[True]), "invalid_schema", "data"),
        (b"acme/BTC", _value(extra=1), "invalid_schema", "extra"),
        (b"acme/BTC", _value(sequence=0), "invalid_schema", "sequence"),
        (b"acme/BTC", _value(reply_to="gw"), "invalid_schema", "reply_to and request_id"),
        (b"acme/BTC", _value(reply_to="bad topic!", request_id="r"), "invalid_schema", "reply_to"),
        (b"acme/BTC", _value(op="erase"), "invalid_schema", "erase message has no data"),
        (b"acme/BTC", _value(config={"horizon": 0}), "invalid_schema", "config.horizon"),
        (b"acme/ETH", _value(), "key_mismatch", "'acme/BTC'"),
        (None, _value(), "key_mismatch", "None"),
        (b"acme/BTC", _value(data=[1.0] * 11), "too_large", "11 points"),
        (b"acme/BTC", _value(data=[]), "invalid_data", "at least one point"),
        (
            b"a/b/BTC",
            orjson.dumps({"tenant_id": "a/b", "source": "BTC", "data": 1}),
            "invalid_schema",
            "tenant_id",
        ),
    ],
)
def test_bad_messages_name_their_reason(key, value, reason, fragment):
    with pytest.raises(BadMessage) as info:
        decode_input(key, value, max_points=10)
    assert info.value.reason == reason
    assert info.value.reason in DEAD_LETTER_REASONS
    assert fragment in str(info.value)


def test_an_erase_message_needs_no_data():
    message = decode_input(
        b"acme/BTC", orjson.dumps({"tenant_id": "acme", "source": "BTC", "op": "erase"})
    )
    assert message.op == "erase"
    assert message.data is None


def test_dead_letter_headers_round_trip_and_keep_original_headers():
    headers = dead_letter_headers(
        reason="key_mismatch",
        error="x" * 5000,
        topic="realtime-data-input",
        partition=3,
        offset=42,
        timestamp_ms=1700000000000,
        worker_id="w1",
        original=[("trace", b"abc"), ("nqp-dlq-reason", b"stale")],
    )
    assert ("trace", b"abc") in headers
    assert [k for k, _ in headers].count("nqp-dlq-reason") == 1
    dl = DeadLetter.from_record(b"k", b"v", headers)
    assert (dl.reason, dl.topic, dl.partition, dl.offset) == (
        "key_mismatch",
        "realtime-data-input",
        3,
        42,
    )
    assert len(dl.error) == 1000  # bounded
    with pytest.raises(ValueError, match="Unknown dead-letter reason"):
        dead_letter_headers(
            reason="nope",
            error="",
            topic="t",
            partition=0,
            offset=0,
            timestamp_ms=None,
            worker_id="w",
        )


# Kafka's UtilsTest.testMurmur2 vectors (org.apache.kafka.common.utils)
MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), MURMUR2.items())
def test_murmur2_matches_kafka(data, expected):
    assert murmur2(data) == expected


def test_partition_for_is_in_range_and_stable():
    keys = [f"t/s{i}".encode() for i in range(200)]
    parts = [partition_for(k, 7) for k in keys]
    assert all(0 <= p < 7 for p in parts)
    assert len(set(parts)) == 7  # spreads
    assert parts == [partition_for(k, 7) for k in keys]
    with pytest.raises(ValueError, match="at least 1"):
        partition_for(b"k", 0)


def test_client_configs_apply_prefixed_options_to_their_kind_only():
    settings = Settings(stream={"bootstrap_servers": "h:1"})
    options = parse_options(
        ["consumer.session.timeout.ms=3000", "producer.linger.ms=9", "socket.timeout.ms=5000"]
    )
    c = consumer_config(settings, "g", options)
    p = producer_config(settings, options)
    assert c["session.timeout.ms"] == "3000"
    assert "linger.ms" not in c
    assert p["linger.ms"] == "9"
    assert "session.timeout.ms" not in p
    assert c["socket.timeout.ms"] == p["socket.timeout.ms"] == "5000"
    assert c["group.id"] == "g"
    assert c["enable.auto.commit"] is False
    assert p["partitioner"] == "murmur2_random"
    with pytest.raises(StreamError, match="BOOTSTRAP_SERVERS"):
        producer_config(Settings())
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["novalue"])


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nqp.db'}"
    return request.getfixturevalue("fresh_postgres_url")


def test_positions_are_saved_monotonically_with_their_checkpoints(db_url):
    async def go():
        await store.migrate(db_url)
        engine = store.make_engine(db_url)
        sessions = store.make_sessionmaker(engine)
        try:
            async with sessions() as s:
                tid = (await store.get_or_create_tenant(s, name="acme")).id
                await s.commit()
            P = positions.Position
            async with sessions() as s:
                first = await positions.save_states(
                    s,
                    states={
                        (tid, "a"): (b"a1", P(0, 10, 3)),
                        (tid, "b"): (b"b1", P(1, 5, None)),
                        (tid, "c"): (b"c1", P(2, 7, None)),
                        (tid, "d"): (b"d1", P(0, 50, None, "topic-v1")),
                    },
                )
                await s.commit()
            async with sessions() as s:
                # a: older offset (a zombie) -> refused; b: same offset -> accepted;
                # c: another partition (re-partitioned topic) -> accepted;
                # d: older offset of a re-created topic (another id) -> accepted
                second = await positions.save_states(
                    s,
                    states={
                        (tid, "a"): (b"a0", P(0, 9, 2)),
                        (tid, "b"): (b"b2", P(1, 5, 4)),
                        (tid, "c"): (b"c2", P(3, 1, None)),
                        (tid, "d"): (b"d2", P(0, 3, None, "topic-v2")),
                    },
                )
                await s.commit()
            async with sessions() as s:
                got = await positions.load_positions(
                    s, keys=[(tid, "a"), (tid, "b"), (tid, "c"), (tid, "zz")]
                )
                got_d = await positions.load_positions(s, keys=[(tid, "d")])
                blobs = await store.load_checkpoints(s, tenant_id=tid)
                deleted = await positions.delete_position(s, tenant_id=tid, source="a")
                again = await positions.delete_position(s, tenant_id=tid, source="a")
                await s.commit()
            assert got_d == {(tid, "d"): P(0, 3, None, "topic-v2")}
            return tid, first, second, got, blobs, deleted, again
        finally:
            await engine.dispose()

    tid, first, second, got, blobs, deleted, again = asyncio.run(go())
    assert first == {(tid, "a"), (tid, "b"), (tid, "c"), (tid, "d")}
    assert second == {(tid, "b"), (tid, "c"), (tid, "d")}
    assert got == {
        (tid, "a"): positions.Position(0, 10, 3),
        (tid, "b"): positions.Position(1, 5, 4),
        (tid, "c"): positions.Position(3, 1, None),
    }
    assert blobs == {"a": b"a1", "b": b"b2", "c": b"c2", "d": b"d2"}
    assert (deleted, again) == (True, False)


def test_the_documented_schema_example_is_valid():
    example = {
        "tenant_id": "9f0c2b",
        "source": "BTC-USD",
        "data": [[1.5, 20.0], [1.6, 21.0]],
        "timestamp": [1700000000.0, 1700000001.0],
        "config": {"quantum_enabled": False},
        "sequence": 42,
    }
    message = decode_input(b"9f0c2b/BTC-USD", json.dumps(example).encode())
    assert message.sequence == 42
