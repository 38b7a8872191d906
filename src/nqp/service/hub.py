"""WebSocket fan-out of live predictions, per tenant, with bounded per-client queues.

:class:`PredictionHub` knows nothing about WebSockets: the endpoint parses the client's
subscription message with :func:`parse_subscription`, calls :meth:`PredictionHub.subscribe`
and forwards what the :class:`Subscription` yields. :meth:`PredictionHub.publish` never
blocks: a client whose queue is full is dropped (its iterator ends and
:attr:`Subscription.close_reason` says why) rather than buffered without bound.

Protocol of one subscription (explicit state machine)::

    open ──unsubscribe()/hub.close()──▶ closed (reason: unsubscribed / hub_closed)
      └────── queue full on publish ──▶ closed (reason: slow_consumer)
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from nqp._validation import Interval, validate_params

__all__ = [
    "CloseReason",
    "PredictionHub",
    "Subscription",
    "SubscriptionFilter",
    "SubscriptionRequest",
    "parse_subscription",
]

DIRECTIONS = frozenset({"up", "down", "hold"})
MAX_SOURCES = 1000  # per subscription message
_MAX_SOURCE_LEN = 200
_CLOSED = object()  # queue sentinel: the subscription has ended


class CloseReason(StrEnum):
    """Why a subscription ended."""

    UNSUBSCRIBED = "unsubscribed"
    SLOW_CONSUMER = "slow_consumer"
    HUB_CLOSED = "hub_closed"


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which predictions a subscriber wants (all must hold).

    Parameters
    ----------
    min_confidence : float, default=0.0
        Deliver only predictions with ``confidence >= min_confidence`` (in [0, 1]).
    directions : frozenset of {"up", "down", "hold"}, optional
        Deliver only these directions; ``None`` means all.
    """

    min_confidence: float = 0.0
    directions: frozenset[str] | None = None

    def matches(self, prediction: Mapping[str, Any]) -> bool:
        """True if ``prediction`` (a dict with ``confidence`` and ``direction``) passes."""
        if self.min_confidence > 0.0 and prediction["confidence"] < self.min_confidence:
            return False
        return self.directions is None or prediction["direction"] in self.directions


@dataclass(frozen=True)
class SubscriptionRequest:
    """A validated subscription message: which sources (``None`` = all) and filters."""

    sources: frozenset[str] | None
    filters: SubscriptionFilter


def parse_subscription(message: str | bytes | Mapping[str, Any]) -> SubscriptionRequest:
    """Validate a client's subscription message.

    The message is ``{"type": "subscription", "sources": [...], "filters":
    {"min_confidence": 0.6, "directions": ["up"]}}``; ``sources`` (omitted or ``null``:
    every source of the tenant) and ``filters`` (and each filter) are optional.

    Parameters
    ----------
    message : str, bytes or mapping
        The JSON text or the decoded object.

    Returns
    -------
    SubscriptionRequest

    Raises
    ------
    ValueError
        Naming the offending field, e.g. ``"filters.min_confidence must be a number in
        [0, 1], got 1.5."``

    Examples
    --------
    >>> req = parse_subscription(
    ...     '{"type": "subscription", "sources": ["BTC"], "filters": {"directions": ["up"]}}'
    ... )
    >>> sorted(req.sources), sorted(req.filters.directions), req.filters.min_confidence
    (['BTC'], ['up'], 0.0)
    >>> parse_subscription({"type": "subscription", "filters": {"min_confidence": 2}})
    Traceback (most recent call last):
    ...
    ValueError: filters.min_confidence must be a number in [0, 1], got 2.
    """
    if isinstance(message, str | bytes):
        try:
            message = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise ValueError("The subscription message is not valid JSON.") from None
    if not isinstance(message, Mapping):
        raise ValueError("The subscription message must be a JSON object.")
    unknown = set(message) - {"type", "sources", "filters"}
    if unknown:
        raise ValueError(
            f"Unknown field(s) {sorted(unknown)} in the subscription message; "
            "expected 'type', 'sources', 'filters'."
        )
    if message.get("type") != "subscription":
        raise ValueError(f"type must be 'subscription', got {message.get('type')!r}.")
    sources = _parse_sources(message.get("sources"))
    filters = message.get("filters")
    if filters is None:
        return SubscriptionRequest(sources, SubscriptionFilter())
    if not isinstance(filters, Mapping):
        raise ValueError(f"filters must be an object, got {type(filters).__name__}.")
    unknown = set(filters) - {"min_confidence", "directions"}
    if unknown:
        raise ValueError(
            f"Unknown filter(s) {sorted(unknown)}; expected 'min_confidence', 'directions' "
            "(sources go at the top level)."
        )
    min_confidence = filters.get("min_confidence", 0.0)
    if min_confidence is None:
        min_confidence = 0.0
    if (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, int | float)
        or not 0.0 <= min_confidence <= 1.0
    ):
        raise ValueError(
            f"filters.min_confidence must be a number in [0, 1], got {min_confidence!r}."
        )
    directions = filters.get("directions")
    if directions is not None:
        if not isinstance(directions, list | tuple) or not directions:
            raise ValueError("filters.directions must be a non-empty list of up/down/hold.")
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad:
            raise ValueError(
                f"filters.directions must hold only 'up', 'down', 'hold', got {bad[0]!r}."
            )
        directions = frozenset(directions)
    return SubscriptionRequest(sources, SubscriptionFilter(float(min_confidence), directions))


