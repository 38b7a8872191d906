"""TTLCache (fake clock) and TieredCache (real Redis; unreachable Redis)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nqp.cache import TieredCache, TTLCache
from nqp.exceptions import InvalidParameterError
from nqp.service.breaker import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ L1
def test_ttl_expiry_is_exact_on_the_fake_clock():
    clock = FakeClock()
    cache = TTLCache(maxsize=10, ttl_s=5.0, clock=clock)
    cache.set("a", b"1")
    cache.set("b", b"2", ttl_s=1.0)
    clock.now = 0.999
    assert (cache.get("a"), cache.get("b")) == (b"1", b"2")
    clock.now = 1.0
    assert cache.get("b") is None
    clock.now = 4.999
    assert cache.get("a") == b"1"
    clock.now = 5.0
    assert cache.get("a") is None
    assert (cache.hits, cache.misses, cache.expirations) == (3, 2, 2)
    assert len(cache) == 0  # expired entries found are removed


def test_lru_eviction_keeps_the_recently_used():
    clock = FakeClock()
    cache = TTLCache(maxsize=3, ttl_s=100.0, clock=clock)
    for k in "abc":
        cache.set(k, k.encode())
    assert cache.get("a") == b"a"  # order of use now: b, c, a
    cache.set("b", b"B")  # overwriting refreshes too: c, a, b
    cache.set("d", b"d")  # evicts c
    assert cache.get("c") is None
    assert [cache.get(k) for k in "abd"] == [b"a", b"B", b"d"]
    assert cache.evictions == 1
    assert len(cache) == 3


def test_overwrite_resets_the_ttl_and_delete_and_clear():
    clock = FakeClock()
    cache = TTLCache(maxsize=4, ttl_s=2.0, clock=clock)
    cache.set("a", b"1")
    clock.now = 1.5
    cache.set("a", b"2")
    clock.now = 3.0
    assert cache.get("a") == b"2"
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    cache.set("x", b"x")
    cache.clear()
    assert len(cache) == 0


def test_ttl_cache_parameters_are_validated_on_first_use():
    with pytest.raises(InvalidParameterError, match="'maxsize' parameter of TTLCache"):
        TTLCache(maxsize=0, ttl_s=1.0).get("k")
    with pytest.raises(InvalidParameterError, match="'ttl_s' parameter of TTLCache"):
        TTLCache(maxsize=1, ttl_s=0.0).set("k", b"")


# ------------------------------------------------------------------ L1 only
async def test_tiered_without_redis_is_l1_only():
    cache = TieredCache(TTLCache(8, 60.0), None, prefix="p:")
    assert await cache.get("k") is None
    await cache.set("k", b"v")
    assert await cache.get("k") == b"v"
    await cache.delete("k")
    assert await cache.get("k") is None
    stats = cache.stats
    assert (stats.l1_hits, stats.l1_misses, stats.l2_hits, stats.l2_errors) == (1, 2, 0, 0)
    with pytest.raises(TypeError, match="stores bytes"):
        await cache.set("k", "text")  # type: ignore[arg-type]


async def test_get_or_compute_computes_once_for_concurrent_callers():
    cache = TieredCache(TTLCache(8, 60.0), None)
    release = asyncio.Event()
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"result"

    waiters = [asyncio.ensure_future(cache.get_or_compute("k", compute)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == [b"result"] * 5
    assert calls == 1
    assert await cache.get_or_compute("k", compute) == b"result"  # now cached
    assert calls == 1
    assert cache.stats.computed == 1


async def test_get_or_compute_failure_reaches_every_caller_and_is_not_cached():
    cache = TieredCache(TTLCache(8, 60.0), None)
    release = asyncio.Event()

    async def broken() -> bytes:
        await release.wait()
        raise ValueError("solver failed")

    waiters = [asyncio.ensure_future(cache.get_or_compute("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)

    async def fixed() -> bytes:
        return b"ok"

    assert await cache.get_or_compute("k", fixed) == b"ok"


async def test_a_cancelled_caller_does_not_cancel_the_others():
    cache = TieredCache(TTLCache(8, 60.0), None)
    release = asyncio.Event()

    async def compute() -> bytes:
        await release.wait()
        return b"v"

    first = asyncio.ensure_future(cache.get_or_compute("k", compute))
    second = asyncio.ensure_future(cache.get_or_compute("k", compute))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == b"v"
    assert first.cancelled()


# ------------------------------------------------------------------ real Redis
@pytest.mark.services
async def test_l2_round_trip_on_real_redis(redis_url, redis_prefix):
    import redis.asyncio as redis

    clock = FakeClock()
    writer = TieredCache(TTLCache(8, 60.0, clock=clock), redis_url, prefix=redis_prefix)
    reader = TieredCache(TTLCache(8, 60.0, clock=clock), redis_url, prefix=redis_prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        await writer.set("k", b"\x00payload\xff", ttl_s=30)
        assert await raw.get(redis_prefix + "k") == b"\x00payload\xff"
        assert 0 < await raw.pttl(redis_prefix + "k") <= 30_000
        # another process (empty L1) finds it in L2, then serves it from its own L1
        assert await reader.get("k") == b"\x00payload\xff"
        assert await reader.get("k") == b"\x00payload\xff"
        s = reader.stats
        assert (s.l1_misses, s.l2_hits, s.l1_hits, s.l2_errors) == (1, 1, 1, 0)
        assert await reader.get("absent") is None
        assert reader.stats.l2_misses == 1
        await writer.delete("k")
        assert await raw.exists(redis_prefix + "k") == 0
        assert await writer.get("k") is None
    finally:
        keys = [k async for k in raw.scan_iter(match=redis_prefix + "*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()
        await writer.aclose()
        await reader.aclose()


@pytest.mark.services
async def test_get_or_compute_stores_in_redis(redis_url, redis_prefix):
    import redis.asyncio as redis

    cache = TieredCache(TTLCache(8, 60.0), redis_url, prefix=redis_prefix, ttl_s=10)
    raw = redis.Redis.from_url(redis_url)

    async def compute() -> bytes:
        return b"42"

    try:
        assert await cache.get_or_compute("answer", compute) == b"42"
        assert await raw.get(redis_prefix + "answer") == b"42"
        assert 0 < await raw.pttl(redis_prefix + "answer") <= 10_000
    finally:
        await raw.delete(redis_prefix + "answer")
        await raw.aclose()
        await cache.aclose()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


async def test_unreachable_redis_degrades_to_l1_and_opens_the_breaker():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, clock=clock)
    cache = TieredCache(
        TTLCache(8, 60.0),
        f"redis://127.0.0.1:{closed_port()}/0",
        prefix="x:",
        breaker=breaker,
        timeout_s=0.5,
    )
    try:
        await cache.set("k", b"v")  # L2 write fails: 1 error, no exception
        assert await cache.get("k") == b"v"  # L1 hit, L2 not consulted
        assert await cache.get("missing") is None  # L2 read fails: 2 errors -> open
        assert breaker.state is CircuitState.OPEN
        assert await cache.get("other") is None  # skipped: the breaker is open
        await cache.delete("k")
        s = cache.stats
        assert (s.l2_errors, s.l2_short_circuited, s.l1_hits) == (2, 2, 1)
        clock.now = 30.0  # half-open: one probe, fails, open again
        assert await cache.get("other") is None
        assert breaker.state is CircuitState.OPEN
        assert cache.stats.l2_errors == 3
    finally:
        await cache.aclose()


async def test_tiered_parameters_are_validated_on_first_use():
    cache = TieredCache(TTLCache(8, 60.0), None, ttl_s=0)
    with pytest.raises(InvalidParameterError, match="'ttl_s' parameter of TieredCache"):
        await cache.get("k")
