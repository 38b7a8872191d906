"""The in-process pub/sub bus of embedded mode (engine results → WebSocket hub, ...).

Topics are plain names (``"predictions"``); every subscriber of a topic receives every
message published to it after it subscribed, in publish order. Publishing never blocks.

Drop policy: each subscriber has a bounded queue (``max_queue``). When it is full, the
*oldest* queued message is discarded to make room for the new one and the subscriber's
:attr:`BusSubscription.dropped` counter grows: a slow consumer sees the latest messages
and a count of what it missed, and never holds up the publisher or other subscribers.
Messages are delivered as the same object to every subscriber: treat them as read-only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nqp._validation import Interval, validate_params

__all__ = ["BusSubscription", "InProcessBus", "Message"]

Message = bytes | dict[str, Any]

_CLOSED = object()


class BusSubscription:
    """One subscriber's queue on one topic: an async iterator of messages.

    Iteration ends after :meth:`close` (or :meth:`InProcessBus.close`); undelivered
    messages are then discarded. Use it as a context manager to close it on exit.

    Attributes
    ----------
    topic : str
    dropped : int
        Messages discarded because the queue was full.
    """

    def __init__(self, bus: InProcessBus, topic: str, maxsize: int) -> None:
        self._bus = bus
        self.topic = topic
        self.dropped = 0
        self.closed = False
        self._maxsize = maxsize
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize + 1)  # + 1: the sentinel

    def _offer(self, message: Message) -> None:
        if self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)

    def close(self) -> None:
        """Stop receiving; a waiting reader wakes and iteration ends (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def get(self) -> Message:
        """The next message; raises :class:`StopAsyncIteration` once closed."""
        message = await self._queue.get()
        if message is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise StopAsyncIteration
        return message

    def __aiter__(self) -> BusSubscription:
        return self

    async def __anext__(self) -> Message:
        return await self.get()

    def __enter__(self) -> BusSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InProcessBus:
    """Topic-based fan-out inside one process, with bounded per-subscriber queues.

    Parameters
    ----------
    max_queue : int, default=1000
        Messages each subscriber may have waiting (then the oldest is dropped).

    Attributes
    ----------
    published : int
        Messages published.

    Notes
    -----
    Use it from the event loop's thread; from a worker thread call
    ``loop.call_soon_threadsafe(bus.publish_nowait, topic, message)``.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     bus = InProcessBus(max_queue=2)
    ...     sub = bus.subscribe("predictions")
    ...     for i in range(3):
    ...         await bus.publish("predictions", {"seq": i})
    ...     got = [await sub.get(), await sub.get()]
    ...     return got, sub.dropped
    >>> asyncio.run(main())
    ([{'seq': 1}, {'seq': 2}], 1)
    """

    published: int = 0
    _topics: dict[str, list[BusSubscription]] | None = None

    def __init__(self, max_queue: int = 1000) -> None:
        self.max_queue = max_queue

    def _subscribers(self) -> dict[str, list[BusSubscription]]:
        if self._topics is None:
            validate_params(
                type(self).__name__,
                {"max_queue": self.max_queue},
                {"max_queue": [Interval("int", 1, None)]},
            )
            self._topics = {}
        return self._topics

    def subscribe(self, topic: str) -> BusSubscription:
        """A new subscription to ``topic`` (receives messages published from now on)."""
        sub = BusSubscription(self, topic, self.max_queue)
        self._subscribers().setdefault(topic, []).append(sub)
        return sub

    def publish_nowait(self, topic: str, message: Message) -> int:
        """Deliver ``message`` to every subscriber of ``topic``; returns how many."""
        if not isinstance(message, bytes | dict):
            raise TypeError(f"A bus message is bytes or a dict, got {type(message).__name__}.")
        self.published += 1
        subs = self._subscribers().get(topic, ())
        for sub in subs:
            sub._offer(message)
        return len(subs)

    async def publish(self, topic: str, message: Message) -> int:
        """Deliver ``message`` to every subscriber of ``topic`` (never waits); how many."""
        return self.publish_nowait(topic, message)

    def subscriber_count(self, topic: str) -> int:
        """Open subscriptions to ``topic``."""
        return len(self._subscribers().get(topic, ()))

    def close(self) -> None:
        """Close every subscription."""
        for subs in list(self._subscribers().values()):
            for sub in list(subs):
                sub.close()

    def _remove(self, sub: BusSubscription) -> None:
        topics = self._subscribers()
        subs = topics.get(sub.topic)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del topics[sub.topic]
