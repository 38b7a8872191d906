"""Stream scenarios through the public HTTP API and measure what comes back.

:func:`stream_scenarios` (async) and :func:`run_scenarios` / :func:`run_scenario` (sync)
drive one or more scenarios against a running NQP server with one ``httpx.AsyncClient``:

- **pacing**: each streaming scenario has a producer that takes ``rate`` points per second
  (over all its sources: one step of ``n_sources`` points every ``n_sources / rate``
  seconds), stamped with their scheduled time. When the server falls behind, at most
  ``max_backlog`` points wait; the producer then pauses and the achieved rate (reported)
  drops below the requested one.
- **sending**: ``concurrency`` workers post ``POST /api/v1/process/realtime``. A source has
  at most one request in flight (its points stay in order); whatever has accumulated for
  it meanwhile goes in its next request (up to ``max_points_per_request`` points, with one
  timestamp each). So at a low rate every point gets its own prediction, and a server that
  answers slower than the points arrive gets fewer, larger requests instead of a queue.
- **retries**: 429 and 503 are retried after their ``Retry-After`` (the points are kept),
  as are connection failures of a request that was never sent; any other error drops the
  request's points and is counted.
- **checks**: each answer's ``sequence`` must equal the number of points the source has
  been sent (a lost or duplicated point shows as a mismatch).
- a maintenance run is a new machine: its source is erased (``DELETE
  /api/v1/sources/{source}``) before its first point, in case an earlier session left a
  source of that name.
- the **portfolio** scenario posts ``POST /api/v1/optimize/portfolio`` every
  ``portfolio_period_s`` seconds from the market scenario's rolling returns (a market that
  is not streamed is advanced locally at the market rate).

The result is one :class:`ScenarioSummary` per scenario (:func:`format_summary` prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import numpy as np
import orjson

from nqp._validation import Interval, validate_params
from nqp.exceptions import InvalidParameterError
from nqp.scenarios.base import Scenario, ScenarioPoint
from nqp.scenarios.maintenance import CONTROL_SOURCE
from nqp.scenarios.market import MARKET_EVENTS, MarketScenario
from nqp.scenarios.portfolio import PortfolioScenario
from nqp.scenarios.registry import DEFAULT_RATES, SCENARIO_NAMES, make_scenario
from nqp.scenarios.scoring import ScenarioScore
from nqp.scenarios.summary import PortfolioStats, ScenarioSummary

__all__ = ["run_scenario", "run_scenarios", "stream_scenarios"]

_MAX_RETRY_AFTER_S = 30.0
_CONNECT_RETRIES = 3
_LATENCIES_KEPT = 100_000


# --------------------------------------------------------------------------- plumbing


@dataclass
class _Counters:
    generated: int = 0
    sent: int = 0
    lost: int = 0
    requests: int = 0
    predictions: int = 0
    retries: int = 0
    errors: int = 0
    mismatches: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCIES_KEPT))
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


class _Feed:
    """One streaming scenario: its producer's buffers and its scores."""

    def __init__(self, scenario: Scenario, rate: float, *, silent: bool = False) -> None:
        self.scenario = scenario
        self.name = scenario.name
        self.rate = rate
        self.silent = silent
        self.buffers: dict[str, deque[ScenarioPoint]] = {}
        self.queued: set[str] = set()
        self.in_flight: set[str] = set()
        self.expected_seq: dict[str, int] = {}
        self.pending = 0  # buffered + in flight
        self.counters = _Counters()
        self.score = ScenarioScore(
            scenario, control_source=CONTROL_SOURCE if scenario.name == "maintenance" else None
        )
        self.seen_sources: set[str] = set()
        # a machine run is a new machine: a name left by an earlier session is erased first
        self.erase_first = scenario.name == "maintenance"
        self.erased: set[str] = set()
        self.done = False


def _retry_after(response: httpx.Response) -> float:
    try:
        value = float(response.headers.get("retry-after", "1"))
    except ValueError:
        value = 1.0
    return min(max(value, 0.05), _MAX_RETRY_AFTER_S)


