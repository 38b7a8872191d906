"""The FastAPI application: ``create_app(settings)``.

Routers per resource (``nqp.service.api.routes``), one error shape, a body-size limit,
request ids in JSON logs, metrics per request, and a lifespan that starts the runtime
(migrations, bootstrap key, batcher) and drains it on shutdown (SIGTERM under uvicorn).
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nqp import __version__
from nqp.config import Settings
from nqp.service.api.routes import (
    auth,
    batch,
    dashboard,
    health,
    keys,
    optimize,
    predictions,
    process,
    sources,
    validation,
    ws,
)
from nqp.service.api.routes import config as config_routes
from nqp.service.errors import ERROR_RESPONSES, error_body, install_error_handlers
from nqp.service.responses import JSONBytes, dumps
from nqp.service.runtime import Runtime

__all__ = ["create_app"]

log = logging.getLogger("nqp.service")


class _BodyLimit:
    """413 for bodies over ``limit`` bytes, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._reject(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = dumps(error_body("payload_too_large", f"Body exceeds {self.limit} bytes."))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class _Observe:
    """Request ids, JSON access logs and per-route metrics."""

    def __init__(self, app: ASGIApp, runtime_getter) -> None:
        self.app = app
        self.runtime_getter = runtime_getter
        # process prefix + counter: unique per process start, and no urandom call per request
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode()
        if not request_id:
            request_id = f"{self._id_prefix}-{next(self._ids):x}"
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            runtime = self.runtime_getter()
            if runtime is not None:
                metrics = runtime.metrics
                metrics.child(metrics.requests, path, scope["method"], str(status)).inc()
                metrics.child(metrics.latency, path).observe(elapsed)
            if log.isEnabledFor(logging.DEBUG):  # access log: NQP_LOG_LEVEL=debug
                log.debug(
                    json.dumps(
                        {
                            "event": "request",
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                        }
                    )
                )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The NQP HTTP application on ``settings`` (default: ``Settings()``)."""
    settings = settings if settings is not None else Settings()
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="NQP — Neuromorphic-Quantum Platform",
        version=__version__,
        default_response_class=JSONBytes,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # NQP exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks would look up
        # the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (  # the hot route first: routers are matched in this order
        process,
        health,
        auth,
        keys,
        batch,
        predictions,
        sources,
        config_routes,
        optimize,
        validation,
        ws,
        dashboard,
    ):
        app.include_router(module.router)
    app.add_middleware(process.RealtimeShortcut, runtime_getter=lambda: app.state.runtime)
    app.add_middleware(_BodyLimit, limit=settings.service.max_body_bytes)
    app.add_middleware(_Observe, runtime_getter=lambda: app.state.runtime)
    return app
