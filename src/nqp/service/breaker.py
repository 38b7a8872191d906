"""A circuit breaker for calls to Redis, Kafka and webhook callbacks.

After ``failure_threshold`` consecutive failures the circuit *opens*: calls fail at once
with :class:`CircuitOpenError` instead of waiting on a dead dependency. After
``reset_timeout_s`` it lets ``half_open_max_calls`` trial calls through (*half-open*); a
success closes it, a failure opens it again for another ``reset_timeout_s``::

    closed ──N consecutive failures──▶ open ──reset_timeout_s──▶ half-open
      ▲                                  ▲                          │
      └──────────── success ─────────────┼──────────────────────────┤
                                         └──────── failure ─────────┘
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from nqp._validation import Interval, validate_params
from nqp.exceptions import NQPError

__all__ = ["BreakerStats", "CircuitBreaker", "CircuitOpenError", "CircuitState"]

T = TypeVar("T")


class CircuitState(StrEnum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(NQPError, RuntimeError):
    """The circuit is open (or its half-open trial slots are taken); the call was not made.

    Attributes
    ----------
    name : str
        The breaker's name.
    retry_after_s : float
        Seconds until the breaker lets a trial call through (0 when half-open).
    """

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(
            f"Circuit {name!r} is open; not calling for another {retry_after_s:.3g} s."
        )
        self.name = name
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class BreakerStats:
    """Counters of a :class:`CircuitBreaker` (for metrics exporters).

    Attributes
    ----------
    state : CircuitState
    successes, failures : int
        Completed calls by outcome (timeouts count as failures).
    rejected : int
        Calls refused with :class:`CircuitOpenError`.
    opened : int
        Times the circuit opened.
    consecutive_failures : int
    """

    state: CircuitState
    successes: int
    failures: int
    rejected: int
    opened: int
    consecutive_failures: int


class CircuitBreaker:
    """Fail fast while a dependency is down; probe it again after a pause.

    Parameters
    ----------
    failure_threshold : int, default=5
        Consecutive failures that open the circuit.
    reset_timeout_s : float, default=30.0
        Seconds the circuit stays open before a trial call is allowed.
    half_open_max_calls : int, default=1
        Trial calls allowed at once while half-open.
    clock : callable, default=time.monotonic
        Seconds, monotonic (tests pass a fake clock).
    name : str, default="circuit"
        Used in error messages and metrics.
    failure_exceptions : tuple of exception types, default=(Exception,)
        Exceptions that count as failures; others propagate without counting (timeouts
        from ``timeout_s`` always count). :class:`asyncio.CancelledError` never counts.
    on_state_change : callable, optional
        ``on_state_change(old, new)`` on every transition (e.g. to set a gauge).

    Examples
    --------
    >>> import asyncio
    >>> now = [0.0]
    >>> breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=lambda: now[0])
    >>> async def down():
    ...     raise ConnectionError("refused")
    >>> async def up():
    ...     return "ok"
    >>> async def demo():
    ...     for _ in range(2):
    ...         try:
    ...             await breaker.call(down)
    ...         except ConnectionError:
    ...             pass
    ...     states = [breaker.state.value]
    ...     try:
    ...         await breaker.call(up)
    ...     except CircuitOpenError:
    ...         states.append("rejected")
    ...     now[0] = 10.0
    ...     states.append(breaker.state.value)
    ...     states.append(await breaker.call(up))
    ...     return states + [breaker.state.value]
    >>> asyncio.run(demo())
    ['open', 'rejected', 'half_open', 'ok', 'closed']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "failure_threshold": [Interval("int", 1, None)],
        "reset_timeout_s": [Interval("real", 0, None)],
        "half_open_max_calls": [Interval("int", 1, None)],
    }

    _ready: bool = False

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "circuit",
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self.clock = clock
        self.name = name
        self.failure_exceptions = failure_exceptions
        self.on_state_change = on_state_change

    def _setup(self) -> None:
        validate_params(
            type(self).__name__,
            {k: getattr(self, k) for k in self._parameter_constraints},
            self._parameter_constraints,
        )
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._consecutive = 0
        self._trials = 0  # half-open calls in progress
        self._counts = dict.fromkeys(("successes", "failures", "rejected", "opened"), 0)
        self._ready = True

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit turns half-open once its timeout passed)."""
        if not self._ready:
            self._setup()
        if (
            self._state is CircuitState.OPEN
            and self.clock() - self._opened_at >= self.reset_timeout_s
        ):
            self._transition(CircuitState.HALF_OPEN)
            self._trials = 0
        return self._state

    @property
    def stats(self) -> BreakerStats:
        """A snapshot of the counters."""
        state = self.state
        return BreakerStats(state=state, consecutive_failures=self._consecutive, **self._counts)

    def _transition(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if new is CircuitState.OPEN:
            self._opened_at = self.clock()
            self._counts["opened"] += 1
        if self.on_state_change is not None and old is not new:
            self.on_state_change(old, new)

    # ------------------------------------------------------------------ primitives
    def acquire(self) -> None:
        """Ask to make a call; pair with :meth:`record_success`/:meth:`record_failure`.

        Raises
        ------
        CircuitOpenError
            If the circuit is open, or half-open with every trial slot taken.
        """
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return
        self._counts["rejected"] += 1
        retry = 0.0
        if state is CircuitState.OPEN:
            retry = max(0.0, self.reset_timeout_s - (self.clock() - self._opened_at))
        raise CircuitOpenError(self.name, retry)

    def record_success(self) -> None:
        """The call succeeded: reset the failure count; a half-open circuit closes."""
        if not self._ready:
            self._setup()
        self._counts["successes"] += 1
        self._consecutive = 0
        if self._state is CircuitState.HALF_OPEN:
            self._trials = 0
            self._transition(CircuitState.CLOSED)

    def record_failure(self) -> None:
        """The call failed: a half-open circuit, or the N-th consecutive failure, opens it."""
        if not self._ready:
            self._setup()
        self._counts["failures"] += 1
        self._consecutive += 1
        if self._state is CircuitState.HALF_OPEN:
            self._trials = 0
            self._transition(CircuitState.OPEN)
        elif self._state is CircuitState.CLOSED and self._consecutive >= self.failure_threshold:
            self._transition(CircuitState.OPEN)

    def _release(self) -> None:
        """A call ended without an outcome (cancelled or a non-failure exception)."""
        if self._state is CircuitState.HALF_OPEN and self._trials > 0:
            self._trials -= 1

    # ------------------------------------------------------------------ calls
    # ``*args``/``**kwargs`` are not typed with a ParamSpec: PEP 612 allows no keyword
    # parameter (``timeout_s``) between ``P.args`` and ``P.kwargs``.
    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Parameters
        ----------
        fn : async callable
        *args, **kwargs
            Passed to ``fn``.
        timeout_s : float, optional
            Give up after this many seconds (:class:`TimeoutError`, counted as a failure).

        Raises
        ------
        CircuitOpenError
            At once, without calling ``fn``, while the circuit is open.
        TimeoutError
            If ``timeout_s`` passed.
        Exception
            Whatever ``fn`` raised.
        """
        self.acquire()
        try:
            if timeout_s is None:
                result = await fn(*args, **kwargs)
            else:
                result = await asyncio.wait_for(fn(*args, **kwargs), timeout_s)
        except TimeoutError:
            self.record_failure()
            raise
        except self.failure_exceptions:
            self.record_failure()
            raise
        except BaseException:
            self._release()
            raise
        self.record_success()
        return result
