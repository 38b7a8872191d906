"""WS /ws/predictions: live predictions of the caller's tenant, filtered.

Protocol: connect with ``Authorization: Bearer <key or token>``, or connect without it and
send ``{"type": "auth", "token": "<key or token>"}`` first (browsers cannot set headers on a
WebSocket; a message keeps the credential out of URLs and access logs; ``?token=`` also
works but lands in logs), then send ``{"type": "subscription", "sources":
[...], "filters": {"min_confidence": 0.6, "directions": ["up"]}}`` (sources omitted: all).
The server answers ``{"type": "subscribed", ...}``, then sends ``{"type": "prediction",
"prediction": {...}}`` messages and a ``{"type": "ping"}`` every ``PING_INTERVAL_S``. A
new subscription message replaces the filters. A client that does not keep up is dropped
(close code 1013, "slow consumer") rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nqp.service.api.deps import authenticate
from nqp.service.errors import ApiError
from nqp.service.hub import CloseReason, parse_subscription
from nqp.service.responses import dumps

__all__ = ["PING_INTERVAL_S", "router"]

router = APIRouter(tags=["websocket"])

PING_INTERVAL_S = 20.0
_SUBSCRIBE_TIMEOUT_S = 30.0


def _auth_token(text: str) -> str:
    """The credential of an ``{"type": "auth", "token": ...}`` message (ValueError if not)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("The auth message is not valid JSON.") from None
    if (
        not isinstance(message, dict)
        or message.get("type") != "auth"
        or not isinstance(message.get("token"), str)
    ):
        raise ValueError(
            'Expected {"type": "auth", "token": "<key or token>"} first '
            "(or an Authorization header)."
        )
    return message["token"]


@router.websocket("/ws/predictions")
async def predictions_ws(websocket: WebSocket) -> None:
    runtime = websocket.app.state.runtime
    header = websocket.headers.get("authorization", "")
    credential = websocket.query_params.get("token") or (
        header[7:].strip() if header.lower().startswith("bearer ") else ""
    )
    if credential:
        try:
            principal = await authenticate(runtime, credential)
        except ApiError as exc:
            await websocket.close(code=1008, reason=exc.message[:120])
            return
        await websocket.accept()
    else:
        await websocket.accept()
        try:
            principal = await authenticate(
                runtime, _auth_token(await asyncio.wait_for(websocket.receive_text(), 10.0))
            )
        except (TimeoutError, ValueError, ApiError) as exc:
            message = exc.message if isinstance(exc, ApiError) else str(exc) or "auth timeout"
            with contextlib.suppress(Exception):
                await websocket.send_text(dumps({"type": "error", "message": message}).decode())
                await websocket.close(code=1008, reason=message[:120])
            return
        except WebSocketDisconnect:
            return
    try:
        first = await asyncio.wait_for(websocket.receive_text(), _SUBSCRIBE_TIMEOUT_S)
        request = parse_subscription(first)
    except (TimeoutError, ValueError) as exc:
        with contextlib.suppress(Exception):
            await websocket.send_text(dumps({"type": "error", "message": str(exc)}).decode())
            await websocket.close(code=1008, reason="subscription expected")
        return
    except WebSocketDisconnect:
        return
    sub = runtime.hub.subscribe(principal.tenant_id, request.sources, request.filters)
    runtime.metrics.ws_clients.inc()
    await websocket.send_text(
        dumps(
            {
                "type": "subscribed",
                "sources": sorted(request.sources) if request.sources else None,
                "min_confidence": request.filters.min_confidence,
                "directions": sorted(request.filters.directions)
                if request.filters.directions
                else None,
            }
        ).decode()
    )

    async def send() -> None:
        async for prediction in sub:
            await websocket.send_text(
                dumps({"type": "prediction", "prediction": prediction}).decode()
            )

    async def receive() -> None:
        while True:
            text = await websocket.receive_text()
            try:
                sub.update(parse_subscription(text))
            except ValueError as exc:
                await websocket.send_text(dumps({"type": "error", "message": str(exc)}).decode())

    async def ping() -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            await websocket.send_text('{"type":"ping"}')

    tasks = [asyncio.create_task(t()) for t in (send, receive, ping)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        runtime.hub.unsubscribe(sub)
        runtime.metrics.ws_clients.dec()
        if sub.close_reason is CloseReason.SLOW_CONSUMER:
            with contextlib.suppress(Exception):
                await websocket.close(code=1013, reason="slow consumer")
        else:
            with contextlib.suppress(Exception):
                await websocket.close()
