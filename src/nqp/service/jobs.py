"""Batch jobs: run a validated batch through the realtime path, then deliver a callback.

A job (``POST /api/v1/process/batch``) is validated whole by the API layer, stored as
``queued`` and handed to :meth:`JobRunner.run` in the background (``Runtime.spawn``, so
shutdown waits for it). The runner feeds one :class:`~nqp.engine.ProcessItem` per source
(all of that source's points, in request order) through :meth:`Runtime.submit` — the same
code path as ``POST /api/v1/process/realtime``: the micro-batcher steps many sources per
vectorised wave, and every prediction is stored and published to WebSocket subscribers.
Sources go in chunks of ``settings.service.batch_max_size``, two chunks in flight at once,
each fed in rounds of about ``wave_points`` points, so that storing one chunk's round
overlaps computing the other's. A job is ``succeeded`` only once all of its predictions
are stored.

Stored result (bounded)
-----------------------
Every point's prediction is stored in the predictions table (``GET /api/v1/predictions``);
the job row keeps only a summary: totals, and per source (the first
:data:`RESULT_MAX_SOURCES` sources of the request) the number of points, the counts of
predicted directions and the last point's prediction (:data:`SUMMARY_FIELDS`); at most
:data:`RESULT_MAX_ERRORS` per-source errors are listed.

Callbacks
---------
When the job names ``callback_url``, the finished job (:func:`callback_body`) is POSTed
there as JSON with headers

* ``X-NQP-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`` keyed by the
  tenant's callback secret (:func:`callback_secret`; admins read it at
  ``GET /api/v1/jobs/callback-secret``),
* ``X-NQP-Timestamp: <unix seconds>`` (also inside the signed body as ``timestamp``, so a
  receiver can refuse replays of old deliveries).

The body is identical on every attempt. Attempts are retried with exponential backoff on
connection errors, timeouts, 408, 429 and 5xx (not on other 4xx); redirects are not
followed (a redirect could leave the allow-list). Each destination host has a
:class:`~nqp.service.breaker.CircuitBreaker`, so a dead receiver costs one fast failure per
job instead of a full retry schedule. The outcome is recorded in ``Job.callback_status``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
from numpy.typing import NDArray

from nqp import store
from nqp.engine import ProcessItem
from nqp.engine.process import PredictionBatch
from nqp.service.batcher import QueueFullError, ShuttingDownError
from nqp.service.breaker import CircuitBreaker, CircuitOpenError
from nqp.service.responses import dumps
from nqp.service.runtime import Runtime, internal_source
from nqp.types import ProcessConfig

__all__ = [
    "RESULT_MAX_ERRORS",
    "RESULT_MAX_SOURCES",
    "SUMMARY_FIELDS",
    "CallbackSender",
    "JobRunner",
    "SourceBatch",
    "callback_body",
    "callback_secret",
    "callback_url_problem",
    "sign",
]

log = logging.getLogger("nqp.service.jobs")

RESULT_MAX_SOURCES = 1000
RESULT_MAX_ERRORS = 100
SUMMARY_FIELDS = (
    "prediction_id",
    "sequence",
    "timestamp",
    "direction",
    "confidence",
    "magnitude",
    "expected_change",
    "uncertainty",
    "horizon",
    "warming_up",
    "anomaly_score",
)
_STATUS_LEN = 64  # Job.callback_status column width
_FLUSH_EVERY_POINTS = 50_000  # let the prediction writer catch up (its queue is bounded)
_QUEUE_FULL_RETRIES = 20
_CHUNKS_IN_FLIGHT = 2  # per engine process: one chunk's round stepped, the other's stored


# ---------------------------------------------------------------------- signing
def callback_secret(jwt_secret: str, tenant_id: str) -> str:
    """The tenant's callback signing secret: ``hex HMAC-SHA256(jwt_secret, label + tenant)``.

    Derived, not stored: stable across restarts and gateways sharing the JWT secret,
    different per tenant, and it reveals nothing about the JWT secret. Rotating the JWT
    secret rotates every tenant's callback secret.

    Examples
    --------
    >>> a = callback_secret("s3cret", "tenant-a")
    >>> len(a), a == callback_secret("s3cret", "tenant-a"), a == callback_secret("s3cret", "b")
    (64, True, False)
    """
    msg = b"nqp.callback-secret.v1:" + tenant_id.encode()
    return hmac.new(jwt_secret.encode(), msg, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    """The ``X-NQP-Signature`` header value: ``sha256=<hex HMAC-SHA256(secret, body)>``.

    Examples
    --------
    >>> sign("key", b"The quick brown fox jumps over the lazy dog")
    'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_url_problem(url: str, allowed_hosts: Iterable[str]) -> str | None:
    """Why ``url`` may not receive callbacks, or ``None`` if it may.

    Allowed: ``http``/``https`` URLs without credentials whose host (case-insensitive)
    is in ``allowed_hosts``; an entry ``host:port`` admits only that port.

    Examples
    --------
    >>> callback_url_problem("https://hooks.example.com/x", ["hooks.example.com"]) is None
    True
    >>> callback_url_problem("ftp://hooks.example.com/x", ["hooks.example.com"])
    "callback_url must be an http or https URL, got scheme 'ftp'."
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"callback_url is not a valid URL: {exc}."
    if parts.scheme not in ("http", "https"):
        return f"callback_url must be an http or https URL, got scheme {parts.scheme!r}."
    host = (parts.hostname or "").lower()
    if not host:
        return "callback_url has no host."
    if parts.username is not None or parts.password is not None:
        return "callback_url must not contain credentials."
    allowed = {h.strip().lower() for h in allowed_hosts}
    if host in allowed or (port is not None and f"{host}:{port}" in allowed):
        return None
    if not allowed:
        return "callback_url is refused: no callback hosts are allowed on this server."
    return f"callback_url host {host!r} is not in the server's callback allow-list."


def callback_body(job: Any, *, timestamp: int) -> bytes:
    """The JSON bytes POSTed for a finished ``job`` (a :class:`nqp.store.Job` row)."""
    return dumps(
        {
            "event": "job.finished",
            "timestamp": timestamp,
            "job_id": job.id,
            "status": job.status,
            "error": job.error,
            "result": job.result,
            "created_at": job.created_at.isoformat() if job.created_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        }
    )


# ---------------------------------------------------------------------- delivery
class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class CallbackSender:
    """POST signed callbacks with retries, backoff, timeouts and per-host circuit breakers.

    Parameters
    ----------
    attempts : int, default=3
        Tries per delivery.
    backoff_s : float, default=0.5
        Wait before retry ``k`` (1-based) is ``backoff_s * 2**(k-1)`` seconds (0.5, 1, 2, ...).
    timeout_s : float, default=10.0
        Per-attempt limit (connect + send + response), seconds.
    failure_threshold : int, default=5
        Consecutive failed attempts to one host that open its circuit.
    reset_timeout_s : float, default=60.0
        Seconds a host's circuit stays open.
    """

    def __init__(
        self,
        attempts: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        failure_threshold: int = 5,
        reset_timeout_s: float = 60.0,
    ) -> None:
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, url: str) -> CircuitBreaker:
        """The circuit breaker of ``url``'s host (and port)."""
        netloc = urlsplit(url).netloc.lower()
        if netloc not in self._breakers:
            self._breakers[netloc] = CircuitBreaker(
                self.failure_threshold, self.reset_timeout_s, name=f"callback:{netloc}"
            )
        return self._breakers[netloc]

    async def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        """POST ``body``; return the outcome for ``Job.callback_status`` (≤ 64 characters).

        ``"delivered"`` (first attempt) or ``"delivered after N attempts"``; otherwise
        ``"failed: <last reason> after N attempts"``.
        """
        try:
            import httpx
        except ImportError:  # httpx is in the dev extra only; see the module notes
            return "failed: httpx is not installed"
        breaker = self.breaker(url)
        reason = "not attempted"
        tried = 0
        timeout = httpx.Timeout(self.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:

            async def post() -> int:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code in (408, 429) or response.status_code >= 500:
                    raise _RetryableStatus(response.status_code)
                return response.status_code

            for attempt in range(1, self.attempts + 1):
                if attempt > 1:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 2))
                tried = attempt
                try:
                    status = await breaker.call(post, timeout_s=self.timeout_s)
                except CircuitOpenError:
                    reason = "circuit open"
                    break
                except _RetryableStatus as exc:
                    reason = f"HTTP {exc.status}"
                    continue
                except (httpx.HTTPError, OSError, TimeoutError) as exc:
                    reason = type(exc).__name__
                    continue
                if 200 <= status < 300:
                    return "delivered" if attempt == 1 else f"delivered after {attempt} attempts"
                reason = f"HTTP {status}"  # other 4xx/3xx: the receiver refused; no retry
                break
        plural = "attempt" if tried == 1 else "attempts"
        return f"failed: {reason} after {tried} {plural}"[:_STATUS_LEN]