def _quantile_ms(values: deque[float], q: float) -> float:
    return float(np.quantile(np.fromiter(values, float), q) * 1e3) if values else math.nan


class _Run:
    def __init__(
        self,
        client: httpx.AsyncClient,
        feeds: list[_Feed],
        portfolio: PortfolioScenario | None,
        *,
        duration: float,
        events: Sequence[tuple[float, str]],
        concurrency: int,
        max_points: int,
        max_backlog: int | None,
        portfolio_period_s: float,
        drain_timeout_s: float,
        progress_every_s: float | None,
        echo: Callable[[str], None],
        stop: asyncio.Event,
        abort: asyncio.Event,
    ) -> None:
        self.client = client
        self.feeds = feeds
        self.portfolio = portfolio
        self.duration = duration
        self.events = sorted(events)
        self.concurrency = concurrency
        self.max_points = max_points
        self.max_backlog = max_backlog
        self.portfolio_period_s = portfolio_period_s
        self.drain_timeout_s = drain_timeout_s
        self.progress_every_s = progress_every_s
        self.echo = echo
        self.stop = stop
        self.abort = abort
        self.ready: asyncio.Queue[tuple[_Feed, str]] = asyncio.Queue()
        self.idle = asyncio.Event()
        self.portfolio_counters = _Counters()
        self.t0 = 0.0

    # ------------------------------------------------------------------ helpers
    def _remaining(self, now: float) -> float:
        if self.duration <= 0:
            return math.inf
        return self.t0 + self.duration - now

    async def _sleep(self, seconds: float) -> None:
        """Sleep; a sleep longer than 0.1 s wakes early when a stop is requested."""
        if seconds < 0.1:
            await asyncio.sleep(max(seconds, 0.0))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _enqueue(self, feed: _Feed, source: str) -> None:
        if source not in feed.in_flight and source not in feed.queued:
            feed.queued.add(source)
            self.ready.put_nowait((feed, source))

    def _check_idle(self) -> None:
        if all(f.done and f.pending == 0 for f in self.feeds):
            self.idle.set()

    # ------------------------------------------------------------------ producer
    async def _produce(self, feed: _Feed) -> None:
        scenario = feed.scenario
        interval = float(scenario.interval)
        total = math.ceil(self.duration / interval - 1e-9) if self.duration > 0 else math.inf
        backlog = self.max_backlog or max(500, int(feed.rate))
        loop = asyncio.get_running_loop()
        events = list(self.events) if isinstance(scenario, MarketScenario) else []
        steps = 0
        try:
            while not self.stop.is_set() and steps < total:
                now = loop.time()
                while events and events[0][0] <= now - self.t0:
                    _, event = events.pop(0)
                    assert isinstance(scenario, MarketScenario)
                    scenario.trigger(event)
                    self.echo(f"market: triggered {event} at step {scenario.step_}")
                due = min(int((now - self.t0) / interval) + 1, total)
                while steps < due and (feed.silent or feed.pending < backlog):
                    points = next(scenario)
                    steps += 1
                    feed.counters.generated += len(points)
                    if feed.silent:
                        continue
                    for p in points:
                        feed.buffers.setdefault(p.source, deque()).append(p)
                        feed.seen_sources.add(p.source)
                        feed.pending += 1
                        self._enqueue(feed, p.source)
                    if steps % 64 == 0:
                        await asyncio.sleep(0)  # let the workers start on a long catch-up
                if self._remaining(now) <= 0:
                    break  # a backlog at the deadline: the steps left are not produced
                if steps < due:  # backlog full: wait for the workers
                    await self._sleep(0.005)
                else:
                    await self._sleep(min(self.t0 + steps * interval - loop.time(), 0.05))
        finally:
            feed.done = True
            self._check_idle()

    # ------------------------------------------------------------------ sender
    async def _worker(self) -> None:
        while True:
            feed, source = await self.ready.get()
            feed.queued.discard(source)
            buf = feed.buffers[source]
            if not buf:
                continue
            batch = [buf.popleft() for _ in range(min(len(buf), self.max_points))]
            feed.in_flight.add(source)
            try:
                await self._send(feed, source, batch)
            finally:
                feed.in_flight.discard(source)
                feed.pending -= len(batch)
                if buf:
                    self._enqueue(feed, source)
                self._check_idle()

    async def _send(self, feed: _Feed, source: str, batch: list[ScenarioPoint]) -> None:
        c = feed.counters
        if feed.erase_first and source != CONTROL_SOURCE and source not in feed.erased:
            feed.erased.add(source)
            try:
                r = await self.client.delete(f"/api/v1/sources/{source}")
                if r.status_code not in (204, 404):
                    c.error(f"erasing {source}: HTTP {r.status_code}: {r.text[:200]}")
            except httpx.HTTPError as exc:
                c.error(f"erasing {source}: {type(exc).__name__}: {exc}")
        multivariate = isinstance(batch[0].data, tuple)
        body: dict[str, Any] = {
            "source": source,
            "data": [list(p.data) if multivariate else p.data for p in batch],  # type: ignore[arg-type]
            "timestamp": [p.timestamp for p in batch],
        }
        if batch[0].config:
            body["config"] = batch[0].config
        content = orjson.dumps(body)
        connect_failures = 0
        while True:
            start = time.perf_counter()
            try:
                response = await self.client.post(
                    "/api/v1/process/realtime",
                    content=content,
                    headers={"content-type": "application/json"},
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                connect_failures += 1
                if connect_failures <= _CONNECT_RETRIES:
                    c.retries += 1
                    await asyncio.sleep(0.2 * 2**connect_failures)
                    continue
                c.error(f"{type(exc).__name__}: {exc}")
                c.lost += len(batch)
                return
            except httpx.HTTPError as exc:  # sent, outcome unknown: do not resend
                c.error(f"{type(exc).__name__}: {exc}")
                c.lost += len(batch)
                return
            if response.status_code in (429, 503):
                c.retries += 1
                await asyncio.sleep(_retry_after(response))
                continue
            break
        latency = time.perf_counter() - start
        if response.status_code != 200:
            c.error(f"HTTP {response.status_code}: {response.text[:200]}")
            c.lost += len(batch)
            return
        pred = orjson.loads(response.content)
        c.latencies.append(latency)
        c.requests += 1
        c.predictions += 1
        c.sent += len(batch)
        expected = feed.expected_seq.get(source)
        seq = int(pred.get("sequence", -1))
        if expected is not None and seq != expected + len(batch):
            c.mismatches += 1
        feed.expected_seq[source] = seq
        feed.score.on_sent(batch)
        feed.score.on_prediction(batch[-1], pred)

    # ------------------------------------------------------------------ portfolio
    async def _portfolio(self, ps: PortfolioScenario) -> None:
        c = self.portfolio_counters
        loop = asyncio.get_running_loop()
        next_at = self.t0 + self.portfolio_period_s
        try:
            while not self.stop.is_set():
                await self._sleep(min(next_at - loop.time(), self._remaining(loop.time())))
                if self.stop.is_set() or self._remaining(loop.time()) <= 0:
                    break
                next_at += self.portfolio_period_s
                body = ps.request()
                if body is None:
                    continue
                result = await self._post_json(c, "/api/v1/optimize/portfolio", body)
                if result is not None:
                    ps.record(result)
                    names = [
                        ps.market_.sources[i].removeprefix("market.") for i in result["selected"]
                    ]
                    self.echo(
                        f"portfolio: step {ps.market_.step_}: hold {', '.join(names)} "
                        f"(expected {result['expected_return']:+.3f}/yr, "
                        f"risk {math.sqrt(max(result['risk'], 0.0)):.3f})"
                    )
        finally:
            ps.close()

    async def _post_json(self, c: _Counters, path: str, body: dict[str, Any]) -> Any:
        content = orjson.dumps(body)
        for _attempt in range(20):
            start = time.perf_counter()
            try:
                r = await self.client.post(
                    path, content=content, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                c.error(f"{type(exc).__name__}: {exc}")
                return None
            if r.status_code in (429, 503):
                c.retries += 1
                await self._sleep(_retry_after(r))
                if self.stop.is_set():
                    return None
                continue
            if r.status_code != 200:
                c.error(f"HTTP {r.status_code}: {r.text[:200]}")
                return None
            c.latencies.append(time.perf_counter() - start)
            c.requests += 1
            return orjson.loads(r.content)
        c.error("gave up after 20 retries")
        return None

    # ------------------------------------------------------------------ progress
    async def _progress(self) -> None:
        assert self.progress_every_s is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.progress_every_s)
            elapsed = loop.time() - self.t0
            for feed in self.feeds:
                if feed.silent:
                    continue
                c, h = feed.counters, feed.score.hit_stats()
                line = (
                    f"{feed.name:>11s} {elapsed:6.1f}s: {c.sent:,} points "
                    f"({c.sent / max(elapsed, 1e-9):,.0f}/s of {feed.rate:,.0f}/s), "
                    f"hit rate {h.hit_rate:.3f} (last {h.rolling_window}: "
                    f"{h.rolling_hit_rate:.3f}), p95 {_quantile_ms(c.latencies, 0.95):.1f} ms"
                )
                if isinstance(feed.scenario, MarketScenario):
                    m = feed.scenario
                    line += f", regime {m.regime_names_[m.regime_]}"
                self.echo(line)

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.t0 = loop.time()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        producers = [asyncio.create_task(self._produce(f)) for f in self.feeds]
        extra = []
        if self.portfolio is not None:
            extra.append(asyncio.create_task(self._portfolio(self.portfolio)))
        if self.progress_every_s:
            extra.append(asyncio.create_task(self._progress()))
        try:
            await asyncio.gather(*producers)
            self._check_idle()
            waits = [asyncio.create_task(self.idle.wait()), asyncio.create_task(self.abort.wait())]
            await asyncio.wait(waits, timeout=self.drain_timeout_s, return_when="FIRST_COMPLETED")
            for waiter in waits:
                waiter.cancel()
            if self.portfolio is not None and not self.abort.is_set():
                await asyncio.wait([extra[0]], timeout=self.drain_timeout_s)
        finally:
            for task in [*workers, *producers, *extra]:
                task.cancel()
            await asyncio.gather(*workers, *producers, *extra, return_exceptions=True)
        self.t_end = loop.time()

    def summaries(self) -> dict[str, ScenarioSummary]:
        out: dict[str, ScenarioSummary] = {}
        elapsed = max(self.t_end - self.t0, 1e-9)
        for feed in self.feeds:
            if feed.silent:
                continue
            c = feed.counters
            score = feed.score
            events = tuple(getattr(feed.scenario, "events_", ()))
            out[feed.name] = ScenarioSummary(
                scenario=feed.name,
                sources=len(feed.seen_sources),
                requested_rate=feed.rate,
                achieved_rate=c.sent / elapsed,
                elapsed_s=elapsed,
                points_generated=c.generated,
                points_sent=c.sent,
                points_lost=c.lost,
                requests=c.requests,
                predictions_received=c.predictions,
                retries=c.retries,
                errors=c.errors,
                sequence_mismatches=c.mismatches,
                latency_p50_ms=_quantile_ms(c.latencies, 0.5),
                latency_p95_ms=_quantile_ms(c.latencies, 0.95),
                hits=score.hit_stats(),
                anomalies=score.anomaly_stats(),
                maintenance=score.maintenance_stats(),
                error_samples=tuple(c.error_samples),
                events=events,
            )
        if self.portfolio is not None:
            ps, c = self.portfolio, self.portfolio_counters
            scored = [d for d in ps.decisions_ if math.isfinite(d.realised_return)]
            last = ps.decisions_[-1].selected if ps.decisions_ else []
            out["portfolio"] = ScenarioSummary(
                scenario="portfolio",
                sources=len(ps.market_.sources),
                requested_rate=1.0 / self.portfolio_period_s,
                achieved_rate=c.requests / elapsed,
                elapsed_s=elapsed,
                points_generated=0,
                points_sent=0,
                points_lost=0,
                requests=c.requests,
                predictions_received=0,
                retries=c.retries,
                errors=c.errors,
                sequence_mismatches=0,
                latency_p50_ms=_quantile_ms(c.latencies, 0.5),
                latency_p95_ms=_quantile_ms(c.latencies, 0.95),
                portfolio=PortfolioStats(
                    optimisations=len(ps.decisions_),
                    periods_scored=len(scored),
                    mean_realised_return=(
                        float(np.mean([d.realised_return for d in scored])) if scored else math.nan
                    ),
                    mean_benchmark_return=(
                        float(np.mean([d.benchmark_return for d in scored])) if scored else math.nan
                    ),
                    last_selected=tuple(
                        ps.market_.sources[i].removeprefix("market.") for i in last
                    ),
                ),
                error_samples=tuple(c.error_samples),
            )
        return out


def _rates(names: Sequence[str], rate: float | Mapping[str, float] | None) -> dict[str, float]:
    out = {}
    for name in names:
        if name == "portfolio":
            continue
        if rate is None:
            r = DEFAULT_RATES[name]
        elif isinstance(rate, Mapping):
            r = rate.get(name, DEFAULT_RATES[name])
        else:
            r = rate
        if isinstance(r, bool) or not (isinstance(r, int | float) and math.isfinite(r) and r > 0):
            raise InvalidParameterError(
                f"The 'rate' of scenario {name!r} must be a positive number of points per "
                f"second. Got {r!r} instead."
            )
        out[name] = float(r)
    return out


async def stream_scenarios(
    names: Sequence[str],
    *,
    base_url: str,
    api_key: str,
    rate: float | Mapping[str, float] | None = None,
    duration: float = 60.0,
    seed: int = 0,
    events: Sequence[tuple[float, str]] = (),
    concurrency: int = 8,
    max_points_per_request: int = 100,
    max_backlog: int | None = None,
    portfolio_period_s: float = 5.0,
    drain_timeout_s: float = 30.0,
    progress_every_s: float | None = None,
    echo: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    handle_sigint: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, ScenarioSummary]:
    """Stream the named scenarios concurrently to a server and summarise each.

    Parameters
    ----------
    names : sequence of str
        Scenarios from :data:`SCENARIO_NAMES`, each at most once.
    base_url : str
        The server, e.g. ``"http://127.0.0.1:8000"``.
    api_key : str
        A key with the ``developer`` role (or above).
    rate : float or mapping of str to float, optional
        Points per second of every streaming scenario (a number), or per scenario (a
        mapping); default :data:`DEFAULT_RATES`. The portfolio's market runs at the market
        rate.
    duration : float, default=60.0
        Seconds of streaming; ``0`` streams until ``stop`` is set or Ctrl-C.
    seed : int, default=0
        Seed of every scenario (``seed + i`` for the ``i``-th).
    events : sequence of (float, str)
        ``(seconds after the start, event)`` triggers of the market scenario
        (:func:`nqp.scenarios.market.parse_event`).
    concurrency : int, default=8
        Requests in flight at most.
    max_points_per_request : int, default=100
        Points of one source one request carries at most.
    max_backlog : int, optional
        Points a scenario may have waiting (default ``max(500, rate)``: about a second).
    portfolio_period_s : float, default=5.0
        Seconds between re-optimisations of the portfolio scenario.
    drain_timeout_s : float, default=30.0
        After the producers stop, seconds to wait for the points still waiting.
    progress_every_s : float, optional
        Print a progress line per scenario this often.
    echo : callable, default=print
        Where progress lines go.
    stop : asyncio.Event, optional
        Set it to end the run early (the points already produced are still sent).
    handle_sigint : bool, default=True
        In the main thread, the first Ctrl-C (SIGINT) sets ``stop``, a second one abandons
        the points still waiting.
    transport : httpx.AsyncBaseTransport, optional
        For tests (e.g. ``httpx.ASGITransport``).

    Returns
    -------
    dict of str to ScenarioSummary
        In the order of ``names``.
    """
    names = list(names)
    unknown = [n for n in names if n not in SCENARIO_NAMES]
    if not names or unknown or len(set(names)) != len(names):
        raise InvalidParameterError(
            f"The 'names' parameter of stream_scenarios must hold distinct names from "
            f"{SCENARIO_NAMES}. Got {names!r} instead."
        )
    for at, event in events:
        if event not in MARKET_EVENTS or not at >= 0:
            raise InvalidParameterError(f"Bad event {event!r} at {at!r} s.")
    if events and "market" not in names and "portfolio" not in names:
        raise InvalidParameterError("Market events need the 'market' or 'portfolio' scenario.")
    validate_params(
        "stream_scenarios",
        {
            "duration": duration,
            "seed": seed,
            "concurrency": concurrency,
            "max_points_per_request": max_points_per_request,
            "max_backlog": max_backlog,
            "portfolio_period_s": portfolio_period_s,
            "drain_timeout_s": drain_timeout_s,
            "progress_every_s": progress_every_s,
        },
        {
            "duration": [Interval("real", 0, None)],
            "seed": [Interval("int", 0, None)],
            "concurrency": [Interval("int", 1, 1000)],
            "max_points_per_request": [Interval("int", 1, None)],
            "max_backlog": [Interval("int", 1, None), None],
            "portfolio_period_s": [Interval("real", 0, None, "neither")],
            "drain_timeout_s": [Interval("real", 0, None)],
            "progress_every_s": [Interval("real", 0, None, "neither"), None],
        },
    )
    rates = _rates(names, rate)
    start_wall = time.time()
    feeds: list[_Feed] = []
    market: MarketScenario | None = None
    for i, name in enumerate(names):
        if name == "portfolio":
            continue
        scenario = make_scenario(name, rate=rates[name], seed=seed + i, start_time=start_wall)
        feeds.append(_Feed(scenario, rates[name]))
        if isinstance(scenario, MarketScenario):
            market = scenario
    portfolio = None
    if "portfolio" in names:
        if market is None:  # advanced locally, its ticks not sent
            market_rate = _rates(
                ["market"], rate.get("market") if isinstance(rate, Mapping) else rate
            )
            market = cast(
                MarketScenario,
                make_scenario(
                    "market",
                    rate=market_rate["market"],
                    seed=seed + names.index("portfolio"),
                    start_time=start_wall,
                ),
            )
            feeds.append(_Feed(market, market_rate["market"], silent=True))
        portfolio = PortfolioScenario(market, seed=seed)
    stop = stop or asyncio.Event()
    abort = asyncio.Event()

    def interrupt() -> None:  # first Ctrl-C: stop producing and drain; second: give up
        if stop.is_set():
            abort.set()
        else:
            echo("stopping: draining the points already produced (Ctrl-C again to abort)")
            stop.set()

    loop = asyncio.get_running_loop()
    handled = False
    if handle_sigint:
        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
            handled = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support: the caller stops us
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(
        max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2
    )
    try:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=limits,
            transport=transport,
        ) as client:
            run = _Run(
                client,
                feeds,
                portfolio,
                duration=float(duration),
                events=events,
                concurrency=concurrency,
                max_points=max_points_per_request,
                max_backlog=max_backlog,
                portfolio_period_s=portfolio_period_s,
                drain_timeout_s=drain_timeout_s,
                progress_every_s=progress_every_s,
                echo=echo,
                stop=stop,
                abort=abort,
            )
            await run.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    summaries = run.summaries()
    return {n: summaries[n] for n in names if n in summaries}


def run_scenarios(names: Sequence[str], **kwargs: Any) -> dict[str, ScenarioSummary]:
    """Synchronous :func:`stream_scenarios` (runs its own event loop)."""
    return asyncio.run(stream_scenarios(names, **kwargs))


def run_scenario(
    name: str,
    base_url: str,
    api_key: str,
    rate: float | None = None,
    duration: float = 10.0,
    **kwargs: Any,
) -> ScenarioSummary:
    """Stream one scenario (synchronously) and return its summary.

    See :func:`stream_scenarios` for the keyword arguments.
    """
    return run_scenarios(
        [name], base_url=base_url, api_key=api_key, rate=rate, duration=duration, **kwargs
    )[name]