def _parse_sources(sources: Any) -> frozenset[str] | None:
    if sources is None:
        return None
    if not isinstance(sources, list | tuple) or not sources:
        raise ValueError(
            "sources must be a non-empty list of source names (omit it for every source)."
        )
    if len(sources) > MAX_SOURCES:
        raise ValueError(f"sources may name at most {MAX_SOURCES} sources, got {len(sources)}.")
    for i, s in enumerate(sources):
        if not isinstance(s, str) or not 0 < len(s) <= _MAX_SOURCE_LEN:
            raise ValueError(
                f"sources[{i}] must be a string of 1-{_MAX_SOURCE_LEN} characters, got {s!r}."
            )
    return frozenset(sources)


class Subscription:
    """One client's live feed: an async iterator over the messages delivered to it.

    Created by :meth:`PredictionHub.subscribe`; iteration ends when the subscription is
    closed (undelivered messages are discarded), after which :attr:`close_reason` tells
    why. Use it as a context manager to unsubscribe on exit.

    Attributes
    ----------
    tenant_id : str
    sources : frozenset of str or None
        Sources delivered (``None``: all of the tenant's).
    filters : SubscriptionFilter
    close_reason : CloseReason or None
        ``None`` while open.
    delivered : int
        Messages queued for this subscriber so far.
    """

    def __init__(
        self,
        hub: PredictionHub,
        sub_id: int,
        tenant_id: str,
        sources: frozenset[str] | None,
        filters: SubscriptionFilter,
        maxsize: int,
    ) -> None:
        self._hub = hub
        self.id = sub_id
        self.tenant_id = tenant_id
        self.sources = sources
        self.filters = filters
        self.close_reason: CloseReason | None = None
        self.delivered = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize + 1)  # + 1: the sentinel
        self._maxsize = maxsize

    @property
    def closed(self) -> bool:
        """True once the subscription has ended."""
        return self.close_reason is not None

    @property
    def backlog(self) -> int:
        """Messages queued but not yet consumed."""
        return self._queue.qsize()

    def update(self, request: SubscriptionRequest) -> None:
        """Replace the sources and filters (a client's new subscription message)."""
        self.sources = request.sources
        self.filters = request.filters

    def wants(self, prediction: Mapping[str, Any]) -> bool:
        """True if ``prediction`` passes this subscription's sources and filters."""
        if self.sources is not None and prediction["source"] not in self.sources:
            return False
        return self.filters.matches(prediction)

    def _offer(self, message: Any) -> bool:
        """Queue ``message``; False if the queue is full (the hub then drops us)."""
        if self._queue.qsize() >= self._maxsize:
            return False
        self._queue.put_nowait(message)
        self.delivered += 1
        return True

    def _close(self, reason: CloseReason) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        while not self._queue.empty():  # discard the backlog, then wake the reader
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def get(self) -> Any:
        """The next message; raises :class:`StopAsyncIteration` once closed."""
        message = await self._queue.get()
        if message is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later calls end too
            raise StopAsyncIteration
        return message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._hub.unsubscribe(self)

    def __repr__(self) -> str:
        state = "open" if self.close_reason is None else f"closed: {self.close_reason}"
        return f"<Subscription {self.id} tenant={self.tenant_id!r} {state}>"


