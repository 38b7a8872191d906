"""Micro-batching: gather concurrent requests into one vectorised engine call.

The engine steps many sources at once far more cheaply than one at a time, and it is not
thread-safe. :class:`MicroBatcher` therefore queues the items submitted by concurrent
requests, hands up to ``max_batch_size`` of them at a time (or whatever arrived within
``max_wait_ms`` of the oldest) to ``process`` on a single worker thread, and resolves each
submitter's future with its own result. The event loop never runs the numerics.

Guarantees
----------
* Items are processed in submission order, batches one at a time, so items of the same
  source keep their submission order within and across batches.
* Back to back under load: when a batch is done and items are waiting, the worker thread
  takes the next batch itself (full, or its oldest item has waited ``max_wait_ms``) and
  hands the finished batch's results to the event loop, instead of returning to the loop
  first: ``process`` is not left idle while the loop is busy answering the last batch.
* One invalid item does not fail the others: when ``process`` raises one of
  ``isolate_errors`` (default :class:`~nqp.exceptions.InvalidInputError`, which
  :meth:`nqp.Platform.process_many` raises before changing any state), the batch is
  bisected and retried so that only the offending submissions receive the error.
  Any other exception fails every item of the (sub-)batch that raised it and is not
  retried: state may already have changed.
* The queue is bounded: a full queue makes :meth:`MicroBatcher.submit` raise
  :class:`QueueFullError` at once (the API answers 429/503 with ``Retry-After``).
* :meth:`MicroBatcher.drain` stops accepting work, finishes what was queued or in flight
  and stops the worker (graceful shutdown on SIGTERM).

:class:`ShardedBatcher` keeps one :class:`MicroBatcher` per shard, for a ``process`` that
can serve different shards at once (the engine's child processes, each owning the sources
its shard holds): each shard's items are batched and stepped on their own worker thread,
so one shard's batch never waits for another's, and a batch never spans two shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import Any, ClassVar, Generic, TypeVar

from nqp._validation import Interval, validate_params
from nqp.exceptions import InvalidInputError, NotFittedError, NQPError

__all__ = [
    "BatcherStats",
    "MicroBatcher",
    "QueueFullError",
    "ShardedBatcher",
    "ShuttingDownError",
]

log = logging.getLogger("nqp.service.batcher")

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

_RECENT = 64  # batch sizes kept in BatcherStats.recent_batch_sizes
_MIN_RETRY_AFTER_S = 0.1


class QueueFullError(NQPError, RuntimeError):
    """The batcher's queue is full; retry later (HTTP 429/503 with ``Retry-After``).

    Attributes
    ----------
    queue_depth : int
        Items waiting when the submission was refused.
    retry_after_s : float
        Estimated seconds until the queue has drained: the queue depth times the recent
        processing time per item, at least 0.1 s and the batching wait.
    """

    def __init__(self, message: str, *, queue_depth: int, retry_after_s: float) -> None:
        super().__init__(message)
        self.queue_depth = queue_depth
        self.retry_after_s = retry_after_s


class ShuttingDownError(NQPError, RuntimeError):
    """The batcher is draining or stopped and accepts no new work (HTTP 503)."""


@dataclass(frozen=True)
class BatcherStats:
    """A snapshot of a :class:`MicroBatcher`'s counters (for metrics exporters).

    Attributes
    ----------
    submitted : int
        Items accepted by :meth:`MicroBatcher.submit`.
    completed : int
        Items resolved with a result.
    failed : int
        Items resolved with an exception raised by ``process``.
    rejected : int
        Submissions refused (queue full or shutting down).
    cancelled : int
        Items whose submitter gave up before they were dispatched (never processed).
    batches : int
        Batches dispatched (calls before any bisection).
    queue_depth : int
        Items waiting to be dispatched.
    in_flight : int
        Items in the batch being processed.
    last_batch_size : int
        Items in the last dispatched batch.
    last_wait_s : float
        Seconds the oldest item of the last batch waited in the queue.
    last_run_s : float
        Seconds the last batch spent in ``process`` (bisection retries included).
    recent_batch_sizes : tuple of int
        Sizes of the last (up to 64) batches, oldest first.
    """

    submitted: int
    completed: int
    failed: int
    rejected: int
    cancelled: int
    batches: int
    queue_depth: int
    in_flight: int
    last_batch_size: int
    last_wait_s: float
    last_run_s: float
    recent_batch_sizes: tuple[int, ...]


@dataclass
class _Entry(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]
    enqueued: float  # time.monotonic()


class _Failed:
    """An exception standing in for one item's result."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class MicroBatcher(Generic[ItemT, ResultT]):
    """Gather concurrent submissions into batched calls of ``process`` on one worker thread.

    Parameters
    ----------
    process : callable
        ``process(items) -> results`` with ``len(results) == len(items)`` and ``results[i]``
        the result for ``items[i]``; e.g. :meth:`nqp.Platform.process_many`
        (``list[ProcessItem] -> list[list[Prediction]]``). Runs off the event loop, on one
        thread at a time, items in submission order.
    max_batch_size : int, default=256
        Most items per call of ``process``.
    max_wait_ms : float, default=2.0
        Longest time (ms) the oldest queued item waits for more items to join its batch.
        A batch leaves as soon as it is full, after this wait, or at once while draining.
    max_queue : int, default=10_000
        Most items waiting to be dispatched (the batch in flight is not counted).
    executor : concurrent.futures.Executor, optional
        Where ``process`` runs. Default: a private single-thread executor, shut down by
        :meth:`drain`. A shared executor must not run ``process`` concurrently with itself
        if ``process`` is not thread-safe; the batcher never overlaps its own calls.
    on_batch : callable, optional
        ``on_batch(size, wait_s, run_s)`` called on the event loop after each batch: its
        size, the oldest item's queueing time (s) and the processing time (s). Errors it
        raises are logged, never propagated.
    isolate_errors : tuple of exception types, default=(InvalidInputError,)
        Exceptions that ``process`` raises *before changing any state*; a batch that
        raises one is bisected and retried so that only the offending items fail.

    Attributes
    ----------
    queue_depth : int
        Items waiting to be dispatched.
    stats : BatcherStats
        A snapshot of the counters.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     batcher = MicroBatcher(lambda items: [x * 10 for x in items], max_wait_ms=1.0)
    ...     batcher.start()
    ...     results = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    ...     await batcher.drain(timeout=5.0)
    ...     return results, batcher.stats.batches
    >>> asyncio.run(main())
    ([0, 10, 20, 30, 40], 1)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "max_batch_size": [Interval("int", 1, None)],
        "max_wait_ms": [Interval("real", 0, None)],
        "max_queue": [Interval("int", 1, None)],
        "executor": [Executor, None],
    }

    _state: str = "new"  # new -> running -> draining -> stopped

    def __init__(
        self,
        process: Callable[[list[ItemT]], Sequence[ResultT]],
        *,
        max_batch_size: int = 256,
        max_wait_ms: float = 2.0,
        max_queue: int = 10_000,
        executor: Executor | None = None,
        on_batch: Callable[[int, float, float], None] | None = None,
        isolate_errors: tuple[type[BaseException], ...] = (InvalidInputError,),
    ) -> None:
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self.executor = executor
        self.on_batch = on_batch
        self.isolate_errors = isolate_errors

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Validate the parameters and start the worker task (call inside a running loop).

        Calling it again while running does nothing.

        Raises
        ------
        InvalidParameterError
            If a parameter is out of range.
        ShuttingDownError
            If the batcher has been drained (create a new one).
        """
        if self._state == "running":
            return
        if self._state != "new":
            raise ShuttingDownError("This MicroBatcher was drained; create a new one.")
        validate_params(
            type(self).__name__,
            {k: getattr(self, k) for k in self._parameter_constraints},
            self._parameter_constraints,
        )
        if not callable(self.process):
            raise TypeError(f"process must be callable, got {self.process!r}.")
        self._loop = asyncio.get_running_loop()
        self._pending: deque[_Entry[ItemT, ResultT]] = deque()
        self._wake = asyncio.Event()
        self._owns_executor = self.executor is None
        self._executor: Executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="nqp-batcher")
            if self.executor is None
            else self.executor
        )
        self._counts = dict.fromkeys(
            ("submitted", "completed", "failed", "rejected", "cancelled", "batches"), 0
        )
        self._in_flight = 0
        self._taking = threading.Lock()  # pops from _pending: loop or worker thread
        self._current: list[_Entry[ItemT, ResultT]] = []  # the batch in the worker thread
        self._stop = False  # set on a drain timeout: the worker thread takes no more
        self._last = (0, 0.0, 0.0)
        self._recent: deque[int] = deque(maxlen=_RECENT)
        self._run_per_item_s = 0.0  # exponentially weighted, for retry_after_s
        self._state = "running"
        self._task = self._loop.create_task(self._worker(), name="nqp-micro-batcher")

    async def drain(self, timeout: float | None = None) -> bool:
        """Stop accepting work, finish what is queued and in flight, stop the worker.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; ``None`` waits as long as it takes.

        Returns
        -------
        bool
            True if every accepted item was processed. False on timeout: items not yet
            dispatched then fail with :class:`ShuttingDownError`, and so do the items of
            the batch in flight (whose outcome is unknown: the thread cannot be stopped).
        """
        if self._state == "new":
            self._state = "stopped"
            return True
        if self._state == "running":
            self._state = "draining"
            self._wake.set()
        finished = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            finished = False
            self._stop = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._fail_pending(ShuttingDownError("Shut down before this item was processed."))
        self._state = "stopped"
        if self._owns_executor:
            self._executor.shutdown(wait=False)
        return finished

    # ------------------------------------------------------------------ submission
    async def submit(self, item: ItemT) -> ResultT:
        """Queue ``item`` and wait for its result.

        Raises
        ------
        QueueFullError
            At once, when ``max_queue`` items are already waiting.
        ShuttingDownError
            When the batcher is draining or stopped.
        NotFittedError
            When :meth:`start` has not been called.
        Exception
            Whatever ``process`` raised for this item (e.g. InvalidInputError).
        """
        self._check_room(1)
        (future,) = self._enqueue([item])
        return await future

    async def submit_many(self, items: Sequence[ItemT]) -> list[ResultT | BaseException]:
        """Queue ``items`` together and wait for all their results, in order.

        What many :meth:`submit` calls at once would give (the items queued back to back,
        batched as usual), without a task per item: for a caller with many items at hand
        (a batch job's round). An item's own failure is returned in its place.

        Raises
        ------
        QueueFullError
            At once, with nothing queued, when the items do not fit beside those already
            waiting (``max_queue``; more than ``max_queue`` items fit an empty queue).
        ShuttingDownError, NotFittedError
            As :meth:`submit`.
        """
        self._check_room(len(items))
        return await asyncio.gather(*self._enqueue(items), return_exceptions=True)

    def _check_room(self, n: int) -> None:
        """Raise what :meth:`submit_many` raises for ``n`` items, queuing nothing."""
        if self._state != "running":
            if self._state == "new":
                raise NotFittedError("MicroBatcher.start() must be called before submit().")
            self._counts["rejected"] += n
            raise ShuttingDownError("The service is shutting down; retry on another instance.")
        depth = len(self._pending)
        if depth and depth + n > self.max_queue:
            self._counts["rejected"] += n
            retry = max(_MIN_RETRY_AFTER_S, self.max_wait_ms / 1000.0, depth * self._run_per_item_s)
            raise QueueFullError(
                f"The processing queue is full ({depth} items waiting); retry later.",
                queue_depth=depth,
                retry_after_s=retry,
            )

    def _enqueue(self, items: Sequence[ItemT]) -> list[asyncio.Future[ResultT]]:
        """Queue ``items`` (room checked by :meth:`_check_room`); their futures, in order."""
        depth = len(self._pending)
        create, now = self._loop.create_future, time.monotonic()
        futures: list[asyncio.Future[ResultT]] = [create() for _ in items]
        self._pending.extend(map(_Entry, items, futures, repeat(now)))
        self._counts["submitted"] += len(items)
        if items and (depth == 0 or depth + len(items) >= self.max_batch_size):
            self._wake.set()  # first items (start the wait) or a full batch (leave now)
        return futures

    @property
    def queue_depth(self) -> int:
        """Items waiting to be dispatched."""
        return len(self._pending) if self._state != "new" else 0

    @property
    def stats(self) -> BatcherStats:
        """A snapshot of the counters (zeros before :meth:`start`)."""
        if self._state == "new":
            return BatcherStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, ())
        size, wait_s, run_s = self._last
        return BatcherStats(
            **self._counts,
            queue_depth=len(self._pending),
            in_flight=self._in_flight,
            last_batch_size=size,
            last_wait_s=wait_s,
            last_run_s=run_s,
            recent_batch_sizes=tuple(self._recent),
        )

    # ------------------------------------------------------------------ worker
    async def _worker(self) -> None:
        max_wait_s = self.max_wait_ms / 1000.0
        pending = self._pending
        while True:
            while not pending:
                if self._state != "running":
                    return
                self._wake.clear()
                await self._wake.wait()
            deadline = pending[0].enqueued + max_wait_s
            while len(pending) < self.max_batch_size and self._state == "running":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()
                except TimeoutError:
                    break
            batch, cancelled = self._take()
            self._counts["cancelled"] += cancelled
            if batch:
                await self._dispatch(batch)

    def _take(self) -> tuple[list[_Entry[ItemT, ResultT]], int]:
        """Up to ``max_batch_size`` queued entries, in order, and how many were cancelled."""
        batch: list[_Entry[ItemT, ResultT]] = []
        cancelled = 0
        with self._taking:
            pending = self._pending
            while pending and len(batch) < self.max_batch_size:
                entry = pending.popleft()
                if entry.future.cancelled():  # the submitter gave up: don't apply it
                    cancelled += 1
                else:
                    batch.append(entry)
        return batch, cancelled

    def _take_ready(self) -> tuple[list[_Entry[ItemT, ResultT]], int]:
        """(worker thread) The next batch if one may leave now, else nothing.

        One may leave when ``max_batch_size`` items wait, the oldest has waited
        ``max_wait_ms``, or the batcher is draining.
        """
        pending = self._pending
        if self._stop or not pending:
            return [], 0
        if (
            self._state == "running"
            and len(pending) < self.max_batch_size
            and time.monotonic() - pending[0].enqueued < self.max_wait_ms / 1000.0
        ):
            return [], 0
        return self._take()

    async def _dispatch(self, batch: list[_Entry[ItemT, ResultT]]) -> None:
        """Run ``batch`` and whatever the worker thread takes after it, back to back."""
        try:
            await self._loop.run_in_executor(self._executor, self._run_batches, batch)
        except asyncio.CancelledError:
            failed = _Failed(ShuttingDownError("Shut down while this item was processed."))
            current = self._current or batch
            self._resolve(current, [failed] * len(current))
            raise
        except Exception as exc:  # the executor itself failed (e.g. shut down)
            current = self._current or batch
            self._resolve(current, [_Failed(exc)] * len(current))
        finally:
            self._in_flight = 0
            self._current = []

    def _run_batches(self, batch: list[_Entry[ItemT, ResultT]]) -> None:
        """(worker thread) Process ``batch``, then the batches ready after it, one by one.

        Each finished batch's results go to the event loop (:meth:`_finish`) at once, so
        the loop answers them while the next batch is processed.
        """
        while batch:
            self._current = batch
            self._in_flight = len(batch)
            started = time.monotonic()
            outcomes = self._run_isolated([e.item for e in batch])
            done = time.monotonic()
            wait_s, run_s = started - batch[0].enqueued, done - started
            after, cancelled = self._take_ready()
            self._in_flight = len(after)  # before the results: a caller sees a settled count
            try:
                self._loop.call_soon_threadsafe(
                    self._finish, batch, outcomes, wait_s, run_s, cancelled
                )
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                return
            batch = after

    def _finish(
        self,
        batch: list[_Entry[ItemT, ResultT]],
        outcomes: list[Any],
        wait_s: float,
        run_s: float,
        cancelled: int,
    ) -> None:
        """(event loop) Resolve a finished batch's futures and record its figures."""
        self._resolve(batch, outcomes)
        self._counts["cancelled"] += cancelled
        self._counts["batches"] += 1
        self._last = (len(batch), wait_s, run_s)
        self._recent.append(len(batch))
        per_item = run_s / len(batch)
        self._run_per_item_s += 0.2 * (per_item - self._run_per_item_s)
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch), wait_s, run_s)
            except Exception:
                log.exception("on_batch callback failed")

    def _resolve(self, batch: list[_Entry[ItemT, ResultT]], outcomes: list[Any]) -> None:
        for entry, outcome in zip(batch, outcomes, strict=True):
            if entry.future.done():  # cancelled while in flight: its result is dropped
                continue
            if isinstance(outcome, _Failed):
                self._counts["failed"] += 1
                entry.future.set_exception(outcome.exc)
            else:
                self._counts["completed"] += 1
                entry.future.set_result(outcome)

    def _run_isolated(self, items: list[ItemT]) -> list[Any]:
        """Run ``process`` (worker thread); bisect on an isolable error. Never raises."""
        try:
            results = self.process(items)
        except self.isolate_errors as exc:
            if len(items) == 1:
                return [_Failed(exc)]
            mid = len(items) // 2
            return self._run_isolated(items[:mid]) + self._run_isolated(items[mid:])
        except Exception as exc:
            return [_Failed(exc)] * len(items)
        if len(results) != len(items):
            error = RuntimeError(f"process returned {len(results)} results for {len(items)} items.")
            return [_Failed(error)] * len(items)
        return list(results)

    def _fail_pending(self, exc: BaseException) -> None:
        with self._taking:
            entries = list(self._pending)
            self._pending.clear()
        for entry in entries:
            if not entry.future.done():
                self._counts["failed"] += 1
                entry.future.set_exception(exc)


