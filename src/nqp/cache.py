"""Two-level cache: a bounded in-process L1 (LRU + TTL) over an optional Redis L2.

Cached values are bytes (optimisation results by problem hash, validation reports,
source snapshots). Redis is an accelerator, never a dependency: every L2 call has a short
timeout and goes through a :class:`~nqp.service.breaker.CircuitBreaker`, and when Redis is
slow or down the cache keeps working from L1 alone, counting the L2 errors, never raising
them to the caller.

Consistency: an L1 entry can outlive a delete or overwrite made by another process
through Redis for at most the L1 TTL; give L1 a short TTL where that matters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nqp._validation import Interval, validate_params
from nqp.service.breaker import CircuitBreaker, CircuitOpenError

__all__ = ["CacheStats", "TTLCache", "TieredCache"]

log = logging.getLogger("nqp.cache")

V = TypeVar("V")

_MISSING = object()


class TTLCache(Generic[V]):
    """A bounded mapping whose entries expire: least-recently-used eviction plus a TTL.

    Parameters
    ----------
    maxsize : int
        Most entries held; inserting one more evicts the least recently used.
    ttl_s : float
        Default lifetime of an entry in seconds (``set`` may override it per entry).
    clock : callable, default=time.monotonic
        Seconds, monotonic (tests pass a fake clock).

    Attributes
    ----------
    hits, misses, evictions, expirations : int
        Counters: lookups found / not found (expired counts as a miss), entries evicted
        for space, entries found expired.

    Examples
    --------
    >>> now = [0.0]
    >>> cache = TTLCache(maxsize=2, ttl_s=10, clock=lambda: now[0])
    >>> cache.set("a", b"1"); cache.set("b", b"2"); cache.get("a")
    b'1'
    >>> cache.set("c", b"3")  # evicts "b", the least recently used
    >>> cache.get("b") is None, cache.get("c")
    (True, b'3')
    >>> now[0] = 10.0
    >>> cache.get("a") is None  # expired
    True
    """

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    _data: OrderedDict[str, tuple[float, V]] | None = None  # key -> (expires_at, value)

    def __init__(
        self, maxsize: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.maxsize = maxsize
        self.ttl_s = ttl_s
        self.clock = clock

    def _store(self) -> OrderedDict[str, tuple[float, V]]:
        if self._data is None:
            validate_params(
                type(self).__name__,
                {"maxsize": self.maxsize, "ttl_s": self.ttl_s},
                {
                    "maxsize": [Interval("int", 1, None)],
                    "ttl_s": [Interval("real", 0, None, "neither")],
                },
            )
            self._data = OrderedDict()
        return self._data

    def get(self, key: str) -> V | None:
        """The live value under ``key`` (now the most recently used), else ``None``."""
        data = self._store()
        entry = data.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry[0] <= self.clock():
            del data[key]
            self.expirations += 1
            self.misses += 1
            return None
        data.move_to_end(key)
        self.hits += 1
        return entry[1]

    def set(self, key: str, value: V, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` seconds (default: the cache's ``ttl_s``)."""
        data = self._store()
        ttl = self.ttl_s if ttl_s is None else ttl_s
        if key in data:
            data.move_to_end(key)
        elif len(data) >= self.maxsize:
            data.popitem(last=False)
            self.evictions += 1
        data[key] = (self.clock() + ttl, value)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was present (expired or not)."""
        return self._store().pop(key, _MISSING) is not _MISSING

    def clear(self) -> None:
        """Remove every entry."""
        self._store().clear()

    def __len__(self) -> int:
        """Entries held, including expired ones not yet found."""
        return len(self._store())


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`TieredCache` (for metrics exporters)."""

    l1_hits: int
    l1_misses: int
    l1_evictions: int
    l2_hits: int
    l2_misses: int
    l2_errors: int
    l2_short_circuited: int
    computed: int


