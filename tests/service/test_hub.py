"""PredictionHub: tenant isolation, filters, slow-client dropping, unsubscribe; the parser."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from nqp.exceptions import InvalidParameterError
from nqp.service.hub import (
    CloseReason,
    PredictionHub,
    SubscriptionFilter,
    SubscriptionRequest,
    parse_subscription,
)


def pred(source: str = "s", direction: str = "up", confidence: float = 0.9, seq: int = 0):
    return {"source": source, "direction": direction, "confidence": confidence, "sequence": seq}


def backlog(sub) -> list:
    """Everything queued for ``sub`` right now (without waiting)."""
    out = []
    while sub.backlog:
        out.append(sub._queue.get_nowait())
    return out


async def test_tenants_never_see_each_others_predictions():
    hub = PredictionHub()
    a = hub.subscribe("tenant-a", None, SubscriptionFilter())
    b = hub.subscribe("tenant-b", None, SubscriptionFilter())
    assert hub.publish("tenant-a", pred("x", seq=1)) == 1
    assert hub.publish("tenant-b", pred("x", seq=2)) == 1
    assert hub.publish("tenant-c", pred("x", seq=3)) == 0
    assert [m["sequence"] for m in backlog(a)] == [1]
    assert [m["sequence"] for m in backlog(b)] == [2]
    assert (hub.published, hub.delivered) == (3, 2)


async def test_filters_by_source_confidence_and_direction():
    hub = PredictionHub()
    everything = hub.subscribe("t", None, SubscriptionFilter())
    only_btc = hub.subscribe("t", {"BTC"}, SubscriptionFilter())
    confident = hub.subscribe("t", None, SubscriptionFilter(min_confidence=0.6))
    ups = hub.subscribe("t", None, SubscriptionFilter(directions=frozenset({"up"})))
    both = hub.subscribe(
        "t", {"ETH"}, SubscriptionFilter(min_confidence=0.5, directions=frozenset({"down"}))
    )
    stream = [
        pred("BTC", "up", 0.9, 1),
        pred("ETH", "down", 0.55, 2),
        pred("ETH", "down", 0.4, 3),
        pred("BTC", "hold", 0.6, 4),  # exactly min_confidence: delivered
        pred("SOL", "up", 0.59, 5),
    ]
    for p in stream:
        hub.publish("t", p)
    seqs = {
        name: [m["sequence"] for m in backlog(sub)]
        for name, sub in [
            ("everything", everything),
            ("only_btc", only_btc),
            ("confident", confident),
            ("ups", ups),
            ("both", both),
        ]
    }
    assert seqs == {
        "everything": [1, 2, 3, 4, 5],
        "only_btc": [1, 4],
        "confident": [1, 4],
        "ups": [1, 5],
        "both": [2],
    }


async def test_direction_enum_values_match_string_filters():
    from nqp.types import Direction

    hub = PredictionHub()
    sub = hub.subscribe("t", None, SubscriptionFilter(directions=frozenset({"down"})))
    hub.publish("t", pred(direction=Direction.DOWN))
    hub.publish("t", pred(direction=Direction.UP))
    assert [m["direction"] for m in backlog(sub)] == ["down"]


async def test_slow_client_is_dropped_while_fast_ones_keep_receiving():
    hub = PredictionHub(max_queue_per_client=3)
    slow = hub.subscribe("t", None, SubscriptionFilter())
    fast = hub.subscribe("t", None, SubscriptionFilter())
    received: list[int] = []
    for i in range(10):
        hub.publish("t", pred(seq=i))
        received.extend(m["sequence"] for m in backlog(fast))  # the fast client keeps up
    assert received == list(range(10))
    assert slow.close_reason is CloseReason.SLOW_CONSUMER
    assert slow.delivered == 3  # never more than its bound was queued
    assert hub.dropped == 1
    assert hub.subscriber_count("t") == 1
    assert [m async for m in slow] == []  # its iterator ends at once, backlog discarded
    assert fast.close_reason is None


async def test_iteration_delivers_in_order_and_unsubscribe_ends_it():
    hub = PredictionHub()
    sub = hub.subscribe("t", None, SubscriptionFilter())
    got: list[int] = []

    async def reader() -> None:
        async for message in sub:
            got.append(message["sequence"])
            if len(got) == 3:
                hub.unsubscribe(sub)

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)  # the reader is waiting on an empty queue
    for i in range(3):
        hub.publish("t", pred(seq=i))
    await asyncio.wait_for(task, timeout=5)
    assert got == [0, 1, 2]
    assert sub.close_reason is CloseReason.UNSUBSCRIBED
    assert hub.publish("t", pred(seq=9)) == 0
    assert hub.subscriber_count() == 0
    assert hub._subs == {}  # no empty tenant entries left behind
    hub.unsubscribe(sub)  # idempotent
    with pytest.raises(StopAsyncIteration):
        await sub.get()


async def test_a_waiting_reader_wakes_when_unsubscribed():
    hub = PredictionHub()
    sub = hub.subscribe("t")
    task = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    hub.unsubscribe(sub)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(task, timeout=5)


async def test_context_manager_unsubscribes_and_close_ends_everything():
    hub = PredictionHub()
    with hub.subscribe("t") as sub:
        assert hub.subscriber_count("t") == 1
    assert sub.closed
    assert hub.subscriber_count() == 0
    subs = [hub.subscribe(t) for t in ("a", "b", "b")]
    hub.close()
    assert [s.close_reason for s in subs] == [CloseReason.HUB_CLOSED] * 3
    assert hub.subscriber_count() == 0


async def test_update_replaces_sources_and_filters():
    hub = PredictionHub()
    sub = hub.subscribe("t", {"a"})
    hub.publish("t", pred("b", seq=1))
    sub.update(parse_subscription({"type": "subscription", "sources": ["b"]}))
    hub.publish("t", pred("b", seq=2))
    assert [m["sequence"] for m in backlog(sub)] == [2]


async def test_encode_runs_once_per_prediction_and_only_when_wanted():
    calls: list[dict] = []

    def encode(p):
        calls.append(p)
        return orjson.dumps(p)

    hub = PredictionHub(encode=encode)
    subs = [hub.subscribe("t", {"a"}) for _ in range(5)]
    hub.publish("t", pred("a", seq=1))
    hub.publish("t", pred("zzz", seq=2))  # nobody wants it: not encoded
    assert [c["sequence"] for c in calls] == [1]
    for s in subs:
        assert [orjson.loads(m)["sequence"] for m in backlog(s)] == [1]


async def test_publish_rejects_a_prediction_without_the_filtered_fields():
    hub = PredictionHub()
    hub.subscribe("t")
    with pytest.raises(ValueError, match="'source', 'direction', 'confidence'"):
        hub.publish("t", {"source": "s", "direction": "up"})


async def test_hub_parameter_is_validated_on_first_use():
    with pytest.raises(InvalidParameterError, match="'max_queue_per_client'"):
        PredictionHub(max_queue_per_client=0).subscribe("t")


# ------------------------------------------------------------------ the subscription message
def test_parse_full_message_from_text_and_bytes():
    text = (
        '{"type":"subscription","sources":["BTC","ETH"],'
        '"filters":{"min_confidence":0.6,"directions":["up","down"]}}'
    )
    expected = SubscriptionRequest(
        frozenset({"BTC", "ETH"}), SubscriptionFilter(0.6, frozenset({"up", "down"}))
    )
    assert parse_subscription(text) == expected
    assert parse_subscription(text.encode()) == expected


def test_parse_defaults():
    assert parse_subscription({"type": "subscription"}) == SubscriptionRequest(
        None, SubscriptionFilter()
    )
    assert parse_subscription(
        {"type": "subscription", "sources": None, "filters": {"min_confidence": 1}}
    ) == SubscriptionRequest(None, SubscriptionFilter(1.0, None))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"type": "subscribe"}, "type must be 'subscription'"),
        ({"sources": ["a"]}, "type must be 'subscription'"),
        ({"type": "subscription", "extra": 1}, r"Unknown field\(s\) \['extra'\]"),
        ({"type": "subscription", "sources": "BTC"}, "sources must be a non-empty list"),
        ({"type": "subscription", "sources": []}, "sources must be a non-empty list"),
        ({"type": "subscription", "sources": ["a", 3]}, r"sources\[1\] must be a string"),
        ({"type": "subscription", "sources": ["a", ""]}, r"sources\[1\] must be a string"),
        ({"type": "subscription", "sources": ["x"] * 1001}, "at most 1000"),
        ({"type": "subscription", "filters": [1]}, "filters must be an object"),
        ({"type": "subscription", "filters": {"sources": ["a"]}}, r"Unknown filter\(s\)"),
        ({"type": "subscription", "filters": {"min_confidence": 1.5}}, "filters.min_confidence"),
        ({"type": "subscription", "filters": {"min_confidence": -0.1}}, "filters.min_confidence"),
        ({"type": "subscription", "filters": {"min_confidence": "0.5"}}, "filters.min_confidence"),
        ({"type": "subscription", "filters": {"min_confidence": True}}, "filters.min_confidence"),
        ({"type": "subscription", "filters": {"directions": "up"}}, "filters.directions"),
        ({"type": "subscription", "filters": {"directions": []}}, "filters.directions"),
        ({"type": "subscription", "filters": {"directions": ["UP"]}}, "got 'UP'"),
    ],
)
def test_parse_errors_name_the_field(message, field):
    with pytest.raises(ValueError, match=field):
        parse_subscription(message)
