"""Realtime processing: points in, predictions out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field

from nqp.engine import ProcessItem
from nqp.exceptions import InvalidInputError
from nqp.service.api.deps import DeveloperKey, RuntimeDep
from nqp.service.batcher import QueueFullError, ShuttingDownError
from nqp.service.errors import ApiError
from nqp.service.runtime import internal_source
from nqp.types import Prediction, ProcessConfig

__all__ = ["Points", "RealtimeRequest", "router"]

router = APIRouter(prefix="/api/v1/process", tags=["process"])


def _no_bools(value: Any) -> Any:
    def walk(v: Any) -> None:
        if isinstance(v, bool):
            raise ValueError("values must be numbers, not booleans")
        if isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return value


Points = Annotated[
    float | list[float] | list[list[float]],
    BeforeValidator(_no_bools),
    Field(description="A number, numbers (univariate points) or lists (multivariate points)."),
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


@router.post("/realtime")
async def realtime(
    body: RealtimeRequest, principal: DeveloperKey, runtime: RuntimeDep
) -> Prediction:
    """Advance the source by the given points; returns the last point's prediction.

    Every point's prediction is stored (``GET /api/v1/predictions``) and published to
    WebSocket subscribers. 429/503 with ``Retry-After`` when the queue is full or the
    server is draining.
    """
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
        runtime.is_new_source(internal)
        and await runtime.count_sources(principal.tenant_id) >= svc.max_sources_per_tenant
    ):
        raise ApiError(
            409,
            f"Tenant has reached max_sources_per_tenant={svc.max_sources_per_tenant}.",
            field="source",
        )
    try:
        preds = await runtime.submit(
            principal.tenant_id, ProcessItem(body.source, body.data, body.timestamp, body.config)
        )
    except QueueFullError:
        raise ApiError(
            429, "Too many requests queued; retry shortly.", headers={"Retry-After": "1"}
        ) from None
    except ShuttingDownError:
        raise ApiError(503, "Server is draining.", headers={"Retry-After": "5"}) from None
    except InvalidInputError as exc:
        raise ApiError(422, str(exc).replace("items[0].", ""), field=_field_of(str(exc))) from None
    last = preds[-1]
    return last.model_copy(update={"source": body.source})


def _field_of(message: str) -> str | None:
    for name in ("data", "timestamp", "config", "source"):
        if f".{name}" in message or message.startswith(name):
            return name
    return None
