"""MicroBatcher: batching, ordering, error isolation, back-pressure, drain, threading;
ShardedBatcher: shards batched and run apart."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nqp.engine import Platform, ProcessItem
from nqp.exceptions import InvalidInputError, InvalidParameterError, NotFittedError
from nqp.service.batcher import MicroBatcher, QueueFullError, ShardedBatcher, ShuttingDownError


class Recorder:
    """A fake ``process``: records each call's items and thread; optionally blocks."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[list[object]] = []
        self.threads: set[int] = set()
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, items: list[object]) -> list[object]:
        self.threads.add(threading.get_ident())
        self.calls.append(list(items))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        for x in items:
            if isinstance(x, tuple) and x[-1] == "bad":
                raise InvalidInputError(f"bad item {x!r}")
        return [("done", x) for x in items]


async def wait_until(predicate, limit: int = 2000) -> None:
    """Yield to the loop (≤ ~2 s) until ``predicate()`` holds."""
    for _ in range(limit):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def test_concurrent_submissions_form_full_batches():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=8, max_wait_ms=50.0)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert results == [("done", i) for i in range(20)]
    # everything was queued before the worker ran: two full batches, then the rest
    assert [len(c) for c in rec.calls] == [8, 8, 4]
    assert [x for c in rec.calls for x in c] == list(range(20))
    stats = batcher.stats
    assert (stats.batches, stats.submitted, stats.completed, stats.failed) == (3, 20, 20, 0)
    assert stats.recent_batch_sizes == (8, 8, 4)
    assert stats.last_batch_size == 4
    assert await batcher.drain(5.0)


async def test_full_batch_leaves_without_waiting_for_max_wait():
    rec = Recorder()
    # a max_wait of an hour: only the "batch is full" rule can release these
    batcher = MicroBatcher(rec, max_batch_size=4, max_wait_ms=3_600_000.0)
    batcher.start()
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.submit(i) for i in range(4))), timeout=5
    )
    assert results == [("done", i) for i in range(4)]
    assert rec.calls == [[0, 1, 2, 3]]
    await batcher.drain(5.0)


async def test_single_item_is_released_by_max_wait():
    rec = Recorder()
    sizes: list[tuple[int, float, float]] = []
    batcher = MicroBatcher(
        rec, max_batch_size=256, max_wait_ms=5.0, on_batch=lambda *a: sizes.append(a)
    )
    batcher.start()
    assert await asyncio.wait_for(batcher.submit("x"), timeout=5) == ("done", "x")
    assert rec.calls == [["x"]]
    ((size, wait_s, run_s),) = sizes
    assert size == 1
    assert wait_s >= 0.005 * 0.9  # it did wait for company (clock granularity aside)
    assert run_s >= 0
    await batcher.drain(5.0)


async def test_items_arriving_later_join_the_next_batch():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=100, max_wait_ms=0.0)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(0))
    await wait_until(rec.entered.is_set)  # batch [0] is in the worker thread
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await wait_until(lambda: batcher.queue_depth == 5)
    gate.set()
    assert await first == ("done", 0)
    assert await asyncio.gather(*later) == [("done", i) for i in range(1, 6)]
    assert rec.calls == [[0], [1, 2, 3, 4, 5]]
    await batcher.drain(5.0)


async def test_order_per_source_is_preserved_across_batches():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=7, max_wait_ms=1.0)
    batcher.start()
    sources = ["a", "b", "c"]
    items = [(sources[(i * 7) % 3], i) for i in range(60)]  # interleaved sources
    tasks = []
    for k, item in enumerate(items):
        tasks.append(asyncio.ensure_future(batcher.submit(item)))
        if k % 11 == 0:
            await asyncio.sleep(0)  # let some batches leave mid-stream
    await asyncio.gather(*tasks)
    assert all(len(c) <= 7 for c in rec.calls)
    processed = [x for c in rec.calls for x in c]
    for s in sources:
        assert [i for src, i in processed if src == s] == [i for src, i in items if src == s]
    await batcher.drain(5.0)