class PredictionHub:
    """Fan predictions out to the subscriptions of their tenant only.

    Parameters
    ----------
    max_queue_per_client : int, default=100
        Messages a subscriber may have waiting; one more and it is dropped
        (:attr:`CloseReason.SLOW_CONSUMER`).
    encode : callable, optional
        ``encode(prediction) -> message``, applied once per published prediction that at
        least one subscriber wants (e.g. ``orjson.dumps`` to serialise once for all
        clients). Default: subscribers receive the published mapping itself, shared
        between them (treat it as read-only).

    Attributes
    ----------
    published : int
        Predictions published.
    delivered : int
        Messages queued to subscribers.
    dropped : int
        Subscribers dropped for being too slow.

    Notes
    -----
    Call :meth:`publish` and :meth:`subscribe` on the event loop's thread (from another
    thread: ``loop.call_soon_threadsafe(hub.publish, tenant_id, prediction)``).

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     hub = PredictionHub()
    ...     sub = hub.subscribe("t1", {"BTC"}, SubscriptionFilter(min_confidence=0.5))
    ...     hub.publish("t1", {"source": "BTC", "direction": "up", "confidence": 0.9})
    ...     hub.publish("t1", {"source": "BTC", "direction": "up", "confidence": 0.1})
    ...     hub.publish("t2", {"source": "BTC", "direction": "up", "confidence": 0.9})
    ...     hub.unsubscribe(sub)
    ...     return [m async for m in sub] == [], sub.delivered, sub.close_reason.value
    >>> asyncio.run(main())
    (True, 1, 'unsubscribed')
    """

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    _subs: dict[str, dict[int, Subscription]] | None = None  # tenant -> id -> subscription

    def __init__(
        self,
        max_queue_per_client: int = 100,
        *,
        encode: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self.max_queue_per_client = max_queue_per_client
        self.encode = encode

    def _tenants(self) -> dict[str, dict[int, Subscription]]:
        if self._subs is None:  # first use: validate, then build the state
            validate_params(
                type(self).__name__,
                {"max_queue_per_client": self.max_queue_per_client},
                {"max_queue_per_client": [Interval("int", 1, None)]},
            )
            self._subs = {}
            self._ids = itertools.count(1)
        return self._subs

    def subscribe(
        self,
        tenant_id: str,
        sources: Iterable[str] | None = None,
        filters: SubscriptionFilter | None = None,
    ) -> Subscription:
        """Open a subscription to ``tenant_id``'s predictions.

        Parameters
        ----------
        tenant_id : str
        sources : iterable of str, optional
            Only these sources (``None``: all).
        filters : SubscriptionFilter, optional
            Default: no filtering.
        """
        tenants = self._tenants()
        sub = Subscription(
            self,
            next(self._ids),
            tenant_id,
            None if sources is None else frozenset(sources),
            SubscriptionFilter() if filters is None else filters,
            self.max_queue_per_client,
        )
        tenants.setdefault(tenant_id, {})[sub.id] = sub
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription and end its iterator (idempotent)."""
        self._remove(subscription, CloseReason.UNSUBSCRIBED)

    def publish(self, tenant_id: str, prediction: Mapping[str, Any]) -> int:
        """Queue ``prediction`` to every matching subscriber of ``tenant_id``; never blocks.

        Parameters
        ----------
        tenant_id : str
        prediction : mapping
            Must hold ``source``, ``direction`` (up/down/hold) and ``confidence``.

        Returns
        -------
        int
            Subscribers it was queued to. Subscribers whose queue was full are dropped.
        """
        self.published += 1
        subs = self._tenants().get(tenant_id)
        if not subs:
            return 0
        confidence = prediction.get("confidence")
        if "source" not in prediction or "direction" not in prediction or confidence is None:
            raise ValueError("A published prediction needs 'source', 'direction', 'confidence'.")
        message: Any = None
        encoded = False
        count = 0
        slow: list[Subscription] = []
        for sub in subs.values():
            if not sub.wants(prediction):
                continue
            if not encoded:
                message = prediction if self.encode is None else self.encode(prediction)
                encoded = True
            if sub._offer(message):
                count += 1
            else:
                slow.append(sub)
        for sub in slow:
            self.dropped += 1
            self._remove(sub, CloseReason.SLOW_CONSUMER)
        self.delivered += count
        return count

    def subscriber_count(self, tenant_id: str | None = None) -> int:
        """Open subscriptions, of one tenant or in all."""
        tenants = self._tenants()
        if tenant_id is not None:
            return len(tenants.get(tenant_id, ()))
        return sum(len(s) for s in tenants.values())

    def close(self) -> None:
        """End every subscription (on shutdown)."""
        for subs in list(self._tenants().values()):
            for sub in list(subs.values()):
                self._remove(sub, CloseReason.HUB_CLOSED)

    def _remove(self, sub: Subscription, reason: CloseReason) -> None:
        tenants = self._tenants()
        subs = tenants.get(sub.tenant_id)
        if subs is not None and subs.pop(sub.id, None) is not None and not subs:
            del tenants[sub.tenant_id]
        sub._close(reason)
