"""InProcessBus: topics, ordering, drop-oldest back-pressure, closing."""

from __future__ import annotations

import asyncio

import pytest

from nqp.exceptions import InvalidParameterError
from nqp.stream import BusSubscription, InProcessBus


def drain(sub: BusSubscription) -> list:
    out = []
    while sub._queue.qsize():
        out.append(sub._queue.get_nowait())
    return out


async def test_every_subscriber_of_a_topic_gets_every_message_in_order():
    bus = InProcessBus()
    a, b = bus.subscribe("predictions"), bus.subscribe("predictions")
    other = bus.subscribe("quantum-results")
    for i in range(5):
        assert await bus.publish("predictions", {"seq": i}) == 2
    assert bus.publish_nowait("quantum-results", b"raw") == 1
    assert bus.publish_nowait("nobody", b"x") == 0
    assert [m["seq"] for m in drain(a)] == list(range(5))
    assert [m["seq"] for m in drain(b)] == list(range(5))
    assert drain(other) == [b"raw"]
    assert bus.published == 7


async def test_late_subscribers_see_only_later_messages():
    bus = InProcessBus()
    bus.publish_nowait("t", b"early")
    sub = bus.subscribe("t")
    bus.publish_nowait("t", b"late")
    assert drain(sub) == [b"late"]


async def test_full_queue_drops_the_oldest_and_counts():
    bus = InProcessBus(max_queue=3)
    slow = bus.subscribe("t")
    fast = bus.subscribe("t")
    seen_by_fast = []
    for i in range(10):
        bus.publish_nowait("t", {"seq": i})
        seen_by_fast += [m["seq"] for m in drain(fast)]
    assert seen_by_fast == list(range(10))
    assert [m["seq"] for m in drain(slow)] == [7, 8, 9]
    assert (slow.dropped, fast.dropped) == (7, 0)


async def test_async_iteration_and_close_wake_the_reader():
    bus = InProcessBus()
    sub = bus.subscribe("t")
    got = []

    async def reader() -> None:
        async for message in sub:
            got.append(message)

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)
    bus.publish_nowait("t", b"1")
    bus.publish_nowait("t", b"2")
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, timeout=5)
    assert got == [b"1", b"2"]
    assert bus.subscriber_count("t") == 0
    assert bus.publish_nowait("t", b"3") == 0
    with pytest.raises(StopAsyncIteration):
        await sub.get()
    sub.close()  # idempotent


async def test_bus_close_and_context_manager():
    bus = InProcessBus()
    with bus.subscribe("a") as sub:
        assert bus.subscriber_count("a") == 1
    assert sub.closed
    subs = [bus.subscribe("a"), bus.subscribe("b")]
    bus.close()
    assert all(s.closed for s in subs)
    assert bus._topics == {}


async def test_messages_must_be_bytes_or_dict():
    bus = InProcessBus()
    with pytest.raises(TypeError, match="bytes or a dict"):
        bus.publish_nowait("t", "text")  # type: ignore[arg-type]


def test_max_queue_is_validated_on_first_use():
    with pytest.raises(InvalidParameterError, match="'max_queue' parameter of InProcessBus"):
        InProcessBus(max_queue=0).subscribe("t")