async def test_a_bad_item_fails_alone():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=16, max_wait_ms=50.0)
    batcher.start()
    items = [("s", i, "ok") for i in range(16)]
    items[5] = ("s", 5, "bad")
    items[12] = ("t", 12, "bad")
    outcomes = await asyncio.gather(*(batcher.submit(x) for x in items), return_exceptions=True)
    for x, out in zip(items, outcomes, strict=True):
        if x[-1] == "bad":
            assert isinstance(out, InvalidInputError)
            assert repr(x) in str(out)
        else:
            assert out == ("done", x)
    # every good item was applied exactly once, in submission order
    applied = [x for call in rec.calls if all(y[-1] == "ok" for y in call) for x in call]
    assert applied == [x for x in items if x[-1] == "ok"]
    assert batcher.stats.failed == 2
    assert batcher.stats.completed == 14
    await batcher.drain(5.0)


async def test_non_isolable_error_fails_the_whole_batch_without_retry():
    calls: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        calls.append(list(items))
        raise RuntimeError("engine bug")

    batcher = MicroBatcher(process, max_batch_size=4, max_wait_ms=50.0)
    batcher.start()
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "engine bug" in str(o) for o in outcomes)
    assert calls == [[0, 1, 2, 3]]  # state may have changed: never retried
    await batcher.drain(5.0)


async def test_wrong_result_count_is_reported():
    batcher = MicroBatcher(lambda items: items[:-1], max_batch_size=2, max_wait_ms=50.0)
    batcher.start()
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(2)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "1 results for 2 items" in str(o) for o in outcomes)
    await batcher.drain(5.0)


async def test_queue_full_raises_immediately():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0.0, max_queue=3)
    batcher.start()
    blocked = asyncio.ensure_future(batcher.submit(0))
    await wait_until(rec.entered.is_set)  # item 0 in flight, not counted in the queue
    queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
    await wait_until(lambda: batcher.queue_depth == 3)
    with pytest.raises(QueueFullError, match="queue is full") as info:
        await batcher.submit(4)  # returns at once although the worker is blocked
    assert info.value.queue_depth == 3
    assert info.value.retry_after_s > 0
    assert batcher.stats.rejected == 1
    gate.set()
    assert await blocked == ("done", 0)
    assert await asyncio.gather(*queued) == [("done", i) for i in (1, 2, 3)]
    await batcher.drain(5.0)


async def test_drain_finishes_in_flight_and_queued_work_and_rejects_new():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=2, max_wait_ms=3_600_000.0)
    batcher.start()
    tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(5)]
    await wait_until(rec.entered.is_set)  # [0, 1] in flight, 2..4 queued
    drain = asyncio.ensure_future(batcher.drain(timeout=10.0))
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDownError):
        await batcher.submit(99)
    assert not drain.done()
    gate.set()
    assert await drain is True
    # queued items left without waiting an hour for company
    assert await asyncio.gather(*tasks) == [("done", i) for i in range(5)]
    assert rec.calls == [[0, 1], [2, 3], [4]]
    with pytest.raises(ShuttingDownError):
        await batcher.submit(100)
    with pytest.raises(ShuttingDownError, match="drained"):
        batcher.start()


async def test_drain_timeout_fails_what_is_left():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0.0)
    batcher.start()
    tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
    await wait_until(rec.entered.is_set)
    assert await batcher.drain(timeout=0.01) is False
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, ShuttingDownError) for o in outcomes)
    gate.set()


async def test_process_runs_off_the_event_loop_thread_on_one_thread():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=3, max_wait_ms=1.0)
    batcher.start()
    for _ in range(3):
        await asyncio.gather(*(batcher.submit(i) for i in range(7)))
    assert len(rec.calls) >= 3
    assert len(rec.threads) == 1
    assert threading.get_ident() not in rec.threads
    await batcher.drain(5.0)