# ---------------------------------------------------------------------- running
@dataclass(frozen=True)
class SourceBatch:
    """All points of one source in a batch request, in request order.

    Attributes
    ----------
    source : str
        The tenant's (public) source name.
    values : ndarray of shape (n_points, n_channels), float64
    timestamps : ndarray of shape (n_points,), float64
        Seconds since the epoch, non-decreasing.
    """

    source: str
    values: NDArray[np.float64]
    timestamps: NDArray[np.float64]


class _Tally:
    """A running summary of one source's predictions (the job keeps no Prediction list)."""

    __slots__ = ("directions", "error", "last", "points")

    def __init__(self) -> None:
        self.points = 0
        self.directions = {"up": 0, "down": 0, "hold": 0}
        self.last: PredictionBatch | None = None  # the latest non-empty batch
        self.error: BaseException | None = None

    def add(self, preds: PredictionBatch) -> None:
        """Count a chunk of predictions (parsed only at the end, for the last one)."""
        for direction in self.directions:
            self.directions[direction] += preds.directions.count(direction)
        self.points += len(preds)
        if len(preds):
            self.last = preds

    def public(self, source: str) -> dict[str, Any]:
        out: dict[str, Any] = {"source": source, "points": self.points}
        if self.last is not None:
            last = orjson.loads(self.last.payloads()[-1])
            out["directions"] = self.directions
            out["last"] = {name: last[name] for name in SUMMARY_FIELDS}
        if self.error is not None:
            out["error"] = _message(self.error)
        return out