class TieredCache:
    """An L1 :class:`TTLCache` in front of an optional Redis L2, for bytes values.

    Parameters
    ----------
    l1 : TTLCache
        The in-process level.
    redis_url : str or None
        ``redis://host:port/db``; ``None`` for L1 only.
    prefix : str, default="nqp:cache:"
        Prepended to every Redis key (namespaces tenants of the same Redis).
    ttl_s : float, default=300.0
        Default lifetime of an L2 entry in seconds (L1 entries use ``l1.ttl_s``, or the
        shorter of the two when ``set`` is given an explicit ``ttl_s``).
    breaker : CircuitBreaker, optional
        Guards every Redis call. Default: ``CircuitBreaker(5, 30.0, name="redis-cache")``.
    timeout_s : float, default=0.25
        Limit of each Redis call, seconds (also the socket connect/read timeouts).

    Attributes
    ----------
    stats : CacheStats
        Hit/miss counters per level, L2 errors (failed or timed-out calls) and short
        circuits (calls skipped while the breaker was open), values computed.

    Notes
    -----
    :meth:`get_or_compute` computes a missing value once per process even when many tasks
    ask for it at the same time (the others await the same computation).
    """

    _ready: bool = False

    def __init__(
        self,
        l1: TTLCache[bytes],
        redis_url: str | None = None,
        prefix: str = "nqp:cache:",
        ttl_s: float = 300.0,
        breaker: CircuitBreaker | None = None,
        *,
        timeout_s: float = 0.25,
    ) -> None:
        self.l1 = l1
        self.redis_url = redis_url
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.breaker = breaker
        self.timeout_s = timeout_s

    def _setup(self) -> None:
        validate_params(
            type(self).__name__,
            {"ttl_s": self.ttl_s, "timeout_s": self.timeout_s, "redis_url": self.redis_url},
            {
                "ttl_s": [Interval("real", 0, None, "neither")],
                "timeout_s": [Interval("real", 0, None, "neither")],
                "redis_url": [str, None],
            },
        )
        self._breaker = (
            self.breaker
            if self.breaker is not None
            else CircuitBreaker(5, 30.0, name="redis-cache")
        )
        self._redis: Any = None
        if self.redis_url is not None:
            import redis.asyncio as redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._redis = redis.Redis.from_url(
                self.redis_url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),  # the breaker decides when to try again
            )
        self._counts = dict.fromkeys(
            ("l2_hits", "l2_misses", "l2_errors", "l2_short_circuited", "computed"), 0
        )
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._ready = True

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        if not self._ready:
            self._setup()
        return CacheStats(
            l1_hits=self.l1.hits,
            l1_misses=self.l1.misses,
            l1_evictions=self.l1.evictions,
            **self._counts,
        )

    async def _l2(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a Redis method through the breaker; ``_MISSING`` on any failure."""
        try:
            return await self._breaker.call(
                getattr(self._redis, method), *args, timeout_s=self.timeout_s, **kwargs
            )
        except CircuitOpenError:
            self._counts["l2_short_circuited"] += 1
        except Exception as exc:  # Redis errors, OSError, TimeoutError: degrade to L1
            self._counts["l2_errors"] += 1
            log.debug("redis %s failed: %r", method, exc)
        return _MISSING

    async def get(self, key: str) -> bytes | None:
        """The value under ``key`` from L1, else L2 (then kept in L1), else ``None``."""
        if not self._ready:
            self._setup()
        value = self.l1.get(key)
        if value is not None or self._redis is None:
            return value
        found = await self._l2("get", self.prefix + key)
        if found is _MISSING:
            return None
        if found is None:
            self._counts["l2_misses"] += 1
            return None
        self._counts["l2_hits"] += 1
        self.l1.set(key, found)
        return bytes(found)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store ``value`` in both levels for ``ttl_s`` seconds (default: ``self.ttl_s``)."""
        if not self._ready:
            self._setup()
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"TieredCache stores bytes, got {type(value).__name__}.")
        ttl = self.ttl_s if ttl_s is None else ttl_s
        if not ttl > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl!r}.")
        value = bytes(value)
        self.l1.set(key, value, min(ttl, self.l1.ttl_s))
        if self._redis is not None:
            await self._l2("set", self.prefix + key, value, px=max(1, round(ttl * 1000)))

    async def delete(self, key: str) -> None:
        """Remove ``key`` from both levels."""
        if not self._ready:
            self._setup()
        self.l1.delete(key)
        if self._redis is not None:
            await self._l2("delete", self.prefix + key)

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_s: float | None = None
    ) -> bytes:
        """The cached value of ``key``, or ``await compute()`` stored under it.

        Concurrent calls for the same missing key share one computation; if it raises,
        every caller gets the exception and nothing is cached.
        """
        value = await self.get(key)
        if value is not None:
            return value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute, ttl_s))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._computed(key, t))
        # shielded: a caller that gives up does not cancel the others' computation
        return await asyncio.shield(task)

    async def _compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_s: float | None
    ) -> bytes:
        value = await compute()
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"compute() must return bytes, got {type(value).__name__}.")
        value = bytes(value)
        self._counts["computed"] += 1
        await self.set(key, value, ttl_s)
        return value

    def _computed(self, key: str, task: asyncio.Task[bytes]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved even when every caller has gone

    async def aclose(self) -> None:
        """Close the Redis connections (the cache stays usable from L1)."""
        if self._ready and self._redis is not None:
            await self._redis.aclose()