async def test_a_given_executor_is_used_and_not_shut_down():
    rec = Recorder()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="given") as pool:
        (ident,) = {pool.submit(threading.get_ident).result()}
        batcher = MicroBatcher(rec, executor=pool, max_wait_ms=0.0)
        batcher.start()
        await batcher.submit(1)
        await batcher.drain(5.0)
        assert rec.threads == {ident}
        assert pool.submit(lambda: 7).result() == 7  # still usable


async def test_cancelled_submission_is_not_processed():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0.0)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit("first"))
    await wait_until(rec.entered.is_set)
    gone = asyncio.ensure_future(batcher.submit("gone"))
    kept = asyncio.ensure_future(batcher.submit("kept"))
    await wait_until(lambda: batcher.queue_depth == 2)
    gone.cancel()
    gate.set()
    assert await first == ("done", "first")
    assert await kept == ("done", "kept")
    assert rec.calls == [["first"], ["kept"]]
    assert batcher.stats.cancelled == 1
    await batcher.drain(5.0)


async def test_on_batch_errors_do_not_stop_the_worker(caplog):
    def broken(size: int, wait_s: float, run_s: float) -> None:
        raise ValueError("metrics exporter down")

    batcher = MicroBatcher(Recorder(), max_wait_ms=0.0, on_batch=broken)
    batcher.start()
    assert await batcher.submit(1) == ("done", 1)
    assert await batcher.submit(2) == ("done", 2)
    assert "on_batch callback failed" in caplog.text
    await batcher.drain(5.0)


async def test_lifecycle_errors_and_parameter_validation():
    batcher = MicroBatcher(Recorder())
    with pytest.raises(NotFittedError, match=r"start\(\)"):
        await batcher.submit(1)
    assert batcher.queue_depth == 0
    assert batcher.stats.batches == 0
    with pytest.raises(InvalidParameterError, match="'max_batch_size' parameter of MicroBatcher"):
        MicroBatcher(Recorder(), max_batch_size=0).start()
    with pytest.raises(InvalidParameterError, match="'max_wait_ms'"):
        MicroBatcher(Recorder(), max_wait_ms=-1.0).start()
    with pytest.raises(InvalidParameterError, match="'max_queue'"):
        MicroBatcher(Recorder(), max_queue=0).start()
    assert await MicroBatcher(Recorder()).drain() is True  # never started


async def test_with_the_platform_one_bad_request_does_not_fail_the_others():
    platform = Platform()
    batcher = MicroBatcher(platform.process_many, max_batch_size=64, max_wait_ms=50.0)
    batcher.start()
    items = [ProcessItem("a", [1.0, 1.1], timestamp=10.0), ProcessItem("b", [2.0], timestamp=10.0)]
    items.append(ProcessItem("a", [float("nan")], timestamp=11.0))  # invalid
    items.append(ProcessItem("a", [1.2], timestamp=12.0))
    items.append(ProcessItem("b", [[1.0, 2.0]], timestamp=12.0))  # wrong channel count
    outcomes = await asyncio.gather(*(batcher.submit(x) for x in items), return_exceptions=True)
    assert [len(o) for o in outcomes[:2]] == [2, 1]
    assert isinstance(outcomes[2], InvalidInputError)
    assert "non-finite" in str(outcomes[2])
    assert [p.sequence for p in outcomes[3]] == [3]  # a's third point: nothing lost or doubled
    assert isinstance(outcomes[4], InvalidInputError)
    assert "channel" in str(outcomes[4])
    assert platform.summary("a").points == 3
    assert platform.summary("b").points == 1
    await batcher.drain(5.0)


