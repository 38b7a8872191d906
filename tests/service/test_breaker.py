"""CircuitBreaker state machine, driven by a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from nqp.exceptions import InvalidParameterError
from nqp.service.breaker import CircuitBreaker, CircuitOpenError, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Dependency:
    """An async dependency whose health the test switches; counts real calls."""

    def __init__(self) -> None:
        self.healthy = True
        self.calls = 0

    async def __call__(self, value: int = 1) -> int:
        self.calls += 1
        if not self.healthy:
            raise ConnectionError("refused")
        return value * 2


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def fail(breaker: CircuitBreaker, dep: Dependency, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(dep)


async def test_opens_after_threshold_consecutive_failures(clock):
    dep = Dependency()
    transitions = []
    breaker = CircuitBreaker(
        failure_threshold=3,
        reset_timeout_s=30,
        clock=clock,
        name="redis",
        on_state_change=lambda old, new: transitions.append((old.value, new.value)),
    )
    dep.healthy = False
    await fail(breaker, dep, 2)
    assert breaker.state is CircuitState.CLOSED
    await fail(breaker, dep, 1)
    assert breaker.state is CircuitState.OPEN
    assert transitions == [("closed", "open")]
    with pytest.raises(CircuitOpenError, match="'redis' is open") as info:
        await breaker.call(dep)
    assert dep.calls == 3  # the open circuit did not call
    assert info.value.retry_after_s == pytest.approx(30.0)
    clock.now += 12
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(dep)
    assert info.value.retry_after_s == pytest.approx(18.0)
    stats = breaker.stats
    assert (stats.failures, stats.rejected, stats.opened, stats.successes) == (3, 2, 1, 0)


async def test_a_success_resets_the_consecutive_count(clock):
    dep = Dependency()
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    dep.healthy = False
    await fail(breaker, dep, 2)
    dep.healthy = True
    assert await breaker.call(dep, 21) == 42
    dep.healthy = False
    await fail(breaker, dep, 2)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.consecutive_failures == 2


async def test_half_open_after_timeout_then_closes_on_success(clock):
    dep = Dependency()
    transitions = []
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout_s=30,
        clock=clock,
        on_state_change=lambda old, new: transitions.append(new.value),
    )
    dep.healthy = False
    await fail(breaker, dep, 1)
    clock.now += 29.999
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.001
    assert breaker.state is CircuitState.HALF_OPEN
    dep.healthy = True
    assert await breaker.call(dep, 5) == 10
    assert breaker.state is CircuitState.CLOSED
    assert transitions == ["open", "half_open", "closed"]


async def test_half_open_failure_reopens_for_a_full_timeout(clock):
    dep = Dependency()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=clock)
    dep.healthy = False
    await fail(breaker, dep, 2)
    clock.now += 10
    await fail(breaker, dep, 1)  # the single trial fails
    assert breaker.state is CircuitState.OPEN
    clock.now += 9.5
    with pytest.raises(CircuitOpenError):
        await breaker.call(dep)
    clock.now += 0.5
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats.opened == 2


async def test_half_open_admits_only_max_trial_calls(clock):
    gate = asyncio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "ok"

    breaker = CircuitBreaker(
        failure_threshold=1, reset_timeout_s=1, half_open_max_calls=2, clock=clock
    )
    breaker.record_failure()
    clock.now += 1
    trials = [asyncio.ensure_future(breaker.call(slow)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(slow)  # both trial slots taken
    assert info.value.retry_after_s == 0.0
    gate.set()
    assert await asyncio.gather(*trials) == ["ok", "ok"]
    assert calls == 2
    assert breaker.state is CircuitState.CLOSED


async def test_cancelled_trial_frees_its_slot_without_counting(clock):
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    never = asyncio.Event()
    task = asyncio.ensure_future(breaker.call(never.wait))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats.failures == 1  # only the one recorded above
    dep = Dependency()
    assert await breaker.call(dep) == 2  # the slot is free again
    assert breaker.state is CircuitState.CLOSED


async def test_timeout_counts_as_failure(clock):
    breaker = CircuitBreaker(failure_threshold=1, clock=clock)
    never = asyncio.Event()
    with pytest.raises(TimeoutError):
        await breaker.call(never.wait, timeout_s=0.001)
    assert breaker.state is CircuitState.OPEN


async def test_exceptions_outside_failure_exceptions_do_not_count(clock):
    async def bad_request() -> None:
        raise KeyError("not a dependency failure")

    breaker = CircuitBreaker(
        failure_threshold=1, clock=clock, failure_exceptions=(ConnectionError,)
    )
    with pytest.raises(KeyError):
        await breaker.call(bad_request)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.failures == 0


async def test_keyword_arguments_are_passed_through(clock):
    async def add(a: int, *, b: int) -> int:
        return a + b

    assert await CircuitBreaker(clock=clock).call(add, 1, b=2, timeout_s=5) == 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"reset_timeout_s": -1}, "reset_timeout_s"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
    ],
)
def test_parameters_are_validated_on_first_use(kwargs, name):
    breaker = CircuitBreaker(**kwargs)  # __init__ only stores
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of CircuitBreaker"):
        breaker.state