class JobRunner:
    """Runs batch jobs of one :class:`~nqp.service.runtime.Runtime` and sends callbacks.

    Parameters
    ----------
    runtime : Runtime
    callbacks : CallbackSender, optional
        Default ``CallbackSender()`` (3 attempts, 0.5/1 s backoff, 10 s timeout).
    wave_points : int, default=4096
        Points submitted per round (spread over the sources in flight); smaller rounds
        overlap storage with computing sooner, larger ones cost fewer engine calls.
    """

    def __init__(
        self,
        runtime: Runtime,
        callbacks: CallbackSender | None = None,
        wave_points: int = 4096,
    ) -> None:
        self.runtime = runtime
        self.callbacks = callbacks if callbacks is not None else CallbackSender()
        self.wave_points = wave_points

    async def run(
        self,
        *,
        tenant_id: str,
        job_id: str,
        batches: Sequence[SourceBatch],
        config: ProcessConfig | None,
        callback_url: str | None,
    ) -> None:
        """Process the job, store its outcome, then deliver its callback (never raises)."""
        try:
            await self._set(tenant_id, job_id, status="running")
            result, error = await self._process(tenant_id, batches, config)
            await self._set(
                tenant_id,
                job_id,
                status="failed" if error else "succeeded",
                result=result,
                error=error,
                callback_status="pending" if callback_url else None,
            )
        except Exception as exc:  # the job must end in a final state whatever happened
            log.exception("batch job %s failed", job_id)
            self.runtime.metrics.errors.labels("batch_job").inc()
            await self._set(
                tenant_id,
                job_id,
                status="failed",
                error=f"internal error: {type(exc).__name__}: {exc}",
                callback_status="pending" if callback_url else None,
            )
        self.runtime.ends.announce()  # before the callback: waiters see the final status now
        if callback_url:
            await self._callback(tenant_id, job_id, callback_url)

    async def _set(self, tenant_id: str, job_id: str, **fields: Any) -> None:
        try:
            async with self.runtime.sessions() as session:
                await store.update_job(session, tenant_id=tenant_id, job_id=job_id, **fields)
                await session.commit()
        except Exception:  # e.g. the job was erased meanwhile; nothing else to do
            log.exception("updating batch job %s failed", job_id)

    async def _process(
        self, tenant_id: str, batches: Sequence[SourceBatch], config: ProcessConfig | None
    ) -> tuple[dict[str, Any], str | None]:
        """Feed the batches in rounds; return (result summary, error or None).

        Each engine process's sources go in chunks of up to ``batch_max_size`` (one
        micro-batch), :data:`_CHUNKS_IN_FLIGHT` chunks per engine process at a time
        (disjoint sources, so per-source order holds), so that each engine process steps
        one chunk's round while the service stores and counts the other's. Each round
        submits the next ``ceil(wave_points / n_sources)`` points of every source of its
        chunk at once (stepped in vectorised waves). A source whose item fails gets no
        further rounds.
        """
        runtime = self.runtime
        start = time.perf_counter()
        width = max(1, runtime.settings.service.batch_max_size)
        tallies = [_Tally() for _ in batches]
        unflushed = [0]  # points since the last flush, shared by the chunks in flight
        by_shard: dict[int, list[int]] = {}
        for i, batch in enumerate(batches):
            shard = runtime.engine_shard(internal_source(tenant_id, batch.source))
            by_shard.setdefault(shard, []).append(i)

        async def feed(chunk: list[int], slots: asyncio.Semaphore) -> None:
            async with slots:
                await self._feed_chunk(tenant_id, batches, chunk, tallies, config, unflushed)

        try:
            async with asyncio.TaskGroup() as group:  # an unexpected error cancels the others
                for members in by_shard.values():
                    slots = asyncio.Semaphore(_CHUNKS_IN_FLIGHT)
                    for lo in range(0, len(members), width):
                        group.create_task(feed(members[lo : lo + width], slots))
        except ExceptionGroup as group:  # report the error itself, not the group
            raise group.exceptions[0] from None
        await runtime.flush()
        elapsed = time.perf_counter() - start
        points = sum(t.points for t in tallies)
        failed = [(b.source, t.error) for b, t in zip(batches, tallies, strict=True) if t.error]
        errors = [{"source": s, "error": _message(e)} for s, e in failed[:RESULT_MAX_ERRORS]]
        result = {
            "points": points,
            "sources": len(batches),
            "failed_sources": len(failed),
            "elapsed_s": round(elapsed, 6),
            "points_per_s": round(points / elapsed, 1) if elapsed > 0 else None,
            "by_source": [
                t.public(b.source)
                for b, t in zip(batches[:RESULT_MAX_SOURCES], tallies, strict=False)
            ],
            "truncated": len(batches) > RESULT_MAX_SOURCES,
            "errors": errors,
        }
        error = None
        if failed:
            error = f"{len(failed)} of {len(batches)} sources failed; first: {errors[0]['error']}"
        return result, error

    async def _feed_chunk(
        self,
        tenant_id: str,
        batches: Sequence[SourceBatch],
        chunk: list[int],
        tallies: list[_Tally],
        config: ProcessConfig | None,
        unflushed: list[int],
    ) -> None:
        """All rounds of one chunk of sources (``batches[i]`` for ``i`` in ``chunk``)."""
        runtime = self.runtime
        # restore first, so that the chunk's items reach the batcher together
        await runtime.ensure_restored_many(
            [internal_source(tenant_id, batches[i].source) for i in chunk]
        )
        step = max(1, -(-self.wave_points // len(chunk)))
        longest = max(len(batches[i].timestamps) for i in chunk)
        for a in range(0, longest, step):
            live = [i for i in chunk if tallies[i].error is None and a < len(batches[i].timestamps)]
            outs = await self._submit_round(
                tenant_id, [batches[i] for i in live], a, a + step, config
            )
            for i, out in zip(live, outs, strict=True):
                if isinstance(out, BaseException):
                    tallies[i].error = out
                else:
                    tallies[i].add(out)
                    unflushed[0] += len(out)
            if unflushed[0] >= _FLUSH_EVERY_POINTS:
                unflushed[0] = 0
                await runtime.flush()

    async def _submit_round(
        self,
        tenant_id: str,
        batches: Sequence[SourceBatch],
        lo: int,
        hi: int,
        config: ProcessConfig | None,
    ) -> list[PredictionBatch | BaseException]:
        """Points ``lo:hi`` of each of ``batches`` (distinct sources), stepped together."""
        items = []
        for batch in batches:
            # plain lists: they cross the pipe to the engine ~3x cheaper than array slices,
            # and univariate points as a flat list take the platform's fast parsing path
            values = batch.values[lo:hi]
            data = values[:, 0].tolist() if values.shape[1] == 1 else values.tolist()
            items.append(ProcessItem(batch.source, data, batch.timestamps[lo:hi].tolist(), config))
        for attempt in range(_QUEUE_FULL_RETRIES + 1):
            try:
                return await self.runtime.submit_many(tenant_id, items)
            except QueueFullError as exc:  # realtime traffic has the queue: wait our turn
                if attempt == _QUEUE_FULL_RETRIES:
                    return [exc] * len(items)
                await asyncio.sleep(min(5.0, max(0.01, exc.retry_after_s)))
            except ShuttingDownError as exc:  # each source fails with it, as when queued
                return [exc] * len(items)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _callback(self, tenant_id: str, job_id: str, url: str) -> None:
        try:
            async with self.runtime.sessions() as session:
                job = await store.get_job(session, tenant_id=tenant_id, job_id=job_id)
            if job is None:
                return
            now = int(time.time())
            body = callback_body(job, timestamp=now)
            secret = callback_secret(self.runtime.jwt_secret, tenant_id)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "nqp-callback/1",
                "X-NQP-Signature": sign(secret, body),
                "X-NQP-Timestamp": str(now),
                "X-NQP-Job-Id": job_id,
            }
            outcome = await self.callbacks.deliver(url, body, headers)
        except Exception as exc:
            log.exception("callback of batch job %s failed", job_id)
            outcome = f"failed: {type(exc).__name__}"[:_STATUS_LEN]
        if not outcome.startswith("delivered"):
            self.runtime.metrics.errors.labels("callback").inc()
        await self._set(tenant_id, job_id, callback_status=outcome)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ShuttingDownError):
        return "server is draining; source not processed"
    if isinstance(exc, QueueFullError):
        return "processing queue stayed full; source not processed"
    text = str(exc).replace("items[0].", "")
    return text if text else type(exc).__name__