async def test_ready_batches_run_back_to_back_while_the_loop_is_busy():
    """A batch waiting when the one in flight ends starts from the worker thread itself:
    here the event loop is blocked when the first batch ends, and the second still runs."""
    first_gate = threading.Event()
    second_entered = threading.Event()

    def process(items: list[int]) -> list[int]:
        if items[0] == 0:
            assert first_gate.wait(10)
        else:
            second_entered.set()
        return [x * 10 for x in items]

    batcher = MicroBatcher(process, max_batch_size=2, max_wait_ms=3_600_000.0)
    batcher.start()
    first = [asyncio.ensure_future(batcher.submit(i)) for i in (0, 1)]
    await wait_until(lambda: batcher.stats.in_flight == 2)
    second = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3)]  # a full batch
    await wait_until(lambda: batcher.queue_depth == 2)
    first_gate.set()
    # blocks the event loop: only the worker thread can start the second batch now
    assert second_entered.wait(5), "the second batch waited for the event loop"
    assert await asyncio.gather(*first, *second) == [0, 10, 20, 30]
    stats = batcher.stats
    assert (stats.batches, stats.completed, stats.last_batch_size) == (2, 4, 2)
    assert stats.in_flight == 0
    await batcher.drain(5.0)


async def test_back_to_back_batches_keep_order_and_skip_cancelled_items():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=3, max_wait_ms=0.0)
    batcher.start()
    head = asyncio.ensure_future(batcher.submit(("a", 0)))
    await wait_until(rec.entered.is_set)
    rest = [asyncio.ensure_future(batcher.submit((s, i))) for i in range(1, 8) for s in "ab"]
    await wait_until(lambda: batcher.queue_depth == len(rest))
    rest[3].cancel()
    gate.set()
    await head
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert isinstance(outcomes[3], asyncio.CancelledError)
    processed = [x for call in rec.calls for x in call]
    assert ("b", 2) not in processed  # rest[3], cancelled while queued
    assert len(processed) == len(rest)  # the head, and the rest but one
    for s in "ab":
        order = [i for src, i in processed if src == s]
        assert order == sorted(order)
    assert all(len(call) <= 3 for call in rec.calls)
    assert batcher.stats.cancelled == 1
    await batcher.drain(5.0)


async def test_sharded_batches_never_mix_shards_and_keep_order_within_one():
    rec = Recorder()
    batcher = ShardedBatcher(rec, shard_of=lambda x: x[0], shards=3, max_batch_size=4)
    batcher.start()
    items = [(k % 3, k) for k in range(30)]
    results = await asyncio.gather(*(batcher.submit(x) for x in items))
    assert results == [("done", x) for x in items]
    for call in rec.calls:
        assert len({shard for shard, _ in call}) == 1  # one shard per call
        assert len(call) <= 4
    for shard in range(3):
        seen = [k for call in rec.calls for s, k in call if s == shard]
        assert seen == [k for s, k in items if s == shard]  # submission order
    assert batcher.queue_depth == 0
    assert await batcher.drain(5.0)


async def _shard_0_blocked(**options):
    """Two shards (an item's shard is its first element), shard 0's worker blocked on item
    ``(0, "a")`` with ``(0, "b")`` queued behind it. Returns the gate that unblocks it,
    both recorders, the batcher and the two pending submissions."""
    gate = threading.Event()
    blocked, free = Recorder(gate), Recorder()
    batcher = ShardedBatcher(
        lambda items: (blocked if items[0][0] == 0 else free)(items),
        shard_of=lambda x: x[0],
        shards=2,
        max_wait_ms=0.0,
        **options,
    )
    batcher.start()
    stuck = asyncio.ensure_future(batcher.submit((0, "a")))
    await asyncio.to_thread(blocked.entered.wait, 5)
    queued = asyncio.ensure_future(batcher.submit((0, "b")))
    await wait_until(lambda: batcher.queue_depth == 1)  # behind the blocked batch
    return gate, blocked, free, batcher, stuck, queued


