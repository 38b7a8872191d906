"""Realtime processing: points in, predictions out."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, Strict, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nqp.engine import ProcessItem
from nqp.exceptions import InvalidInputError
from nqp.service.api.deps import DeveloperKey, RuntimeDep, caller
from nqp.service.batcher import QueueFullError, ShuttingDownError
from nqp.service.errors import ApiError, error_response
from nqp.service.remote import ReplyTimeout
from nqp.service.runtime import Runtime, internal_source
from nqp.service.security import Principal, Role
from nqp.stream.kafka import StreamError
from nqp.types import Prediction, ProcessConfig

__all__ = ["Points", "RealtimeRequest", "RealtimeShortcut", "process_realtime", "router"]

router = APIRouter(prefix="/api/v1/process", tags=["process"])


# An int or a float: booleans and numeric strings are refused (lax validation would take
# them as 0/1 and as numbers), without a Python validator per value. Errors inside a points
# field are reported at the field (nqp.service.errors.POINTS_FIELD).
Number = Annotated[float, Strict()]

Points = Annotated[
    Number | list[Number] | list[list[Number]],
    Field(
        union_mode="left_to_right",  # disjoint members: the first that fits, tried once
        description="A number, numbers (univariate points) or lists of numbers (multivariate "
        "points); JSON numbers only, not booleans or strings.",
    ),
]


class RealtimeRequest(BaseModel):
    """One or more new points of one source, in time order."""

    model_config = {"extra": "forbid"}

    source: str = Field(min_length=1, max_length=200)
    data: Points
    timestamp: float | list[float] | None = Field(
        None, description="Seconds since the epoch: one per point, or one for the last point."
    )
    config: ProcessConfig | None = None


def _count(data: Any) -> int:
    return len(data) if isinstance(data, list) else 1


PATH = "/api/v1/process/realtime"

# The hot path parses and answers JSON itself (pydantic-core parses the raw body in one call;
# the prediction goes out as the JSON text the engine process made), and RealtimeShortcut
# serves it ahead of FastAPI's router: FastAPI's routing, dependency and response-model
# handling cost more than the engine step. The route below documents the same contract in
# the OpenAPI schema (its ``body`` parameter) and serves the path where the shortcut is not
# installed.


@router.post(
    "/realtime",
    response_model=None,
    responses={200: {"model": Prediction, "description": "The last point's prediction."}},
)
async def realtime(
    request: Request, body: RealtimeRequest, principal: DeveloperKey, runtime: RuntimeDep
) -> Response:
    """Advance the source by the given points; returns the last point's prediction.

    Every point's prediction is stored (``GET /api/v1/predictions``) and published to
    WebSocket subscribers. 429/503 with ``Retry-After`` when the queue is full or the
    server is draining.
    """
    raw = await request.body()  # parsed again by process_realtime, as on the shortcut
    return Response(await process_realtime(runtime, principal, raw), media_type="application/json")


async def process_realtime(runtime: Runtime, principal: Principal, raw: bytes) -> bytes:
    """A realtime call: the raw JSON body in, the JSON of the last point's prediction out.

    Raises :class:`ApiError` or ``RequestValidationError`` (translated by
    :func:`nqp.service.errors.error_response`).
    """
    try:
        body = RealtimeRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    svc = runtime.settings.service
    n = _count(body.data)
    if n == 0:
        raise ApiError(422, "data must hold at least one point.", field="data")
    if n > svc.max_points_per_request:
        raise ApiError(
            422, f"At most {svc.max_points_per_request} points per request.", field="data"
        )
    internal = internal_source(principal.tenant_id, body.source)
    if (
        await runtime.is_new_source(internal)
        and await runtime.count_sources(principal.tenant_id) >= svc.max_sources_per_tenant
    ):
        raise ApiError(
            409,
            f"Tenant has reached max_sources_per_tenant={svc.max_sources_per_tenant}.",
            field="source",
        )
    try:
        batch = await runtime.submit(
            principal.tenant_id, ProcessItem(body.source, body.data, body.timestamp, body.config)
        )
    except QueueFullError:
        raise ApiError(
            429, "Too many requests queued; retry shortly.", headers={"Retry-After": "1"}
        ) from None
    except ShuttingDownError:
        raise ApiError(503, "Server is draining.", headers={"Retry-After": "5"}) from None
    except ReplyTimeout as exc:  # distributed mode: no worker answered in time
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        raise ApiError(503, str(exc), headers={"Retry-After": retry}) from None
    except StreamError as exc:  # distributed mode: Kafka unreachable
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    except InvalidInputError as exc:
        raise ApiError(422, str(exc).replace("items[0].", ""), field=_field_of(str(exc))) from None
    return batch.payloads()[-1].encode()


class RealtimeShortcut:
    """ASGI middleware serving ``POST /api/v1/process/realtime`` ahead of FastAPI's router.

    Same function (:func:`process_realtime`), same auth, limits and error bodies as the
    route; it only skips FastAPI's per-request routing and dependency resolution. Sits
    inside the body-limit and observation middlewares, so those still apply.
    """

    def __init__(self, app: ASGIApp, runtime_getter: Callable[[], Runtime]) -> None:
        self.app = app
        self.runtime_getter = runtime_getter
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # for the request metrics' route label
        runtime = self.runtime_getter()
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            principal = await caller(runtime, authorization, Role.DEVELOPER)
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            response: Response = Response(
                await process_realtime(runtime, principal, b"".join(chunks)),
                media_type="application/json",
            )
        except (ApiError, RequestValidationError) as exc:
            response = error_response(exc)  # type: ignore[assignment]
        await response(scope, receive, send)


def _field_of(message: str) -> str | None:
    for name in ("data", "timestamp", "config", "source"):
        if f".{name}" in message or message.startswith(name):
            return name
    return None