class ShardedBatcher(Generic[ItemT, ResultT]):
    """One :class:`MicroBatcher` per shard: each shard's items batched and run on their own.

    Parameters
    ----------
    process : callable
        ``process(items) -> results`` as for :class:`MicroBatcher`, called with items of one
        shard at a time, and concurrently for different shards (from one worker thread per
        shard).
    shard_of : callable
        ``shard_of(item) -> int`` in ``[0, shards)``; the same for every item that must keep
        its order relative to another (e.g. a hash of the item's source).
    shards : int, default=1
        Shards (and worker threads); with 1 this is a :class:`MicroBatcher`.
    **options
        :class:`MicroBatcher` parameters, each shard's own: ``max_batch_size`` and
        ``max_queue`` bound every shard's batches and queue.

    Attributes
    ----------
    batchers : list of MicroBatcher
        The shards' batchers, by shard.
    """

    def __init__(
        self,
        process: Callable[[list[ItemT]], Sequence[ResultT]],
        *,
        shard_of: Callable[[ItemT], int],
        shards: int = 1,
        **options: Any,
    ) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}.")
        self.shard_of = shard_of
        self.batchers: list[MicroBatcher[ItemT, ResultT]] = [
            MicroBatcher(process, **options) for _ in range(shards)
        ]

    def start(self) -> None:
        """:meth:`MicroBatcher.start` of every shard."""
        for batcher in self.batchers:
            batcher.start()

    async def drain(self, timeout: float | None = None) -> bool:
        """:meth:`MicroBatcher.drain` of every shard at once; True if all finished."""
        done = await asyncio.gather(*(b.drain(timeout) for b in self.batchers))
        return all(done)

    async def submit(self, item: ItemT) -> ResultT:
        """:meth:`MicroBatcher.submit` to the batcher of ``shard_of(item)``."""
        return await self.batchers[self.shard_of(item)].submit(item)

    async def submit_many(self, items: Sequence[ItemT]) -> list[ResultT | BaseException]:
        """:meth:`MicroBatcher.submit_many`, each shard's items to its batcher, in order.

        Every shard's room is checked before any item is queued, so ``QueueFullError``
        leaves every queue as it was.
        """
        positions: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            positions.setdefault(self.shard_of(item), []).append(i)
        for k, pos in positions.items():
            self.batchers[k]._check_room(len(pos))
        futures: list[asyncio.Future[ResultT]] = [None] * len(items)  # type: ignore[list-item]
        for k, pos in positions.items():
            queued = self.batchers[k]._enqueue([items[i] for i in pos])
            for i, future in zip(pos, queued, strict=True):
                futures[i] = future
        return await asyncio.gather(*futures, return_exceptions=True)

    @property
    def queue_depth(self) -> int:
        """Items waiting to be dispatched, all shards together."""
        return sum(b.queue_depth for b in self.batchers)