async def test_a_blocked_shard_does_not_hold_up_another():
    gate, _, _, batcher, stuck, queued = await _shard_0_blocked()
    assert await asyncio.wait_for(batcher.submit((1, "c")), timeout=5) == ("done", (1, "c"))
    assert not stuck.done()
    gate.set()
    assert await stuck == ("done", (0, "a"))
    assert await queued == ("done", (0, "b"))
    assert await batcher.drain(5.0)
    with pytest.raises(ShuttingDownError):
        await batcher.submit((1, "d"))


def test_sharded_batcher_needs_a_shard():
    with pytest.raises(ValueError, match="shards must be at least 1"):
        ShardedBatcher(lambda items: items, shard_of=lambda x: 0, shards=0)


async def test_submit_many_queues_items_together_and_returns_failures_in_place():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=4, max_wait_ms=50.0)
    batcher.start()
    items = [(k, "bad") if k == 5 else (k,) for k in range(10)]
    results = await batcher.submit_many(items)
    assert results[:5] == [("done", x) for x in items[:5]]
    assert isinstance(results[5], InvalidInputError)  # its own failure, in its place
    assert results[6:] == [("done", x) for x in items[6:]]
    # queued at once: full batches of 4, in order (the one holding the bad item is then
    # bisected and retried)
    assert rec.calls[:2] == [items[:4], items[4:8]]
    assert rec.calls[-1] == items[8:]
    assert await batcher.submit_many([]) == []
    stats = batcher.stats
    assert (stats.submitted, stats.completed, stats.failed) == (10, 9, 1)
    assert await batcher.drain(5.0)
    with pytest.raises(ShuttingDownError):
        await batcher.submit_many([(1,)])


async def test_submit_many_refuses_what_does_not_fit_and_queues_nothing():
    gate = threading.Event()
    rec = Recorder(gate)
    batcher = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0.0, max_queue=3)
    with pytest.raises(NotFittedError):
        await batcher.submit_many([(0,)])
    batcher.start()
    blocked = asyncio.ensure_future(batcher.submit((0,)))
    await wait_until(rec.entered.is_set)
    queued = asyncio.ensure_future(batcher.submit_many([(1,), (2,)]))
    await wait_until(lambda: batcher.queue_depth == 2)
    with pytest.raises(QueueFullError) as info:
        await batcher.submit_many([(3,), (4,)])  # 2 + 2 > 3: none of them queued
    assert info.value.queue_depth == 2
    assert batcher.queue_depth == 2
    gate.set()
    assert await blocked == ("done", (0,))
    assert await queued == [("done", (1,)), ("done", (2,))]
    # more than max_queue items fit an empty queue (a round larger than the queue runs)
    assert await batcher.submit_many([(k,) for k in range(5)]) == [("done", (k,)) for k in range(5)]
    assert [c for c in rec.calls if (3,) in c or (4,) in c] == [[(3,)], [(4,)]]  # the later ones
    assert await batcher.drain(5.0)


async def test_sharded_submit_many_keeps_order_and_checks_every_shard_first():
    gate, blocked, free, batcher, stuck, queued = await _shard_0_blocked(
        max_batch_size=1, max_queue=2
    )
    items = [(k % 2, k) for k in range(6)]
    # shard 0 has 1 waiting and cannot take 3 more: nothing is queued on shard 1 either
    with pytest.raises(QueueFullError):
        await batcher.submit_many(items)
    assert batcher.queue_depth == 1
    assert free.calls == []
    gate.set()
    assert await stuck == ("done", (0, "a"))
    assert await queued == ("done", (0, "b"))
    assert await batcher.submit_many(items) == [("done", x) for x in items]
    for shard, rec in ((0, blocked), (1, free)):
        seen = [k for call in rec.calls for s, k in call if s == shard and isinstance(k, int)]
        assert seen == [k for s, k in items if s == shard]
    assert await batcher.drain(5.0)
